package journal

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
)

func rootOf(t *testing.T, j *Journal) []TreeNode {
	t.Helper()
	nodes, err := j.TreeChildren(0, []uint32{0})
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}

// leavesThatDiffer walks two trees from the root down, as anti-entropy
// does, and returns the leaves whose digests differ.
func leavesThatDiffer(t *testing.T, a, b *Journal) []uint16 {
	t.Helper()
	nodes := []uint32{0}
	for level := 0; level < TreeDepth; level++ {
		ca, err := a.TreeChildren(level, nodes)
		if err != nil {
			t.Fatal(err)
		}
		cb, _ := b.TreeChildren(level, nodes)
		var next []uint32
		for i := range ca {
			if ca[i] != cb[i] {
				next = append(next, nodes[i/TreeFanout]*TreeFanout+uint32(i%TreeFanout))
			}
		}
		nodes = next
	}
	out := make([]uint16, len(nodes))
	for i, n := range nodes {
		out[i] = uint16(n)
	}
	return out
}

func TestTreeFindsExactlyTheDifferences(t *testing.T) {
	a, b := openTest(t, ""), openTest(t, "")
	var shared []Entry
	for i := range 2000 {
		shared = append(shared, Entry{ID: ulid.Make(), Version: ver(int64(i+1), nodeA), Name: "x", Size: 1})
	}
	for _, j := range []*Journal{a, b} {
		j.Update(func(tx *Tx) error {
			for _, e := range shared {
				tx.Apply(e)
			}
			return nil
		})
	}
	if !reflect.DeepEqual(rootOf(t, a), rootOf(t, b)) {
		t.Fatal("equal journals have different trees")
	}
	if got := leavesThatDiffer(t, a, b); len(got) != 0 {
		t.Fatalf("equal journals differ in %d leaves", len(got))
	}
	// One newer version on b, one entry only on a, one tombstone on b.
	newer := shared[10]
	newer.Version = ver(99999, nodeB)
	onlyA := Entry{ID: ulid.Make(), Version: ver(5, nodeA)}
	tomb := Entry{ID: shared[20].ID, Version: ver(100000, nodeB), Deleted: true}
	apply(t, b, newer)
	apply(t, a, onlyA)
	apply(t, b, tomb)
	want := map[uint16]bool{LeafOf(newer.ID): true, LeafOf(onlyA.ID): true, LeafOf(tomb.ID): true}
	got := leavesThatDiffer(t, a, b)
	if len(got) != len(want) {
		t.Fatalf("differing leaves %v, want %v", got, want)
	}
	sums, err := b.Summaries(got)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[ulid.ULID]Version{}
	for _, s := range sums {
		seen[s.ID] = s.Version
		if !want[LeafOf(s.ID)] {
			t.Errorf("summary %s from a leaf not asked for", s.ID)
		}
	}
	if seen[newer.ID] != newer.Version || seen[tomb.ID] != tomb.Version {
		t.Error("summaries miss the changed entries")
	}
	// Bringing a in line with b makes the trees equal again.
	ents, _ := b.Entries([]ulid.ULID{newer.ID, tomb.ID, ulid.Make()})
	if len(ents) != 2 {
		t.Fatalf("entries = %d, want 2 (unknown IDs skipped)", len(ents))
	}
	for _, e := range ents {
		apply(t, a, e)
	}
	apply(t, b, onlyA)
	if got := leavesThatDiffer(t, a, b); len(got) != 0 {
		t.Errorf("after merging, %d leaves still differ", len(got))
	}
}

func TestTreeSurvivesReopenAndMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		apply(t, j, Entry{ID: ulid.Make(), Version: ver(int64(i+1), nodeA)})
	}
	before := rootOf(t, j)
	j.Close()
	// Turn the database back into schema 1 (no sync index), as an older
	// release left it.
	db, _ := bolt.Open(path, 0o600, nil)
	db.Update(func(tx *bolt.Tx) error {
		tx.DeleteBucket(bucketSync)
		return tx.Bucket(bucketMeta).Put(keySchema, []byte{0, 0, 0, 1})
	})
	db.Close()
	j = openTest(t, path)
	if after := rootOf(t, j); !reflect.DeepEqual(before, after) {
		t.Error("tree changed across reopen")
	}
	var n int
	for leaf := range TreeLeaves {
		s, _ := j.Summaries([]uint16{uint16(leaf)})
		n += len(s)
	}
	if n != 300 {
		t.Errorf("migrated index lists %d entries, want 300", n)
	}
}

func TestDecodesFormat1(t *testing.T) {
	e := Entry{ID: ulid.Make(), Version: ver(7, nodeB), Origin: nodeA, Name: "old.txt", UserMeta: map[string]string{"a": "b"}}
	b := encodeEntry(e)
	// Format 1 is format 2 without the 16 origin bytes after the version.
	v1 := append([]byte{entryFormatV1}, b[1:29]...)
	v1 = append(v1, b[45:]...)
	got, err := decodeEntry(e.ID, v1)
	if err != nil {
		t.Fatal(err)
	}
	want := e
	want.Origin = e.Version.Node
	if !reflect.DeepEqual(got, want) {
		t.Errorf("format 1: got %+v, want %+v", got, want)
	}
}

func TestCompactTombstones(t *testing.T) {
	j := openTest(t, "")
	now := time.Now()
	old := Entry{ID: ulid.Make(), Version: Version{Time: Timestamp{Wall: now.Add(-48 * time.Hour).UnixNano()}, Node: nodeA}, Deleted: true}
	recent := Entry{ID: ulid.Make(), Version: Version{Time: Timestamp{Wall: now.UnixNano()}, Node: nodeA}, Deleted: true}
	live := Entry{ID: ulid.Make(), Version: Version{Time: Timestamp{Wall: now.Add(-72 * time.Hour).UnixNano()}, Node: nodeA}, Size: 3}
	for _, e := range []Entry{old, recent, live} {
		apply(t, j, e)
	}
	n, err := j.CompactTombstones(now.Add(-24*time.Hour), 100)
	if err != nil || n != 1 {
		t.Fatalf("compacted %d, %v; want 1", n, err)
	}
	if _, err := j.Entry(old.ID); err == nil {
		t.Error("old tombstone survived")
	}
	for _, e := range []Entry{recent, live} {
		if _, err := j.Entry(e.ID); err != nil {
			t.Errorf("%s was compacted: %v", e.ID, err)
		}
	}
	st := j.Stats()
	if st.Tombstones != 1 || st.Objects != 1 {
		t.Errorf("stats after compaction: %+v", st)
	}
	var count uint32
	for _, n := range rootOf(t, j) {
		count += n.Count
	}
	if count != 2 {
		t.Errorf("tree counts %d entries, want 2", count)
	}
}

func TestLastSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if ts, err := j.LastSync(); err != nil || !ts.IsZero() {
		t.Fatalf("fresh journal: %v %v", ts, err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	j.SetLastSync(now)
	if ts, _ := j.LastSync(); !ts.Equal(now) {
		t.Errorf("last sync %v, want %v", ts, now)
	}
	j.Close()
	j = openTest(t, path)
	if ts, _ := j.LastSync(); !ts.Equal(now) {
		t.Errorf("last sync after reopening %v, want %v", ts, now)
	}
}
