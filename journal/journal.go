// Package journal keeps objstore's metadata in a bbolt database: one
// versioned Entry per object ID (tombstones included), merged last writer
// wins, and one Blob record per body this node holds on local disk.
//
// IDs are ULIDs stored as their 16 binary bytes, so keys sort by creation
// time and a range of keys is a range of time. The package imports nothing
// else of objstore's.
package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
)

// ErrNotFound is returned, possibly wrapped, when the journal holds no entry
// or blob record for an ID.
var ErrNotFound = errors.New("journal: not found")

// ErrNoKey is returned, wrapped, when a record's names are sealed and the
// journal has no key that opens them.
var ErrNoKey = errors.New("journal: sealed names and no key for them")

// Sealer encrypts the fields of stored entries that name objects (names
// and user metadata), bound to the object's ID; *seal.Keyring implements
// it. ValueCurrent reports whether a sealed value is under the key that
// seals new values.
type Sealer interface {
	SealValue(binding, plain []byte) ([]byte, error)
	OpenValue(binding, sealed []byte) ([]byte, error)
	ValueCurrent(sealed []byte) bool
}

// ErrSchema is returned by Open when the database was written by a release
// whose schema this one cannot read.
var ErrSchema = errors.New("journal: unsupported schema")

// Bucket and key names, declared once.
var (
	bucketMeta    = []byte("meta")
	bucketEntries = []byte("entries")
	bucketBlobs   = []byte("blobs")
	bucketSync    = []byte("sync")
	keySchema     = []byte("schema")
	keyLastSync   = []byte("last_sync")
	keyLatest     = []byte("latest")
)

// schemaVersion is the layout of the buckets above. Opening a database with
// a higher version fails with ErrSchema rather than misreading it; a lower
// one is migrated by Open. Version 2 added the "sync" index; version 3
// entry records in format 4 (key-addressed objects), which a release
// reading up to version 2 would refuse one by one, so it refuses the
// journal instead. Going from 2 to 3 changes nothing stored.
const schemaVersion uint32 = 3

// Config configures a Journal.
type Config struct {
	// Path is the database file. Its directory must exist.
	Path string
	// Logger receives the journal's logs; nil discards them.
	Logger *slog.Logger
	// LockTimeout bounds the wait for another process's lock on the file;
	// zero means one second. A second node on the same state directory fails
	// to start instead of waiting forever.
	LockTimeout time.Duration
	// Sealer, when set, encrypts the names and user metadata of the
	// entries written from now on (ResealEntries does the older ones); nil
	// stores them in the clear. Sealed entries need it to be read.
	Sealer Sealer
}

