package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"golang.org/x/sync/errgroup"

	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// This file joins the node to its cluster: announcements of every write to
// every peer (the fast path), anti-entropy with one peer at a time (the
// guaranteed slow path), and the merge of entries from peers.

// Cluster-related defaults.
const (
	// DefaultSyncInterval and DefaultTombstoneTTL are the defaults of
	// Config.SyncInterval and Config.TombstoneTTL.
	DefaultSyncInterval  = 30 * time.Second
	DefaultTombstoneTTL  = 7 * 24 * time.Hour
	announceDelay        = 50 * time.Millisecond
	announceTimeout      = 5 * time.Second
	writeAnnounceTimeout = 3 * time.Second
	compactInterval      = time.Hour
	// DefaultMaxClockOffset is Config.MaxClockOffset's default, as
	// CockroachDB's --max-offset.
	DefaultMaxClockOffset = 500 * time.Millisecond
)

// clusterState is the node's part in a cluster; nil fields mean solo.
type clusterState struct {
	members *cluster.Membership
	client  *cluster.Client

	annMu sync.Mutex // guards annQ
	annQ  []journal.Entry
	annC  chan struct{} // signals announcements, capacity 1

	syncMu     sync.Mutex // guards lastSyncs
	lastSyncs  map[ulid.ULID]time.Time
	firstSync  chan struct{} // closed after the first completed round (or when solo)
	firstClose sync.Once
}

// startCluster joins the cluster and starts the loops that keep this node's
// journal in step with its peers'.
func (n *Node) startCluster() error {
	n.cl = &clusterState{
		client:    cluster.NewClient(cluster.ClientConfig{Auth: n.cfg.Auth, OnClock: n.observeClock, LastSync: n.lastSync}),
		annC:      make(chan struct{}, 1),
		lastSyncs: make(map[ulid.ULID]time.Time),
		firstSync: make(chan struct{}),
	}
	if n.cfg.Cluster == nil {
		n.cl.firstClose.Do(func() { close(n.cl.firstSync) })
		return nil
	}
	cc := *n.cfg.Cluster
	cc.NodeID = n.id
	if n.cfg.Auth.Keyring != nil {
		cc.Keyring = n.cfg.Auth.Keyring
	}
	if cc.Logger == nil {
		cc.Logger = n.cfg.Logger
	}
	m, err := cluster.Start(cc)
	if err != nil {
		return fmt.Errorf("node: join cluster: %w", err)
	}
	n.cl.members = m
	if len(m.Peers()) == 0 && len(cc.Join) == 0 {
		n.cl.firstClose.Do(func() { close(n.cl.firstSync) })
	}
	// Measure the peers' clocks before the first write is taken.
	n.probeClocks()
	n.wg.Add(4)
	go n.announceLoop()
	go n.eventLoop()
	go n.syncLoop()
	go n.clockLoop()
	return nil
}

// Member returns the member with ID id as this node sees it, in any
// state; a solo node knows only itself.
func (n *Node) Member(id ulid.ULID) (cluster.Member, bool) {
	if n.cl == nil || n.cl.members == nil {
		if id == n.id {
			return cluster.Member{ID: n.id, State: cluster.StateAlive, Self: true}, true
		}
		return cluster.Member{}, false
	}
	return n.cl.members.Member(id)
}

// stopCluster leaves the cluster gracefully, so peers see this node as
// left rather than dead.
func (n *Node) stopCluster() {
	if n.cl == nil || n.cl.members == nil {
		return
	}
	if err := n.cl.members.Leave(5 * time.Second); err != nil {
		n.log.Warn("leave cluster", "err", err)
	}
}

func (n *Node) closeCluster() {
	if n.cl == nil {
		return
	}
	if n.cl.members != nil {
		n.cl.members.Close()
	}
	n.cl.client.Close()
}

// Members returns the cluster's members as this node sees them; a solo
// node returns itself.
func (n *Node) Members() []cluster.Member {
	if n.cl.members == nil {
		return []cluster.Member{{ID: n.id, State: cluster.StateAlive, Self: true}}
	}
	return n.cl.members.Members()
}

// Ready reports whether the node should take traffic: its journal is open,
// it has completed its first anti-entropy round with a peer (at once for a
// node with no peers to join), it is not shutting down, and its clock is
// within MaxClockOffset of its peers'. The error says why not.
func (n *Node) Ready() error {
	switch {
	case n.closed.Load():
		return ErrClosed
	case n.draining.Load():
		return fmt.Errorf("%w: draining before shutdown", ErrClosed)
	}
	// A node that refuses writes (stale, or its clock off) should get no
	// traffic; that is named first, since it also keeps the first sync
	// from happening.
	if err := n.writable(); err != nil {
		return err
	}
	select {
	case <-n.cl.firstSync:
		return nil
	default:
		return fmt.Errorf("%w: waiting for the first sync with a peer", ErrUnavailable)
	}
}

