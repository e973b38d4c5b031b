package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// This file makes the node a cache: a byte quota on the bodies it holds,
// eviction of copies that are safe elsewhere in the policy's order, expiry
// of cached copies, and invalidation.

// quota tracks the bytes reserved for bodies being written, so concurrent
// writers cannot together overshoot the quota.
type quota struct {
	mu       sync.Mutex // guards reserved; held while evicting
	reserved int64
}

// reserve makes room for size more bytes of bodies under MaxDisk, evicting
// copies that are safe elsewhere, in the policy's order, until they fit. It
// returns the release to call once the body is committed (when the journal
// counts it) or abandoned. With no quota it reserves nothing. When nothing
// more can be evicted the error matches ErrNoSpace and nothing was written.
func (n *Node) reserve(size int64) (func(), error) {
	r := n.newReservation(-1)
	if err := r.grow(size); err != nil {
		return nil, err
	}
	return r.release, nil
}

// reserveStep is how far ahead of the bytes that have arrived a client's
// body reserves quota, so a body takes the quota lock once per step.
const reserveStep = 1 << 20

// reservation is the quota held for one body. A client's body reserves as
// its bytes arrive (quotaWriter), not what it declares, so a client that
// announces a large body and sends it slowly, or never, holds no more of
// the quota than it has sent.
type reservation struct {
	n    *Node
	size int64 // the body's declared size, or -1 when unknown
	held int64

	once sync.Once
}

func (n *Node) newReservation(size int64) *reservation { return &reservation{n: n, size: size} }

// grow makes the reservation cover at least to bytes, a step ahead when
// that fits (never past the declared size).
func (r *reservation) grow(to int64) error {
	n := r.n
	if n.cfg.MaxDisk <= 0 || to <= r.held {
		return nil
	}
	want := to + reserveStep
	if r.size >= 0 && want > r.size {
		want = max(r.size, to)
	}
	q := &n.quota
	q.mu.Lock()
	defer q.mu.Unlock()
	if to > n.cfg.MaxDisk {
		return safeErrorf(ErrNoSpace, "%d bytes do not fit in the disk quota of %d bytes", to, n.cfg.MaxDisk)
	}
	over := func(add int64) int64 {
		st := n.journal.Stats()
		return st.BlobBytes + st.SparseBytes + q.reserved + add - n.cfg.MaxDisk
	}
	if over(to-r.held) > 0 {
		n.policy.Victims(func(id ulid.ULID) bool {
			if n.evict(id) {
				n.counters.evictions.Add(1)
			}
			return over(to-r.held) > 0
		})
	}
	if over(to-r.held) > 0 {
		return safeErrorf(ErrNoSpace, "the disk quota of %d bytes is full and no copy held here is safe elsewhere to evict", n.cfg.MaxDisk)
	}
	if over(want-r.held) > 0 {
		want = to // the step ahead does not fit; what arrived does
	}
	q.reserved += want - r.held
	r.held = want
	return nil
}

// release gives the reservation back. Safe to call more than once.
func (r *reservation) release() {
	r.once.Do(func() {
		if r.held == 0 {
			return
		}
		q := &r.n.quota
		q.mu.Lock()
		q.reserved -= r.held
		q.mu.Unlock()
	})
}

// quotaWriter grows a reservation ahead of every write, so a body is held
// to the quota by the bytes that actually arrive.
type quotaWriter struct {
	w   io.Writer
	r   *reservation
	off int64
}

func (q *quotaWriter) Write(p []byte) (int, error) {
	if err := q.r.grow(q.off + int64(len(p))); err != nil {
		return 0, err
	}
	n, err := q.w.Write(p)
	q.off += int64(n)
	return n, err
}

// loadPolicy seeds the cache policy with the bodies held at start-up,
// oldest first, so that the least recently stored are the first victims
// until reads teach the policy better.
func (n *Node) loadPolicy() error {
	var refs []journal.BlobRef
	var after ulid.ULID
	for {
		page, err := n.journal.Blobs(after, 4096)
		if err != nil {
			return fmt.Errorf("node: load cache policy: %w", err)
		}
		if len(page) == 0 {
			break
		}
		refs = append(refs, page...)
		after = page[len(page)-1].ID
	}
	slices.SortFunc(refs, func(a, b journal.BlobRef) int { return a.Stored.Compare(b.Stored) })
	for _, r := range refs {
		if e, err := n.journal.Entry(r.ID); err == nil && n.evictable(e) {
			n.policy.Add(r.ID, r.Size)
		}
	}
	return nil
}

// evictable reports whether this node's copy of e's body can ever be
// evicted. The origin's copy of a level-0 body never can, so the policy
// does not track it (a walk for victims would pass over it every time)
// until a level change makes it evictable.
func (n *Node) evictable(e journal.Entry) bool {
	return e.Level.InRemote() || e.Origin != n.id
}

