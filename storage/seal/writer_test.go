package seal_test

import (
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/objstore/objstore/storage/seal"
)

func newSized(t *testing.T, size int64) (*seal.Writer, *memFile) {
	t.Helper()
	var f memFile
	w, err := seal.NewWriterSize(&f, testKeyring(t, 1), binding, size, seal.WithSegmentSize(testSeg))
	if err != nil {
		t.Fatal(err)
	}
	return w, &f
}

func wantErr(t *testing.T, what string, err error, substr string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), substr) {
		t.Errorf("%s: %v, want an error containing %q", what, err, substr)
	}
}

func TestWriterMisuse(t *testing.T) {
	kr := testKeyring(t, 1)
	var f memFile
	if _, err := seal.NewWriter(&f, nil, binding); err == nil {
		t.Error("nil keyring accepted")
	}
	if _, err := seal.NewWriter(&f, kr, nil); err == nil {
		t.Error("empty binding accepted")
	}
	for _, s := range []int{0, 100, 1000, 128, 2 << 20} {
		if _, err := seal.NewWriter(&f, kr, binding, seal.WithSegmentSize(s)); err == nil {
			t.Errorf("segment size %d accepted", s)
		}
	}
	if _, err := seal.NewWriterSize(&f, kr, binding, -1); err == nil {
		t.Error("negative size accepted")
	}
	if _, err := seal.NewWriterSize(&f, kr, binding, 1<<63-1); err == nil {
		t.Error("size 2^63-1 accepted")
	}

	w, _ := seal.NewWriter(&f, kr, binding)
	_, err := w.WriteAt([]byte("x"), 0)
	wantErr(t, "WriteAt without a size", err, "NewWriterSize")

	w, _ = newSized(t, 3*testSeg+5)
	_, err = w.WriteAt(make([]byte, 10), 3*testSeg)
	wantErr(t, "write past the end", err, "outside")
	_, err = w.WriteAt(make([]byte, 1), -1)
	wantErr(t, "negative offset", err, "outside")
	_, err = w.WriteAt(make([]byte, 10), testSeg+1)
	wantErr(t, "part starting mid-segment", err, "multiples of the segment size")
	if _, err := w.WriteAt(make([]byte, 10), testSeg); err != nil {
		t.Fatal(err)
	}
	_, err = w.WriteAt(make([]byte, 10), testSeg+20)
	wantErr(t, "bytes out of order", err, "in order")
	_, err = w.WriteAt(make([]byte, 10), testSeg)
	wantErr(t, "segment restarted", err, "in order")
	if _, err := w.WriteAt(make([]byte, testSeg), 0); err != nil {
		t.Fatal(err)
	}
	_, err = w.WriteAt(make([]byte, testSeg), 0)
	wantErr(t, "segment written twice", err, "already written")
	err = w.Close()
	wantErr(t, "Close of an incomplete body", err, "incomplete: 1 of 4 segments written, the first missing one at offset 1024")
	wantErr(t, "second Close", w.Close(), "closed")
	_, err = w.WriteAt(make([]byte, 1), 3*testSeg)
	wantErr(t, "WriteAt after Close", err, "closed")

	w, _ = newSized(t, 10)
	w.Abort()
	_, err = w.Write([]byte("x"))
	wantErr(t, "Write after Abort", err, "closed")
	w.Abort()

	w, _ = seal.NewWriter(&f, kr, binding)
	w.Write([]byte("abc"))
	w.Abort()
	_, err = w.Write([]byte("x"))
	wantErr(t, "Write after Abort", err, "closed")
	wantErr(t, "Close after Abort", w.Close(), "closed")

	w, _ = newSized(t, 10)
	if _, err := w.Write(make([]byte, 11)); err == nil {
		t.Error("sized Write past the declared size accepted")
	}
}

// failAfter is a WriterAt that fails once it has accepted limit bytes.
type failAfter struct {
	memFile
	limit atomic.Int64
}

var errDiskFull = errors.New("disk full")

func (f *failAfter) WriteAt(p []byte, off int64) (int, error) {
	if f.limit.Add(-int64(len(p))) < 0 {
		return 0, errDiskFull
	}
	return f.memFile.WriteAt(p, off)
}