// Drain marks the node as shutting down: Ready fails from now on, so load
// balancers stop sending it requests, while it still serves those that
// arrive.
func (n *Node) Drain() { n.draining.Store(true) }

// peers returns the live peers' private APIs, the origin of the object
// first when it is among them.
func (n *Node) peers(origin ulid.ULID) []cluster.Member {
	if n.cl.members == nil {
		return nil
	}
	ps := n.cl.members.Peers()
	rand.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	for i, p := range ps {
		if p.ID == origin {
			ps[0], ps[i] = ps[i], ps[0]
		}
	}
	return ps
}

// tell sends a client's write to every live peer before the client hears
// back (bounded by a timeout), so that a read through any node right after
// the write, as behind a load balancer, finds it. A peer that misses it is
// caught up by anti-entropy.
func (n *Node) tell(ctx context.Context, e journal.Entry) {
	if n.cl.members == nil || n.stale() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeAnnounceTimeout)
	defer cancel()
	n.broadcast(ctx, []journal.Entry{e})
}

// announce queues a local write for the peers. Announcements are batched
// and sent to every live peer; one lost is repaired by anti-entropy.
func (n *Node) announce(e journal.Entry) {
	if n.cl.members == nil || n.stale() != nil {
		return
	}
	n.cl.annMu.Lock()
	n.cl.annQ = append(n.cl.annQ, e)
	n.cl.annMu.Unlock()
	select {
	case n.cl.annC <- struct{}{}:
	default:
	}
}

func (n *Node) announceLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.cl.annC:
		}
		// Let a burst of writes gather into one message per peer.
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(announceDelay):
		}
		n.cl.annMu.Lock()
		batch := n.cl.annQ
		n.cl.annQ = nil
		n.cl.annMu.Unlock()
		for chunk := range cluster.Chunks(batch, cluster.MaxBatch) {
			ctx, cancel := context.WithTimeout(n.ctx, announceTimeout)
			n.broadcast(ctx, chunk)
			cancel()
		}
	}
}

// broadcast sends entries to every live peer at once and waits for all.
func (n *Node) broadcast(ctx context.Context, entries []journal.Entry) {
	eachPeer(n.peers(ulid.ULID{}), func(_ int, p cluster.Member) {
		if _, err := n.cl.client.Peer(p.PrivateAddr).Merge(ctx, entries); err != nil {
			n.log.Debug("announce failed; anti-entropy will carry it", "peer", p.ID, "err", err)
		}
	})
}

// peerFanOut bounds how many peers one operation talks to at once.
const peerFanOut = 32

// eachPeer calls fn for every member of peers (with its index), up to
// peerFanOut at once, and returns when all calls have.
func eachPeer(peers []cluster.Member, fn func(i int, p cluster.Member)) {
	var g errgroup.Group
	g.SetLimit(peerFanOut)
	for i, p := range peers {
		g.Go(func() error {
			fn(i, p)
			return nil
		})
	}
	g.Wait() // fn reports its own failures
}

// eventLoop reacts to membership: a peer that joins, or returns after a
// failure, is synced with at once.
func (n *Node) eventLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case ev, ok := <-n.cl.members.Events():
			if !ok {
				return
			}
			n.log.Info("cluster event", "event", ev.Type.String(), "peer", ev.Member.ID, "state", ev.Member.State)
			if ev.Type == cluster.EventJoin && !ev.Member.Self {
				n.wg.Add(1)
				go func() {
					defer n.wg.Done()
					// A new member is vetted before anything is
					// exchanged with it.
					ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
					trusted := n.vet(ctx, ev.Member)
					cancel()
					if trusted {
						n.syncWith(ev.Member)
					}
				}()
			}
		}
	}
}

// syncLoop runs anti-entropy with a random live peer every SyncInterval,
// and compacts old tombstones.
func (n *Node) syncLoop() {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.SyncInterval)
	defer tick.Stop()
	compact := time.NewTicker(compactInterval)
	defer compact.Stop()
	// The first round runs at once, so a restarted node catches up before
	// the first tick.
	for first := true; ; first = false {
		if !first {
			select {
			case <-n.ctx.Done():
				return
			case <-compact.C:
				n.compactTombstones()
				continue
			case <-tick.C:
			}
		}
		if ps := n.peers(ulid.ULID{}); len(ps) > 0 {
			n.syncWith(ps[0])
		} else if n.aloneByDesign() {
			// Alone by design and with no member at all, not cut off
			// from dead ones: nothing it holds can be stale.
			if err := n.journal.SetLastSync(n.physicalNow()); err != nil {
				n.log.Warn("record sync time", "err", err)
			}
		}
	}
}

