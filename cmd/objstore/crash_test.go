package main_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/internal/testnode"
	"github.com/objstore/objstore/journal"
)

// soakTime is how long the crash tests run: short in make test,
// OBJSTORE_SOAK=10m (say) for a soak.
func soakTime(t *testing.T, short time.Duration) time.Duration {
	if v := os.Getenv("OBJSTORE_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("OBJSTORE_SOAK: %v", err)
		}
		return d
	}
	return short
}

// A node killed with SIGKILL again and again while clients write objects
// of every level through both nodes loses no acknowledged write, its
// journal passes bbolt's consistency check after every kill, and no read
// ever returns a body other than the one acknowledged.
func TestKillUnderLoad(t *testing.T) {
	remote := newRemote(t)
	a := clusterNode(t, remote)
	b := clusterNode(t, remote, a)
	eventually(t, "a and b joined", func() bool { return aliveCount(t, a) == 2 && aliveCount(t, b) == 2 })
	type acked struct{ body string }
	var (
		mu      sync.Mutex
		written = map[string]acked{}
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		writes  atomic.Int64
		failed  atomic.Int64
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := []*testnode.Node{a, b}[(w+i)%2]
				id := ulid.Make().String()
				body := fmt.Sprintf("%s level %d %s", id, i%3, strings.Repeat("k", 1000*(1+i%50)))
				// Not put: only the test's goroutine may stop the test.
				resp, _, err := n.Do(testnode.Request{Method: "POST", Path: "/api/v1/put", Body: strings.NewReader(body),
					Header: map[string]string{"X-Meta-ID": id, "X-Meta-ConsistencyLevel": fmt.Sprint(i % 3)}})
				writes.Add(1)
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
					continue
				}
				mu.Lock()
				written[id] = acked{body}
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(soakTime(t, 20*time.Second))
	kills := 0
	for time.Now().Before(deadline) {
		time.Sleep(2 * time.Second)
		b.Kill()
		kills++
		j, err := journal.Open(journal.Config{Path: b.StateDir() + "/journal.db"})
		if err != nil {
			t.Fatalf("journal after kill %d: %v", kills, err)
		}
		if err := j.Check(); err != nil {
			t.Errorf("journal after kill %d: %v", kills, err)
		}
		j.Close()
		b.Start()
	}
	close(stop)
	wg.Wait()
	eventually(t, "b whole again", func() bool { return aliveCount(t, a) == 2 && aliveCount(t, b) == 2 })
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d kills, %d writes (%d failed or cut off), %d acknowledged", kills, writes.Load(), failed.Load(), len(written))
	for id, w := range written {
		for _, n := range []*testnode.Node{a, b} {
			var got string
			var code int
			eventually(t, "acknowledged write readable", func() bool {
				resp, body := get(t, n, id, nil)
				code, got = resp.StatusCode, body
				return code == 200
			})
			if got != w.body {
				t.Fatalf("%s on %s: %d bytes, not the %d acknowledged", id, n.PublicAddr, len(got), len(w.body))
			}
		}
	}
}

// A crash at each step of the write path (before and after the body's
// fsync, after its rename, after the upload, before and after the journal
// commit), a few times each: after a restart every acknowledged write reads
// back whole, no journal entry points at a missing or partial body, and
// nothing is left half-written.
func TestCrashAtEachWriteStep(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	args := []string{"--bucket", bucket, "--s3-endpoint", srv.Endpoint(), "--s3-prefix", "objects/"}
	for _, step := range []string{"before-sync", "after-sync", "after-rename", "after-upload", "before-commit", "after-commit"} {
		for run := range 4 {
			t.Run(fmt.Sprintf("%s/%d", step, run), func(t *testing.T) {
				crashAfter := 1 + run*3
				n := testnode.Start(t, testnode.Options{Args: args, Env: append(srv.Env(),
					"OBJSTORE_FAULT_CRASH_AT="+step, fmt.Sprintf("OBJSTORE_FAULT_CRASH_AFTER=%d", crashAfter))})
				written := map[string]string{}
				for i := 0; i < 200 && !n.Exited(); i++ {
					id := ulid.Make().String()
					body := fmt.Sprintf("%s %d %s", id, i, strings.Repeat("c", 500*(1+i%40)))
					resp, _, err := n.Do(testnode.Request{Method: "POST", Path: "/api/v1/put", Body: strings.NewReader(body),
						Header: map[string]string{"X-Meta-ID": id, "X-Meta-ConsistencyLevel": fmt.Sprint(i % 3)}})
					if err == nil && resp.StatusCode == http.StatusOK {
						written[id] = body
					}
				}
				if !n.WaitExit(30 * time.Second) {
					t.Fatalf("the node did not crash at %s", step)
				}
				n.SetEnv(srv.Env()...)
				n.Start()
				for id, body := range written {
					if resp, got := get(t, n, id, nil); resp.StatusCode != 200 || got != body {
						t.Errorf("acknowledged %s after a crash at %s: %d, %d bytes", id, step, resp.StatusCode, len(got))
					}
				}
				// The start-up reconcile found no record without its body,
				// and the start-up scrub no body that differs from its
				// record.
				logs := strings.Split(n.Log(), "reconciled files with journal")
				if last := logs[len(logs)-1]; !strings.Contains(last, "missing_bodies=0") {
					t.Errorf("after a crash at %s, records without bodies: %s", step, strings.SplitN(last, "\n", 2)[0])
				}
				eventually(t, "start-up scrub done", func() bool { return strings.Count(n.Log(), "scrub done") >= 1 })
				if strings.Contains(n.Log(), "damaged body") {
					t.Errorf("after a crash at %s the scrub found a damaged body", step)
				}
				t.Logf("%d writes acknowledged before the crash", len(written))
			})
		}
	}
}
