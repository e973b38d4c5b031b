package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"golang.org/x/sync/errgroup"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// fillEngine brings bodies onto this node's disk: one fill per object
// however many callers want it at once, read from a peer or from the
// remote tier (in parallel ranged parts when large), written to a
// temporary file that every caller follows as it grows, verified, and
// committed through fillDeps.commit. It knows the rest of the node only
// through fillDeps.
type fillEngine struct {
	deps fillDeps
	ctx  context.Context // canceled when the node closes; every fill runs below it
	wg   *sync.WaitGroup // the node's: counts every fill in flight

	mu     sync.Mutex // guards fills and closed
	fills  map[ulid.ULID]*fill
	closed bool
}

// fillDeps is what the fill engine needs of the node.
type fillDeps struct {
	disk *storage.Disk
	// reserve makes room for size bytes under the quota; release is
	// called once the body is committed or abandoned.
	reserve func(size int64) (release func(), err error)
	// peerBody opens e's body on a live peer that holds it whole (its
	// origin first), or returns nil when none does.
	peerBody func(ctx context.Context, e journal.Entry) io.ReadCloser
	// noCopy is the error for a level-0 body that no live node served.
	noCopy func(e journal.Entry) error
	// commit records a body now durable on disk. learned says e came from
	// the remote's description rather than the journal.
	commit func(e journal.Entry, b journal.Blob, learned bool) error
	// keep offers a small body, committed, to the memory cache.
	keep func(id ulid.ULID, sum storage.Sum, body []byte)
	// partSize and concurrency shape parted fetches from the remote.
	partSize    int64
	concurrency int
	log         *slog.Logger
	// fetches and fetchErrors count fills started and failed; coalesced
	// counts the requests that joined a fill already under way instead of
	// starting their own fetch.
	fetches, fetchErrors, coalesced *atomic.Int64
}

// fillRequest names a body to bring in.
type fillRequest struct {
	id    ulid.ULID
	known *journal.Entry // the journal's entry; nil on a total miss
	// remote holds the body under key when no peer serves it; nil when
	// this node cannot reach the store that does, for the reason in
	// noRemote.
	remote   storage.Getter
	key      string
	noRemote error
	// learn makes the entry of an object the journal does not know
	// (known is nil) from its description in the remote, checked like a
	// peer's.
	learn func(info storage.ObjectInfo) (journal.Entry, error)
	// viaOwner says remote is the peer that owns the object's fills
	// (an ownerGetter); direct says the fill was routed here by a peer
	// and must not be routed on.
	viaOwner, direct bool
}

func newFillEngine(ctx context.Context, wg *sync.WaitGroup, deps fillDeps) *fillEngine {
	return &fillEngine{deps: deps, ctx: ctx, wg: wg, fills: make(map[ulid.ULID]*fill)}
}

// stop makes the engine start no more fills; those in flight end with the
// node's context.
func (e *fillEngine) stop() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
}

// inFlight reports whether a fill of id is under way.
func (e *fillEngine) inFlight(id ulid.ULID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fills[id] != nil
}

// load reports the fills under way and the clients' GETs following them.
func (e *fillEngine) load() (fills, readers int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.fills {
		readers += f.users
	}
	return len(e.fills), readers
}