// aloneByDesign reports whether this node is a cluster of one on
// purpose: it knows no other member, and it has no seeds to join, or its
// seeds name only itself while its journal is empty (the first node of a
// new cluster whose seed is a name for all of them, such as a headless
// service). A node with a journal never decides it is alone from DNS: a
// lookup that misses its peers must not make it serve stale data.
func (n *Node) aloneByDesign() bool {
	if len(n.cl.members.Members()) != 1 {
		return false
	}
	if len(n.cfg.Cluster.Join) == 0 {
		return true
	}
	st := n.journal.Stats()
	return st.Objects == 0 && st.Tombstones == 0 && n.cl.members.SeedsAreSelf()
}

// syncWith runs one anti-entropy round with peer p. A stale node runs
// none: it would push what its peers have forgotten they deleted.
func (n *Node) syncWith(p cluster.Member) {
	if n.stale() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Minute)
	defer cancel()
	st, err := cluster.Sync(ctx, n, n.cl.client.Peer(p.PrivateAddr))
	c := &n.counters
	c.syncRounds.Add(1)
	c.syncPulled.Add(int64(st.Pulled))
	c.syncPushed.Add(int64(st.Pushed))
	c.syncApplied.Add(int64(st.Applied))
	if err != nil {
		c.syncFailures.Add(1)
		if n.ctx.Err() == nil {
			n.log.Warn("anti-entropy failed", "peer", p.ID, "err", err)
		}
		return
	}
	now := n.physicalNow()
	n.cl.syncMu.Lock()
	n.cl.lastSyncs[p.ID] = now
	n.cl.syncMu.Unlock()
	if err := n.journal.SetLastSync(now); err != nil {
		n.log.Warn("record sync time", "err", err)
	}
	n.cl.firstClose.Do(func() { close(n.cl.firstSync) })
	level := n.log.Debug
	if st.Pulled+st.Pushed > 0 {
		level = n.log.Info
	}
	level("anti-entropy done", "peer", p.ID, "leaves", st.Leaves, "pulled", st.Pulled, "pushed", st.Pushed,
		"applied", st.Applied, "elapsed", st.Elapsed.Round(time.Millisecond))
}

// compactTombstones forgets tombstones older than the retention.
func (n *Node) compactTombstones() {
	k, err := n.journal.CompactTombstones(n.physicalNow().Add(-n.cfg.TombstoneTTL), 100000)
	if err != nil {
		n.log.Warn("compact tombstones", "err", err)
	} else if k > 0 {
		n.log.Info("compacted tombstones", "count", k, "older_than", n.cfg.TombstoneTTL)
	}
}

// TreeChildren implements cluster.Replica.
func (n *Node) TreeChildren(ctx context.Context, level int, nodes []uint32) ([]journal.TreeNode, error) {
	return n.journal.TreeChildren(level, nodes)
}

// Summaries implements cluster.Replica.
func (n *Node) Summaries(ctx context.Context, leaves []uint16) ([]journal.Summary, error) {
	return n.journal.Summaries(leaves)
}

// Entries implements cluster.Replica.
func (n *Node) Entries(ctx context.Context, ids []ulid.ULID) ([]journal.Entry, error) {
	return n.journal.Entries(ids)
}

