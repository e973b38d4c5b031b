package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testkeys"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// byteCounter counts the body bytes read from a remote.
type byteCounter struct {
	storage.Remote
	bytes atomic.Int64
	gets  atomic.Int64
}

func (c *byteCounter) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, storage.ObjectInfo, error) {
	c.gets.Add(1)
	rc, info, err := c.Remote.Get(ctx, key, off, n)
	if err != nil {
		return nil, info, err
	}
	return &countedBody{ReadCloser: rc, n: &c.bytes}, info, nil
}

type countedBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// sparseEnv is a node, with 64 KiB parts, in front of a directory remote
// that holds one object of size bytes which the node does not know.
type sparseEnv struct {
	t       *testing.T
	dir     string
	counter *byteCounter
	node    *Node
	id      ulid.ULID
	body    []byte
	tune    func(*Config)
}

const sparsePart = 64 << 10

func newSparseEnv(t *testing.T, size int) *sparseEnv {
	t.Helper()
	return newSparseEnvWith(t, size, nil)
}

// newSparseEnvWith is newSparseEnv with the node's Config changed by tune.
func newSparseEnvWith(t *testing.T, size int, tune func(*Config)) *sparseEnv {
	t.Helper()
	dir := t.TempDir()
	dr, err := storage.NewDirRemote(filepath.Join(dir, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(body)
	env := &sparseEnv{t: t, dir: dir, counter: &byteCounter{Remote: dr}, id: ulid.Make(), body: body, tune: tune}
	if err := dr.Put(context.Background(), "objects/"+env.id.String(), bytes.NewReader(body), int64(size), nil); err != nil {
		t.Fatal(err)
	}
	env.start()
	t.Cleanup(func() { env.node.Close() })
	return env
}

func (env *sparseEnv) start() {
	env.t.Helper()
	cfg := Config{
		StateDir: filepath.Join(env.dir, "state"), FilesDir: filepath.Join(env.dir, "files"),
		Remote:        storage.WithPrefix(env.counter, "objects/"),
		ScrubInterval: -1, FetchPartSize: sparsePart, FetchConcurrency: 4,
	}
	if env.tune != nil {
		env.tune(&cfg)
	}
	n, err := Open(context.Background(), cfg)
	if err != nil {
		env.t.Fatal(err)
	}
	env.node = n
}

// read reads length bytes at off as a ranged GET would, and checks them.
func (env *sparseEnv) read(off, length int64) (*Object, error) {
	env.t.Helper()
	obj, err := env.node.Get(context.Background(), env.id, GetOptions{Fetch: true, Range: &Range{Offset: off, Length: length}})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	if _, err := obj.Content.Seek(off, io.SeekStart); err != nil {
		return obj, err
	}
	got := make([]byte, length)
	if _, err := io.ReadFull(obj.Content, got); err != nil {
		return obj, err
	}
	if !bytes.Equal(got, env.body[off:off+length]) {
		env.t.Fatalf("bytes %d+%d differ from the object's", off, length)
	}
	return obj, nil
}

func (env *sparseEnv) mustRead(off, length int64) *Object {
	env.t.Helper()
	obj, err := env.read(off, length)
	if err != nil {
		env.t.Fatalf("read %d+%d: %v", off, length, err)
	}
	return obj
}

// damagePart flips the byte at offset at (-1: the middle) of the file of
// the one part the node holds.
func (env *sparseEnv) damagePart(at int) {
	env.t.Helper()
	rec, _, err := env.node.journal.Sparse(env.id)
	if err != nil {
		env.t.Fatal(err)
	}
	folder := filepath.Join(env.dir, "files", ".parts", env.id.String()+"."+rec.Tag)
	files, _ := os.ReadDir(folder)
	if len(files) != 1 {
		env.t.Fatalf("parts on disk: %v", files)
	}
	path := filepath.Join(folder, files[0].Name())
	data, err := os.ReadFile(path)
	if err != nil {
		env.t.Fatal(err)
	}
	if at < 0 {
		at = len(data) / 2
	}
	data[at] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		env.t.Fatal(err)
	}
}

// settle waits until no part fetch or assembly of the object runs.
func (env *sparseEnv) settle() {
	waitFor(env.t, func() bool {
		s := env.node.sparse
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.copies[env.id] == nil
	})
}

func TestSparseRangeFetchesOnlyItsPart(t *testing.T) {
	env := newSparseEnv(t, 4<<20)
	obj := env.mustRead(1_000_000, 1000)
	env.settle()
	if got := env.counter.bytes.Load(); got != sparsePart {
		t.Fatalf("a 1000-byte range pulled %d bytes from the remote, want one part (%d)", got, sparsePart)
	}
	if obj.Source != SourceRemote || obj.Held != 0 {
		t.Errorf("first read: source %s, held %d", obj.Source, obj.Held)
	}
	if _, b, _ := env.node.lookup(env.id); b != nil {
		t.Error("a ranged read kept a whole body")
	}
	st := env.node.journal.Stats()
	if st.Sparse != 1 || st.SparseBytes != sparsePart {
		t.Errorf("journal stats %+v", st)
	}
	// The same part again: from the disk, nothing from the remote.
	gets := env.counter.gets.Load()
	obj = env.mustRead(1_000_100, 500)
	if obj.Source != SourceLocal || obj.Held != sparsePart || env.counter.gets.Load() != gets {
		t.Errorf("second read: source %s, held %d, %d more remote requests", obj.Source, obj.Held, env.counter.gets.Load()-gets)
	}
	// A range across two parts, one held: only the other is fetched.
	before := env.counter.bytes.Load()
	env.mustRead(16*sparsePart-100, 200)
	env.settle()
	if got := env.counter.bytes.Load() - before; got != sparsePart {
		t.Errorf("a range over a held and a missing part pulled %d bytes", got)
	}
}

func TestSparseEveryPartOnceThenWhole(t *testing.T) {
	env := newSparseEnv(t, 1<<20+12345)
	parts := int((len(env.body) + sparsePart - 1) / sparsePart)
	order := rand.Perm(parts)
	var wg sync.WaitGroup
	for i, k := range order {
		off := int64(k) * sparsePart
		length := min(int64(sparsePart), int64(len(env.body))-off)
		if i%3 == 0 {
			// Some reads race each other on the same part.
			wg.Go(func() { env.mustRead(off, length) })
		}
		env.mustRead(off, length)
	}
	wg.Wait()
	env.settle()
	if got := env.counter.bytes.Load(); got != int64(len(env.body)) {
		t.Errorf("reading every part pulled %d bytes, the object has %d", got, len(env.body))
	}
	waitFor(t, func() bool { _, b, _ := env.node.lookup(env.id); return b != nil })
	_, b, _ := env.node.lookup(env.id)
	if b.Size != int64(len(env.body)) {
		t.Fatalf("assembled body of %d bytes", b.Size)
	}
	if st := env.node.journal.Stats(); st.Sparse != 0 || st.SparseBytes != 0 {
		t.Errorf("parts still recorded after assembly: %+v", st)
	}
	if left, _ := os.ReadDir(filepath.Join(env.dir, "files", ".parts")); len(left) != 0 {
		t.Errorf("parts left on disk: %v", left)
	}
	gets := env.counter.gets.Load()
	s, obj, err := (&testEnv{node: env.node}).read(env.id, false)
	if err != nil || s != string(env.body) || obj.Source != SourceLocal || env.counter.gets.Load() != gets {
		t.Fatalf("whole read after assembly: %v, match %v, source %v", err, s == string(env.body), obj.Source)
	}
}

func TestSparseFullReadFetchesOnlyMissingParts(t *testing.T) {
	env := newSparseEnv(t, 2<<20)
	env.mustRead(0, 100)
	env.mustRead(10*sparsePart+5, 100)
	env.mustRead(int64(len(env.body))-10, 10)
	env.settle()
	held := env.counter.bytes.Load()
	if held != 3*sparsePart {
		t.Fatalf("three small ranges pulled %d bytes", held)
	}
	s, obj, err := (&testEnv{node: env.node}).read(env.id, true)
	if err != nil || s != string(env.body) {
		t.Fatalf("full read: %v, match %v", err, s == string(env.body))
	}
	if obj.Held != held {
		t.Errorf("full read began holding %d bytes, want %d", obj.Held, held)
	}
	env.settle()
	if got := env.counter.bytes.Load(); got != int64(len(env.body)) {
		t.Errorf("ranges then a full read pulled %d bytes in all, the object has %d", got, len(env.body))
	}
	waitFor(t, func() bool { _, b, _ := env.node.lookup(env.id); return b != nil })
}

// An object replaced at its source between two ranged reads is never
// served mixed: a read over a part held and one fetched after the change
// fails rather than join them, the old parts go, and the next read serves
// the new version alone.
func TestSparseObjectChangedIsNeverMixed(t *testing.T) {
	env := newSparseEnv(t, 1<<20)
	env.mustRead(0, 100)
	env.settle()
	// Replace the object in the remote with other bytes of the same size.
	newBody := bytes.Repeat([]byte("new!"), len(env.body)/4)
	if err := env.counter.Remote.Put(context.Background(), "objects/"+env.id.String(), bytes.NewReader(newBody), int64(len(newBody)), nil); err != nil {
		t.Fatal(err)
	}
	obj, err := env.node.Get(context.Background(), env.id, GetOptions{Fetch: true, Range: &Range{Offset: 0, Length: 2 * sparsePart}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.LimitReader(obj.Content, 2*sparsePart))
	obj.Close()
	if err == nil {
		t.Fatalf("a read across the change ended well: old %v, new %v", bytes.Equal(got, env.body[:len(got)]), bytes.Equal(got, newBody[:len(got)]))
	}
	if !errors.Is(err, ErrRemote) {
		t.Errorf("read across the change: %v", err)
	}
	if !bytes.Equal(got, env.body[:len(got)]) {
		t.Error("the bytes served before the failure are not the old version's")
	}
	env.settle()
	if _, parts, err := env.node.journal.Sparse(env.id); err == nil && len(parts) > 0 {
		t.Errorf("the old version's parts stay: %v", parts)
	}
	env.body = newBody
	env.mustRead(0, 2*sparsePart)
}

// Parts recorded before a crash serve after it; a part file nobody
// recorded (the crash came between its rename and its record) is removed
// at start-up and never read.
func TestSparsePartsSurviveRestart(t *testing.T) {
	env := newSparseEnv(t, 1<<20)
	env.mustRead(3*sparsePart, 10)
	env.settle()
	rec, _, err := env.node.journal.Sparse(env.id)
	if err != nil {
		t.Fatal(err)
	}
	env.node.Close()
	// An unrecorded part: a copy of part 3's file under part 4's name.
	folder := filepath.Join(env.dir, "files", ".parts", env.id.String()+"."+rec.Tag)
	files, _ := os.ReadDir(folder)
	if len(files) != 1 {
		t.Fatalf("parts on disk: %v", files)
	}
	data, _ := os.ReadFile(filepath.Join(folder, files[0].Name()))
	stray := filepath.Join(folder, "4"+filepath.Ext(files[0].Name()))
	os.WriteFile(stray, data, 0o600)
	env.start()
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Errorf("unrecorded part survived start-up: %v", err)
	}
	// The journal knows the object now: an ordinary ranged GET serves it.
	before := env.counter.bytes.Load()
	obj := env.mustRead(3*sparsePart+100, 100)
	if obj.Source != SourceLocal || env.counter.bytes.Load() != before {
		t.Errorf("held part after restart: source %s, %d bytes pulled", obj.Source, env.counter.bytes.Load()-before)
	}
	env.mustRead(4*sparsePart, 100)
	env.settle()
	if got := env.counter.bytes.Load() - before; got != sparsePart {
		t.Errorf("part 4 after restart pulled %d bytes", got)
	}
}

// A damaged part is found by the scrub, dropped, and fetched again.
func TestSparseScrubDropsDamagedPart(t *testing.T) {
	env := newSparseEnv(t, 1<<20)
	env.mustRead(2*sparsePart, 10)
	env.settle()
	env.damagePart(-1)
	rep, err := env.node.Scrub(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Damaged != 1 {
		t.Errorf("scrub report %+v", rep)
	}
	if _, parts, _ := env.node.journal.Sparse(env.id); len(parts) != 0 {
		t.Errorf("damaged part still recorded")
	}
	before := env.counter.bytes.Load()
	env.mustRead(2*sparsePart, 10)
	if env.counter.bytes.Load() == before {
		t.Error("the dropped part was not fetched again")
	}
}

// Eviction under the quota may drop a sparse copy.
func TestSparseCopyIsEvictable(t *testing.T) {
	env := newSparseEnv(t, 1<<20)
	env.mustRead(0, 10)
	env.settle()
	if !env.node.evict(env.id) {
		t.Fatal("sparse copy not evicted")
	}
	if st := env.node.journal.Stats(); st.Sparse != 0 || st.SparseBytes != 0 {
		t.Errorf("after eviction: %+v", st)
	}
}

// A key's sparse copy older than the cache TTL is checked against the
// origin before it serves: confirmed, it serves on without a GET; changed,
// its parts go and the read serves the new version's.
func TestSparseKeyRevalidation(t *testing.T) {
	env := newKeyEnvWith(t, RevalidateTTL, func(c *Config) { c.FetchPartSize = sparsePart })
	one := strings.Repeat("1", 4*sparsePart)
	env.write("big.bin", one)
	readRange := func(off, length int64) (string, *Object) {
		t.Helper()
		obj, err := env.node.GetKey(context.Background(), "photos", "big.bin", KeyGetOptions{Range: &Range{Offset: off, Length: length}})
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		obj.Content.Seek(off, io.SeekStart)
		b := make([]byte, length)
		if _, err := io.ReadFull(obj.Content, b); err != nil {
			t.Fatal(err)
		}
		return string(b), obj
	}
	readRange(10, 10)
	waitFor(t, func() bool { return env.node.journal.Stats().SparseBytes == sparsePart })
	env.clock.Add(2 * time.Hour)
	gets := env.origin.gets.Load()
	if got, obj := readRange(20, 10); got != one[20:30] || obj.Source != SourceLocal || env.origin.gets.Load() != gets {
		t.Errorf("confirmed copy: %q from %s, %d GETs", got, obj.Source, env.origin.gets.Load()-gets)
	}
	if r := env.origin.revalidations.Load(); r != 1 {
		t.Errorf("%d revalidations, want 1", r)
	}
	two := strings.Repeat("2", 4*sparsePart)
	env.write("big.bin", two)
	env.clock.Add(2 * time.Hour)
	if got, _ := readRange(20, 10); got != two[20:30] {
		t.Errorf("after the change: %q", got)
	}
}

// A delete, or an invalidation, takes a sparse copy with it.
func TestSparseCopyGoesWithDeleteAndInvalidate(t *testing.T) {
	env := newSparseEnv(t, 1<<20)
	env.mustRead(0, 10)
	env.settle()
	if _, err := env.node.Invalidate(context.Background(), env.id, false); err != nil {
		t.Fatal(err)
	}
	if st := env.node.journal.Stats(); st.Sparse != 0 {
		t.Fatalf("after invalidation: %+v", st)
	}
	env.mustRead(0, 10)
	env.settle()
	if _, err := env.node.Delete(context.Background(), env.id, false); err != nil {
		t.Fatal(err)
	}
	if st := env.node.journal.Stats(); st.Sparse != 0 || st.SparseBytes != 0 {
		t.Errorf("after delete: %+v", st)
	}
	if left, _ := os.ReadDir(filepath.Join(env.dir, "files", ".parts")); len(left) != 0 {
		t.Errorf("parts left on disk: %v", left)
	}
}

// Under a quota that holds the object once and a half, its parts still
// assemble into the whole body: the parts' own bytes are not reserved
// twice, and the copy being filled is never its own eviction's victim.
func TestSparseAssemblesUnderTightQuota(t *testing.T) {
	const size = 1 << 20
	env := newSparseEnvWith(t, size, func(c *Config) { c.MaxDisk = size + size/2 })
	for k := int64(0); k < size/sparsePart; k++ {
		env.mustRead(k*sparsePart, 10)
	}
	env.settle()
	waitFor(t, func() bool { _, b, _ := env.node.lookup(env.id); return b != nil })
	if got := env.counter.bytes.Load(); got != size {
		t.Errorf("pulled %d bytes, the object has %d", got, size)
	}
}

// A part found damaged while it is read fails the read, never serves the
// damaged bytes, and is fetched again by the next read.
func TestSparseDamagedPartIsDroppedOnRead(t *testing.T) {
	env := newSparseEnv(t, 1<<20)
	env.mustRead(2*sparsePart, 10)
	env.settle()
	env.damagePart(-1)
	before := env.counter.bytes.Load()
	// Opening a one-segment part checks it whole, so the damage is found
	// before any byte is read and the part is fetched again at once; a
	// damaged segment found mid-read fails the read instead. Either way
	// the bytes served are sound (read checks them).
	if _, err := env.read(2*sparsePart, sparsePart); err != nil && !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("read of a damaged part: %v", err)
	}
	env.mustRead(2*sparsePart, sparsePart)
	env.settle()
	if env.counter.bytes.Load()-before != sparsePart {
		t.Errorf("the damaged part moved %d bytes again, want one part", env.counter.bytes.Load()-before)
	}
}

// With parts of several segments, damage in a later segment is found in
// the middle of a read: the read fails there, and the part is fetched
// again by the next one.
func TestSparseDamageFoundMidRead(t *testing.T) {
	const part = 4 * sparsePart
	env := newSparseEnvWith(t, 1<<20, func(c *Config) { c.FetchPartSize = part })
	env.mustRead(part, 10)
	env.settle()
	env.damagePart(48 + sparsePart + 16 + 100) // in the second segment
	if _, err := env.read(part, part); !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("read across a damaged segment: %v", err)
	}
	before := env.counter.bytes.Load()
	env.mustRead(part, part)
	env.settle()
	if env.counter.bytes.Load()-before != part {
		t.Errorf("the damaged part moved %d bytes again, want %d", env.counter.bytes.Load()-before, part)
	}
}

