package api

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Only time spent waiting for the client counts against the minimum body
// rate: a server that takes its time before reading (an upload slot, a
// lock) does not turn a client's prompt body into a 408, while a client
// that trickles is cut off.
func TestBodyRateCountsOnlyTheClient(t *testing.T) {
	l := Limits{MinBodyRate: 1 << 20, BodyWindow: 300 * time.Millisecond}.withDefaults()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := newRateBody(w, r.Body, l)
		time.Sleep(time.Second) // the server is busy, not the client
		if _, err := io.ReadAll(body); err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, ErrSlowBody) {
				code = http.StatusRequestTimeout
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "text/plain", strings.NewReader("a prompt body"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a prompt body behind a slow server: %d", resp.StatusCode)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("x"))
		time.Sleep(3 * time.Second)
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, srv.URL, pr)
	req.ContentLength = 1000
	resp, err = http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("a trickling body: %d, want 408", resp.StatusCode)
		}
	}
}
