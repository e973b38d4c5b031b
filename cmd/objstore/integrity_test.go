package main_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
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