// safeElsewhere reports whether dropping this node's copy of e's body
// loses nothing: the remote keeps levels 1 and 2, and a level-0 copy here
// is a cached copy when another live node, its origin, holds the body.
func (n *Node) safeElsewhere(e journal.Entry) bool {
	switch {
	case e.Deleted || e.Level.InRemote():
		return true
	case e.Origin == n.id || n.cl.members == nil:
		return false
	}
	m, ok := n.cl.members.Member(e.Origin)
	return ok && m.State == cluster.StateAlive
}

// evict drops this node's copy of id if it is safe elsewhere, and reports
// whether it did.
func (n *Node) evict(id ulid.ULID) bool {
	e, b, err := n.lookup(id)
	if err == nil && b == nil && n.heldSparse(id) {
		// A sparse copy: its parts came from the remote or a peer. One in
		// use (read, fetching, being assembled) is passed over: its
		// readers would fail, and a part's fetch would evict its own copy.
		if !n.sparse.dropIdle(id) {
			return false
		}
		n.policy.Remove(id)
		n.log.Debug("evicted a sparse copy", "id", id)
		return true
	}
	if errors.Is(err, journal.ErrNotFound) || (err == nil && b == nil) {
		// Not held any more (or its entry is gone): nothing to free.
		n.policy.Remove(id)
		n.mem.drop(id)
		return false
	}
	if err != nil || !n.safeElsewhere(e) {
		return false
	}
	n.dropBlob(id, b.Sum, false)
	n.log.Debug("evicted", "id", id, "size", b.Size)
	return true
}

// expired reports whether this node's copy b of e is past the cache TTL.
// Only cached copies expire: a copy that is the only one never does.
func (n *Node) expired(e journal.Entry, b journal.Blob) bool {
	return n.cfg.CacheTTL > 0 && n.physicalNow().Sub(b.Stored) > n.cfg.CacheTTL && n.safeElsewhere(e)
}

// InvalidateResult says what an invalidation did on each node.
type InvalidateResult struct {
	ID string `json:"id"`
	// Dropped lists the nodes that dropped a copy; Kept those whose copy
	// is the only one (a level-0 body on its origin) and stays.
	Dropped []string `json:"dropped"`
	Kept    []string `json:"kept,omitempty"`
	// Errors maps nodes that could not be reached to the reason.
	Errors map[string]string `json:"errors,omitempty"`
}

// Invalidate drops the cached copies of object id on this node and, when
// everywhere is set, on every live peer, keeping its metadata and the
// remote copy; the next read fetches a fresh copy. A copy that is the only
// one (a level-0 body on the node that took the PUT) is kept.
func (n *Node) Invalidate(ctx context.Context, id ulid.ULID, everywhere bool) (InvalidateResult, error) {
	res := InvalidateResult{ID: id.String(), Dropped: []string{}}
	if _, _, err := n.live("invalidate", id); err != nil {
		return res, err
	}
	dropped, kept := n.DropCopy(ctx, id)
	if dropped {
		res.Dropped = append(res.Dropped, n.id.String())
	}
	if kept {
		res.Kept = append(res.Kept, n.id.String())
	}
	if !everywhere {
		return res, nil
	}
	var mu sync.Mutex
	eachPeer(n.peers(ulid.ULID{}), func(_ int, p cluster.Member) {
		d, k, err := n.cl.client.Peer(p.PrivateAddr).Invalidate(ctx, id)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			if res.Errors == nil {
				res.Errors = map[string]string{}
			}
			res.Errors[p.ID.String()] = err.Error()
		case d:
			res.Dropped = append(res.Dropped, p.ID.String())
		case k:
			res.Kept = append(res.Kept, p.ID.String())
		}
	})
	return res, nil
}

// DropCopy drops this node's copy of id if it is safe elsewhere. It
// reports whether a copy was dropped, and whether one was kept because it
// is the only one.
func (n *Node) DropCopy(ctx context.Context, id ulid.ULID) (dropped, kept bool) {
	e, b, err := n.lookup(id)
	if err == nil && b == nil && n.heldSparse(id) {
		// A sparse copy's parts came from elsewhere: always safe.
		n.sparse.drop(id, nil, storage.Sum{})
		return true, false
	}
	if err != nil || b == nil {
		return false, false
	}
	if !n.safeElsewhere(e) {
		return false, true
	}
	n.dropBlob(id, b.Sum, false)
	return true, false
}

// Served records bytes sent to clients from a source, for the stats.
func (n *Node) Served(src Source, bytes int64) {
	switch src {
	case SourceLocal:
		n.counters.bytesLocal.Add(bytes)
	case SourcePeer:
		n.counters.bytesPeer.Add(bytes)
	case SourceRemote:
		n.counters.bytesRemote.Add(bytes)
	}
}
