package api

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/node"
	"github.com/objstore/objstore/storage"
)

// BenchmarkAntiEntropy measures one anti-entropy round between two nodes
// whose journals hold a million entries and differ in a thousand (500 new
// on each side), over the real private API on loopback. It reports the
// bytes moved per round; the target is under 2 s and under 5 MB.
//
//	go test -run '^$' -bench AntiEntropy -benchtime 5x ./api
func BenchmarkAntiEntropy(b *testing.B) {
	const total, diff = 1_000_000, 1000
	dir := b.TempDir()
	remote, err := storage.NewDirRemote(filepath.Join(dir, "remote"))
	if err != nil {
		b.Fatal(err)
	}
	open := func(name string) *node.Node {
		n, err := node.Open(context.Background(), node.Config{
			StateDir: filepath.Join(dir, name, "state"), FilesDir: filepath.Join(dir, name, "files"),
			Remote: remote, ScrubInterval: -1,
		})
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	// Fill one journal, then copy it, so both start with the same million.
	a0 := open("a")
	writer := ulid.Make()
	start := time.Now()
	fill(b, a0, writer, total, time.Now().Add(-time.Hour))
	b.Logf("filled %d entries in %v", total, time.Since(start).Round(time.Millisecond))
	a0.Close()
	copyFile(b, filepath.Join(dir, "a", "state", "journal.db"), filepath.Join(dir, "b", "state", "journal.db"))
	start = time.Now()
	a := open("a")
	b.Logf("reopened a journal of %d entries in %v (scan, hash tree rebuild)", total, time.Since(start).Round(time.Millisecond))
	bn := open("b")
	defer a.Close()
	defer bn.Close()
	srv := httptest.NewServer(NewPrivate(PrivateConfig{Store: bn}))
	defer srv.Close()
	client := cluster.NewClient(cluster.ClientConfig{})
	peer := client.Peer(srv.Listener.Addr().String())

	var moved int64
	var elapsed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fill(b, a, writer, diff/2, time.Now())
		fill(b, bn, ulid.Make(), diff/2, time.Now())
		s0, r0 := client.Bytes()
		b.StartTimer()
		t0 := time.Now()
		st, err := cluster.Sync(context.Background(), a, peer)
		if err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(t0)
		b.StopTimer()
		s1, r1 := client.Bytes()
		moved += s1 - s0 + r1 - r0
		if st.Pulled != diff/2 || st.Pushed != diff/2 {
			b.Fatalf("round %d moved %d/%d entries, want %d each way", i, st.Pulled, st.Pushed, diff/2)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(moved)/float64(b.N)/1e6, "MB/round")
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/round")
}

// fill merges n entries written by node writer into nd, in large batches.
func fill(b *testing.B, nd *node.Node, writer ulid.ULID, n int, at time.Time) {
	b.Helper()
	batch := make([]journal.Entry, 0, 10000)
	flush := func() {
		if _, err := nd.Merge(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range n {
		id := ulid.MustNew(ulid.Timestamp(at)+uint64(i/1000), ulid.DefaultEntropy())
		batch = append(batch, journal.Entry{ID: id, Origin: writer, Name: fmt.Sprintf("file-%d.bin", i), Size: int64(i),
			Level: journal.LevelRemote, Version: journal.Version{Time: journal.Timestamp{Wall: at.UnixNano() + int64(i)}, Node: writer}})
		if len(batch) == cap(batch) {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
}

func copyFile(b *testing.B, from, to string) {
	b.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
		b.Fatal(err)
	}
	src, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Close()
	if _, err := io.Copy(dst, src); err != nil {
		b.Fatal(err)
	}
}
