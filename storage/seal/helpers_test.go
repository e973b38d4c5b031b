package seal_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/objstore/objstore/storage/seal"
)

// memFile is an in-memory file, safe for concurrent use. Writes past the
// end grow it with zeros, like a sparse file.
type memFile struct {
	mu sync.Mutex
	b  []byte
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.b)
}

// testKey derives a deterministic master key for id.
func testKey(id uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], id)
	sum := sha256.Sum256(append([]byte("seal test key "), b[:]...))
	return sum[:]
}

// testKeyring returns a keyring of the test keys of ids, the first primary.
func testKeyring(t testing.TB, ids ...uint32) *seal.Keyring {
	t.Helper()
	keys := make(map[uint32][]byte)
	for _, id := range ids {
		keys[id] = testKey(id)
	}
	kr, err := seal.NewKeyring(ids[0], keys)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// sealBytes seals plain sequentially, in chunks of random sizes, with a
// Writer of unknown size.
func sealBytes(t testing.TB, kr *seal.Keyring, binding, plain []byte, segSize int) []byte {
	t.Helper()
	var f memFile
	w, err := seal.NewWriter(&f, kr, binding, seal.WithSegmentSize(segSize))
	if err != nil {
		t.Fatal(err)
	}
	writeChunks(t, w, plain, rand.New(rand.NewPCG(uint64(len(plain)), 7)), 3*segSize)
	return f.Bytes()
}

// writeChunks writes plain to w in chunks of 1 to most bytes drawn from r,
// and closes w.
func writeChunks(t testing.TB, w *seal.Writer, plain []byte, r *rand.Rand, most int) {
	t.Helper()
	for rest := plain; len(rest) > 0; {
		k := min(len(rest), 1+r.IntN(most))
		if n, err := w.Write(rest[:k]); err != nil || n != k {
			t.Fatalf("Write: %d, %v", n, err)
		}
		rest = rest[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func openBytes(data []byte, kr *seal.Keyring, binding []byte) (*seal.Reader, error) {
	return seal.Open(bytes.NewReader(data), int64(len(data)), kr, binding)
}

// mustFail checks that the sealed file data fails to open or to read
// with an error matching one of want (ErrCorrupt if none is given), and
// that no byte returned before the failure differs from plain.
func mustFail(t *testing.T, what string, data []byte, kr *seal.Keyring, binding, plain []byte, want ...error) {
	t.Helper()
	if len(want) == 0 {
		want = []error{seal.ErrCorrupt}
	}
	matches := func(err error) bool {
		for _, w := range want {
			if errors.Is(err, w) {
				return true
			}
		}
		return false
	}
	r, err := openBytes(data, kr, binding)
	if err != nil {
		if !matches(err) {
			t.Errorf("%s: Open: %v, want an error matching %v", what, err, want)
		}
		return
	}
	defer r.Close()
	buf := make([]byte, max(r.Size(), 1))
	n, err := r.ReadAt(buf, 0)
	if err == nil || err == io.EOF || !matches(err) {
		t.Errorf("%s: ReadAt: %d bytes, %v; want an error matching %v", what, n, err, want)
	}
	if n > len(plain) || !bytes.Equal(buf[:n], plain[:n]) {
		t.Errorf("%s: ReadAt returned %d bytes that are not the plaintext", what, n)
	}
	got, err := io.ReadAll(r)
	if err == nil || !matches(err) {
		t.Errorf("%s: Read: %d bytes, %v; want an error matching %v", what, len(got), err, want)
	}
	if len(got) > len(plain) || !bytes.Equal(got, plain[:len(got)]) {
		t.Errorf("%s: Read returned %d bytes that are not the plaintext", what, len(got))
	}
}

// eachKind runs fn once for each kind of body the package writes: sealed
// under a keyring, and checksummed in the clear (Unencrypted).
func eachKind(t *testing.T, fn func(t *testing.T, kr *seal.Keyring)) {
	t.Run("sealed", func(t *testing.T) { fn(t, testKeyring(t, 1, 2)) })
	t.Run("checksummed", func(t *testing.T) { fn(t, seal.Unencrypted) })
}
