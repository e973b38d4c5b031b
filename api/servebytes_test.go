package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// ServeBytes answers what it takes exactly as http.ServeContent does, and
// leaves every other request to it untouched.
func TestServeBytesAsServeContent(t *testing.T) {
	modified := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	bodies := map[string][]byte{
		"":          []byte("<html><body>sniffed as HTML</body></html>"),
		"notes.txt": []byte("plain text, typed by its name"),
		"blob":      bytes.Repeat([]byte{0, 1, 2, 3}, 16<<10),
		"empty":     {},
	}
	for name, data := range bodies {
		for _, method := range []string{"GET", "HEAD"} {
			for _, mod := range []time.Time{modified, {}} {
				want := httptest.NewRecorder()
				http.ServeContent(want, httptest.NewRequest(method, "/x", nil), name, mod, bytes.NewReader(data))
				got := httptest.NewRecorder()
				if !ServeBytes(got, httptest.NewRequest(method, "/x", nil), name, mod, data) {
					t.Fatalf("%s %q: refused a plain request", method, name)
				}
				if got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
					t.Errorf("%s %q: %d, %d bytes; ServeContent %d, %d bytes", method, name, got.Code, got.Body.Len(), want.Code, want.Body.Len())
				}
				for _, h := range []string{"Content-Type", "Content-Length", "Last-Modified", "Accept-Ranges"} {
					if g, w := got.Header().Get(h), want.Header().Get(h); g != w {
						t.Errorf("%s %q: %s %q, ServeContent %q", method, name, h, g, w)
					}
				}
			}
		}
	}
	for _, h := range []string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"} {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set(h, "bytes=0-1")
		w := httptest.NewRecorder()
		if ServeBytes(w, r, "x", modified, []byte("abc")) || w.Body.Len() > 0 || len(w.Header()) > 0 {
			t.Errorf("a request with %s was answered by ServeBytes", h)
		}
	}
	if ServeBytes(httptest.NewRecorder(), httptest.NewRequest("POST", "/x", nil), "x", modified, []byte("abc")) {
		t.Error("a POST was answered by ServeBytes")
	}
}
