package seal_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/objstore/objstore/storage/seal"
)

// segments splits a sealed file into its header and sealed segments.
func segments(data []byte, s int) (hdr []byte, segs [][]byte) {
	hdr, body := data[:seal.HeaderSize], data[seal.HeaderSize:]
	for len(body) > 0 {
		k := min(len(body), s+seal.TagSize)
		segs = append(segs, body[:k])
		body = body[k:]
	}
	return hdr, segs
}

func join(hdr []byte, segs ...[]byte) []byte {
	return slices.Concat(append([][]byte{hdr}, segs...)...)
}

func TestTamper(t *testing.T) { eachKind(t, testTamper) }

func testTamper(t *testing.T, kr *seal.Keyring) {
	plain := randomBytes(3*testSeg+17, 10)
	data := sealBytes(t, kr, binding, plain, testSeg)
	other := sealBytes(t, kr, binding, plain, testSeg) // same body, key and binding
	hdr, segs := segments(data, testSeg)
	ohdr, osegs := segments(other, testSeg)
	if len(segs) != 4 {
		t.Fatalf("%d segments", len(segs))
	}
	if _, err := openBytes(data, kr, binding); err != nil {
		t.Fatal(err)
	}

	t.Run("header-bits", func(t *testing.T) {
		for i := range seal.HeaderSize * 8 {
			d := bytes.Clone(data)
			d[i/8] ^= 1 << (i % 8)
			// A flipped version reads as a newer format, a flipped key
			// ID as a missing key: still failures, never bytes.
			mustFail(t, fmt.Sprintf("header bit %d", i), d, kr, binding, plain,
				seal.ErrCorrupt, seal.ErrUnsupportedVersion, seal.ErrUnknownKey)
		}
	})
	t.Run("body-bits", func(t *testing.T) {
		for i := seal.HeaderSize; i < len(data); i++ {
			d := bytes.Clone(data)
			d[i] ^= 1 << (i % 8)
			mustFail(t, fmt.Sprintf("byte %d", i), d, kr, binding, plain)
		}
	})
	t.Run("tags", func(t *testing.T) {
		end := seal.HeaderSize
		for k, seg := range segs {
			end += len(seg)
			for _, at := range []int{end - 1, end - seal.TagSize} {
				d := bytes.Clone(data)
				d[at] ^= 0x80
				mustFail(t, fmt.Sprintf("tag of segment %d at %d", k, at), d, kr, binding, plain)
			}
		}
	})

	cases := map[string][]byte{
		"empty file":           {},
		"header cut":           data[:seal.HeaderSize-1],
		"header only":          data[:seal.HeaderSize],
		"cut inside tag":       data[:len(data)-1],
		"cut inside last":      data[:len(data)-10],
		"cut mid-segment":      data[:seal.HeaderSize+testSeg/2],
		"swap 0 and 1":         join(hdr, segs[1], segs[0], segs[2], segs[3]),
		"swap 1 and 2":         join(hdr, segs[0], segs[2], segs[1], segs[3]),
		"drop segment 1":       join(hdr, segs[0], segs[2], segs[3]),
		"duplicate segment 0":  join(hdr, segs[0], segs[0], segs[1], segs[2], segs[3]),
		"append segment":       join(hdr, segs[0], segs[1], segs[2], segs[3], osegs[1]),
		"append a tag":         append(bytes.Clone(data), make([]byte, seal.TagSize)...),
		"append a byte":        append(bytes.Clone(data), 0),
		"splice other segment": join(hdr, segs[0], osegs[1], segs[2], segs[3]),
		"splice other last":    join(hdr, segs[0], segs[1], segs[2], osegs[3]),
		"other header":         join(ohdr, segs...),
		"drop segment 2":       join(hdr, segs[0], segs[1], segs[3]),
	}
	// A cut at every segment boundary leaves a well-formed length whose
	// last segment is not the last one sealed.
	for k := 1; k < len(segs); k++ {
		cases[fmt.Sprintf("cut after segment %d", k-1)] = join(hdr, segs[:k]...)
	}
	for name, d := range cases {
		mustFail(t, name, d, kr, binding, plain)
	}

	t.Run("moved to another object", func(t *testing.T) {
		mustFail(t, "other binding", data, kr, []byte("01J0OBJECTULIDBYTES-B"), plain)
		mustFail(t, "binding prefix", data, kr, binding[:len(binding)-1], plain)
	})
	if kr == seal.Unencrypted {
		t.Run("other kind", func(t *testing.T) {
			// A checksummed body is not taken for a sealed one, nor the
			// reverse.
			sealed := sealBytes(t, testKeyring(t, 1), binding, plain, testSeg)
			mustFail(t, "checksummed as sealed", data, testKeyring(t, 1), binding, plain)
			mustFail(t, "sealed as checksummed", sealed, kr, binding, plain)
		})
		return
	}
	t.Run("wrong key bytes", func(t *testing.T) {
		wrong, err := seal.NewKeyring(1, map[uint32][]byte{1: testKey(99)})
		if err != nil {
			t.Fatal(err)
		}
		mustFail(t, "wrong key", data, wrong, binding, plain)
	})
	t.Run("unknown key", func(t *testing.T) {
		_, err := openBytes(data, testKeyring(t, 7), binding)
		if !errors.Is(err, seal.ErrUnknownKey) || !strings.Contains(err.Error(), "key ID 1") {
			t.Fatalf("Open: %v, want ErrUnknownKey naming key ID 1", err)
		}
	})
	t.Run("not sealed", func(t *testing.T) {
		mustFail(t, "plaintext", plain, kr, binding, plain)
		_, err := seal.Inspect(bytes.NewReader(plain))
		if !errors.Is(err, seal.ErrCorrupt) {
			t.Fatalf("Inspect(plaintext): %v", err)
		}
	})
	t.Run("future version", func(t *testing.T) {
		d := bytes.Clone(data)
		d[7] = 2
		_, err := openBytes(d, kr, binding)
		if !errors.Is(err, seal.ErrUnsupportedVersion) || errors.Is(err, seal.ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrUnsupportedVersion only", err)
		}
	})
}

// TestTamperSingleSegment covers bodies of one segment, empty included,
// where the last segment is also the first.
func TestTamperSingleSegment(t *testing.T) { eachKind(t, testTamperSingleSegment) }

func testTamperSingleSegment(t *testing.T, kr *seal.Keyring) {
	for _, size := range []int{0, 1, testSeg} {
		plain := randomBytes(size, 12)
		data := sealBytes(t, kr, binding, plain, testSeg)
		empty := sealBytes(t, kr, binding, nil, testSeg)
		// Every bit of small files; one bit per byte of larger ones.
		step := 1
		if size > 1 {
			step = 9
		}
		for i := 0; i < len(data)*8; i += step {
			d := bytes.Clone(data)
			d[i/8] ^= 1 << (i % 8)
			mustFail(t, fmt.Sprintf("size %d bit %d", size, i), d, kr, binding, plain,
				seal.ErrCorrupt, seal.ErrUnsupportedVersion, seal.ErrUnknownKey)
		}
		if size > 0 {
			// Replacing the body by another file's empty body.
			mustFail(t, fmt.Sprintf("size %d emptied", size), join(data[:seal.HeaderSize], empty[seal.HeaderSize:]), kr, binding, plain)
		}
	}
}
