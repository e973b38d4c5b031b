package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
)

// TreeChildren returns the TreeFanout children of each given node of the
// hash tree at level (0 is the root, index 0), in order: the digests and
// entry counts anti-entropy compares level by level.
func (j *Journal) TreeChildren(level int, nodes []uint32) ([]TreeNode, error) {
	return j.tree.children(level, nodes)
}

// Summaries returns the (ID, version) of every entry in the given leaves of
// the hash tree, leaf by leaf and in ID order within a leaf.
func (j *Journal) Summaries(leaves []uint16) ([]Summary, error) {
	var out []Summary
	err := j.View(func(tx *Tx) error {
		c := tx.tx.Bucket(bucketSync).Cursor()
		entries := tx.tx.Bucket(bucketEntries)
		for _, leaf := range leaves {
			prefix := binary.BigEndian.AppendUint16(nil, leaf)
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				id, err := keyID(k[2:])
				if err != nil {
					return err
				}
				v := entries.Get(id[:])
				if v == nil {
					return fmt.Errorf("%w: sync index names %s, which has no entry", ErrCorrupt, id)
				}
				e, err := decodeHead(id, v)
				if err != nil {
					return err
				}
				out = append(out, Summary{ID: id, Version: e.Version})
			}
		}
		return nil
	})
	return out, err
}

