package journal

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"
)

// Level is an object's consistency level: where its body must be durable
// before a PUT is acknowledged.
type Level uint8

const (
	// LevelLocal keeps the body on the node that took the PUT only.
	LevelLocal Level = 0
	// LevelRemote keeps the body on the node that took the PUT and in the
	// remote tier.
	LevelRemote Level = 1
	// LevelFull keeps the body on every node and in the remote tier.
	LevelFull Level = 2
)

// Valid reports whether l is a defined level.
func (l Level) Valid() bool { return l <= LevelFull }

// InRemote reports whether objects of level l are kept in the remote tier.
func (l Level) InRemote() bool { return l >= LevelRemote }

// Version orders the writes of one object across the cluster: the writer's
// hybrid logical clock reading, then the writer's node ID to break ties.
// Versions of distinct writes are never equal.
type Version struct {
	Time Timestamp
	Node ulid.ULID
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than w.
func (v Version) Compare(w Version) int {
	if c := v.Time.Compare(w.Time); c != 0 {
		return c
	}
	return v.Node.Compare(w.Node)
}

// IsZero reports whether v is the zero version, older than every write.
func (v Version) IsZero() bool { return v.Time.IsZero() && v.Node == (ulid.ULID{}) }

// String formats v as wall.logical@node.
func (v Version) String() string { return v.Time.String() + "@" + v.Node.String() }

// Entry is the replicated metadata of one object, or its tombstone. Entries
// of one ID are merged by Version: the newest wins.
type Entry struct {
	ID      ulid.ULID
	Version Version
	// Deleted marks a tombstone. A tombstone keeps ID and Version only.
	Deleted bool
	// Origin is the node that took the PUT of this body: the first place to
	// ask for it when this node does not hold it. A level change keeps the
	// origin.
	Origin ulid.ULID
	Name   string
	Size   int64
	// Sum is the SHA-256 of the body, computed as it streamed in.
	Sum      [32]byte
	Level    Level
	UserMeta map[string]string

	// Bucket and Key name a key-addressed object: an object of an origin
	// bucket, cached under the ID KeyID(Bucket, Key). Both are empty for
	// objects named by a ULID, and in tombstones.
	Bucket, Key string
	// ETag, ContentType and LastModified are what the origin bucket said
	// of a key-addressed object when it was last fetched or written, for
	// revalidation and for answers; zero for ULID objects.
	ETag         string
	ContentType  string
	LastModified time.Time
}

// Keyed reports whether e names a key-addressed object.
func (e Entry) Keyed() bool { return e.Bucket != "" }

// keyIDLabel makes key IDs a namespace of their own.
const keyIDLabel = "objstore key v1\x00"

// KeyID returns the ID under which the object at key in bucket is kept:
// the first 16 bytes of SHA-256("objstore key v1" NUL bucket NUL key). A
// key is never made into a file name; bodies, journal records and sync
// ranges all go by this ID, which spreads keys evenly over them. IDs of
// distinct keys collide with negligible probability (2^-64 at 2^32 keys),
// and callers check an entry's Bucket and Key anyway.
func KeyID(bucket, key string) ulid.ULID {
	h := sha256.New()
	h.Write([]byte(keyIDLabel))
	h.Write([]byte(bucket))
	h.Write([]byte{0})
	h.Write([]byte(key))
	var id ulid.ULID
	copy(id[:], h.Sum(nil))
	return id
}

// Modified is when the write that produced e was made, by its writer's clock.
func (e Entry) Modified() time.Time { return e.Version.Time.Time() }

// Blob is this node's record of a body it holds on local disk. It is not
// replicated: each node knows which bodies it holds.
type Blob struct {
	Size int64
	Sum  [32]byte
	// Stored is when the body was committed to disk.
	Stored time.Time
	// Verified is when a scrub last read the body and found it whole; zero
	// until the first scrub.
	Verified time.Time
	// Fetched is set when the body was fetched from the remote on a miss
	// rather than written by a client through this node.
	Fetched bool
}

// ErrCorrupt is returned when a stored record cannot be decoded.
var ErrCorrupt = errors.New("journal: corrupt record")

// Record encodings start with their format version, so that a later release
// can read what an earlier one wrote and refuse what it cannot.
const (
	entryFormat byte = 2
	// entryFormatKeyed is format 2 followed by a key-addressed object's
	// fields (flagKeyed is set).
	entryFormatKeyed byte = 4
	// entryFormatV1 lacks Origin; its entries take the writer as origin.
	entryFormatV1 byte = 1
	// entryFormatSealed is format 2 with the name and user metadata
	// encrypted (Config.Sealer); it is only ever stored, never sent.
	entryFormatSealed byte = 3
	blobFormat        byte = 1
	flagDeleted       byte = 1 << 0
	flagKeyed         byte = 1 << 1 // the names are followed by the key fields
	flagFetched       byte = 1 << 0
)

// Layout of an entry, format 2:
//
//	format(1) wall(8) logical(4) node(16) origin(16) flags(1) level(1)
//	size(uvarint) sum(32) name(uvarint len + bytes) meta count(uvarint)
//	then per pair key(uvarint len + bytes) value(uvarint len + bytes)
//
// Format 1 is the same without origin. Format 4 (a key-addressed object,
// flags bit 1 set) is format 2 followed by
//
//	bucket(uvarint len + bytes) key(uvarint len + bytes)
//	etag(uvarint len + bytes) content-type(uvarint len + bytes)
//	last-modified(8, Unix ns, 0 when unknown)
//
// Integers are big-endian; map pairs are sorted by key so that equal entries
// encode to equal bytes, which the cluster's range hashes rely on.
func encodeEntry(e Entry) []byte {
	format := entryFormat
	if e.Keyed() {
		format = entryFormatKeyed
	}
	b := appendFixed(make([]byte, 0, 64+len(e.Name)+len(e.Key)), format, e)
	return appendNames(b, e)
}

// appendFixed appends the format byte and the fields before the name.
func appendFixed(b []byte, format byte, e Entry) []byte {
	b = append(b, format)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Version.Time.Wall))
	b = binary.BigEndian.AppendUint32(b, e.Version.Time.Logical)
	b = append(b, e.Version.Node[:]...)
	b = append(b, e.Origin[:]...)
	var flags byte
	if e.Deleted {
		flags |= flagDeleted
	}
	if e.Keyed() {
		flags |= flagKeyed
	}
	b = append(b, flags, byte(e.Level))
	b = binary.AppendUvarint(b, uint64(e.Size))
	return append(b, e.Sum[:]...)
}

