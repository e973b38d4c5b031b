//go:build sidebyside

package sidebyside_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/internal/testnode"
)

// The ranged-read benchmark: a Parquet-like reader of a cold 1 GiB object
// (the footer's length, the footer, then a few column chunks), through
// objstore, nginx's slice cache, nginx's proxy_cache without slices, and
// straight from MinIO, each behind a proxy that counts the bytes pulled
// from MinIO. OBJSTORE_BEFORE_BIN, when set, is another objstore binary
// measured the same way (the release before sparse copies, for instance).

// Markers of the ranged section of docs/benchmarks.md.
const (
	rangedBegin = "<!-- make bench ranged: begin; written by internal/sidebyside, edits between the marks are lost -->"
	rangedEnd   = "<!-- make bench ranged: end -->"
)

// nginxSliceConf is nginx's slice module as its documentation sets it up
// for byte-range caching: each 8 MiB slice (objstore's part size) fetched
// and cached on its own, keyed by its range.
const nginxSliceConf = nginxHead + `	server {
		listen %[3]s;
		location / {
			slice 8m;
			proxy_pass http://%[2]s;
			proxy_http_version 1.1;
			proxy_set_header Host %[2]s;
			proxy_set_header Range $slice_range;
			proxy_cache s3;
			proxy_cache_key $uri$is_args$args$slice_range;
			proxy_cache_valid 200 206 1h;
			proxy_cache_lock on;
			proxy_ignore_headers Cache-Control Expires Set-Cookie;
		}
	}
}
`

// byteProxy forwards to a MinIO and counts the body bytes it sends back.
type byteProxy struct {
	URL   string
	bytes atomic.Int64
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func newByteProxy(t *testing.T, endpoint string) *byteProxy {
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &byteProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.ServeHTTP(&countingWriter{ResponseWriter: w, n: &p.bytes}, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// parquetReads is the access pattern: a suffix for the footer's length,
// the footer, then column chunks spread over the object.
func parquetReads(size int64) []string {
	const footer = 64 << 10
	chunks := [][2]int64{{100 << 20, 1 << 20}, {400 << 20, 2 << 20}, {700 << 20, 1 << 20}, {900 << 20, 4 << 20}}
	reads := []string{"bytes=-8", fmt.Sprintf("bytes=%d-%d", size-8-footer, size-9)}
	for _, c := range chunks {
		reads = append(reads, fmt.Sprintf("bytes=%d-%d", c[0], c[0]+c[1]-1))
	}
	return reads
}

// rangedResult is one system's run of the pattern.
type rangedResult struct {
	system      string
	pulled      int64
	cold, warm  time.Duration
	served      int64
	description string
}

func TestRangedReads(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			t.Fatal("nginx is not installed: run scripts/bench-deps.sh (make bench does)")
		}
	}
	const size = 1 << 30
	ctx := context.Background()
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},`+
		`"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/*"]}]}`, bucket)
	if _, err := srv.Client().PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	const key = "warehouse/part-00000.parquet"
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	// Streamed with a presigned URL: the SDK would want a seekable body.
	ps, err := s3.NewPresignClient(srv.Client()).PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	put, _ := http.NewRequestWithContext(ctx, "PUT", ps.URL, body(size, 42))
	put.ContentLength = size
	resp, err := hc.Do(put)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("put the object: %v %v", err, resp)
	}
	resp.Body.Close()
	reads := parquetReads(size)

	run := func(system, base, description string, proxy *byteProxy) rangedResult {
		res := rangedResult{system: system, description: description}
		pass := func() time.Duration {
			start := time.Now()
			for _, rng := range reads {
				req, _ := http.NewRequestWithContext(ctx, "GET", base, nil)
				req.Header.Set("Range", rng)
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", system, rng, err)
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusPartialContent {
					t.Fatalf("%s %s: %d, %v", system, rng, resp.StatusCode, err)
				}
				res.served += n
			}
			return time.Since(start)
		}
		res.cold = pass()
		time.Sleep(500 * time.Millisecond) // parts land and are recorded
		res.pulled = proxy.bytes.Load()
		res.served = 0
		res.warm = pass()
		return res
	}

	var results []rangedResult
	keyPath := "/api/v1/b/" + bucket + "/" + key
	node := func(system, bin, description string, extra ...string) {
		proxy := newByteProxy(t, srv.Endpoint())
		n := testnode.Start(t, testnode.Options{Binary: bin, Env: srv.Env(), Args: append([]string{"--s3-endpoint", proxy.URL,
			"--origin-buckets", bucket, "--cache-ttl", "1h", "--debug", "0"}, extra...)})
		results = append(results, run(system, n.URL+keyPath, description, proxy))
		n.Stop()
	}
	node("objstore", "", "sparse copies: the parts the ranges touch, 8 MiB each")
	node("objstore --read-ahead 1", "", "the parts touched and the next one", "--read-ahead", "1")
	if bin := os.Getenv("OBJSTORE_BEFORE_BIN"); bin != "" {
		node("objstore before sparse copies", bin, "the whole object on the first range")
	}
	for _, c := range []struct{ system, conf, description string }{
		{"nginx slice 8m", nginxSliceConf, "slices the ranges touch, 8 MiB each"},
		{"nginx proxy_cache", nginxConf, "the whole object on the first range"},
	} {
		proxy := newByteProxy(t, srv.Endpoint())
		u, _ := url.Parse(proxy.URL)
		d := startNginxWith(t, c.conf, u.Host)
		results = append(results, run(c.system, d.base+"/"+bucket+"/"+key, c.description, proxy))
	}
	proxy := newByteProxy(t, srv.Endpoint())
	results = append(results, run("MinIO direct", proxy.URL+"/"+bucket+"/"+key, "no cache: every read goes to S3", proxy))

	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nOne run of `make bench` on %s: a Parquet-like reader of a cold 1 GiB object: the footer's length (`bytes=-8`), the 64 KiB footer, then four column chunks (1, 2, 1 and 4 MiB at 100, 400, 700 and 900 MiB), %d bytes in all; then the same reads again, warm. Bytes pulled from S3 are counted by a proxy in front of MinIO.\n\n",
		rangedBegin, time.Now().UTC().Format("2006-01-02"), results[0].served)
	b.WriteString("| system | what it keeps | pulled from S3 (cold) | cold (ms) | warm (ms) |\n|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %.1f MiB (%.1f× the bytes read) | %s | %s |\n", r.system, r.description,
			float64(r.pulled)/(1<<20), float64(r.pulled)/float64(r.served), ms(r.cold), ms(r.warm))
	}
	b.WriteString("\n" + rangedEnd + "\n")
	md := b.String()
	t.Log("\n" + md)
	if os.Getenv("BENCH_NO_WRITE") != "" {
		return
	}
	if err := writeMarked("../../docs/benchmarks.md", md, rangedBegin, rangedEnd); err != nil {
		t.Fatal(err)
	}
}
