package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testkeys"
	"github.com/objstore/objstore/storage/seal"
)

func TestDiskCommitOpenRemove(t *testing.T) {
	for name, kr := range map[string]*seal.Keyring{"plain": nil, "sealed": testkeys.Keyring(t, 1, 1)} {
		t.Run(name, func(t *testing.T) { testDiskCommitOpenRemove(t, kr) })
	}
}

func testDiskCommitOpenRemove(t *testing.T, kr *seal.Keyring) {
	d, err := OpenDisk(t.TempDir(), kr)
	if err != nil {
		t.Fatal(err)
	}
	id := ulid.Make()
	w, err := d.Create(id, -1)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(strings.Repeat("objstore ", 1000))
	w.Write(body[:100])
	w.Write(body[100:])
	size, sum, err := w.Commit(id)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(body)) || sum != sha256.Sum256(body) {
		t.Fatalf("commit = %d %x", size, sum)
	}
	w.Abort() // after Commit: a no-op
	f, n, err := d.Open(id, sum)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, body) || n != int64(len(body)) {
		t.Fatalf("body differs (size %d)", n)
	}
	if n, err := d.Stat(id, sum); err != nil || n != int64(len(body)) {
		t.Errorf("Stat = %d, %v", n, err)
	}
	path := d.Path(id, sum)
	if !strings.HasPrefix(path, filepath.Join(d.Dir(), id.String()[24:])) {
		t.Errorf("path %s is not in the ID's shard", path)
	}
	if err := d.Remove(id, sum); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(id, sum); err != nil {
		t.Errorf("second remove: %v", err)
	}
	if _, _, err := d.Open(id, sum); !errors.Is(err, ErrNotFound) {
		t.Errorf("open after remove: %v, want ErrNotFound", err)
	}
}

func TestDiskAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	d, _ := OpenDisk(dir, nil)
	w, _ := d.Create(ulid.Make(), -1)
	w.Write([]byte("partial"))
	w.Abort()
	var n int
	d.Walk(context.Background(), func(string, ulid.ULID, string, bool) error { n++; return nil })
	tmp, _ := os.ReadDir(filepath.Join(dir, tmpDir))
	if n != 0 || len(tmp) != 0 {
		t.Errorf("after abort: %d bodies, %d temp files", n, len(tmp))
	}
}

func TestOpenDiskClearsTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	d, _ := OpenDisk(dir, nil)
	w, _ := d.Create(ulid.Make(), -1)
	w.Write([]byte("interrupted by a crash"))
	// No Commit, no Abort: as if the process died here.
	if _, err := OpenDisk(dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(w.f.Name()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file survived a restart: %v", err)
	}
}

