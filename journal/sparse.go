package journal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
)

// A sparse copy is some of the parts of an object's body, held on this
// node because ranged reads asked for them. Its records live in their own
// bucket: under the object's ID (16 bytes) the copy's Sparse record, and
// under the ID followed by a part's index (4 bytes, big-endian) each part
// held, so recording a part writes one small record and a copy's parts
// are one cursor range. A part is recorded only once its file is durable,
// so the records never claim bytes a crash could have lost.
var bucketSparse = []byte("sparse")

// Sparse describes a sparse copy.
type Sparse struct {
	// Tag names the copy's parts on disk (storage.Disk's parts folder).
	Tag string
	// Version is the version of the object the parts belong to, and ETag
	// what its source called it: every part fetched later must come with
	// the same ETag, or the object changed and the copy is dropped.
	Version Version
	ETag    string
	// Size is the object's size, and PartSize the size of every part but
	// the last.
	Size, PartSize int64
	// Stored is when the copy was begun.
	Stored time.Time
}

// Parts returns how many parts the object has.
func (s Sparse) Parts() int {
	if s.PartSize <= 0 {
		return 0
	}
	return int((s.Size + s.PartSize - 1) / s.PartSize)
}

// PartLen returns the length of part k.
func (s Sparse) PartLen(k int) int64 {
	off := int64(k) * s.PartSize
	return min(s.PartSize, s.Size-off)
}

// SparsePart records one part of a sparse copy.
type SparsePart struct {
	Size int64
	// Sum is the part's SHA-256, which the scrub checks.
	Sum [32]byte
	// Stored is when the part was stored, Verified when a scrub last
	// found it whole.
	Stored, Verified time.Time
}

const (
	sparseFormat     byte = 1
	sparsePartFormat byte = 1
	// maxSparseParts bounds the parts of one copy, so that a copy's
	// records stay a cursor range of modest length.
	maxSparseParts = 1 << 20
)

func partKey(id ulid.ULID, k int) []byte {
	return binary.BigEndian.AppendUint32(append(make([]byte, 0, 20), id[:]...), uint32(k))
}

func encodeSparse(s Sparse) []byte {
	b := make([]byte, 0, 96)
	b = append(b, sparseFormat)
	b = appendString(b, s.Tag)
	b = binary.BigEndian.AppendUint64(b, uint64(s.Version.Time.Wall))
	b = binary.BigEndian.AppendUint32(b, s.Version.Time.Logical)
	b = append(b, s.Version.Node[:]...)
	b = appendString(b, s.ETag)
	b = binary.AppendUvarint(b, uint64(s.Size))
	b = binary.AppendUvarint(b, uint64(s.PartSize))
	return binary.BigEndian.AppendUint64(b, uint64(unixNano(s.Stored)))
}

func decodeSparse(id ulid.ULID, b []byte) (Sparse, error) {
	d := decoder{b: b}
	if f := d.byte(); f != sparseFormat {
		return Sparse{}, fmt.Errorf("%w: sparse copy %s has format %d, want %d", ErrCorrupt, id, f, sparseFormat)
	}
	var s Sparse
	s.Tag = d.string()
	s.Version.Time.Wall = int64(d.uint64())
	s.Version.Time.Logical = d.uint32()
	copy(s.Version.Node[:], d.bytes(16))
	s.ETag = d.string()
	size, part := d.uvarint(), d.uvarint()
	s.Stored = fromUnixNano(int64(d.uint64()))
	if d.err || len(d.b) != 0 || size > math.MaxInt64 || part == 0 || part > math.MaxInt64 {
		return Sparse{}, fmt.Errorf("%w: sparse copy %s", ErrCorrupt, id)
	}
	s.Size, s.PartSize = int64(size), int64(part)
	if s.Parts() > maxSparseParts {
		return Sparse{}, fmt.Errorf("%w: sparse copy %s has %d parts", ErrCorrupt, id, s.Parts())
	}
	return s, nil
}

func encodeSparsePart(p SparsePart) []byte {
	b := make([]byte, 0, 64)
	b = append(b, sparsePartFormat)
	b = binary.AppendUvarint(b, uint64(p.Size))
	b = append(b, p.Sum[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(p.Stored)))
	return binary.BigEndian.AppendUint64(b, uint64(unixNano(p.Verified)))
}

func decodeSparsePart(id ulid.ULID, b []byte) (SparsePart, error) {
	d := decoder{b: b}
	if f := d.byte(); f != sparsePartFormat {
		return SparsePart{}, fmt.Errorf("%w: part of sparse copy %s has format %d", ErrCorrupt, id, f)
	}
	var p SparsePart
	size := d.uvarint()
	copy(p.Sum[:], d.bytes(32))
	p.Stored = fromUnixNano(int64(d.uint64()))
	p.Verified = fromUnixNano(int64(d.uint64()))
	if d.err || len(d.b) != 0 || size > math.MaxInt64 {
		return SparsePart{}, fmt.Errorf("%w: part of sparse copy %s", ErrCorrupt, id)
	}
	p.Size = int64(size)
	return p, nil
}