// appendNames appends the fields that name the object: its name and user
// metadata, pairs sorted by key.
func appendNames(b []byte, e Entry) []byte {
	b = appendString(b, e.Name)
	keys := sortedKeys(e.UserMeta)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, e.UserMeta[k])
	}
	if e.Keyed() {
		b = appendString(b, e.Bucket)
		b = appendString(b, e.Key)
		b = appendString(b, e.ETag)
		b = appendString(b, e.ContentType)
		b = binary.BigEndian.AppendUint64(b, uint64(unixNano(e.LastModified)))
	}
	return b
}

// Layout of a stored entry with sealed names, format 3:
//
//	format(1)=3 wall(8) logical(4) node(16) origin(16) flags(1) level(1)
//	size(uvarint) sum(32) sealed(uvarint len + bytes)
//
// where sealed is Sealer.SealValue(ID, name and user metadata as format 2
// lays them out, then a key-addressed object's fields as format 4 does
// when flags bit 1 is set). The fields the cluster and the journal's counts need
// (version, flags, size) stay readable without the key.
func encodeSealedEntry(e Entry, s Sealer) ([]byte, error) {
	sealed, err := s.SealValue(e.ID[:], appendNames(nil, e))
	if err != nil {
		return nil, fmt.Errorf("journal: seal entry %s: %w", e.ID, err)
	}
	b := appendFixed(make([]byte, 0, 96+len(sealed)), entryFormatSealed, e)
	b = binary.AppendUvarint(b, uint64(len(sealed)))
	return append(b, sealed...), nil
}

// decodeEntry reads an entry in format 1, 2 or 4, as peers send them.
func decodeEntry(id ulid.ULID, b []byte) (Entry, error) { return decodeStored(id, b, nil) }

// decodeStored reads an entry in any format; format 3 needs the sealer
// that sealed it.
func decodeStored(id ulid.ULID, b []byte, s Sealer) (Entry, error) {
	d := decoder{b: b}
	e, format := decodeFixed(&d, id)
	switch {
	case d.err:
	case format == entryFormatSealed && s == nil:
		return Entry{}, fmt.Errorf("%w: entry %s has sealed names and the journal has no key", ErrNoKey, id)
	case format == entryFormatSealed:
		n := d.uvarint()
		if n > uint64(len(d.b)) {
			d.err = true
			break
		}
		plain, err := s.OpenValue(id[:], d.bytes(int(n)))
		if err != nil {
			return Entry{}, fmt.Errorf("%w: entry %s: %w", ErrNoKey, id, err)
		}
		if len(d.b) != 0 {
			d.err = true
			break
		}
		d = decoder{b: plain, keyed: d.keyed}
		decodeNames(&d, &e)
	default:
		decodeNames(&d, &e)
	}
	if d.err || len(d.b) != 0 || !e.Level.Valid() {
		return Entry{}, fmt.Errorf("%w: entry %s", ErrCorrupt, id)
	}
	return e, nil
}

