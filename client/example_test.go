package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/api"
	"github.com/objstore/objstore/client"
	"github.com/objstore/objstore/node"
	"github.com/objstore/objstore/storage"
)

// exampleNode starts an objstore node in this process, with a directory
// as its remote store, and returns its URL and a function that stops it.
// A program would use the URL of a running node or load balancer.
func exampleNode() (string, func()) {
	dir, err := os.MkdirTemp("", "objstore-example-")
	if err != nil {
		log.Fatal(err)
	}
	remote, err := storage.NewDirRemote(filepath.Join(dir, "remote"))
	if err != nil {
		log.Fatal(err)
	}
	n, err := node.Open(context.Background(), node.Config{StateDir: filepath.Join(dir, "state"),
		FilesDir: filepath.Join(dir, "files"), Remote: remote, ScrubInterval: -1})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(api.NewPublic(api.Config{Store: n, Version: "example"}))
	return srv.URL, func() { srv.Close(); n.Close(); os.RemoveAll(dir) }
}

// Write an object, read it back, and delete it.
func Example() {
	url, stop := exampleNode()
	defer stop()
	ctx := context.Background()

	c, err := client.New(url) // client.WithCredentials(key, secret) when the node needs a key
	if err != nil {
		log.Fatal(err)
	}
	m, err := c.Put(ctx, strings.NewReader("hello, objstore"), client.PutOptions{
		Name: "greeting.txt", Level: client.LevelRemote, UserMeta: map[string]string{"owner": "alice"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Name, m.Size, m.Consistency, m.UserMeta["owner"])

	id := ulid.MustParse(m.ID)
	obj, err := c.Get(ctx, id, client.GetOptions{})
	if err != nil {
		log.Fatal(err)
	}
	body, err := io.ReadAll(obj.Body) // a body cut short fails here, never ends early
	obj.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(body), obj.Source)

	if _, err := c.Delete(ctx, id, false); err != nil {
		log.Fatal(err)
	}
	_, err = c.Get(ctx, id, client.GetOptions{})
	fmt.Println(errors.Is(err, client.ErrNotFound), errors.Is(err, client.ErrDeleted))
	// Output:
	// greeting.txt 15 1 alice
	// hello, objstore local
	// true true
}

// Read part of an object.
func ExampleClient_Get_range() {
	url, stop := exampleNode()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(url)

	m, err := c.Put(ctx, strings.NewReader("0123456789"), client.PutOptions{Name: "digits.txt"})
	if err != nil {
		log.Fatal(err)
	}
	obj, err := c.Get(ctx, ulid.MustParse(m.ID), client.GetOptions{Range: &client.Range{Offset: 2, Length: 3}})
	if err != nil {
		log.Fatal(err)
	}
	defer obj.Close()
	b, _ := io.ReadAll(obj.Body)
	fmt.Println(string(b), obj.Length, obj.Size)
	// Output: 234 3 10
}

// Tell a missing object from other failures.
func ExampleError() {
	url, stop := exampleNode()
	defer stop()
	c, _ := client.New(url)

	_, err := c.Stat(context.Background(), ulid.Make())
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, errors.Is(err, client.ErrNotFound))
	}
	// Output: 404 true
}
