package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/internal/testnode"
)

// keyURL is the API address of key in bucket on n, each path element
// escaped.
func keyURL(n *testnode.Node, bucket, key string) string {
	elems := strings.Split(key, "/")
	for i, e := range elems {
		elems[i] = url.PathEscape(e)
	}
	return n.URL + "/api/v1/b/" + bucket + "/" + strings.Join(elems, "/")
}

// do sends a request to a raw URL and returns the answer and its body.
func do(t *testing.T, method, rawURL string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	return resp, b
}

// A bucket filled by the AWS SDK, with awkward keys, read through a node:
// the first GET fetches, the next is local; types, ETags and listings are
// S3's; writes and deletes go through to the bucket; bad keys and other
// buckets are refused with nothing touched.
func TestKeysReadThroughRealS3(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()
	objects := map[string]string{
		"images/2024/cat.jpg":         "a cat",
		"a b+c%20d/ünï.txt":           "awkward",
		"emoji/😀 smile.txt":           "smile",
		"deep/x/y/big.bin":            strings.Repeat("0123456789abcdef", 1<<16), // 1 MiB
		"top-level.json":              `{"ok":true}`,
		"q?uery#frag&amp=1;x.txt":     "query-looking",
		"back\\slash and 'quotes'.md": "backslash",
	}
	for key, body := range objects {
		if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
			Body: strings.NewReader(body), ContentType: aws.String("text/x-test")}); err != nil {
			t.Fatalf("put %q: %v", key, err)
		}
	}
	n := testnode.Start(t, testnode.Options{Env: srv.Env(), Args: []string{"--s3-endpoint", srv.Endpoint(),
		"--origin-buckets", bucket, "--cache-ttl", "1h"}})

	for key, body := range objects {
		resp, got := do(t, "GET", keyURL(n, bucket, key), nil, nil)
		if resp.StatusCode != 200 || string(got) != body || resp.Header.Get("X-Meta-Source") != "remote" {
			t.Fatalf("first GET %q: %d, %d bytes from %s", key, resp.StatusCode, len(got), resp.Header.Get("X-Meta-Source"))
		}
		head, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		resp, got = do(t, "GET", keyURL(n, bucket, key), nil, nil)
		if resp.StatusCode != 200 || string(got) != body || resp.Header.Get("X-Meta-Source") != "local" ||
			resp.Header.Get("Content-Type") != "text/x-test" || resp.Header.Get("ETag") != aws.ToString(head.ETag) {
			t.Errorf("second GET %q: %d from %s, headers %v", key, resp.StatusCode, resp.Header.Get("X-Meta-Source"), resp.Header)
		}
		// Conditional and ranged reads, as S3 clients make them.
		if resp, _ := do(t, "GET", keyURL(n, bucket, key), nil, map[string]string{"If-None-Match": aws.ToString(head.ETag)}); resp.StatusCode != 304 {
			t.Errorf("If-None-Match %q: %d", key, resp.StatusCode)
		}
		if resp, got := do(t, "GET", keyURL(n, bucket, key), nil, map[string]string{"Range": "bytes=1-3"}); resp.StatusCode != 206 || string(got) != body[1:4] {
			t.Errorf("Range %q: %d %q", key, resp.StatusCode, got)
		}
		if resp, _ := do(t, "HEAD", keyURL(n, bucket, key), nil, nil); resp.StatusCode != 200 || resp.ContentLength != int64(len(body)) {
			t.Errorf("HEAD %q: %d, length %d", key, resp.StatusCode, resp.ContentLength)
		}
	}

	// The listing is S3's, keys never read included.
	var all []string
	for after := ""; ; {
		resp, b := do(t, "GET", n.URL+"/api/v1/b/"+bucket+"?max=3&after="+url.QueryEscape(after), nil, nil)
		var page struct {
			Keys []struct {
				Key    string
				Cached bool
			}
			Next string
		}
		if resp.StatusCode != 200 || json.Unmarshal(b, &page) != nil {
			t.Fatalf("list: %d %s", resp.StatusCode, b)
		}
		for _, k := range page.Keys {
			all = append(all, k.Key)
			if !k.Cached {
				t.Errorf("%q listed as not cached after its read", k.Key)
			}
		}
		if after = page.Next; after == "" {
			break
		}
	}
	var want []string
	for k := range objects {
		want = append(want, k)
	}
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Errorf("listing:\n got %q\nwant %q", all, want)
	}

	// Refused before anything is touched.
	for _, path := range []string{"/api/v1/b/" + bucket + "/a/../top-level.json", "/api/v1/b/" + bucket + "/./x",
		"/api/v1/b/" + bucket + "/a%2F..%2Fx", "/api/v1/b/" + bucket + "/" + strings.Repeat("k", 1025)} {
		if resp, b := do(t, "GET", n.URL+path, nil, nil); resp.StatusCode != 400 {
			t.Errorf("GET %s: %d %s, want 400", path, resp.StatusCode, b)
		}
	}
	if resp, b := do(t, "GET", keyURL(n, "some-other-bucket", "x"), nil, nil); resp.StatusCode != 403 {
		t.Errorf("another bucket: %d %s, want 403", resp.StatusCode, b)
	}
	if resp, _ := do(t, "GET", keyURL(n, bucket, "no/such/key"), nil, nil); resp.StatusCode != 404 {
		t.Errorf("missing key: %d", resp.StatusCode)
	}

	// Write-through and delete.
	resp, b := do(t, "PUT", keyURL(n, bucket, "uploads/new file.csv"), strings.NewReader("a,b\n1,2\n"),
		map[string]string{"Content-Type": "text/csv", "X-Meta-UserMeta": `{"owner":"bob"}`})
	if resp.StatusCode != 200 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, b)
	}
	out, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("uploads/new file.csv")})
	if err != nil {
		t.Fatal(err)
	}
	inS3, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(inS3, []byte("a,b\n1,2\n")) || aws.ToString(out.ContentType) != "text/csv" || out.Metadata["owner"] != "bob" {
		t.Errorf("in S3 after PUT: %q %q %v", inS3, aws.ToString(out.ContentType), out.Metadata)
	}
	if resp, _ := do(t, "DELETE", keyURL(n, bucket, "uploads/new file.csv"), nil, nil); resp.StatusCode != 200 {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if _, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("uploads/new file.csv")}); err == nil {
		t.Error("the deleted key is still in S3")
	}
	if resp, _ := do(t, "GET", keyURL(n, bucket, "uploads/new file.csv"), nil, nil); resp.StatusCode != 404 {
		t.Errorf("GET after DELETE: %d", resp.StatusCode)
	}
}