// Pre-warming an object held sparsely fetches only its missing parts.
func TestSparsePrewarmFetchesOnlyMissingParts(t *testing.T) {
	env := newSparseEnv(t, 1<<20)
	env.mustRead(0, 10)
	env.settle()
	before := env.counter.bytes.Load()
	loaded, _, err := env.node.warm(prewarmItem{id: env.id})
	if err != nil || !loaded {
		t.Fatalf("warm: %v, %v", loaded, err)
	}
	if _, b, _ := env.node.lookup(env.id); b == nil {
		t.Fatal("pre-warm returned before the copy was whole")
	}
	env.settle()
	if got := env.counter.bytes.Load() - before; got != int64(len(env.body))-sparsePart {
		t.Errorf("pre-warm moved %d bytes; %d were missing", got, int64(len(env.body))-sparsePart)
	}
}

// A repair (as for a level-2 copy) of an object held sparsely fetches
// only the parts missing and returns with the body whole.
func TestSparseRepairFetchesOnlyMissingParts(t *testing.T) {
	env := newSparseEnv(t, 1<<20)
	env.mustRead(5*sparsePart, 10)
	env.mustRead(9*sparsePart, 10)
	env.settle()
	before := env.counter.bytes.Load()
	if err := env.node.repair(env.id); err != nil {
		t.Fatal(err)
	}
	if _, b, _ := env.node.lookup(env.id); b == nil {
		t.Fatal("repair returned before the copy was whole")
	}
	if got := env.counter.bytes.Load() - before; got != int64(len(env.body))-2*sparsePart {
		t.Errorf("repair moved %d bytes; %d were missing", got, int64(len(env.body))-2*sparsePart)
	}
}