// Entries returns the entries of the given IDs that the journal holds, in
// the order asked; IDs it does not hold are skipped.
func (j *Journal) Entries(ids []ulid.ULID) ([]Entry, error) {
	out := make([]Entry, 0, len(ids))
	err := j.View(func(tx *Tx) error {
		for _, id := range ids {
			e, err := tx.Entry(id)
			if errors.Is(err, ErrNotFound) || errors.Is(err, ErrNoKey) {
				// An entry this node cannot read (sealed under a key it
				// lacks) is not offered; the others still are.
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Forget removes the entry of id, its index record and its blob record, as
// if the journal had never held it. Compaction uses it for tombstones past
// their retention.
func (tx *Tx) Forget(id ulid.ULID) error {
	b := tx.tx.Bucket(bucketEntries)
	v := b.Get(id[:])
	if v == nil {
		return nil
	}
	old, err := decodeHead(id, v)
	if err != nil {
		return err
	}
	if err := tx.DeleteBlob(id); err != nil {
		return err
	}
	if err := b.Delete(id[:]); err != nil {
		return fmt.Errorf("journal: forget %s: %w", id, err)
	}
	if err := tx.tx.Bucket(bucketSync).Delete(syncKey(id)); err != nil {
		return fmt.Errorf("journal: forget %s: %w", id, err)
	}
	tx.delta.add(entryStats(old, -1))
	tx.tree = append(tx.tree, treeDelta{leaf: LeafOf(id), xor: entryDigest(id, old.Version), count: -1})
	return nil
}

// CompactTombstones forgets up to limit tombstones whose deletion is older
// than before, and returns how many it forgot. It scans the journal in
// pages, so no transaction stays open long.
func (j *Journal) CompactTombstones(before time.Time, limit int) (int, error) {
	horizon := before.UnixNano()
	var victims []ulid.ULID
	var after ulid.ULID
	for len(victims) < limit {
		var page []Entry
		err := j.View(func(tx *Tx) error {
			return stopAt(tx.ForEachHead(after, func(e Entry) error {
				if e.ID == after {
					return nil
				}
				if len(page) == 4096 {
					return errStop
				}
				page = append(page, e)
				return nil
			}))
		})
		if err != nil {
			return 0, err
		}
		for _, e := range page {
			if e.Deleted && e.Version.Time.Wall < horizon && len(victims) < limit {
				victims = append(victims, e.ID)
			}
		}
		if len(page) < 4096 {
			break
		}
		after = page[len(page)-1].ID
	}
	for start := 0; start < len(victims); start += 1024 {
		batch := victims[start:min(start+1024, len(victims))]
		err := j.Update(func(tx *Tx) error {
			for _, id := range batch {
				e, err := tx.Entry(id)
				if err != nil || !e.Deleted {
					continue // replaced meanwhile
				}
				if err := tx.Forget(id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return start, err
		}
	}
	return len(victims), nil
}

// stopAt turns errStop, which ends a walk early, into success.
func stopAt(err error) error {
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// LastSync returns when this node last completed anti-entropy with a
// peer; zero if never. It reads a copy kept in memory (loaded by Open,
// kept by SetLastSync), so it costs nothing on a request's path.
func (j *Journal) LastSync() (time.Time, error) {
	ns := j.lastSync.Load()
	if ns == 0 {
		return time.Time{}, nil
	}
	return time.Unix(0, ns).UTC(), nil
}

// SetLastSync records when this node last completed anti-entropy.
func (j *Journal) SetLastSync(t time.Time) error {
	err := j.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyLastSync, binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())))
	})
	if err == nil {
		j.lastSync.Store(t.UnixNano())
	}
	return err
}

// MarshalEntry encodes e (without its ID) in the journal's record format,
// which the cluster also uses on the wire: it starts with a format byte, so
// nodes of different releases can tell what they read.
func MarshalEntry(e Entry) []byte { return encodeEntry(e) }

// UnmarshalEntry decodes a record made by MarshalEntry for entry id.
func UnmarshalEntry(id ulid.ULID, b []byte) (Entry, error) { return decodeEntry(id, b) }

// ResealEntries rewrites, with the current sealer, up to limit stored
// entries whose names are in the clear or sealed under another key, so
// that turning encryption on, or rolling a key, reaches every entry. It
// pages through the journal, holding no transaction for long, and returns
// how many it rewrote. Without a sealer it does nothing. Versions are
// unchanged, so the hash tree and the cluster see no change.
func (j *Journal) ResealEntries(limit int) (int, error) {
	s := j.currentSealer()
	if s == nil {
		return 0, nil
	}
	var done int
	var after ulid.ULID
	for first := true; done < limit; first = false {
		var ids []ulid.ULID
		var last ulid.ULID
		scanned := 0
		err := j.View(func(tx *Tx) error {
			c := tx.tx.Bucket(bucketEntries).Cursor()
			k, v := c.Seek(after[:])
			if !first && k != nil && string(k) == string(after[:]) {
				k, v = c.Next()
			}
			for ; k != nil && scanned < 4096 && len(ids) < limit-done; k, v = c.Next() {
				scanned++
				id, err := keyID(k)
				if err != nil {
					return err
				}
				last = id
				if needsReseal(v, s) {
					ids = append(ids, id)
				}
			}
			return nil
		})
		if err != nil {
			return done, fmt.Errorf("journal: reseal: %w", err)
		}
		if len(ids) > 0 {
			err = j.db.Update(func(btx *bolt.Tx) error {
				tx := &Tx{tx: btx, sealer: s}
				b := btx.Bucket(bucketEntries)
				for _, id := range ids {
					v := b.Get(id[:])
					if v == nil || !needsReseal(v, s) {
						continue // changed meanwhile
					}
					e, err := decodeStored(id, v, s)
					if errors.Is(err, ErrNoKey) {
						continue // under a key this node lacks: left as it is
					}
					if err != nil {
						return err
					}
					rec, err := tx.encode(e)
					if err != nil {
						return err
					}
					if err := b.Put(id[:], rec); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return done, fmt.Errorf("journal: reseal: %w", err)
			}
			done += len(ids)
		}
		// (An entry it could not open counts as done, so a missing key
		// does not make the pass spin.)
		if scanned == 0 {
			break
		}
		after = last
	}
	return done, nil
}

// needsReseal reports whether a stored live entry's names are in the clear
// or sealed under a key other than s's current one.
func needsReseal(v []byte, s Sealer) bool {
	if len(v) == 0 {
		return false
	}
	d := decoder{b: v}
	e, format := decodeFixed(&d, ulid.ULID{})
	switch {
	case d.err || e.Deleted:
		return false
	case format != entryFormatSealed:
		return true
	}
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		return false
	}
	return !s.ValueCurrent(d.bytes(int(n)))
}
