package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testkeys"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
	"github.com/objstore/objstore/storage/seal"
)

// countingRemote wraps a real remote, counting Gets and optionally failing
// calls, to observe how the node uses its remote.
type countingRemote struct {
	storage.Remote
	gets     atomic.Int64
	getDelay time.Duration
	failPut  error
	failGet  error
	// cutAfter makes every Get's body fail after this many bytes (0: off).
	cutAfter int64
	// putGate, when set, holds every Put until it is closed; putsWaiting
	// counts the Puts held there.
	putGate     chan struct{}
	putsWaiting atomic.Int64
}

func (c *countingRemote) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, storage.ObjectInfo, error) {
	c.gets.Add(1)
	if c.failGet != nil {
		return nil, storage.ObjectInfo{}, c.failGet
	}
	time.Sleep(c.getDelay)
	rc, info, err := c.Remote.Get(ctx, key, off, n)
	if err == nil && c.cutAfter > 0 {
		rc = &cutReader{ReadCloser: rc, left: c.cutAfter}
	}
	return rc, info, err
}

func (c *countingRemote) Put(ctx context.Context, key string, r io.Reader, size int64, meta map[string]string) error {
	if c.failPut != nil {
		io.Copy(io.Discard, io.LimitReader(r, 1000))
		return c.failPut
	}
	if c.putGate != nil {
		c.putsWaiting.Add(1)
		<-c.putGate
		c.putsWaiting.Add(-1)
	}
	return c.Remote.Put(ctx, key, r, size, meta)
}

type cutReader struct {
	io.ReadCloser
	left int64
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("connection reset by remote")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	return n, err
}

