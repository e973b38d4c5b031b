package seal

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// Option tunes a Writer.
type Option func(*options)

type options struct {
	segSize int
}

// WithSegmentSize sets the plaintext segment size, a power of two in
// [MinSegmentSize, MaxSegmentSize]; the default is DefaultSegmentSize.
// Smaller segments make small range reads cheaper; larger ones lower the
// per-segment overhead. Readers take the size from the file's header.
func WithSegmentSize(n int) Option {
	return func(o *options) { o.segSize = n }
}

var errClosed = errors.New("seal: writer already closed or aborted")

// Writer seals a body into dst, in the format described in the package
// documentation, under the keyring's primary key. It writes the header
// when it is created, then each segment as soon as it is complete, holding
// one segment buffer per segment in progress (one per part being written)
// and never more of the body. It never closes, truncates or syncs dst: the
// caller owns dst and makes it durable after Close.
//
// A Writer made by NewWriter, for a body of unknown size, is written
// sequentially with Write and is not safe for concurrent use. It holds the
// last segment back until more bytes arrive or Close, since only then does
// it know whether the segment is the last one.
//
// A Writer made by NewWriterSize knows which segment is last, so it seals
// each segment the moment its last byte arrives, and it accepts a body
// fetched as ranged parts in any order: WriteAt is safe for concurrent use
// by several goroutines provided every part starts at a multiple of the
// segment size (its end is the next part's start, or the body's end), each
// part's bytes arrive in order, and no two calls write the same segment at
// once. In practice: one goroutine per part, each writing its part in order
// through WriteAt or io.NewOffsetWriter(w, partStart). Violations are
// reported as errors, never sealed silently. Write on such a Writer is
// WriteAt at the offset where the previous Write ended, for one sequential
// writer; do not mix it with WriteAt.
//
// Each segment is sealed exactly once, since one nonce must never seal two
// plaintexts under one key: a part that fails midway cannot be written
// again into the same Writer. Abort it and start over with a new Writer,
// which draws a new salt and so a new key.
//
// Close and Abort must not run concurrently with writes. Sealed,
// SegmentSize, KeyID and Size are safe to call at any time.
type Writer struct {
	dst    io.WriterAt
	aead   cipher.AEAD
	l      layout // size is -1 when unknown; nseg is then meaningless
	keyID  uint32
	pool   *sync.Pool
	sealed atomic.Int64

	// Unknown size only; touched by Write and Close alone.
	tail *segBuf // the segment being filled; never nil before Close
	next int64   // index of the segment tail will become

	// Known size only.
	seq int64 // where the next Write goes

	mu     sync.Mutex
	err    error // sticky: the first failure to write dst
	closed bool
	open   map[int64]*segBuf // known size: segments begun, not yet sealed
	done   spans             // known size: the segments sealed
	ndone  int64
}

// NewWriter returns a Writer for a body of unknown size, to be written
// sequentially with Write and finished with Close. It writes the header to
// dst at offset 0 before returning. binding names the object the body
// belongs to (its ID, for instance); it must be non-empty, and the body
// opens only with the same binding. The Writer keeps no reference to kr or
// binding.
func NewWriter(dst io.WriterAt, kr *Keyring, binding []byte, opts ...Option) (*Writer, error) {
	return newWriter(dst, kr, binding, -1, opts)
}

// NewWriterSize is NewWriter for a body of exactly size bytes, which may
// also be written as parts, out of order and concurrently, with WriteAt.
// Close fails unless every byte has been written. A body of size 0 is
// complete on return.
func NewWriterSize(dst io.WriterAt, kr *Keyring, binding []byte, size int64, opts ...Option) (*Writer, error) {
	if size < 0 {
		return nil, fmt.Errorf("seal: negative body size %d", size)
	}
	return newWriter(dst, kr, binding, size, opts)
}

