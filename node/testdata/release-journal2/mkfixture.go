// Command mkfixture writes the state of a node made by this release, for
// the upgrade test of later ones.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/node"
	"github.com/objstore/objstore/storage"
)

func main() {
	dir := os.Args[1]
	dr, err := storage.NewDirRemote(filepath.Join(dir, "remote"))
	if err != nil {
		panic(err)
	}
	n, err := node.Open(context.Background(), node.Config{
		StateDir: filepath.Join(dir, "state"), FilesDir: filepath.Join(dir, "files"),
		Remote: storage.WithPrefix(dr, "objects/"), ScrubInterval: -1,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	var lines []string
	put := func(name string, level journal.Level, body string) ulid.ULID {
		id := ulid.Make()
		if _, err := n.Put(ctx, node.PutRequest{ID: id, Name: name, Level: level, Body: strings.NewReader(body),
			Size: int64(len(body)), UserMeta: map[string]string{"owner": "alice"}}); err != nil {
			panic(err)
		}
		return id
	}
	for i, level := range []journal.Level{0, 1, 2, 1} {
		body := strings.Repeat(fmt.Sprintf("object %d at level %d. ", i, level), 100*(i+1))
		id := put(fmt.Sprintf("file-%d.txt", i), level, body)
		lines = append(lines, fmt.Sprintf("%s %d %s", id, level, body))
	}
	gone := put("deleted.txt", 1, "deleted before the upgrade")
	if _, err := n.Delete(ctx, gone, false); err != nil {
		panic(err)
	}
	lines = append(lines, fmt.Sprintf("%s deleted", gone))
	if err := n.Close(); err != nil {
		panic(err)
	}
	os.WriteFile(filepath.Join(dir, "objects.txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}
