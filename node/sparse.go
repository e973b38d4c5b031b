package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// Ranged reads of cold objects fetch only the parts they touch. A node's
// copy of an object may be sparse: some of its parts (FetchPartSize bytes
// each, aligned), each fetched with a ranged request, stored as a body of
// its own (storage.Disk.CreatePart) and recorded in the journal once
// durable. A ranged GET of an object this node does not hold whole reads
// the parts it holds and fetches the ones it lacks, the part it waits on
// streamed to the client as it arrives, the parts after it in the range
// (and Config.ReadAhead more) fetched in parallel; a full GET of an
// object held sparsely does the same over the whole body. Every fetch of a
// part must come with the ETag the copy was begun with: an object changed
// at its source is dropped and begun again, never mixed. When every part
// is held, the copy is assembled into an ordinary body (verified against
// the object's checksum where the journal knows it) and the parts go.
//
// For a key-addressed object, the parts come through the member that owns
// the key's fills, which serves them from its own copy (whole or sparse)
// and fetches the ones it lacks once for the whole cluster.

// Range is the span of a body that a GET will read.
type Range struct {
	// Offset is the first byte read; a negative Offset reads the last
	// -Offset bytes.
	Offset int64
	// Length is the number of bytes read from Offset, or -1 for all to
	// the end.
	Length int64
}

// span returns the bytes [start, end) that r reads of a body of size
// bytes.
func (r Range) span(size int64) (start, end int64) {
	if r.Offset < 0 {
		return max(0, size+r.Offset), size
	}
	start, end = min(r.Offset, size), size
	if r.Length >= 0 && r.Length < size-start {
		end = start + r.Length
	}
	return start, end
}

// whole reports whether r reads all of a body of size bytes.
func (r *Range) whole(size int64) bool {
	if r == nil {
		return true
	}
	start, end := r.span(size)
	return start == 0 && end == size
}

// newSparseTag names the parts of a new sparse copy on disk: random, so
// that a copy begun again after a drop (of the same version, even) never
// meets its predecessor's records or files.
func newSparseTag() string {
	var b [8]byte
	rand.Read(b[:]) // never fails; crashes the program instead
	return hex.EncodeToString(b[:])
}

// errCopyDropped fails the readers of a sparse copy that was dropped
// (invalidated, evicted, or its object changed) while they read it.
var errCopyDropped = errors.New("node: this node's partial copy was dropped during the read")

// sparseSet holds the sparse copies in use: being read or having parts
// fetched. Copies at rest are in the journal alone.
type sparseSet struct {
	n      *Node
	mu     sync.Mutex
	copies map[ulid.ULID]*sparseCopy

	// gate guards closed, and is held while a goroutine of the set's is
	// counted in the node's wait group, so none is counted once Close
	// waits on it. It is taken last, under any other lock.
	gate   sync.Mutex
	closed bool
}

// sparseCopy is a sparse copy in use.
type sparseCopy struct {
	n  *Node
	id ulid.ULID
	// req is the request that found the copy's source: parts come from
	// req.remote under req.key.
	req fillRequest

	// ready is closed once entry, rec and source are set, or headErr is.
	ready   chan struct{}
	headErr error
	entry   journal.Entry
	rec     journal.Sparse
	source  Source

	mu   sync.Mutex // guards the fields below; cond waits on it
	cond *sync.Cond
	// etag is the ETag every remote answer must carry: rec's, or, for a
	// ULID object's copy begun without one, the remote's first. rec
	// itself does not change once the copy is ready.
	etag  string
	have  []bool // parts durable and recorded
	held  int64  // their bytes
	parts map[int]*partFetch
	// err is set when the copy was dropped: its readers fail.
	err error
	// whole is set once the copy was assembled into the body with
	// checksum wholeSum: readers then read that.
	whole    bool
	wholeSum storage.Sum
	// users counts the readers; the copy leaves the set when the last one
	// leaves and no part is being fetched.
	users      int
	assembling bool
	// localOnly marks a copy opened to serve a peer from the parts held
	// here: it never fetches.
	localOnly bool
	// dropped is set when the copy was dropped before it was ready, so
	// that it records nothing after all.
	dropped bool
	// assembleErr is the last assembly's failure.
	assembleErr error
}

// partFetch is one part streaming in from the copy's source.
type partFetch struct {
	w *storage.Writer
	// readable counts the part's bytes readers can take from w: those of
	// its sealed segments.
	readable int64
	// sealing is set once the part is whole and being made durable: its
	// temporary file is about to be renamed.
	sealing bool
	done    bool
	err     error
}

func newSparseSet(n *Node) *sparseSet {
	return &sparseSet{n: n, copies: make(map[ulid.ULID]*sparseCopy)}
}

// sparseEligible reports whether a GET of req reading rng goes through a
// sparse copy: a ranged read of a body this node does not hold, not
// smaller than a part, from the remote tier or an origin bucket; or any
// read of a body this node holds sparsely, or has a sparse copy of in use.
func (n *Node) sparseEligible(req fillRequest, rng *Range) bool {
	if req.remote == nil || n.fills.inFlight(req.id) {
		// No source for parts, or a fill of the whole body is under way,
		// which the read follows.
		return false
	}
	if k := req.known; k != nil {
		switch {
		case !k.Level.InRemote():
			return false
		case !rng.whole(k.Size) && k.Size > n.cfg.FetchPartSize:
			return true
		}
		return n.heldSparse(req.id) || n.sparse.active(req.id)
	}
	return rng != nil && !(rng.Offset == 0 && rng.Length < 0) || n.sparse.active(req.id)
}