func newWriter(dst io.WriterAt, kr *Keyring, binding []byte, size int64, opts []Option) (*Writer, error) {
	if kr == nil {
		return nil, errors.New("seal: nil keyring")
	}
	if len(binding) == 0 {
		return nil, errors.New("seal: empty binding: pass the object's identity")
	}
	o := options{segSize: DefaultSegmentSize}
	for _, opt := range opts {
		opt(&o)
	}
	if !validSegSize(int64(o.segSize)) {
		return nil, fmt.Errorf("seal: segment size %d is not a power of two in [%d, %d]", o.segSize, MinSegmentSize, MaxSegmentSize)
	}
	if size > maxPlain(o.segSize) {
		return nil, fmt.Errorf("seal: body size %d is too large", size)
	}
	h := newHeader(kr.primary, o.segSize, kr.clear)
	aead, err := newAEAD(kr.keys[kr.primary], &h, binding)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		dst:   dst,
		aead:  aead,
		l:     newLayout(o.segSize, max(size, 0)),
		keyID: kr.primary,
		pool:  poolFor(o.segSize),
	}
	w.l.size = size
	if n, err := dst.WriteAt(h.raw[:], 0); err != nil || n < HeaderSize {
		if err == nil {
			err = io.ErrShortWrite
		}
		return nil, fmt.Errorf("seal: write header: %w", err)
	}
	if size < 0 {
		w.tail = getBuf(w.pool, o.segSize)
		return w, nil
	}
	w.open = make(map[int64]*segBuf)
	if size == 0 {
		// No write will ever complete the empty last segment: seal it now.
		sb := getBuf(w.pool, o.segSize)
		if err := w.finish(0, sb, w.sealSegment(sb, nil, 0, true)); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// SegmentSize returns the plaintext segment size. Parts written with
// WriteAt must start at multiples of it.
func (w *Writer) SegmentSize() int { return w.l.segSize }

// KeyID returns the ID of the key sealing the body.
func (w *Writer) KeyID() uint32 { return w.keyID }

// Size returns the declared plaintext size, or -1 for a Writer made by
// NewWriter.
func (w *Writer) Size() int64 { return w.l.size }

// Sealed returns the length of the longest prefix of the plaintext whose
// segments are all sealed and written to dst. A follower may read that
// prefix through a Reader from OpenPartial while the body is still being
// written. After a successful Close it is the body's size.
func (w *Writer) Sealed() int64 { return w.sealed.Load() }

// Write appends p to the body. For a Writer made by NewWriterSize it is
// WriteAt(p, end of the previous Write). It returns an error, and the
// Writer stops accepting bytes, if writing dst fails.
func (w *Writer) Write(p []byte) (int, error) {
	if w.l.size >= 0 {
		n, err := w.WriteAt(p, w.seq)
		w.seq += int64(n)
		return n, err
	}
	if err := w.check(); err != nil {
		return 0, err
	}
	if int64(len(p)) > maxPlain(w.l.segSize)-w.next*int64(w.l.segSize)-int64(w.tail.n) {
		return 0, errors.New("seal: body too large")
	}
	s := w.l.segSize
	n := 0
	for n < len(p) {
		if w.tail.n == s {
			// More bytes follow, so the buffered segment is not the last.
			if err := w.sealTail(w.tail.b[:s]); err != nil {
				return n, err
			}
			continue
		}
		if w.tail.n == 0 && len(p)-n > s {
			// A whole segment that is not the last: seal it straight from p.
			if err := w.sealTail(p[n : n+s]); err != nil {
				return n, err
			}
			n += s
			continue
		}
		c := copy(w.tail.b[w.tail.n:s], p[n:])
		w.tail.n += c
		n += c
	}
	return n, nil
}

// sealTail seals plain (the tail or a segment of the caller's bytes) as
// the next segment, not the last, and empties the tail.
func (w *Writer) sealTail(plain []byte) error {
	if err := w.sealSegment(w.tail, plain, w.next, false); err != nil {
		w.fail(err)
		return err
	}
	w.tail.n = 0
	w.next++
	w.sealed.Store(w.next * int64(w.l.segSize))
	return nil
}

// WriteAt writes p at plaintext offset off of a Writer made by
// NewWriterSize; see Writer for the rules parts follow. When it returns,
// every segment it completed is sealed and written to dst. It fails if the
// bytes fall outside the declared size, break the rules, or writing dst
// fails (after which the Writer stops accepting bytes).
func (w *Writer) WriteAt(p []byte, off int64) (int, error) {
	if w.l.size < 0 {
		return 0, errors.New("seal: WriteAt needs the body's size: use NewWriterSize")
	}
	if off < 0 || off > w.l.size || int64(len(p)) > w.l.size-off {
		return 0, fmt.Errorf("seal: write of %d bytes at offset %d is outside the body's %d bytes", len(p), off, w.l.size)
	}
	n := 0
	for n < len(p) {
		j := off >> w.l.shift
		within := int(off - j<<w.l.shift)
		segLen := w.l.segLen(j)
		take := min(len(p)-n, segLen-within)
		sb, err := w.acquire(j, within, off)
		if err != nil {
			return n, err
		}
		final := j == w.l.nseg-1
		switch {
		case within == 0 && take == segLen:
			// The whole segment at once: seal it straight from p.
			err = w.finish(j, sb, w.sealSegment(sb, p[n:n+take], j, final))
		default:
			copy(sb.b[within:], p[n:n+take])
			sb.n += take
			if sb.n == segLen {
				err = w.finish(j, sb, w.sealSegment(sb, sb.b[:segLen], j, final))
			} else {
				err = w.release(j, sb)
			}
		}
		if err != nil {
			return n, err
		}
		n += take
		off += int64(take)
	}
	return n, nil
}

// acquire returns the buffer of segment j for a write of its bytes from
// within on, at plaintext offset off, marking it busy.
func (w *Writer) acquire(j int64, within int, off int64) (*segBuf, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return nil, errClosed
	case w.err != nil:
		return nil, w.err
	case w.done.has(j):
		return nil, fmt.Errorf("seal: write at offset %d: segment %d is already written", off, j)
	}
	sb := w.open[j]
	if sb == nil {
		if within != 0 {
			return nil, fmt.Errorf("seal: write at offset %d starts inside segment %d, not begun: parts must start at multiples of the segment size (%d)", off, j, w.l.segSize)
		}
		sb = getBuf(w.pool, w.l.segSize)
		w.open[j] = sb
	}
	if sb.busy {
		return nil, fmt.Errorf("seal: write at offset %d: segment %d is being written by another call", off, j)
	}
	if sb.n != within {
		return nil, fmt.Errorf("seal: write at offset %d: segment %d expects offset %d next: a part's bytes must arrive in order", off, j, j<<w.l.shift+int64(sb.n))
	}
	sb.busy = true
	return sb, nil
}

