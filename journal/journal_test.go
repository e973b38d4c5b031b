package journal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
)

// openTest opens a journal in a temp dir and checks its consistency when the
// test ends.
func openTest(t *testing.T, path string) *Journal {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "journal.db")
	}
	j, err := Open(Config{Path: path})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := j.Check(); err != nil {
			t.Errorf("consistency: %v", err)
		}
		j.Close()
	})
	return j
}

var nodeA = ulid.MustParse("01HZZZZZZZZZZZZZZZZZZZZZZA")
var nodeB = ulid.MustParse("01HZZZZZZZZZZZZZZZZZZZZZZB")

func ver(wall int64, node ulid.ULID) Version {
	return Version{Time: Timestamp{Wall: wall}, Node: node}
}

func apply(t *testing.T, j *Journal, e Entry) bool {
	t.Helper()
	var ok bool
	err := j.Update(func(tx *Tx) (err error) {
		ok, err = tx.Apply(e)
		return err
	})
	if err != nil {
		t.Fatalf("apply %v: %v", e.ID, err)
	}
	return ok
}

func TestEntryRoundTrip(t *testing.T) {
	cases := []Entry{
		{ID: ulid.Make(), Version: ver(1, nodeA)},
		{ID: ulid.Make(), Version: Version{Time: Timestamp{Wall: 1 << 62, Logical: 7}, Node: nodeB},
			Name: "photo.jpg", Size: 1 << 40, Sum: [32]byte{1, 2, 3}, Level: LevelFull,
			UserMeta: map[string]string{"owner": "alice", "ключ": "значение", "": "empty key"}},
		{ID: ulid.Make(), Version: ver(5, nodeA), Deleted: true},
		{ID: KeyID("photos", "2024/cat 1+1%.jpg"), Version: ver(6, nodeB), Origin: nodeB, Name: "cat 1+1%.jpg",
			Size: 12, Level: LevelRemote, Bucket: "photos", Key: "2024/cat 1+1%.jpg", ETag: `"9b2cf535f27731c9"`,
			ContentType: "image/jpeg", LastModified: time.Unix(1700000000, 0).UTC(), UserMeta: map[string]string{"camera": "x"}},
		{ID: KeyID("b", "k"), Version: ver(7, nodeA), Bucket: "b", Key: "k"}, // no ETag, no time
	}
	for _, e := range cases {
		got, err := decodeEntry(e.ID, encodeEntry(e))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
		}
	}
}

// Key IDs are fixed by bucket and key alone, and tell buckets and keys
// apart, however the two are cut.
func TestKeyID(t *testing.T) {
	if KeyID("a", "b/c") != KeyID("a", "b/c") {
		t.Fatal("KeyID is not deterministic")
	}
	seen := map[ulid.ULID]string{}
	for _, bk := range [][2]string{{"a", "bc"}, {"ab", "c"}, {"a", "b/c"}, {"a/b", "c"}, {"a", "b\x00c"}, {"b", "a"}} {
		id := KeyID(bk[0], bk[1])
		if prev, dup := seen[id]; dup {
			t.Errorf("%q and %q share an ID", prev, bk)
		}
		seen[id] = fmt.Sprint(bk)
	}
	// Pinned: changing the derivation would orphan every cached key.
	if got := KeyID("photos", "2024/cat.jpg").String(); got != keyIDPinned {
		t.Errorf("KeyID(photos, 2024/cat.jpg) = %s, want %s", got, keyIDPinned)
	}
}

