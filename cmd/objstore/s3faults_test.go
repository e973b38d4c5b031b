package main_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/internal/testnode"
)

// Modes of s3Proxy.
const (
	s3Pass      = iota // forward to MinIO
	s3Busy             // answer 503 SlowDown
	s3BlackHole        // hold every request, answer nothing
	s3CutBody          // forward, but cut object bodies off halfway
)

// s3Proxy stands between a node and MinIO: it counts the GETs of object
// bodies it passes on (the remote requests the node really makes), and
// misbehaves as its mode says.
type s3Proxy struct {
	URL  string
	mode atomic.Int32
	// gets counts GETs under the ULID store's prefix (objects/);
	// objectGets every GET of an object (of any key, not a listing);
	// conditional the requests carrying If-None-Match, and notModified
	// those answered 304.
	gets, objectGets         atomic.Int64
	conditional, notModified atomic.Int64
	// objectBytes counts the body bytes of object GETs sent back; rate,
	// when set, holds them to that many bytes a second.
	objectBytes, rate atomic.Int64
}

// statusWriter remembers the status an answer was written with, and
// counts (and paces, at rate bytes a second when set) its body bytes when
// n is set.
type statusWriter struct {
	http.ResponseWriter
	code int
	n    *atomic.Int64
	rate *atomic.Int64
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.n == nil {
		return s.ResponseWriter.Write(p)
	}
	var written int
	for len(p) > 0 {
		chunk := p[:min(len(p), 16<<10)]
		if r := s.rate.Load(); r > 0 {
			time.Sleep(time.Duration(int64(len(chunk)) * int64(time.Second) / r))
		}
		k, err := s.ResponseWriter.Write(chunk)
		s.n.Add(int64(k))
		written += k
		if err != nil {
			return written, err
		}
		p = p[k:]
	}
	return written, nil
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func newS3Proxy(t *testing.T, target string) *s3Proxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &s3Proxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/objects/")
		switch p.mode.Load() {
		case s3Busy:
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
		case s3BlackHole:
			select { // the client gives up first, or the test ends
			case <-r.Context().Done():
			case <-done:
			}
		case s3CutBody:
			if !body {
				rp.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			b := rec.Body.Bytes()
			w.Write(b[:len(b)/2])
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // a reset in the middle of the body
			}
		default:
			if body {
				p.gets.Add(1)
			}
			sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
			if r.Method == http.MethodGet && strings.Contains(strings.TrimPrefix(r.URL.Path, "/"), "/") &&
				!r.URL.Query().Has("list-type") && !r.URL.Query().Has("uploadId") {
				p.objectGets.Add(1)
				sw.n, sw.rate = &p.objectBytes, &p.rate
			}
			conditional := r.Header.Get("If-None-Match") != ""
			if conditional {
				p.conditional.Add(1)
			}
			rp.ServeHTTP(sw, r)
			if conditional && sw.code == http.StatusNotModified {
				p.notModified.Add(1)
			}
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	p.URL = srv.URL
	return p
}

// An S3 that answers 503, black-holes requests, or cuts bodies off
// mid-way: no write is acknowledged before S3's 200 and none leaves a
// partial object in S3 or on disk; clients get a clear 503 (or an aborted
// read, never a short body taken as whole) in bounded time; cached reads
// and level-0 writes go on; all works again once S3 does.
func TestMisbehavingS3(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	proxy := newS3Proxy(t, srv.Endpoint())
	endpoint, mode := proxy.URL, &proxy.mode
	n := testnode.Start(t, testnode.Options{Env: srv.Env(),
		Args: []string{"--bucket", bucket, "--s3-endpoint", endpoint, "--s3-prefix", "objects/", "--s3-timeout", "1s"}})
	cached := ulid.Make().String()
	mustPut(t, n, cached, 1, "cached.txt", "held on the node's disk")
	inS3 := func(id string) bool {
		_, err := srv.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("objects/" + id)})
		return err == nil
	}
	for _, m := range []struct {
		name string
		mode int32
	}{{"503", s3Busy}, {"black hole", s3BlackHole}} {
		t.Run(m.name, func(t *testing.T) {
			mode.Store(m.mode)
			defer mode.Store(s3Pass)
			id := ulid.Make().String()
			start := time.Now()
			resp, body := put(t, n, id, 1, "x.txt", strings.Repeat("y", 100<<10), nil)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("level-1 PUT with S3 %s: %d %s", m.name, resp.StatusCode, body)
			}
			t.Logf("level-1 PUT answered %d after %v", resp.StatusCode, time.Since(start).Round(time.Millisecond))
			if s, _ := metaOn(t, n, id); s != 404 {
				t.Errorf("the refused object is known: %d", s)
			}
			if resp, got := get(t, n, cached, nil); resp.StatusCode != 200 || got != "held on the node's disk" {
				t.Errorf("cached read with S3 %s: %d", m.name, resp.StatusCode)
			}
			mustPut(t, n, ulid.Make().String(), 0, "local.txt", "level 0 needs no S3")
			mode.Store(s3Pass)
			if inS3(id) {
				t.Error("a refused PUT left an object in S3")
			}
		})
	}
	t.Run("cut body", func(t *testing.T) {
		id := ulid.Make().String()
		body := strings.Repeat("cut me ", 100000)
		mustPut(t, n, id, 1, "cut.txt", body)
		if resp, b, _ := n.Do(testnode.Request{Method: "POST", Path: "/api/v1/invalidate/" + id,
			Header: map[string]string{"X-Meta-Local": "true"}}); resp.StatusCode != 200 {
			t.Fatalf("invalidate: %d %s", resp.StatusCode, b)
		}
		mode.Store(s3CutBody)
		resp, err := http.Get(n.URL + "/api/v1/get/" + id)
		if err == nil {
			got, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && rerr == nil {
				t.Fatalf("a body cut off by S3 was served as whole (%d bytes)", len(got))
			}
		}
		if _, m := metaOn(t, n, id); m["is_local"] == true {
			t.Error("the node kept a cut body")
		}
		mode.Store(s3Pass)
		if resp, got := get(t, n, id, nil); resp.StatusCode != 200 || got != body {
			t.Errorf("after S3 recovered: %d, %d bytes", resp.StatusCode, len(got))
		}
	})
	// And all works again.
	id := ulid.Make().String()
	mustPut(t, n, id, 1, "after.txt", "S3 is back")
	if !inS3(id) {
		t.Error("a PUT after S3 recovered is not in S3")
	}
}
