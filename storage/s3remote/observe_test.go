package s3remote_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/objstore/objstore/storage"
	"github.com/objstore/objstore/storage/s3remote"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu       sync.Mutex
	requests map[string]int // "operation outcome"
	read     int
}

func (r *recorder) Request(operation, outcome string, elapsed time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if elapsed <= 0 {
		outcome += " (no time)"
	}
	r.requests[operation+" "+outcome]++
}

func (r *recorder) BodyRead(n int) {
	r.mu.Lock()
	r.read += n
	r.mu.Unlock()
}

// The observer hears of every request to S3, by operation and outcome,
// and of every byte of the bodies read back.
func TestObserverSeesEveryRequest(t *testing.T) {
	rec := &recorder{requests: map[string]int{}}
	r, _ := newRemote(t, s3remote.Config{Observer: rec})
	ctx := t.Context()
	body := strings.Repeat("observed ", 1000)
	if err := r.Put(ctx, "k", strings.NewReader(body), int64(len(body)), nil); err != nil {
		t.Fatal(err)
	}
	rc, _, err := r.Get(ctx, "k", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != body {
		t.Fatalf("get: %d bytes, %v", len(got), err)
	}
	if _, err := r.Stat(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat of a missing key: %v", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	r.Stat(canceled, "k")

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, want := range []string{"PutObject ok", "GetObject ok", "HeadObject not_found", "HeadObject canceled"} {
		if rec.requests[want] != 1 {
			t.Errorf("%q seen %d times; all: %v", want, rec.requests[want], rec.requests)
		}
	}
	if rec.read < len(body) {
		t.Errorf("bodies read: %d bytes, want at least %d", rec.read, len(body))
	}
}