// A format that says key-addressed without the flag, or the reverse, is
// refused.
func TestKeyedFlagMustMatchFormat(t *testing.T) {
	e := Entry{ID: KeyID("b", "k"), Version: ver(1, nodeA), Bucket: "b", Key: "k"}
	b := encodeEntry(e)
	plain := encodeEntry(Entry{ID: e.ID, Version: e.Version})
	for name, rec := range map[string][]byte{
		"format 2 with the flag":    append([]byte{entryFormat}, b[1:]...),
		"format 4 without the flag": append([]byte{entryFormatKeyed}, plain[1:]...),
	} {
		if _, err := decodeEntry(e.ID, rec); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func TestEntryEncodingIsCanonical(t *testing.T) {
	e := Entry{ID: ulid.Make(), Version: ver(1, nodeA), UserMeta: map[string]string{}}
	for i := range 20 {
		e.UserMeta[fmt.Sprint("k", i)] = fmt.Sprint("v", i)
	}
	first := encodeEntry(e)
	for range 10 {
		if got := encodeEntry(e); string(got) != string(first) {
			t.Fatal("equal entries encoded to different bytes")
		}
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	e := Entry{ID: ulid.Make(), Version: ver(1, nodeA), Name: "a.txt", UserMeta: map[string]string{"a": "b"}}
	b := encodeEntry(e)
	for i := range b {
		if _, err := decodeEntry(e.ID, b[:i]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d bytes: err = %v, want ErrCorrupt", i, err)
		}
	}
	future := append([]byte{entryFormatSealed + 1}, b[1:]...)
	if _, err := decodeEntry(e.ID, future); !errors.Is(err, ErrCorrupt) {
		t.Errorf("future format: err = %v, want ErrCorrupt", err)
	}
	if _, err := decodeEntry(e.ID, append(b, 0)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("trailing byte: err = %v, want ErrCorrupt", err)
	}
	blob := encodeBlob(Blob{Size: 3, Stored: time.Now()})
	if _, err := decodeBlob(e.ID, blob[:len(blob)-1]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated blob: err = %v, want ErrCorrupt", err)
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeEntry(Entry{Version: ver(1, nodeA), Name: "x", UserMeta: map[string]string{"a": "b"}}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(ulid.ULID{}, b)
		if err != nil {
			return
		}
		// Whatever decodes must survive another round trip unchanged.
		again, err := decodeEntry(ulid.ULID{}, encodeEntry(e))
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("round trip of decoded entry: %+v vs %+v (%v)", again, e, err)
		}
	})
}

func TestApplyLastWriterWins(t *testing.T) {
	j := openTest(t, "")
	id := ulid.Make()
	if !apply(t, j, Entry{ID: id, Version: ver(10, nodeA), Name: "v10", Size: 5}) {
		t.Fatal("first write not applied")
	}
	if apply(t, j, Entry{ID: id, Version: ver(5, nodeB), Name: "v5"}) {
		t.Error("older write applied")
	}
	if apply(t, j, Entry{ID: id, Version: ver(10, nodeA), Name: "same"}) {
		t.Error("write with equal version applied")
	}
	// Equal clock readings: the node ID breaks the tie, the same way on
	// every node.
	if !apply(t, j, Entry{ID: id, Version: ver(10, nodeB), Name: "tie"}) {
		t.Error("tie not broken by node ID")
	}
	e, err := j.Entry(id)
	if err != nil || e.Name != "tie" {
		t.Fatalf("entry = %+v, %v", e, err)
	}
	if !apply(t, j, Entry{ID: id, Version: ver(20, nodeA), Deleted: true, Name: "ignored"}) {
		t.Fatal("tombstone not applied")
	}
	if apply(t, j, Entry{ID: id, Version: ver(15, nodeB), Name: "late write"}) {
		t.Error("write older than the tombstone resurrected the object")
	}
	e, _ = j.Entry(id)
	if !e.Deleted || e.Name != "" {
		t.Errorf("tombstone = %+v, want deleted with no fields", e)
	}
	if _, err := j.Entry(ulid.Make()); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing entry: err = %v, want ErrNotFound", err)
	}
}

func TestApplyRejectsBadEntries(t *testing.T) {
	j := openTest(t, "")
	err := j.Update(func(tx *Tx) error {
		_, err := tx.Apply(Entry{ID: ulid.Make()})
		return err
	})
	if err == nil {
		t.Error("entry without version applied")
	}
	err = j.Update(func(tx *Tx) error {
		_, err := tx.Apply(Entry{ID: ulid.Make(), Version: ver(1, nodeA), Level: 3})
		return err
	})
	if err == nil {
		t.Error("entry with level 3 applied")
	}
}

func TestStatsFollowWritesAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	ids := []ulid.ULID{ulid.Make(), ulid.Make(), ulid.Make()}
	for i, id := range ids {
		apply(t, j, Entry{ID: id, Version: ver(int64(i+1), nodeA), Size: 100})
	}
	err = j.Update(func(tx *Tx) error {
		if err := tx.PutBlob(ids[0], Blob{Size: 100}); err != nil {
			return err
		}
		if err := tx.PutBlob(ids[1], Blob{Size: 100}); err != nil {
			return err
		}
		// Replacing a record must not count it twice.
		return tx.PutBlob(ids[1], Blob{Size: 100})
	})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, j, Entry{ID: ids[2], Version: ver(10, nodeA), Deleted: true})
	j.Update(func(tx *Tx) error { return tx.DeleteBlob(ids[0]) })
	want := Stats{Objects: 2, Bytes: 200, Tombstones: 1, Blobs: 1, BlobBytes: 100}
	if got := j.Stats(); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
	// A failed transaction changes nothing.
	boom := errors.New("boom")
	err = j.Update(func(tx *Tx) error {
		tx.Apply(Entry{ID: ulid.Make(), Version: ver(1, nodeA), Size: 1})
		return boom
	})
	if !errors.Is(err, boom) || j.Stats() != want {
		t.Errorf("after failed tx: err %v, stats %+v", err, j.Stats())
	}
	j.Close()
	j = openTest(t, path)
	if got := j.Stats(); got != want {
		t.Errorf("stats after reopen = %+v, want %+v", got, want)
	}
}

func TestSecondOpenTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	openTest(t, path)
	_, err := Open(Config{Path: path, LockTimeout: 50 * time.Millisecond})
	if err == nil {
		t.Fatal("second process opened a locked journal")
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket(bucketMeta)
		return b.Put(keySchema, []byte{0, 0, 0, 99})
	})
	db.Close()
	if _, err := Open(Config{Path: path}); !errors.Is(err, ErrSchema) {
		t.Fatalf("err = %v, want ErrSchema", err)
	}
}

func TestBlobsPages(t *testing.T) {
	j := openTest(t, "")
	var ids []ulid.ULID
	err := j.Update(func(tx *Tx) error {
		for i := range 25 {
			id := ulid.Make()
			ids = append(ids, id)
			if err := tx.PutBlob(id, Blob{Size: int64(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []ulid.ULID
	var after ulid.ULID
	for {
		page, err := j.Blobs(after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			got = append(got, r.ID)
		}
		after = page[len(page)-1].ID
	}
	if !reflect.DeepEqual(got, ids) {
		t.Errorf("paged %d ids, want %d in order", len(got), len(ids))
	}
}

func TestClockMonotonic(t *testing.T) {
	frozen := time.Unix(1000, 0)
	c := NewClock(func() time.Time { return frozen }, 0)
	prev := c.Now()
	for range 1000 {
		next := c.Now()
		if next.Compare(prev) <= 0 {
			t.Fatalf("clock went from %v to %v", prev, next)
		}
		prev = next
	}
}

// A node whose wall clock is minutes behind must still order its writes
// after the writes it has seen from others.
func TestClockFollowsFasterNode(t *testing.T) {
	now := time.Now()
	ahead := NewClock(func() time.Time { return now.Add(10 * time.Minute) }, 0)
	behind := NewClock(func() time.Time { return now }, 0)
	remote := ahead.Now()
	behind.Observe(remote)
	local := behind.Now()
	if local.Compare(remote) <= 0 {
		t.Fatalf("write after observing %v got %v, which loses", remote, local)
	}
	// Observing an older reading changes nothing.
	behind.Observe(Timestamp{Wall: 1})
	if next := behind.Now(); next.Compare(local) <= 0 {
		t.Fatalf("clock went back to %v after %v", next, local)
	}
}

func TestClockConcurrent(t *testing.T) {
	c := NewClock(nil, 0)
	var mu sync.Mutex
	seen := map[Timestamp]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				ts := c.Now()
				mu.Lock()
				if seen[ts] {
					t.Errorf("duplicate reading %v", ts)
				}
				seen[ts] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// A timestamp further ahead than the maximum offset is refused and leaves
// the clock where it was; one within it is followed.
func TestClockRefusesFarFuture(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := NewClock(func() time.Time { return now }, 500*time.Millisecond)
	before := c.Now()
	for _, wall := range []int64{math.MaxInt64, math.MaxInt64 - 1, now.Add(time.Hour).UnixNano(), now.Add(501 * time.Millisecond).UnixNano()} {
		err := c.Observe(Timestamp{Wall: wall, Logical: math.MaxUint32})
		if !errors.Is(err, ErrClockOffset) {
			t.Fatalf("Observe(%d) = %v, want ErrClockOffset", wall, err)
		}
	}
	if next := c.Now(); next.Wall != before.Wall || next.Logical != before.Logical+1 {
		t.Fatalf("refused timestamps moved the clock: %v after %v", next, before)
	}
	within := Timestamp{Wall: now.Add(400 * time.Millisecond).UnixNano()}
	if err := c.Observe(within); err != nil {
		t.Fatalf("Observe within the offset: %v", err)
	}
	if next := c.Now(); next.Compare(within) <= 0 {
		t.Fatalf("clock %v did not follow %v", next, within)
	}
}

// The logical counter never wraps: at its end the wall moves on instead,
// and readings keep increasing.
func TestClockLogicalNeverWraps(t *testing.T) {
	frozen := time.Unix(1000, 0)
	c := NewClock(func() time.Time { return frozen }, 0)
	c.Restore(Timestamp{Wall: frozen.UnixNano(), Logical: math.MaxUint32 - 2})
	prev := c.Now()
	for range 10 {
		next := c.Now()
		if next.Compare(prev) <= 0 {
			t.Fatalf("clock went from %v to %v", prev, next)
		}
		prev = next
	}
	if prev.Wall != frozen.UnixNano()+1 {
		t.Fatalf("wall %d, want one past the frozen clock", prev.Wall)
	}
}

// Latest survives a reopen, and compaction of the newest entry does not
// lower it.
func TestLatestSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	node := ulid.Make()
	far := Timestamp{Wall: time.Now().Add(time.Hour).UnixNano(), Logical: 7}
	apply(t, j, Entry{ID: ulid.Make(), Version: Version{Time: Timestamp{Wall: 5}, Node: node}, Origin: node})
	id := ulid.Make()
	apply(t, j, Entry{ID: id, Version: Version{Time: far, Node: node}, Deleted: true})
	if got := j.Latest(); got != far {
		t.Fatalf("Latest = %v, want %v", got, far)
	}
	if err := j.Update(func(tx *Tx) error { return tx.Forget(id) }); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = openTest(t, path)
	if got := j.Latest(); got != far {
		t.Fatalf("Latest after reopen = %v, want %v", got, far)
	}
}

func FuzzDecodeBlob(f *testing.F) {
	f.Add(encodeBlob(Blob{Size: 5, Sum: [32]byte{1}, Stored: time.Unix(1, 0), Fetched: true}))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		blob, err := decodeBlob(ulid.ULID{}, b)
		if err != nil {
			return
		}
		again, err := decodeBlob(ulid.ULID{}, encodeBlob(blob))
		if err != nil || !again.Stored.Equal(blob.Stored) || again.Size != blob.Size || again.Sum != blob.Sum || again.Fetched != blob.Fetched {
			t.Fatalf("round trip of decoded blob: %+v vs %+v (%v)", again, blob, err)
		}
	})
}

// gcmSealer is a Sealer for tests: AES-GCM under one key, the key's ID in
// the first byte.
type gcmSealer struct {
	id   byte
	aead cipher.AEAD
}

func newGCMSealer(t *testing.T, id byte) *gcmSealer {
	block, err := aes.NewCipher(bytes.Repeat([]byte{id}, 32))
	if err != nil {
		t.Fatal(err)
	}
	aead, _ := cipher.NewGCM(block)
	return &gcmSealer{id: id, aead: aead}
}

func (g *gcmSealer) SealValue(binding, plain []byte) ([]byte, error) {
	nonce := make([]byte, 12)
	rand.Read(nonce)
	return g.aead.Seal(append([]byte{g.id}, nonce...), nonce, plain, binding), nil
}

func (g *gcmSealer) OpenValue(binding, sealed []byte) ([]byte, error) {
	if len(sealed) < 13 || sealed[0] != g.id {
		return nil, errors.New("not sealed with this key")
	}
	return g.aead.Open(nil, sealed[1:13], sealed[13:], binding)
}

func (g *gcmSealer) ValueCurrent(sealed []byte) bool { return len(sealed) > 0 && sealed[0] == g.id }

// With a sealer, names and user metadata are stored encrypted: the file
// holds neither, entries read back whole, scans and the hash tree work
// without decrypting, entries written before are resealed, and without the
// key the names cannot be read (but the entry's other fields can).
func TestSealedNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	old := Entry{ID: ulid.Make(), Version: ver(1, nodeA), Origin: nodeA, Name: "clear-before.txt", Size: 3}
	apply(t, j, old)
	j.SetSealer(newGCMSealer(t, 1))
	e := Entry{ID: ulid.Make(), Version: ver(2, nodeA), Origin: nodeA, Name: "quarterly-salaries.xlsx", Size: 7,
		UserMeta: map[string]string{"owner": "payroll-secret"}}
	apply(t, j, e)
	got, err := j.Entry(e.ID)
	if err != nil || got.Name != e.Name || got.UserMeta["owner"] != "payroll-secret" {
		t.Fatalf("sealed entry read back: %+v %v", got, err)
	}
	n, err := j.ResealEntries(100)
	if err != nil || n != 1 {
		t.Fatalf("reseal: %d %v, want the one clear entry", n, err)
	}
	if n, _ := j.ResealEntries(100); n != 0 {
		t.Errorf("a second reseal rewrote %d entries", n)
	}
	if got, err := j.Entry(old.ID); err != nil || got.Name != old.Name {
		t.Fatalf("resealed entry: %+v %v", got, err)
	}
	sums, _ := j.Summaries([]uint16{LeafOf(e.ID)})
	if len(sums) == 0 {
		t.Error("summaries lost the sealed entry")
	}
	st := j.Stats()
	j.Close()
	raw, _ := os.ReadFile(path)
	// (The name stored in the clear before the sealer may linger in pages
	// bbolt freed but has not reused yet; names sealed from the start
	// never touch the file.)
	for _, secret := range []string{"quarterly-salaries", "payroll-secret"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the journal file holds %q in the clear", secret)
		}
	}
	// Without the key: counts and the tree open, names do not.
	j, err = Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if j.Stats() != st {
		t.Errorf("stats without the key %+v, with %+v", j.Stats(), st)
	}
	if _, err := j.Entry(e.ID); !errors.Is(err, ErrNoKey) {
		t.Errorf("entry without the key: %v", err)
	}
	j.SetSealer(newGCMSealer(t, 1))
	if got, err := j.Entry(e.ID); err != nil || got.Name != e.Name {
		t.Errorf("entry with the key back: %+v %v", got, err)
	}
}

// keyIDPinned is KeyID("photos", "2024/cat.jpg") as first released.
const keyIDPinned = "1WW8TKQWN0SZF14J3RY2NZRR81"

// ForEachKeyed yields the live key-addressed entries whole, key fields
// included (decrypted from a sealed journal), and nothing else.
func TestForEachKeyed(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		j := openTest(t, filepath.Join(t.TempDir(), "j.db"))
		if sealed {
			j.SetSealer(newGCMSealer(t, 1))
		}
		live := Entry{ID: KeyID("photos", "a/cat.jpg"), Version: ver(3, nodeA), Origin: nodeA, Level: LevelRemote,
			Bucket: "photos", Key: "a/cat.jpg", ETag: `"e"`}
		apply(t, j, live)
		apply(t, j, Entry{ID: KeyID("photos", "gone"), Version: ver(4, nodeA), Deleted: true})
		apply(t, j, Entry{ID: ulid.Make(), Version: ver(5, nodeA), Origin: nodeA, Name: "ulid.txt"})
		var got []Entry
		err := j.View(func(tx *Tx) error {
			return tx.ForEachKeyed(ulid.ULID{}, func(e Entry) error { got = append(got, e); return nil })
		})
		if err != nil || len(got) != 1 || got[0].Bucket != "photos" || got[0].Key != "a/cat.jpg" || got[0].ETag != `"e"` {
			t.Errorf("sealed %v: %+v, %v", sealed, got, err)
		}
	}
}
