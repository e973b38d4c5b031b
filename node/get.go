package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// Source says where the bytes of a GET come from.
type Source string

// Sources of a GET's bytes.
const (
	SourceLocal  Source = "local"
	SourcePeer   Source = "peer"
	SourceRemote Source = "remote"
)

// GetOptions tunes Get.
type GetOptions struct {
	// Fetch allows fetching an object the journal does not know from the
	// remote tier. Objects the journal knows are fetched when needed
	// regardless.
	Fetch bool
}

// Object is an open object. Content reads and seeks its body; the caller
// must Close it.
type Object struct {
	Meta
	// Source is where the bytes come from.
	Source Source
	// Fetched is set when this GET brought the body in from the remote or
	// a peer.
	Fetched bool
	// Content is the body. When it streams in from the remote, reads block
	// until the bytes arrive, and fail rather than end early if the fetch
	// fails, so a partial body is never taken for a whole one.
	Content io.ReadSeeker
	close   func() error
}

// Close releases the body.
func (o *Object) Close() error { return o.close() }

// Get opens object id. The body is served from local disk when this node
// holds a whole copy; otherwise, when the object is in the remote tier, it
// is fetched (one remote request however many callers ask at once), stored
// locally, and streamed to every caller as it arrives. Unknown objects are
// fetched only with opts.Fetch, and never when the journal holds a
// tombstone. Errors match ErrNotFound, ErrDeleted (with the tombstone's
// description in the returned Object's Meta), ErrRemote or
// ErrRemoteUnavailable.
func (n *Node) Get(ctx context.Context, id ulid.ULID, opts GetOptions) (*Object, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	e, b, err := n.lookup(id)
	switch {
	case errors.Is(err, journal.ErrNotFound):
		if !opts.Fetch {
			n.counters.misses.Add(1)
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return n.fetch(ctx, id, nil)
	case err != nil:
		return nil, fmt.Errorf("node: get %s: %w", id, err)
	case e.Deleted:
		return &Object{Meta: metaOf(e, nil), close: nopClose}, fmt.Errorf("%w: %s", ErrDeleted, id)
	}
	if b != nil && n.expired(e, *b) {
		n.log.Debug("cached copy expired; fetching a fresh one", "id", id, "stored", b.Stored)
		n.dropBlob(id, b.Sum, false)
		b = nil
	}
	if obj, err := n.openLocal(e, b); err == nil {
		n.counters.hitsLocal.Add(1)
		n.policy.Touch(id)
		return obj, nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	if !e.Level.InRemote() && e.Origin == n.id && len(n.peers(e.Origin)) == 0 {
		// This node took the PUT and lost the body, and no peer could hold
		// a copy.
		n.counters.misses.Add(1)
		return nil, fmt.Errorf("%w: the body of level-0 object %s was lost with this node's disk", ErrNotFound, id)
	}
	return n.fetch(ctx, id, &e)
}

func nopClose() error { return nil }

// openLocal opens this node's copy of e's body, whose record is b (nil when
// this node holds none). A copy whose size does not match its record is
// dropped (and fetched again where the remote has it) rather than served;
// the result is then storage.ErrNotFound.
func (n *Node) openLocal(e journal.Entry, b *journal.Blob) (*Object, error) {
	if b == nil {
		return nil, storage.ErrNotFound
	}
	f, size, err := n.disk.Open(e.ID, b.Sum)
	if err == nil && size != b.Size {
		f.Close()
		err = fmt.Errorf("%w: body of %s is %d bytes on disk, %d in the journal", storage.ErrNotFound, e.ID, size, b.Size)
	}
	if errors.Is(err, storage.ErrNotFound) {
		if errors.Is(err, storage.ErrCorrupt) {
			n.counters.readDamaged.Add(1)
		}
		n.log.Warn("local body missing or damaged; dropping it", "id", e.ID, "err", err)
		n.dropBlob(e.ID, b.Sum, e.Level.InRemote())
		return nil, storage.ErrNotFound
	}
	if errors.Is(err, storage.ErrFormat) {
		// Kept (a newer release may read it) but not served: where
		// another copy exists, a fresh fetch replaces it.
		n.log.Error("local body in a format this build cannot read", "id", e.ID, "err", err)
		if e.Level.InRemote() || len(n.peers(e.Origin)) > 0 {
			return nil, storage.ErrNotFound
		}
		return nil, safeErrorf(ErrUnavailable, "this node's copy of %s is in a format this build cannot read", e.ID)
	}
	if errors.Is(err, storage.ErrNoKey) {
		n.log.Error("cannot decrypt a local body", "id", e.ID, "err", err)
		return nil, safeErrorf(ErrUnavailable, "this node's copy of %s is encrypted with a key it does not have", e.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("node: open body %s: %w", e.ID, err)
	}
	var content io.ReadSeeker = f
	if _, raw := f.(*os.File); !raw {
		// A checked body: the read that finds damage fails (the client's
		// response is cut short, never completed with bad bytes) and drops
		// this copy, so the next read fetches a sound one.
		inRemote := e.Level.InRemote()
		content = &damageWatch{Body: f, drop: func(err error) {
			n.counters.readDamaged.Add(1)
			n.log.Error("local body damaged; dropping it", "id", e.ID, "err", err)
			n.dropBlob(e.ID, b.Sum, inRemote)
		}}
	}
	return &Object{Meta: metaOf(e, b), Source: SourceLocal, Content: content, close: f.Close}, nil
}

// damageWatch passes reads of a local body through, and calls drop once,
// the first time a read finds the body damaged.
type damageWatch struct {
	storage.Body
	once sync.Once
	drop func(error)
}

func (d *damageWatch) Read(p []byte) (int, error) {
	n, err := d.Body.Read(p)
	return n, d.check(err)
}

func (d *damageWatch) ReadAt(p []byte, off int64) (int, error) {
	n, err := d.Body.ReadAt(p, off)
	return n, d.check(err)
}

func (d *damageWatch) check(err error) error {
	if err != nil && errors.Is(err, storage.ErrCorrupt) {
		d.once.Do(func() { d.drop(err) })
	}
	return err
}

// dropBlob forgets this node's copy of a body and removes its file; when
// refetch is set the body is queued to be fetched again from the remote.
func (n *Node) dropBlob(id ulid.ULID, sum storage.Sum, refetch bool) {
	err := n.journal.Update(func(tx *journal.Tx) error {
		b, err := tx.Blob(id)
		if err != nil || b.Sum != sum {
			return nil // already dropped or replaced
		}
		return tx.DeleteBlob(id)
	})
	if err != nil {
		n.log.Error("drop body record", "id", id, "err", err)
		return
	}
	n.disk.Remove(id, sum)
	n.policy.Remove(id)
	if refetch {
		n.queueRepair(id)
	}
}

// fetch streams object id from the remote, joining a fetch already in
// flight. known is the journal's entry, or nil on a total miss.
func (n *Node) fetch(ctx context.Context, id ulid.ULID, known *journal.Entry) (*Object, error) {
	if known == nil && n.misses.has(id) {
		n.counters.misses.Add(1)
		return nil, fmt.Errorf("%w: %s is not in the remote tier (asked less than %v ago)", ErrNotFound, id, missTTL)
	}
	f := n.startFill(id, known, false)
	select {
	case <-f.ready:
	case <-ctx.Done():
		f.leave()
		return nil, ctx.Err()
	}
	if f.headErr != nil {
		f.leave()
		n.counters.misses.Add(1)
		if known == nil && errors.Is(f.headErr, ErrNotFound) {
			n.misses.add(id)
		}
		return nil, f.headErr
	}
	r, entry, err := f.newReader(ctx)
	if err != nil {
		f.leave()
		return nil, err
	}
	if f.source == SourcePeer {
		n.counters.hitsPeer.Add(1)
	} else {
		n.counters.hitsRemote.Add(1)
	}
	m := metaOf(entry, nil)
	m.IsFetched = f.source == SourceRemote
	m.IsSymlink = f.source == SourcePeer
	return &Object{Meta: m, Source: f.source, Fetched: true, Content: r, close: func() error {
		defer f.leave()
		return r.Close()
	}}, nil
}

// fill is one fetch of a body from the remote tier into local disk, which
// any number of readers follow as it streams in.
type fill struct {
	n     *Node
	id    ulid.ULID
	known *journal.Entry

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
	done    bool  // the body is committed under its final path
	err     error // the fetch failed; readers fail too

	// A large body from the remote arrives in parts, in parallel; parts
	// records which are on disk (nil for a single stream), and wanted
	// carries readers' requests for a part they wait on, so a ranged read
	// of a cold object is served without waiting for the parts before it.
	parts    []bool
	partSize int64
	wanted   chan int
	// first is the open stream of part 0 of a parted fetch.
	first io.ReadCloser

	// users counts the clients' GETs following the fill, and pinned is set
	// once a caller that wants the copy itself (replication, repair,
	// pre-warm) joins; both are guarded by the node's fillsMu. A fill
	// that only clients wanted is canceled soon after the last of them
	// leaves, so a client cannot start fetches and walk away from them.
	users  int
	pinned bool
	cancel context.CancelFunc
}

// abandonGrace is how long a fill whose every reader left goes on, so a
// client that reconnects at once (a retry, the next range) finds it.
var abandonGrace = 5 * time.Second

// join counts a new follower of the fill. Called with fillsMu held.
func (f *fill) join(pin bool) {
	if pin {
		f.pinned = true
	} else {
		f.users++
	}
}

// leave is called by a client's GET when it is done with the fill.
func (f *fill) leave() {
	n := f.n
	n.fillsMu.Lock()
	defer n.fillsMu.Unlock()
	f.users--
	if f.users > 0 || f.pinned {
		return
	}
	time.AfterFunc(abandonGrace, func() {
		n.fillsMu.Lock()
		defer n.fillsMu.Unlock()
		if f.users == 0 && !f.pinned {
			f.cancel()
		}
	})
}

// startFill returns the fill in flight for id, starting one if there is
// none. The fill runs under a context of its own below the node's, not the
// caller's, so that one reader going away does not fail the others. A
// client's GET joins with pin false and must call leave when done; a
// caller that wants the copy kept (pin true) keeps the fill going to its
// end.
func (n *Node) startFill(id ulid.ULID, known *journal.Entry, pin bool) *fill {
	n.fillsMu.Lock()
	defer n.fillsMu.Unlock()
	if f, ok := n.fills[id]; ok && !f.failed() {
		f.join(pin)
		return f
	}
	f := &fill{n: n, id: id, known: known, ready: make(chan struct{})}
	f.cond = sync.NewCond(&f.mu)
	f.join(pin)
	if n.closed.Load() {
		// Close is waiting for the fills it knows; start no more.
		f.headErr, f.err = ErrClosed, ErrClosed
		close(f.ready)
		return f
	}
	n.fills[id] = f
	ctx, cancel := context.WithCancel(n.ctx)
	f.cancel = cancel
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer cancel()
		err := f.run(ctx)
		if err != nil {
			n.counters.fetchErrors.Add(1)
			n.log.Warn("fetch failed", "id", id, "err", err)
		}
		n.fillsMu.Lock()
		if n.fills[id] == f { // a later fill may have taken its place
			delete(n.fills, id)
		}
		n.fillsMu.Unlock()
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
	n := f.n
	n.counters.fetches.Add(1)
	rc, err := f.open(ctx)
	if err == nil && rc != nil {
		defer rc.Close()
	}
	if err == nil {
		var release func()
		if release, err = n.reserve(f.entry.Size); err == nil {
			defer release()
			f.w, err = n.disk.Create(f.id, f.entry.Size)
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
			f.w.Abort()
		}
		f.cond.Broadcast()
		f.mu.Unlock()
	}()

	stop := context.AfterFunc(ctx, f.wake)
	defer stop()
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
			f.mu.Lock()
			f.written = f.w.Readable()
			f.cond.Broadcast()
			f.mu.Unlock()
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if f.source == SourcePeer {
				return fmt.Errorf("%w: reading %s from a peer: %w", ErrUnavailable, f.id, rerr)
			}
			return remoteErr("fetch "+f.id.String(), rerr)
		}
	}
	return f.finish()
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
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.commit(sum)
}

// open finds the body: for an object the journal knows, from the peers
// (its origin first) and then the remote; on a total miss, from the remote
// alone, whose metadata then describes the object.
func (f *fill) open(ctx context.Context) (io.ReadCloser, error) {
	n := f.n
	if f.known == nil {
		return f.openRemote(ctx)
	}
	f.entry = *f.known
	for _, p := range n.peers(f.known.Origin) {
		resp, err := n.cl.client.Peer(p.PrivateAddr).Get(ctx, f.id)
		if err != nil {
			n.log.Debug("peer read failed", "id", f.id, "peer", p.ID, "err", err)
			continue
		}
		if resp.ContentLength != f.known.Size || resp.Header.Get(cluster.HeaderSHA256) != hex.EncodeToString(f.known.Sum[:]) {
			// The peer holds another version of the body.
			resp.Body.Close()
			continue
		}
		f.source = SourcePeer
		return resp.Body, nil
	}
	if f.known.Level.InRemote() {
		return f.openRemote(ctx)
	}
	if f.known.Origin == n.id {
		return nil, fmt.Errorf("%w: the body of level-0 object %s was lost with this node's disk and no peer holds a copy", ErrNotFound, f.id)
	}
	origin := "unknown"
	if n.cl.members != nil {
		if m, ok := n.cl.members.Member(f.known.Origin); ok {
			origin = string(m.State)
		}
	}
	return nil, safeErrorf(ErrUnavailable, "level-0 object %s is held by node %s (%s) and no live node could serve it",
		f.id, f.known.Origin, origin)
}

// openRemote opens the body in the remote tier. It asks for the first
// part only; when the body is larger, the rest is fetched in parallel
// ranged parts (runParts) and openRemote returns no stream.
func (f *fill) openRemote(ctx context.Context) (io.ReadCloser, error) {
	n := f.n
	partSize := n.cfg.FetchPartSize
	rc, info, err := n.remote.Get(ctx, n.remoteKey(f.id), 0, partSize)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s is not in the remote store", ErrNotFound, f.id)
	}
	if err != nil {
		return nil, remoteErr("fetch "+f.id.String(), err)
	}
	f.source = SourceRemote
	if err := f.describe(info); err != nil {
		rc.Close()
		return nil, err
	}
	if info.Size <= partSize || n.cfg.FetchConcurrency < 2 {
		if info.Size > partSize {
			// One stream for the whole body: ask again without a range.
			rc.Close()
			if rc, _, err = n.remote.Get(ctx, n.remoteKey(f.id), 0, -1); err != nil {
				return nil, remoteErr("fetch "+f.id.String(), err)
			}
		}
		return rc, nil
	}
	f.partSize = partSize
	f.parts = make([]bool, (info.Size+partSize-1)/partSize)
	f.wanted = make(chan int, 64)
	f.first = rc
	return nil, nil
}