// A range past the end of an object the journal knows fetches nothing.
func TestSparseRangePastTheEndFetchesNothing(t *testing.T) {
	env := newSparseEnv(t, 3*sparsePart+100)
	env.mustRead(0, 10)
	env.settle()
	before := env.counter.gets.Load()
	obj, err := env.node.Get(context.Background(), env.id, GetOptions{Range: &Range{Offset: 1 << 40, Length: -1}})
	if err != nil {
		t.Fatal(err)
	}
	obj.Close()
	env.settle()
	if got := env.counter.gets.Load() - before; got != 0 {
		t.Errorf("a range past the end made %d remote requests", got)
	}
}

// With encryption at rest, parts are sealed (each with a salt of its own),
// read back, scrubbed and assembled like parts in the clear.
func TestSparseSealedParts(t *testing.T) {
	env := newSparseEnvWith(t, 4*sparsePart+7, func(c *Config) { c.Keyring = testkeys.Keyring(t, 1) })
	env.mustRead(sparsePart+5, 100)
	env.settle()
	rec, _, err := env.node.journal.Sparse(env.id)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := os.ReadDir(filepath.Join(env.dir, "files", ".parts", env.id.String()+"."+rec.Tag))
	if len(files) != 1 || filepath.Ext(files[0].Name()) != ".s" {
		t.Fatalf("parts on disk: %v", files)
	}
	if rep, err := env.node.Scrub(context.Background()); err != nil || rep.Damaged != 0 || rep.Checked != 1 {
		t.Fatalf("scrub: %+v, %v", rep, err)
	}
	s, _, err := (&testEnv{node: env.node}).read(env.id, true)
	if err != nil || s != string(env.body) {
		t.Fatalf("full read: %v, match %v", err, s == string(env.body))
	}
	waitFor(t, func() bool { _, b, _ := env.node.lookup(env.id); return b != nil })
}