// active reports whether a sparse copy of id is in use here (being read,
// or fetching parts): a read of the whole object then joins it rather
// than fetch the parts it is fetching a second time.
func (s *sparseSet) active(id ulid.ULID) bool {
	s.mu.Lock()
	c := s.copies[id]
	s.mu.Unlock()
	if _, ready := c.readyTag(); !ready {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err == nil && !c.whole
}

// heldSparse reports whether this node holds some parts of id.
func (n *Node) heldSparse(id ulid.ULID) bool {
	return n.journal.HoldsParts(id)
}

// fetchSparse opens the object req names through its sparse copy, for a
// GET reading rng (nil: all of it).
func (n *Node) fetchSparse(ctx context.Context, req fillRequest, rng *Range) (*Object, error) {
	c, err := n.sparse.acquire(ctx, req, rng)
	if err != nil {
		if errors.Is(err, errNotSparse) {
			return n.fetch(ctx, req)
		}
		n.counters.misses.Add(1)
		return nil, err
	}
	size := c.entry.Size
	start, end := int64(0), size
	if rng != nil {
		start, end = rng.span(size)
	}
	r := &sparseReader{c: c, ctx: ctx, size: size, end: end, k: -1}
	r.stop = context.AfterFunc(ctx, c.wake)
	c.assembleIfComplete() // one whose assembly failed before tries again
	src := SourceLocal
	if !c.holds(start, end) {
		src = c.source
	}
	switch src {
	case SourceLocal:
		n.counters.hitsLocal.Add(1)
		n.policy.Touch(c.id)
	case SourcePeer:
		n.counters.hitsPeer.Add(1)
	default:
		n.counters.hitsRemote.Add(1)
	}
	n.counters.sparseReads.Add(1)
	m := metaOf(c.entry, nil)
	m.IsFetched = src == SourceRemote
	m.Held = c.heldBytes()
	return &Object{Meta: m, Source: src, Fetched: src != SourceLocal, Sparse: true, Content: r, entry: c.entry, close: func() error {
		err := r.Close()
		c.leave()
		return err
	}}, nil
}

// openSparseLocal opens e's body for a peer's read of rng from this
// node's sparse copy, when it holds every part the range touches; it
// never fetches (a read outside the range that reaches a part not held
// fails).
func (n *Node) openSparseLocal(ctx context.Context, e journal.Entry, rng *Range) (*Object, error) {
	rec, parts, err := n.journal.Sparse(e.ID)
	if err != nil || rec.Version != e.Version || rec.Size != e.Size {
		return nil, fmt.Errorf("%w: this node does not hold the body of %s", ErrNotFound, e.ID)
	}
	c := &sparseCopy{n: n, id: e.ID, entry: e, source: SourceLocal, localOnly: true,
		ready: make(chan struct{}), parts: make(map[int]*partFetch)}
	close(c.ready)
	c.cond = sync.NewCond(&c.mu)
	c.load(rec, parts)
	start, end := rng.span(e.Size)
	if !c.holds(start, end) {
		return nil, fmt.Errorf("%w: this node does not hold bytes %d to %d of %s", ErrNotFound, start, end, e.ID)
	}
	r := &sparseReader{c: c, ctx: ctx, size: e.Size, end: end, k: -1}
	r.stop = context.AfterFunc(ctx, c.wake)
	m := metaOf(e, nil)
	m.Held = c.held
	return &Object{Meta: m, Source: SourceLocal, Sparse: true, Content: r, entry: e, close: r.Close}, nil
}

// errNotSparse says a read is better served by an ordinary fill after
// all (the source names no version of the object).
var errNotSparse = errors.New("node: not read sparsely")

// acquire returns the copy of the object req names, in use by one more
// reader (who calls leave when done), establishing it if needed.
func (s *sparseSet) acquire(ctx context.Context, req fillRequest, rng *Range) (*sparseCopy, error) {
	s.mu.Lock()
	c := s.copies[req.id]
	if c != nil && c.stale(req.known) {
		delete(s.copies, req.id)
		c = nil
	}
	if c == nil {
		if s.n.closed.Load() {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		c = &sparseCopy{n: s.n, id: req.id, req: req, ready: make(chan struct{}), parts: make(map[int]*partFetch), users: 1}
		c.cond = sync.NewCond(&c.mu)
		s.copies[req.id] = c
		s.mu.Unlock()
		c.headErr = c.establish(rng)
		close(c.ready)
		if c.headErr != nil {
			c.leave()
			return nil, c.headErr
		}
		return c, nil
	}
	c.users++
	s.mu.Unlock()
	select {
	case <-c.ready:
	case <-ctx.Done():
		c.leave()
		return nil, ctx.Err()
	}
	if c.headErr != nil {
		c.leave()
		return nil, c.headErr
	}
	return c, nil
}

// stale reports whether the copy can no longer serve a read of known
// (nil on a total miss): it failed, was dropped, or is of an older
// version. Called with the set's lock held.
func (c *sparseCopy) stale(known *journal.Entry) bool {
	select {
	case <-c.ready:
		if c.headErr != nil {
			return true
		}
		if known != nil && known.Version.Compare(c.entry.Version) > 0 {
			return true
		}
	default:
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err != nil
}

// leave ends a reader's use of the copy.
func (c *sparseCopy) leave() {
	s := c.n.sparse
	s.mu.Lock()
	defer s.mu.Unlock()
	c.users--
	c.forgetIfIdle()
}

// forgetIfIdle removes the copy from the set when no reader uses it and
// no part is being fetched. Called with the set's lock held.
func (c *sparseCopy) forgetIfIdle() {
	c.mu.Lock()
	idle := c.users == 0 && len(c.parts) == 0 && !c.assembling
	c.mu.Unlock()
	if idle && c.n.sparse.copies[c.id] == c {
		delete(c.n.sparse.copies, c.id)
	}
}

// establish settles which object and version the copy holds, from the
// journal's records and, unless the first part the read needs is held,
// from the source's answer for that part, whose stream becomes that
// part's fetch.
func (c *sparseCopy) establish(rng *Range) error {
	n := c.n
	req := c.req
	rec, parts, err := n.journal.Sparse(c.id)
	switch {
	case errors.Is(err, journal.ErrNotFound):
	case err != nil:
		return fmt.Errorf("node: sparse copy of %s: %w", c.id, err)
	case req.known != nil && rec.Version == req.known.Version && rec.Size == req.known.Size:
		c.entry, c.source = *req.known, SourceRemote
		c.load(rec, parts)
		k0 := c.firstPart(rng)
		if k0 >= len(c.have) || c.have[k0] {
			return nil // the read starts on a part held here
		}
	default:
		// Parts of another version of the object.
		n.discardSparse(c.id, rec.Tag)
	}

	if k := req.known; k != nil && rng != nil && k.Size > 0 {
		if start, _ := rng.span(k.Size); start >= k.Size {
			// A read past the end, which is answered 416 unread: nothing
			// to fetch or keep.
			c.entry, c.source = *k, SourceLocal
			if c.rec.Tag == "" {
				c.rec = journal.Sparse{Version: k.Version, Size: k.Size, PartSize: n.cfg.FetchPartSize}
				c.have = make([]bool, c.rec.Parts())
			}
			return nil
		}
	}
	if k := req.known; k != nil && !k.Keyed() {
		// A ULID object the journal knows: its version names its body,
		// which peers holding parts of it can serve as well as the
		// remote; the remote's ETag is learned with its first part.
		return c.begin(*k, "", false, rng, nil)
	}

	// Ask the source for the first part the read needs.
	partSize := n.cfg.FetchPartSize
	if c.rec.PartSize > 0 {
		partSize = c.rec.PartSize
	}
	var off, length int64
	probe := false
	switch {
	case req.known != nil:
		off = int64(c.firstPartOf(rng, req.known.Size, partSize)) * partSize
		length = min(partSize, req.known.Size-off)
	case rng == nil:
		// A whole read that found a copy in use, gone meanwhile.
		length = partSize
	case rng.Offset >= 0 && rng.Offset <= maxEntrySize:
		off = rng.Offset - rng.Offset%partSize
		length = partSize
	default:
		// A suffix, or a start past any object, of an object the cluster
		// does not know: one byte tells its size, then the part the read
		// needs (if any) is fetched like any other.
		length, probe = 1, true
	}
	ctx, cancel := context.WithTimeout(n.ctx, sparseHeadTimeout)
	rc, info, _, err := c.get(ctx, off, max(length, 1))
	if err != nil {
		cancel()
		if errors.Is(err, storage.ErrNotFound) {
			if req.known == nil {
				n.misses.add(c.id)
			}
			return fmt.Errorf("%w: %s is not in the remote store", ErrNotFound, c.id)
		}
		return remoteErr("fetch "+c.id.String(), err)
	}
	first := &cancelOnClose{ReadCloser: rc, cancel: cancel}
	if info.ETag == "" {
		first.Close()
		return errNotSparse
	}
	c.source = SourceRemote
	if g, ok := req.remote.(*ownerGetter); ok && g.ownerEntry() != nil {
		c.source = SourcePeer
	}
	entry, learned, err := describeFetched(req, info)
	if err != nil {
		first.Close()
		return err
	}
	var stream io.ReadCloser = first
	if probe || off >= entry.Size {
		// The probe of a suffix, or a read past the end: nothing to keep.
		first.Close()
		stream = nil
	}
	return c.begin(entry, info.ETag, learned, nil, &firstPart{off: off, length: length, rc: stream})
}

// firstPart is the source's answer to a read's first request: length
// bytes asked for at off (fewer at the object's end), or no stream.
type firstPart struct {
	off, length int64
	rc          io.ReadCloser
}

// part returns the index of the part first's stream is in the copy's
// layout, or -1 when it is not one (the layout changed since the request
// was made).
func (f *firstPart) part(rec journal.Sparse) int {
	if f.off%rec.PartSize != 0 || f.off >= rec.Size {
		return -1
	}
	k := int(f.off / rec.PartSize)
	if f.length != rec.PartSize && f.length != rec.PartLen(k) {
		return -1
	}
	return k
}

// begin settles the copy as one of entry, whose source names it etag
// ("" until a part comes from the remote), replacing the journal's record
// of parts of another version. learned says entry came from the source's
// description and is recorded with the copy. Then it starts the fetch of
// the first part the read of rng needs, unless it is held, or, when
// first is set, hands first's stream (if any) to the part it is.
func (c *sparseCopy) begin(entry journal.Entry, etag string, learned bool, rng *Range, first *firstPart) error {
	n := c.n
	if c.rec.Tag != "" && (entry.Version != c.rec.Version || etag != "" && c.rec.ETag != "" && etag != c.rec.ETag) {
		// The source holds another version than the parts held here.
		n.discardSparse(c.id, c.rec.Tag)
		c.rec, c.have, c.held = journal.Sparse{}, nil, 0
	}
	c.entry = entry
	if c.source == "" {
		c.source = SourceRemote
	}
	var rc io.ReadCloser
	if first != nil {
		rc = first.rc
	}
	closeFirst := func() {
		if rc != nil {
			rc.Close()
			rc = nil
		}
	}
	if entry.Size == 0 {
		closeFirst()
		return errNotSparse // nothing to keep in parts
	}
	if c.rec.Tag == "" {
		partSize := n.cfg.FetchPartSize
		c.rec = journal.Sparse{Tag: newSparseTag(), Version: entry.Version, ETag: etag,
			Size: entry.Size, PartSize: partSize, Stored: n.physicalNow().UTC()}
		c.etag = etag
		if c.rec.Parts() > maxSparseParts {
			closeFirst()
			return errNotSparse
		}
		var applied bool
		var stale *journal.Blob
		err := n.journal.Update(func(tx *journal.Tx) (err error) {
			// A drop that came first wins; one that comes later finds
			// the record (both run under the journal's write lock).
			c.mu.Lock()
			dropped := c.dropped
			c.mu.Unlock()
			if dropped {
				return errCopyDropped
			}
			if applied, err = n.adoptEntry(tx, entry, storage.Sum{}, learned); err != nil {
				return err
			}
			if b, err := tx.Blob(c.id); applied && err == nil {
				// A whole body of the version this entry replaced.
				stale = &b
				if err := tx.DeleteBlob(c.id); err != nil {
					return err
				}
			}
			return tx.PutSparse(c.id, c.rec)
		})
		if err != nil {
			closeFirst()
			return diskErr(err)
		}
		if stale != nil {
			n.disk.Remove(c.id, stale.Sum)
			n.policy.Remove(c.id)
			n.mem.drop(c.id)
		}
		if applied {
			n.announce(entry)
		}
		c.have = make([]bool, c.rec.Parts())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped {
		closeFirst()
		return errCopyDropped
	}
	switch {
	case rc != nil:
		if k := first.part(c.rec); k >= 0 && !c.have[k] && c.parts[k] == nil {
			c.startPart(k, rc)
		} else {
			closeFirst()
		}
	case first == nil:
		if k0 := c.firstPart(rng); k0 < len(c.have) && !c.have[k0] {
			c.startPart(k0, nil)
		}
	}
	return nil
}

// get asks the copy's source for length bytes at off: the owner of a
// key's fills for a part of its own sparse copy, or the remote.
func (c *sparseCopy) get(ctx context.Context, off, length int64) (io.ReadCloser, storage.ObjectInfo, Source, error) {
	if g, ok := c.req.remote.(*ownerGetter); ok {
		rc, info, err := g.getPart(ctx, c.req.key, off, length)
		return rc, info, SourcePeer, err
	}
	if k := c.req.known; k != nil && !k.Keyed() {
		if rc := c.n.peerPart(ctx, *k, off, length); rc != nil {
			return rc, storage.ObjectInfo{Size: k.Size}, SourcePeer, nil
		}
	}
	rc, info, err := c.req.remote.Get(ctx, c.req.key, off, length)
	return rc, info, SourceRemote, err
}

// peerPart opens length bytes at off of the body e describes on the first
// live peer (its origin first) that holds them, whole or as parts of a
// sparse copy, of the version e names; nil when none does.
func (n *Node) peerPart(ctx context.Context, e journal.Entry, off, length int64) io.ReadCloser {
	if n.cl == nil || n.cl.client == nil {
		return nil
	}
	for _, p := range n.peers(e.Origin) {
		pctx, cancel := context.WithTimeout(ctx, peerPartTimeout)
		resp, err := n.cl.client.Peer(p.PrivateAddr).GetPart(pctx, e.ID, off, length)
		if err != nil {
			cancel()
			n.log.Debug("peer part read failed", "id", e.ID, "peer", p.ID, "err", err)
			continue
		}
		if resp.Header.Get(cluster.HeaderVersion) != e.Version.String() {
			// The peer holds another version of the object.
			resp.Body.Close()
			cancel()
			continue
		}
		return &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	}
	return nil
}

// peerPartTimeout bounds a peer's answer for one part, body included:
// long enough for a part at a slow peer's pace, short enough that the
// remote is asked instead of a stalled peer.
const peerPartTimeout = 2 * time.Minute

// maxSparseParts bounds the parts of a sparse copy (as the journal does):
// an object with more is fetched whole.
const maxSparseParts = 1 << 20

// sparseHeadTimeout bounds the wait for a source's answer to the first
// request of a read, and a part's whole fetch.
const sparseHeadTimeout = 10 * time.Minute

// cancelOnClose releases a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// describeFetched settles the entry of a body req fetched, from the
// source's description info: the journal's entry when it describes the
// same object, otherwise one learned from info. learned says which.
func describeFetched(req fillRequest, info storage.ObjectInfo) (journal.Entry, bool, error) {
	if k := req.known; k != nil && !(k.Keyed() && info.ETag != k.ETag) {
		if info.Size != k.Size {
			return journal.Entry{}, false, fmt.Errorf("%w: the remote copy of %s is %d bytes, the journal says %d", ErrRemote, req.id, info.Size, k.Size)
		}
		return *k, false, nil
	}
	e, err := req.learn(info)
	return e, true, err
}

// firstPart returns the first part a read of rng touches.
func (c *sparseCopy) firstPart(rng *Range) int {
	return c.firstPartOf(rng, c.rec.Size, c.rec.PartSize)
}

func (c *sparseCopy) firstPartOf(rng *Range, size, partSize int64) int {
	if rng == nil {
		return 0
	}
	start, _ := rng.span(size)
	return int(start / partSize)
}

// holds reports whether every part the bytes [start, end) touch is held.
func (c *sparseCopy) holds(start, end int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.whole {
		return true
	}
	if end <= start {
		return true
	}
	for k := int(start / c.rec.PartSize); k <= int((end-1)/c.rec.PartSize) && k < len(c.have); k++ {
		if !c.have[k] {
			return false
		}
	}
	return true
}

func (c *sparseCopy) heldBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.whole {
		return c.entry.Size
	}
	return c.held
}

func (c *sparseCopy) wake() {
	c.mu.Lock()
	c.cond.Broadcast()
	c.mu.Unlock()
}

// startPart begins fetching part k, from rc when given (the source's
// answer already open) or with a request of its own, and reports whether
// it did: once the node closes it starts none (and closes rc). Called
// with c.mu held.
func (c *sparseCopy) startPart(k int, rc io.ReadCloser) bool {
	n := c.n
	if !n.sparse.enter() {
		if rc != nil {
			rc.Close()
		}
		return false
	}
	pf := &partFetch{}
	c.parts[k] = pf
	go func() {
		defer n.wg.Done()
		err := c.fetchPart(k, pf, rc)
		c.mu.Lock()
		delete(c.parts, k)
		pf.done = true
		if err != nil {
			pf.err = err
		}
		all := err == nil && c.err == nil && !c.assembling && !c.whole && c.complete()
		if all {
			c.assembling = true
		}
		c.cond.Broadcast()
		c.mu.Unlock()
		if err != nil && !errors.Is(err, context.Canceled) {
			n.counters.fetchErrors.Add(1)
			n.log.Warn("part fetch failed", "id", c.id, "part", k, "err", err)
		}
		if all {
			c.assemble()
		}
		s := n.sparse
		s.mu.Lock()
		c.forgetIfIdle()
		s.mu.Unlock()
	}()
	return true
}

// enter counts one more goroutine of the set's under the node's wait
// group, unless the node is closing; it reports whether it did.
func (s *sparseSet) enter() bool {
	s.gate.Lock()
	defer s.gate.Unlock()
	if s.closed {
		return false
	}
	s.n.wg.Add(1)
	return true
}

// stop makes the set start no more part fetches or assemblies; those
// under way end with the node's context.
func (s *sparseSet) stop() {
	s.gate.Lock()
	s.closed = true
	s.gate.Unlock()
}

// fillSparse brings e's body in whole through its sparse copy, fetching
// only the parts not held here, and returns once the copy is assembled
// into an ordinary body, for callers that want the copy rather than the
// bytes (repair, pre-warm). It returns the bytes read.
func (n *Node) fillSparse(ctx context.Context, e journal.Entry) (int64, error) {
	obj, err := n.fetchRange(ctx, n.fillRequest(e.ID, &e), nil)
	if err != nil {
		return 0, err
	}
	defer obj.Close()
	got, err := io.Copy(io.Discard, obj.Content)
	if err != nil {
		return got, err
	}
	if r, ok := obj.Content.(*sparseReader); ok {
		return got, r.c.awaitWhole(ctx)
	}
	return got, nil // a whole fill served it; Close waits for its copy
}

// awaitWhole waits until the copy, every part of which was read, is
// assembled, starting the assembly if nothing else does.
func (c *sparseCopy) awaitWhole(ctx context.Context) error {
	stop := context.AfterFunc(ctx, c.wake)
	defer stop()
	for retried := false; ; retried = true {
		c.mu.Lock()
		for !c.whole && c.err == nil && ctx.Err() == nil && (c.assembling || len(c.parts) > 0) {
			c.cond.Wait()
		}
		whole, err, complete, failed := c.whole, c.err, c.complete(), c.assembleErr
		c.mu.Unlock()
		switch {
		case whole:
			return nil
		case err != nil:
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case !complete:
			return fmt.Errorf("%w: %s: a part was dropped before the copy was whole", ErrUnavailable, c.id)
		case failed != nil && retried:
			return fmt.Errorf("node: assemble %s: %w", c.id, failed)
		}
		// Every part is held and nothing assembles it (an earlier
		// assembly failed, or it had not begun): begin it, or wait for
		// the one another caller began meanwhile.
		if !c.assembleIfComplete() {
			c.mu.Lock()
			idle := !c.assembling && !c.whole && c.err == nil
			c.mu.Unlock()
			if idle {
				return fmt.Errorf("%w: %s could not be assembled", ErrUnavailable, c.id)
			}
		}
	}
}

// assembleIfComplete starts assembling a copy that holds every part and
// is not being assembled (one whose earlier assembly failed), and reports
// whether it did.
func (c *sparseCopy) assembleIfComplete() bool {
	c.mu.Lock()
	start := c.err == nil && !c.assembling && !c.whole && !c.localOnly && len(c.parts) == 0 && c.complete()
	if start {
		c.assembling = true
	}
	c.mu.Unlock()
	if !start {
		return false
	}
	if !c.n.sparse.enter() {
		c.mu.Lock()
		c.assembling = false
		c.cond.Broadcast()
		c.mu.Unlock()
		return false
	}
	go func() {
		defer c.n.wg.Done()
		c.assemble()
	}()
	return true
}

// complete reports whether every part is held: the parts' bytes are the
// object's (each part held counts its PartLen in held). Called with c.mu
// held.
func (c *sparseCopy) complete() bool {
	return len(c.have) > 0 && c.held == c.rec.Size
}

// load sets the copy's record and the parts the journal says it holds.
// Called before the copy is ready, or with c.mu held.
func (c *sparseCopy) load(rec journal.Sparse, parts map[int]journal.SparsePart) {
	c.rec, c.etag = rec, rec.ETag
	c.have, c.held = make([]bool, rec.Parts()), 0
	for k := range parts {
		if k < len(c.have) {
			c.have[k] = true
			c.held += rec.PartLen(k)
		}
	}
}

// fetchPart brings part k in from the source (rc, or a request of its
// own), writes it as a part body, makes it durable and records it.
func (c *sparseCopy) fetchPart(k int, pf *partFetch, rc io.ReadCloser) error {
	n := c.n
	off := int64(k) * c.rec.PartSize
	length := c.rec.PartLen(k)
	n.counters.fetches.Add(1)
	src := c.source
	if rc == nil {
		ctx, cancel := context.WithTimeout(n.ctx, sparseHeadTimeout)
		body, info, from, err := c.get(ctx, off, length)
		if err != nil {
			cancel()
			if errors.Is(err, storage.ErrNotFound) {
				c.drop(fmt.Errorf("%w: %s is no longer at its source", ErrNotFound, c.id))
				return err
			}
			return remoteErr(fmt.Sprintf("fetch %s part %d", c.id, k), err)
		}
		rc, src = &cancelOnClose{ReadCloser: body, cancel: cancel}, from
		if err := c.sameObject(info, from); err != nil {
			rc.Close()
			c.drop(err)
			return err
		}
	}
	defer rc.Close()
	release, err := n.reserve(length)
	if err != nil {
		return err
	}
	defer release()
	w, err := n.disk.CreatePart(c.id, k, length)
	if err != nil {
		return diskErr(err)
	}
	defer w.Abort()
	c.mu.Lock()
	pf.w = w
	c.mu.Unlock()
	buf := make([]byte, copyBufferSize)
	var got int64
	for {
		nr, rerr := rc.Read(buf[:min(int64(len(buf)), length-got+1)])
		if nr > 0 {
			if got+int64(nr) > length {
				return fmt.Errorf("%w: part %d of %s is longer than %d bytes", ErrRemote, k, c.id, length)
			}
			if _, err := w.Write(buf[:nr]); err != nil {
				return diskErr(err)
			}
			got += int64(nr)
			c.mu.Lock()
			pf.readable = w.Readable()
			c.cond.Broadcast()
			c.mu.Unlock()
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return remoteErr(fmt.Sprintf("fetch %s part %d", c.id, k), rerr)
		}
	}
	if got != length {
		return fmt.Errorf("%w: part %d of %s ended after %d of %d bytes", ErrRemote, k, c.id, got, length)
	}
	if src == SourceRemote {
		n.counters.rangedRemoteBytes.Add(length)
	}
	// Readers following the part keep their handles across the rename;
	// new ones wait for the part's file.
	c.mu.Lock()
	pf.sealing = true
	c.mu.Unlock()
	size, sum, err := w.CommitPart(c.rec.Tag)
	if err != nil {
		return diskErr(err)
	}
	part := journal.SparsePart{Size: size, Sum: sum, Stored: n.physicalNow().UTC()}
	err = n.journal.Update(func(tx *journal.Tx) error {
		cur, err := tx.Sparse(c.id)
		if err != nil || cur.Tag != c.rec.Tag {
			return fmt.Errorf("%w: %s", errCopyDropped, c.id)
		}
		return tx.PutSparsePart(c.id, k, part)
	})
	if err != nil {
		n.disk.RemovePart(c.id, c.rec.Tag, k)
		if errors.Is(err, errCopyDropped) {
			c.drop(errCopyDropped)
		}
		return diskErr(err)
	}
	c.mu.Lock()
	c.have[k] = true
	c.held += size
	held := c.held
	c.mu.Unlock()
	if n.evictable(c.entry) {
		n.policy.Add(c.id, held)
	}
	return nil
}

// sameObject checks that a part's answer, from source from, is of the
// object the copy holds: the same size, and from the remote (or a key's
// owner) the same ETag. A ULID object's copy begun without one takes the
// remote's first ETag as its own.
func (c *sparseCopy) sameObject(info storage.ObjectInfo, from Source) error {
	if info.Size != c.rec.Size {
		return fmt.Errorf("%w: %s changed at its source (%d bytes, then %d)", ErrRemote, c.id, c.rec.Size, info.Size)
	}
	if from == SourcePeer && !c.entry.Keyed() {
		return nil // a peer's part of the same version, checked by peerPart
	}
	if !c.entry.Keyed() && c.entry.Sum != (storage.Sum{}) {
		// A node wrote the remote copy with its checksum: another one is
		// another version, whatever ETag the copy learned.
		if v := info.Meta[metaSHA256]; v != "" && v != hex.EncodeToString(c.entry.Sum[:]) {
			return fmt.Errorf("%w: the remote copy of %s is another version than the journal's", ErrRemote, c.id)
		}
	}
	c.mu.Lock()
	etag, learn := c.etag, c.etag == "" && info.ETag != ""
	if learn {
		c.etag, etag = info.ETag, info.ETag
	}
	c.mu.Unlock()
	if info.ETag != etag {
		return fmt.Errorf("%w: %s changed at its source (ETag %s, then %s)", ErrRemote, c.id, etag, info.ETag)
	}
	if learn {
		err := c.n.journal.Update(func(tx *journal.Tx) error {
			return tx.ReviseSparse(c.id, c.rec.Tag, func(s *journal.Sparse) {
				if s.ETag == "" {
					s.ETag = etag
				}
			})
		})
		if err != nil {
			return diskErr(err)
		}
	}
	return nil
}

// drop forgets the copy, its records and its parts, failing its readers
// with err.
func (c *sparseCopy) drop(err error) {
	c.mu.Lock()
	if !c.whole {
		// A copy made whole (by its assembly, or a fill of the same
		// object) goes on serving the body.
		c.failLocked(err)
	}
	c.mu.Unlock()
	c.n.discardSparse(c.id, c.rec.Tag)
	s := c.n.sparse
	s.mu.Lock()
	if s.copies[c.id] == c {
		delete(s.copies, c.id)
	}
	s.mu.Unlock()
}

// staleSparse removes, in tx, the record of a sparse copy of e's object
// that is not of e's version (e was just applied over old, nil when there
// was none: a newer write, or a delete), and returns the copy's tag, or
// "" when there is none, for removeSparse once tx commits. A copy of old
// whose body e keeps (a level change: the same size and checksum, or for
// a key the same ETag) moves to e's version instead.
func staleSparse(tx *journal.Tx, old *journal.Entry, e journal.Entry) (string, error) {
	s, err := tx.Sparse(e.ID)
	if err != nil || !e.Deleted && s.Version == e.Version {
		return "", nil
	}
	if old != nil && !old.Deleted && !e.Deleted && s.Version == old.Version && sameBody(*old, e) {
		return "", tx.RebaseSparse(e.ID, s.Tag, e.Version)
	}
	return s.Tag, tx.DeleteSparse(e.ID)
}

// sameBody reports whether entries a and b of one object describe the
// same body: for a key, the same size and ETag; otherwise the same size
// and a known, equal checksum.
func sameBody(a, b journal.Entry) bool {
	if a.Size != b.Size || a.Keyed() != b.Keyed() {
		return false
	}
	if a.Keyed() {
		return a.ETag != "" && a.ETag == b.ETag
	}
	return a.Sum != (storage.Sum{}) && a.Sum == b.Sum
}

// removeSparse removes the parts of the sparse copy of id tagged tag,
// whose record is gone, and fails the readers of the copy in use.
func (n *Node) removeSparse(id ulid.ULID, tag string) {
	if tag == "" {
		return
	}
	s := n.sparse
	s.mu.Lock()
	c := s.copies[id]
	if t, ok := c.readyTag(); ok && t == tag {
		delete(s.copies, id)
	} else {
		c = nil
	}
	s.mu.Unlock()
	if c != nil {
		c.mu.Lock()
		c.failLocked(errCopyDropped)
		c.mu.Unlock()
	}
	if err := n.disk.RemoveParts(id, tag); err != nil {
		n.log.Warn("remove sparse copy", "id", id, "err", err)
	}
	n.policy.Remove(id)
}

// readyTag returns the tag of a copy that is ready (set up, its record
// settled), and whether it is; false for nil.
func (c *sparseCopy) readyTag() (string, bool) {
	if c == nil {
		return "", false
	}
	select {
	case <-c.ready:
		return c.rec.Tag, c.headErr == nil
	default:
		return "", false
	}
}

// discardSparse removes the sparse copy of id tagged tag (any tag, when
// tag is ""): its records, if they are still that copy's, and its parts.
// The record is read and deleted in one write transaction, so a copy
// being set up either finds itself dropped or is deleted here.
func (n *Node) discardSparse(id ulid.ULID, tag string) {
	var gone string
	err := n.journal.Update(func(tx *journal.Tx) error {
		cur, err := tx.Sparse(id)
		if err != nil || tag != "" && cur.Tag != tag {
			return nil
		}
		gone = cur.Tag
		return tx.DeleteSparse(id)
	})
	if err != nil {
		n.log.Error("drop sparse copy record", "id", id, "err", err)
		return
	}
	if gone == "" {
		return
	}
	if err := n.disk.RemoveParts(id, gone); err != nil {
		n.log.Warn("remove sparse copy", "id", id, "err", err)
	}
}

// drop removes this node's sparse copy of id, if any. When whole is set
// the object is now held whole, as whole describes it with checksum sum:
// readers of a copy of that very object (the same version, and for a key
// the same ETag) go on reading the whole body; readers of any other fail.
func (s *sparseSet) drop(id ulid.ULID, whole *journal.Entry, sum storage.Sum) {
	s.dropCopy(id, whole, sum, false)
}

// dropIdle drops this node's sparse copy of id, as drop does, unless it
// is in use (read, fetching parts, or being assembled), and reports
// whether it dropped it. Eviction uses it: the copy's readers would fail,
// and a part's own reservation would evict its copy.
func (s *sparseSet) dropIdle(id ulid.ULID) bool {
	return s.dropCopy(id, nil, storage.Sum{}, true)
}

// dropCopy is drop, or with idleOnly dropIdle; it reports whether it
// dropped.
func (s *sparseSet) dropCopy(id ulid.ULID, whole *journal.Entry, sum storage.Sum, idleOnly bool) bool {
	s.mu.Lock()
	c := s.copies[id]
	if c != nil && idleOnly {
		c.mu.Lock()
		busy := c.users > 0 || len(c.parts) > 0 || c.assembling
		c.mu.Unlock()
		if busy {
			s.mu.Unlock()
			return false
		}
	}
	if c != nil {
		delete(s.copies, id)
	}
	s.mu.Unlock()
	if c != nil {
		_, ready := c.readyTag()
		c.mu.Lock()
		c.dropped = true // a copy still being set up records nothing
		if ready && whole != nil && c.entry.Version == whole.Version && c.entry.ETag == whole.ETag {
			c.whole, c.wholeSum = true, sum
		} else {
			c.failLocked(errCopyDropped)
		}
		c.mu.Unlock()
	}
	s.n.discardSparse(id, "")
	return true
}

// failLocked fails the copy's readers with err, unless it failed already,
// and wakes them. Called with c.mu held.
func (c *sparseCopy) failLocked(err error) {
	if c.err == nil {
		c.err = err
	}
	c.cond.Broadcast()
}

// assemble makes a copy that holds every part an ordinary body: the parts
// are copied in order into a new body, whose checksum must match the
// journal's when it knows one, and which is recorded like a fetched body.
func (c *sparseCopy) assemble() {
	n := c.n
	err := c.assembleBody()
	c.mu.Lock()
	c.assembling = false
	c.assembleErr = err
	c.cond.Broadcast()
	c.mu.Unlock()
	if err != nil && !errors.Is(err, ErrClosed) {
		n.log.Warn("assembling a sparse copy failed; its parts stay", "id", c.id, "err", err)
	}
}

func (c *sparseCopy) assembleBody() error {
	n := c.n
	// The parts go once the body is recorded: only the bytes not held
	// yet are reserved, so the quota is passed by at most the parts'
	// bytes while both are on disk.
	c.mu.Lock()
	extra := c.entry.Size - c.held
	c.mu.Unlock()
	release, err := n.reserve(max(extra, 0))
	if err != nil {
		return err
	}
	defer release()
	w, err := n.disk.Create(c.id, c.entry.Size)
	if err != nil {
		return diskErr(err)
	}
	defer w.Abort()
	buf := make([]byte, copyBufferSize)
	for k := range c.rec.Parts() {
		if n.ctx.Err() != nil {
			return ErrClosed
		}
		part, _, err := n.disk.OpenPart(c.id, c.rec.Tag, k)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				c.dropPart(k)
			}
			return fmt.Errorf("node: assemble %s: %w", c.id, err)
		}
		_, err = io.CopyBuffer(w, struct{ io.Reader }{part}, buf)
		part.Close()
		if err != nil {
			if errors.Is(err, storage.ErrCorrupt) {
				c.dropPart(k)
			}
			return fmt.Errorf("node: assemble %s part %d: %w", c.id, k, diskErr(err))
		}
	}
	sum := w.Sum()
	if c.entry.Sum != (storage.Sum{}) && sum != c.entry.Sum {
		c.drop(fmt.Errorf("%w: the parts of %s do not make the body its checksum names", ErrRemote, c.id))
		return fmt.Errorf("%w: the parts of %s do not make the body its checksum names", ErrRemote, c.id)
	}
	size, sum, err := w.Commit(c.id)
	if err != nil {
		return diskErr(err)
	}
	e := c.entry
	blob := journal.Blob{Size: size, Sum: sum, Fetched: c.source == SourceRemote}
	blob.Stored = n.physicalNow().UTC()
	err = n.journal.Update(func(tx *journal.Tx) error {
		// A drop (invalidation, eviction, a newer version) that came
		// while the parts were copied wins.
		if cur, err := tx.Sparse(e.ID); err != nil || cur.Tag != c.rec.Tag {
			return errCopyDropped
		}
		c.mu.Lock()
		dropped := c.err != nil
		c.mu.Unlock()
		if dropped {
			return errCopyDropped
		}
		if _, err := n.adoptEntry(tx, e, sum, false); err != nil {
			return err
		}
		if _, err := tx.CompleteSum(e.ID, e.Version, sum); err != nil {
			return err
		}
		if err := tx.PutBlob(e.ID, blob); err != nil {
			return err
		}
		return tx.DeleteSparse(e.ID)
	})
	if err != nil {
		// A whole fill of the same object may have recorded the very
		// same file (bodies are named by ID and checksum): it stays.
		if b, berr := n.journal.Blob(c.id); berr != nil || b.Sum != sum {
			n.disk.Remove(c.id, sum)
		}
		return diskErr(err)
	}
	c.mu.Lock()
	c.whole, c.wholeSum = true, sum
	c.cond.Broadcast()
	c.mu.Unlock()
	if n.evictable(e) {
		n.policy.Add(e.ID, size)
	}
	n.disk.RemoveParts(c.id, c.rec.Tag)
	n.counters.sparseAssembled.Add(1)
	return nil
}

// dropPart forgets part k, found missing or damaged, so it is fetched
// again.
func (c *sparseCopy) dropPart(k int) {
	c.mu.Lock()
	held := k < len(c.have) && c.have[k]
	if held {
		c.have[k] = false
		c.held -= c.rec.PartLen(k)
	}
	c.mu.Unlock()
	if !held {
		return // dropped already
	}
	c.n.counters.readDamaged.Add(1)
	c.n.log.Error("part of a sparse copy missing or damaged; dropping it", "id", c.id, "part", k)
	c.n.forgetPart(c.id, c.rec.Tag, k)
}

// sparseReader reads an object through its sparse copy: the parts held
// from their files, the others as they stream in, fetching each when the
// reader reaches it and the next ones of its range ahead of it.
type sparseReader struct {
	c    *sparseCopy
	ctx  context.Context
	stop func() bool
	size int64
	end  int64 // the end of the range the GET reads, for fetching ahead
	off  int64

	// The open body: part k's (followed as pf streams it in, when pf is
	// set), or the whole object's once the copy is assembled; the bytes
	// below limit (an offset in that body) can be read.
	k     int
	body  storage.Body
	pf    *partFetch
	whole bool
	limit int64
}

// window returns how many parts ahead of the one being read are fetched.
func (r *sparseReader) window() int { return max(1, r.c.n.cfg.FetchConcurrency) - 1 }

// ensure waits until part k can be read at pos within it, starting
// fetches as needed. It returns a body to read from, or nil when the
// reader's open one (keep) serves; whether that body is the whole
// object's; and the offset in it up to which bytes can be read.
func (r *sparseReader) ensure(k int, pos int64, keep bool) (storage.Body, bool, int64, error) {
	c := r.c
	n := c.n
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.err != nil {
			return nil, false, 0, c.err
		}
		if err := r.ctx.Err(); err != nil {
			return nil, false, 0, err
		}
		if c.whole {
			b, _, err := n.disk.Open(c.id, c.wholeSum)
			if err != nil {
				return nil, false, 0, fmt.Errorf("node: read %s: %w", c.id, err)
			}
			return b, true, c.entry.Size, nil
		}
		r.ahead(k)
		plen := c.rec.PartLen(k)
		pf := c.parts[k]
		// The open body stays good when it is the part's file, or follows
		// the fetch that wrote it.
		keep = keep && (r.pf == nil || r.pf == pf || r.pf.done && r.pf.err == nil)
		if c.have[k] {
			if keep {
				return nil, false, plen, nil
			}
			b, _, err := n.disk.OpenPart(c.id, c.rec.Tag, k)
			if err != nil {
				if errors.Is(err, storage.ErrNotFound) {
					c.mu.Unlock()
					c.dropPart(k)
					c.mu.Lock()
					if c.localOnly {
						return nil, false, 0, fmt.Errorf("%w: part %d of %s is not held here", ErrNotFound, k, c.id)
					}
					continue // fetched again
				}
				return nil, false, 0, fmt.Errorf("node: read part %d of %s: %w", k, c.id, err)
			}
			r.pf = nil
			return b, false, plen, nil
		}
		if pf == nil {
			if c.localOnly {
				return nil, false, 0, fmt.Errorf("%w: part %d of %s is not held here", ErrNotFound, k, c.id)
			}
			if !c.startPart(k, nil) {
				return nil, false, 0, ErrClosed
			}
			pf = c.parts[k]
		}
		// The part's last byte waits for its end, checked and durable, so
		// a part cut short is never served as whole.
		if avail := min(pf.readable, plen-1); pf.w != nil && avail > pos && (keep || !pf.sealing) {
			if keep {
				return nil, false, avail, nil
			}
			b, err := pf.w.Follow()
			if err != nil {
				return nil, false, 0, fmt.Errorf("node: follow part %d of %s: %w", k, c.id, err)
			}
			r.pf = pf
			return b, false, avail, nil
		}
		c.cond.Wait()
		if pf.err != nil && c.parts[k] == nil && !c.have[k] {
			return nil, false, 0, pf.err
		}
	}
}

