package node

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// pairEnv is two solo nodes sharing one remote, synced by calling
// cluster.Sync directly, node to node, as the sync loop does over HTTP.
func pairEnv(t *testing.T, skewA, skewB time.Duration) (a, b *testEnv) {
	t.Helper()
	dir := t.TempDir()
	dr, err := storage.NewDirRemote(filepath.Join(dir, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string, skew time.Duration) *testEnv {
		env := &testEnv{t: t, dir: filepath.Join(dir, name), remote: &countingRemote{Remote: dr}}
		env.now = func() time.Time { return time.Now().Add(skew) }
		env.start()
		t.Cleanup(func() { env.node.Close() })
		return env
	}
	return mk("a", skewA), mk("b", skewB)
}

func syncPair(t *testing.T, a, b *Node) cluster.SyncStats {
	t.Helper()
	st, err := cluster.Sync(context.Background(), a, b)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func sameTrees(t *testing.T, a, b *Node) bool {
	t.Helper()
	ra, _ := a.journal.TreeChildren(0, []uint32{0})
	rb, _ := b.journal.TreeChildren(0, []uint32{0})
	return reflect.DeepEqual(ra, rb)
}

// A node whose clock is behind (within the maximum offset) still wins
// with a write made after it saw the other node's write: the hybrid
// logical clock moved past what it observed.
func TestLaterWriteWinsDespiteSkewedClock(t *testing.T) {
	ahead, behind := pairEnv(t, 450*time.Millisecond, 0)
	id := ulid.Make()
	ahead.put(id, journal.LevelRemote, "written by the fast clock")
	syncPair(t, ahead.node, behind.node)
	if _, err := behind.node.Meta(context.Background(), id); err != nil {
		t.Fatalf("not synced: %v", err)
	}
	// The slow node replaces the object, then deletes another one it saw.
	behind.put(id, journal.LevelRemote, "written later by the slow clock")
	other := ulid.Make()
	ahead.put(other, journal.LevelRemote, "to be deleted by the slow clock")
	syncPair(t, behind.node, ahead.node)
	if _, err := behind.node.Delete(context.Background(), other, false); err != nil {
		t.Fatal(err)
	}
	syncPair(t, behind.node, ahead.node)
	for _, env := range []*testEnv{ahead, behind} {
		got, _, err := env.read(id, false)
		if err != nil || got != "written later by the slow clock" {
			t.Errorf("%s: %q, %v; the later write lost", env.dir, got, err)
		}
		if _, err := env.node.Meta(context.Background(), other); !errors.Is(err, ErrDeleted) {
			t.Errorf("%s: the later delete lost: %v", env.dir, err)
		}
	}
	if !sameTrees(t, ahead.node, behind.node) {
		t.Error("journals differ after sync")
	}
}

func TestSyncConvergesBothWays(t *testing.T) {
	a, b := pairEnv(t, 0, 0)
	ctx := context.Background()
	var shared []journal.Entry
	for i := range 500 {
		shared = append(shared, journal.Entry{ID: ulid.Make(), Version: journal.Version{Time: journal.Timestamp{Wall: int64(i + 1)}, Node: a.node.ID()},
			Origin: a.node.ID(), Name: "shared", Size: 1, Level: journal.LevelRemote})
	}
	a.node.Merge(ctx, shared)
	b.node.Merge(ctx, shared)
	for range 30 {
		a.put(ulid.Make(), journal.LevelLocal, "only on a")
		b.put(ulid.Make(), journal.LevelLocal, "only on b")
	}
	a.node.Delete(ctx, shared[7].ID, false)
	b.node.Delete(ctx, shared[8].ID, false)
	st := syncPair(t, a.node, b.node)
	if st.Pulled != 31 || st.Pushed != 31 {
		t.Errorf("sync moved %d/%d entries, want 31 each way", st.Pulled, st.Pushed)
	}
	if !sameTrees(t, a.node, b.node) {
		t.Fatal("journals differ after one round")
	}
	if st := syncPair(t, b.node, a.node); st.Leaves != 0 || st.Pulled+st.Pushed != 0 {
		t.Errorf("second round found work: %+v", st)
	}
	for _, env := range []*testEnv{a, b} {
		for _, id := range []ulid.ULID{shared[7].ID, shared[8].ID} {
			if _, err := env.node.Meta(ctx, id); !errors.Is(err, ErrDeleted) {
				t.Errorf("delete of %s lost on %s: %v", id, env.dir, err)
			}
		}
	}
}

// A level-2 entry merged from a peer makes this node fetch a copy; a
// tombstone merged from a peer removes it again.
func TestMergeReplicatesLevel2AndDropsDeleted(t *testing.T) {
	a, b := pairEnv(t, 0, 0)
	id := ulid.Make()
	a.put(id, journal.LevelFull, "copy me")
	syncPair(t, a.node, b.node)
	waitFor(t, func() bool {
		_, err := b.node.journal.Blob(id)
		return err == nil
	})
	got, obj, err := b.read(id, false)
	if err != nil || got != "copy me" || obj.Source != SourceLocal {
		t.Fatalf("replica: %q from %v, %v", got, obj, err)
	}
	a.node.Delete(context.Background(), id, false)
	syncPair(t, a.node, b.node)
	if _, err := b.node.journal.Blob(id); !errors.Is(err, journal.ErrNotFound) {
		t.Errorf("deleted object's copy kept: %v", err)
	}
	var files int
	b.node.disk.Walk(context.Background(), func(string, ulid.ULID, string, bool) error { files++; return nil })
	if files != 0 {
		t.Errorf("%d body files left after the delete", files)
	}
}

func TestMergeIgnoresExpiredTombstones(t *testing.T) {
	a, _ := pairEnv(t, 0, 0)
	old := journal.Entry{ID: ulid.Make(), Deleted: true,
		Version: journal.Version{Time: journal.Timestamp{Wall: time.Now().Add(-30 * 24 * time.Hour).UnixNano()}, Node: ulid.Make()}}
	n, err := a.node.Merge(context.Background(), []journal.Entry{old})
	if err != nil || n != 0 {
		t.Fatalf("merge = %d, %v", n, err)
	}
	if _, err := a.node.Meta(context.Background(), old.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("an expired tombstone came back: %v", err)
	}
}

func TestOpenLocalNeverFetches(t *testing.T) {
	a, b := pairEnv(t, 0, 0)
	id := ulid.Make()
	a.put(id, journal.LevelRemote, "only a holds it")
	syncPair(t, a.node, b.node)
	if _, err := b.node.OpenLocal(context.Background(), id, nil); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "does not hold") {
		t.Errorf("OpenLocal on a node without the body: %v", err)
	}
	obj, err := a.node.OpenLocal(context.Background(), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj.Close()
}

// Entries from a peer are checked as a client's write is: forged or broken
// ones are refused, the journal keeps what it had, and the clock does not
// move. A tombstone stamped in the far future cannot delete anything.
func TestMergeRefusesForgedEntries(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	id := ulid.Make()
	env.put(id, journal.LevelLocal, "a level-0 body only this node holds")
	before := env.node.clock.Now()
	forger := ulid.Make()
	far := func(d time.Duration) journal.Version {
		return journal.Version{Time: journal.Timestamp{Wall: time.Now().Add(d).UnixNano()}, Node: forger}
	}
	forged := []journal.Entry{
		{ID: id, Version: journal.Version{Time: journal.Timestamp{Wall: math.MaxInt64, Logical: math.MaxUint32}, Node: forger}, Deleted: true},
		{ID: id, Version: far(time.Hour), Origin: forger, Name: "x", Size: 1, Level: journal.LevelLocal, Sum: [32]byte{1}},
		{ID: ulid.Make(), Version: far(0), Origin: forger, Name: strings.Repeat("n", 300), Level: journal.LevelRemote},
		{ID: ulid.Make(), Version: far(0), Origin: forger, Name: "bad\x00name", Level: journal.LevelRemote},
		{ID: ulid.Make(), Version: far(0), Origin: forger, Name: "big", Size: -1, Level: journal.LevelRemote},
		{ID: ulid.Make(), Version: far(0), Origin: forger, Name: "lvl", Level: 7},
		{ID: ulid.Make(), Version: far(0), Name: "no origin", Level: journal.LevelRemote},
		{ID: ulid.Make(), Version: journal.Version{Node: forger}, Origin: forger, Name: "no time", Level: journal.LevelRemote},
		{ID: ulid.Make(), Version: far(0), Origin: forger, Name: "meta", Level: journal.LevelRemote,
			UserMeta: map[string]string{"k": strings.Repeat("v", 2000)}},
	}
	n, err := env.node.Merge(ctx, forged)
	if err != nil || n != 0 {
		t.Fatalf("Merge applied %d, err %v; want nothing applied", n, err)
	}
	if got := env.node.counters.mergeRefused.Load(); got != int64(len(forged)) {
		t.Errorf("refused %d, want %d", got, len(forged))
	}
	if got, _, err := env.read(id, false); err != nil || got != "a level-0 body only this node holds" {
		t.Fatalf("the body after forged entries: %q, %v", got, err)
	}
	if after := env.node.clock.Now(); after.Wall-before.Wall > int64(time.Minute) {
		t.Fatalf("the clock moved from %v to %v", before, after)
	}
	// A delete still applies and answers truthfully.
	if _, err := env.node.Delete(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	if _, err := env.node.Meta(ctx, id); !errors.Is(err, ErrDeleted) {
		t.Fatalf("after delete: %v", err)
	}
}

// A delete the journal does not apply (it holds a newer version) fails,
// and the body the journal points at stays.
func TestDeleteNotAppliedFails(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	id := ulid.Make()
	env.put(id, journal.LevelLocal, "kept")
	e, err := env.node.journal.Entry(id)
	if err != nil {
		t.Fatal(err)
	}
	// Newer than any reading the clock will give for a while, as a
	// version written before a restart by a clock that was ahead.
	e.Version.Time = journal.Timestamp{Wall: time.Now().Add(time.Hour).UnixNano()}
	if err := env.node.journal.Update(func(tx *journal.Tx) error { _, err := tx.Apply(e); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := env.node.Delete(ctx, id, false); !errors.Is(err, ErrConflict) {
		t.Fatalf("delete against a newer version: %v, want ErrConflict", err)
	}
	if got, _, err := env.read(id, false); err != nil || got != "kept" {
		t.Fatalf("body after a refused delete: %q, %v", got, err)
	}
}

// After a restart the clock resumes above every version in the journal,
// even when the wall clock stepped back while the node was down.
func TestClockResumesAboveJournal(t *testing.T) {
	env := newEnv(t)
	id := ulid.Make()
	env.put(id, journal.LevelLocal, "first")
	first, _ := env.node.journal.Entry(id)
	env.node.Close()
	env.now = func() time.Time { return time.Now().Add(-time.Hour) } // stepped back
	env.start()
	env.put(id, journal.LevelLocal, "second")
	second, _ := env.node.journal.Entry(id)
	if second.Version.Compare(first.Version) <= 0 {
		t.Fatalf("the write after the restart (%v) is ordered before the one before it (%v)", second.Version, first.Version)
	}
	if got, _, err := env.read(id, false); err != nil || got != "second" {
		t.Fatalf("read %q, %v", got, err)
	}
}

// A level-2 body this node could not pull (its quota was full of sole
// copies) is pulled by itself once room is made, and one still pending
// when the node stops is pulled after it starts again: pending pulls are
// derived from the journal, not kept in memory only.
func TestLevel2PullsAreKeptUntilDone(t *testing.T) {
	dir := t.TempDir()
	dr, err := storage.NewDirRemote(filepath.Join(dir, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	a := &testEnv{t: t, dir: filepath.Join(dir, "a"), remote: &countingRemote{Remote: dr}}
	a.start()
	t.Cleanup(func() { a.node.Close() })
	ctx := context.Background()
	openB := func(maxDisk int64) *Node {
		b, err := Open(ctx, Config{StateDir: filepath.Join(dir, "b", "state"), FilesDir: filepath.Join(dir, "b", "files"),
			Remote: storage.WithPrefix(dr, "objects/"), ScrubInterval: -1, MaxDisk: maxDisk})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := openB(64 << 10)
	// b's quota is full of its own level-0 bodies, which it never evicts.
	var sole []ulid.ULID
	for range 2 {
		id := ulid.Make()
		if _, err := b.Put(ctx, PutRequest{ID: id, Body: strings.NewReader(strings.Repeat("s", 30<<10)), Size: 30 << 10}); err != nil {
			t.Fatal(err)
		}
		sole = append(sole, id)
	}
	full := ulid.Make()
	a.put(full, journal.LevelFull, strings.Repeat("2", 20<<10))
	entries, _ := a.node.Entries(ctx, []ulid.ULID{full})
	if _, err := b.Merge(ctx, entries); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return b.counters.repairErrors.Load() > 0 })
	if b.RepairBacklog() != 1 {
		t.Fatalf("backlog %d, want the one level-2 body", b.RepairBacklog())
	}
	// Room is made: the pull completes without anyone reading.
	if _, err := b.Delete(ctx, sole[0], false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { bl, err := b.journal.Blob(full); return err == nil && bl.Size == 20<<10 })
	// (The loop clears its entry once the pull it ran returns.)
	waitFor(t, func() bool { return b.RepairBacklog() == 0 })

	// Another level-2 body arrives while b is full again, and b stops
	// before it can pull it; started with room, it pulls it by itself.
	other := ulid.Make()
	if _, err := b.Put(ctx, PutRequest{ID: ulid.Make(), Body: strings.NewReader(strings.Repeat("s", 10<<10)), Size: 10 << 10}); err != nil {
		t.Fatal(err)
	}
	a.put(other, journal.LevelFull, strings.Repeat("3", 20<<10))
	entries, _ = a.node.Entries(ctx, []ulid.ULID{other})
	b.Merge(ctx, entries)
	b.Close()
	b = openB(1 << 20)
	defer b.Close()
	waitFor(t, func() bool { _, err := b.journal.Blob(other); return err == nil })
}
