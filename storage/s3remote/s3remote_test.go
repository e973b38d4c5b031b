package s3remote_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/storage"
	"github.com/objstore/objstore/storage/remotetest"
	"github.com/objstore/objstore/storage/s3remote"
)

func TestMain(m *testing.M) { testminio.Main(m) }

// newRemote returns a Remote on a fresh bucket of the test MinIO server.
func newRemote(t testing.TB, cfg s3remote.Config) (*s3remote.Remote, *testminio.Server) {
	t.Helper()
	srv := testminio.Start(t)
	if cfg.Bucket == "" {
		cfg.Bucket = srv.NewBucket(t)
	}
	cfg.Region = srv.Region
	cfg.Endpoint = srv.Endpoint()
	cfg.Credentials = srv.Credentials()
	r, err := s3remote.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("s3remote.New: %v", err)
	}
	return r, srv
}

func TestConformance(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) storage.Remote {
		r, _ := newRemote(t, s3remote.Config{Prefix: "suite/"})
		return r
	})
}

func TestConformanceNoPrefixSmallParts(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) storage.Remote {
		r, _ := newRemote(t, s3remote.Config{PartSize: s3remote.MinPartSize, Concurrency: 2})
		return r
	})
}

func TestPrefixApplied(t *testing.T) {
	r, srv := newRemote(t, s3remote.Config{Prefix: "pfx/inner/"})
	bucket := strings.TrimPrefix(strings.Fields(r.String())[0], "s3://")
	bucket, _, _ = strings.Cut(bucket, "/")
	ctx := t.Context()
	if err := r.Put(ctx, "a/b", strings.NewReader("hi"), 2, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	out, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("pfx/inner/a/b")})
	if err != nil {
		t.Fatalf("raw HeadObject(pfx/inner/a/b): %v", err)
	}
	if aws.ToInt64(out.ContentLength) != 2 || out.Metadata["k"] != "v" {
		t.Errorf("raw object: %d bytes, meta %v", aws.ToInt64(out.ContentLength), out.Metadata)
	}
	if _, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/b")}); err == nil {
		t.Errorf("object also stored without the prefix")
	}
	if err := r.Remove(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("pfx/inner/a/b")}); err == nil {
		t.Errorf("Remove left the prefixed object")
	}
}

func TestString(t *testing.T) {
	r, srv := newRemote(t, s3remote.Config{Bucket: "bkt", Prefix: "p/"})
	if got, want := r.String(), "s3://bkt/p/ ("+srv.Endpoint()+")"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestNotFoundMapping(t *testing.T) {
	r, _ := newRemote(t, s3remote.Config{})
	ctx := t.Context()
	// HeadObject's 404 has no body, hence no S3 error code.
	_, err := r.Stat(ctx, "missing")
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat(missing) = %v, want ErrNotFound", err)
	}
	var nf *types.NotFound
	var status interface{ HTTPStatusCode() int }
	if !errors.As(err, &nf) && !(errors.As(err, &status) && status.HTTPStatusCode() == 404) {
		t.Errorf("Stat(missing) = %v, lost the SDK cause", err)
	}
	_, _, err = r.Get(ctx, "missing", 0, -1)
	var nsk *types.NoSuchKey
	if !errors.Is(err, storage.ErrNotFound) || !errors.As(err, &nsk) {
		t.Errorf("Get(missing) = %v, want ErrNotFound wrapping NoSuchKey", err)
	}
}

func TestMissingBucket(t *testing.T) {
	r, _ := newRemote(t, s3remote.Config{Bucket: "objstore-no-such-bucket"})
	_, _, err := r.Get(t.Context(), "k", 0, -1)
	// The SDK models NoSuchBucket for GetObject as a generic API error.
	var ae smithy.APIError
	if errors.Is(err, storage.ErrNotFound) || !errors.As(err, &ae) || ae.ErrorCode() != "NoSuchBucket" {
		t.Errorf("Get from a missing bucket = %v, want NoSuchBucket and not ErrNotFound", err)
	}
	if err := r.Put(t.Context(), "k", strings.NewReader("x"), 1, nil); err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Put to a missing bucket = %v, want an error other than ErrNotFound", err)
	}
}

