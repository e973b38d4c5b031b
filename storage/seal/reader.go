package seal

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Reader gives access to the plaintext of a sealed body. It implements
// io.ReaderAt, io.ReadSeeker and io.Closer, and Size reports the plaintext
// size, so http.ServeContent can serve ranges straight from it. Each read
// opens only the segments it touches and returns only authenticated bytes:
// a segment that fails yields an error matching ErrCorrupt, with the
// count of the bytes before it.
//
// ReadAt is safe for concurrent use, including with Read and Seek; Read,
// Seek and Close share the Reader's position and one cached segment, and
// are not safe for concurrent use with one another. The Reader never
// closes src: the caller closes it after the Reader's last use.
type Reader struct {
	src   io.ReaderAt
	aead  cipher.AEAD
	l     layout
	keyID uint32
	clear bool
	pool  *sync.Pool

	pos      int64   // Read and Seek's position
	cache    *segBuf // decrypted segment cacheSeg, for Read; nil after Close
	cacheSeg int64   // -1 when cache holds nothing
}

// Open opens the sealed body held in the first srcSize bytes of src (for
// an *os.File, its size from Stat). It reads the header, derives the
// file's key from the keyring and binding (which must be the binding the
// body was sealed with), and authenticates the last segment, so that the
// header, the binding, the key and Size are all verified when Open
// returns. Errors match ErrCorrupt, ErrUnknownKey or
// ErrUnsupportedVersion, wrap the I/O errors of src, or report a nil
// keyring or an empty binding. Call Close to recycle the
// Reader's buffer; the Reader keeps no reference to kr or binding.
func Open(src io.ReaderAt, srcSize int64, kr *Keyring, binding []byte) (*Reader, error) {
	h, aead, err := openHeader(src, kr, binding)
	if err != nil {
		return nil, err
	}
	size, err := plainSize(srcSize, h.segSize)
	if err != nil {
		return nil, err
	}
	r := newReader(src, aead, &h, size)
	// Authenticating the last segment proves the length: a file cut at a
	// segment boundary, or extended, has no valid last segment.
	last := r.l.nseg - 1
	pt, err := r.openSegment(last, r.cache.b, r.cache)
	if err != nil {
		r.Close()
		return nil, err
	}
	r.cache.n, r.cacheSeg = len(pt), last
	return r, nil
}

// OpenPartial opens a body that may still be being written, by a Writer
// made by NewWriterSize(…, plainSize) whose header is on src (the Writer
// writes it when created). Unlike Open it checks neither the file's length
// nor its last segment, so Size is plainSize as claimed; reads
// authenticate the segments they touch as usual. The caller must read
// only bytes it knows to be sealed, such as [0, Writer.Sealed()) or the
// parts whose WriteAt calls returned: a segment not yet on src fails as
// ErrCorrupt. Once the Writer is closed, the Reader reads the whole body.
// Errors are those of Open.
func OpenPartial(src io.ReaderAt, kr *Keyring, binding []byte, plainSize int64) (*Reader, error) {
	h, aead, err := openHeader(src, kr, binding)
	if err != nil {
		return nil, err
	}
	if plainSize < 0 || plainSize > maxPlain(h.segSize) {
		return nil, fmt.Errorf("seal: invalid body size %d", plainSize)
	}
	return newReader(src, aead, &h, plainSize), nil
}

func openHeader(src io.ReaderAt, kr *Keyring, binding []byte) (header, cipher.AEAD, error) {
	if kr == nil {
		return header{}, nil, errors.New("seal: nil keyring")
	}
	if len(binding) == 0 {
		return header{}, nil, errors.New("seal: empty binding: pass the object's identity")
	}
	h, err := readHeader(src)
	if err != nil {
		return h, nil, err
	}
	switch {
	case kr.clear && !h.clear:
		return h, nil, fmt.Errorf("%w: an encrypted body opened as a checksummed one", ErrCorrupt)
	case h.clear && !kr.clear:
		return h, nil, fmt.Errorf("%w: a checksummed body opened as an encrypted one", ErrCorrupt)
	case h.clear:
		return h, newCRC(&h, binding), nil
	}
	master, ok := kr.keys[h.keyID]
	if !ok {
		return h, nil, fmt.Errorf("%w: key ID %d (the keyring holds %v)", ErrUnknownKey, h.keyID, kr.IDs())
	}
	aead, err := newAEAD(master, &h, binding)
	return h, aead, err
}

func newReader(src io.ReaderAt, aead cipher.AEAD, h *header, size int64) *Reader {
	pool := poolFor(h.segSize)
	return &Reader{
		src:      src,
		aead:     aead,
		l:        newLayout(h.segSize, size),
		keyID:    h.keyID,
		clear:    h.clear,
		pool:     pool,
		cache:    getBuf(pool, h.segSize),
		cacheSeg: -1,
	}
}

// Size returns the size of the plaintext.
func (r *Reader) Size() int64 { return r.l.size }

// KeyID returns the ID of the key the body was sealed with, so that a
// scrub can reseal bodies whose key is not the keyring's primary.
func (r *Reader) KeyID() uint32 { return r.keyID }

// Encrypted reports whether the body is sealed (true) or checksummed in
// the clear (false).
func (r *Reader) Encrypted() bool { return !r.clear }

// SegmentSize returns the body's plaintext segment size.
func (r *Reader) SegmentSize() int { return r.l.segSize }