// ahead starts the fetches of the parts after k in the read's range, and
// ReadAhead parts past it, up to the window. Called with c.mu held.
func (r *sparseReader) ahead(k int) {
	c := r.c
	if c.localOnly {
		return
	}
	last := min(k+r.window(), int((max(r.end, 1)-1)/c.rec.PartSize)+c.n.cfg.ReadAhead, len(c.have)-1)
	for j := k + 1; j <= last && len(c.parts) < max(1, c.n.cfg.FetchConcurrency); j++ {
		if !c.have[j] && c.parts[j] == nil {
			c.startPart(j, nil)
		}
	}
}

func (r *sparseReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	ps := r.c.rec.PartSize
	for {
		k := int(r.off / ps)
		if r.body != nil && !r.whole && r.k != k {
			r.body.Close()
			r.body = nil
		}
		pos := r.off
		if !r.whole {
			pos -= int64(k) * ps
		}
		if r.body != nil && pos < r.limit {
			nr, err := r.body.ReadAt(p[:min(int64(len(p)), r.limit-pos)], pos)
			r.off += int64(nr)
			switch {
			case err == io.EOF && nr > 0:
				err = nil
			case err == io.EOF:
				err = io.ErrUnexpectedEOF
			case err != nil && errors.Is(err, storage.ErrCorrupt):
				// Never served: the read fails, and the damaged copy goes
				// so that the next read fetches a sound one.
				r.damaged()
			}
			return nr, err
		}
		b, whole, limit, err := r.ensure(k, pos, r.body != nil)
		if err != nil {
			return 0, err
		}
		if b != nil {
			if r.body != nil {
				r.body.Close()
			}
			r.body, r.whole, r.k = b, whole, k
		}
		r.limit = limit
	}
}

// damaged drops what the reader found damaged: the part it reads, or the
// whole body.
func (r *sparseReader) damaged() {
	c := r.c
	if !r.whole {
		c.mu.Lock()
		recorded := r.pf == nil || r.pf.done && r.pf.err == nil
		c.mu.Unlock()
		if recorded {
			c.dropPart(r.k)
		}
		return
	}
	c.n.counters.readDamaged.Add(1)
	c.n.log.Error("local body damaged; dropping it", "id", c.id)
	c.mu.Lock()
	sum := c.wholeSum
	c.whole = false
	c.failLocked(errCopyDropped) // the next read begins afresh
	c.mu.Unlock()
	c.n.dropBlob(c.id, sum, c.entry.Level.InRemote())
}

func (r *sparseReader) Seek(offset int64, whence int) (int64, error) {
	off, err := seekTo(r.off, r.size, offset, whence)
	if err == nil {
		r.off = off
	}
	return off, err
}

func (r *sparseReader) Close() error {
	r.stop()
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	return nil
}