func TestEnsureBucket(t *testing.T) {
	srv := testminio.Start(t)
	name := srv.NewBucket(t) + "-new"
	r, _ := newRemote(t, s3remote.Config{Bucket: name})
	ctx := t.Context()
	for i := range 2 {
		if err := r.EnsureBucket(ctx); err != nil {
			t.Fatalf("EnsureBucket #%d: %v", i+1, err)
		}
	}
	if err := r.Put(ctx, "k", strings.NewReader("x"), 1, nil); err != nil {
		t.Fatalf("Put after EnsureBucket: %v", err)
	}
	t.Cleanup(func() {
		c := context.Background()
		_, _ = srv.Client().DeleteObject(c, &s3.DeleteObjectInput{Bucket: aws.String(name), Key: aws.String("k")})
		_, _ = srv.Client().DeleteBucket(c, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	})
}

// Values stored by other tools, not by Put, come back as they are.
func TestForeignMetadata(t *testing.T) {
	r, srv := newRemote(t, s3remote.Config{Prefix: "p/"})
	bucket := strings.TrimSuffix(strings.TrimPrefix(strings.Fields(r.String())[0], "s3://"), "/p/")
	ctx := t.Context()
	_, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket:   aws.String(bucket),
		Key:      aws.String("p/foreign"),
		Body:     strings.NewReader("x"),
		Metadata: map[string]string{"Mixed-Case": "plain", "fake": "b64:not base64!"},
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := r.Stat(ctx, "foreign")
	if err != nil {
		t.Fatal(err)
	}
	if info.Meta["mixed-case"] != "plain" || info.Meta["fake"] != "b64:not base64!" {
		t.Errorf("meta = %q", info.Meta)
	}
}

// noUploads checks that no multipart upload is left in the bucket.
func noUploads(t *testing.T, srv *testminio.Server, bucket string) {
	t.Helper()
	out, err := srv.Client().ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	for _, u := range out.Uploads {
		t.Errorf("dangling multipart upload %s of %s", aws.ToString(u.UploadId), aws.ToString(u.Key))
	}
}

func TestFailedMultipartLeavesNothing(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	r, _ := newRemote(t, s3remote.Config{Bucket: bucket, PartSize: s3remote.MinPartSize, Concurrency: 2})
	ctx := t.Context()

	t.Run("readerFails", func(t *testing.T) {
		// Fails in the third part, after two were uploaded.
		src := remotetest.FailAfter(remotetest.Data(1, 20<<20), 12<<20)
		err := r.Put(ctx, "fails", src, -1, nil)
		if !errors.Is(err, remotetest.ErrInjected) {
			t.Fatalf("Put = %v, want the reader's error", err)
		}
		if _, err := r.Stat(ctx, "fails"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat after failed Put = %v, want ErrNotFound", err)
		}
		noUploads(t, srv, bucket)
	})
	t.Run("canceled", func(t *testing.T) {
		c, cancel := context.WithCancel(ctx)
		defer cancel()
		pr, pw := io.Pipe()
		// Owned by this subtest: it ends when the pipe is closed below or
		// the Put stops reading and the pipe's reader side is closed.
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := io.Copy(pw, remotetest.Data(2, 12<<20))
			if err == nil {
				// Hold the upload open until it is canceled.
				<-c.Done()
			}
			pw.CloseWithError(c.Err())
		})
		go func() {
			time.Sleep(500 * time.Millisecond)
			cancel()
		}()
		err := r.Put(c, "canceled", pr, -1, nil)
		pr.CloseWithError(errors.New("put returned"))
		wg.Wait()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Put = %v, want context.Canceled", err)
		}
		if _, err := r.Stat(ctx, "canceled"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat after canceled Put = %v, want ErrNotFound", err)
		}
		noUploads(t, srv, bucket)
	})
	t.Run("sizeMismatch", func(t *testing.T) {
		err := r.Put(ctx, "short", remotetest.Data(3, 11<<20), 12<<20, nil)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("short Put = %v, want io.ErrUnexpectedEOF", err)
		}
		if _, err := r.Stat(ctx, "short"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat after short Put = %v, want ErrNotFound", err)
		}
		noUploads(t, srv, bucket)
	})
}

