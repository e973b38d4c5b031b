package node

import (
	"fmt"
	"time"
)

// A node out of its cluster for longer than the tombstone retention may
// hold entries of objects that were deleted meanwhile and whose tombstones
// its peers have since forgotten: merged back, they would bring deleted
// objects back to life. Such a node is stale. It pushes nothing (no
// anti-entropy, no announcements), takes no writes, fails readiness, and
// its peers refuse its announcements (CheckFresh), until an operator wipes
// its journal and bodies (`objstore wipe`) and it starts afresh.

// errStale is what a stale node answers clients and readiness with.
func (n *Node) stale() error {
	last := n.lastSync()
	if last.IsZero() || n.cl == nil || n.cl.members == nil {
		return nil
	}
	if n.physicalNow().Sub(last) <= n.cfg.TombstoneTTL {
		return nil
	}
	n.staleOnce.Do(func() {
		n.log.Error("this node last synced with its cluster longer ago than --tombstone-ttl: objects deleted meanwhile "+
			"could come back through it, so it takes no writes and pushes nothing. Stop it, run "+
			"`objstore wipe --state-dir "+n.cfg.StateDir+" --files-dir "+n.cfg.FilesDir+"`, and start it again",
			"last_sync", last, "tombstone_ttl", n.cfg.TombstoneTTL)
	})
	return safeErrorf(ErrUnavailable, "this node last synced with its cluster on %s, longer ago than the tombstone retention (%v); it must be wiped before it serves again (see its log)",
		last.UTC().Format(time.RFC3339), n.cfg.TombstoneTTL)
}

// lastSync returns when this node last completed anti-entropy (zero when
// it never has).
func (n *Node) lastSync() time.Time {
	t, err := n.journal.LastSync()
	if err != nil {
		return time.Time{}
	}
	return t
}

// LastSync returns when this node last completed anti-entropy with a peer
// (or last saw itself alone in its cluster); zero when it never has. Peers
// are told it with every private request, so they can refuse a stale node.
func (n *Node) LastSync() time.Time { return n.lastSync() }

// CheckFresh refuses entries pushed by a peer whose last sync is older than
// this node's tombstone retention: they may name objects deleted since.
func (n *Node) CheckFresh(peerLastSync time.Time) error {
	if peerLastSync.IsZero() || n.physicalNow().Sub(peerLastSync) <= n.cfg.TombstoneTTL {
		return nil
	}
	return fmt.Errorf("%w: the sending node last synced on %s, longer ago than the tombstone retention (%v); it must be wiped (objstore wipe) before its entries are taken",
		ErrConflict, peerLastSync.UTC().Format(time.RFC3339), n.cfg.TombstoneTTL)
}

// writable reports why this node must refuse a write now, if it must.
func (n *Node) writable() error {
	if err := n.stale(); err != nil {
		return err
	}
	return n.checkClock()
}

// Syncable fails while this node is stale, so that no peer pulls its
// entries in anti-entropy.
func (n *Node) Syncable() error { return n.stale() }
