package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/oklog/ulid/v2"
	"golang.org/x/time/rate"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// reconcileSparse brings the sparse copies on disk and in the journal into
// agreement at start-up: a copy whose object is gone, was written again
// or is now held whole is dropped; a recorded part whose file is missing
// or unreadable is forgotten; a part file nobody recorded (written before
// a crash took the node ahead of its record) is removed, never read.
func (n *Node) reconcileSparse(ctx context.Context) error {
	var stale, lost int
	var after ulid.ULID
	for {
		page, err := n.journal.SparseCopies(after, 256)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for _, ref := range page {
			e, b, err := n.lookup(ref.ID)
			if err != nil || e.Deleted || b != nil || e.Version != ref.Version {
				stale++
				n.discardSparse(ref.ID, ref.Tag)
				continue
			}
			_, parts, err := n.journal.Sparse(ref.ID)
			if err != nil {
				return err
			}
			for k := range parts {
				f, _, err := n.disk.OpenPart(ref.ID, ref.Tag, k)
				if err == nil {
					f.Close()
					continue
				}
				if errors.Is(err, storage.ErrNotFound) {
					lost++
					n.forgetPart(ref.ID, ref.Tag, k)
				}
			}
			if n.evictable(e) {
				n.policy.Add(ref.ID, ref.Held)
			}
		}
		after = page[len(page)-1].ID
	}
	removed, foreign, err := n.disk.RemovePartsExcept(ctx, func(id ulid.ULID, tag string) map[int]bool {
		rec, parts, err := n.journal.Sparse(id)
		if err != nil || rec.Tag != tag {
			return nil
		}
		keep := make(map[int]bool, len(parts))
		for k := range parts {
			keep[k] = true
		}
		return keep
	})
	if err != nil {
		return err
	}
	if stale+lost+removed+foreign > 0 {
		n.log.Info("reconciled sparse copies", "dropped_copies", stale, "missing_parts", lost,
			"removed_leftover_parts", removed, "foreign_files", foreign)
	}
	return nil
}

// forgetPart drops the record and file of part k of the sparse copy of id
// tagged tag.
func (n *Node) forgetPart(id ulid.ULID, tag string, k int) {
	err := n.journal.Update(func(tx *journal.Tx) error {
		if cur, err := tx.Sparse(id); err != nil || cur.Tag != tag {
			return nil
		}
		return tx.DeleteSparsePart(id, k)
	})
	if err != nil {
		n.log.Error("drop part record", "id", id, "part", k, "err", err)
		return
	}
	n.disk.RemovePart(id, tag, k)
	n.sparse.mu.Lock()
	c := n.sparse.copies[id]
	n.sparse.mu.Unlock()
	if t, ok := c.readyTag(); ok && t == tag {
		c.mu.Lock()
		if k < len(c.have) && c.have[k] {
			c.have[k] = false
			c.held -= c.rec.PartLen(k)
		}
		c.mu.Unlock()
	}
}

// scrubSparse checks every part of every sparse copy against the size and
// SHA-256 recorded when it was stored; a damaged part is dropped, to be
// fetched again when a read needs it.
func (n *Node) scrubSparse(ctx context.Context, rep *ScrubReport, limiter *rate.Limiter, buf []byte) error {
	var after ulid.ULID
	for {
		page, err := n.journal.SparseCopies(after, 64)
		if err != nil {
			return fmt.Errorf("node: scrub: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		for _, ref := range page {
			_, parts, err := n.journal.Sparse(ref.ID)
			if err != nil {
				continue // dropped meanwhile
			}
			for k, p := range parts {
				f, _, err := n.disk.OpenPart(ref.ID, ref.Tag, k)
				ok := err == nil
				if ok {
					ok, err = n.matches(ctx, ref.ID, f, p.Size, p.Sum, limiter, buf)
					f.Close()
					if err != nil {
						return err
					}
				} else if !errors.Is(err, storage.ErrNotFound) {
					continue // not the part's fault (a key this node lacks)
				}
				rep.Checked++
				rep.Bytes += p.Size
				n.counters.scrubbed.Add(1)
				if ok {
					continue
				}
				rep.Damaged++
				n.counters.scrubDamaged.Add(1)
				n.log.Error("scrub found a damaged part of a sparse copy; dropping it", "id", ref.ID, "part", k)
				n.forgetPart(ref.ID, ref.Tag, k)
			}
		}
		after = page[len(page)-1].ID
	}
}