func TestDiskWalkTellsForeignFiles(t *testing.T) {
	dir := t.TempDir()
	d, _ := OpenDisk(dir, nil)
	id := ulid.Make()
	w, _ := d.Create(id, -1)
	w.Write([]byte("x"))
	_, sum, err := w.Commit(id)
	if err != nil {
		t.Fatal(err)
	}
	shard := filepath.Join(dir, id.String()[24:])
	os.WriteFile(filepath.Join(shard, "notes.txt"), []byte("operator's file"), 0o644)
	os.WriteFile(filepath.Join(shard, id.String()+".zz"), nil, 0o644)
	got := map[string]bool{}
	err = d.Walk(context.Background(), func(path string, gotID ulid.ULID, prefix string, ok bool) error {
		got[filepath.Base(path)] = ok
		if ok && (gotID != id || prefix != SumPrefix(sum)) {
			t.Errorf("parsed %s as %s %s", path, gotID, prefix)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{filepath.Base(d.Path(id, sum) + summedSuffix): true, "notes.txt": false, id.String() + ".zz": false}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: ok = %v, want %v", k, got[k], v)
		}
	}
}

func TestDiskUsage(t *testing.T) {
	d, _ := OpenDisk(t.TempDir(), nil)
	u, err := d.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.Total == 0 || u.Free > u.Total || u.Used > u.Total {
		t.Errorf("usage = %+v", u)
	}
}

// A sealed body holds no plaintext on disk, serves any range, and is
// refused when damaged or opened without its key.
func TestSealedBodies(t *testing.T) {
	dir := t.TempDir()
	kr := testkeys.Keyring(t, 1)
	d, _ := OpenDisk(dir, kr)
	id := ulid.Make()
	body := bytes.Repeat([]byte("secret payload "), 20000) // 300 KB: several segments
	w, _ := d.Create(id, int64(len(body)))
	// In parts, out of order, as a parted fetch writes them.
	half := int64(2 * SegmentSize)
	w.WriteAt(body[half:], half)
	w.WriteAt(body[:half], 0)
	w.Hash(body)
	follow, err := w.Follow()
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 100)
	if _, err := follow.ReadAt(p, 5000); err != nil || !bytes.Equal(p, body[5000:5100]) {
		t.Fatalf("follow: %v", err)
	}
	follow.Close()
	_, sum, err := w.Commit(id)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(d.Path(id, sum) + sealedSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("secret payload")) {
		t.Fatal("the plaintext is on disk")
	}
	b, size, err := d.Open(id, sum)
	if err != nil || size != int64(len(body)) {
		t.Fatalf("open: %d %v", size, err)
	}
	if _, err := b.ReadAt(p, 123456); err != nil || !bytes.Equal(p, body[123456:123556]) {
		t.Fatalf("range: %v", err)
	}
	b.Close()
	// Without the key, or with another: refused, never served as bytes.
	plain, _ := OpenDisk(dir, nil)
	if _, _, err := plain.Open(id, sum); !errors.Is(err, ErrNoKey) {
		t.Errorf("open without a key: %v", err)
	}
	other, _ := OpenDisk(dir, testkeys.Keyring(t, 2))
	if _, _, err := other.Open(id, sum); !errors.Is(err, ErrNoKey) {
		t.Errorf("open with another key: %v", err)
	}
	// A flipped byte or a cut file holds no body.
	raw[len(raw)/2] ^= 1
	os.WriteFile(d.Path(id, sum)+sealedSuffix, raw, 0o600)
	if b, _, err := d.Open(id, sum); err == nil {
		if _, err := io.ReadAll(b); err == nil {
			t.Error("a damaged sealed body read back whole")
		}
		b.Close()
	}
	os.WriteFile(d.Path(id, sum)+sealedSuffix, raw[:len(raw)-100], 0o600)
	if _, _, err := d.Open(id, sum); !errors.Is(err, ErrNotFound) {
		t.Errorf("truncated sealed body: %v", err)
	}
}

// A body in the clear is checksummed: its bytes are on disk as they are,
// and a read that meets a damaged segment fails with ErrCorrupt, after
// the sound bytes before it and never with a damaged one.
func TestCheckedBodies(t *testing.T) {
	d, _ := OpenDisk(t.TempDir(), nil)
	id := ulid.Make()
	body := bytes.Repeat([]byte("plain payload "), 30000) // 420 KB: 7 segments
	w, _ := d.Create(id, int64(len(body)))
	w.WriteAt(body[SegmentSize:], SegmentSize) // out of order, as parts arrive
	w.WriteAt(body[:SegmentSize], 0)
	w.Hash(body)
	_, sum, err := w.Commit(id)
	if err != nil {
		t.Fatal(err)
	}
	path := d.Path(id, sum) + summedSuffix
	raw, err := os.ReadFile(path)
	if err != nil || !bytes.Contains(raw, body[:SegmentSize]) {
		t.Fatalf("the clear body is not on disk as written: %v", err)
	}
	// One flipped bit in the fourth segment.
	raw[48+3*(SegmentSize+16)+100] ^= 0x10 // header, 3 segments with their tags
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	b, size, err := d.Open(id, sum) // the last segment is sound: opens
	if err != nil || size != int64(len(body)) {
		t.Fatalf("open: %d %v", size, err)
	}
	defer b.Close()
	p := make([]byte, 100)
	if _, err := b.ReadAt(p, 5*SegmentSize); err != nil || !bytes.Equal(p, body[5*SegmentSize:5*SegmentSize+100]) {
		t.Errorf("a sound segment after the damage: %v", err)
	}
	got, err := io.ReadAll(b)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reading a damaged body: %d bytes, %v; want ErrCorrupt", len(got), err)
	}
	if len(got) != 3*SegmentSize || !bytes.Equal(got, body[:len(got)]) {
		t.Errorf("read %d bytes before the damage, want the %d sound ones", len(got), 3*SegmentSize)
	}
	// Cut short: refused at open, as a missing body.
	os.WriteFile(path, raw[:len(raw)-1], 0o600)
	if _, _, err := d.Open(id, sum); !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated body: %v", err)
	}
}