func TestWriterDestinationFails(t *testing.T) {
	kr := testKeyring(t, 1)
	body := make([]byte, 5*testSeg)

	f := &failAfter{}
	f.limit.Store(seal.HeaderSize - 1)
	if _, err := seal.NewWriter(f, kr, binding); !errors.Is(err, errDiskFull) {
		t.Errorf("header write failure: %v", err)
	}

	f = &failAfter{}
	f.limit.Store(seal.HeaderSize + 2*(testSeg+seal.TagSize))
	w, err := seal.NewWriter(f, kr, binding, seal.WithSegmentSize(testSeg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(body); !errors.Is(err, errDiskFull) {
		t.Errorf("Write: %v", err)
	}
	if _, err := w.Write(body[:1]); !errors.Is(err, errDiskFull) {
		t.Errorf("Write after a failure: %v", err)
	}
	if err := w.Close(); !errors.Is(err, errDiskFull) {
		t.Errorf("Close after a failure: %v", err)
	}

	f = &failAfter{}
	f.limit.Store(seal.HeaderSize + 2*(testSeg+seal.TagSize))
	w, err = seal.NewWriterSize(f, kr, binding, int64(len(body)), seal.WithSegmentSize(testSeg))
	if err != nil {
		t.Fatal(err)
	}
	n, err := w.WriteAt(body, 0)
	if !errors.Is(err, errDiskFull) || n != 2*testSeg {
		t.Errorf("WriteAt: %d, %v; want %d, disk full", n, err, 2*testSeg)
	}
	if w.Sealed() != 2*testSeg {
		t.Errorf("Sealed = %d", w.Sealed())
	}
	if _, err := w.WriteAt(body[:testSeg], 4*testSeg); !errors.Is(err, errDiskFull) {
		t.Errorf("WriteAt after a failure: %v", err)
	}
	if err := w.Close(); !errors.Is(err, errDiskFull) {
		t.Errorf("Close after a failure: %v", err)
	}
}

// errReaderAt fails every read after the header.
type errReaderAt struct{ data []byte }

var errIO = errors.New("input/output error")

func (e errReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < seal.HeaderSize {
		return copy(p, e.data[off:]), nil
	}
	return 0, errIO
}

func TestReaderSourceFails(t *testing.T) {
	kr := testKeyring(t, 1)
	data := sealBytes(t, kr, binding, make([]byte, 100), testSeg)
	_, err := seal.Open(errReaderAt{data}, int64(len(data)), kr, binding)
	if !errors.Is(err, errIO) || errors.Is(err, seal.ErrCorrupt) {
		t.Fatalf("Open over a failing disk: %v, want the I/O error, not ErrCorrupt", err)
	}
	r, err := seal.OpenPartial(errReaderAt{data}, kr, binding, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(make([]byte, 10), 0); !errors.Is(err, errIO) {
		t.Fatalf("ReadAt over a failing disk: %v", err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, errIO) {
		t.Fatalf("Read over a failing disk: %v", err)
	}
	if _, err := seal.OpenPartial(errReaderAt{data}, kr, binding, -1); err == nil {
		t.Fatal("OpenPartial with a negative size succeeded")
	}
}

func TestNoAllocationPerSegment(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers")
	}
	kr := testKeyring(t, 1)
	plain := randomBytes(1<<20, 13)
	dst := &memFile{b: make([]byte, seal.SealedSize(int64(len(plain)), testSeg))}
	sealAllocs := func(segSize int) float64 {
		return testing.AllocsPerRun(20, func() {
			w, err := seal.NewWriterSize(dst, kr, binding, int64(len(plain)), seal.WithSegmentSize(segSize))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.WriteAt(plain, 0); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	// 1024 segments of 1 KiB against 16 of 64 KiB: the same allocations.
	small, large := sealAllocs(testSeg), sealAllocs(seal.DefaultSegmentSize)
	if small > large+2 {
		t.Errorf("sealing allocates per segment: %.0f allocations for 1024 segments, %.0f for 16", small, large)
	}
	data := sealBytes(t, kr, binding, plain, testSeg)
	r, err := openBytes(data, kr, binding)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(plain))
	if a := testing.AllocsPerRun(20, func() { r.ReadAt(buf, 0) }); a > 0 {
		t.Errorf("ReadAt of 1024 segments: %.1f allocations", a)
	}
	if a := testing.AllocsPerRun(100, func() { r.ReadAt(buf[:100], 5000) }); a > 0 {
		t.Errorf("small ReadAt: %.1f allocations", a)
	}
	if a := testing.AllocsPerRun(20, func() {
		r.Seek(0, io.SeekStart)
		for {
			if _, err := r.Read(buf[:3000]); err != nil {
				break
			}
		}
	}); a > 0 {
		t.Errorf("Read: %.1f allocations", a)
	}
}
