package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sync"
)

// Format constants of version 1. See the package documentation.
const (
	// HeaderSize is the length of a sealed file's header. A Writer writes
	// the header when it is created, before any segment.
	HeaderSize = 48
	// TagSize is the number of bytes each segment grows by when sealed.
	TagSize = 16
	// DefaultSegmentSize is the plaintext segment size Writers use unless
	// told otherwise.
	DefaultSegmentSize = 64 << 10
	// MinSegmentSize and MaxSegmentSize bound the segment size, which must
	// also be a power of two. The upper bound caps the memory a reader
	// allocates for a file it has not authenticated yet.
	MinSegmentSize = 256
	MaxSegmentSize = 1 << 20
)

const (
	magic     = "OBJSEAL"
	version1  = 1
	offKeyID  = 8
	offSegLen = 12
	offSalt   = 16
	saltSize  = 32
	keySize   = 32
	nonceSize = 12
	kdfLabel  = "objstore seal v1"
)

// ErrCorrupt is matched (errors.Is) by the errors of reads and opens of a
// file that is not a valid sealed body for the given binding and keyring:
// a bad magic, header or length, a truncated, extended, reordered or
// spliced file, a file moved from another binding, a flipped bit, or a key
// with the right ID but the wrong bytes. These cannot be told apart, by
// design. No byte of a segment that fails is ever returned.
var ErrCorrupt = errors.New("seal: corrupt or tampered sealed body")

// ErrUnknownKey is matched by the error of opening a body sealed with a
// key ID the keyring does not hold. The message names the ID; Inspect
// returns it too.
var ErrUnknownKey = errors.New("seal: body sealed with a key not in the keyring")

// ErrUnsupportedVersion is matched by the error of opening a file that has
// the magic of a sealed body but a format version this build cannot read
// (most likely written by a newer build). It does not match ErrCorrupt, so
// that such bodies are not mistaken for damaged ones.
var ErrUnsupportedVersion = errors.New("seal: unsupported sealed body format version")

// header is the parsed form of a version 1 header.
type header struct {
	keyID   uint32
	segSize int
	clear   bool // a checksummed file (checksumMagic), not an encrypted one
	raw     [HeaderSize]byte
}

// newHeader makes the header of a new file, with a fresh salt: a
// checksummed file's when clear is set.
func newHeader(keyID uint32, segSize int, clear bool) header {
	h := header{keyID: keyID, segSize: segSize, clear: clear}
	if clear {
		copy(h.raw[:], checksumMagic)
	} else {
		copy(h.raw[:], magic)
	}
	h.raw[7] = version1
	binary.BigEndian.PutUint32(h.raw[offKeyID:], keyID)
	binary.BigEndian.PutUint32(h.raw[offSegLen:], uint32(segSize))
	rand.Read(h.raw[offSalt : offSalt+saltSize]) // never fails; crashes the program instead
	return h
}

// parseHeader validates raw, the first HeaderSize bytes of a file.
func parseHeader(raw []byte) (header, error) {
	var h header
	if len(raw) < HeaderSize {
		return h, fmt.Errorf("%w: header too short", ErrCorrupt)
	}
	switch string(raw[:len(magic)]) {
	case magic:
	case checksumMagic:
		h.clear = true
	default:
		return h, fmt.Errorf("%w: not a sealed body (bad magic)", ErrCorrupt)
	}
	if v := raw[len(magic)]; v != version1 {
		return h, fmt.Errorf("%w: version %d (this build reads version %d)", ErrUnsupportedVersion, v, version1)
	}
	copy(h.raw[:], raw)
	h.keyID = binary.BigEndian.Uint32(raw[offKeyID:])
	s := binary.BigEndian.Uint32(raw[offSegLen:])
	if !validSegSize(int64(s)) {
		return h, fmt.Errorf("%w: invalid segment size %d", ErrCorrupt, s)
	}
	h.segSize = int(s)
	return h, nil
}

// readHeader reads and parses the header at the start of src.
func readHeader(src io.ReaderAt) (header, error) {
	var raw [HeaderSize]byte
	n, err := src.ReadAt(raw[:], 0)
	if n < HeaderSize {
		if err == nil || errors.Is(err, io.EOF) {
			return header{}, fmt.Errorf("%w: file too short for a header (%d bytes)", ErrCorrupt, n)
		}
		return header{}, fmt.Errorf("seal: read header: %w", err)
	}
	return parseHeader(raw[:])
}

func validSegSize(s int64) bool {
	return s >= MinSegmentSize && s <= MaxSegmentSize && s&(s-1) == 0
}