// A level change gives the object a new version but keeps its body: the
// parts held stay, under the new version.
func TestSparseCopySurvivesALevelChange(t *testing.T) {
	env := newSparseEnv(t, 1<<20)
	env.mustRead(3*sparsePart, 10)
	env.settle()
	// The copy's entry needs its checksum to tell the body is the same:
	// a full read makes it known; then drop the whole body again and
	// hold one part only.
	if _, _, err := (&testEnv{node: env.node}).read(env.id, true); err != nil {
		t.Fatal(err)
	}
	env.settle()
	waitFor(t, func() bool { _, b, _ := env.node.lookup(env.id); return b != nil })
	env.node.DropCopy(context.Background(), env.id)
	env.mustRead(3*sparsePart, 10)
	env.settle()
	before := env.counter.bytes.Load()
	// Level 2 also makes the node want the whole body (a repair), which
	// then fetches only what the copy lacks, if the copy survived.
	if _, err := env.node.SetLevel(context.Background(), env.id, journal.LevelFull); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, b, _ := env.node.lookup(env.id); return b != nil })
	env.settle()
	if got := env.counter.bytes.Load() - before; got != int64(len(env.body))-sparsePart {
		t.Errorf("after the level change the body took %d bytes; %d were missing", got, int64(len(env.body))-sparsePart)
	}
}
