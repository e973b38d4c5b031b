package cluster

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/journal"
)

// The private API speaks a small binary format for journal traffic, so that
// anti-entropy at a million entries moves bytes in proportion to the
// difference and not to JSON's overhead. Every message starts with a format
// byte; a node refuses a format it does not know with 400, and every
// request carries HeaderProto so that two releases can tell each other
// apart during a rolling upgrade.
const (
	// ProtoVersion is the private API's protocol version.
	ProtoVersion = "1"
	// HeaderProto carries ProtoVersion on every private request and answer.
	HeaderProto = "X-Objstore-Proto"
	// ContentType marks the binary messages below.
	ContentType = "application/x-objstore"

	msgEntries   byte = 1
	msgTreeReq   byte = 2
	msgTreeResp  byte = 3
	msgLeaves    byte = 4
	msgSummaries byte = 5
	msgIDs       byte = 6

	// MaxBatch bounds the items of one message, so a message stays a few
	// MiB at most whatever a peer sends. Requests have tighter bounds of
	// their own (maxTreeNodes, maxLeaves, maxIDs), since their answers
	// are larger than they are.
	MaxBatch = 16384
	// Bounds on the items of one request: what anti-entropy asks for at
	// most (treeBatch, leafBatch, entryBatch).
	maxTreeNodes = treeBatch
	maxLeaves    = leafBatch
	maxIDs       = entryBatch
	// maxSummaries bounds one summaries answer: the entries of the leaves
	// asked for (1,024 leaves of a journal of a few hundred million
	// entries).
	maxSummaries = 1 << 22
)

// ErrBadMessage is returned, wrapped, for a message that cannot be decoded.
var ErrBadMessage = errors.New("cluster: bad message")

type msgWriter struct {
	b []byte
}

func (m *msgWriter) uvarint(v uint64) { m.b = binary.AppendUvarint(m.b, v) }

type msgReader struct {
	r   *bufio.Reader
	err error
}

func newMsgReader(r io.Reader, kind byte, limit int) (*msgReader, int, error) {
	m := &msgReader{r: bufio.NewReader(r)}
	k, err := m.r.ReadByte()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: empty message: %w", ErrBadMessage, err)
	}
	if k != kind {
		return nil, 0, fmt.Errorf("%w: message kind %d, want %d", ErrBadMessage, k, kind)
	}
	n := m.uvarint()
	if m.err == nil && n > uint64(limit) {
		return nil, 0, fmt.Errorf("%w: %d items, the limit is %d", ErrBadMessage, n, limit)
	}
	return m, int(n), m.err
}

func (m *msgReader) uvarint() uint64 {
	if m.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(m.r)
	if err != nil {
		// ReadUvarint returns what it read so far with an overflow error;
		// none of it may be used.
		m.err = fmt.Errorf("%w: %w", ErrBadMessage, err)
		return 0
	}
	return v
}

