package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// Delete records a tombstone for id and removes this node's copy of the
// body. The tombstone is kept even for an ID the journal never knew, so a
// later fetch cannot bring the object back from the remote. The remote copy
// stays unless purge is set; a failed purge leaves the tombstone in place
// and returns an error matching ErrRemote or ErrRemoteUnavailable, and
// deleting again retries it.
func (n *Node) Delete(ctx context.Context, id ulid.ULID, purge bool) (Meta, error) {
	if n.closed.Load() {
		return Meta{}, ErrClosed
	}
	// A write stamped by a clock the cluster would refuse, or taken by a
	// stale node, is not taken.
	if err := n.writable(); err != nil {
		return Meta{}, err
	}
	unlock, err := n.locks.lock(ctx, id)
	if err != nil {
		return Meta{}, err
	}
	defer unlock()

	tomb, err := n.tombstone(ctx, id)
	if err != nil {
		return Meta{}, err
	}
	m := metaOf(tomb, nil)
	if purge {
		if err := n.remote.Remove(ctx, n.remoteKey(id)); err != nil {
			return m, fmt.Errorf("%s is deleted here but purging the remote copy failed; delete again to retry: %w",
				id, remoteErr("remove", err))
		}
	}
	n.log.Debug("delete", "id", id, "purge", purge)
	return m, nil
}

// tombstone deletes object id in the journal, drops this node's copy and
// tells the peers, unless it is deleted already; it returns the
// tombstone. The caller holds id's lock.
func (n *Node) tombstone(ctx context.Context, id ulid.ULID) (journal.Entry, error) {
	cur, err := n.journal.Entry(id)
	if err != nil && !errors.Is(err, journal.ErrNotFound) {
		return journal.Entry{}, fmt.Errorf("node: delete %s: %w", id, err)
	}
	if err == nil && cur.Deleted {
		return cur, nil
	}
	tomb := journal.Entry{ID: id, Version: journal.Version{Time: n.clock.Now(), Node: n.id}, Deleted: true}
	old, applied, err := n.commit(tomb, nil)
	if err != nil {
		return journal.Entry{}, err
	}
	if !applied {
		// The journal holds a newer version than this node's clock can
		// write; its body stays, since the journal points at it.
		return journal.Entry{}, fmt.Errorf("%w: a newer version of %s was written meanwhile; the delete was not applied", ErrConflict, id)
	}
	if old != nil {
		if err := n.disk.Remove(id, old.Sum); err != nil {
			n.log.Warn("remove deleted body", "id", id, "err", err)
		}
		n.policy.Remove(id)
		n.mem.drop(id)
	}
	n.counters.deletes.Add(1)
	// No node serves the object after a successful DELETE.
	n.tell(ctx, tomb)
	return tomb, nil
}