// A raw body, as older releases wrote them, is still read, and Reseal
// rewrites it checksummed.
func TestRawBodies(t *testing.T) {
	d, _ := OpenDisk(t.TempDir(), nil)
	id := ulid.Make()
	body := []byte("written by an older release")
	sum := sha256.Sum256(body)
	if err := os.MkdirAll(filepath.Dir(d.Path(id, sum)), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.Path(id, sum), body, 0o600); err != nil {
		t.Fatal(err)
	}
	b, size, err := d.Open(id, sum)
	if err != nil || size != int64(len(body)) || d.Current(b) {
		t.Fatalf("open a raw body: %d %v (current %v)", size, err, err == nil && d.Current(b))
	}
	b.Close()
	if changed, err := d.Reseal(id, sum); err != nil || !changed {
		t.Fatalf("rewrite a raw body: %v %v", changed, err)
	}
	if _, err := os.Stat(d.Path(id, sum)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the raw file survived its rewrite")
	}
	b, _, err = d.Open(id, sum)
	if err != nil || !d.Current(b) {
		t.Fatalf("after rewrite: %v", err)
	}
	got, _ := io.ReadAll(b)
	b.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("read %q", got)
	}
	if changed, _ := d.Reseal(id, sum); changed {
		t.Error("a checksummed body was rewritten again")
	}
}

// Reseal brings plain bodies and bodies under an old key to the primary
// key, keeping their bytes.
func TestReseal(t *testing.T) {
	dir := t.TempDir()
	plain, _ := OpenDisk(dir, nil)
	id := ulid.Make()
	w, _ := plain.Create(id, -1)
	w.Write([]byte("written before encryption was on"))
	_, sum, _ := w.Commit(id)

	d1, _ := OpenDisk(dir, testkeys.Keyring(t, 1))
	if changed, err := d1.Reseal(id, sum); err != nil || !changed {
		t.Fatalf("reseal of a plain body: %v %v", changed, err)
	}
	if _, err := os.Stat(d1.Path(id, sum) + summedSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Error("the plain file survived resealing")
	}
	if changed, _ := d1.Reseal(id, sum); changed {
		t.Error("a body under the primary key was resealed again")
	}
	d2, _ := OpenDisk(dir, testkeys.Keyring(t, 2, 1)) // key 2 rolled in, 1 kept
	if changed, err := d2.Reseal(id, sum); err != nil || !changed {
		t.Fatalf("reseal under a new key: %v %v", changed, err)
	}
	only2, _ := OpenDisk(dir, testkeys.Keyring(t, 2))
	b, _, err := only2.Open(id, sum)
	if err != nil {
		t.Fatalf("the body after rotation: %v", err)
	}
	got, _ := io.ReadAll(b)
	b.Close()
	if string(got) != "written before encryption was on" {
		t.Fatalf("read %q", got)
	}
}

// A body moving between its plain and sealed names is never missed by a
// reader looking at the moment of the move.
func TestOpenDuringReseal(t *testing.T) {
	dir := t.TempDir()
	plain, _ := OpenDisk(dir, nil)
	sealed, _ := OpenDisk(dir, testkeys.Keyring(t, 1))
	id := ulid.Make()
	body := []byte("moving between names")
	write := func() Sum {
		w, _ := plain.Create(id, -1)
		w.Write(body)
		_, sum, err := w.Commit(id)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	sum := write()
	stop := make(chan struct{})
	var misses atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, d := range []*Disk{sealed, plain} {
					b, _, err := d.Open(id, sum)
					if errors.Is(err, ErrNotFound) {
						misses.Add(1)
					} else if err == nil {
						b.Close()
					}
				}
			}
		}()
	}
	for range 200 {
		write()                                           // sealed -> plain
		if _, err := sealed.Reseal(id, sum); err != nil { // plain -> sealed
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if n := misses.Load(); n > 0 {
		t.Errorf("readers missed the body %d times while it moved", n)
	}
}
