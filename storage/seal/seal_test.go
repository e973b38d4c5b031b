package seal_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/objstore/objstore/storage/seal"
)

const testSeg = seal.MinSegmentSize * 4 // 1 KiB: small files, many segments

var binding = []byte("01J0OBJECTULIDBYTES-A")

// writeMode seals plain into a memFile one way.
type writeMode struct {
	name string
	fn   func(t *testing.T, kr *seal.Keyring, plain []byte, s int) []byte
}

var writeModes = []writeMode{
	{"stream", func(t *testing.T, kr *seal.Keyring, plain []byte, s int) []byte {
		return sealBytes(t, kr, binding, plain, s)
	}},
	{"sized-stream", func(t *testing.T, kr *seal.Keyring, plain []byte, s int) []byte {
		var f memFile
		w, err := seal.NewWriterSize(&f, kr, binding, int64(len(plain)), seal.WithSegmentSize(s))
		if err != nil {
			t.Fatal(err)
		}
		writeChunks(t, w, plain, rand.New(rand.NewPCG(3, uint64(len(plain)))), 2*s)
		return f.Bytes()
	}},
	{"whole", func(t *testing.T, kr *seal.Keyring, plain []byte, s int) []byte {
		var f memFile
		w, err := seal.NewWriterSize(&f, kr, binding, int64(len(plain)), seal.WithSegmentSize(s))
		if err != nil {
			t.Fatal(err)
		}
		if n, err := w.WriteAt(plain, 0); err != nil || n != len(plain) {
			t.Fatalf("WriteAt: %d, %v", n, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return f.Bytes()
	}},
	{"parallel-parts", func(t *testing.T, kr *seal.Keyring, plain []byte, s int) []byte {
		return sealParts(t, kr, plain, s, uint64(len(plain)))
	}},
}

// sealParts seals plain as parts of random segment-aligned sizes, written
// concurrently in shuffled order, each in chunks of random sizes.
func sealParts(t *testing.T, kr *seal.Keyring, plain []byte, s int, seed uint64) []byte {
	t.Helper()
	var f memFile
	w, err := seal.NewWriterSize(&f, kr, binding, int64(len(plain)), seal.WithSegmentSize(s))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 11))
	var starts []int
	for off := 0; off < len(plain); off += s * (1 + r.IntN(3)) {
		starts = append(starts, off)
	}
	r.Shuffle(len(starts), func(i, j int) { starts[i], starts[j] = starts[j], starts[i] })
	ends := make(map[int]int)
	for _, st := range starts {
		end := len(plain)
		for _, o := range starts {
			if o > st && o < end {
				end = o
			}
		}
		ends[st] = end
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(starts))
	for i, st := range starts {
		chunk := 1 + r.IntN(s+s/2)
		wg.Go(func() {
			if i%2 == 0 {
				time.Sleep(time.Duration(r2(i)) * time.Microsecond)
			}
			pw := io.NewOffsetWriter(w, int64(st))
			for off := st; off < ends[st]; {
				k := min(chunk, ends[st]-off)
				if _, err := pw.Write(plain[off : off+k]); err != nil {
					errs <- err
					return
				}
				off += k
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := w.Sealed(); got != int64(len(plain)) {
		t.Fatalf("Sealed() = %d after Close, want %d", got, len(plain))
	}
	return f.Bytes()
}

func r2(i int) int { return (i * 37) % 200 }

func TestRoundTrip(t *testing.T) { eachKind(t, testRoundTrip) }

func testRoundTrip(t *testing.T, kr *seal.Keyring) {
	type tc struct{ size, seg int }
	var cases []tc
	for _, n := range []int{0, 1, testSeg - 1, testSeg, testSeg + 1, 3 * testSeg, 3*testSeg + 17} {
		cases = append(cases, tc{n, testSeg})
	}
	cases = append(cases, tc{3<<20 + 5, seal.DefaultSegmentSize})
	for _, c := range cases {
		plain := randomBytes(c.size, uint64(c.size))
		for _, m := range writeModes {
			t.Run(fmt.Sprintf("%d/%d/%s", c.size, c.seg, m.name), func(t *testing.T) {
				data := m.fn(t, kr, plain, c.seg)
				if want := seal.SealedSize(int64(c.size), c.seg); int64(len(data)) != want {
					t.Fatalf("sealed %d bytes, SealedSize says %d", len(data), want)
				}
				checkReader(t, data, kr, plain)
			})
		}
	}
}

// checkReader opens data and compares every way of reading it with plain.
func checkReader(t *testing.T, data []byte, kr *seal.Keyring, plain []byte) {
	t.Helper()
	r, err := openBytes(data, kr, binding)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	size := int64(len(plain))
	if r.Size() != size || r.KeyID() != kr.Primary() {
		t.Fatalf("Size %d KeyID %d, want %d %d", r.Size(), r.KeyID(), size, kr.Primary())
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
	}
	full := make([]byte, size+100)
	n, err := r.ReadAt(full, 0)
	if int64(n) != size || err != io.EOF || !bytes.Equal(full[:n], plain) {
		t.Fatalf("ReadAt(all+100): %d, %v", n, err)
	}
	rng := rand.New(rand.NewPCG(uint64(size), 1))
	for range 60 {
		off := rng.Int64N(size + 2)
		p := make([]byte, rng.IntN(3*r.SegmentSize()+50))
		n, err := r.ReadAt(p, off)
		checkReadAt(t, plain, p, off, n, err)
	}
	// Read with buffers of random sizes, after a Seek.
	for range 10 {
		start := rng.Int64N(size + 1)
		if pos, err := r.Seek(start, io.SeekStart); err != nil || pos != start {
			t.Fatalf("Seek: %d, %v", pos, err)
		}
		var out []byte
		for {
			p := make([]byte, 1+rng.IntN(2*r.SegmentSize()+40))
			n, err := r.Read(p)
			out = append(out, p[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(out, plain[start:]) {
			t.Fatalf("Read from %d: %d bytes, want %d", start, len(out), size-start)
		}
	}
}

// checkReadAt checks one ReadAt result against io.ReaderAt's contract.
func checkReadAt(t *testing.T, plain, p []byte, off int64, n int, err error) {
	t.Helper()
	size := int64(len(plain))
	want := max(0, min(int64(len(p)), size-off))
	if int64(n) != want {
		t.Fatalf("ReadAt(%d bytes at %d) of %d = %d, %v; want %d bytes", len(p), off, size, n, err, want)
	}
	if !bytes.Equal(p[:n], plain[min(off, size):min(off, size)+int64(n)]) {
		t.Fatalf("ReadAt(%d bytes at %d): wrong bytes", len(p), off)
	}
	switch {
	case n < len(p) && err != io.EOF:
		t.Fatalf("ReadAt(%d bytes at %d) short with %v, want io.EOF", len(p), off, err)
	case n == len(p) && err != nil && err != io.EOF:
		t.Fatalf("ReadAt(%d bytes at %d): %v", len(p), off, err)
	case n == len(p) && err == io.EOF && off+int64(n) != size:
		t.Fatalf("ReadAt(%d bytes at %d): io.EOF before the end", len(p), off)
	}
}

func TestReadAtEOF(t *testing.T) {
	kr := testKeyring(t, 1)
	for _, size := range []int{0, 1, testSeg, 2*testSeg + 3} {
		plain := randomBytes(size, 2)
		r, err := openBytes(sealBytes(t, kr, binding, plain, testSeg), kr, binding)
		if err != nil {
			t.Fatal(err)
		}
		s := int64(size)
		// Ending exactly at the end: all bytes, nil (io.ReaderAt allows EOF too).
		if size > 0 {
			p := make([]byte, size/2+1)
			n, err := r.ReadAt(p, s-int64(len(p)))
			checkReadAt(t, plain, p, s-int64(len(p)), n, err)
			if err != nil {
				t.Errorf("size %d: read ending at the end: %v", size, err)
			}
		}
		// Past the end: short, io.EOF.
		p := make([]byte, 10)
		n, err := r.ReadAt(p, max(0, s-3))
		checkReadAt(t, plain, p, max(0, s-3), n, err)
		// At and beyond the end: 0, io.EOF.
		for _, off := range []int64{s, s + 1, s + 1<<40} {
			if n, err := r.ReadAt(p, off); n != 0 || err != io.EOF {
				t.Errorf("size %d: ReadAt at %d: %d, %v", size, off, n, err)
			}
		}
		if _, err := r.ReadAt(p, -1); err == nil {
			t.Errorf("size %d: ReadAt at -1 succeeded", size)
		}
		if n, err := r.Read(make([]byte, size+1)); n != size || (err != nil && err != io.EOF) {
			t.Errorf("size %d: Read: %d, %v", size, n, err)
		}
		if n, err := r.Read(p); n != 0 || err != io.EOF {
			t.Errorf("size %d: Read at the end: %d, %v", size, n, err)
		}
	}
}

func TestSeek(t *testing.T) {
	kr := testKeyring(t, 1)
	plain := randomBytes(5*testSeg+9, 3)
	r, err := openBytes(sealBytes(t, kr, binding, plain, testSeg), kr, binding)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(plain))
	seek := func(off int64, whence int, want int64) {
		t.Helper()
		if pos, err := r.Seek(off, whence); err != nil || pos != want {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d", off, whence, pos, err, want)
		}
	}
	read := func(n int, want []byte) {
		t.Helper()
		p := make([]byte, n)
		got, err := io.ReadFull(r, p)
		if !bytes.Equal(p[:got], want) {
			t.Fatalf("read %d bytes, %v: wrong bytes", got, err)
		}
	}
	seek(0, io.SeekEnd, size)
	seek(-10, io.SeekEnd, size-10)
	read(10, plain[size-10:])
	seek(testSeg-5, io.SeekStart, testSeg-5)
	read(10, plain[testSeg-5:testSeg+5])
	seek(2*testSeg, io.SeekCurrent, 3*testSeg+5)
	read(3, plain[3*testSeg+5:3*testSeg+8])
	seek(size+5, io.SeekStart, size+5)
	if n, err := r.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Fatalf("Read past the end: %d, %v", n, err)
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("Seek to -1 succeeded")
	}
	if _, err := r.Seek(0, 7); err == nil {
		t.Fatal("Seek with a bad whence succeeded")
	}
	// Close only recycles the buffer; the Reader keeps working.
	r.Close()
	seek(1, io.SeekStart, 1)
	read(testSeg, plain[1:testSeg+1])
}

func TestConcurrentReads(t *testing.T) { eachKind(t, testConcurrentReads) }

func testConcurrentReads(t *testing.T, kr *seal.Keyring) {
	plain := randomBytes(40*testSeg+77, 4)
	r, err := openBytes(sealBytes(t, kr, binding, plain, testSeg), kr, binding)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			for range 200 {
				off := rng.Int64N(int64(len(plain)))
				p := make([]byte, rng.IntN(4*testSeg))
				n, err := r.ReadAt(p, off)
				if (err != nil && err != io.EOF) || !bytes.Equal(p[:n], plain[off:off+int64(n)]) {
					t.Errorf("ReadAt(%d, %d): %d, %v", len(p), off, n, err)
					return
				}
			}
		})
	}
	// Read and Seek may run alongside ReadAt.
	wg.Go(func() {
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("ReadAll: %d, %v", len(got), err)
		}
	})
	wg.Wait()
}

func TestServeContent(t *testing.T) { eachKind(t, testServeContent) }

func testServeContent(t *testing.T, kr *seal.Keyring) {
	plain := randomBytes(300<<10+123, 5)
	r, err := openBytes(sealBytes(t, kr, binding, plain, seal.DefaultSegmentSize), kr, binding)
	if err != nil {
		t.Fatal(err)
	}
	for _, rg := range [][2]int{{0, 0}, {1000, 70000}, {65535, 65536}, {200000, len(plain) - 1}} {
		req := httptest.NewRequest("GET", "/o", nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", rg[0], rg[1]))
		rec := httptest.NewRecorder()
		http.ServeContent(rec, req, "o", time.Time{}, r)
		if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), plain[rg[0]:rg[1]+1]) {
			t.Errorf("range %v: status %d, %d bytes", rg, rec.Code, rec.Body.Len())
		}
	}
	rec := httptest.NewRecorder()
	http.ServeContent(rec, httptest.NewRequest("GET", "/o", nil), "o", time.Time{}, r)
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), plain) {
		t.Errorf("whole body: status %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

func TestKeyRotation(t *testing.T) {
	old := testKeyring(t, 1)
	plain := randomBytes(2*testSeg+5, 6)
	data := sealBytes(t, old, binding, plain, testSeg)

	rotated := testKeyring(t, 2, 1)
	r, err := openBytes(data, rotated, binding)
	if err != nil {
		t.Fatal(err)
	}
	if r.KeyID() != 1 {
		t.Fatalf("KeyID = %d, want 1", r.KeyID())
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("ReadAll: %d, %v", len(got), err)
	}
	info, err := seal.Inspect(bytes.NewReader(data))
	if err != nil || info.KeyID != 1 || info.SegmentSize != testSeg {
		t.Fatalf("Inspect = %+v, %v", info, err)
	}

	// Reseal under the new primary, as a scrub would.
	var f memFile
	w, err := seal.NewWriterSize(&f, rotated, binding, r.Size())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, io.NewSectionReader(r, 0, r.Size())); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	resealed := f.Bytes()
	r2, err := openBytes(resealed, testKeyring(t, 2), binding)
	if err != nil || r2.KeyID() != 2 {
		t.Fatalf("open resealed: %v", err)
	}
	// A node that does not have key 2 yet cannot open it, and says why.
	_, err = openBytes(resealed, old, binding)
	if !errors.Is(err, seal.ErrUnknownKey) || !strings.Contains(err.Error(), "key ID 2") {
		t.Fatalf("open with the old keyring: %v, want ErrUnknownKey naming key ID 2", err)
	}
	if errors.Is(err, seal.ErrCorrupt) {
		t.Fatalf("unknown key reported as corrupt: %v", err)
	}
}

func TestNoPlaintextOnDisk(t *testing.T) {
	kr := testKeyring(t, 1)
	marker := []byte("objstore-plaintext-marker-0123456789/")
	plain := bytes.Repeat(marker, (3*testSeg+17)/len(marker)+1)
	a := sealBytes(t, kr, binding, plain, testSeg)
	b := sealBytes(t, kr, binding, plain, testSeg)
	for i := 0; i+16 <= len(marker); i++ {
		if bytes.Contains(a, marker[i:i+16]) {
			t.Fatalf("sealed file holds plaintext %q", marker[i:i+16])
		}
	}
	// A fresh salt per file: the same body never seals to the same bytes.
	if bytes.Equal(a[seal.HeaderSize:], b[seal.HeaderSize:]) || bytes.Equal(a[:seal.HeaderSize], b[:seal.HeaderSize]) {
		t.Fatal("two seals of one body are identical")
	}
}

func TestSealedSize(t *testing.T) {
	s := int64(seal.DefaultSegmentSize)
	for _, c := range []struct{ plain, want int64 }{
		{0, 48 + 16},
		{1, 48 + 1 + 16},
		{s, 48 + s + 16},
		{s + 1, 48 + s + 1 + 32},
		{3 * s, 48 + 3*s + 48},
	} {
		if got := seal.SealedSize(c.plain, 0); got != c.want {
			t.Errorf("SealedSize(%d) = %d, want %d", c.plain, got, c.want)
		}
	}
	for _, bad := range []struct {
		plain int64
		seg   int
	}{{-1, 0}, {1, 1000}, {1, 128}, {1, 2 << 20}, {1<<63 - 100, 0}, {1<<63 - 1, 256}} {
		if got := seal.SealedSize(bad.plain, bad.seg); got != -1 {
			t.Errorf("SealedSize(%d, %d) = %d, want -1", bad.plain, bad.seg, got)
		}
	}
}

func TestOpenPartialFollowsWriter(t *testing.T) { eachKind(t, testOpenPartialFollowsWriter) }

func testOpenPartialFollowsWriter(t *testing.T, kr *seal.Keyring) {
	plain := randomBytes(37*testSeg+100, 8)
	var f memFile
	w, err := seal.NewWriterSize(&f, kr, binding, int64(len(plain)), seal.WithSegmentSize(testSeg))
	if err != nil {
		t.Fatal(err)
	}
	// The header is on disk as soon as the Writer exists.
	r, err := seal.OpenPartial(&f, kr, binding, int64(len(plain)))
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != int64(len(plain)) {
		t.Fatalf("Size = %d", r.Size())
	}
	// Nothing is sealed yet: reading fails, and says the body is not there.
	if _, err := r.ReadAt(make([]byte, 1), 0); !errors.Is(err, seal.ErrCorrupt) {
		t.Fatalf("read before any write: %v", err)
	}
	done := make(chan struct{})
	var followErr error
	go func() {
		defer close(done)
		var seen int64
		for seen < int64(len(plain)) {
			s := w.Sealed()
			if s < seen {
				followErr = fmt.Errorf("Sealed went back from %d to %d", seen, s)
				return
			}
			if s > seen {
				p := make([]byte, s-seen)
				if _, err := r.ReadAt(p, seen); err != nil && err != io.EOF {
					followErr = err
					return
				}
				if !bytes.Equal(p, plain[seen:s]) {
					followErr = fmt.Errorf("follower read wrong bytes at %d", seen)
					return
				}
				seen = s
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	// Two parts in parallel; the second one first, so the prefix waits.
	half := 19 * testSeg
	var wg sync.WaitGroup
	for _, part := range [][2]int{{half, len(plain)}, {0, half}} {
		wg.Go(func() {
			if part[0] == 0 {
				time.Sleep(2 * time.Millisecond)
			}
			for off := part[0]; off < part[1]; off += 700 {
				end := min(off+700, part[1])
				if _, err := w.WriteAt(plain[off:end], int64(off)); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(10 * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
	if followErr != nil {
		t.Fatal(followErr)
	}
	checkReader(t, f.Bytes(), kr, plain)
}

func TestSealedProgressUnknownSize(t *testing.T) {
	kr := testKeyring(t, 1)
	var f memFile
	w, err := seal.NewWriter(&f, kr, binding, seal.WithSegmentSize(testSeg))
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != -1 || w.SegmentSize() != testSeg || w.KeyID() != 1 {
		t.Fatalf("Size %d SegmentSize %d KeyID %d", w.Size(), w.SegmentSize(), w.KeyID())
	}
	w.Write(make([]byte, testSeg))
	if got := w.Sealed(); got != 0 {
		t.Fatalf("Sealed = %d: the last segment must wait for more bytes or Close", got)
	}
	w.Write(make([]byte, 1))
	if got := w.Sealed(); got != testSeg {
		t.Fatalf("Sealed = %d, want %d", got, testSeg)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := w.Sealed(); got != testSeg+1 {
		t.Fatalf("Sealed after Close = %d", got)
	}
}
