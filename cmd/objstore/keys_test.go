package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/internal/testnode"
	"github.com/objstore/objstore/journal"
)

// keyURL is the API address of key in bucket on n, each path element
// escaped.
func keyURL(n *testnode.Node, bucket, key string) string {
	return n.URL + "/api/v1/b/" + bucket + "/" + escapePath(key)
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

	// Refused before anything is touched: no file appears or changes
	// outside the node's data directories, and the bucket is as it was.
	outside := func() map[string]string {
		seen := map[string]string{}
		root := filepath.Dir(n.Dir())
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if p == n.StateDir() || p == n.FilesDir() {
				return filepath.SkipDir
			}
			if p == filepath.Join(n.Dir(), "node.log") {
				return nil // the node's log, written as it answers
			}
			if info, err := d.Info(); err == nil && !d.IsDir() {
				seen[p] = fmt.Sprint(info.Size(), info.ModTime().UnixNano())
			}
			return nil
		})
		return seen
	}
	listBucket := func() []string {
		out, err := srv.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key)+"@"+aws.ToString(o.ETag))
		}
		return keys
	}
	filesBefore, bucketBefore := outside(), listBucket()
	for _, path := range []string{"/a/../top-level.json", "/./x", "/a%2F..%2Fx", "/..%2F..%2F..%2Fetc%2Fescape",
		"/%2e%2e/%2e%2e/escape", "/x/..", "/" + strings.Repeat("k", 1025), "/nul%00byte"} {
		for _, method := range []string{"GET", "PUT", "DELETE", "POST"} {
			route := n.URL + "/api/v1/b/" + bucket + path
			if method == "POST" {
				route = n.URL + "/api/v1/invalidate/b/" + bucket + path
			}
			if resp, b := do(t, method, route, strings.NewReader("escape"), nil); resp.StatusCode != 400 {
				t.Errorf("%s %s: %d %s, want 400", method, path, resp.StatusCode, b)
			}
		}
	}
	if after := outside(); !maps.Equal(after, filesBefore) {
		t.Errorf("files outside the data directories changed:\n before %v\n after %v", filesBefore, after)
	}
	if after := listBucket(); !slices.Equal(after, bucketBefore) {
		t.Errorf("the bucket changed: %v, was %v", after, bucketBefore)
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

// keyCluster starts three nodes serving bucket (of srv) through the
// counting proxy, with cache TTL ttl, and waits until each sees all three.
func keyCluster(t *testing.T, srv *testminio.Server, proxy *s3Proxy, bucket, ttl string) []*testnode.Node {
	t.Helper()
	var ns []*testnode.Node
	for i := range 3 {
		args := []string{"--s3-endpoint", proxy.URL, "--origin-buckets", bucket, "--cache-ttl", ttl,
			"--gossip-profile", "local", "--sync-interval", "2s"}
		if i > 0 {
			args = append(args, "-N", ns[i-1].GossipAddr)
		}
		ns = append(ns, testnode.Start(t, testnode.Options{Env: srv.Env(), Args: args}))
	}
	for _, n := range ns {
		eventually(t, "three alive members", func() bool { return aliveCount(t, n) == 3 })
	}
	return ns
}

// getKeyOn reads bucket/key through n and returns the status, body and
// source.
func getKeyOn(t *testing.T, n *testnode.Node, bucket, key string) (int, string, string) {
	t.Helper()
	resp, b := do(t, "GET", keyURL(n, bucket, key), nil, nil)
	return resp.StatusCode, string(b), resp.Header.Get("X-Meta-Source")
}

func s3Put(t *testing.T, srv *testminio.Server, bucket, key, body string) {
	t.Helper()
	if _, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket),
		Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

func s3Has(t *testing.T, srv *testminio.Server, bucket, key string) bool {
	t.Helper()
	_, err := srv.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	return err == nil
}

// Three node processes in front of a bucket filled by the SDK, through a
// proxy that counts what reaches S3: 24 concurrent cold GETs of one key
// over the three nodes make one S3 GET; an expired copy is revalidated
// with a conditional request (304, no body); an object overwritten in S3
// behind the cluster's back is served new; delete by key and by prefix
// reach S3 and every node; invalidation drops copies everywhere; pre-warm
// by prefix leaves every key on every node; a batch upload stores each
// file.
func TestKeysAcrossCluster(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	proxy := newS3Proxy(t, srv.Endpoint())
	hot := "hot/ünï code+plus %20/ключ.bin"
	hotBody := strings.Repeat("hot object ", 100_000) // 1.1 MB: one S3 GET
	s3Put(t, srv, bucket, hot, hotBody)
	warm := map[string]string{}
	for i := range 12 {
		k := fmt.Sprintf("warm/%02d with space.txt", i)
		warm[k] = strings.Repeat(k, 100)
		s3Put(t, srv, bucket, k, warm[k])
	}
	for i := range 5 {
		s3Put(t, srv, bucket, fmt.Sprintf("doomed/%d.txt", i), "to be deleted by prefix")
	}
	ns := keyCluster(t, srv, proxy, bucket, "3s")

	t.Run("cold GETs coalesce across the cluster", func(t *testing.T) {
		before := proxy.objectGets.Load()
		var wg sync.WaitGroup
		errs := make(chan string, 24)
		for i := range 24 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, body, _ := getKeyOn(t, ns[i%3], bucket, hot)
				if code != 200 || body != hotBody {
					errs <- fmt.Sprintf("GET %d on node %d: %d, %d bytes", i, i%3, code, len(body))
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		if got := proxy.objectGets.Load() - before; got != 1 {
			t.Errorf("24 concurrent cold GETs over 3 nodes made %d S3 GETs, want 1", got)
		}
		for i, n := range ns {
			if code, body, src := getKeyOn(t, n, bucket, hot); code != 200 || body != hotBody || src != "local" {
				t.Errorf("node %d: repeated GET %d from %q", i, code, src)
			}
		}
	})

	t.Run("expired copies are revalidated without their bodies", func(t *testing.T) {
		gets, notMod := proxy.objectGets.Load(), proxy.notModified.Load()
		time.Sleep(3500 * time.Millisecond) // past --cache-ttl
		for i, n := range ns {
			if code, body, src := getKeyOn(t, n, bucket, hot); code != 200 || body != hotBody || src != "local" {
				t.Errorf("node %d after the TTL: %d from %q", i, code, src)
			}
		}
		if got := proxy.notModified.Load() - notMod; got != 3 {
			t.Errorf("%d conditional requests answered 304, want 3 (one per node)", got)
		}
		if got := proxy.objectGets.Load() - gets; got != 0 {
			t.Errorf("revalidation made %d S3 GETs of the body", got)
		}
	})

	t.Run("an overwrite in S3 is served after the TTL", func(t *testing.T) {
		s3Put(t, srv, bucket, hot, "replaced behind the cluster's back")
		time.Sleep(3500 * time.Millisecond)
		for i, n := range ns {
			if code, body, _ := getKeyOn(t, n, bucket, hot); code != 200 || body != "replaced behind the cluster's back" {
				t.Errorf("node %d after the overwrite: %d %q", i, code, body)
			}
		}
	})

	t.Run("pre-warm by prefix fills every node", func(t *testing.T) {
		resp, b := do(t, "POST", ns[0].URL+"/api/v1/prewarm", strings.NewReader(
			`{"bucket":"`+bucket+`","prefix":"warm/","all_nodes":true}`), nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("prewarm: %d %s", resp.StatusCode, b)
		}
		var job struct {
			ID    string `json:"id"`
			Total int    `json:"total"`
		}
		json.Unmarshal(b, &job)
		if job.Total != len(warm) {
			t.Errorf("the job loads %d keys, want %d", job.Total, len(warm))
		}
		eventually(t, "pre-warm done everywhere", func() bool {
			_, b := do(t, "GET", ns[0].URL+"/api/v1/prewarm/"+job.ID, nil, nil)
			var st struct {
				State string `json:"state"`
				Peers []struct {
					State string `json:"state"`
				} `json:"peers"`
			}
			json.Unmarshal(b, &st)
			done := st.State == "done" && len(st.Peers) == 2
			for _, p := range st.Peers {
				done = done && p.State == "done"
			}
			return done
		})
		gets := proxy.objectGets.Load()
		for i, n := range ns {
			for k, body := range warm {
				if code, got, src := getKeyOn(t, n, bucket, k); code != 200 || got != body || src != "local" {
					t.Errorf("node %d, %q after pre-warm: %d from %q", i, k, code, src)
				}
			}
		}
		if got := proxy.objectGets.Load() - gets; got != 0 {
			t.Errorf("reads after the pre-warm made %d S3 GETs", got)
		}
	})

	t.Run("invalidation drops every node's copies", func(t *testing.T) {
		key := "warm/00 with space.txt"
		resp, b := do(t, "POST", strings.Replace(keyURL(ns[1], bucket, key), "/api/v1/b/", "/api/v1/invalidate/b/", 1), nil, nil)
		var res struct {
			Dropped map[string]int `json:"dropped"`
		}
		json.Unmarshal(b, &res)
		if resp.StatusCode != 200 || len(res.Dropped) != 3 {
			t.Fatalf("invalidate key: %d %s", resp.StatusCode, b)
		}
		for id, d := range res.Dropped {
			if d != 1 {
				t.Errorf("node %s dropped %d copies of the key", id, d)
			}
		}
		// The first read fetches the key again, once for the cluster
		// (the owner of its fills keeps a copy too); the others read it
		// from a peer.
		gets := proxy.objectGets.Load()
		for i, n := range ns {
			if code, got, src := getKeyOn(t, n, bucket, key); code != 200 || got != warm[key] || i == 0 && src == "local" {
				t.Errorf("node %d after invalidating %q: %d from %q", i, key, code, src)
			}
		}
		if got := proxy.objectGets.Load() - gets; got != 1 {
			t.Errorf("reading the invalidated key on 3 nodes made %d S3 GETs, want 1", got)
		}
		resp, b = do(t, "POST", ns[2].URL+"/api/v1/invalidate/b/"+bucket+"?prefix=warm/", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("invalidate prefix: %d %s", resp.StatusCode, b)
		}
		res.Dropped = nil
		json.Unmarshal(b, &res)
		total := 0
		for _, d := range res.Dropped {
			total += d
		}
		if len(res.Dropped) != 3 || total < 3*(len(warm)-1) {
			t.Errorf("invalidating the prefix dropped %v", res.Dropped)
		}
		if code, got, src := getKeyOn(t, ns[0], bucket, "warm/05 with space.txt"); code != 200 || got != warm["warm/05 with space.txt"] || src == "local" {
			t.Errorf("after invalidation: %d from %q", code, src)
		}
	})

	t.Run("delete by key and by prefix", func(t *testing.T) {
		if code, _, _ := getKeyOn(t, ns[2], bucket, "doomed/0.txt"); code != 200 {
			t.Fatalf("doomed/0.txt: %d", code)
		}
		resp, b := do(t, "DELETE", keyURL(ns[0], bucket, hot), nil, nil)
		if resp.StatusCode != 200 || s3Has(t, srv, bucket, hot) {
			t.Errorf("delete key: %d %s; still in S3: %v", resp.StatusCode, b, s3Has(t, srv, bucket, hot))
		}
		resp, b = do(t, "DELETE", ns[1].URL+"/api/v1/b/"+bucket+"?prefix=doomed/", nil, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"deleted":5`) {
			t.Errorf("delete prefix: %d %s", resp.StatusCode, b)
		}
		if resp, _ := do(t, "DELETE", ns[1].URL+"/api/v1/b/"+bucket, nil, nil); resp.StatusCode != 400 {
			t.Errorf("delete of a bucket without a prefix: %d", resp.StatusCode)
		}
		for i := range 5 {
			if s3Has(t, srv, bucket, fmt.Sprintf("doomed/%d.txt", i)) {
				t.Errorf("doomed/%d.txt is still in S3", i)
			}
		}
		for _, n := range ns {
			eventually(t, "deletes everywhere", func() bool {
				c1, _, _ := getKeyOn(t, n, bucket, hot)
				c2, _, _ := getKeyOn(t, n, bucket, "doomed/0.txt")
				return c1 == 404 && c2 == 404
			})
		}
	})

	t.Run("listing is S3's", func(t *testing.T) {
		out, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, o := range out.Contents {
			want = append(want, *o.Key)
		}
		for i, n := range ns {
			_, b := do(t, "GET", n.URL+"/api/v1/b/"+bucket, nil, nil)
			var list struct {
				Keys []struct {
					Key string `json:"key"`
				} `json:"keys"`
			}
			json.Unmarshal(b, &list)
			var got []string
			for _, k := range list.Keys {
				got = append(got, k.Key)
			}
			if !slices.Equal(got, want) {
				t.Errorf("node %d lists %q, S3 %q", i, got, want)
			}
		}
	})

	t.Run("batch upload", func(t *testing.T) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		files := map[string]string{"one.txt": "first file", "two words.txt": "second file", "sub/three.txt": "third"}
		for _, name := range []string{"one.txt", "two words.txt", "sub/three.txt"} {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="files"; filename=%q`, name))
			h.Set("Content-Type", "text/plain")
			w, _ := mw.CreatePart(h)
			io.WriteString(w, files[name])
		}
		mw.Close()
		resp, b := do(t, "POST", ns[2].URL+"/api/v1/b/"+bucket+"?path=batch", &body,
			map[string]string{"Content-Type": mw.FormDataContentType()})
		if resp.StatusCode != 200 {
			t.Fatalf("batch upload: %d %s", resp.StatusCode, b)
		}
		for name, want := range files {
			out, err := srv.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("batch/" + name)})
			if err != nil {
				t.Errorf("batch/%s not in S3: %v", name, err)
				continue
			}
			got, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if string(got) != want || aws.ToString(out.ContentType) != "text/plain" {
				t.Errorf("batch/%s in S3: %q (%s)", name, got, aws.ToString(out.ContentType))
			}
			if code, got, _ := getKeyOn(t, ns[0], bucket, "batch/"+name); code != 200 || got != want {
				t.Errorf("batch/%s on another node: %d %q", name, code, got)
			}
		}
		resp, b = do(t, "POST", ns[2].URL+"/api/v1/b/"+bucket, strings.NewReader("not multipart"), nil)
		if resp.StatusCode != 400 {
			t.Errorf("a batch upload that is not multipart: %d %s", resp.StatusCode, b)
		}
		// A name that makes a key the API could not address is refused,
		// after the files before it are stored.
		body.Reset()
		mw = multipart.NewWriter(&body)
		for _, name := range []string{"ok.txt", "/absolute.txt"} {
			w, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Disposition": {fmt.Sprintf(`form-data; name="files"; filename=%q`, name)}})
			io.WriteString(w, "x")
		}
		mw.Close()
		resp, b = do(t, "POST", ns[2].URL+"/api/v1/b/"+bucket+"?path=refused", &body,
			map[string]string{"Content-Type": mw.FormDataContentType()})
		if resp.StatusCode != 400 || !strings.Contains(string(b), `"failed":"refused//absolute.txt"`) || !s3Has(t, srv, bucket, "refused/ok.txt") {
			t.Errorf("a file name with an empty element: %d %s", resp.StatusCode, b)
		}
	})

	// Last, since it kills a node: a cold key whose owner is down is
	// fetched by the node asked, at once.
	t.Run("owner down", func(t *testing.T) {
		ids := make([]cluster.Member, len(ns))
		for i, n := range ns {
			ids[i] = cluster.Member{ID: ulid.MustParse(nodeID(t, n))}
		}
		var key string
		for i := 0; key == ""; i++ {
			k := fmt.Sprintf("orphan/%d.txt", i)
			if o, _ := cluster.Owner(ids, journal.KeyID(bucket, k)); o.ID == ids[0].ID {
				key = k
			}
		}
		s3Put(t, srv, bucket, key, "fetched without its owner")
		fallbacks := func() float64 {
			_, b := do(t, "GET", ns[1].URL+"/api/v1/stats", nil, nil)
			var st struct {
				Traffic map[string]float64 `json:"traffic"`
			}
			json.Unmarshal(b, &st)
			return st.Traffic["owner_fallbacks"]
		}
		before := fallbacks()
		ns[0].Kill()
		if code, got, _ := getKeyOn(t, ns[1], bucket, key); code != 200 || got != "fetched without its owner" {
			t.Fatalf("GET with the owner down: %d %q", code, got)
		}
		// While the asker still counts the owner among the live members,
		// the GET was routed to it and fell back.
		if st := nodes(t, ns[1])[ids[0].ID.String()].State; st == "alive" || st == "suspect" {
			if fallbacks() <= before {
				t.Errorf("the owner is %s in the asker's view, yet no fallback was counted", st)
			}
		} else {
			t.Logf("the killed owner was already %s: the fill was not routed to it", st)
		}
	})
}