// Merge applies entries from a peer, last writer wins, and carries out what
// they imply here: a tombstone or a newer body drops this node's copy of
// the old body, and a level-2 entry whose body this node lacks is queued to
// be pulled. It returns how many entries were newer than the journal's.
// Entries from before the tombstone retention that the journal does not
// know are refused: their deletion may have been compacted already.
//
// Every entry is checked as a client's write would be (checkEntry); one
// that fails is refused, logged and counted, and the others are merged.
func (n *Node) Merge(ctx context.Context, entries []journal.Entry) (int, error) {
	if n.closed.Load() {
		return 0, ErrClosed
	}
	valid := entries[:0:0]
	for _, e := range entries {
		if err := n.checkEntry(e); err != nil {
			n.counters.mergeRefused.Add(1)
			n.log.Warn("refused an entry from a peer", "id", e.ID, "version", e.Version.String(), "err", err)
			continue
		}
		valid = append(valid, e)
	}
	entries = valid
	horizon := n.physicalNow().Add(-n.cfg.TombstoneTTL).UnixNano()
	type dropped struct {
		id  ulid.ULID
		sum storage.Sum
	}
	type staleCopy struct {
		id  ulid.ULID
		tag string
	}
	var applied int
	var drop []dropped
	var sparse []staleCopy // sparse copies of versions superseded
	var want []ulid.ULID
	var track []journal.BlobRef // copies kept that became evictable
	var newest journal.Timestamp
	err := n.journal.Update(func(tx *journal.Tx) error {
		applied, drop, sparse, want, track = 0, drop[:0], sparse[:0], want[:0], track[:0]
		for _, e := range entries {
			if e.Deleted && e.Version.Time.Wall < horizon {
				if _, err := tx.Entry(e.ID); errors.Is(err, journal.ErrNotFound) {
					continue // an expired tombstone: nothing to delete here
				}
			}
			var prev *journal.Entry
			if tx.HasSparse(e.ID) {
				// Whether the parts held stay depends on what e replaces.
				if cur, err := tx.Entry(e.ID); err == nil {
					prev = &cur
				}
			}
			ok, err := tx.Apply(e)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			applied++
			if e.Version.Time.Compare(newest) > 0 {
				newest = e.Version.Time
			}
			if tag, err := staleSparse(tx, prev, e); err != nil {
				return err
			} else if tag != "" {
				sparse = append(sparse, staleCopy{e.ID, tag})
			}
			b, err := tx.Blob(e.ID)
			held := err == nil
			if held && (e.Deleted || b.Sum != e.Sum) {
				if err := tx.DeleteBlob(e.ID); err != nil {
					return err
				}
				drop = append(drop, dropped{e.ID, b.Sum})
				held = false
			}
			if !e.Deleted && e.Level == journal.LevelFull && !held {
				want = append(want, e.ID)
			}
			if held && n.evictable(e) {
				// A level raised elsewhere can make the copy this node
				// pinned as a sole copy evictable; Add is idempotent.
				track = append(track, journal.BlobRef{ID: e.ID, Blob: b})
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("node: merge: %w", diskErr(err))
	}
	if err := n.clock.Observe(newest); err != nil {
		// checkEntry passed every entry a moment ago; only a clock
		// stepping back in between gets here.
		n.log.Warn("merged entries are ahead of this node's clock", "err", err)
	}
	for _, c := range sparse {
		n.removeSparse(c.id, c.tag)
	}
	for _, d := range drop {
		if err := n.disk.Remove(d.id, d.sum); err != nil {
			n.log.Warn("remove superseded body", "id", d.id, "err", err)
		}
		n.policy.Remove(d.id)
		n.mem.drop(d.id)
	}
	for _, id := range want {
		n.queueRepair(id)
	}
	for _, r := range track {
		n.policy.Add(r.ID, r.Size)
	}
	return applied, nil
}

// OpenLocal opens the body of id if this node holds it, for a peer's read
// (of rng, when set, which this node's sparse copy may serve if it holds
// every part the range touches);
// it never fetches from elsewhere.
func (n *Node) OpenLocal(ctx context.Context, id ulid.ULID, rng *Range) (*Object, error) {
	e, b, err := n.live("open", id)
	if err != nil {
		return nil, err
	}
	if b == nil && rng != nil {
		return n.openSparseLocal(ctx, e, rng)
	}
	obj, err := n.openLocal(e, b)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: this node does not hold the body of %s", ErrNotFound, id)
	}
	return obj, err
}

// maxEntrySize bounds the size an entry may claim: S3's largest object.
const maxEntrySize = 5 << 40

// checkEntry validates an entry that arrived from elsewhere (a peer, or a
// remote copy's metadata) as a client's write is validated: the name and
// user metadata within the limits a PUT has, a defined level, a sane size,
// a real version and origin, and a version time no further ahead of this
// node's clock than MaxClockOffset.
func (n *Node) checkEntry(e journal.Entry) error {
	switch {
	case e.ID == (ulid.ULID{}):
		return fmt.Errorf("%w: entry without an ID", ErrInvalid)
	case e.Version.Node == (ulid.ULID{}) || e.Version.Time.Wall <= 0:
		return fmt.Errorf("%w: entry %s without a version", ErrInvalid, e.ID)
	}
	if err := n.clock.Check(e.Version.Time); err != nil {
		return fmt.Errorf("%w: entry %s: %w", ErrInvalid, e.ID, err)
	}
	if e.Deleted {
		return nil // Apply keeps nothing of a tombstone but ID and version
	}
	switch {
	case !e.Level.Valid():
		return fmt.Errorf("%w: entry %s has level %d", ErrInvalid, e.ID, e.Level)
	case e.Origin == (ulid.ULID{}):
		return fmt.Errorf("%w: entry %s has no origin", ErrInvalid, e.ID)
	case e.Size < 0 || e.Size > maxEntrySize:
		return fmt.Errorf("%w: entry %s has size %d", ErrInvalid, e.ID, e.Size)
	}
	if err := validName(e.Name); err != nil {
		return fmt.Errorf("entry %s: %w", e.ID, err)
	}
	if err := validUserMeta(e.UserMeta); err != nil {
		return fmt.Errorf("entry %s: %w", e.ID, err)
	}
	return checkKeyed(e)
}