// fill is one fetch of a body from a peer or the remote tier into local
// disk, which any number of readers follow as it streams in.
type fill struct {
	e *fillEngine
	fillRequest

	// ready is closed once entry, size and source are known, or headErr
	// is set.
	ready   chan struct{}
	headErr error
	entry   journal.Entry
	source  Source

	mu      sync.Mutex // guards the fields below; cond waits on it
	cond    *sync.Cond
	w       *storage.Writer
	written int64 // the body's bytes [0, written) are on disk
	// verified is set once the whole body is on disk and matches its
	// size and checksum: readers may then take its last byte, while the
	// node makes the copy durable and records it (a copy the node then
	// fails to keep costs nothing, since the body came from a peer or
	// the remote, which still hold it).
	verified bool
	done     bool  // the body is committed under its final path
	err      error // the fetch failed; readers fail too
	// A small body (small, set before ready) is taken whole into memory
	// (mem, set once verified) and served from there, before its copy is
	// written to disk.
	small bool
	mem   []byte

	// A large body from the remote arrives in parts, in parallel; parts
	// records which are on disk (nil for a single stream), and wanted
	// carries readers' requests for a part they wait on, so a ranged read
	// of a cold object is served without waiting for the parts before it.
	parts    []bool
	partSize int64
	wanted   chan int
	// progress[k] counts the bytes of part k on disk from its start, in
	// whole segments, so the in-order hash, and readers behind it, follow
	// a part as it streams rather than wait for its end.
	progress []int64
	// first is the open stream of part 0 of a parted fetch, and etag the
	// ETag its answer reported, which every other part's must repeat.
	first io.ReadCloser
	etag  string

	// users counts the clients' GETs following the fill, and pinned is set
	// once a caller that wants the copy itself (replication, repair,
	// pre-warm) joins; both are guarded by the engine's mu. A fill
	// that only clients wanted is canceled soon after the last of them
	// leaves, so a client cannot start fetches and walk away from them.
	users  int
	pinned bool
	cancel context.CancelFunc
}

// abandonGrace is how long a fill whose every reader left goes on, so a
// client that reconnects at once (a retry, the next range) finds it.
var abandonGrace = 5 * time.Second

// join counts a new follower of the fill. Called with the engine's mu held.
func (f *fill) join(pin bool) {
	if pin {
		f.pinned = true
	} else {
		f.users++
	}
}

// leave is called by a client's GET when it is done with the fill.
func (f *fill) leave() {
	e := f.e
	e.mu.Lock()
	defer e.mu.Unlock()
	f.users--
	if f.users > 0 || f.pinned {
		return
	}
	time.AfterFunc(abandonGrace, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if f.users == 0 && !f.pinned {
			f.cancel()
		}
	})
}

// start returns the fill in flight for req.id, starting one if there is
// none. The fill runs under a context of its own below the node's, not the
// caller's, so that one reader going away does not fail the others. A
// client's GET joins with pin false and must call leave when done; a
// caller that wants the copy kept (pin true) keeps the fill going to its
// end.
func (e *fillEngine) start(req fillRequest, pin bool) *fill {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := &fill{e: e, fillRequest: req, ready: make(chan struct{})}
	f.cond = sync.NewCond(&f.mu)
	refuse := func(err error) *fill {
		// Never started: its callers leave it, and nothing is to cancel.
		f.join(pin)
		f.cancel = func() {}
		f.headErr, f.err = err, err
		close(f.ready)
		return f
	}
	if cur, ok := e.fills[req.id]; ok && !cur.failed() {
		if req.direct && cur.viaOwner {
			// Two nodes each route this fill to the other: the asker
			// fetches it itself, and this fill follows the asker's.
			return refuse(fmt.Errorf("%w: %s", ErrMisdirected, req.id))
		}
		cur.join(pin)
		e.deps.coalesced.Add(1)
		return cur
	}
	if e.closed {
		// The node is waiting for the fills it knows; start no more.
		return refuse(ErrClosed)
	}
	f.join(pin)
	e.fills[req.id] = f
	ctx, cancel := context.WithCancel(e.ctx)
	f.cancel = cancel
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer cancel()
		err := f.run(ctx)
		switch {
		case err == nil:
		case errors.Is(err, ErrNotFound) || errors.Is(err, ErrDeleted):
			// A client's miss (counted as one), not a failure of the node.
			e.deps.log.Debug("fetch found nothing", "id", req.id, "err", err)
		default:
			e.deps.fetchErrors.Add(1)
			e.deps.log.Warn("fetch failed", "id", req.id, "err", err)
		}
		e.mu.Lock()
		if e.fills[req.id] == f { // a later fill may have taken its place
			delete(e.fills, req.id)
		}
		e.mu.Unlock()
	}()
	return f
}

