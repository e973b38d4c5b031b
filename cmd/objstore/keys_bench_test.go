package main_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/internal/testnode"
)

// BenchmarkKeyGet reads an origin bucket's keys three ways, for each size:
// straight from MinIO (path=minio), through a node process on the key's
// first GET, which reads it through from MinIO (path=first), and through
// the node once the key is on its disk (path=repeat). Besides MB/s it
// reports ttfb-ms, the mean time from sending the request to the first
// body byte. One MinIO and one node serve every sub-benchmark. Small
// sizes need a few hundred iterations for a steady mean; 256 MiB a few:
//
//	go test -run '^$' -bench 'BenchmarkKeyGet/size=(1KiB|1MiB)' -benchtime 200x ./cmd/objstore
//	go test -run '^$' -bench 'BenchmarkKeyGet/size=256MiB' -benchtime 5x -timeout 30m ./cmd/objstore
func BenchmarkKeyGet(b *testing.B) {
	srv := testminio.Start(b)
	bucket := srv.NewBucket(b)
	n := testnode.Start(b, testnode.Options{Env: srv.Env(), Args: []string{"--s3-endpoint", srv.Endpoint(),
		"--origin-buckets", bucket, "--cache-ttl", "1h"}})
	hc := benchClient(b)
	benchKeyGets(b, srv, bucket, hc, readPath{hc: hc, ping: n.URL + "/api/v1/ping",
		url: func(key string) string { return keyURL(n, bucket, key) }})
}

// readPath is one way of reading an origin bucket's keys through a node.
type readPath struct {
	name string       // prefix of its sub-benchmarks' names: <name>first, <name>repeat
	hc   *http.Client // adds the credentials the node asks for, if any
	ping string       // a cheap URL on the same server, answered 200
	url  func(key string) string
}

// benchClient returns the one HTTP client of a benchmark's paths, so that
// they differ only in the server. Compression off: the bodies are random
// and the bytes counted are the body's. A 64 KiB read buffer takes large
// bodies off the socket in few system calls.
func benchClient(b *testing.B) *http.Client {
	tr := &http.Transport{DisableCompression: true, ReadBufferSize: 64 << 10}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// benchKeyGets runs, for each size, path=minio (a presigned GET straight
// from srv, by hc) and, for each of paths, its first and repeat
// sub-benchmarks (see BenchmarkKeyGet).
func benchKeyGets(b *testing.B, srv *testminio.Server, bucket string, hc *http.Client, paths ...readPath) {
	ctx := context.Background()
	seq := 0 // of the keys made for first GETs, across paths and sizes
	for _, size := range []struct {
		name string
		n    int64
	}{{"1KiB", 1 << 10}, {"1MiB", 1 << 20}, {"256MiB", 256 << 20}} {
		b.Run("size="+size.name, func(b *testing.B) {
			// Made here, not above, so that a -bench pattern selecting
			// one size uploads only that one.
			src := "src/" + size.name
			if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(src),
				Body: benchData(size.n), ContentLength: aws.Int64(size.n)}, streamed); err != nil {
				b.Fatalf("put %s: %v", src, err)
			}

			b.Run("path=minio", func(b *testing.B) {
				req, err := s3.NewPresignClient(srv.Client()).PresignGetObject(ctx,
					&s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(src)}, s3.WithPresignExpires(time.Hour))
				if err != nil {
					b.Fatal(err)
				}
				getBody(b, hc, req.URL, size.n, "") // connect outside the timer, as the other paths do
				b.SetBytes(size.n)
				var ttfb time.Duration
				b.ResetTimer()
				for range b.N {
					ttfb += getBody(b, hc, req.URL, size.n, "")
				}
				reportTTFB(b, ttfb)
			})

			for _, p := range paths {
				// Keys the node has never seen: each iteration reads a
				// fresh server-side copy of the source, so every GET is a
				// true miss that the node reads through from MinIO.
				b.Run("path="+p.name+"first", func(b *testing.B) {
					getBody(b, p.hc, p.ping, -1, "")
					b.SetBytes(size.n)
					var ttfb time.Duration
					b.ResetTimer()
					for range b.N {
						b.StopTimer()
						seq++
						key := fmt.Sprintf("first/%s/%d", size.name, seq)
						if _, err := srv.Client().CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
							CopySource: aws.String(bucket + "/" + src)}); err != nil {
							b.Fatalf("copy to %s: %v", key, err)
						}
						b.StartTimer()
						ttfb += getBody(b, p.hc, p.url(key), size.n, "remote")
						b.StopTimer()
						// The node finishes the copy (checksum, fsync,
						// journal) after the last byte is sent; let it, so
						// that the next timed GET does not share the
						// machine with it.
						waitLocal(b, p.hc, p.url(key))
						b.StartTimer()
					}
					b.StopTimer()
					reportTTFB(b, ttfb)
				})

				b.Run("path="+p.name+"repeat", func(b *testing.B) {
					url := p.url(src)
					getBody(b, p.hc, url, size.n, "")
					waitLocal(b, p.hc, url)
					b.SetBytes(size.n)
					var ttfb time.Duration
					b.ResetTimer()
					for range b.N {
						ttfb += getBody(b, p.hc, url, size.n, "local")
					}
					reportTTFB(b, ttfb)
				})
			}
		})
	}
}

