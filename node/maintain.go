package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/oklog/ulid/v2"
	"golang.org/x/time/rate"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// reconcile brings the files directory and the journal into agreement after
// a start, clean or not. A body file the journal does not point at is the
// leftover of a write that never committed (or of a body since replaced)
// and is removed; a blob record whose file is gone or has the wrong size is
// dropped, and its body fetched again when the remote has it. Files whose
// names objstore would not have made are left alone and logged.
func (n *Node) reconcile(ctx context.Context) error {
	start := time.Now()
	var orphans, foreign int
	err := n.disk.Walk(ctx, func(path string, id ulid.ULID, prefix string, ok bool) error {
		if !ok {
			foreign++
			n.log.Warn("unexpected file in files directory; leaving it", "path", path)
			return nil
		}
		b, err := n.journal.Blob(id)
		if err == nil && storage.SumPrefix(b.Sum) == prefix {
			return nil
		}
		if err != nil && !errors.Is(err, journal.ErrNotFound) {
			return err
		}
		orphans++
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("node: remove leftover %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("node: reconcile: %w", err)
	}
	var missing int
	var after ulid.ULID
	for {
		page, err := n.journal.Blobs(after, 1024)
		if err != nil {
			return fmt.Errorf("node: reconcile: %w", err)
		}
		for _, ref := range page {
			size, err := n.disk.Stat(ref.ID, ref.Sum)
			if err == nil && size == ref.Size {
				continue
			}
			missing++
			n.dropBlob(ref.ID, ref.Sum, n.inRemote(ref.ID))
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].ID
	}
	if err := n.reconcileSparse(ctx); err != nil {
		return fmt.Errorf("node: reconcile: %w", err)
	}
	n.log.Info("reconciled files with journal", "removed_leftovers", orphans, "missing_bodies", missing,
		"foreign_files", foreign, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// inRemote reports whether the journal says object id is kept in the
// remote tier.
func (n *Node) inRemote(id ulid.ULID) bool {
	e, err := n.journal.Entry(id)
	return err == nil && !e.Deleted && e.Level.InRemote()
}

// Repairs and replication pulls are one set of IDs whose bodies this node
// should hold and does not: level-2 objects (every node holds them), and
// level-1/2 bodies found missing or damaged. The set is derived from the
// journal at start-up (wantSweep), so a restart loses none, and kept up by
// merges, writes and the scrub; every ID is retried with backoff until the
// body is here or no longer wanted, so a pull that failed for a full disk,
// an outage or a restart completes by itself.
const (
	repairTick       = time.Second
	repairMaxBackoff = 15 * time.Second
	wantSweepEvery   = time.Hour
	repairGiveUp     = 20 // failures to find a body anywhere before it waits for the next sweep
)

// wanted is one pending body: when to try next and how often it failed.
type wanted struct {
	next  time.Time
	tries int
}

// queueRepair asks the repair loop to fetch the body of id, now.
func (n *Node) queueRepair(id ulid.ULID) {
	n.repairMu.Lock()
	if n.want == nil {
		n.want = make(map[ulid.ULID]*wanted)
	}
	if w, ok := n.want[id]; ok {
		w.next = time.Time{} // asked again: try now
	} else {
		n.want[id] = &wanted{}
	}
	n.repairMu.Unlock()
	select {
	case n.repairC <- struct{}{}:
	default:
	}
}

// RepairBacklog counts the bodies this node should hold and does not yet.
func (n *Node) RepairBacklog() int {
	n.repairMu.Lock()
	defer n.repairMu.Unlock()
	return len(n.want)
}

// wantSweep queues every level-2 object whose body this node lacks, from
// the journal: what pulls were pending when the node stopped, or were
// never made.
func (n *Node) wantSweep() (int, error) {
	var ids []ulid.ULID
	err := n.journal.View(func(tx *journal.Tx) error {
		return tx.ForEachHead(ulid.ULID{}, func(e journal.Entry) error {
			if e.Deleted || e.Level != journal.LevelFull {
				return nil
			}
			if b, err := tx.Blob(e.ID); err == nil && b.Sum == e.Sum {
				return nil
			}
			ids = append(ids, e.ID)
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("node: find pending pulls: %w", err)
	}
	for _, id := range ids {
		n.queueRepair(id)
	}
	return len(ids), nil
}

// repairLoop fetches, one at a time, the bodies this node should hold, each
// when it is due, so a node heals and replicates without waiting for a
// client to ask. It sweeps the journal at start and every wantSweepEvery.
func (n *Node) repairLoop() {
	defer n.wg.Done()
	if k, err := n.wantSweep(); err != nil {
		n.log.Error("sweep for pending pulls", "err", err)
	} else if k > 0 {
		n.log.Info("level-2 bodies to pull", "count", k)
	}
	tick := time.NewTicker(repairTick)
	defer tick.Stop()
	sweep := time.NewTicker(wantSweepEvery)
	defer sweep.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.repairC:
		case <-tick.C:
		case <-sweep.C:
			if _, err := n.wantSweep(); err != nil {
				n.log.Error("sweep for pending pulls", "err", err)
			}
		}
		for _, id := range n.dueRepairs() {
			err := n.repair(id)
			if n.ctx.Err() != nil {
				return
			}
			n.repairMu.Lock()
			tries := 0
			if w := n.want[id]; w != nil {
				switch {
				case err == nil:
					delete(n.want, id) // here now, or no longer wanted
				case errors.Is(err, ErrNotFound) && w.tries >= repairGiveUp:
					// Nowhere to be found for minutes: the hourly sweep
					// tries a level-2 body again; a level-1 copy waits
					// for a read.
					delete(n.want, id)
				default:
					w.tries++
					w.next = time.Now().Add(min(repairMaxBackoff, time.Second<<min(w.tries-1, 10)))
				}
				tries = w.tries
			}
			n.repairMu.Unlock()
			if err != nil {
				n.counters.repairErrors.Add(1)
				n.log.Warn("repair failed; retrying later", "id", id, "tries", tries, "err", err)
			}
		}
	}
}

// dueRepairs returns the IDs whose next try is due.
func (n *Node) dueRepairs() []ulid.ULID {
	now := time.Now()
	n.repairMu.Lock()
	defer n.repairMu.Unlock()
	var due []ulid.ULID
	for id, w := range n.want {
		if !w.next.After(now) {
			due = append(due, id)
		}
	}
	return due
}

// repair fetches the body of id from the remote if the journal still wants
// it here and this node does not hold it.
func (n *Node) repair(id ulid.ULID) error {
	e, err := n.journal.Entry(id)
	if err != nil || e.Deleted || !e.Level.InRemote() {
		return nil
	}
	if b, err := n.journal.Blob(id); err == nil && b.Sum == e.Sum {
		return nil
	}
	if n.heldSparse(id) {
		// Some parts are here already: only the others are fetched.
		if _, err := n.fillSparse(n.ctx, e); err != nil {
			return err
		}
		n.counters.repairs.Add(1)
		n.log.Info("repaired body from its sparse copy and the parts it lacked", "id", id)
		return nil
	}
	f := n.startFill(id, &e, true)
	if err := f.wait(); err != nil {
		return err
	}
	n.counters.repairs.Add(1)
	n.log.Info("repaired body from the remote", "id", id, "source", f.source)
	return nil
}

// scrubLoop verifies every local body at start-up and then every
// ScrubInterval.
func (n *Node) scrubLoop() {
	defer n.wg.Done()
	for {
		rep, err := n.Scrub(n.ctx)
		if n.ctx.Err() != nil {
			return
		}
		if err != nil {
			n.log.Error("scrub failed", "err", err)
		} else {
			n.log.Info("scrub done", "checked", rep.Checked, "bytes", rep.Bytes, "damaged", rep.Damaged,
				"elapsed", rep.Elapsed.Round(time.Millisecond))
		}
		if n.cfg.ScrubInterval < 0 {
			return
		}
		t := time.NewTimer(n.cfg.ScrubInterval)
		select {
		case <-n.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// ScrubReport sums up one scrub.
type ScrubReport struct {
	Checked int64 `json:"checked"`
	Bytes   int64 `json:"bytes"`
	Damaged int64 `json:"damaged"`
	// Resealed counts bodies rewritten under the primary encryption key,
	// ResealedEntries journal entries whose names were.
	Resealed        int64         `json:"resealed"`
	ResealedEntries int64         `json:"resealed_entries"`
	Elapsed         time.Duration `json:"elapsed_ns"`
}

// Scrub reads every body this node holds, at most ScrubRate bytes per
// second, and checks it against the size and SHA-256 in the journal. A
// damaged or missing body is dropped, never served, and fetched again from
// the remote when the remote has it. Scrub pages through the journal, so it
// holds no transaction open while it reads.
func (n *Node) Scrub(ctx context.Context) (ScrubReport, error) {
	start := time.Now()
	var rep ScrubReport
	limiter := rate.NewLimiter(rate.Limit(n.cfg.ScrubRate), copyBufferSize)
	buf := make([]byte, copyBufferSize)
	var after ulid.ULID
	for {
		page, err := n.journal.Blobs(after, 256)
		if err != nil {
			return rep, fmt.Errorf("node: scrub: %w", err)
		}
		if len(page) == 0 {
			break
		}
		var verified []journal.BlobRef
		for _, ref := range page {
			v, current, err := n.verify(ctx, ref, limiter, buf)
			if err != nil {
				return rep, err
			}
			if v == unreadable {
				continue // not damaged: logged by verify, kept
			}
			rep.Checked++
			rep.Bytes += ref.Size
			n.counters.scrubbed.Add(1)
			if v == whole {
				verified = append(verified, ref)
				// A body in the clear or under an older key is sealed
				// again under the primary key.
				if current {
					continue
				}
				if changed, err := n.reseal(ctx, ref); err != nil {
					n.log.Warn("reseal body", "id", ref.ID, "err", err)
				} else if changed {
					rep.Resealed++
					n.counters.resealed.Add(1)
				}
				continue
			}
			rep.Damaged++
			n.counters.scrubDamaged.Add(1)
			n.log.Error("scrub found a damaged body; dropping it", "id", ref.ID)
			n.dropBlob(ref.ID, ref.Sum, n.inRemote(ref.ID))
		}
		if err := n.markVerified(verified, n.physicalNow().UTC()); err != nil {
			return rep, err
		}
		after = page[len(page)-1].ID
	}
	if err := n.scrubSparse(ctx, &rep, limiter, buf); err != nil {
		return rep, err
	}
	// Names and user metadata follow the bodies under the primary key.
	k, err := n.journal.ResealEntries(math.MaxInt)
	rep.ResealedEntries = int64(k)
	if err != nil {
		return rep, fmt.Errorf("node: scrub: %w", err)
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// reseal rewrites a body under the primary encryption key, holding the
// object's lock so that no write or delete of it runs meanwhile (a delete
// would otherwise leave the rewritten file behind).
func (n *Node) reseal(ctx context.Context, ref journal.BlobRef) (bool, error) {
	unlock, err := n.locks.lock(ctx, ref.ID)
	if err != nil {
		return false, err
	}
	defer unlock()
	if b, err := n.journal.Blob(ref.ID); err != nil || b.Sum != ref.Sum {
		return false, nil // dropped or replaced meanwhile
	}
	changed, err := n.disk.Reseal(ref.ID, ref.Sum)
	// Drops that do not take the lock (a merged tombstone, an eviction)
	// may have removed the body meanwhile: then the rewritten file is
	// nobody's and goes too.
	if b, berr := n.journal.Blob(ref.ID); changed && (berr != nil || b.Sum != ref.Sum) {
		n.disk.Remove(ref.ID, ref.Sum)
	}
	return changed, err
}

// verdict is what the scrub found of one body.
type verdict int

const (
	whole      verdict = iota
	damaged            // missing, short, or not matching its checksum
	unreadable         // sealed with a key this node lacks: not its fault
)

// verify reads one body and compares it with its record, and reports
// whether the body is stored as the disk writes bodies now (or needs
// resealing). It returns an error only when the scrub itself cannot go on.
func (n *Node) verify(ctx context.Context, ref journal.BlobRef, limiter *rate.Limiter, buf []byte) (v verdict, current bool, err error) {
	f, _, err := n.disk.Open(ref.ID, ref.Sum)
	if errors.Is(err, storage.ErrFormat) && !n.inRemote(ref.ID) {
		// The sole copy: a newer release may still read it.
		n.log.Error("scrub cannot read a body: its format is newer than this build's", "id", ref.ID, "err", err)
		return unreadable, false, nil
	}
	if errors.Is(err, storage.ErrNoKey) {
		// Dropping it would lose what a restored key file still reads.
		n.log.Error("scrub cannot read a body: its encryption key is not in --encryption-key-file", "id", ref.ID, "err", err)
		return unreadable, false, nil
	}
	if err != nil {
		return damaged, false, nil
	}
	defer f.Close()
	current = n.disk.Current(f)
	ok, err := n.matches(ctx, ref.ID, f, ref.Size, ref.Sum, limiter, buf)
	if err != nil || !ok {
		return damaged, false, err
	}
	return whole, current, nil
}

// matches reads f, a body of object id, to its end, at the limiter's pace,
// and reports whether it holds size bytes with checksum sum. It returns an
// error only when the scrub itself cannot go on.
func (n *Node) matches(ctx context.Context, id ulid.ULID, f io.Reader, size int64, sum storage.Sum, limiter *rate.Limiter, buf []byte) (bool, error) {
	h := sha256.New()
	var got int64
	for {
		if err := limiter.WaitN(ctx, len(buf)); err != nil {
			return false, err
		}
		nr, rerr := f.Read(buf)
		h.Write(buf[:nr])
		got += int64(nr)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			n.log.Error("scrub read failed", "id", id, "err", rerr)
			return false, nil
		}
	}
	var have storage.Sum
	h.Sum(have[:0])
	return got == size && have == sum, nil
}

// markVerified records the scrub time of bodies found whole, in one commit
// per page rather than one per body.
func (n *Node) markVerified(refs []journal.BlobRef, at time.Time) error {
	if len(refs) == 0 {
		return nil
	}
	err := n.journal.Update(func(tx *journal.Tx) error {
		for _, ref := range refs {
			cur, err := tx.Blob(ref.ID)
			if err != nil || cur.Sum != ref.Sum {
				continue // dropped or replaced meanwhile
			}
			cur.Verified = at
			if err := tx.PutBlob(ref.ID, cur); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("node: scrub: %w", err)
	}
	return nil
}