// Stats counts what the journal holds.
type Stats struct {
	// Objects and Bytes count live (not deleted) entries and their sizes.
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`
	// Tombstones counts deleted entries still kept.
	Tombstones int64 `json:"tombstones"`
	// Blobs and BlobBytes count the bodies held on this node's disk.
	Blobs     int64 `json:"local_objects"`
	BlobBytes int64 `json:"local_bytes"`
	// Sparse and SparseBytes count the sparse copies held on this
	// node's disk (some parts of an object each) and their parts' bytes.
	Sparse      int64 `json:"sparse_objects"`
	SparseBytes int64 `json:"sparse_bytes"`
}

func (s *Stats) add(d Stats) {
	s.Objects += d.Objects
	s.Bytes += d.Bytes
	s.Tombstones += d.Tombstones
	s.Blobs += d.Blobs
	s.BlobBytes += d.BlobBytes
	s.Sparse += d.Sparse
	s.SparseBytes += d.SparseBytes
}

// Journal is an open metadata database. It is safe for concurrent use.
type Journal struct {
	db  *bolt.DB
	log *slog.Logger

	mu     sync.Mutex // guards stats and latest
	stats  Stats
	latest Timestamp // the greatest version time of any entry applied

	tree *tree

	sealer   atomic.Pointer[sealerBox]
	lastSync atomic.Int64 // meta/last_sync in Unix ns, read on hot paths
}

type sealerBox struct{ s Sealer }

// SetSealer replaces the sealer (nil: names of new entries in the clear),
// as when keys are reloaded.
func (j *Journal) SetSealer(s Sealer) {
	if s == nil {
		j.sealer.Store(nil)
		return
	}
	j.sealer.Store(&sealerBox{s})
}

func (j *Journal) currentSealer() Sealer {
	if b := j.sealer.Load(); b != nil {
		return b.s
	}
	return nil
}

// Open opens or creates the journal at cfg.Path, checks its schema and
// counts its contents.
func Open(cfg Config) (*Journal, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LockTimeout == 0 {
		cfg.LockTimeout = time.Second
	}
	db, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{
		Timeout: cfg.LockTimeout,
		// The freelist is rebuilt on open instead of written at every
		// commit, which keeps commits small for a journal of millions of
		// entries (as etcd does).
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", cfg.Path, err)
	}
	j := &Journal{db: db, log: cfg.Logger, tree: newTree()}
	j.SetSealer(cfg.Sealer)
	if err := j.init(); err != nil {
		db.Close()
		return nil, err
	}
	return j, nil
}

func (j *Journal) init() error {
	err := j.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		var from uint32
		if v := meta.Get(keySchema); v != nil {
			if len(v) != 4 || binary.BigEndian.Uint32(v) > schemaVersion {
				return fmt.Errorf("%w: database schema %x, this release reads up to %d", ErrSchema, v, schemaVersion)
			}
			from = binary.BigEndian.Uint32(v)
		}
		for _, name := range [][]byte{bucketEntries, bucketBlobs, bucketSync, bucketSparse} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if from == 1 {
			// Schema 1 had no sync index: build it from the entries.
			j.log.Info("migrating journal schema", "from", from, "to", schemaVersion)
			idx := tx.Bucket(bucketSync)
			err := tx.Bucket(bucketEntries).ForEach(func(k, _ []byte) error {
				id, err := keyID(k)
				if err != nil {
					return err
				}
				return idx.Put(syncKey(id), nil)
			})
			if err != nil {
				return err
			}
		}
		return meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, schemaVersion))
	})
	if err != nil {
		return fmt.Errorf("journal: init: %w", err)
	}
	// Counting and hashing at open cost one scan; they keep Stats and the
	// hash tree exact without records that every commit would rewrite.
	return j.View(func(tx *Tx) error {
		if v := tx.tx.Bucket(bucketMeta).Get(keyLastSync); len(v) == 8 {
			j.lastSync.Store(int64(binary.BigEndian.Uint64(v)))
		}
		if v := tx.tx.Bucket(bucketMeta).Get(keyLatest); v != nil {
			ts, err := decodeTimestamp(v)
			if err != nil {
				return fmt.Errorf("journal: %s: %w", keyLatest, err)
			}
			j.latest = ts
		}
		var s Stats
		var deltas []treeDelta
		err := tx.ForEachHead(ulid.ULID{}, func(e Entry) error {
			s.add(entryStats(e, 1))
			if e.Version.Time.Compare(j.latest) > 0 {
				j.latest = e.Version.Time
			}
			deltas = append(deltas, treeDelta{leaf: LeafOf(e.ID), xor: entryDigest(e.ID, e.Version), count: 1})
			if len(deltas) == 4096 {
				j.tree.apply(deltas)
				deltas = deltas[:0]
			}
			return nil
		})
		if err != nil {
			return err
		}
		j.tree.apply(deltas)
		err = tx.ForEachBlob(ulid.ULID{}, func(_ ulid.ULID, b Blob) error {
			s.add(Stats{Blobs: 1, BlobBytes: b.Size})
			return nil
		})
		if err == nil {
			err = tx.ForEachSparse(ulid.ULID{}, func(r SparseRef) error {
				s.add(Stats{Sparse: 1, SparseBytes: r.Held})
				return nil
			})
		}
		j.stats = s
		return err
	})
}

func encodeTimestamp(ts Timestamp) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(make([]byte, 0, 12), uint64(ts.Wall)), ts.Logical)
}

func decodeTimestamp(b []byte) (Timestamp, error) {
	if len(b) != 12 {
		return Timestamp{}, fmt.Errorf("%w: timestamp of %d bytes", ErrCorrupt, len(b))
	}
	return Timestamp{Wall: int64(binary.BigEndian.Uint64(b)), Logical: binary.BigEndian.Uint32(b[8:])}, nil
}

// syncKey is an entry's key in the sync index: its leaf, then its ID.
func syncKey(id ulid.ULID) []byte {
	return append(binary.BigEndian.AppendUint16(make([]byte, 0, 18), LeafOf(id)), id[:]...)
}

// Close closes the database. It waits for open transactions to end.
func (j *Journal) Close() error { return j.db.Close() }

// Stats returns the current counts.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.stats
}

// View runs fn in a read-only transaction. Values fn reads are copies and
// outlive the transaction.
func (j *Journal) View(fn func(*Tx) error) error {
	s := j.currentSealer()
	return j.db.View(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx, sealer: s}) })
}

// Update runs fn in a read-write transaction and commits it durably (the
// database is fsynced) if fn returns nil. Update calls are serialized.
func (j *Journal) Update(fn func(*Tx) error) error {
	var delta Stats
	var tree []treeDelta
	var latest Timestamp
	s := j.currentSealer()
	err := j.db.Update(func(btx *bolt.Tx) error {
		tx := &Tx{tx: btx, sealer: s}
		if err := fn(tx); err != nil {
			return err
		}
		delta, tree, latest = tx.delta, tx.tree, tx.latest
		if latest.Compare(j.Latest()) > 0 {
			// Kept durably, so compacting the newest tombstones cannot
			// lower what a restart resumes the clock above.
			return btx.Bucket(bucketMeta).Put(keyLatest, encodeTimestamp(latest))
		}
		return nil
	})
	if err != nil {
		return err
	}
	j.mu.Lock()
	j.stats.add(delta)
	if latest.Compare(j.latest) > 0 {
		j.latest = latest
	}
	j.mu.Unlock()
	j.tree.apply(tree)
	return nil
}

// Latest returns the greatest version time of any entry the journal has
// applied since it was created (tombstones compacted since start-up
// included), so a restarted node can resume its clock above it.
func (j *Journal) Latest() Timestamp {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.latest
}

// Entry returns the entry for id, or an error matching ErrNotFound.
func (j *Journal) Entry(id ulid.ULID) (e Entry, err error) {
	err = j.View(func(tx *Tx) error {
		e, err = tx.Entry(id)
		return err
	})
	return e, err
}

// ForEachKeyed calls fn for every live key-addressed entry (Entry.Keyed)
// with an ID at or after from, whole, in ID order, until fn returns an
// error, which ForEachKeyed returns. Other entries are passed over by their
// fixed part, without being decoded or decrypted; the walk still reads
// every record, so a whole walk costs about as much as a reopening's scan.
func (tx *Tx) ForEachKeyed(from ulid.ULID, fn func(Entry) error) error {
	decode := func(id ulid.ULID, v []byte) (Entry, error) {
		d := decoder{b: v}
		e, _ := decodeFixed(&d, id)
		switch {
		case d.err:
			return Entry{}, fmt.Errorf("%w: entry %s", ErrCorrupt, id)
		case !d.keyed || e.Deleted:
			return Entry{}, nil
		}
		return decodeStored(id, v, tx.sealer)
	}
	return forEach(tx.tx.Bucket(bucketEntries), from, decode, func(_ ulid.ULID, e Entry) error {
		if !e.Keyed() {
			return nil
		}
		return fn(e)
	})
}

// Blob returns this node's blob record for id, or an error matching
// ErrNotFound.
func (j *Journal) Blob(id ulid.ULID) (b Blob, err error) {
	err = j.View(func(tx *Tx) error {
		b, err = tx.Blob(id)
		return err
	})
	return b, err
}

// BlobRef names a blob record in a listing.
type BlobRef struct {
	ID ulid.ULID
	Blob
}

// Blobs returns up to limit blob records with IDs after the given one, in ID
// order. Long scans page through it so that no read transaction stays open
// for the length of the scan.
func (j *Journal) Blobs(after ulid.ULID, limit int) ([]BlobRef, error) {
	var out []BlobRef
	err := j.View(func(tx *Tx) error {
		err := tx.ForEachBlob(after, func(id ulid.ULID, b Blob) error {
			if id == after {
				return nil
			}
			if len(out) == limit {
				return errStop
			}
			out = append(out, BlobRef{ID: id, Blob: b})
			return nil
		})
		return stopAt(err)
	})
	return out, err
}

// Tx is a journal transaction. It must not be used after the function it was
// passed to returns.
type Tx struct {
	tx     *bolt.Tx
	sealer Sealer // nil: names stored in the clear
	delta  Stats
	tree   []treeDelta
	latest Timestamp // the greatest version time applied in this transaction
}

// Entry returns the entry for id, or an error matching ErrNotFound.
func (tx *Tx) Entry(id ulid.ULID) (Entry, error) {
	v := tx.tx.Bucket(bucketEntries).Get(id[:])
	if v == nil {
		return Entry{}, fmt.Errorf("entry %s: %w", id, ErrNotFound)
	}
	return decodeStored(id, v, tx.sealer)
}

// Head returns the entry of id without its names, user metadata and key
// fields (as ForEachHead does), so it needs no key; ErrNotFound when the
// journal holds none.
func (tx *Tx) Head(id ulid.ULID) (Entry, error) {
	v := tx.tx.Bucket(bucketEntries).Get(id[:])
	if v == nil {
		return Entry{}, fmt.Errorf("entry %s: %w", id, ErrNotFound)
	}
	return decodeHead(id, v)
}

// Apply stores e if it is newer than the entry held for its ID, or if there
// is none, and reports whether it did. This is the journal's only way to
// write an entry, so local writes and merges from other nodes obey the same
// last-writer-wins rule. An entry whose version equals the stored one is not
// applied.
func (tx *Tx) Apply(e Entry) (bool, error) {
	if e.Version.IsZero() {
		return false, fmt.Errorf("journal: entry %s has no version", e.ID)
	}
	if !e.Level.Valid() {
		return false, fmt.Errorf("journal: entry %s has invalid level %d", e.ID, e.Level)
	}
	if e.Deleted {
		// A tombstone carries nothing but its ID and version.
		e = Entry{ID: e.ID, Version: e.Version, Deleted: true}
	}
	b := tx.tx.Bucket(bucketEntries)
	if v := b.Get(e.ID[:]); v != nil {
		old, err := decodeHead(e.ID, v)
		if err != nil {
			return false, err
		}
		if e.Version.Compare(old.Version) <= 0 {
			return false, nil
		}
		tx.delta.add(entryStats(old, -1))
		d := entryDigest(old.ID, old.Version)
		d.xor(entryDigest(e.ID, e.Version))
		tx.tree = append(tx.tree, treeDelta{leaf: LeafOf(e.ID), xor: d})
	} else {
		if err := tx.tx.Bucket(bucketSync).Put(syncKey(e.ID), nil); err != nil {
			return false, fmt.Errorf("journal: index entry %s: %w", e.ID, err)
		}
		tx.tree = append(tx.tree, treeDelta{leaf: LeafOf(e.ID), xor: entryDigest(e.ID, e.Version), count: 1})
	}
	rec, err := tx.encode(e)
	if err != nil {
		return false, err
	}
	if err := b.Put(e.ID[:], rec); err != nil {
		return false, fmt.Errorf("journal: put entry %s: %w", e.ID, err)
	}
	tx.delta.add(entryStats(e, 1))
	if e.Version.Time.Compare(tx.latest) > 0 {
		tx.latest = e.Version.Time
	}
	return true, nil
}

// encode makes an entry's stored record: its names sealed when the journal
// has a sealer (a tombstone has none to hide).
func (tx *Tx) encode(e Entry) ([]byte, error) {
	if tx.sealer == nil || e.Deleted {
		return encodeEntry(e), nil
	}
	return encodeSealedEntry(e, tx.sealer)
}

// ForEachHead calls fn for every entry with an ID at or after from, in ID
// order, until fn returns an error, which ForEachHead returns. The entries
// carry everything but their names and user metadata (empty here), so a
// scan needs no key and decrypts nothing.
func (tx *Tx) ForEachHead(from ulid.ULID, fn func(Entry) error) error {
	return forEach(tx.tx.Bucket(bucketEntries), from, decodeHead, func(_ ulid.ULID, e Entry) error { return fn(e) })
}

// Blob returns this node's blob record for id, or an error matching
// ErrNotFound.
func (tx *Tx) Blob(id ulid.ULID) (Blob, error) {
	v := tx.tx.Bucket(bucketBlobs).Get(id[:])
	if v == nil {
		return Blob{}, fmt.Errorf("blob %s: %w", id, ErrNotFound)
	}
	return decodeBlob(id, v)
}

// PutBlob records that this node holds a body for id, replacing any earlier
// record.
func (tx *Tx) PutBlob(id ulid.ULID, b Blob) error {
	if err := tx.DeleteBlob(id); err != nil {
		return err
	}
	if err := tx.tx.Bucket(bucketBlobs).Put(id[:], encodeBlob(b)); err != nil {
		return fmt.Errorf("journal: put blob %s: %w", id, err)
	}
	tx.delta.add(Stats{Blobs: 1, BlobBytes: b.Size})
	return nil
}

// DeleteBlob removes this node's blob record for id, if any.
func (tx *Tx) DeleteBlob(id ulid.ULID) error {
	bk := tx.tx.Bucket(bucketBlobs)
	v := bk.Get(id[:])
	if v == nil {
		return nil
	}
	old, err := decodeBlob(id, v)
	if err != nil {
		return err
	}
	if err := bk.Delete(id[:]); err != nil {
		return fmt.Errorf("journal: delete blob %s: %w", id, err)
	}
	tx.delta.add(Stats{Blobs: -1, BlobBytes: -old.Size})
	return nil
}

// ForEachBlob calls fn for every blob record with an ID at or after from, in
// ID order, until fn returns an error, which ForEachBlob returns.
func (tx *Tx) ForEachBlob(from ulid.ULID, fn func(ulid.ULID, Blob) error) error {
	return forEach(tx.tx.Bucket(bucketBlobs), from, decodeBlob, fn)
}

// errStop ends a forEach early without an error.
var errStop = errors.New("stop")

// forEach decodes the records of bucket b from ID from on, in ID order, and
// calls fn with each until fn returns an error, which forEach returns.
func forEach[T any](b *bolt.Bucket, from ulid.ULID, decode func(ulid.ULID, []byte) (T, error), fn func(ulid.ULID, T) error) error {
	c := b.Cursor()
	for k, v := c.Seek(from[:]); k != nil; k, v = c.Next() {
		id, err := keyID(k)
		if err != nil {
			return err
		}
		r, err := decode(id, v)
		if err != nil {
			return err
		}
		if err := fn(id, r); err != nil {
			return err
		}
	}
	return nil
}

func keyID(k []byte) (ulid.ULID, error) {
	var id ulid.ULID
	if len(k) != len(id) {
		return id, fmt.Errorf("%w: key %x", ErrCorrupt, k)
	}
	copy(id[:], k)
	return id, nil
}

// entryStats is what e contributes to Stats, times sign.
func entryStats(e Entry, sign int64) Stats {
	if e.Deleted {
		return Stats{Tombstones: sign}
	}
	return Stats{Objects: sign, Bytes: sign * e.Size}
}

// Check runs bbolt's consistency check over the whole database and returns
// the first problem found, for tests and for operators' fsck.
func (j *Journal) Check() error {
	return j.db.View(func(tx *bolt.Tx) error {
		// The channel must be drained, or the checker goroutine never ends.
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = fmt.Errorf("journal: check: %w", err)
			}
		}
		return first
	})
}