// SetLevel raises the consistency level of object id without the client
// sending its body again: this node's copy is uploaded to the remote tier
// (from disk, so memory stays flat) and then the new level is committed as a
// new version. Asking for the current level changes nothing; asking for a
// lower one fails with ErrConflict, since a copy the remote holds is not
// taken back.
func (n *Node) SetLevel(ctx context.Context, id ulid.ULID, level journal.Level) (Meta, error) {
	if n.closed.Load() {
		return Meta{}, ErrClosed
	}
	// A write stamped by a clock the cluster would refuse, or taken by a
	// stale node, is not taken.
	if err := n.writable(); err != nil {
		return Meta{}, err
	}
	if !level.Valid() {
		return Meta{}, fmt.Errorf("%w: consistency level %d is not 0, 1 or 2", ErrInvalid, level)
	}
	unlock, err := n.locks.lock(ctx, id)
	if err != nil {
		return Meta{}, err
	}
	defer unlock()

	e, err := n.journal.Entry(id)
	switch {
	case errors.Is(err, journal.ErrNotFound):
		return Meta{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	case err != nil:
		return Meta{}, fmt.Errorf("node: set level %s: %w", id, err)
	case e.Deleted:
		return metaOf(e, nil), fmt.Errorf("%w: %s", ErrDeleted, id)
	case level < e.Level:
		return Meta{}, fmt.Errorf("%w: object %s has consistency level %d; levels only rise", ErrConflict, id, e.Level)
	}
	b, berr := n.journal.Blob(id)
	if level == e.Level {
		var bp *journal.Blob
		if berr == nil {
			bp = &b
		}
		return metaOf(e, bp), nil
	}
	next := e
	next.Level = level
	next.Version = journal.Version{Time: n.clock.Now(), Node: n.id}
	if !e.Level.InRemote() {
		if berr != nil || b.Sum != e.Sum {
			return Meta{}, fmt.Errorf("%w: the body of level-0 object %s is not on this node; raise its level on the node that holds it", ErrConflict, id)
		}
		if err := n.upload(ctx, next); err != nil {
			return Meta{}, err
		}
	}
	// An object already in the remote only changes its entry; the remote
	// copy's metadata keeps the level it was uploaded with, which a fetch
	// raises to at least 1.
	if _, applied, err := n.commit(next, blobPtr(b, berr == nil && b.Sum == e.Sum)); err != nil {
		return Meta{}, err
	} else if !applied {
		return Meta{}, fmt.Errorf("%w: a newer version of %s was written meanwhile", ErrConflict, id)
	}
	n.tell(ctx, next)
	if berr == nil && b.Sum == e.Sum && !n.evictable(e) {
		// The body was pinned here as a sole copy; the remote has it now.
		n.policy.Add(id, b.Size)
	}
	if next.Level == journal.LevelFull && berr != nil {
		// Level 2 wants a copy here too.
		n.queueRepair(id)
	}
	return metaOf(next, blobPtr(b, berr == nil && b.Sum == e.Sum)), nil
}

func blobPtr(b journal.Blob, ok bool) *journal.Blob {
	if !ok {
		return nil
	}
	return &b
}

// upload copies this node's body of e to the remote tier, streaming from
// disk.
func (n *Node) upload(ctx context.Context, e journal.Entry) error {
	f, _, err := n.disk.Open(e.ID, e.Sum)
	if err != nil {
		return fmt.Errorf("node: upload %s: %w", e.ID, err)
	}
	defer f.Close()
	release, err := n.uploadSlot(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := n.remote.Put(ctx, n.remoteKey(e.ID), f, e.Size, remoteMeta(e, true)); err != nil {
		return remoteErr("upload "+e.ID.String(), err)
	}
	return nil
}

// Stats is what /api/v1/stats reports.
type Stats struct {
	NodeID string `json:"node_id"`
	Remote string `json:"remote"`
	// Disk describes the files directory's filesystem (the api package
	// also presents it in the original objstore's disk_stats form).
	Disk storage.Usage `json:"filesystem"`
	// Quota is --max-disk in bytes, the bound on the bodies this node
	// holds (Journal.BlobBytes); 0 when there is none.
	Quota   int64         `json:"quota"`
	Journal journal.Stats `json:"journal"`
	Traffic Traffic       `json:"traffic"`
	// RepairBacklog counts the bodies this node should hold and does not
	// yet: level-2 pulls and repairs pending, retried with backoff.
	RepairBacklog int `json:"repair_backlog"`
	// MemoryCache is what the memory cache of small bodies holds.
	MemoryCache MemoryCacheStats `json:"memory_cache"`
	// Fills describes the fetches of bodies from peers and the remote
	// under way now.
	Fills FillStats `json:"fills"`
	// Sync counts this node's anti-entropy rounds since start.
	Sync SyncCounts `json:"sync"`
	// Members counts the cluster's members, this node included, by state
	// as this node sees them: alive, suspect, dead, left, and untrusted
	// for members that failed to authenticate.
	Members map[string]int `json:"members"`
	// PeerBytesSent and PeerBytesReceived count the bytes of request and
	// response bodies this node exchanged with its peers on the private
	// API (bodies, journal entries, sync messages).
	PeerBytesSent     int64 `json:"peer_bytes_sent"`
	PeerBytesReceived int64 `json:"peer_bytes_received"`
}

// FillStats describes the fills under way: bodies being fetched, and the
// clients' GETs following them as they stream in.
type FillStats struct {
	InFlight int `json:"in_flight"`
	Readers  int `json:"readers"`
}

// SyncCounts counts anti-entropy rounds: those run, those that failed,
// and the journal entries they pulled from peers, pushed to them, and
// found newer than the receiver's (applied).
type SyncCounts struct {
	Rounds   int64 `json:"rounds"`
	Failures int64 `json:"failures"`
	Pulled   int64 `json:"pulled"`
	Pushed   int64 `json:"pushed"`
	Applied  int64 `json:"applied"`
}

// MemoryCacheStats describes the memory cache of small bodies.
type MemoryCacheStats struct {
	Bodies int   `json:"bodies"`
	Bytes  int64 `json:"bytes"`
	Budget int64 `json:"budget"`
}

// Traffic counts the node's work since it started.
type Traffic struct {
	HitsLocal int64 `json:"hits_local"`
	// HitsMemory counts the local hits served from the memory cache of
	// small bodies (a part of HitsLocal).
	HitsMemory  int64 `json:"hits_memory"`
	BytesLocal  int64 `json:"bytes_local"`
	BytesPeer   int64 `json:"bytes_peer"`
	BytesRemote int64 `json:"bytes_remote"`
	Evictions   int64 `json:"evictions"`
	HitsPeer    int64 `json:"hits_peer"`
	HitsRemote  int64 `json:"hits_remote"`
	Misses      int64 `json:"misses"`
	Fetches     int64 `json:"fetches"`
	FetchErrors int64 `json:"fetch_errors"`
	// Coalesced counts the reads that joined a fetch already under way
	// instead of starting their own.
	Coalesced     int64 `json:"coalesced"`
	Puts          int64 `json:"puts"`
	PutErrors     int64 `json:"put_errors"`
	Deletes       int64 `json:"deletes"`
	RemoteUploads int64 `json:"remote_uploads"`
	RemoteGets    int64 `json:"remote_gets"`
	Scrubbed      int64 `json:"scrubbed"`
	ScrubDamaged  int64 `json:"scrub_damaged"`
	// ReadDamaged counts local bodies a read found damaged (their
	// checksums fail) and dropped, to be fetched again.
	ReadDamaged  int64 `json:"read_damaged"`
	Repairs      int64 `json:"repairs"`
	RepairErrors int64 `json:"repair_errors"`
	// OwnerFills counts key fills this node routed to their owner and the
	// owner served; OwnerFallbacks those it fetched from the origin itself
	// because the owner did not serve; FillsForPeers the fills peers
	// routed here.
	OwnerFills     int64 `json:"owner_fills"`
	OwnerFallbacks int64 `json:"owner_fallbacks"`
	FillsForPeers  int64 `json:"fills_for_peers"`
	// MergeRefused counts entries from peers refused as invalid or as
	// stamped too far ahead of this node's clock.
	MergeRefused int64 `json:"merge_refused"`
	// Resealed counts bodies the scrub rewrote under the primary
	// encryption key.
	Resealed int64 `json:"resealed"`
	// SparseReads counts the GETs served through a sparse copy (ranged
	// reads of objects not held whole); RangedRemoteBytes the bytes their
	// part fetches pulled from the remote; SparseAssembled the sparse
	// copies that came to hold every part and became whole bodies.
	SparseReads       int64 `json:"sparse_reads"`
	RangedRemoteBytes int64 `json:"ranged_remote_bytes"`
	SparseAssembled   int64 `json:"sparse_assembled"`
}

// Stats reports disk usage, what the journal holds and the node's traffic.
func (n *Node) Stats(ctx context.Context) (Stats, error) {
	u, err := n.disk.Usage()
	if err != nil {
		return Stats{}, err
	}
	c := &n.counters
	rc := n.remote.Counts()
	memBodies, memBytes := n.mem.stats()
	fills, readers := n.fills.load()
	members := make(map[string]int)
	for _, m := range n.Members() {
		state := string(m.State)
		if m.Untrusted {
			state = "untrusted"
		}
		members[state]++
	}
	var sent, received int64
	if n.cl.client != nil {
		sent, received = n.cl.client.Bytes()
	}
	return Stats{
		MemoryCache:       MemoryCacheStats{Bodies: memBodies, Bytes: memBytes, Budget: n.mem.budget},
		Fills:             FillStats{InFlight: fills, Readers: readers},
		Members:           members,
		PeerBytesSent:     sent,
		PeerBytesReceived: received,
		Sync: SyncCounts{Rounds: c.syncRounds.Load(), Failures: c.syncFailures.Load(),
			Pulled: c.syncPulled.Load(), Pushed: c.syncPushed.Load(), Applied: c.syncApplied.Load()},
		NodeID:        n.id.String(),
		Remote:        n.remote.String(),
		Disk:          u,
		Quota:         n.cfg.MaxDisk,
		Journal:       n.journal.Stats(),
		RepairBacklog: n.RepairBacklog(),
		Traffic: Traffic{
			HitsLocal: c.hitsLocal.Load(), HitsMemory: c.hitsMemory.Load(), HitsPeer: c.hitsPeer.Load(), HitsRemote: c.hitsRemote.Load(), Misses: c.misses.Load(),
			Fetches: c.fetches.Load(), FetchErrors: c.fetchErrors.Load(), Coalesced: c.coalesced.Load(),
			Puts: c.puts.Load(), PutErrors: c.putErrors.Load(), Deletes: c.deletes.Load(),
			RemoteUploads: rc.Puts, RemoteGets: rc.Gets,
			Scrubbed: c.scrubbed.Load(), ScrubDamaged: c.scrubDamaged.Load(), ReadDamaged: c.readDamaged.Load(),
			Repairs: c.repairs.Load(), RepairErrors: c.repairErrors.Load(),
			OwnerFills: c.ownerFills.Load(), OwnerFallbacks: c.ownerFallbacks.Load(), FillsForPeers: c.fillsForPeers.Load(),
			BytesLocal: c.bytesLocal.Load(), BytesPeer: c.bytesPeer.Load(), BytesRemote: c.bytesRemote.Load(),
			Evictions: c.evictions.Load(), MergeRefused: c.mergeRefused.Load(), Resealed: c.resealed.Load(),
			SparseReads: c.sparseReads.Load(), RangedRemoteBytes: c.rangedRemoteBytes.Load(), SparseAssembled: c.sparseAssembled.Load(),
		},
	}, nil
}
