package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/node"
	"github.com/objstore/objstore/storage"
)

// newServer runs the API over a real node whose remote is a directory.
func newServer(t testing.TB) (*httptest.Server, *node.Node) {
	t.Helper()
	dir := t.TempDir()
	remote, err := storage.NewDirRemote(filepath.Join(dir, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(context.Background(), node.Config{
		StateDir: filepath.Join(dir, "state"), FilesDir: filepath.Join(dir, "files"),
		Remote: remote, ScrubInterval: -1, MaxObjectSize: 1 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewPublic(Config{Store: n, Version: "test"}))
	t.Cleanup(func() { srv.Close(); n.Close() })
	return srv, n
}

func do(t testing.TB, method, url string, hdr map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestStatusOfEachKind(t *testing.T) {
	cases := map[error]int{
		node.ErrInvalid:            400,
		node.ErrNotFound:           404,
		node.ErrDeleted:            404,
		node.ErrTooLarge:           413,
		node.ErrConflict:           409,
		node.ErrNoSpace:            507,
		node.ErrRemote:             502,
		node.ErrRemoteUnavailable:  503,
		node.ErrClosed:             503,
		errors.New("disk on fire"): 500,
	}
	for kind, want := range cases {
		if got := status(fmt.Errorf("op: %w", kind)); got != want {
			t.Errorf("%v: status %d, want %d", kind, got, want)
		}
	}
}

func TestRoundTripThroughHandler(t *testing.T) {
	srv, _ := newServer(t)
	id := ulid.Make().String()
	resp, body := do(t, "POST", srv.URL+"/api/v1/put", map[string]string{
		HeaderID: id, HeaderName: "page.html", HeaderLevel: "1", HeaderUserMeta: `{"k":"v"}`}, "<p>hi</p>")
	if resp.StatusCode != 200 {
		t.Fatalf("put: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, "GET", srv.URL+"/api/v1/get/"+id, nil, "")
	if resp.StatusCode != 200 || body != "<p>hi</p>" || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("get: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get(HeaderUserMeta) != `{"k":"v"}` || resp.Header.Get(HeaderLevel) != "1" {
		t.Errorf("headers: %v", resp.Header)
	}
}

func TestInternalErrorsStayInTheLog(t *testing.T) {
	rec := httptest.NewRecorder()
	s := &server{log: slog.New(slog.DiscardHandler)}
	req := httptest.NewRequest("GET", "/api/v1/stats", nil)
	s.fail(rec, req, errors.New("open /secret/path: permission denied"))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("500 leaked internals: %d %s", rec.Code, rec.Body.String())
	}
}

type panicStore struct{ Store }

func (panicStore) Stats(context.Context) (node.Stats, error) { panic("bug") }

func TestPanicBecomes500(t *testing.T) {
	_, n := newServer(t)
	h := NewPublic(Config{Store: panicStore{n}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/stats", nil))
	if rec.Code != 500 {
		t.Errorf("status %d, want 500", rec.Code)
	}
}

// The status recorder must hand io.Copy the server's ReaderFrom, or
// ServeContent loses the sendfile path.
func TestRecorderKeepsReaderFrom(t *testing.T) {
	var w http.ResponseWriter = &StatusRecorder{ResponseWriter: httptest.NewRecorder()}
	if _, ok := w.(io.ReaderFrom); !ok {
		t.Fatal("StatusRecorder does not implement io.ReaderFrom")
	}
	n, err := w.(io.ReaderFrom).ReadFrom(strings.NewReader("abc"))
	if n != 3 || err != nil || w.(*StatusRecorder).Status != 200 {
		t.Errorf("ReadFrom = %d, %v", n, err)
	}
}

func TestParseHelpers(t *testing.T) {
	for _, s := range []string{"1", "true", "TRUE", " 1 "} {
		if !parseFlag(s) {
			t.Errorf("parseFlag(%q) = false", s)
		}
	}
	for _, s := range []string{"", "0", "yes", "false"} {
		if parseFlag(s) {
			t.Errorf("parseFlag(%q) = true", s)
		}
	}
	for _, s := range []string{"-1", "3", "1.5", "x"} {
		if _, err := parseLevel(s); !errors.Is(err, node.ErrInvalid) {
			t.Errorf("parseLevel(%q) = %v", s, err)
		}
	}
	if _, err := parseID("ID", strings.ToLower(ulid.Make().String())); err != nil {
		t.Errorf("lower-case ULID rejected: %v", err)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	srv, _ := newServer(t)
	resp, body := do(t, "GET", srv.URL+"/api/v1/put", nil, "")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" || !strings.Contains(body, "error") {
		t.Errorf("GET put: %d %q %s", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
}

// BenchmarkServeGet measures local hits over HTTP on loopback, through
// ServeContent and the sendfile path.
func BenchmarkServeGet(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			srv, _ := newServer(b)
			id := ulid.Make().String()
			resp, body := do(b, "POST", srv.URL+"/api/v1/put", map[string]string{HeaderID: id}, strings.Repeat("z", size))
			if resp.StatusCode != 200 {
				b.Fatalf("put: %d %s", resp.StatusCode, body)
			}
			url := srv.URL + "/api/v1/get/" + id
			b.SetBytes(int64(size))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := http.Get(url)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}

// Object answers are downloads that browsers neither sniff nor render.
func TestObjectSafetyHeaders(t *testing.T) {
	for name, want := range map[string]string{
		"report.html": `attachment; filename=report.html`,
		"":            "attachment",
		"été.txt":     `attachment; filename*=utf-8''%C3%A9t%C3%A9.txt`,
		`a"b.txt`:     `attachment; filename="a\"b.txt"`,
	} {
		h := http.Header{}
		setObjectSafety(h, name)
		if got := h.Get("Content-Disposition"); got != want {
			t.Errorf("%q: Content-Disposition %q, want %q", name, got, want)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") {
			t.Errorf("%q: %v", name, h)
		}
	}
}
