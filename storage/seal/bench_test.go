package seal_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/objstore/objstore/storage/seal"
)

const benchSize = 1 << 20

// The benchmarks work in memory, so they measure the CPU cost of sealing
// against plain copying, without the disk.

// BenchmarkPlainCopy is the baseline: a 1 MiB body copied in and out of
// memory the way a plain body is written and read.
func BenchmarkPlainCopy(b *testing.B) {
	plain := randomBytes(benchSize, 1)
	dst := &memFile{b: make([]byte, benchSize)}
	out := make([]byte, benchSize)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.Copy(io.NewOffsetWriter(dst, 0), bytes.NewReader(plain)); err != nil {
			b.Fatal(err)
		}
		if _, err := dst.ReadAt(out, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeal seals a 1 MiB body with default segments, written in
// 256 KiB chunks.
func BenchmarkSeal(b *testing.B) { benchKinds(b, benchmarkSeal) }

func benchmarkSeal(b *testing.B, kr *seal.Keyring) {
	plain := randomBytes(benchSize, 1)
	dst := &memFile{b: make([]byte, seal.SealedSize(benchSize, 0))}
	for _, mode := range []string{"stream", "sized"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				var w *seal.Writer
				var err error
				if mode == "stream" {
					w, err = seal.NewWriter(dst, kr, binding)
				} else {
					w, err = seal.NewWriterSize(dst, kr, binding, benchSize)
				}
				if err != nil {
					b.Fatal(err)
				}
				for off := 0; off < benchSize; off += 256 << 10 {
					if _, err := w.Write(plain[off : off+256<<10]); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen opens a sealed 1 MiB body and reads it all, with one
// ReadAt (decrypting in place) or with Read in 32 KiB reads, as
// http.ServeContent does.
func BenchmarkOpen(b *testing.B) { benchKinds(b, benchmarkOpen) }

func benchmarkOpen(b *testing.B, kr *seal.Keyring) {
	data := sealBytes(b, kr, binding, randomBytes(benchSize, 1), seal.DefaultSegmentSize)
	src := bytes.NewReader(data)
	out := make([]byte, benchSize)
	b.Run("ReadAt", func(b *testing.B) {
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			openReadAt(b, src, int64(len(data)), kr, out)
		}
	})
	b.Run("Read32K", func(b *testing.B) {
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			r, err := seal.Open(src, int64(len(data)), kr, binding)
			if err != nil {
				b.Fatal(err)
			}
			for off := 0; off < benchSize; off += 32 << 10 {
				if _, err := io.ReadFull(r, out[off:off+32<<10]); err != nil {
					b.Fatal(err)
				}
			}
			r.Close()
		}
	})
}

// BenchmarkRangeRead reads 4 KiB at random offsets of an open 16 MiB
// body: the cost of a small range request, one segment opened each time.
func BenchmarkRangeRead(b *testing.B) { benchKinds(b, benchmarkRangeRead) }

func benchmarkRangeRead(b *testing.B, kr *seal.Keyring) {
	const size = 16 << 20
	data := sealBytes(b, kr, binding, randomBytes(size, 2), seal.DefaultSegmentSize)
	r, err := openBytes(data, kr, binding)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	p := make([]byte, 4<<10)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ReadAt(p, rng.Int64N(size-int64(len(p)))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenSmall opens a 1 KiB body and reads it: the fixed cost per
// object (key derivation, header, one segment).
func BenchmarkOpenSmall(b *testing.B) { benchKinds(b, benchmarkOpenSmall) }

func benchmarkOpenSmall(b *testing.B, kr *seal.Keyring) {
	data := sealBytes(b, kr, binding, randomBytes(1<<10, 3), seal.DefaultSegmentSize)
	src := bytes.NewReader(data)
	out := make([]byte, 1<<10)
	b.ReportAllocs()
	for b.Loop() {
		openReadAt(b, src, int64(len(data)), kr, out)
	}
}

// openReadAt opens a sealed body and reads len(out) bytes from its start.
func openReadAt(b *testing.B, src io.ReaderAt, size int64, kr *seal.Keyring, out []byte) {
	r, err := seal.Open(src, size, kr, binding)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.ReadAt(out, 0); err != nil {
		b.Fatal(err)
	}
	r.Close()
}

// benchKinds runs fn for a sealed body and for a checksummed one.
func benchKinds(b *testing.B, fn func(b *testing.B, kr *seal.Keyring)) {
	b.Run("sealed", func(b *testing.B) { fn(b, testKeyring(b, 1)) })
	b.Run("checksummed", func(b *testing.B) { fn(b, seal.Unencrypted) })
}