// failed reports whether the fill has already failed, so that a new
// request starts afresh rather than join it on its way out.
func (f *fill) failed() bool {
	select {
	case <-f.ready:
		if f.headErr != nil {
			return true
		}
	default:
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err != nil
}

func (f *fill) run(ctx context.Context) (err error) {
	d := &f.e.deps
	d.fetches.Add(1)
	rc, err := f.open(ctx)
	if err == nil && rc != nil {
		defer rc.Close()
	}
	f.small = err == nil && f.parts == nil && f.entry.Size <= MaxMemoryBody
	if err == nil && !f.small {
		var release func()
		if release, err = d.reserve(f.entry.Size); err == nil {
			defer release()
			f.w, err = d.disk.Create(f.id, f.entry.Size)
			err = diskErr(err)
		}
	}
	if err != nil {
		if f.first != nil {
			f.first.Close()
		}
		f.headErr = err
		close(f.ready)
		return err
	}
	close(f.ready)
	defer func() {
		f.mu.Lock()
		if err != nil {
			f.err = err
			if f.w != nil {
				f.w.Abort()
			}
		}
		f.cond.Broadcast()
		f.mu.Unlock()
	}()

	stop := context.AfterFunc(ctx, f.wake)
	defer stop()
	if f.small {
		return f.runSmall(rc)
	}
	if f.parts != nil {
		if err := f.runParts(ctx); err != nil {
			return err
		}
		return f.finish()
	}
	buf := make([]byte, copyBufferSize)
	for {
		nr, rerr := rc.Read(buf)
		if nr > 0 {
			if _, werr := f.w.Write(buf[:nr]); werr != nil {
				return diskErr(werr)
			}
			f.advance(f.w.Readable())
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return f.readErr(rerr)
		}
	}
	return f.finish()
}

// advance makes the body's bytes [0, written) available to the readers
// and, when that woke any, yields to them: the source's bytes often arrive
// faster than a core that also serves them can take them, and a fill that
// never blocks would otherwise keep its readers from sending the first
// byte until the last one is on disk.
func (f *fill) advance(written int64) {
	f.mu.Lock()
	moved := written > f.written
	f.written = written
	f.cond.Broadcast()
	f.mu.Unlock()
	if moved {
		runtime.Gosched()
	}
}

// readErr describes a failure to read the body from its source.
func (f *fill) readErr(err error) error {
	if f.source == SourcePeer {
		return fmt.Errorf("%w: reading %s from a peer: %w", ErrUnavailable, f.id, err)
	}
	return remoteErr("fetch "+f.id.String(), err)
}

// runSmall takes a small body whole into memory, verifies it, hands it to
// the readers, and only then writes this node's copy: a cold read of a
// small object waits for the source alone, not for the file system.
func (f *fill) runSmall(rc io.Reader) error {
	d := &f.e.deps
	data := make([]byte, f.entry.Size)
	if _, err := io.ReadFull(rc, data); err != nil {
		if (err == io.ErrUnexpectedEOF || err == io.EOF) && f.source != SourcePeer {
			return fmt.Errorf("%w: fetch %s from %s: the body ended early", ErrRemote, f.id, f.source)
		}
		return f.readErr(err) // a peer's answer cut short: the peer is unavailable
	}
	var more [1]byte
	if n, _ := io.ReadFull(rc, more[:]); n > 0 {
		return fmt.Errorf("%w: fetch %s from %s: the body is longer than %d bytes", ErrRemote, f.id, f.source, f.entry.Size)
	}
	sum := storage.Sum(sha256.Sum256(data))
	if f.entry.Sum != (storage.Sum{}) && sum != f.entry.Sum {
		return fmt.Errorf("%w: the remote copy of %s does not match its checksum", ErrRemote, f.id)
	}
	f.mu.Lock()
	f.mem, f.written, f.verified = data, f.entry.Size, true
	f.cond.Broadcast()
	f.mu.Unlock()
	// The readers are ready to run; let them answer before the disk work.
	runtime.Gosched()

	release, err := d.reserve(f.entry.Size)
	if err != nil {
		return err
	}
	defer release()
	w, err := d.disk.Create(f.id, f.entry.Size)
	if err != nil {
		return diskErr(err)
	}
	f.mu.Lock()
	f.w = w
	f.mu.Unlock()
	if _, err := w.Write(data); err != nil {
		return diskErr(err)
	}
	if err := w.Sync(); err != nil {
		return diskErr(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.commit(); err != nil {
		return err
	}
	d.keep(f.id, f.entry.Sum, data)
	return nil
}

// finish verifies a body that has fully arrived and commits it.
func (f *fill) finish() error {
	if f.written != f.entry.Size {
		return fmt.Errorf("%w: fetch %s from %s: got %d bytes of %d", ErrRemote, f.id, f.source, f.written, f.entry.Size)
	}
	// The expected checksum comes from the journal, or from the remote's
	// metadata when the upload recorded it.
	sum := f.w.Sum()
	if f.entry.Sum != (storage.Sum{}) && sum != f.entry.Sum {
		return fmt.Errorf("%w: the remote copy of %s does not match its checksum", ErrRemote, f.id)
	}
	// The readers' last bytes go now, not after the fsyncs and the
	// journal's commit: what they were sent is whole and verified, and
	// the copy is made durable (or dropped) below exactly as before.
	f.mu.Lock()
	f.verified = true
	f.cond.Broadcast()
	f.mu.Unlock()
	runtime.Gosched() // the readers take their last bytes before the fsync
	if err := f.w.Sync(); err != nil {
		return diskErr(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.commit()
}

// open finds the body: for an object the journal knows, from the peers
// (its origin first) and then the remote; on a total miss, from the remote
// alone, whose metadata then describes the object.
func (f *fill) open(ctx context.Context) (io.ReadCloser, error) {
	if f.known == nil {
		return f.openRemote(ctx)
	}
	f.entry = *f.known
	if body := f.e.deps.peerBody(ctx, *f.known); body != nil {
		f.source = SourcePeer
		return body, nil
	}
	if f.known.Level.InRemote() {
		return f.openRemote(ctx)
	}
	return nil, f.e.deps.noCopy(*f.known)
}

// openRemote opens the body in the remote tier. It asks for the first
// part only; when the body is larger, the rest is fetched in parallel
// ranged parts (runParts) and openRemote returns no stream.
func (f *fill) openRemote(ctx context.Context) (io.ReadCloser, error) {
	d := &f.e.deps
	if f.remote == nil {
		return nil, f.noRemote
	}
	partSize := d.partSize
	rc, info, err := f.remoteGet(ctx, 0, partSize, "")
	if err != nil {
		return nil, err
	}
	f.source = SourceRemote
	if g, ok := f.remote.(*ownerGetter); ok && g.ownerEntry() != nil {
		f.source = SourcePeer
	}
	if err := f.describe(info); err != nil {
		rc.Close()
		return nil, err
	}
	if info.Size <= partSize || d.concurrency < 2 {
		if info.Size > partSize {
			// One stream for the whole body: ask again without a range.
			rc.Close()
			if rc, _, err = f.remoteGet(ctx, 0, -1, info.ETag); err != nil {
				return nil, err
			}
		}
		return rc, nil
	}
	f.partSize = partSize
	f.etag = info.ETag
	f.parts = make([]bool, (info.Size+partSize-1)/partSize)
	f.progress = make([]int64, len(f.parts))
	f.wanted = make(chan int, 64)
	f.first = rc
	return nil, nil
}

// remoteGet opens length bytes at off of the body in the remote. When etag
// is set, an answer describing another ETag fails: the object was replaced
// since the fill's first request, and its parts would blend two versions.
func (f *fill) remoteGet(ctx context.Context, off, length int64, etag string) (io.ReadCloser, storage.ObjectInfo, error) {
	rc, info, err := f.remote.Get(ctx, f.key, off, length)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, info, fmt.Errorf("%w: %s is not in the remote store", ErrNotFound, f.id)
	case err != nil:
		return nil, info, remoteErr("fetch "+f.id.String(), err)
	case etag != "" && info.ETag != "" && info.ETag != etag:
		rc.Close()
		return nil, info, fmt.Errorf("%w: %s changed during the fetch (ETag %s, then %s)", ErrRemote, f.id, etag, info.ETag)
	}
	return rc, info, nil
}

// runParts fetches a large body in ranged parts, the engine's concurrency
// at a time, each written at its offset as it streams. Parts are taken in
// order, except that a part a reader waits on goes first. The body's
// checksum is computed in order as the on-disk prefix grows, from the page
// cache, so readers and the hash follow the parts without holding them in
// memory. The first failure cancels the rest and is the one returned.
func (f *fill) runParts(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	// A failed part wakes the hasher waiting on it; part 0 streams on the
	// request opened before, which only closing interrupts.
	stop := context.AfterFunc(ctx, f.wake)
	defer stop()
	stopFirst := context.AfterFunc(ctx, func() { f.first.Close() })
	defer stopFirst()
	var mu sync.Mutex // guards started, next
	started := make([]bool, len(f.parts))
	next := 1
	started[0] = true
	claim := func(k int) bool {
		mu.Lock()
		defer mu.Unlock()
		if k < 0 || k >= len(started) || started[k] {
			return false
		}
		started[k] = true
		return true
	}
	take := func() int {
		mu.Lock()
		defer mu.Unlock()
		for next < len(started) && started[next] {
			next++
		}
		if next == len(started) {
			return -1
		}
		started[next] = true
		return next
	}
	get := func(k int) error {
		off := int64(k) * f.partSize
		rc, _, err := f.remoteGet(ctx, off, min(f.partSize, f.entry.Size-off), f.etag)
		if err != nil {
			return fmt.Errorf("part %d: %w", k, err)
		}
		err = f.fetchPart(ctx, k, rc)
		rc.Close()
		if err != nil {
			return remoteErr(fmt.Sprintf("fetch %s part %d", f.id, k), err)
		}
		return nil
	}
	// One worker serves the parts readers wait on, so a ranged read of a
	// cold object is not queued behind the parts before it.
	hashed := make(chan struct{})
	g.Go(func() error {
		for {
			select {
			case k := <-f.wanted:
				if claim(k) {
					if err := get(k); err != nil {
						return err
					}
				}
			case <-hashed:
				return nil
			case <-ctx.Done():
				return nil
			}
		}
	})
	g.Go(func() error {
		if err := f.fetchPart(ctx, 0, f.first); err != nil {
			return remoteErr(fmt.Sprintf("fetch %s part 0", f.id), err)
		}
		return nil
	})
	for range f.e.deps.concurrency - 1 {
		g.Go(func() error {
			// The other parts start once the first bytes are on their
			// way to the readers (or after firstBytesWait, should part 0
			// stall): on a busy core they would otherwise delay the
			// first byte by their requests and writes.
			if !f.awaitFirstBytes(ctx, firstBytesWait) {
				return nil
			}
			for k := take(); k >= 0; k = take() {
				if err := get(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// Hash the body in order as its prefix lands on disk.
	g.Go(func() error {
		defer close(hashed)
		return f.hashPrefix(ctx)
	})
	return g.Wait()
}

// firstBytesWait bounds how long a parted fetch's other parts wait for
// part 0's first bytes.
const firstBytesWait = 50 * time.Millisecond

// awaitFirstBytes waits until part 0 has bytes on disk or has ended, for
// at most wait, or until ctx is done; it reports whether the fill goes on.
func (f *fill) awaitFirstBytes(ctx context.Context, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	t := time.AfterFunc(wait, f.wake)
	defer t.Stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.progress[0] == 0 && !f.parts[0] && f.err == nil && ctx.Err() == nil && time.Now().Before(deadline) {
		f.cond.Wait()
	}
	return ctx.Err() == nil
}

// fetchPart copies part k from rc to its place in the body.
func (f *fill) fetchPart(ctx context.Context, k int, rc io.Reader) error {
	start := int64(k) * f.partSize
	off, end := start, min(start+f.partSize, f.entry.Size)
	buf := make([]byte, copyBufferSize)
	for off < end {
		nr, err := rc.Read(buf[:min(int64(len(buf)), end-off)])
		if nr > 0 {
			if _, werr := f.w.WriteAt(buf[:nr], off); werr != nil {
				return diskErr(werr)
			}
			off += int64(nr)
			// Whole segments are sealed on disk as they fill; the last
			// one of the part when the part ends.
			done := off - start
			if off < end {
				done -= done % storage.SegmentSize
			}
			f.mu.Lock()
			moved := done > f.progress[k]
			if moved {
				f.progress[k] = done
				f.cond.Broadcast()
			}
			f.mu.Unlock()
			if moved {
				runtime.Gosched() // as in advance
			}
		}
		if err == io.EOF && off < end {
			return fmt.Errorf("%w: part %d of %s ended early", ErrRemote, k, f.id)
		}
		if err != nil && err != io.EOF {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	f.mu.Lock()
	f.parts[k] = true
	f.cond.Broadcast()
	f.mu.Unlock()
	return nil
}

// hashPrefix feeds the body to the writer's hash in order as its parts
// stream in, a segment at a time, advancing written, until the whole body
// is hashed.
func (f *fill) hashPrefix(ctx context.Context) error {
	file, err := f.w.Follow()
	if err != nil {
		return fmt.Errorf("node: follow parts of %s: %w", f.id, err)
	}
	defer file.Close()
	buf := make([]byte, copyBufferSize)
	for k := 0; k < len(f.parts); k++ {
		start := int64(k) * f.partSize
		off, end := start, min(start+f.partSize, f.entry.Size)
		for off < end {
			f.mu.Lock()
			for start+f.progress[k] <= off && ctx.Err() == nil {
				f.cond.Wait()
			}
			avail := start + f.progress[k]
			f.mu.Unlock()
			if err := ctx.Err(); err != nil {
				return err
			}
			for off < avail {
				nr, err := file.ReadAt(buf[:min(int64(len(buf)), avail-off)], off)
				if nr > 0 {
					f.w.Hash(buf[:nr])
					off += int64(nr)
				}
				if err != nil && !(err == io.EOF && off == avail) {
					return fmt.Errorf("node: read back part %d of %s: %w", k, f.id, err)
				}
			}
			f.advance(off)
		}
	}
	return nil
}

// describe settles the entry a body fetched from the remote belongs to.
func (f *fill) describe(info storage.ObjectInfo) error {
	if f.known != nil && f.known.Keyed() && (info.ETag != f.known.ETag || f.known.Sum == (storage.Sum{})) {
		// The origin's object is no longer the one the journal knows, or
		// the journal knows it without its checksum (a multipart upload
		// no node has read yet): the origin's description, with the
		// checksum of what arrives, replaces the journal's.
		f.known = nil
	}
	if f.known != nil {
		if info.Size != f.known.Size {
			return fmt.Errorf("%w: the remote copy of %s is %d bytes, the journal says %d", ErrRemote, f.id, info.Size, f.known.Size)
		}
		return nil
	}
	e, err := f.learn(info)
	if err != nil {
		return err
	}
	f.entry = e
	return nil
}

// commit makes the fetched body durable and records it. Called with f.mu
// held, so readers switch from the temporary file to the final one
// atomically; a failure is recorded in f.err under the same lock, so no
// reader can join in between and look for a file that is gone.
func (f *fill) commit() (err error) {
	defer func() {
		if err != nil {
			f.err = err
		}
	}()
	d := &f.e.deps
	size, sum, err := f.w.Commit(f.id)
	if err != nil {
		return diskErr(err)
	}
	f.entry.Sum = sum
	blob := journal.Blob{Size: size, Sum: sum, Fetched: f.source == SourceRemote}
	if err := d.commit(f.entry, blob, f.known == nil); err != nil {
		d.disk.Remove(f.id, sum)
		return err
	}
	f.done = true
	return nil
}

// wait blocks until the fill has committed the body or failed, for callers
// that want the copy rather than the bytes (repair, replication, pre-warm).
// A fill always ends: by success, failure or the node's Close.
func (f *fill) wait() error {
	<-f.ready
	if f.headErr != nil {
		return f.headErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for !f.done && f.err == nil {
		f.cond.Wait()
	}
	return f.err
}

// wake rouses readers so they notice a canceled context.
func (f *fill) wake() {
	f.mu.Lock()
	f.cond.Broadcast()
	f.mu.Unlock()
}

// newReader opens a reader that follows the fill, and returns the entry
// the body belongs to as it stands (commit fills in its checksum).
func (f *fill) newReader(ctx context.Context) (*fillReader, journal.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, journal.Entry{}, f.err
	}
	var file storage.Body // nil: the body is read from f.mem
	var err error
	switch {
	case f.small:
	case f.done:
		file, _, err = f.e.deps.disk.Open(f.id, f.entry.Sum)
	default:
		file, err = f.w.Follow()
	}
	if err != nil {
		return nil, journal.Entry{}, fmt.Errorf("node: follow fetch of %s: %w", f.id, err)
	}
	r := &fillReader{f: f, file: file, size: f.entry.Size, ctx: ctx}
	r.stop = context.AfterFunc(ctx, f.wake)
	return r, f.entry, nil
}

// fillReader reads a body while it streams in. It holds back the last byte
// until the body is committed, so a reader never sees a complete body that
// later turns out to be short, damaged or deleted: the read fails instead.
type fillReader struct {
	f    *fill
	file storage.Body
	size int64
	off  int64
	ctx  context.Context
	stop func() bool
}

// available waits until bytes at off can be read and returns how many.
func (r *fillReader) available() (int64, error) {
	f := r.f
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if f.err != nil && !f.verified {
			return 0, f.err
		}
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		limit := f.written
		if f.parts != nil && r.off >= limit && r.off < r.size {
			// A parted body: the reader may go ahead of the hashed
			// prefix into whatever is on disk from its offset on: whole
			// parts, then the sealed segments of the part being written.
			// Only the last byte waits for the hash (below).
			k := int(r.off / f.partSize)
			for k < len(f.parts) && f.parts[k] {
				k++
			}
			limit = max(limit, min(int64(k)*f.partSize, r.size))
			if k < len(f.parts) {
				limit = max(limit, int64(k)*f.partSize+f.progress[k])
			}
			if limit <= r.off {
				select {
				case f.wanted <- int(r.off / f.partSize):
				default:
				}
			}
		}
		complete := f.done || f.verified
		if !complete {
			limit = min(limit, r.size-1)
		}
		if limit > r.off {
			return limit - r.off, nil
		}
		if complete {
			return 0, io.EOF
		}
		if f.err != nil {
			return 0, f.err
		}
		f.cond.Wait()
	}
}

// Read blocks until bytes at the offset have arrived. At the end it waits
// for the commit, so even an empty body is only ever served whole.
func (r *fillReader) Read(p []byte) (int, error) {
	avail, err := r.available()
	if err != nil {
		return 0, err
	}
	p = p[:min(int64(len(p)), avail)]
	if r.file == nil {
		// A small body: in memory once available says so.
		n := copy(p, r.f.mem[r.off:])
		r.off += int64(n)
		return n, nil
	}
	n, err := r.file.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (r *fillReader) Seek(offset int64, whence int) (int64, error) {
	off, err := seekTo(r.off, r.size, offset, whence)
	if err == nil {
		r.off = off
	}
	return off, err
}

// seekTo returns the position io.Seeker's Seek(offset, whence) moves to
// from cur in a body of size bytes.
func seekTo(cur, size, offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += cur
	case io.SeekEnd:
		offset += size
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	return offset, nil
}

func (r *fillReader) Close() error {
	r.stop()
	if r.file == nil {
		return nil
	}
	return r.file.Close()
}