// runParts fetches a large body in ranged parts, FetchConcurrency at a
// time, each written at its offset as it streams. Parts are taken in
// order, except that a part a reader waits on goes first. The body's
// checksum is computed in order as the on-disk prefix grows, from the page
// cache, so readers and the hash follow the parts without holding them in
// memory.
func (f *fill) runParts(ctx context.Context) error {
	n := f.n
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A failed part cancels the rest and wakes the hasher waiting on it;
	// part 0 streams on the request opened before, which only closing
	// interrupts.
	stop := context.AfterFunc(ctx, f.wake)
	defer stop()
	stopFirst := context.AfterFunc(ctx, func() { f.first.Close() })
	defer stopFirst()
	// The first failure is the cause; the others are its cancellation.
	var firstErr error
	var failOnce sync.Once
	fail := func(err error) {
		failOnce.Do(func() { firstErr = err })
		cancel()
	}
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
	var wg sync.WaitGroup
	get := func(k int) error {
		off := int64(k) * f.partSize
		rc, _, err := n.remote.Get(ctx, n.remoteKey(f.id), off, min(f.partSize, f.entry.Size-off))
		if err == nil {
			err = f.fetchPart(ctx, k, rc)
			rc.Close()
		}
		if err != nil {
			fail(remoteErr(fmt.Sprintf("fetch %s part %d", f.id, k), err))
		}
		return err
	}
	// One worker serves the parts readers wait on, so a ranged read of a
	// cold object is not queued behind the parts before it.
	hashed := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case k := <-f.wanted:
				if claim(k) && get(k) != nil {
					return
				}
			case <-hashed:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := f.fetchPart(ctx, 0, f.first); err != nil {
			fail(remoteErr(fmt.Sprintf("fetch %s part 0", f.id), err))
		}
	}()
	for range n.cfg.FetchConcurrency - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := take(); k >= 0; k = take() {
				if get(k) != nil {
					return
				}
			}
		}()
	}
	// Hash the body in order as its prefix lands on disk.
	if err := f.hashPrefix(ctx); err != nil {
		fail(err)
	}
	close(hashed)
	wg.Wait()
	return firstErr
}