// TestPutMemoryBounded checks that Put streams: storing a 256 MiB object of
// unknown size must not grow the heap by anything near the object's size.
func TestPutMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 256 MiB")
	}
	r, _ := newRemote(t, s3remote.Config{}) // default part size and concurrency
	ctx := t.Context()
	const n = 256 << 20
	const limit = 64 << 20

	var err error
	growth := heapGrowth(func() { err = r.Put(ctx, "big", remotetest.Data(256, n), -1, nil) })
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	t.Logf("heap in use grew by at most %d MiB while putting %d MiB", growth>>20, n>>20)
	if growth >= limit {
		t.Errorf("heap in use grew by %d MiB, want < %d MiB", growth>>20, limit>>20)
	}

	rc, info, err := r.Get(ctx, "big", 0, -1)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatalf("read: %v", err)
	}
	if info.Size != n || [32]byte(h.Sum(nil)) != remotetest.DataSum(256, n) {
		t.Errorf("stored object differs (size %d)", info.Size)
	}
}

// heapGrowth runs f and returns by how much the heap in use grew at most
// while it ran, sampled every 20 ms.
func heapGrowth(f func()) int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	done := make(chan struct{})
	var peak uint64
	var wg sync.WaitGroup
	// The sampler is owned by this call and stops when done is closed.
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	f()
	close(done)
	wg.Wait()
	return int64(peak) - int64(base)
}

// TestUnreachable pins down what a down remote looks like to callers: not
// ErrNotFound, with the transport's *net.OpError and ECONNREFUSED reachable.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	r, err := s3remote.New(t.Context(), s3remote.Config{
		Bucket:      "b",
		Region:      "us-east-1",
		Endpoint:    "http://" + addr,
		Credentials: testminio.Start(t).Credentials(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// The SDK retries with backoff, so the calls run in parallel.
	var getErr, statErr, putErr, removeErr error
	var wg sync.WaitGroup
	wg.Go(func() { _, _, getErr = r.Get(ctx, "k", 0, -1) })
	wg.Go(func() { _, statErr = r.Stat(ctx, "k") })
	wg.Go(func() { putErr = r.Put(ctx, "k", strings.NewReader("x"), 1, nil) })
	wg.Go(func() { removeErr = r.Remove(ctx, "k") })
	wg.Wait()
	for op, err := range map[string]error{"Get": getErr, "Stat": statErr, "Put": putErr, "Remove": removeErr} {
		var opErr *net.OpError
		if err == nil || errors.Is(err, storage.ErrNotFound) || !errors.As(err, &opErr) || !errors.Is(err, syscall.ECONNREFUSED) ||
			!errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s on a closed port = %v, want ErrUnavailable with the *net.OpError (ECONNREFUSED), not ErrNotFound", op, err)
		}
	}
	t.Logf("Get error: %v", getErr)
}

