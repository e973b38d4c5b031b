package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testkeys"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// BenchmarkPut measures PUTs through the node to local disk (level 0) and
// to disk plus the directory remote (level 1): each includes the body's
// fsync, the folder fsync and the journal commit.
func BenchmarkPut(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		for _, level := range []journal.Level{journal.LevelLocal, journal.LevelRemote} {
			b.Run(fmt.Sprintf("size=%dKiB/level=%d", size>>10, level), func(b *testing.B) {
				env := newEnv(b)
				body := bytes.Repeat([]byte("x"), size)
				b.SetBytes(int64(size))
				b.ResetTimer()
				for b.Loop() {
					_, err := env.node.Put(context.Background(), PutRequest{ID: ulid.Make(), Level: level,
						Body: bytes.NewReader(body), Size: int64(size)})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkGetLocal measures local hits: journal lookups, open, size check
// and reading the body, in the clear and encrypted at rest.
func BenchmarkGetLocal(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		for _, size := range []int{4 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("size=%dKiB/sealed=%v", size>>10, sealed), func(b *testing.B) {
				benchGetLocal(b, size, sealed)
			})
		}
	}
}

// BenchmarkPutSealed measures level-0 PUTs encrypted at rest, beside
// BenchmarkPut's level-0 figures.
func BenchmarkPutSealed(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			env := &testEnv{t: b, dir: b.TempDir(), keyring: testkeys.Keyring(b, 1)}
			env.remote = &countingRemote{Remote: mustDirRemote(b, env.dir)}
			env.start()
			defer env.node.Close()
			body := bytes.Repeat([]byte("x"), size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for b.Loop() {
				if _, err := env.node.Put(context.Background(), PutRequest{ID: ulid.Make(), Body: bytes.NewReader(body), Size: int64(size)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func mustDirRemote(t testing.TB, dir string) storage.Remote {
	dr, err := storage.NewDirRemote(filepath.Join(dir, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	return dr
}

func benchGetLocal(b *testing.B, size int, sealed bool) {
	{
		{
			env := newEnv(b)
			if sealed {
				env.node.Close()
				env.keyring = testkeys.Keyring(b, 1)
				env.start()
			}
			ids := make([]ulid.ULID, 64)
			for i := range ids {
				ids[i] = ulid.Make()
				env.node.Put(context.Background(), PutRequest{ID: ids[i], Body: bytes.NewReader(bytes.Repeat([]byte("y"), size)), Size: int64(size)})
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				obj, err := env.node.Get(context.Background(), ids[i%len(ids)], GetOptions{})
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, obj.Content)
				obj.Close()
				i++
			}
		}
	}
}