func (m *msgReader) full(p []byte) {
	if m.err != nil {
		return
	}
	if _, err := io.ReadFull(m.r, p); err != nil {
		m.err = fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
}

// EncodeEntries encodes a batch of entries: each is its ID and its journal
// record (journal.MarshalEntry), which carries its own format byte.
func EncodeEntries(entries []journal.Entry) []byte {
	m := &msgWriter{b: []byte{msgEntries}}
	m.uvarint(uint64(len(entries)))
	for _, e := range entries {
		rec := journal.MarshalEntry(e)
		m.b = append(m.b, e.ID[:]...)
		m.uvarint(uint64(len(rec)))
		m.b = append(m.b, rec...)
	}
	return m.b
}

// DecodeEntries decodes what EncodeEntries made.
func DecodeEntries(r io.Reader) ([]journal.Entry, error) {
	m, n, err := newMsgReader(r, msgEntries, MaxBatch)
	if err != nil {
		return nil, err
	}
	out := make([]journal.Entry, 0, min(n, 1024))
	seen := make(map[ulid.ULID]struct{}, min(n, 1024))
	for range n {
		var id ulid.ULID
		m.full(id[:])
		size := m.uvarint()
		if m.err != nil {
			return nil, m.err
		}
		if size > 1<<20 {
			return nil, fmt.Errorf("%w: entry of %d bytes", ErrBadMessage, size)
		}
		rec := make([]byte, size)
		m.full(rec)
		if m.err != nil {
			return nil, m.err
		}
		e, err := journal.UnmarshalEntry(id, rec)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		if _, dup := seen[id]; dup {
			continue // a sender never repeats an ID; only its first entry counts
		}
		seen[id] = struct{}{}
		out = append(out, e)
	}
	return out, nil
}

// EncodeEntryHeader encodes one entry for HeaderEntry: EncodeEntries of
// it, in unpadded URL-safe base64.
func EncodeEntryHeader(e journal.Entry) string {
	return base64.RawURLEncoding.EncodeToString(EncodeEntries([]journal.Entry{e}))
}

// maxEntryHeader bounds HeaderEntry: an entry's key, name and user
// metadata are each bounded well below it.
const maxEntryHeader = 64 << 10

// DecodeEntryHeader decodes what EncodeEntryHeader made: exactly one
// entry.
func DecodeEntryHeader(s string) (journal.Entry, error) {
	if len(s) > maxEntryHeader {
		return journal.Entry{}, fmt.Errorf("%w: entry header of %d bytes", ErrBadMessage, len(s))
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return journal.Entry{}, fmt.Errorf("%w: entry header: %w", ErrBadMessage, err)
	}
	es, err := DecodeEntries(bytes.NewReader(b))
	if err != nil {
		return journal.Entry{}, err
	}
	if len(es) != 1 {
		return journal.Entry{}, fmt.Errorf("%w: entry header holds %d entries", ErrBadMessage, len(es))
	}
	return es[0], nil
}

// EncodeTreeRequest asks for the children of nodes at level.
func EncodeTreeRequest(level int, nodes []uint32) []byte {
	m := &msgWriter{b: []byte{msgTreeReq}}
	m.uvarint(uint64(len(nodes)))
	m.uvarint(uint64(level))
	for _, n := range nodes {
		m.uvarint(uint64(n))
	}
	return m.b
}

// DecodeTreeRequest decodes what EncodeTreeRequest made.
func DecodeTreeRequest(r io.Reader) (level int, nodes []uint32, err error) {
	m, n, err := newMsgReader(r, msgTreeReq, maxTreeNodes)
	if err != nil {
		return 0, nil, err
	}
	lv := m.uvarint()
	if lv >= journal.TreeDepth {
		return 0, nil, fmt.Errorf("%w: tree level %d", ErrBadMessage, lv)
	}
	nodes = make([]uint32, 0, n)
	for range n {
		v := m.uvarint()
		if v > math.MaxUint32 {
			return 0, nil, fmt.Errorf("%w: tree node %d", ErrBadMessage, v)
		}
		nodes = append(nodes, uint32(v))
	}
	// Each node asked for costs a walk over its leaves: asking twice for
	// one is never needed and would multiply the work.
	return int(lv), dedup(nodes), m.err
}

// EncodeTreeNodes encodes digests and counts of tree nodes.
func EncodeTreeNodes(nodes []journal.TreeNode) []byte {
	m := &msgWriter{b: make([]byte, 0, 8+len(nodes)*20)}
	m.b = append(m.b, msgTreeResp)
	m.uvarint(uint64(len(nodes)))
	for _, n := range nodes {
		m.b = append(m.b, n.Digest[:]...)
		m.uvarint(uint64(n.Count))
	}
	return m.b
}

// DecodeTreeNodes decodes what EncodeTreeNodes made.
func DecodeTreeNodes(r io.Reader) ([]journal.TreeNode, error) {
	m, n, err := newMsgReader(r, msgTreeResp, MaxBatch)
	if err != nil {
		return nil, err
	}
	out := make([]journal.TreeNode, n)
	for i := range out {
		m.full(out[i].Digest[:])
		out[i].Count = uint32(m.uvarint())
	}
	return out, m.err
}

// EncodeLeaves asks for the summaries of leaves.
func EncodeLeaves(leaves []uint16) []byte {
	m := &msgWriter{b: []byte{msgLeaves}}
	m.uvarint(uint64(len(leaves)))
	for _, l := range leaves {
		m.b = binary.BigEndian.AppendUint16(m.b, l)
	}
	return m.b
}

// DecodeLeaves decodes what EncodeLeaves made.
func DecodeLeaves(r io.Reader) ([]uint16, error) {
	m, n, err := newMsgReader(r, msgLeaves, maxLeaves)
	if err != nil {
		return nil, err
	}
	out := make([]uint16, n)
	var b [2]byte
	for i := range out {
		m.full(b[:])
		out[i] = binary.BigEndian.Uint16(b[:])
	}
	return dedup(out), m.err
}

// EncodeSummaries encodes (ID, version) pairs: 44 bytes each.
func EncodeSummaries(sums []journal.Summary) []byte {
	m := &msgWriter{b: make([]byte, 0, 8+len(sums)*44)}
	m.b = append(m.b, msgSummaries)
	m.uvarint(uint64(len(sums)))
	for _, s := range sums {
		m.b = append(m.b, s.ID[:]...)
		m.b = binary.BigEndian.AppendUint64(m.b, uint64(s.Version.Time.Wall))
		m.b = binary.BigEndian.AppendUint32(m.b, s.Version.Time.Logical)
		m.b = append(m.b, s.Version.Node[:]...)
	}
	return m.b
}

// DecodeSummaries decodes what EncodeSummaries made. Unlike other messages
// it may hold more than MaxBatch items, up to the entries of the leaves
// asked for.
func DecodeSummaries(r io.Reader) ([]journal.Summary, error) {
	br := bufio.NewReader(r)
	k, err := br.ReadByte()
	if err != nil || k != msgSummaries {
		return nil, fmt.Errorf("%w: not a summaries message", ErrBadMessage)
	}
	n, err := binary.ReadUvarint(br)
	if err != nil || n > maxSummaries {
		return nil, fmt.Errorf("%w: summaries count", ErrBadMessage)
	}
	// Grow as the bytes arrive rather than trusting the count, so a broken
	// peer cannot make this node allocate for summaries it never sends.
	out := make([]journal.Summary, 0, min(n, MaxBatch))
	var b [44]byte
	for range n {
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		var s journal.Summary
		copy(s.ID[:], b[:16])
		s.Version.Time.Wall = int64(binary.BigEndian.Uint64(b[16:]))
		s.Version.Time.Logical = binary.BigEndian.Uint32(b[24:])
		copy(s.Version.Node[:], b[28:])
		out = append(out, s)
	}
	return out, nil
}

// EncodeIDs encodes a list of IDs.
func EncodeIDs(ids []ulid.ULID) []byte {
	m := &msgWriter{b: make([]byte, 0, 8+len(ids)*16)}
	m.b = append(m.b, msgIDs)
	m.uvarint(uint64(len(ids)))
	for _, id := range ids {
		m.b = append(m.b, id[:]...)
	}
	return m.b
}

// DecodeIDs decodes what EncodeIDs made.
func DecodeIDs(r io.Reader) ([]ulid.ULID, error) {
	m, n, err := newMsgReader(r, msgIDs, maxIDs)
	if err != nil {
		return nil, err
	}
	out := make([]ulid.ULID, n)
	for i := range out {
		m.full(out[i][:])
	}
	return dedup(out), m.err
}

// dedup drops repeated items, keeping the first of each in order.
func dedup[T comparable](s []T) []T {
	seen := make(map[T]struct{}, len(s))
	out := s[:0]
	for _, v := range s {
		if _, ok := seen[v]; !ok {
			seen[v] = struct{}{}
			out = append(out, v)
		}
	}
	return out
}