// fetchPart copies part k from rc to its place in the body.
func (f *fill) fetchPart(ctx context.Context, k int, rc io.Reader) error {
	off := int64(k) * f.partSize
	end := min(off+f.partSize, f.entry.Size)
	buf := make([]byte, copyBufferSize)
	for off < end {
		nr, err := rc.Read(buf[:min(int64(len(buf)), end-off)])
		if nr > 0 {
			if _, werr := f.w.WriteAt(buf[:nr], off); werr != nil {
				return diskErr(werr)
			}
			off += int64(nr)
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

// hashPrefix feeds the body to the writer's hash in order as parts
// complete, advancing written, until the whole body is hashed.
func (f *fill) hashPrefix(ctx context.Context) error {
	file, err := f.w.Follow()
	if err != nil {
		return fmt.Errorf("node: follow parts of %s: %w", f.id, err)
	}
	defer file.Close()
	buf := make([]byte, copyBufferSize)
	for k := 0; k < len(f.parts); k++ {
		f.mu.Lock()
		for !f.parts[k] && ctx.Err() == nil {
			f.cond.Wait()
		}
		f.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return err
		}
		off := int64(k) * f.partSize
		end := min(off+f.partSize, f.entry.Size)
		for off < end {
			nr, err := file.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
			if nr > 0 {
				f.w.Hash(buf[:nr])
				off += int64(nr)
			}
			if err != nil && !(err == io.EOF && off == end) {
				return fmt.Errorf("node: read back part %d of %s: %w", k, f.id, err)
			}
		}
		f.mu.Lock()
		f.written = end
		f.cond.Broadcast()
		f.mu.Unlock()
	}
	return nil
}

// describe settles the entry a body fetched from the remote belongs to.
func (f *fill) describe(info storage.ObjectInfo) error {
	if f.known != nil {
		if info.Size != f.known.Size {
			return fmt.Errorf("%w: the remote copy of %s is %d bytes, the journal says %d", ErrRemote, f.id, info.Size, f.known.Size)
		}
		return nil
	}
	e, err := entryFromRemote(f.id, info)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRemote, err)
	}
	switch {
	case e.Version.Node != (ulid.ULID{}):
		// Written by a node: checked like an entry from a peer, since
		// anyone with access to the bucket could have written it.
		if err := f.n.checkEntry(e); err != nil {
			return fmt.Errorf("%w: remote copy of %s: %w", ErrRemote, f.id, err)
		}
	case f.n.clock.Check(e.Version.Time) != nil:
		// Put there by other means, by a store whose clock runs ahead:
		// this node's reading stands in for the modification time.
		e.Version.Time = f.n.clock.Now()
	}
	f.entry = e
	return nil
}