// openSegment reads sealed segment j into buf (which must hold the sealed
// segment, S+16 bytes for any segment) and decrypts it in place, using
// nb's nonce space. It returns the plaintext, a prefix of buf.
func (r *Reader) openSegment(j int64, buf []byte, nb *segBuf) ([]byte, error) {
	ct := buf[:r.l.segLen(j)+TagSize]
	n, err := r.src.ReadAt(ct, r.l.segOff(j))
	if n < len(ct) {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: segment %d of %d is truncated", ErrCorrupt, j, r.l.nseg)
		}
		return nil, fmt.Errorf("seal: read segment %d: %w", j, err)
	}
	fillNonce(&nb.nonce, j, j == r.l.nseg-1)
	pt, err := r.aead.Open(ct[:0], nb.nonce[:], ct, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: segment %d of %d fails authentication", ErrCorrupt, j, r.l.nseg)
	}
	return pt, nil
}

// ReadAt reads len(p) plaintext bytes at offset off, per io.ReaderAt: it
// returns fewer only with an error, io.EOF when the body ends first (a
// read ending exactly at the end returns nil). It may use all of p as
// scratch space: whole segments are decrypted in place in p. Safe for
// concurrent use.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("seal: negative offset")
	}
	if off >= r.l.size {
		return 0, io.EOF
	}
	want, eof := p, false
	if int64(len(p)) > r.l.size-off {
		want, eof = p[:r.l.size-off], true
	}
	sb := getBuf(r.pool, r.l.segSize) // nonce space, and room for a segment read aside
	defer r.pool.Put(sb)
	n := 0
	for n < len(want) {
		pos := off + int64(n)
		j := pos >> r.l.shift
		within := int(pos - j<<r.l.shift)
		segLen := r.l.segLen(j)
		if within == 0 && len(want)-n >= segLen && len(p)-n >= segLen+TagSize {
			// The segment and its tag fit in p: decrypt in place.
			if _, err := r.openSegment(j, p[n:], sb); err != nil {
				return n, err
			}
			n += segLen
			continue
		}
		pt, err := r.openSegment(j, sb.b, sb)
		if err != nil {
			return n, err
		}
		n += copy(want[n:], pt[within:])
	}
	if eof {
		return n, io.EOF
	}
	return n, nil
}

// Read reads plaintext at the Reader's position and advances it, per
// io.Reader. It keeps the last segment it decrypted, so sequential small
// reads open each segment once.
func (r *Reader) Read(p []byte) (int, error) {
	if r.pos >= r.l.size {
		return 0, io.EOF
	}
	if r.cache == nil {
		r.cache, r.cacheSeg = getBuf(r.pool, r.l.segSize), -1
	}
	n := 0
	for n < len(p) && r.pos < r.l.size {
		j := r.pos >> r.l.shift
		within := int(r.pos - j<<r.l.shift)
		if j != r.cacheSeg {
			segLen := r.l.segLen(j)
			if within == 0 && len(p)-n >= segLen+TagSize {
				// Large reads skip the cache: decrypt in place in p.
				if _, err := r.openSegment(j, p[n:], r.cache); err != nil {
					return n, err
				}
				n += segLen
				r.pos += int64(segLen)
				continue
			}
			r.cacheSeg = -1
			pt, err := r.openSegment(j, r.cache.b, r.cache)
			if err != nil {
				return n, err
			}
			r.cache.n, r.cacheSeg = len(pt), j
		}
		c := copy(p[n:], r.cache.b[within:r.cache.n])
		n += c
		r.pos += int64(c)
	}
	return n, nil
}

// Seek sets the position of the next Read, per io.Seeker, relative to the
// plaintext. Seeking past the end is allowed (Read then returns io.EOF);
// seeking before the start is an error.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = r.pos
	case io.SeekEnd:
		base = r.l.size
	default:
		return 0, fmt.Errorf("seal: invalid whence %d", whence)
	}
	if offset > 0 && base > (1<<63-1)-offset {
		return 0, errors.New("seal: seek position overflows")
	}
	pos := base + offset
	if pos < 0 {
		return 0, fmt.Errorf("seal: seek to negative position %d", pos)
	}
	r.pos = pos
	return pos, nil
}

// Close recycles the buffer Read uses. It does not close src. It always
// returns nil; the Reader stays usable (Read takes a new buffer), so Close
// only matters for reusing memory.
func (r *Reader) Close() error {
	if r.cache != nil {
		r.pool.Put(r.cache)
		r.cache, r.cacheSeg = nil, -1
	}
	return nil
}

// Info is what a sealed file's header says, unauthenticated.
type Info struct {
	// KeyID is the ID of the key the body claims to be sealed with.
	KeyID uint32
	// SegmentSize is the plaintext segment size.
	SegmentSize int
	// Encrypted is false for a checksummed body in the clear.
	Encrypted bool
}

// Inspect reads the header at the start of src without any key, for
// tools that must tell which key sealed a body even when the keyring
// lacks it (a scrub looking for bodies to reseal). Nothing it returns is
// authenticated: use Open to trust a body. Errors match ErrCorrupt or
// ErrUnsupportedVersion, or are src's I/O errors, wrapped.
func Inspect(src io.ReaderAt) (Info, error) {
	h, err := readHeader(src)
	if err != nil {
		return Info{}, err
	}
	return Info{KeyID: h.keyID, SegmentSize: h.segSize, Encrypted: !h.clear}, nil
}
