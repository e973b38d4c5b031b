package seal_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/objstore/objstore/storage/seal"
)

var fuzzBinding = []byte("fuzz-object")

// FuzzOpen feeds arbitrary bytes to Open and OpenPartial as a sealed file:
// they must never panic, and must either fail with one of the package's
// sentinels or return exactly the plaintext size they declare.
func FuzzOpen(f *testing.F) {
	kr := testKeyring(f, 1, 2)
	for _, n := range []int{0, 1, 255, 256, 257, 700} {
		plain := randomBytes(n, uint64(n))
		var mf memFile
		w, err := seal.NewWriter(&mf, kr, fuzzBinding, seal.WithSegmentSize(seal.MinSegmentSize))
		if err != nil {
			f.Fatal(err)
		}
		w.Write(plain)
		if err := w.Close(); err != nil {
			f.Fatal(err)
		}
		data := mf.Bytes()
		f.Add(data, int64(n))
		f.Add(data[:len(data)-1], int64(n))
		f.Add(data[:seal.HeaderSize], int64(0))
		flipped := bytes.Clone(data)
		flipped[len(flipped)-1] ^= 1
		f.Add(flipped, int64(n))
	}
	f.Add([]byte{}, int64(0))
	f.Add([]byte("OBJSEAL"), int64(0))
	f.Add([]byte("OBJSEAL\x02"+strings.Repeat("\x00", 100)), int64(10))
	f.Add(bytes.Repeat([]byte{0xff}, 200), int64(-1))
	f.Fuzz(func(t *testing.T, data []byte, partialSize int64) {
		sentinel := func(err error) bool {
			return errors.Is(err, seal.ErrCorrupt) || errors.Is(err, seal.ErrUnknownKey) || errors.Is(err, seal.ErrUnsupportedVersion)
		}
		check := func(r *seal.Reader) {
			size := r.Size()
			if size < 0 {
				t.Fatalf("negative size %d", size)
			}
			p := make([]byte, min(size, 1<<20)+1)
			n, err := r.ReadAt(p, 0)
			switch {
			case err == io.EOF && int64(n) == size:
			case err == nil && int64(n) == min(size, 1<<20)+1:
			case err != nil && err != io.EOF && sentinel(err) && int64(n) < size:
			default:
				t.Fatalf("ReadAt: %d bytes, %v, of a body of %d", n, err, size)
			}
			got, err := io.ReadAll(io.LimitReader(r, 1<<20))
			if err != nil && !sentinel(err) {
				t.Fatalf("Read: %v", err)
			}
			if err == nil && int64(len(got)) != min(size, 1<<20) {
				t.Fatalf("Read %d bytes of %d", len(got), size)
			}
		}
		r, err := seal.Open(bytes.NewReader(data), int64(len(data)), kr, fuzzBinding)
		if err != nil {
			if !sentinel(err) {
				t.Fatalf("Open: %v", err)
			}
		} else {
			if seal.SealedSize(r.Size(), r.SegmentSize()) != int64(len(data)) {
				t.Fatalf("Size %d does not match a file of %d bytes", r.Size(), len(data))
			}
			check(r)
			r.Close()
		}
		r, err = seal.OpenPartial(bytes.NewReader(data), kr, fuzzBinding, partialSize)
		if err != nil {
			if !sentinel(err) && partialSize >= 0 && partialSize < 1<<40 {
				t.Fatalf("OpenPartial: %v", err)
			}
			return
		}
		if r.Size() != partialSize {
			t.Fatalf("OpenPartial: Size %d, want %d", r.Size(), partialSize)
		}
		check(r)
	})
}

// FuzzRoundTrip seals arbitrary bodies, checks they open to the same
// bytes, then flips one bit of the sealed file and checks it fails.
func FuzzRoundTrip(f *testing.F) {
	kr := testKeyring(f, 3)
	f.Add([]byte(""), uint8(0), uint32(0), uint16(0))
	f.Add([]byte("hello, world"), uint8(1), uint32(50), uint16(5))
	f.Add(bytes.Repeat([]byte("0123456789abcdef"), 100), uint8(0), uint32(1000), uint16(77))
	f.Add(bytes.Repeat([]byte{0}, 512), uint8(0), uint32(48+256+16+3), uint16(256))
	f.Fuzz(func(t *testing.T, plain []byte, segLog uint8, flip uint32, part uint16) {
		s := seal.MinSegmentSize << (segLog % 3)
		var mf memFile
		w, err := seal.NewWriterSize(&mf, kr, fuzzBinding, int64(len(plain)), seal.WithSegmentSize(s))
		if err != nil {
			t.Fatal(err)
		}
		// Write in two parts split at a segment boundary, second part first.
		split := min(len(plain), int(part)/s*s)
		if _, err := w.WriteAt(plain[split:], int64(split)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt(plain[:split], 0); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		data := mf.Bytes()
		if int64(len(data)) != seal.SealedSize(int64(len(plain)), s) {
			t.Fatalf("sealed %d bytes, want %d", len(data), seal.SealedSize(int64(len(plain)), s))
		}
		r, err := openBytes(data, kr, fuzzBinding)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
		}
		i := int(flip % uint32(len(data)*8))
		data[i/8] ^= 1 << (i % 8)
		r, err = openBytes(data, kr, fuzzBinding)
		if err == nil {
			got, err = io.ReadAll(r)
			if err == nil {
				t.Fatalf("bit %d flipped, the body still opens", i)
			}
			if !bytes.Equal(got, plain[:len(got)]) {
				t.Fatalf("bit %d flipped: wrong bytes returned", i)
			}
		}
		if !errors.Is(err, seal.ErrCorrupt) && !errors.Is(err, seal.ErrUnsupportedVersion) && !errors.Is(err, seal.ErrUnknownKey) {
			t.Fatalf("bit %d flipped: %v", i, err)
		}
	})
}

// FuzzParseKeyFile checks that ParseKeyFile never panics, never echoes
// file text in its errors, and returns consistent keyrings.
func FuzzParseKeyFile(f *testing.F) {
	f.Add("1:" + b64(1))
	f.Add("# keys\n7:" + b64(7) + "\n3:" + b64(3) + " # old\n")
	f.Add("\ufeff 1 : " + b64(1) + "\r\n")
	f.Add("1:" + b64(1) + "\n1:" + b64(2))
	f.Add("1:" + b64(1) + "\n2:" + b64(1))
	f.Add(b64(1))
	f.Add(b64(1) + ":1")
	f.Add("4294967296:" + b64(1))
	f.Add("1:" + b64(1)[:43])
	f.Add("1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Add("")
	f.Add(":\n:\n#")
	f.Fuzz(func(t *testing.T, file string) {
		kr, err := seal.ParseKeyFile([]byte(file))
		if err != nil {
			assertNoSecret(t, err.Error(), file)
			return
		}
		if !kr.Has(kr.Primary()) || len(kr.IDs()) == 0 {
			t.Fatalf("inconsistent keyring %v", kr)
		}
	})
}