// newAEAD derives the per-file key from the master key, the header and the
// binding, and returns AES-256-GCM under it; for a checksummed file,
// which has no key, it returns the CRC-32C "AEAD" seeded with the header
// and binding.
func newAEAD(master []byte, h *header, binding []byte) (cipher.AEAD, error) {
	if h.clear {
		return newCRC(h, binding), nil
	}
	info := make([]byte, 0, len(kdfLabel)+HeaderSize+len(binding))
	info = append(info, kdfLabel...)
	info = append(info, h.raw[:]...)
	info = append(info, binding...)
	key, err := hkdf.Key(sha256.New, master, h.raw[offSalt:offSalt+saltSize], string(info), keySize)
	if err != nil {
		return nil, fmt.Errorf("seal: derive file key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return aead, nil
}

// layout describes where a body's segments are.
type layout struct {
	segSize int
	shift   uint  // log2(segSize)
	size    int64 // plaintext size
	nseg    int64 // number of segments, ≥ 1
}

func newLayout(segSize int, size int64) layout {
	l := layout{segSize: segSize, shift: uint(bits.TrailingZeros(uint(segSize))), size: size}
	l.nseg = max(1, (size+int64(segSize)-1)>>l.shift)
	return l
}

// segLen is the plaintext length of segment j.
func (l *layout) segLen(j int64) int {
	if j < l.nseg-1 {
		return l.segSize
	}
	return int(l.size - j<<l.shift)
}

// segOff is the file offset of sealed segment j.
func (l *layout) segOff(j int64) int64 {
	return HeaderSize + j*int64(l.segSize+TagSize)
}

// fillNonce writes the nonce of segment j into n; final says whether j is
// the body's last segment.
func fillNonce(n *[nonceSize]byte, j int64, final bool) {
	n[0], n[1], n[2] = 0, 0, 0
	binary.BigEndian.PutUint64(n[3:11], uint64(j))
	n[11] = 0
	if final {
		n[11] = 1
	}
}

// maxPlain returns the largest plaintext size whose sealed size fits in an
// int64.
func maxPlain(segSize int) int64 {
	s := int64(segSize)
	nseg := (math.MaxInt64 - HeaderSize) / (s + TagSize)
	return nseg * s
}

// SealedSize returns the length of the file that seals plain bytes with
// segments of segSize plaintext bytes (0 means DefaultSegmentSize). It
// returns -1 if plain is negative, segSize is not a valid segment size, or
// the result would overflow an int64.
func SealedSize(plain int64, segSize int) int64 {
	if segSize == 0 {
		segSize = DefaultSegmentSize
	}
	if plain < 0 || !validSegSize(int64(segSize)) || plain > maxPlain(segSize) {
		return -1
	}
	l := newLayout(segSize, plain)
	return HeaderSize + plain + l.nseg*TagSize
}

// plainSize returns the plaintext size of a sealed file of fileSize bytes,
// or an error matching ErrCorrupt if no plaintext size yields that length.
func plainSize(fileSize int64, segSize int) (int64, error) {
	body := fileSize - HeaderSize
	full := int64(segSize + TagSize)
	if body < TagSize {
		return 0, fmt.Errorf("%w: file of %d bytes is too short", ErrCorrupt, fileSize)
	}
	n, last := body/full, body%full
	switch {
	case last == 0:
		return n * int64(segSize), nil
	case last > TagSize:
		return n*int64(segSize) + last - TagSize, nil
	case last == TagSize && n == 0:
		return 0, nil // the empty body
	}
	return 0, fmt.Errorf("%w: file length %d is not a valid sealed length for %d-byte segments", ErrCorrupt, fileSize, segSize)
}

// segBuf is a pooled segment buffer: room for one sealed segment, a nonce
// (kept here so it need not be allocated per segment), and the state of a
// segment being filled by Writer.WriteAt.
type segBuf struct {
	b     []byte
	nonce [nonceSize]byte
	n     int  // plaintext bytes held (Writer, Reader cache)
	busy  bool // a WriteAt call is filling it
}

// pools holds one pool per segment size, indexed by log2 of the size.
var pools [32]sync.Pool

func poolFor(segSize int) *sync.Pool {
	return &pools[bits.TrailingZeros(uint(segSize))]
}

func getBuf(p *sync.Pool, segSize int) *segBuf {
	if sb, ok := p.Get().(*segBuf); ok {
		sb.n, sb.busy = 0, false
		return sb
	}
	return &segBuf{b: make([]byte, segSize+TagSize)}
}

// PlainSize returns the plaintext size of a sealed file of fileSize bytes
// written with segments of segSize bytes, or an error matching ErrCorrupt
// if no plaintext size yields that length. It reads nothing: a caller that
// knows the segment size (the default, for everything objstore writes)
// can size a body from its file's length alone.
func PlainSize(fileSize int64, segSize int) (int64, error) { return plainSize(fileSize, segSize) }
