package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/objstore/objstore/storage"
	"github.com/objstore/objstore/storage/remotetest"
)

func newTestDirRemote(t *testing.T) (*storage.DirRemote, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "remote")
	r, err := storage.NewDirRemote(dir)
	if err != nil {
		t.Fatalf("NewDirRemote: %v", err)
	}
	return r, dir
}

func TestDirRemoteConformance(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) storage.Remote {
		r, _ := newTestDirRemote(t)
		return r
	})
}

// The decorators keep every promise of the Remote they wrap.
func TestDecoratorsConformance(t *testing.T) {
	t.Run("prefixed", func(t *testing.T) {
		remotetest.Run(t, func(t *testing.T) storage.Remote {
			r, _ := newTestDirRemote(t)
			return storage.WithPrefix(r, "objects/")
		})
	})
	t.Run("counted", func(t *testing.T) {
		remotetest.Run(t, func(t *testing.T) storage.Remote {
			r, _ := newTestDirRemote(t)
			return storage.NewCounted(r)
		})
	})
}

// A prefixed remote stores under the prefix, and counts add up.
func TestPrefixAndCounts(t *testing.T) {
	r, _ := newTestDirRemote(t)
	c := storage.NewCounted(storage.WithPrefix(r, "objects/"))
	ctx := t.Context()
	if err := c.Put(ctx, "k", strings.NewReader("v"), 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Stat(ctx, "objects/k"); err != nil {
		t.Errorf("the object is not under the prefix: %v", err)
	}
	if info, err := c.Stat(ctx, "k"); err != nil || info.Key != "k" {
		t.Errorf("stat through the prefix: %+v %v", info, err)
	}
	rc, _, err := c.Get(ctx, "k", 0, -1)
	if err == nil {
		rc.Close()
	}
	c.Remove(ctx, "k")
	if got := c.Counts(); got != (storage.RemoteCounts{Gets: 1, Puts: 1, Stats: 1, Removes: 1}) {
		t.Errorf("counts %+v", got)
	}
}

// tmpEntries lists what is in the remote's temp folder.
func tmpEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, ".tmp"))
	if err != nil {
		t.Fatalf("read .tmp: %v", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestDirRemoteFailedPutsLeaveNoTempFiles(t *testing.T) {
	r, dir := newTestDirRemote(t)
	ctx := t.Context()
	if err := r.Put(ctx, "a/b", remotetest.FailAfter(remotetest.Data(1, 1<<20), 1000), -1, nil); err == nil {
		t.Fatal("failing Put succeeded")
	}
	if err := r.Put(ctx, "a/c", strings.NewReader("abc"), 10, nil); err == nil {
		t.Fatal("short Put succeeded")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := r.Put(canceled, "a/d", strings.NewReader("abc"), 3, nil); err == nil {
		t.Fatal("canceled Put succeeded")
	}
	if names := tmpEntries(t, dir); len(names) != 0 {
		t.Errorf("temp files left behind: %v", names)
	}
	for _, k := range []string{"a/b", "a/c", "a/d"} {
		if _, err := os.Stat(filepath.Join(dir, k)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a failed Put: %v", k, err)
		}
	}
}

func TestDirRemoteTempFilesInvisible(t *testing.T) {
	r, dir := newTestDirRemote(t)
	ctx := t.Context()
	// A crashed Put's leftover, and a stale one.
	fresh := filepath.Join(dir, ".tmp", "put-fresh")
	stale := filepath.Join(dir, ".tmp", "put-stale")
	for _, p := range []string{fresh, stale} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{".tmp", ".tmp/put-fresh", ".tmp/put-stale"} {
		if _, err := r.Stat(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v, want ErrInvalidKey", key, err)
		}
		if err := r.Put(ctx, key, strings.NewReader("x"), 1, nil); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
		}
		if err := r.Remove(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Remove(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	// Reopening sweeps stale temp files and keeps fresh ones, which may
	// belong to another process's running Put.
	if _, err := storage.NewDirRemote(dir); err != nil {
		t.Fatal(err)
	}
	names := tmpEntries(t, dir)
	if len(names) != 1 || names[0] != "put-fresh" {
		t.Errorf(".tmp holds %v, want only put-fresh", names)
	}
	// A key named like the folder but deeper is fine.
	if err := r.Put(ctx, "x/.tmp/y", strings.NewReader("ok"), 2, nil); err != nil {
		t.Errorf("Put(x/.tmp/y): %v", err)
	}
}

func TestDirRemoteInvalidKeys(t *testing.T) {
	r, _ := newTestDirRemote(t)
	ctx := t.Context()
	for _, key := range []string{"", "/abs", "../x", "a/../b", "a\\b", "a//b", "a/", ".", "..", "\x00", strings.Repeat("k", storage.MaxRemoteKeyLen+1), "bad\xffutf8"} {
		if err := r.Put(ctx, key, strings.NewReader("x"), 1, nil); !errors.Is(err, storage.ErrInvalidKey) || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey only", key, err)
		}
		if _, _, err := r.Get(ctx, key, 0, -1); !errors.Is(err, storage.ErrInvalidKey) || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrInvalidKey only", key, err)
		}
	}
	// A path element longer than the file system allows.
	long := strings.Repeat("n", 300)
	if err := r.Put(ctx, long, strings.NewReader("x"), 1, nil); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Put(300-byte element) = %v, want ErrInvalidKey", err)
	}
}

func TestDirRemoteKeyIsAlsoPrefix(t *testing.T) {
	r, _ := newTestDirRemote(t)
	ctx := t.Context()
	if err := r.Put(ctx, "a/b", strings.NewReader("child"), 5, nil); err != nil {
		t.Fatal(err)
	}
	// "a" is a directory here: it names no object and cannot name one.
	if _, err := r.Stat(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(a) = %v, want ErrNotFound", err)
	}
	if err := r.Put(ctx, "a", strings.NewReader("x"), 1, nil); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Put(a) = %v, want ErrInvalidKey", err)
	}
	if err := r.Remove(ctx, "a"); err != nil {
		t.Errorf("Remove(a) = %v, want nil", err)
	}
	// And below a file.
	if err := r.Put(ctx, "a/b/c", strings.NewReader("x"), 1, nil); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Put(a/b/c) = %v, want ErrInvalidKey", err)
	}
	if _, err := r.Stat(ctx, "a/b/c"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(a/b/c) = %v, want ErrNotFound", err)
	}
	if err := r.Remove(ctx, "a/b/c"); err != nil {
		t.Errorf("Remove(a/b/c) = %v, want nil", err)
	}
	rc, _, err := r.Get(ctx, "a/b", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "child" {
		t.Errorf("Get(a/b) = %q", b)
	}
}

func TestDirRemoteFileFormat(t *testing.T) {
	r, dir := newTestDirRemote(t)
	ctx := t.Context()
	if err := r.Put(ctx, "p/obj", strings.NewReader("DATA"), 4, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "p", "obj"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("OSDR\x01")) || !bytes.HasSuffix(raw, []byte("DATA")) || !bytes.Contains(raw, []byte(`"k":"v"`)) {
		t.Errorf("object file = %q", raw)
	}
	// A corrupt file is an error, but not "not found".
	if err := os.WriteFile(filepath.Join(dir, "p", "bad"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = r.Stat(ctx, "p/bad")
	if err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of a corrupt file = %v, want an error other than ErrNotFound", err)
	}
	// Get's reader stops once its context is done.
	gctx, cancel := context.WithCancel(ctx)
	rc, _, err := r.Get(gctx, "p/obj", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	cancel()
	if _, err := io.ReadAll(rc); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel = %v, want context.Canceled", err)
	}
}

func TestDirRemoteString(t *testing.T) {
	r, dir := newTestDirRemote(t)
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.String(), "dir:"+abs; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestDirRemoteOrigin(t *testing.T) {
	remotetest.RunOrigin(t, func(t *testing.T) storage.Origin {
		r, _ := newTestDirRemote(t)
		return r
	})
}

// Object files written before the media type was stored read as having
// none.
func TestDirRemoteHeaderWithoutContentType(t *testing.T) {
	r, dir := newTestDirRemote(t)
	ctx := t.Context()
	js := `{"meta":{"k":"v"}}`
	raw := append([]byte("OSDR\x01\x00\x00\x00"), byte(len(js)))
	raw = append(append(raw, js...), "DATA"...)
	if err := os.MkdirAll(filepath.Join(dir, "old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old", "obj"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := r.Stat(ctx, "old/obj")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 4 || info.Meta["k"] != "v" || info.ContentType != "" || !strings.HasPrefix(info.ETag, `"`) {
		t.Errorf("Stat = %+v", info)
	}
	// A typed Put writes the field; an untyped one leaves it out.
	if _, err := r.PutTyped(ctx, "new/typed", strings.NewReader("x"), 1, "text/plain", nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Put(ctx, "new/untyped", strings.NewReader("x"), 1, nil); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"typed": true, "untyped": false} {
		raw, err := os.ReadFile(filepath.Join(dir, "new", name))
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Contains(raw, []byte(`"content_type":"text/plain"`)); got != want {
			t.Errorf("%s object file = %q", name, raw)
		}
		if bytes.Contains(raw, []byte(`"content_type":""`)) {
			t.Errorf("%s object file stores an empty type: %q", name, raw)
		}
	}
}

// The ETag is made from the file's size, time and inode, as documented.
func TestDirRemoteETag(t *testing.T) {
	r, dir := newTestDirRemote(t)
	ctx := t.Context()
	if err := r.Put(ctx, "k", strings.NewReader("data"), 4, nil); err != nil {
		t.Fatal(err)
	}
	info, err := r.Stat(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "k"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`"%x-%x-%x"`, fi.Size(), fi.ModTime().UnixNano(), fi.Sys().(*syscall.Stat_t).Ino)
	if info.ETag != want {
		t.Errorf("ETag = %s, want %s", info.ETag, want)
	}
	// Same bytes, same size, stored again: another file, another ETag.
	for range 20 {
		if err := r.Put(ctx, "k", strings.NewReader("data"), 4, nil); err != nil {
			t.Fatal(err)
		}
		next, err := r.Stat(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if next.ETag == info.ETag {
			t.Fatalf("ETag %s unchanged by a Put", next.ETag)
		}
		info = next
	}
}

// What a listing of a directory skips: the temp folder, files whose paths
// are not keys, links, and folders left empty by Remove.
func TestDirRemoteListSkips(t *testing.T) {
	r, dir := newTestDirRemote(t)
	ctx := t.Context()
	for _, k := range []string{"a/b", "gone/x/y", "z"} {
		if err := r.Put(ctx, k, strings.NewReader("x"), 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Remove(ctx, "gone/x/y"); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		".tmp/put-leftover": "partial",
		"a/back\\slash":     "not a key",
		"bad\xffutf8":       "not a key",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "z"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	list := func(opts storage.ListOptions) ([]string, []string) {
		t.Helper()
		page, err := r.List(ctx, opts)
		if err != nil {
			t.Fatalf("List(%+v): %v", opts, err)
		}
		var keys []string
		for _, o := range page.Objects {
			keys = append(keys, o.Key)
		}
		return keys, page.CommonPrefixes
	}
	if keys, prefixes := list(storage.ListOptions{}); !slices.Equal(keys, []string{"a/b", "z"}) || prefixes != nil {
		t.Errorf("List = %q, %q; want a/b and z", keys, prefixes)
	}
	if keys, prefixes := list(storage.ListOptions{Delimiter: "/"}); keys == nil && !slices.Equal(prefixes, []string{"a/"}) || !slices.Equal(keys, []string{"z"}) {
		t.Errorf("List(/) = %q, %q; want z and a/ (no prefix for the emptied folder)", keys, prefixes)
	}
	// Prefixes no key has, as their folders cannot be keys'.
	for _, prefix := range []string{".tmp/", ".tmp", "gone/", "linkdir/", "/", "/a", "a//", "a/./", "./a/", "a/../a/", "\\a/"} {
		if keys, prefixes := list(storage.ListOptions{Prefix: prefix}); keys != nil || prefixes != nil {
			t.Errorf("List(%q) = %q, %q; want nothing", prefix, keys, prefixes)
		}
	}

	// A remote whose directory is reached through a link lists the same.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	lr, err := storage.NewDirRemote(link)
	if err != nil {
		t.Fatal(err)
	}
	page, err := lr.List(ctx, storage.ListOptions{})
	if err != nil || len(page.Objects) != 2 {
		t.Errorf("List through a linked directory = %+v, %v", page, err)
	}

	// A file that is not an object fails the listing, as it fails Stat.
	if err := os.WriteFile(filepath.Join(dir, "a", "corrupt"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.List(ctx, storage.ListOptions{Prefix: "a/"}); err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("List over a corrupt file = %v, want an error", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.List(canceled, storage.ListOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a canceled ctx = %v", err)
	}
}
