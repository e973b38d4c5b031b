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
	"testing"

	"github.com/oklog/ulid/v2"
)

func TestDiskCommitOpenRemove(t *testing.T) {
	d, err := OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id := ulid.Make()
	w, err := d.Create()
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
	f, err := d.Open(id, sum)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, body) {
		t.Fatal("body differs")
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
	if _, err := d.Open(id, sum); !errors.Is(err, ErrNotFound) {
		t.Errorf("open after remove: %v, want ErrNotFound", err)
	}
}

func TestDiskAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	d, _ := OpenDisk(dir)
	w, _ := d.Create()
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
	d, _ := OpenDisk(dir)
	w, _ := d.Create()
	w.Write([]byte("interrupted by a crash"))
	// No Commit, no Abort: as if the process died here.
	if _, err := OpenDisk(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(w.TempPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file survived a restart: %v", err)
	}
}

func TestDiskWalkTellsForeignFiles(t *testing.T) {
	dir := t.TempDir()
	d, _ := OpenDisk(dir)
	id := ulid.Make()
	w, _ := d.Create()
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
	want := map[string]bool{filepath.Base(d.Path(id, sum)): true, "notes.txt": false, id.String() + ".zz": false}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: ok = %v, want %v", k, got[k], v)
		}
	}
}

func TestDiskUsage(t *testing.T) {
	d, _ := OpenDisk(t.TempDir())
	u, err := d.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.Total == 0 || u.Free > u.Total || u.Used > u.Total {
		t.Errorf("usage = %+v", u)
	}
}