// commit makes the fetched body durable and records it. Called with f.mu
// held, so readers switch from the temporary file to the final one
// atomically; a failure is recorded in f.err under the same lock, so no
// reader can join in between and look for a file that is gone.
func (f *fill) commit(sum storage.Sum) (err error) {
	defer func() {
		if err != nil {
			f.err = err
		}
	}()
	n := f.n
	size, sum, err := f.w.Commit(f.id)
	if err != nil {
		return diskErr(err)
	}
	f.entry.Sum = sum
	blob := journal.Blob{Size: size, Sum: sum, Stored: n.physicalNow().UTC(), Fetched: f.source == SourceRemote}
	var learned bool
	var deleted bool
	err = n.journal.Update(func(tx *journal.Tx) error {
		cur, err := tx.Entry(f.id)
		switch {
		case errors.Is(err, journal.ErrNotFound):
		case err != nil:
			return err
		case cur.Deleted:
			deleted = true
			return nil
		case cur.Version.Compare(f.entry.Version) > 0 && cur.Sum != sum:
			// A newer write landed while the body streamed in.
			return fmt.Errorf("%w: %s changed during the fetch", ErrConflict, f.id)
		}
		// On a total miss, or when the journal's entry is older than the
		// remote's, the remote's description becomes the entry.
		if learned, err = tx.Apply(f.entry); err != nil {
			return err
		}
		if f.known == nil {
			// Learned from the remote's metadata (checked by describe);
			// an entry from the journal was observed when it arrived.
			if err := n.clock.Observe(f.entry.Version.Time); err != nil {
				return err
			}
		}
		return tx.PutBlob(f.id, blob)
	})
	if err == nil && deleted {
		err = fmt.Errorf("%w: %s was deleted during the fetch", ErrDeleted, f.id)
	}
	if err != nil {
		n.disk.Remove(f.id, sum)
		return diskErr(err)
	}
	if learned {
		n.announce(f.entry)
	}
	if n.evictable(f.entry) {
		n.policy.Add(f.id, size)
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
	var file storage.Body
	var err error
	if f.done {
		file, _, err = f.n.disk.Open(f.id, f.entry.Sum)
	} else {
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
		if f.err != nil {
			return 0, f.err
		}
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		limit := f.written
		if f.parts != nil && r.off >= limit && r.off < r.size {
			// A parted body: the reader may go ahead of the in-order
			// prefix into any part already on disk.
			k := int(r.off / f.partSize)
			for k < len(f.parts) && f.parts[k] {
				k++
			}
			limit = max(limit, min(int64(k)*f.partSize, r.size))
			if limit <= r.off {
				select {
				case f.wanted <- int(r.off / f.partSize):
				default:
				}
			}
		}
		if !f.done {
			limit = min(limit, r.size-1)
		}
		if limit > r.off {
			return limit - r.off, nil
		}
		if f.done {
			return 0, io.EOF
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
	n, err := r.file.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (r *fillReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	r.off = offset
	return offset, nil
}

func (r *fillReader) Close() error {
	r.stop()
	return r.file.Close()
}