// TestServerStopped checks the same through the harness's Stop and Start.
func TestServerStopped(t *testing.T) {
	r, srv := newRemote(t, s3remote.Config{})
	ctx := t.Context()
	if err := r.Put(ctx, "k", strings.NewReader("x"), 1, nil); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	_, err := r.Stat(ctx, "k")
	restartErr := srv.Start()
	if restartErr != nil {
		t.Fatalf("restart: %v", restartErr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat with the server stopped = %v, want ECONNREFUSED", err)
	}
	if _, err := r.Stat(ctx, "k"); err != nil {
		t.Errorf("Stat after restart: %v", err)
	}
}

// TestServerStoppedDuringPut: a multipart upload cut off by the server going
// away fails with the transport's error, and the abort that cannot reach the
// server is logged.
func TestServerStoppedDuringPut(t *testing.T) {
	var logs syncBuffer
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	r, _ := newRemote(t, s3remote.Config{
		Bucket:      bucket,
		PartSize:    s3remote.MinPartSize,
		Concurrency: 2,
		Logger:      slog.New(slog.NewTextHandler(&logs, nil)),
	})
	ctx := t.Context()
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	// Owned by this test: it ends when Put stops reading and pr is closed.
	wg.Go(func() {
		if _, err := io.Copy(pw, remotetest.Data(4, 6<<20)); err != nil {
			pw.CloseWithError(err)
			return
		}
		srv.Stop()
		_, err := io.Copy(pw, remotetest.Data(5, 20<<20))
		pw.CloseWithError(err)
	})
	err := r.Put(ctx, "cut", pr, -1, nil)
	pr.CloseWithError(errors.New("put returned"))
	wg.Wait()
	if err := srv.Start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Put cut off by a stopped server = %v, want a *net.OpError", err)
	}
	t.Logf("Put error: %v", err)
	if !strings.Contains(logs.String(), "could not abort") {
		t.Errorf("no warning about the failed abort; log:\n%s", logs.String())
	}
	if _, err := r.Stat(ctx, "cut"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after cut-off Put = %v, want ErrNotFound", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestOriginConformance(t *testing.T) {
	for name, cfg := range map[string]s3remote.Config{
		"prefix":   {Prefix: "suite/"},
		"noPrefix": {PartSize: s3remote.MinPartSize, Concurrency: 2},
		"anyKey":   {Prefix: "any/", AnyKey: true},
	} {
		t.Run(name, func(t *testing.T) {
			remotetest.RunOrigin(t, func(t *testing.T) storage.Origin {
				r, _ := newRemote(t, cfg)
				return r
			})
		})
	}
}

// originKeys are keys of buckets objstore did not write, which a Remote
// with AnyKey takes as they are and MinIO stores as they are.
var originKeys = []string{
	"a b+c%20d/ünï.txt",
	`back\slash`,
	`dir\with/back\slashes\`,
	"q?x=1&y=2#frag",
	"100%",
	"%zz%2F",
	"plus+plus",
	"ctl\x01and\ttab",
	"sp ace/ trailing space ",
	"..dots/x..",
	"unicode/日本語/ключ/🎉",
	"~!*'();:@=$,[]",
}

// badOriginKeys are refused whatever AnyKey says.
var badOriginKeys = []string{"x/./y", "x/../y", ".", "..", "./x", "x/..", "", "nul\x00", "bad\xffutf8", strings.Repeat("k", storage.MaxRemoteKeyLen+1)}

func TestAnyKey(t *testing.T) {
	r, _ := newRemote(t, s3remote.Config{Prefix: "p/", AnyKey: true})
	ctx := t.Context()
	for i, key := range originKeys {
		data := []byte(fmt.Sprintf("object %d", i))
		if _, err := r.PutTyped(ctx, key, bytes.NewReader(data), int64(len(data)), "text/plain", map[string]string{"i": fmt.Sprint(i)}); err != nil {
			t.Fatalf("PutTyped(%q): %v", key, err)
		}
	}
	for i, key := range originKeys {
		data := fmt.Sprintf("object %d", i)
		rc, info, err := r.Get(ctx, key, 0, -1)
		if err != nil {
			t.Errorf("Get(%q): %v", key, err)
			continue
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != data || info.Key != key || info.ContentType != "text/plain" || info.Meta["i"] != fmt.Sprint(i) {
			t.Errorf("Get(%q) = %q, %+v, %v", key, got, info, err)
		}
		st, err := r.Stat(ctx, key)
		if err != nil || st.Key != key || st.ETag != info.ETag || st.Size != int64(len(data)) {
			t.Errorf("Stat(%q) = %+v, %v", key, st, err)
		}
		if _, err := r.Revalidate(ctx, key, st.ETag); !errors.Is(err, storage.ErrNotModified) {
			t.Errorf("Revalidate(%q) = %v, want ErrNotModified", key, err)
		}
	}

	want := slices.Sorted(slices.Values(originKeys))
	page, err := r.List(ctx, storage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range page.Objects {
		keys = append(keys, o.Key)
	}
	if !slices.Equal(keys, want) || page.CommonPrefixes != nil || page.Next != "" {
		t.Errorf("List = %q, %q, %q;\nwant %q", keys, page.CommonPrefixes, page.Next, want)
	}
	// One key per page, each page starting after the previous page's key.
	keys = nil
	for opts := (storage.ListOptions{Max: 1}); ; {
		page, err := r.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Objects {
			keys = append(keys, o.Key)
		}
		if page.Next == "" || len(keys) > len(want) {
			break
		}
		opts.After = page.Next
	}
	if !slices.Equal(keys, want) {
		t.Errorf("List one by one = %q,\nwant %q", keys, want)
	}
	page, err = r.List(ctx, storage.ListOptions{Prefix: "a b+c%20d/", Delimiter: "/"})
	if err != nil || len(page.Objects) != 1 || page.Objects[0].Key != "a b+c%20d/ünï.txt" {
		t.Errorf("List(a b+c%%20d/) = %+v, %v", page, err)
	}
	page, err = r.List(ctx, storage.ListOptions{Delimiter: "/"})
	if err != nil || !slices.Contains(page.CommonPrefixes, "a b+c%20d/") || !slices.Contains(page.CommonPrefixes, `dir\with/`) {
		t.Errorf("List(delimiter /) = %+v, %v", page, err)
	}

	for _, key := range originKeys {
		if err := r.Remove(ctx, key); err != nil {
			t.Errorf("Remove(%q): %v", key, err)
		}
		if _, err := r.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(%q) after Remove = %v, want ErrNotFound", key, err)
		}
	}
	if page, err := r.List(ctx, storage.ListOptions{}); err != nil || len(page.Objects) != 0 {
		t.Errorf("List after removing every key = %+v, %v", page, err)
	}

	for _, key := range badOriginKeys {
		wantInvalidKey(t, r, key)
	}
}

// wantInvalidKey checks that every method refuses key.
func wantInvalidKey(t *testing.T, r *s3remote.Remote, key string) {
	t.Helper()
	ctx := t.Context()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, storage.ErrInvalidKey) || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s(%.40q) = %v, want ErrInvalidKey", op, key, err)
		}
	}
	rc, _, err := r.Get(ctx, key, 0, -1)
	if rc != nil {
		rc.Close()
	}
	check("Get", err)
	_, err = r.Stat(ctx, key)
	check("Stat", err)
	_, err = r.Revalidate(ctx, key, `"x"`)
	check("Revalidate", err)
	check("Put", r.Put(ctx, key, strings.NewReader("x"), 1, nil))
	_, err = r.PutTyped(ctx, key, strings.NewReader("x"), 1, "text/plain", nil)
	check("PutTyped", err)
	check("Remove", r.Remove(ctx, key))
}

// Without AnyKey, keys are checked as every Remote checks them.
func TestAnyKeyOff(t *testing.T) {
	r, _ := newRemote(t, s3remote.Config{Prefix: "p/"})
	for _, key := range append([]string{"/leading", "a//b", `back\slash`, "trailing/", "/"}, badOriginKeys...) {
		wantInvalidKey(t, r, key)
	}
	// Origin keys that are also Remote keys still work.
	ctx := t.Context()
	key := "a b+c%20d/ünï.txt"
	if _, err := r.PutTyped(ctx, key, strings.NewReader("x"), 1, "text/plain", nil); err != nil {
		t.Fatalf("PutTyped(%q): %v", key, err)
	}
	if st, err := r.Stat(ctx, key); err != nil || st.ContentType != "text/plain" {
		t.Errorf("Stat(%q) = %+v, %v", key, st, err)
	}
	if page, err := r.List(ctx, storage.ListOptions{}); err != nil || len(page.Objects) != 1 || page.Objects[0].Key != key {
		t.Errorf("List = %+v, %v", page, err)
	}
}

// recordingProxy is a reverse proxy to srv that records the escaped path
// of every request, and the payload hash and CRC-32 checksum headers of
// every PUT; with corrupt set, it flips a bit of every PUT body.
type recordingProxy struct {
	*httptest.Server
	mu      sync.Mutex
	paths   []string
	puts    []string // "<x-amz-content-sha256> <x-amz-checksum-crc32>"
	corrupt atomic.Bool
}

func newRecordingProxy(t *testing.T, srv *testminio.Server) *recordingProxy {
	target, err := url.Parse(srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p.mu.Lock()
		p.paths = append(p.paths, req.Method+" "+req.URL.EscapedPath())
		if req.Method == http.MethodPut {
			p.puts = append(p.puts, req.Header.Get("X-Amz-Content-Sha256")+" "+req.Header.Get("X-Amz-Checksum-Crc32"))
			if p.corrupt.Load() && req.ContentLength > 0 {
				req.Body = &flipFirst{r: req.Body}
			}
		}
		p.mu.Unlock()
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(p.Close)
	return p
}

// flipFirst flips one bit of the first byte read through it.
type flipFirst struct {
	r    io.ReadCloser
	done bool
}

func (f *flipFirst) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if n > 0 && !f.done {
		b[0] ^= 1
		f.done = true
	}
	return n, err
}

func (f *flipFirst) Close() error { return f.r.Close() }

// Uploads are signed without hashing their bodies, but each carries its
// CRC-32, which the store checks: a body changed on the way is refused,
// whole or in parts, and nothing is stored.
func TestUploadsCarryChecksums(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	proxy := newRecordingProxy(t, srv)
	r, err := s3remote.New(t.Context(), s3remote.Config{
		Bucket: bucket, Region: srv.Region, Endpoint: proxy.URL, Credentials: srv.Credentials(),
		PartSize: s3remote.MinPartSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	whole := func(context.Context, int64) error { return nil }
	puts := map[string]func(key string, body []byte) error{
		"Put": func(key string, body []byte) error {
			return r.Put(ctx, key, bytes.NewReader(body), int64(len(body)), nil)
		},
		"PutFile": func(key string, body []byte) error {
			_, err := r.PutFile(ctx, key, bytes.NewReader(body), int64(len(body)), whole, "", nil)
			return err
		},
	}
	for name, put := range puts {
		for _, size := range []int{1 << 10, s3remote.MinPartSize + 1<<20} {
			body := bytes.Repeat([]byte("checksummed "), size/12+1)[:size]
			key := fmt.Sprintf("sums-%s-%d", name, size)
			proxy.take()
			proxy.mu.Lock()
			proxy.puts = nil
			proxy.mu.Unlock()
			if err := put(key, body); err != nil {
				t.Fatalf("%s %d bytes: %v", name, size, err)
			}
			proxy.mu.Lock()
			puts := proxy.puts
			proxy.mu.Unlock()
			if len(puts) == 0 {
				t.Fatalf("put %d bytes: no PUT on the wire", size)
			}
			for _, p := range puts {
				hash, sum, _ := strings.Cut(p, " ")
				if hash != "UNSIGNED-PAYLOAD" || sum == "" {
					t.Errorf("put %d bytes: payload hash %q, CRC-32 %q; want UNSIGNED-PAYLOAD and a checksum", size, hash, sum)
				}
			}
			rc, _, err := r.Get(ctx, key, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(got, body) {
				t.Fatalf("put %d bytes: read back %d bytes that differ", size, len(got))
			}

			proxy.corrupt.Store(true)
			bad := key + "-damaged"
			if err := put(bad, body); err == nil {
				t.Errorf("%s %d bytes damaged on the way: accepted", name, size)
			}
			proxy.corrupt.Store(false)
			if _, err := r.Stat(ctx, bad); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s %d bytes damaged on the way: stored (%v)", name, size, err)
			}
		}
	}
}

func (p *recordingProxy) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.paths
	p.paths = nil
	return out
}

// Keys with a leading slash or an empty element are valid in S3, but MinIO
// (which stores objects as files) drops the leading slash and refuses empty
// elements. That the Remote passes them on as they are is checked on the
// wire, through a proxy that records the requests' paths.
func TestAnyKeyOnTheWire(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	proxy := newRecordingProxy(t, srv)
	r, err := s3remote.New(t.Context(), s3remote.Config{
		Bucket:      bucket,
		Region:      srv.Region,
		Endpoint:    proxy.URL,
		Credentials: srv.Credentials(),
		AnyKey:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, tc := range []struct{ key, path string }{
		{"/leading", "/" + bucket + "//leading"},
		{"a//b", "/" + bucket + "/a//b"},
		{"//", "/" + bucket + "///"},
		{"trailing/", "/" + bucket + "/trailing/"},
		{"a b+c%20d/ü?#", "/" + bucket + "/a%20b%2Bc%2520d/%C3%BC%3F%23"},
	} {
		proxy.take()
		_, err := r.PutTyped(ctx, tc.key, strings.NewReader("x"), 1, "text/plain", nil)
		if errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("PutTyped(%q) = %v, a valid origin key", tc.key, err)
		}
		t.Logf("PutTyped(%q): %v", tc.key, err)
		if got := proxy.take(); !slices.Contains(got, "PUT "+tc.path) {
			t.Errorf("PutTyped(%q) sent %q, want PUT %s", tc.key, got, tc.path)
		}
		_, err = r.Stat(ctx, tc.key)
		if errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v, a valid origin key", tc.key, err)
		}
		if got := proxy.take(); !slices.Contains(got, "HEAD "+tc.path) {
			t.Errorf("Stat(%q) sent %q, want HEAD %s", tc.key, got, tc.path)
		}
		if err := r.Remove(ctx, tc.key); errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Remove(%q) = %v, a valid origin key", tc.key, err)
		}
		if got := proxy.take(); !slices.Contains(got, "DELETE "+tc.path) {
			t.Errorf("Remove(%q) sent %q, want DELETE %s", tc.key, got, tc.path)
		}
	}
}

// A HEAD with If-None-Match is how Revalidate asks, and a 304 is its
// ErrNotModified: no body moves.
func TestRevalidateIsConditionalHead(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	proxy := newRecordingProxy(t, srv)
	r, err := s3remote.New(t.Context(), s3remote.Config{Bucket: bucket, Region: srv.Region, Endpoint: proxy.URL, Credentials: srv.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := r.Put(ctx, "k", strings.NewReader("data"), 4, nil); err != nil {
		t.Fatal(err)
	}
	st, err := r.Stat(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	proxy.take()
	_, err = r.Revalidate(ctx, "k", st.ETag)
	var status interface{ HTTPStatusCode() int }
	if !errors.Is(err, storage.ErrNotModified) || errors.As(err, &status) {
		t.Errorf("Revalidate = %v, want ErrNotModified without the SDK's error", err)
	}
	if got := proxy.take(); !slices.Equal(got, []string{"HEAD /" + bucket + "/k"}) {
		t.Errorf("Revalidate sent %q, want one HEAD", got)
	}
}

func TestMultipartConformance(t *testing.T) {
	for name, newRemote := range map[string]func(t *testing.T) remotetest.MultipartRemote{
		"prefix": func(t *testing.T) remotetest.MultipartRemote {
			r, _ := newRemote(t, s3remote.Config{Prefix: "suite/"})
			return r
		},
		"noPrefix": func(t *testing.T) remotetest.MultipartRemote { r, _ := newRemote(t, s3remote.Config{}); return r },
		"anyKey": func(t *testing.T) remotetest.MultipartRemote {
			r, _ := newRemote(t, s3remote.Config{Prefix: "any/", AnyKey: true})
			return r
		},
		// How the S3 endpoint reaches an origin bucket.
		"withBucket": func(t *testing.T) remotetest.MultipartRemote {
			r, srv := newRemote(t, s3remote.Config{Prefix: "cache/"})
			return r.WithBucket(srv.NewBucket(t))
		},
	} {
		t.Run(name, func(t *testing.T) { remotetest.RunMultipart(t, newRemote) })
	}
}

// partProxy is a reverse proxy to srv that records the UploadPart requests
// it sees and, as told, answers them with a 503 or resets their
// connection midway instead of passing them on.
type partProxy struct {
	*httptest.Server
	mu    sync.Mutex
	parts []*http.Request // headers only
	mode  string          // "", "slowdown" or "reset"
}

func newPartProxy(t *testing.T, srv *testminio.Server) *partProxy {
	target, err := url.Parse(srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	p := &partProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPut || !req.URL.Query().Has("partNumber") {
			rp.ServeHTTP(w, req)
			return
		}
		p.mu.Lock()
		p.parts = append(p.parts, req.Clone(context.Background()))
		mode := p.mode
		p.mu.Unlock()
		switch mode {
		case "slowdown":
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
		case "reset":
			// Take some of the body, as a server does before it gives up.
			_, _ = io.CopyN(io.Discard, req.Body, 64<<10)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // close with a RST
			}
			conn.Close()
		default:
			rp.ServeHTTP(w, req)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *partProxy) set(mode string) []*http.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = mode
	out := p.parts
	p.parts = nil
	return out
}

// UploadPart streams its body with a declared length, unsigned and without
// a checksum the SDK would have to read the body for; it makes a single
// attempt; and a connection reset midway is told apart as a gone upload.
func TestUploadPartOnTheWire(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	proxy := newPartProxy(t, srv)
	r, err := s3remote.New(t.Context(), s3remote.Config{Bucket: bucket, Region: srv.Region, Endpoint: proxy.URL, Credentials: srv.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	id, err := r.CreateMultipart(ctx, "k", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.AbortMultipart(context.Background(), "k", id)
	upload := func(size int64) error {
		_, err := r.UploadPart(ctx, "k", id, 1, remotetest.Data(1, size), size, storage.PartOptions{})
		return err
	}

	for _, size := range []int64{100, s3remote.MinPartSize} {
		if err := upload(size); err != nil {
			t.Fatalf("UploadPart(%d bytes): %v", size, err)
		}
		sent := proxy.set("")
		if len(sent) != 1 {
			t.Fatalf("UploadPart sent %d requests, want 1", len(sent))
		}
		req := sent[0]
		if req.ContentLength != size || len(req.TransferEncoding) != 0 || req.Header.Get("X-Amz-Content-Sha256") != "UNSIGNED-PAYLOAD" {
			t.Errorf("UploadPart(%d bytes) sent Content-Length %d, Transfer-Encoding %q, X-Amz-Content-Sha256 %q; want the size, none, UNSIGNED-PAYLOAD",
				size, req.ContentLength, req.TransferEncoding, req.Header.Get("X-Amz-Content-Sha256"))
		}
		for h := range req.Header {
			if strings.HasPrefix(strings.ToLower(h), "x-amz-checksum") || strings.EqualFold(h, "X-Amz-Trailer") {
				t.Errorf("UploadPart(%d bytes) sent %s", size, h)
			}
		}
		if size >= 2<<20 && req.Header.Get("Expect") != "100-continue" {
			t.Errorf("UploadPart(%d bytes) did not ask for 100-continue", size)
		}
	}

	proxy.set("slowdown")
	err = upload(100)
	if sent := proxy.set(""); len(sent) != 1 {
		t.Errorf("UploadPart answered 503 sent %d requests, want 1 (no retry of a body read once)", len(sent))
	}
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("UploadPart answered 503 = %v, want ErrUnavailable", err)
	}

	proxy.set("reset")
	err = upload(s3remote.MinPartSize)
	proxy.set("")
	if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrNoSuchUpload) {
		t.Errorf("UploadPart reset midway, upload open = %v, want ErrUnavailable", err)
	}
	if err := r.AbortMultipart(ctx, "k", id); err != nil {
		t.Fatal(err)
	}
	proxy.set("reset")
	err = upload(s3remote.MinPartSize)
	proxy.set("")
	if !errors.Is(err, storage.ErrNoSuchUpload) {
		t.Errorf("UploadPart reset midway, upload aborted = %v, want ErrNoSuchUpload", err)
	}
	var opErr *smithy.OperationError
	if !errors.As(err, &opErr) {
		t.Errorf("UploadPart reset midway = %v, lost the SDK's error", err)
	}
}

// TestUploadPartMemoryBounded checks that UploadPart streams: a 256 MiB
// part must not grow the heap by anything near its size.
func TestUploadPartMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 256 MiB")
	}
	r, _ := newRemote(t, s3remote.Config{})
	ctx := t.Context()
	const n = 256 << 20
	const limit = 32 << 20
	id, err := r.CreateMultipart(ctx, "big", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.AbortMultipart(context.Background(), "big", id)

	var etag string
	growth := heapGrowth(func() {
		etag, err = r.UploadPart(ctx, "big", id, 1, remotetest.Data(256, n), n, storage.PartOptions{})
	})
	if err != nil {
		t.Fatalf("UploadPart: %v", err)
	}
	t.Logf("heap in use grew by at most %d MiB while uploading a part of %d MiB", growth>>20, n>>20)
	if growth >= limit {
		t.Errorf("heap in use grew by %d MiB, want < %d MiB", growth>>20, limit>>20)
	}
	if _, err := r.CompleteMultipart(ctx, "big", id, []storage.CompletedPart{{Number: 1, ETag: etag}}); err != nil {
		t.Fatal(err)
	}
	rc, info, err := r.Get(ctx, "big", 0, -1)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatalf("read: %v", err)
	}
	if info.Size != n || [32]byte(h.Sum(nil)) != remotetest.DataSum(256, n) {
		t.Errorf("stored object differs (size %d)", info.Size)
	}
}

// Classified multipart errors keep the SDK's error, with S3's code.
func TestMultipartErrorKeepsCause(t *testing.T) {
	r, _ := newRemote(t, s3remote.Config{})
	ctx := t.Context()
	id, err := r.CreateMultipart(ctx, "k", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AbortMultipart(ctx, "k", id); err != nil {
		t.Fatal(err)
	}
	_, err = r.ListParts(ctx, "k", id, 0, 0)
	var ae smithy.APIError
	if !errors.Is(err, storage.ErrNoSuchUpload) || !errors.As(err, &ae) || ae.ErrorCode() != "NoSuchUpload" {
		t.Errorf("ListParts of an aborted upload = %v, want ErrNoSuchUpload wrapping S3's NoSuchUpload", err)
	}
}