// release ends a write that left segment j incomplete.
func (w *Writer) release(j int64, sb *segBuf) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	sb.busy = false
	if w.closed {
		// Abort ran meanwhile and left the busy buffer to us.
		delete(w.open, j)
		w.pool.Put(sb)
		return errClosed
	}
	return nil
}

// finish records the outcome of sealing segment j and recycles its buffer.
func (w *Writer) finish(j int64, sb *segBuf, err error) error {
	w.mu.Lock()
	delete(w.open, j)
	if err != nil {
		if w.err == nil {
			w.err = err
		}
	} else {
		w.done.add(j)
		w.ndone++
		w.sealed.Store(min(w.done.prefix()<<w.l.shift, w.l.size))
	}
	w.mu.Unlock()
	w.pool.Put(sb)
	return err
}

// sealSegment seals plain as segment j into sb.b and writes it to dst.
// plain is either sb.b[:len(plain)] (sealed in place) or does not overlap
// sb.b.
func (w *Writer) sealSegment(sb *segBuf, plain []byte, j int64, final bool) error {
	fillNonce(&sb.nonce, j, final)
	ct := w.aead.Seal(sb.b[:0], sb.nonce[:], plain, nil)
	n, err := w.dst.WriteAt(ct, w.l.segOff(j))
	if err == nil && n < len(ct) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("seal: write segment %d: %w", j, err)
	}
	return nil
}

func (w *Writer) check() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errClosed
	}
	return w.err
}

func (w *Writer) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

// Close finishes the body. For a Writer made by NewWriter it seals the
// last segment (empty if no byte was written); for one made by
// NewWriterSize it checks that every segment was written. It returns the
// first error writing dst, or reports what is missing. Close releases the
// Writer's buffers whatever the outcome; calling it again returns an
// error. It does not close dst.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errClosed
	}
	w.closed = true
	if w.l.size < 0 {
		tail := w.tail
		w.tail = nil
		defer w.pool.Put(tail)
		if w.err != nil {
			return w.err
		}
		if err := w.sealSegment(tail, tail.b[:tail.n], w.next, true); err != nil {
			return err
		}
		w.sealed.Store(w.next*int64(w.l.segSize) + int64(tail.n))
		return nil
	}
	busy := w.releaseOpen()
	switch {
	case w.err != nil:
		return w.err
	case busy:
		return errors.New("seal: Close called while a write was running")
	case w.ndone != w.l.nseg:
		return fmt.Errorf("seal: body incomplete: %d of %d segments written, the first missing one at offset %d", w.ndone, w.l.nseg, w.done.prefix()<<w.l.shift)
	}
	return nil
}

// releaseOpen recycles the buffers of segments begun but not finished,
// except those a running write holds (it recycles them itself). It
// reports whether there were such. Called with w.mu held.
func (w *Writer) releaseOpen() (busy bool) {
	for j, sb := range w.open {
		if sb.busy {
			busy = true
			continue
		}
		delete(w.open, j)
		w.pool.Put(sb)
	}
	return busy
}

// Abort gives up on the body: it releases the Writer's buffers and makes
// further writes fail. It writes nothing; the caller discards dst. It is a
// no-op after Close, so it may be deferred.
func (w *Writer) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	if w.tail != nil {
		w.pool.Put(w.tail)
		w.tail = nil
	}
	w.releaseOpen()
}

// spans is a set of segment indexes, kept as sorted, disjoint, non-adjacent
// half-open ranges. Parts complete their segments in order, so it holds
// about one range per part in flight, whatever the body's size.
type spans []span

type span struct{ start, end int64 }

// find returns the index of the first range ending at or after j.
func (s spans) find(j int64) int {
	return sort.Search(len(s), func(i int) bool { return s[i].end >= j })
}

func (s spans) has(j int64) bool {
	i := s.find(j + 1)
	return i < len(s) && s[i].start <= j
}

// add inserts j, which must not be in s.
func (s *spans) add(j int64) {
	r := *s
	i := r.find(j) // r[i] is the first range that could end at j or hold j+1
	switch {
	case i < len(r) && r[i].end == j:
		r[i].end++
		if i+1 < len(r) && r[i+1].start == j+1 {
			r[i].end = r[i+1].end
			r = slices.Delete(r, i+1, i+2)
		}
	case i < len(r) && r[i].start == j+1:
		r[i].start--
	default:
		r = slices.Insert(r, i, span{j, j + 1})
	}
	*s = r
}

// prefix returns the number of segments sealed from the start on.
func (s spans) prefix() int64 {
	if len(s) > 0 && s[0].start == 0 {
		return s[0].end
	}
	return 0
}