// decodeFixed reads the format byte and the fields before the name.
func decodeFixed(d *decoder, id ulid.ULID) (Entry, byte) {
	format := d.byte()
	switch format {
	case entryFormat, entryFormatV1, entryFormatSealed, entryFormatKeyed:
	default:
		d.err = true
		return Entry{}, format
	}
	e := Entry{ID: id}
	e.Version.Time.Wall = int64(d.uint64())
	e.Version.Time.Logical = d.uint32()
	copy(e.Version.Node[:], d.bytes(16))
	if format == entryFormatV1 {
		e.Origin = e.Version.Node
	} else {
		copy(e.Origin[:], d.bytes(16))
	}
	flags := d.byte()
	e.Deleted = flags&flagDeleted != 0
	keyed := flags&flagKeyed != 0
	if keyed != (format == entryFormatKeyed) && format != entryFormatSealed || flags&^(flagDeleted|flagKeyed) != 0 {
		d.err = true // the flag and the format disagree, or an unknown flag
	}
	d.keyed = keyed
	e.Level = Level(d.byte())
	size := d.uvarint()
	if size > math.MaxInt64 {
		d.err = true
	}
	e.Size = int64(size)
	copy(e.Sum[:], d.bytes(32))
	return e, format
}

// decodeNames reads the name and user metadata, and a key-addressed
// object's fields when the fixed part said so (d.keyed).
func decodeNames(d *decoder, e *Entry) {
	e.Name = d.string()
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = true
	}
	if n > 0 && !d.err {
		e.UserMeta = make(map[string]string, n)
		for i := uint64(0); i < n && !d.err; i++ {
			k := d.string()
			e.UserMeta[k] = d.string()
		}
	}
	if d.keyed {
		e.Bucket, e.Key = d.string(), d.string()
		e.ETag, e.ContentType = d.string(), d.string()
		e.LastModified = fromUnixNano(int64(d.uint64()))
		if e.Bucket == "" {
			d.err = true
		}
	}
}

// decodeHead reads what an entry's record says without its names: for
// scans (counts, the hash tree, summaries) that need no key.
func decodeHead(id ulid.ULID, b []byte) (Entry, error) {
	d := decoder{b: b}
	e, _ := decodeFixed(&d, id)
	if d.err || !e.Level.Valid() {
		return Entry{}, fmt.Errorf("%w: entry %s", ErrCorrupt, id)
	}
	return e, nil
}

// Layout of a blob record, format 1:
//
//	format(1) flags(1) size(uvarint) sum(32) stored(8) verified(8)
func encodeBlob(r Blob) []byte {
	b := make([]byte, 0, 64)
	var flags byte
	if r.Fetched {
		flags |= flagFetched
	}
	b = append(b, blobFormat, flags)
	b = binary.AppendUvarint(b, uint64(r.Size))
	b = append(b, r.Sum[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(r.Stored)))
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(r.Verified)))
	return b
}

func decodeBlob(id ulid.ULID, b []byte) (Blob, error) {
	d := decoder{b: b}
	if f := d.byte(); f != blobFormat {
		return Blob{}, fmt.Errorf("%w: blob %s has format %d, want %d", ErrCorrupt, id, f, blobFormat)
	}
	var r Blob
	r.Fetched = d.byte()&flagFetched != 0
	size := d.uvarint()
	if size > math.MaxInt64 {
		d.err = true
	}
	r.Size = int64(size)
	copy(r.Sum[:], d.bytes(32))
	r.Stored = fromUnixNano(int64(d.uint64()))
	r.Verified = fromUnixNano(int64(d.uint64()))
	if d.err || len(d.b) != 0 {
		return Blob{}, fmt.Errorf("%w: blob %s", ErrCorrupt, id)
	}
	return r, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads a record, remembering the first short or malformed read
// instead of failing at each step.
type decoder struct {
	b     []byte
	err   bool
	keyed bool // the entry's flags say it is key-addressed
}

func (d *decoder) bytes(n int) []byte {
	if d.err || n < 0 || len(d.b) < n {
		d.err = true
		return make([]byte, max(n, 0))
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte     { return d.bytes(1)[0] }
func (d *decoder) uint32() uint32 { return binary.BigEndian.Uint32(d.bytes(4)) }
func (d *decoder) uint64() uint64 { return binary.BigEndian.Uint64(d.bytes(8)) }

// string copies, so the result outlives the bbolt transaction it came from.
func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = true
		return ""
	}
	return string(d.bytes(int(n)))
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

func (d *decoder) uvarint() uint64 {
	if d.err {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}