// benchData returns a reader of n deterministic pseudo-random bytes,
// generated as they are read, so that even the largest object is never
// held in memory, and nothing on the way can compress it.
func benchData(n int64) io.Reader {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(n))
	return io.LimitReader(mrand.NewChaCha8(seed), n)
}

// streamed lets PutObject send a body it cannot seek, over plain HTTP:
// the payload is not hashed in advance (that would need a second pass),
// and no checksum trailer is added (the SDK sends those over TLS only).
func streamed(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
}

// getBody GETs url and reads the body to its end, failing b unless the
// answer is 200 with want bytes (any number when want is negative) from
// source (when given: see servedFrom). It returns the time from sending
// the request to the body's first byte.
func getBody(b *testing.B, hc *http.Client, url string, want int64, source string) time.Duration {
	b.Helper()
	start := time.Now()
	resp, err := hc.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		b.Fatalf("GET %s: %d %s", url, resp.StatusCode, msg)
	}
	if got := servedFrom(resp.Header); source != "" && got != source {
		b.Fatalf("GET %s: served from %q, want %q", url, got, source)
	}
	body := &firstByte{r: resp.Body}
	got, err := io.Copy(io.Discard, body)
	if err != nil || want >= 0 && got != want {
		b.Fatalf("GET %s: read %d bytes of %d: %v", url, got, want, err)
	}
	return body.at.Sub(start)
}

// firstByte notes when the first byte is read through it.
type firstByte struct {
	r  io.Reader
	at time.Time
}

func (f *firstByte) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if n > 0 && f.at.IsZero() {
		f.at = time.Now()
	}
	return n, err
}

// waitLocal waits until the node serves url from its own disk, which it
// does once the body it read through is committed. A one-byte range keeps
// the probe cheap.
func waitLocal(b *testing.B, hc *http.Client, url string) {
	b.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Range", "bytes=0-0")
	for deadline := time.Now().Add(time.Minute); ; {
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if servedFrom(resp.Header) == "local" {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not served locally a minute after its first GET (last answer %d from %q)",
				url, resp.StatusCode, servedFrom(resp.Header))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// servedFrom is where a node says it took an answer's body from (local,
// peer or remote): the REST API's X-Meta-Source header, or the S3
// endpoint's X-Objstore-Source.
func servedFrom(h http.Header) string {
	if src := h.Get("X-Meta-Source"); src != "" {
		return src
	}
	return h.Get("X-Objstore-Source")
}

// reportTTFB reports the mean time to first byte of b's iterations.
func reportTTFB(b *testing.B, total time.Duration) {
	b.ReportMetric(total.Seconds()*1e3/float64(b.N), "ttfb-ms")
}