// Sparse returns this node's sparse copy of id, or an error matching
// ErrNotFound.
func (tx *Tx) Sparse(id ulid.ULID) (Sparse, error) {
	v := tx.tx.Bucket(bucketSparse).Get(id[:])
	if v == nil {
		return Sparse{}, fmt.Errorf("sparse copy %s: %w", id, ErrNotFound)
	}
	return decodeSparse(id, v)
}

// SparseParts returns the parts held of the sparse copy of id, by index.
func (tx *Tx) SparseParts(id ulid.ULID) (map[int]SparsePart, error) {
	parts := make(map[int]SparsePart)
	c := tx.tx.Bucket(bucketSparse).Cursor()
	for k, v := c.Seek(partKey(id, 0)); k != nil && bytes.HasPrefix(k, id[:]); k, v = c.Next() {
		if len(k) != 20 {
			return nil, fmt.Errorf("%w: sparse key %x", ErrCorrupt, k)
		}
		p, err := decodeSparsePart(id, v)
		if err != nil {
			return nil, err
		}
		parts[int(binary.BigEndian.Uint32(k[16:]))] = p
	}
	return parts, nil
}

// PutSparse begins a sparse copy of id, replacing any earlier one and its
// parts' records (whose files the caller removes).
func (tx *Tx) PutSparse(id ulid.ULID, s Sparse) error {
	if s.PartSize <= 0 || s.Size < 0 || s.Parts() > maxSparseParts {
		return fmt.Errorf("journal: sparse copy %s: %d bytes in parts of %d", id, s.Size, s.PartSize)
	}
	if err := tx.DeleteSparse(id); err != nil {
		return err
	}
	if err := tx.tx.Bucket(bucketSparse).Put(id[:], encodeSparse(s)); err != nil {
		return fmt.Errorf("journal: put sparse copy %s: %w", id, err)
	}
	tx.delta.add(Stats{Sparse: 1})
	return nil
}

// PutSparsePart records part k of the sparse copy of id, which must exist.
func (tx *Tx) PutSparsePart(id ulid.ULID, k int, p SparsePart) error {
	s, err := tx.Sparse(id)
	if err != nil {
		return err
	}
	if k < 0 || k >= s.Parts() || p.Size != s.PartLen(k) {
		return fmt.Errorf("journal: part %d of %d bytes does not fit sparse copy %s", k, p.Size, id)
	}
	bk := tx.tx.Bucket(bucketSparse)
	key := partKey(id, k)
	if v := bk.Get(key); v != nil {
		if old, err := decodeSparsePart(id, v); err == nil {
			tx.delta.add(Stats{SparseBytes: -old.Size})
		}
	}
	if err := bk.Put(key, encodeSparsePart(p)); err != nil {
		return fmt.Errorf("journal: put part %d of %s: %w", k, id, err)
	}
	tx.delta.add(Stats{SparseBytes: p.Size})
	return nil
}

// DeleteSparsePart forgets part k of the sparse copy of id, if held.
func (tx *Tx) DeleteSparsePart(id ulid.ULID, k int) error {
	bk := tx.tx.Bucket(bucketSparse)
	key := partKey(id, k)
	v := bk.Get(key)
	if v == nil {
		return nil
	}
	if old, err := decodeSparsePart(id, v); err == nil {
		tx.delta.add(Stats{SparseBytes: -old.Size})
	}
	if err := bk.Delete(key); err != nil {
		return fmt.Errorf("journal: delete part %d of %s: %w", k, id, err)
	}
	return nil
}

// DeleteSparse forgets the sparse copy of id and all its parts, if any.
func (tx *Tx) DeleteSparse(id ulid.ULID) error {
	bk := tx.tx.Bucket(bucketSparse)
	if bk.Get(id[:]) == nil {
		return nil
	}
	parts, err := tx.SparseParts(id)
	if err != nil {
		return err
	}
	for k, p := range parts {
		if err := bk.Delete(partKey(id, k)); err != nil {
			return fmt.Errorf("journal: delete sparse copy %s: %w", id, err)
		}
		tx.delta.add(Stats{SparseBytes: -p.Size})
	}
	if err := bk.Delete(id[:]); err != nil {
		return fmt.Errorf("journal: delete sparse copy %s: %w", id, err)
	}
	tx.delta.add(Stats{Sparse: -1})
	return nil
}

// SparseRef is a sparse copy in a listing, with the bytes it holds.
type SparseRef struct {
	ID ulid.ULID
	Sparse
	Held int64
}

// ForEachSparse calls fn for every sparse copy with an ID at or after
// from, in ID order, with the bytes of its parts held, until fn returns an
// error, which it returns.
func (tx *Tx) ForEachSparse(from ulid.ULID, fn func(SparseRef) error) error {
	return forEachSparse(tx.tx.Bucket(bucketSparse), from, fn)
}

