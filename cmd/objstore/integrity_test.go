package main_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testnode"
)

// A body in S3 that was damaged, or cut short, is never served as the
// object: a read that must fetch it is aborted before its end (the client
// sees a broken response, never a whole wrong body) or refused, and the
// node keeps no copy of it.
func TestDamagedRemoteBodyNeverServed(t *testing.T) {
	n, srv, bucket := s3Node(t)
	ctx := context.Background()
	body := strings.Repeat("good bytes ", 100000) // 1.1 MB
	for _, damage := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }},
		{"cut short", func(b []byte) []byte { return b[:len(b)/2] }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			id := ulid.Make().String()
			mustPut(t, n, id, 1, "data.bin", body)
			key := "objects/" + id
			head, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			bad := damage.edit([]byte(body))
			if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
				Body: bytes.NewReader(bad), Metadata: head.Metadata}); err != nil {
				t.Fatal(err)
			}
			// The node's own copy goes; the next read must fetch.
			if resp, b, _ := n.Do(testnode.Request{Method: "POST", Path: "/api/v1/invalidate/" + id,
				Header: map[string]string{"X-Meta-Local": "true"}}); resp.StatusCode != 200 {
				t.Fatalf("invalidate: %d %s", resp.StatusCode, b)
			}
			resp, err := http.Get(n.URL + "/api/v1/get/" + id)
			if err == nil {
				got, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 && rerr == nil {
					t.Fatalf("served %d bytes as a whole object (right bytes: %v)", len(got), string(got) == body)
				}
				t.Logf("status %d, read error %v after %d bytes", resp.StatusCode, rerr, len(got))
			}
			if _, m := metaOn(t, n, id); m["is_local"] == true {
				t.Error("the node kept the damaged body")
			}
		})
	}
}

// A peer's damaged copy is never served as the object either: a node
// reading a level-0 body from its holder, whose copy rotted on disk,
// aborts the answer and keeps nothing.
func TestDamagedPeerBodyNeverServed(t *testing.T) {
	remote := newRemote(t)
	a := clusterNode(t, remote)
	b := clusterNode(t, remote, a)
	eventually(t, "a and b joined", func() bool { return aliveCount(t, a) == 2 && aliveCount(t, b) == 2 })
	id := ulid.Make().String()
	body := strings.Repeat("only on a ", 50000)
	mustPut(t, a, id, 0, "sole.bin", body)
	eventually(t, "b knows it", func() bool { s, _ := metaOn(t, b, id); return s == 200 })
	// Rot one byte of a's copy on disk (same size: only the checksum can
	// tell).
	path := bodyFiles(t, a)[id]
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/3] ^= 0x20
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(b.URL + "/api/v1/get/" + id)
	if err == nil {
		got, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && rerr == nil {
			t.Fatalf("b served %d bytes of a rotten copy as a whole object", len(got))
		}
		t.Logf("status %d, read error %v after %d bytes", resp.StatusCode, rerr, len(got))
	}
	if _, m := metaOn(t, b, id); m["is_local"] == true {
		t.Error("b kept the rotten copy")
	}
}