type testEnv struct {
	t       testing.TB
	dir     string
	remote  *countingRemote
	node    *Node
	maxSize int64
	// maxUploads is the node's MaxUploads (0: the default).
	maxUploads int
	// now is the node's physical clock (nil: time.Now).
	now func() time.Time
	// keyring encrypts bodies at rest (nil: in the clear); fetchPart is
	// the node's FetchPartSize (0: the default).
	keyring   *seal.Keyring
	fetchPart int64
	// memCache is the node's MemoryCache (0: the default).
	memCache int64
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	dir := t.TempDir()
	dr, err := storage.NewDirRemote(filepath.Join(dir, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	env := &testEnv{t: t, dir: dir, remote: &countingRemote{Remote: dr}}
	env.start()
	t.Cleanup(func() { env.node.Close() })
	return env
}

func (env *testEnv) start() {
	env.t.Helper()
	n, err := Open(context.Background(), Config{
		StateDir:      filepath.Join(env.dir, "state"),
		FilesDir:      filepath.Join(env.dir, "files"),
		Remote:        storage.WithPrefix(env.remote, "objects/"),
		MaxObjectSize: env.maxSize,
		MaxUploads:    env.maxUploads,
		Now:           env.now,
		ScrubInterval: -1,
		Keyring:       env.keyring,
		FetchPartSize: env.fetchPart,
		MemoryCache:   env.memCache,
	})
	if err != nil {
		env.t.Fatal(err)
	}
	env.node = n
}

func (env *testEnv) restart() {
	env.t.Helper()
	env.node.Close()
	env.start()
}

// loseDisk stops the node, wipes its state and files directories (as if
// its disk were replaced) and starts it again.
func (env *testEnv) loseDisk() {
	env.t.Helper()
	env.node.Close()
	os.RemoveAll(filepath.Join(env.dir, "state"))
	os.RemoveAll(filepath.Join(env.dir, "files"))
	env.start()
}

func (env *testEnv) put(id ulid.ULID, level journal.Level, body string) Meta {
	env.t.Helper()
	m, err := env.node.Put(context.Background(), PutRequest{
		ID: id, Name: "file.txt", Level: level, Body: strings.NewReader(body), Size: int64(len(body)),
		UserMeta: map[string]string{"owner": "alice"},
	})
	if err != nil {
		env.t.Fatalf("put %s: %v", id, err)
	}
	return m
}

func (env *testEnv) read(id ulid.ULID, fetch bool) (string, *Object, error) {
	obj, err := env.node.Get(context.Background(), id, GetOptions{Fetch: fetch})
	if err != nil {
		return "", obj, err
	}
	defer obj.Close()
	b, err := io.ReadAll(obj.Content)
	return string(b), obj, err
}

func TestPutGetEachLevel(t *testing.T) {
	env := newEnv(t)
	for level := journal.LevelLocal; level <= journal.LevelFull; level++ {
		id := ulid.Make()
		body := strings.Repeat("level ", int(level)+1)
		m := env.put(id, level, body)
		if m.Consistency != level || m.Size != int64(len(body)) || !m.IsLocal {
			t.Errorf("put meta = %+v", m)
		}
		got, obj, err := env.read(id, false)
		if err != nil || got != body || obj.Source != SourceLocal {
			t.Fatalf("get level %d = %q from %s, %v", level, got, obj.Source, err)
		}
		_, err = env.remote.Stat(context.Background(), "objects/"+id.String())
		if inRemote := err == nil; inRemote != level.InRemote() {
			t.Errorf("level %d: in remote = %v (%v)", level, inRemote, err)
		}
	}
}

func TestRemoteFailureCommitsNothing(t *testing.T) {
	env := newEnv(t)
	env.remote.failPut = errors.New("access denied")
	id := ulid.Make()
	_, err := env.node.Put(context.Background(), PutRequest{ID: id, Level: journal.LevelRemote,
		Body: strings.NewReader(strings.Repeat("x", 1<<20)), Size: 1 << 20})
	if !errors.Is(err, ErrRemote) {
		t.Fatalf("err = %v, want ErrRemote", err)
	}
	if _, err := env.node.Meta(context.Background(), id); !errors.Is(err, ErrNotFound) {
		t.Errorf("meta after failed put: %v, want ErrNotFound", err)
	}
	if st := env.node.journal.Stats(); st.Blobs != 0 {
		t.Errorf("a body was kept: %+v", st)
	}
}

func TestBodyShorterThanDeclaredIsRejected(t *testing.T) {
	env := newEnv(t)
	id := ulid.Make()
	_, err := env.node.Put(context.Background(), PutRequest{ID: id, Body: strings.NewReader("short"), Size: 10})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if _, err := env.node.Meta(context.Background(), id); !errors.Is(err, ErrNotFound) {
		t.Errorf("partial body committed: %v", err)
	}
}

func TestMaxObjectSize(t *testing.T) {
	dir := t.TempDir()
	dr, _ := storage.NewDirRemote(filepath.Join(dir, "remote"))
	env := &testEnv{t: t, dir: dir, remote: &countingRemote{Remote: dr}, maxSize: 100}
	env.start()
	defer env.node.Close()
	for _, size := range []int64{101, -1} {
		_, err := env.node.Put(context.Background(), PutRequest{ID: ulid.Make(),
			Body: strings.NewReader(strings.Repeat("x", 101)), Size: size})
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("size %d: err = %v, want ErrTooLarge", size, err)
		}
	}
	env.put(ulid.Make(), 0, strings.Repeat("x", 100))
}

// Uploads beyond MaxUploads wait for a slot instead of each holding part
// buffers at once.
func TestUploadsWaitForASlot(t *testing.T) {
	dir := t.TempDir()
	dr, _ := storage.NewDirRemote(filepath.Join(dir, "remote"))
	env := &testEnv{t: t, dir: dir, remote: &countingRemote{Remote: dr, putGate: make(chan struct{})}, maxUploads: 1}
	env.start()
	defer env.node.Close()
	first := make(chan error, 1)
	go func() {
		_, err := env.node.Put(context.Background(), PutRequest{ID: ulid.Make(), Level: journal.LevelRemote, Body: strings.NewReader("a"), Size: 1})
		first <- err
	}()
	waitFor(t, func() bool { return env.remote.putsWaiting.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := env.node.Put(ctx, PutRequest{ID: ulid.Make(), Level: journal.LevelRemote, Body: strings.NewReader("b"), Size: 1})
	if !errors.Is(err, context.DeadlineExceeded) || env.remote.putsWaiting.Load() != 1 {
		t.Errorf("second upload: %v with %d uploads running, want it to wait", err, env.remote.putsWaiting.Load())
	}
	close(env.remote.putGate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	env.put(ulid.Make(), journal.LevelRemote, "slot free again")
}

func TestConflicts(t *testing.T) {
	env := newEnv(t)
	id := ulid.Make()
	env.put(id, journal.LevelRemote, "v1")
	_, err := env.node.Put(context.Background(), PutRequest{ID: id, Level: journal.LevelLocal, Body: strings.NewReader("v2"), Size: 2})
	if !errors.Is(err, ErrConflict) {
		t.Errorf("lowering level: err = %v, want ErrConflict", err)
	}
	m := env.put(id, journal.LevelFull, "v2 replaces v1")
	if got, _, _ := env.read(id, false); got != "v2 replaces v1" || m.Consistency != journal.LevelFull {
		t.Errorf("replace: got %q, level %d", got, m.Consistency)
	}
	if _, err := env.node.Delete(context.Background(), id, false); err != nil {
		t.Fatal(err)
	}
	_, err = env.node.Put(context.Background(), PutRequest{ID: id, Body: strings.NewReader("v3"), Size: 2})
	if !errors.Is(err, ErrConflict) {
		t.Errorf("reusing a deleted ID: err = %v, want ErrConflict", err)
	}
}

// A node that lost its disk (state and files) gets level 1 and 2 objects
// back from the remote with X-Meta-Fetch, with their metadata.
func TestTotalLossFetchesFromRemote(t *testing.T) {
	env := newEnv(t)
	id0, id1 := ulid.Make(), ulid.Make()
	env.put(id0, journal.LevelLocal, "only here")
	env.put(id1, journal.LevelRemote, "safe in the remote")
	env.loseDisk()

	if _, _, err := env.read(id1, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get without fetch: %v, want ErrNotFound", err)
	}
	got, obj, err := env.read(id1, true)
	if err != nil || got != "safe in the remote" || !obj.Fetched || obj.Source != SourceRemote {
		t.Fatalf("fetch = %q %+v %v", got, obj, err)
	}
	if obj.Name != "file.txt" || obj.Consistency != journal.LevelRemote || obj.UserMeta["owner"] != "alice" {
		t.Errorf("fetched meta = %+v", obj.Meta)
	}
	// Now it is local, with its checksum recorded.
	got, obj, err = env.read(id1, false)
	if err != nil || got != "safe in the remote" || obj.Source != SourceLocal || !obj.IsFetched {
		t.Errorf("second read = %q from %s (fetched %v), %v", got, obj.Source, obj.IsFetched, err)
	}
	if obj.SHA256 == "" {
		t.Error("fetched object has no checksum")
	}
	if _, _, err := env.read(id0, true); !errors.Is(err, ErrNotFound) {
		t.Errorf("level 0 after loss: %v, want ErrNotFound", err)
	}
}

// Losing only the files directory: the journal knows the objects, so level
// 1 and 2 bodies are fetched again in the background.
func TestLostFilesAreRepaired(t *testing.T) {
	env := newEnv(t)
	id1, id0 := ulid.Make(), ulid.Make()
	env.put(id1, journal.LevelFull, "repair me")
	env.put(id0, journal.LevelLocal, "gone for good")
	env.node.Close()
	os.RemoveAll(filepath.Join(env.dir, "files"))
	env.start()
	waitFor(t, func() bool { return env.node.counters.repairs.Load() == 1 })
	got, obj, err := env.read(id1, false)
	if err != nil || got != "repair me" || obj.Source != SourceLocal {
		t.Errorf("after repair: %q from %s, %v", got, obj.Source, err)
	}
	if _, _, err := env.read(id0, false); !errors.Is(err, ErrNotFound) {
		t.Errorf("level 0 with lost body: %v, want ErrNotFound", err)
	}
}

func TestRestartRemovesLeftoversAndKeepsIdentity(t *testing.T) {
	env := newEnv(t)
	id := ulid.Make()
	env.put(id, journal.LevelLocal, "keep me")
	nodeID := env.node.ID()
	// A body renamed into place whose journal commit never happened.
	orphan := ulid.Make()
	w, _ := env.node.disk.Create(orphan, -1)
	w.Write([]byte("never committed"))
	_, sum, _ := w.Commit(orphan)
	env.restart()
	if env.node.ID() != nodeID {
		t.Errorf("identity changed across restart: %s -> %s", nodeID, env.node.ID())
	}
	if path, err := env.node.disk.File(orphan, sum); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("leftover body survived: %s %v", path, err)
	}
	if got, _, err := env.read(id, false); got != "keep me" || err != nil {
		t.Errorf("committed body after restart: %q, %v", got, err)
	}
}

func TestScrubDropsDamagedBodyAndRefetches(t *testing.T) {
	env := newEnv(t)
	id := ulid.Make()
	m := env.put(id, journal.LevelRemote, "precious bytes")
	rot(t, env, id, 0)
	rep, err := env.node.Scrub(context.Background())
	if err != nil || rep.Damaged != 1 {
		t.Fatalf("scrub = %+v, %v", rep, err)
	}
	waitFor(t, func() bool { return env.node.counters.repairs.Load() == 1 })
	got, obj, err := env.read(id, false)
	if err != nil || got != "precious bytes" || obj.SHA256 != m.SHA256 {
		t.Errorf("after scrub: %q %v", got, err)
	}
	rep, _ = env.node.Scrub(context.Background())
	if rep.Damaged != 0 || rep.Checked != 1 {
		t.Errorf("second scrub = %+v", rep)
	}
}

// A read that meets a damaged local body never returns a damaged byte: a
// small body (one segment) fails to open and is fetched again from the
// remote within the same GET; a large one fails mid-read after its sound
// bytes. Either way the copy is dropped and repaired, and the next read
// is whole.
func TestReadFindsBitRot(t *testing.T) {
	env := newEnv(t)
	small, large := ulid.Make(), ulid.Make()
	env.put(small, journal.LevelRemote, "small body")
	bigBody := strings.Repeat("large body ", 40000) // 440 KB: 7 segments
	env.put(large, journal.LevelRemote, bigBody)

	rot(t, env, small, 3)
	got, obj, err := env.read(small, false)
	if err != nil || got != "small body" || obj.Source != SourceRemote {
		t.Fatalf("small body after rot: %q from %v, %v", got, obj.Source, err)
	}

	rot(t, env, large, 200_000) // in its fourth segment
	got, _, err = env.read(large, false)
	if !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("large body after rot: %d bytes, %v; want ErrCorrupt", len(got), err)
	}
	if !strings.HasPrefix(bigBody, got) || len(got) != 3*storage.SegmentSize {
		t.Fatalf("read %d bytes before the damaged segment, want the %d sound ones", len(got), 3*storage.SegmentSize)
	}
	if n := env.node.counters.readDamaged.Load(); n != 2 {
		t.Errorf("read_damaged = %d, want 2", n)
	}
	waitFor(t, func() bool { _, err := env.node.journal.Blob(large); return err == nil })
	got, obj, err = env.read(large, false)
	if err != nil || got != bigBody || obj.Source != SourceLocal {
		t.Errorf("after repair: %d bytes from %v, %v", len(got), obj.Source, err)
	}
}

func TestDeleteKeepsObjectFromComingBack(t *testing.T) {
	env := newEnv(t)
	id := ulid.Make()
	env.put(id, journal.LevelRemote, "delete me")
	m, err := env.node.Delete(context.Background(), id, false)
	if err != nil || !m.IsDeleted {
		t.Fatalf("delete = %+v, %v", m, err)
	}
	if _, _, err := env.read(id, true); !errors.Is(err, ErrDeleted) {
		t.Errorf("fetch after delete: %v, want ErrDeleted", err)
	}
	if _, err := env.remote.Stat(context.Background(), "objects/"+id.String()); err != nil {
		t.Errorf("remote copy gone without purge: %v", err)
	}
	// Purge on an already deleted object removes the remote copy.
	if _, err := env.node.Delete(context.Background(), id, true); err != nil {
		t.Fatal(err)
	}
	if _, err := env.remote.Stat(context.Background(), "objects/"+id.String()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("remote copy after purge: %v", err)
	}
	// Deleting an ID never seen still leaves a tombstone that blocks fetches.
	other := ulid.Make()
	env.remote.Remote.Put(context.Background(), "objects/"+other.String(), strings.NewReader("x"), 1, nil)
	env.node.Delete(context.Background(), other, false)
	if _, _, err := env.read(other, true); !errors.Is(err, ErrDeleted) {
		t.Errorf("fetch of deleted unknown ID: %v", err)
	}
}

func TestSetLevelUploadsWithoutBody(t *testing.T) {
	env := newEnv(t)
	id := ulid.Make()
	env.put(id, journal.LevelLocal, "raise me")
	m, err := env.node.SetLevel(context.Background(), id, journal.LevelFull)
	if err != nil || m.Consistency != journal.LevelFull {
		t.Fatalf("set level = %+v, %v", m, err)
	}
	info, err := env.remote.Stat(context.Background(), "objects/"+id.String())
	if err != nil || info.Size != 8 || info.Meta[metaSHA256] == "" {
		t.Fatalf("remote copy = %+v, %v", info, err)
	}
	if _, err := env.node.SetLevel(context.Background(), id, journal.LevelLocal); !errors.Is(err, ErrConflict) {
		t.Errorf("lowering: %v, want ErrConflict", err)
	}
	if _, err := env.node.SetLevel(context.Background(), ulid.Make(), journal.LevelFull); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown: %v, want ErrNotFound", err)
	}
}

// Concurrent misses for one object make one remote request, and every
// reader gets the whole body.
func TestConcurrentMissesShareOneFetch(t *testing.T) {
	env := newEnv(t)
	id := ulid.Make()
	body := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
	env.put(id, journal.LevelRemote, body)
	env.loseDisk()
	env.remote.gets.Store(0)
	env.remote.getDelay = 100 * time.Millisecond

	const readers = 8
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, _, err := env.read(id, true)
			if err == nil && got != body {
				err = errors.New("body differs")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := env.remote.gets.Load(); n != 1 {
		t.Errorf("%d remote requests for %d concurrent misses, want 1", n, readers)
	}
}

// A fetch that breaks off midway fails its readers; they never see an
// end-of-file that would pass a partial body as whole.
func TestBrokenFetchFailsReaders(t *testing.T) {
	env := newEnv(t)
	id := ulid.Make()
	body := strings.Repeat("z", 1<<20)
	env.put(id, journal.LevelRemote, body)
	env.remote.cutAfter = 300 << 10
	env.loseDisk()
	got, _, err := env.read(id, true)
	if err == nil {
		t.Fatalf("read %d of %d bytes and no error", len(got), len(body))
	}
	if _, err := env.node.Meta(context.Background(), id); !errors.Is(err, ErrNotFound) {
		t.Errorf("broken fetch left an entry: %v", err)
	}
	env.remote.cutAfter = 0
	got, _, err = env.read(id, true)
	if err != nil || got != body {
		t.Errorf("retry after broken fetch: %d bytes, %v", len(got), err)
	}
}

func TestUnreachableRemoteIsUnavailable(t *testing.T) {
	env := newEnv(t)
	// As a backend reports it: classified as unavailable (storage's
	// contract), the cause kept.
	env.remote.failGet = fmt.Errorf("%w: %w", storage.ErrUnavailable, &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED})
	_, _, err := env.read(ulid.Make(), true)
	if !errors.Is(err, ErrRemoteUnavailable) {
		t.Errorf("err = %v, want ErrRemoteUnavailable", err)
	}
}

func TestStatsCountObjects(t *testing.T) {
	env := newEnv(t)
	env.put(ulid.Make(), 0, "abc")
	env.put(ulid.Make(), 1, "defg")
	st, err := env.node.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Journal.Objects != 2 || st.Journal.Bytes != 7 || st.Journal.Blobs != 2 || st.Disk.Total == 0 {
		t.Errorf("stats = %+v", st)
	}
	if st.NodeID != env.node.ID().String() || st.Traffic.Puts != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRemoteMetaRoundTrip(t *testing.T) {
	e := journal.Entry{ID: ulid.Make(), Version: journal.Version{Time: journal.Timestamp{Wall: 123, Logical: 4}, Node: ulid.Make()},
		Name: "отчёт.pdf", Level: journal.LevelFull, UserMeta: map[string]string{"a": "b"}, Sum: sha256.Sum256([]byte("x")), Size: 1}
	got, err := entryFromRemote(e.ID, storage.ObjectInfo{Size: 1, Meta: remoteMeta(e, true)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != e.Name || got.Version != e.Version || got.Level != e.Level || got.Sum != e.Sum || got.UserMeta["a"] != "b" {
		t.Errorf("round trip: %+v vs %+v", got, e)
	}
	if !bytes.Equal(got.Sum[:], e.Sum[:]) {
		t.Error("checksum lost")
	}
}

// waitFor polls cond until it holds or a generous deadline passes; it
// never asserts how fast something happens.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gatedRemote holds ranged Gets that start inside [from, to) until gate is
// closed, to show which parts a reader waits for.
type gatedRemote struct {
	storage.Remote
	from, to int64
	gate     chan struct{}
	held     atomic.Int64
}

func (g *gatedRemote) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, storage.ObjectInfo, error) {
	if off >= g.from && off < g.to {
		g.held.Add(1)
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, storage.ObjectInfo{}, ctx.Err()
		}
	}
	return g.Remote.Get(ctx, key, off, n)
}

// A large cold body arrives in parallel ranged parts; a reader of a range
// near its end is served while the parts before it are still held up, and
// the whole body is verified and kept once every part is in.
func TestPartedFetchServesRangesEarly(t *testing.T) {
	dir := t.TempDir()
	dr, _ := storage.NewDirRemote(filepath.Join(dir, "remote"))
	const part, size = 64 << 10, 1 << 20
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i * 7 / 3)
	}
	id := ulid.Make()
	// Upload as a node would, then start a node that knows nothing.
	writer := &testEnv{t: t, dir: filepath.Join(dir, "w"), remote: &countingRemote{Remote: dr}}
	writer.start()
	if _, err := writer.node.Put(context.Background(), PutRequest{ID: id, Level: journal.LevelRemote, Body: bytes.NewReader(body), Size: size}); err != nil {
		t.Fatal(err)
	}
	writer.node.Close()

	gated := &gatedRemote{Remote: dr, from: 1, to: 14 * part, gate: make(chan struct{})}
	n, err := Open(context.Background(), Config{StateDir: filepath.Join(dir, "r", "state"), FilesDir: filepath.Join(dir, "r", "files"),
		Remote: storage.WithPrefix(gated, "objects/"), ScrubInterval: -1, FetchPartSize: part, FetchConcurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	obj, err := n.Get(context.Background(), id, GetOptions{Fetch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	// Part 14, while parts 1 to 13 are held.
	if _, err := obj.Content.Seek(14*part, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, part)
	if _, err := io.ReadFull(obj.Content, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body[14*part:15*part]) {
		t.Fatal("ranged read returned the wrong bytes")
	}
	// The parts before 14 cannot have arrived: their Gets wait on the gate.
	waitFor(t, func() bool { return gated.held.Load() > 0 })
	select {
	case <-gated.gate:
		t.Fatal("gate opened early")
	default:
	}
	close(gated.gate)
	if _, err := obj.Content.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(obj.Content)
	if err != nil || !bytes.Equal(all, body) {
		t.Fatalf("whole body: %d bytes, %v", len(all), err)
	}
	waitFor(t, func() bool { _, err := n.journal.Blob(id); return err == nil })
	m, _ := n.Meta(context.Background(), id)
	if !m.IsLocal || m.SHA256 == "" {
		t.Errorf("parted fetch not kept: %+v", m)
	}
}

// A body of unknown length under a quota it does not fit is refused with
// ErrNoSpace as soon as it passes the quota, and its upload to the remote
// is aborted with it.
func TestChunkedPutOverQuota(t *testing.T) {
	dir := t.TempDir()
	dr, _ := storage.NewDirRemote(filepath.Join(dir, "remote"))
	n, err := Open(context.Background(), Config{StateDir: filepath.Join(dir, "state"), FilesDir: filepath.Join(dir, "files"),
		Remote: storage.WithPrefix(dr, "objects/"), ScrubInterval: -1, MaxDisk: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	id := ulid.Make()
	_, err = n.Put(context.Background(), PutRequest{ID: id, Level: journal.LevelRemote, Body: strings.NewReader(strings.Repeat("x", 5000)), Size: -1})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("err = %v, want ErrNoSpace", err)
	}
	if _, err := dr.Stat(context.Background(), "objects/"+id.String()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the refused body reached the remote: %v", err)
	}
	// One that fits goes through.
	if _, err := n.Put(context.Background(), PutRequest{ID: id, Level: journal.LevelRemote, Body: strings.NewReader("fits"), Size: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := dr.Stat(context.Background(), "objects/"+id.String()); err != nil {
		t.Errorf("the accepted body is not in the remote: %v", err)
	}
}

// A client that declares a large body and sends it slowly holds no more
// of the quota than it has sent (and one step), so other writes still
// fit; when it goes away its reservation is given back.
func TestSlowPutHoldsOnlyWhatArrived(t *testing.T) {
	dir := t.TempDir()
	dr, _ := storage.NewDirRemote(filepath.Join(dir, "remote"))
	n, err := Open(context.Background(), Config{StateDir: filepath.Join(dir, "state"), FilesDir: filepath.Join(dir, "files"),
		Remote: dr, ScrubInterval: -1, MaxDisk: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	reserved := func() int64 { n.quota.mu.Lock(); defer n.quota.mu.Unlock(); return n.quota.reserved }
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := n.Put(context.Background(), PutRequest{ID: ulid.Make(), Level: journal.LevelLocal, Body: pr, Size: 3 << 20})
		done <- err
	}()
	pw.Write(make([]byte, 100<<10))
	waitFor(t, func() bool { return reserved() >= 100<<10 })
	if r := reserved(); r > 100<<10+reserveStep {
		t.Errorf("a slow PUT that sent 100 KiB holds %d bytes of quota", r)
	}
	if _, err := n.Put(context.Background(), PutRequest{ID: ulid.Make(), Level: journal.LevelLocal,
		Body: bytes.NewReader(make([]byte, 2<<20)), Size: 2 << 20}); err != nil {
		t.Fatalf("a PUT beside the slow one: %v", err)
	}
	pw.CloseWithError(errors.New("client went away"))
	if err := <-done; !errors.Is(err, ErrInvalid) {
		t.Errorf("the abandoned PUT: %v", err)
	}
	if r := reserved(); r != 0 {
		t.Errorf("%d bytes still reserved after the PUT ended", r)
	}
}

// stallRemote serves part 0 of every object as a stream that stalls until
// closed, and fails the part at failAt as an unreachable remote would.
type stallRemote struct {
	storage.Remote
	failAt int64
}

type stalled struct {
	once sync.Once
	done chan struct{}
}

func (s *stalled) Read(p []byte) (int, error) { <-s.done; return 0, io.ErrUnexpectedEOF }
func (s *stalled) Close() error               { s.once.Do(func() { close(s.done) }); return nil }

func (r *stallRemote) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, storage.ObjectInfo, error) {
	if off == r.failAt {
		return nil, storage.ObjectInfo{}, fmt.Errorf("%w: %w", storage.ErrUnavailable, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	}
	rc, info, err := r.Remote.Get(ctx, key, off, n)
	if err == nil && off == 0 {
		rc.Close()
		rc = &stalled{done: make(chan struct{})}
	}
	return rc, info, err
}

// When one part of a parted fetch fails, readers fail at once with the
// part's own error kind, even while part 0's stream stalls.
func TestPartedFetchFailsWithTheCause(t *testing.T) {
	dir := t.TempDir()
	dr, _ := storage.NewDirRemote(filepath.Join(dir, "remote"))
	const part = 64 << 10
	id := ulid.Make()
	body := strings.Repeat("p", 8*part)
	writer := &testEnv{t: t, dir: filepath.Join(dir, "w"), remote: &countingRemote{Remote: dr}}
	writer.start()
	writer.put(id, journal.LevelRemote, body)
	writer.node.Close()

	n, err := Open(context.Background(), Config{StateDir: filepath.Join(dir, "r", "state"), FilesDir: filepath.Join(dir, "r", "files"),
		Remote: storage.WithPrefix(&stallRemote{Remote: dr, failAt: 2 * part}, "objects/"), ScrubInterval: -1,
		FetchPartSize: part, FetchConcurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	obj, err := n.Get(context.Background(), id, GetOptions{Fetch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(obj.Content)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrRemoteUnavailable) {
			t.Errorf("read failed with %v, want ErrRemoteUnavailable", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the reader hung although a part had failed")
	}
}

// An ID the remote does not have is asked for once, then answered from
// memory for a while, however often clients ask.
func TestMissesRemembered(t *testing.T) {
	env := newEnv(t)
	id := ulid.Make()
	for range 5 {
		if _, err := env.node.Get(context.Background(), id, GetOptions{Fetch: true}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("fetch of a missing ID: %v", err)
		}
	}
	if got := env.remote.gets.Load(); got != 1 {
		t.Errorf("%d remote requests for 5 fetches of one missing ID, want 1", got)
	}
}

// blockingRemote serves bodies that never arrive until the fetch is
// canceled.
type blockingRemote struct{ storage.Remote }

type ctxReader struct{ ctx context.Context }

func (r ctxReader) Read([]byte) (int, error) { <-r.ctx.Done(); return 0, r.ctx.Err() }
func (r ctxReader) Close() error             { return nil }

func (b blockingRemote) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, storage.ObjectInfo, error) {
	rc, info, err := b.Remote.Get(ctx, key, off, n)
	if err != nil {
		return nil, info, err
	}
	rc.Close()
	return ctxReader{ctx}, info, nil
}

// A fetch that only clients wanted is canceled soon after the last of
// them leaves, instead of running on for nobody.
func TestAbandonedFillIsCanceled(t *testing.T) {
	defer func(g time.Duration) { abandonGrace = g }(abandonGrace)
	abandonGrace = 50 * time.Millisecond
	dir := t.TempDir()
	dr, _ := storage.NewDirRemote(filepath.Join(dir, "remote"))
	n, err := Open(context.Background(), Config{StateDir: filepath.Join(dir, "state"), FilesDir: filepath.Join(dir, "files"),
		Remote: blockingRemote{dr}, ScrubInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	id := ulid.Make()
	if _, err := n.Put(ctx, PutRequest{ID: id, Level: journal.LevelRemote, Body: strings.NewReader("cold"), Size: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Invalidate(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	obj, err := n.Get(ctx, id, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	obj.Close() // the client walks away before a byte arrives
	waitFor(t, func() bool { return !n.fills.inFlight(id) })
	if _, err := n.journal.Blob(id); err == nil {
		t.Error("the abandoned fetch committed a copy")
	}
}

// With a keyring, every body on disk is sealed: written by a PUT, fetched
// in parallel parts from the remote (and read while it streams in), read
// back whole and by range; the files hold no plaintext; a new key rolls in
// and the scrub reseals the old bodies under it.
func TestEncryptedBodies(t *testing.T) {
	dir := t.TempDir()
	dr, err := storage.NewDirRemote(filepath.Join(dir, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	env := &testEnv{t: t, dir: dir, remote: &countingRemote{Remote: dr}, keyring: testkeys.Keyring(t, 1), fetchPart: 64 << 10}
	env.start()
	t.Cleanup(func() { env.node.Close() })
	ctx := context.Background()
	body := strings.Repeat("confidential objstore body ", 40000) // about 1 MiB: 16 parts
	id := ulid.Make()
	env.put(id, journal.LevelRemote, body)
	small := ulid.Make()
	env.put(small, journal.LevelLocal, "tiny secret")

	checkDisk := func() {
		t.Helper()
		filepath.Walk(filepath.Join(dir, "files"), func(path string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return nil
			}
			b, _ := os.ReadFile(path)
			if bytes.Contains(b, []byte("confidential")) || bytes.Contains(b, []byte("tiny secret")) {
				t.Errorf("%s holds plaintext", path)
			}
			if !strings.HasSuffix(path, ".s") {
				t.Errorf("%s is not a sealed body's name", path)
			}
			return nil
		})
	}
	checkDisk()
	readRange := func(id ulid.ULID, off, n int64) string {
		t.Helper()
		obj, err := env.node.Get(ctx, id, GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		if _, err := obj.Content.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(obj.Content, p); err != nil {
			t.Fatalf("range %d+%d: %v", off, n, err)
		}
		return string(p)
	}
	if got := readRange(id, 700000, 1000); got != body[700000:701000] {
		t.Fatal("a range of a sealed body differs")
	}
	// The local copy goes; a read fetches it back in sealed parts, and a
	// range near the end is served while the parts stream in.
	if _, err := env.node.Invalidate(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	if got := readRange(id, int64(len(body))-5000, 4000); got != body[len(body)-5000:len(body)-1000] {
		t.Fatal("a range read during a sealed parted fetch differs")
	}
	waitFor(t, func() bool { _, err := env.node.journal.Blob(id); return err == nil })
	if got, _, err := env.read(id, false); err != nil || got != body {
		t.Fatalf("fetched sealed body: %v", err)
	}
	checkDisk()
	if raw, _ := os.ReadFile(filepath.Join(dir, "state", journalFile)); bytes.Contains(raw, []byte("file.txt")) {
		t.Error("the journal holds an object's name in the clear")
	}

	// Key 2 is rolled in; key 1 still opens the old bodies until the
	// scrub has resealed them, and then is no longer needed.
	env.node.Close()
	env.keyring = testkeys.Keyring(t, 2, 1)
	env.start()
	// (The start-up scrub runs too, so a body may be resealed by both.)
	rep, err := env.node.Scrub(ctx)
	if err != nil || rep.Damaged != 0 {
		t.Fatalf("scrub after a new key: %+v, %v", rep, err)
	}
	waitFor(t, func() bool { return env.node.counters.resealed.Load() >= 2 })
	if k, err := env.node.journal.ResealEntries(100); err != nil || k != 0 {
		t.Fatalf("%d entries left to reseal after the scrub (%v)", k, err)
	}
	env.node.Close()
	env.keyring = testkeys.Keyring(t, 2)
	env.start()
	if got, _, err := env.read(small, false); err != nil || got != "tiny secret" {
		t.Fatalf("after rotation: %q, %v", got, err)
	}
	if got, _, err := env.read(id, false); err != nil || got != body {
		t.Fatalf("the large body after rotation: %v", err)
	}
	checkDisk()
	// Without any key the bodies are refused, never served as ciphertext,
	// and the scrub does not drop them.
	env.node.Close()
	env.keyring = testkeys.Keyring(t, 3)
	env.start()
	if _, _, err := env.read(small, false); err == nil {
		t.Fatal("a body sealed with an unknown key was served")
	}
	if rep, err := env.node.Scrub(ctx); err != nil || rep.Damaged != 0 {
		t.Fatalf("scrub without the key: %+v, %v", rep, err)
	}
	if _, err := env.node.journal.Blob(small); err != nil {
		t.Fatal("the scrub dropped a body it could not read")
	}
}

// The quota holds under concurrent PUTs, fetches and level-2 pulls: the
// bytes of committed bodies never pass it, nor do the reservations of
// bodies in flight. (Their sum may, for the instant between a body's
// commit and the release of its reservation, when it counts twice.)
func TestQuotaUnderConcurrency(t *testing.T) {
	dir := t.TempDir()
	dr, _ := storage.NewDirRemote(filepath.Join(dir, "remote"))
	const quota = 1 << 20
	n, err := Open(context.Background(), Config{StateDir: filepath.Join(dir, "state"), FilesDir: filepath.Join(dir, "files"),
		Remote: storage.WithPrefix(dr, "objects/"), ScrubInterval: -1, MaxDisk: quota})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	body := strings.Repeat("q", 100<<10)
	var ids []ulid.ULID
	for range 8 {
		id := ulid.Make()
		if _, err := n.Put(ctx, PutRequest{ID: id, Level: journal.LevelRemote, Body: strings.NewReader(body), Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	stop := make(chan struct{})
	var over atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n.quota.mu.Lock()
			if held := n.journal.Stats().BlobBytes; held > quota {
				over.Store(held)
			}
			if n.quota.reserved > quota {
				over.Store(n.quota.reserved)
			}
			n.quota.mu.Unlock()
		}
	}()
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				switch (w + i) % 3 {
				case 0: // a PUT, level 1 or 2 (which this node pulls)
					level := journal.LevelRemote
					if i%2 == 0 {
						level = journal.LevelFull
					}
					n.Put(ctx, PutRequest{ID: ulid.Make(), Level: level, Body: strings.NewReader(body), Size: int64(len(body))})
				case 1: // a read that fetches an evicted copy
					if obj, err := n.Get(ctx, ids[(w*10+i)%len(ids)], GetOptions{}); err == nil {
						io.Copy(io.Discard, obj.Content)
						obj.Close()
					}
				default: // a copy dropped, to be fetched again
					n.Invalidate(ctx, ids[(w+i)%len(ids)], false)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	if held := over.Load(); held > 0 {
		t.Errorf("the node held %d bytes against a quota of %d", held, quota)
	}
	if st := n.journal.Stats(); st.BlobBytes > quota {
		t.Errorf("%d bytes held at the end, quota %d", st.BlobBytes, quota)
	}
}

// manualClock is a clock a test moves by hand.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *manualClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// Time-based behaviour follows the node's injected clock, so it is tested
// without sleeping: a cached copy expires after the TTL, a remote miss is
// forgotten after a minute, and a node that last synced longer ago than
// the tombstone retention is stale.
func TestInjectedClockDrivesTimeDecisions(t *testing.T) {
	clock := &manualClock{now: time.Now()}
	dir := t.TempDir()
	dr, _ := storage.NewDirRemote(filepath.Join(dir, "remote"))
	remote := &countingRemote{Remote: dr}
	n, err := Open(context.Background(), Config{StateDir: filepath.Join(dir, "state"), FilesDir: filepath.Join(dir, "files"),
		Remote: storage.WithPrefix(remote, "objects/"), ScrubInterval: -1, CacheTTL: time.Hour, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	id := ulid.Make()
	if _, err := n.Put(ctx, PutRequest{ID: id, Level: journal.LevelRemote, Body: strings.NewReader("cached"), Size: 6}); err != nil {
		t.Fatal(err)
	}
	read := func() Source {
		obj, err := n.Get(ctx, id, GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		io.Copy(io.Discard, obj.Content)
		return obj.Source
	}
	if src := read(); src != SourceLocal {
		t.Fatalf("fresh copy read from %s", src)
	}
	clock.Add(2 * time.Hour)
	if src := read(); src == SourceLocal {
		t.Error("a copy past its TTL was served as it was")
	}

	missing := ulid.Make()
	n.Get(ctx, missing, GetOptions{Fetch: true})
	before := remote.gets.Load()
	n.Get(ctx, missing, GetOptions{Fetch: true})
	if remote.gets.Load() != before {
		t.Error("a remembered miss went to the remote")
	}
	clock.Add(2 * DefaultMissTTL)
	n.Get(ctx, missing, GetOptions{Fetch: true})
	if remote.gets.Load() == before {
		t.Error("a miss was remembered past its minute")
	}

	if err := n.journal.SetLastSync(clock.Now()); err != nil {
		t.Fatal(err)
	}
	if n.CheckFresh(clock.Now().Add(-DefaultTombstoneTTL-time.Minute)) == nil {
		t.Error("a peer that last synced before the tombstone horizon was taken as fresh")
	}
	if n.CheckFresh(clock.Now().Add(-time.Hour)) != nil {
		t.Error("a peer that synced an hour ago was refused")
	}
}

// A disk that fails under the node (EIO on a body's writes, its fsync,
// its folder's fsync or an open, and ENOSPC): no write is acknowledged, a
// full disk is ErrNoSpace at once, nothing half-written is committed,
// reads of other bodies go on (an unreadable body is not taken for a
// missing one), and once the disk recovers the node works again without a
// restart.
func TestFailingDisk(t *testing.T) {
	var failing atomic.Pointer[map[string]error]
	hook := func(step string) error {
		if m := failing.Load(); m != nil {
			return (*m)[step]
		}
		return nil
	}
	set := func(m map[string]error) { failing.Store(&m) }
	dir := t.TempDir()
	dr, _ := storage.NewDirRemote(filepath.Join(dir, "remote"))
	n, err := Open(context.Background(), Config{StateDir: filepath.Join(dir, "state"), FilesDir: filepath.Join(dir, "files"),
		Remote: dr, ScrubInterval: -1, FaultHook: hook, MemoryCache: -1}) // every read goes to the disk under test
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	put := func(level journal.Level) (ulid.ULID, error) {
		id := ulid.Make()
		_, err := n.Put(ctx, PutRequest{ID: id, Level: level, Body: strings.NewReader("payload"), Size: 7})
		return id, err
	}
	before, err := put(journal.LevelLocal)
	if err != nil {
		t.Fatal(err)
	}
	readBefore := func() error {
		obj, err := n.Get(ctx, before, GetOptions{})
		if err != nil {
			return err
		}
		defer obj.Close()
		b, err := io.ReadAll(obj.Content)
		if err == nil && string(b) != "payload" {
			err = fmt.Errorf("read %q", b)
		}
		return err
	}
	for _, c := range []struct {
		step  string
		err   error
		level journal.Level
	}{
		{"write", syscall.EIO, journal.LevelLocal},
		{"sync", syscall.EIO, journal.LevelLocal},
		{"sync", syscall.EIO, journal.LevelRemote},
		{"after-rename", syscall.EIO, journal.LevelLocal},
		{"write", syscall.ENOSPC, journal.LevelLocal},
	} {
		set(map[string]error{c.step: c.err})
		id, err := put(c.level)
		switch {
		case err == nil:
			t.Errorf("%v at %s: the PUT was acknowledged", c.err, c.step)
		case c.err == syscall.ENOSPC && !errors.Is(err, ErrNoSpace):
			t.Errorf("ENOSPC at %s: %v, want ErrNoSpace", c.step, err)
		}
		if _, err := n.Meta(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%v at %s: the failed object is known: %v", c.err, c.step, err)
		}
		if err := readBefore(); err != nil {
			t.Errorf("%v at %s: a read of another body failed: %v", c.err, c.step, err)
		}
		set(nil)
		if _, err := put(c.level); err != nil {
			t.Errorf("after %v at %s the disk recovered, but a PUT failed: %v", c.err, c.step, err)
		}
	}
	// An open that fails with EIO fails the read, and the body is kept.
	set(map[string]error{"open": syscall.EIO})
	if err := readBefore(); err == nil {
		t.Error("a read through a failing open succeeded")
	}
	set(nil)
	if err := readBefore(); err != nil {
		t.Errorf("after the disk recovered: %v", err)
	}
}

// rot flips one bit of the node's copy of id on disk, in its body's byte
// at offset off: the file keeps its size, so only a checksum can tell.
func rot(t *testing.T, env *testEnv, id ulid.ULID, off int64) {
	t.Helper()
	b, err := env.node.journal.Blob(id)
	if err != nil {
		t.Fatal(err)
	}
	path, err := env.node.disk.File(id, b.Sum)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const s = storage.SegmentSize
	raw[seal.HeaderSize+off/s*(s+seal.TagSize)+off%s] ^= 0x20
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}