func forEachSparse(bk *bolt.Bucket, from ulid.ULID, fn func(SparseRef) error) error {
	c := bk.Cursor()
	var cur *SparseRef
	flush := func() error {
		if cur == nil {
			return nil
		}
		r := *cur
		cur = nil
		return fn(r)
	}
	for k, v := c.Seek(from[:]); k != nil; k, v = c.Next() {
		switch len(k) {
		case 16:
			if err := flush(); err != nil {
				return err
			}
			id, _ := keyID(k)
			s, err := decodeSparse(id, v)
			if err != nil {
				return err
			}
			cur = &SparseRef{ID: id, Sparse: s}
		case 20:
			if cur == nil || !bytes.Equal(k[:16], cur.ID[:]) {
				continue // a part whose copy is before from, or gone
			}
			p, err := decodeSparsePart(cur.ID, v)
			if err != nil {
				return err
			}
			cur.Held += p.Size
		default:
			return fmt.Errorf("%w: sparse key %x", ErrCorrupt, k)
		}
	}
	return flush()
}

// Sparse returns this node's sparse copy of id and its parts, or an error
// matching ErrNotFound.
func (j *Journal) Sparse(id ulid.ULID) (s Sparse, parts map[int]SparsePart, err error) {
	err = j.View(func(tx *Tx) error {
		if s, err = tx.Sparse(id); err != nil {
			return err
		}
		parts, err = tx.SparseParts(id)
		return err
	})
	return s, parts, err
}

// HoldsParts reports whether this node holds a sparse copy of id with at
// least one part, reading two records at most.
func (j *Journal) HoldsParts(id ulid.ULID) bool {
	held := false
	j.View(func(tx *Tx) error {
		c := tx.tx.Bucket(bucketSparse).Cursor()
		k, _ := c.Seek(id[:])
		if k == nil || !bytes.Equal(k, id[:]) {
			return nil
		}
		k, _ = c.Next()
		held = k != nil && len(k) == 20 && bytes.HasPrefix(k, id[:])
		return nil
	})
	return held
}

// SparseCopies returns up to limit sparse copies with IDs after the given
// one, in ID order.
func (j *Journal) SparseCopies(after ulid.ULID, limit int) ([]SparseRef, error) {
	var out []SparseRef
	err := j.View(func(tx *Tx) error {
		return stopAt(tx.ForEachSparse(after, func(r SparseRef) error {
			if r.ID == after {
				return nil
			}
			if len(out) == limit {
				return errStop
			}
			out = append(out, r)
			return nil
		}))
	})
	return out, err
}

// CompleteSum records sum as the checksum of id's entry when the entry is
// at version v and names none yet, as when its body was fetched in parts
// and its checksum learned once whole, and reports whether it did. The
// version stays: the checksum is what that version's body always had.
func (tx *Tx) CompleteSum(id ulid.ULID, v Version, sum [32]byte) (bool, error) {
	e, err := tx.Entry(id)
	if err != nil {
		return false, err
	}
	if e.Deleted || e.Version != v || e.Sum != ([32]byte{}) {
		return false, nil
	}
	e.Sum = sum
	rec, err := tx.encode(e)
	if err != nil {
		return false, err
	}
	if err := tx.tx.Bucket(bucketEntries).Put(id[:], rec); err != nil {
		return false, fmt.Errorf("journal: put entry %s: %w", id, err)
	}
	return true, nil
}

// ReviseSparse changes the record of the sparse copy of id tagged tag with
// revise (its Stored time once the source confirmed it, its ETag once the
// source first named one), keeping its parts; it does nothing when the
// copy is gone or another. revise must not change the tag, version, size
// or part size.
func (tx *Tx) ReviseSparse(id ulid.ULID, tag string, revise func(*Sparse)) error {
	s, err := tx.Sparse(id)
	if err != nil || s.Tag != tag {
		return nil
	}
	was := s
	revise(&s)
	if s.Tag != was.Tag || s.Version != was.Version || s.Size != was.Size || s.PartSize != was.PartSize {
		return fmt.Errorf("journal: revising sparse copy %s changed what it is a copy of", id)
	}
	if err := tx.tx.Bucket(bucketSparse).Put(id[:], encodeSparse(s)); err != nil {
		return fmt.Errorf("journal: put sparse copy %s: %w", id, err)
	}
	return nil
}

// RebaseSparse moves the sparse copy of id tagged tag to version v, for a
// write that changed the object's version but not its body (a level
// change); its parts stay.
func (tx *Tx) RebaseSparse(id ulid.ULID, tag string, v Version) error {
	s, err := tx.Sparse(id)
	if err != nil || s.Tag != tag {
		return nil
	}
	s.Version = v
	if err := tx.tx.Bucket(bucketSparse).Put(id[:], encodeSparse(s)); err != nil {
		return fmt.Errorf("journal: put sparse copy %s: %w", id, err)
	}
	return nil
}

// HasSparse reports whether this node holds a sparse copy record of id.
func (tx *Tx) HasSparse(id ulid.ULID) bool {
	return tx.tx.Bucket(bucketSparse).Get(id[:]) != nil
}
