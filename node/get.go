package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

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
	// Range, when set, is the span of the body the caller will read: an
	// object not held whole is then fetched only as far as the parts it
	// touches. Reads outside it still work (the parts they need are
	// fetched as reached).
	Range *Range
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
	// Sparse is set when the body is read through this node's sparse copy
	// (see Range): reads fetch the parts they reach that it lacks.
	Sparse bool
	// Content is the body. When it streams in from the remote, reads block
	// until the bytes arrive, and fail rather than end early if the fetch
	// fails, so a partial body is never taken for a whole one.
	Content io.ReadSeeker
	close   func() error
	// entry is the journal's entry of the object served.
	entry journal.Entry
	// data is the whole body when it is in memory.
	data []byte
}

// Bytes returns the whole body when it is held in memory (a small body in
// the memory cache), so that it can be answered in one write, or nil. The
// caller must not modify it.
func (o *Object) Bytes() []byte { return o.data }

// Close releases the body. For a body that streamed in from a peer or the
// remote and was read to its end, it returns once this node's copy is
// committed (or failed), so a caller that answers a client should send
// the answer's last bytes first (flush) and close after.
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
		return n.fetchRange(ctx, n.fillRequest(id, nil), opts.Range)
	case err != nil:
		return nil, fmt.Errorf("node: get %s: %w", id, err)
	case e.Deleted:
		return &Object{Meta: metaOf(e, nil), close: nopClose}, fmt.Errorf("%w: %s", ErrDeleted, id)
	case e.Keyed():
		// Key-addressed objects are read by bucket and key (GetKey),
		// where the bucket is checked.
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
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
	return n.fetchRange(ctx, n.fillRequest(id, &e), opts.Range)
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
	if data, ok := n.mem.get(e.ID, b.Sum); ok {
		n.counters.hitsMemory.Add(1)
		return n.memObject(e, b, data), nil
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
	if n.mem.fits(size) {
		// Read whole (every segment verified) and kept, so that the next
		// hits make no file system call.
		data := make([]byte, size)
		_, err := io.ReadFull(f, data)
		f.Close()
		if errors.Is(err, storage.ErrCorrupt) {
			n.counters.readDamaged.Add(1)
			n.log.Error("local body damaged; dropping it", "id", e.ID, "err", err)
			n.dropBlob(e.ID, b.Sum, e.Level.InRemote())
			return nil, storage.ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("node: read body %s: %w", e.ID, err)
		}
		n.mem.put(e.ID, b.Sum, data)
		return n.memObject(e, b, data), nil
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
	return &Object{Meta: metaOf(e, b), Source: SourceLocal, Content: content, close: f.Close, entry: e}, nil
}

// memObject is a local object whose body, data, is in memory.
func (n *Node) memObject(e journal.Entry, b *journal.Blob, data []byte) *Object {
	return &Object{Meta: metaOf(e, b), Source: SourceLocal, Content: bytes.NewReader(data), close: nopClose, entry: e, data: data}
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
	n.mem.drop(id)
	if refetch {
		n.queueRepair(id)
	}
}

// fetchRange opens the object req names, not held here, for a read of
// rng (nil: all of it): through its sparse copy when the read is ranged
// or the object is held sparsely (see sparse.go), otherwise by fetching
// it whole.
func (n *Node) fetchRange(ctx context.Context, req fillRequest, rng *Range) (*Object, error) {
	if req.known == nil && n.misses.has(req.id) {
		n.counters.misses.Add(1)
		return nil, fmt.Errorf("%w: %s is not in the remote store (asked less than %v ago)", ErrNotFound, req.key, n.misses.ttl)
	}
	if n.sparseEligible(req, rng) {
		return n.fetchSparse(ctx, req, rng)
	}
	return n.fetch(ctx, req)
}

// fetch streams the object req names from a peer or the remote, joining a
// fetch already in flight. req.known is the journal's entry, or nil on a
// total miss.
func (n *Node) fetch(ctx context.Context, req fillRequest) (*Object, error) {
	id, known := req.id, req.known
	if known == nil && n.misses.has(id) {
		n.counters.misses.Add(1)
		return nil, fmt.Errorf("%w: %s is not in the remote store (asked less than %v ago)", ErrNotFound, req.key, n.misses.ttl)
	}
	f := n.fills.start(req, false)
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
	return &Object{Meta: m, Source: f.source, Fetched: true, Content: r, entry: entry, close: func() error {
		defer f.leave()
		err := r.Close()
		if r.off >= r.size {
			// The reader had the whole body, released before the copy
			// was durable; waiting here for the copy makes the next read
			// of the object on this node a local one.
			f.wait()
		}
		return err
	}}, nil
}

// startFill brings in the body of id from a peer or the remote tier: see
// fillEngine.start.
func (n *Node) startFill(id ulid.ULID, known *journal.Entry, pin bool) *fill {
	return n.fills.start(n.fillRequest(id, known), pin)
}

// fillRequest says where the body of id is: for a key-addressed object,
// in its origin bucket under its key; for a ULID object, in the remote
// tier under its ID.
func (n *Node) fillRequest(id ulid.ULID, known *journal.Entry) fillRequest {
	if known != nil && known.Keyed() {
		return n.keyFillRequest(known.Bucket, known.Key, known, true, false)
	}
	return fillRequest{id: id, known: known, remote: n.remote, key: n.remoteKey(id),
		learn: func(info storage.ObjectInfo) (journal.Entry, error) { return n.describeRemote(id, info) }}
}

// peerBody opens e's body on the first live peer (its origin first) that
// holds the version e describes; nil when none does.
func (n *Node) peerBody(ctx context.Context, e journal.Entry) io.ReadCloser {
	for _, p := range n.peers(e.Origin) {
		resp, err := n.cl.client.Peer(p.PrivateAddr).Get(ctx, e.ID)
		if err != nil {
			n.log.Debug("peer read failed", "id", e.ID, "peer", p.ID, "err", err)
			continue
		}
		if resp.ContentLength != e.Size || resp.Header.Get(cluster.HeaderSHA256) != hex.EncodeToString(e.Sum[:]) {
			// The peer holds another version of the body.
			resp.Body.Close()
			continue
		}
		return resp.Body
	}
	return nil
}

// noCopy explains why the body of level-0 object e could not be read.
func (n *Node) noCopy(e journal.Entry) error {
	if e.Origin == n.id {
		return fmt.Errorf("%w: the body of level-0 object %s was lost with this node's disk and no peer holds a copy", ErrNotFound, e.ID)
	}
	origin := "unknown"
	if n.cl.members != nil {
		if m, ok := n.cl.members.Member(e.Origin); ok {
			origin = string(m.State)
		}
	}
	return safeErrorf(ErrUnavailable, "level-0 object %s is held by node %s (%s) and no live node could serve it",
		e.ID, e.Origin, origin)
}

// describeRemote makes the entry of an object the journal does not know
// from its description in the remote tier.
func (n *Node) describeRemote(id ulid.ULID, info storage.ObjectInfo) (journal.Entry, error) {
	e, err := entryFromRemote(id, info)
	if err != nil {
		return e, fmt.Errorf("%w: %w", ErrRemote, err)
	}
	switch {
	case e.Version.Node != (ulid.ULID{}):
		// Written by a node: checked like an entry from a peer, since
		// anyone with access to the bucket could have written it.
		if err := n.checkEntry(e); err != nil {
			return e, fmt.Errorf("%w: remote copy of %s: %w", ErrRemote, id, err)
		}
	case n.clock.Check(e.Version.Time) != nil:
		// Put there by other means, by a store whose clock runs ahead:
		// this node's reading stands in for the modification time.
		e.Version.Time = n.clock.Now()
	}
	return e, nil
}

// commitFill records a fetched body, durable on disk, in the journal: its
// blob record, and its entry when the journal's is missing or older.
// learned says the entry came from the remote's description. A sparse
// copy of the object, now whole here, is dropped.
func (n *Node) commitFill(e journal.Entry, blob journal.Blob, learned bool) error {
	blob.Stored = n.physicalNow().UTC()
	var applied bool
	err := n.journal.Update(func(tx *journal.Tx) (err error) {
		if applied, err = n.adoptEntry(tx, e, blob.Sum, learned); err != nil {
			return err
		}
		// An entry a sparse copy recorded without its checksum learns it
		// now, or the body would not count as held (see lookup).
		if _, err := tx.CompleteSum(e.ID, e.Version, blob.Sum); err != nil {
			return err
		}
		return tx.PutBlob(e.ID, blob)
	})
	if err != nil {
		return diskErr(err)
	}
	if applied {
		n.announce(e)
	}
	if n.evictable(e) {
		n.policy.Add(e.ID, blob.Size)
	}
	n.sparse.drop(e.ID, &e, blob.Sum)
	return nil
}

// adoptEntry records e, the entry of a body fetched (sum is what arrived,
// or zero for parts of it), in tx when the journal's entry is missing or
// older, and reports whether it did. It fails with ErrDeleted when the
// object was deleted after the version fetched was written, and with
// ErrConflict when a newer write landed while the body streamed in.
// learned says e came from the remote's description, whose time the clock
// then observes.
func (n *Node) adoptEntry(tx *journal.Tx, e journal.Entry, sum storage.Sum, learned bool) (applied bool, err error) {
	cur, err := tx.Entry(e.ID)
	switch {
	case errors.Is(err, journal.ErrNotFound):
	case err != nil:
		return false, diskErr(err)
	case cur.Deleted && cur.Version.Compare(e.Version) >= 0:
		// Deleted after the version fetched was written (a key's
		// tombstone hides only older versions).
		return false, fmt.Errorf("%w: %s was deleted during the fetch", ErrDeleted, e.ID)
	case cur.Version.Compare(e.Version) > 0 && (cur.Sum != sum || sum == storage.Sum{}):
		// A newer write landed while the body streamed in.
		return false, fmt.Errorf("%w: %s changed during the fetch", ErrConflict, e.ID)
	}
	// On a total miss, or when the journal's entry is older than the
	// remote's, the remote's description becomes the entry.
	if applied, err = tx.Apply(e); err != nil {
		return false, diskErr(err)
	}
	if learned {
		// Checked by describeRemote; an entry from the journal was
		// observed when it arrived.
		if err := n.clock.Observe(e.Version.Time); err != nil {
			return false, err
		}
	}
	return applied, nil
}
