package main_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testnode"
	"github.com/objstore/objstore/journal"
)

// withJournal opens a stopped node's journal.
func withJournal(t *testing.T, n *testnode.Node, fn func(*journal.Journal)) {
	t.Helper()
	j, err := journal.Open(journal.Config{Path: filepath.Join(n.StateDir(), "journal.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	fn(j)
}

// A node away for longer than the tombstone retention does not bring back
// an object deleted (and its tombstone compacted) while it was away: it
// pushes nothing, refuses writes and readiness with a message saying to
// wipe it, and after `objstore wipe` it rejoins and agrees with its peers.
func TestStaleNodeDoesNotResurrect(t *testing.T) {
	remote := newRemote(t)
	a := secureNode(t, remote, secretEnv(4), nil)
	b := secureNode(t, remote, secretEnv(4), nil, a)
	eventually(t, "a and b joined", func() bool { return aliveCount(t, a) == 2 && aliveCount(t, b) == 2 })
	id := ulid.Make().String()
	mustPut(t, a, id, 1, "doomed.txt", "deleted while b was away")
	eventually(t, "b knows it", func() bool { s, _ := metaOn(t, b, id); return s == 200 })
	b.Stop()

	// While b is away, the object is deleted, and a week later its
	// tombstone is compacted: a has forgotten it ever existed.
	if resp, _, _ := a.Do(testnode.Request{Method: "POST", Path: "/api/v1/delete/" + id}); resp.StatusCode != 200 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	a.Stop()
	oid, _ := ulid.Parse(id)
	withJournal(t, a, func(j *journal.Journal) {
		if err := j.Update(func(tx *journal.Tx) error { return tx.Forget(oid) }); err != nil {
			t.Fatal(err)
		}
	})
	withJournal(t, b, func(j *journal.Journal) { j.SetLastSync(time.Now().Add(-8 * 24 * time.Hour)) })
	a.Start()
	b.Start()
	eventually(t, "b is back in the member list", func() bool { return aliveCount(t, a) == 2 })

	resp, body, _ := b.Do(testnode.Request{Path: "/readyz"})
	if resp.StatusCode != 503 || !strings.Contains(string(body), "wiped") {
		t.Errorf("stale b /readyz: %d %s", resp.StatusCode, body)
	}
	if resp, body := put(t, b, ulid.Make().String(), 1, "x.txt", "x", nil); resp.StatusCode != 503 {
		t.Errorf("a write to stale b: %d %s", resp.StatusCode, body)
	}
	time.Sleep(5 * time.Second) // two sync intervals
	if s, _ := metaOn(t, a, id); s != 404 {
		t.Fatalf("the deleted object came back on a: %d", s)
	}
	if !strings.Contains(b.Log(), "objstore wipe") {
		t.Error("b's log does not say how to recover")
	}

	// Wiped, b rejoins as new and agrees with a.
	b.Stop()
	out, err := exec.Command(testnode.Binary(t), "wipe", "--state-dir", b.StateDir(), "--files-dir", b.FilesDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("wipe: %v %s", err, out)
	}
	b.Start()
	eventually(t, "b ready again", func() bool { resp, _, _ := b.Do(testnode.Request{Path: "/readyz"}); return resp.StatusCode == 200 })
	if s, _ := metaOn(t, b, id); s != 404 {
		t.Errorf("the deleted object on the wiped b: %d", s)
	}
	if s, _ := metaOn(t, a, id); s != 404 {
		t.Errorf("the deleted object on a: %d", s)
	}
}
