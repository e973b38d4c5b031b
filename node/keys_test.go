package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// countingOrigin counts the requests a node makes of an origin bucket.
type countingOrigin struct {
	storage.Origin
	gets, revalidations, stats atomic.Int64
}

func (c *countingOrigin) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, storage.ObjectInfo, error) {
	c.gets.Add(1)
	return c.Origin.Get(ctx, key, off, n)
}

func (c *countingOrigin) Revalidate(ctx context.Context, key, etag string) (storage.ObjectInfo, error) {
	c.revalidations.Add(1)
	return c.Origin.Revalidate(ctx, key, etag)
}

func (c *countingOrigin) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	c.stats.Add(1)
	return c.Origin.Stat(ctx, key)
}

// keyEnv is a node serving the origin bucket "photos", a directory, with
// a clock the test moves.
type keyEnv struct {
	t      *testing.T
	node   *Node
	origin *countingOrigin
	clock  *manualClock
}

func newKeyEnv(t *testing.T, revalidate Revalidation) *keyEnv {
	t.Helper()
	return newKeyEnvWith(t, revalidate, nil)
}

// newKeyEnvWith is newKeyEnv with the node's Config changed by tune.
func newKeyEnvWith(t *testing.T, revalidate Revalidation, tune func(*Config)) *keyEnv {
	t.Helper()
	dir := t.TempDir()
	remote, err := storage.NewDirRemote(filepath.Join(dir, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	photos, err := storage.NewDirRemote(filepath.Join(dir, "photos"))
	if err != nil {
		t.Fatal(err)
	}
	env := &keyEnv{t: t, origin: &countingOrigin{Origin: photos}, clock: &manualClock{now: time.Now()}}
	cfg := Config{
		StateDir: filepath.Join(dir, "state"), FilesDir: filepath.Join(dir, "files"),
		Remote: remote, ScrubInterval: -1, CacheTTL: time.Hour, Now: env.clock.Now, Revalidate: revalidate,
		Origin: func(bucket string) (storage.Origin, error) {
			if bucket != "photos" {
				return nil, fmt.Errorf("%w: bucket %s is not served", ErrForbidden, bucket)
			}
			return env.origin, nil
		},
	}
	if tune != nil {
		tune(&cfg)
	}
	env.node, err = Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.node.Close() })
	return env
}

// write stores an object in the bucket behind the node's back.
func (env *keyEnv) write(key, body string) {
	env.t.Helper()
	if _, err := env.origin.PutTyped(context.Background(), key, strings.NewReader(body), int64(len(body)), "image/jpeg", map[string]string{"camera": "x100"}); err != nil {
		env.t.Fatal(err)
	}
}

func (env *keyEnv) read(key string) (string, *Object, error) {
	obj, err := env.node.GetKey(context.Background(), "photos", key, KeyGetOptions{})
	if err != nil {
		return "", obj, err
	}
	defer obj.Close()
	b, err := io.ReadAll(obj.Content)
	return string(b), obj, err
}

// A key written by another program is read through once, then served
// from local disk, with what the bucket said of it.
func TestGetKeyReadsThrough(t *testing.T) {
	env := newKeyEnv(t, RevalidateTTL)
	key := "2024/summer/cat 1+1%20ünï.jpg"
	env.write(key, "meow")
	got, obj, err := env.read(key)
	if err != nil || got != "meow" || obj.Source != SourceRemote {
		t.Fatalf("first read: %q from %v, %v", got, obj.Source, err)
	}
	got, obj, err = env.read(key)
	if err != nil || got != "meow" || obj.Source != SourceLocal {
		t.Fatalf("second read: %q from %v, %v", got, obj.Source, err)
	}
	if obj.Bucket != "photos" || obj.Key != key || obj.ContentType != "image/jpeg" || obj.ETag == "" ||
		obj.UserMeta["camera"] != "x100" || obj.Name != "cat 1+1%20ünï.jpg" || obj.Consistency != journal.LevelRemote {
		t.Errorf("meta = %+v", obj.Meta)
	}
	if n := env.origin.gets.Load(); n != 1 {
		t.Errorf("%d origin GETs for two reads, want 1", n)
	}
	// The ULID API does not reach key-addressed objects.
	if _, err := env.node.Get(context.Background(), journal.KeyID("photos", key), GetOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get by the key's ID: %v", err)
	}
}

// Bad keys and buckets are refused before anything is touched; a missing
// key is a 404 remembered for a while.
func TestGetKeyRefusals(t *testing.T) {
	env := newKeyEnv(t, RevalidateTTL)
	for _, key := range []string{"", "a/../b", "..", "./a", "a\x00b", strings.Repeat("k", 1025), "\xff"} {
		if _, _, err := env.read(key); !errors.Is(err, ErrInvalid) {
			t.Errorf("key %q: %v, want ErrInvalid", key, err)
		}
	}
	for _, bucket := range []string{"other", "ab", "-bad", "has/slash"} {
		_, err := env.node.GetKey(context.Background(), bucket, "k", KeyGetOptions{})
		if want := ErrInvalid; bucket == "other" && !errors.Is(err, ErrForbidden) || bucket != "other" && !errors.Is(err, want) {
			t.Errorf("bucket %q: %v", bucket, err)
		}
	}
	if env.origin.gets.Load()+env.origin.stats.Load() != 0 {
		t.Error("a refused request reached the origin")
	}
	for range 3 {
		if _, _, err := env.read("missing.jpg"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing key: %v", err)
		}
	}
	if n := env.origin.gets.Load(); n != 1 {
		t.Errorf("%d origin GETs for three reads of a missing key, want 1", n)
	}
	// A write through the node is not hidden by the remembered miss.
	if _, err := env.node.Put(context.Background(), PutRequest{Bucket: "photos", Key: "missing.jpg", Level: 1,
		Body: strings.NewReader("now here"), Size: 8}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := env.read("missing.jpg"); err != nil || got != "now here" {
		t.Errorf("after the write: %q, %v", got, err)
	}
}

// Past the TTL a copy is revalidated with a conditional request: unchanged,
// its clock restarts and the body stays; changed, the new bytes replace
// it; gone from the bucket, it is gone here too.
func TestKeyRevalidation(t *testing.T) {
	env := newKeyEnv(t, RevalidateTTL)
	env.write("a.jpg", "version one")
	env.read("a.jpg")
	env.clock.Add(2 * time.Hour)
	got, obj, err := env.read("a.jpg")
	if err != nil || got != "version one" || obj.Source != SourceLocal {
		t.Fatalf("unchanged: %q from %v, %v", got, obj.Source, err)
	}
	if r, g := env.origin.revalidations.Load(), env.origin.gets.Load(); r != 1 || g != 1 {
		t.Errorf("%d revalidations and %d GETs, want 1 and 1", r, g)
	}
	env.read("a.jpg") // within the TTL again: no request
	if r := env.origin.revalidations.Load(); r != 1 {
		t.Errorf("%d revalidations after the clock restarted, want 1", r)
	}

	env.write("a.jpg", "version two, longer")
	env.clock.Add(2 * time.Hour)
	if got, _, err := env.read("a.jpg"); err != nil || got != "version two, longer" {
		t.Fatalf("changed: %q, %v", got, err)
	}
	if got, obj, err := env.read("a.jpg"); err != nil || got != "version two, longer" || obj.Source != SourceLocal {
		t.Fatalf("after the change: %q from %v, %v", got, obj.Source, err)
	}

	env.origin.Remove(context.Background(), "a.jpg")
	env.clock.Add(2 * time.Hour)
	if _, _, err := env.read("a.jpg"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed from the bucket: %v", err)
	}
	if b, err := env.node.journal.Blob(journal.KeyID("photos", "a.jpg")); err == nil {
		t.Errorf("the copy of a removed key stayed: %+v", b)
	}
}

// A key another program deletes from the bucket is gone here at the next
// check; written again there, it is served again (a tombstone hides only
// what is older).
func TestKeyDeletedAndWrittenAgainInBucket(t *testing.T) {
	env := newKeyEnv(t, RevalidateAlways)
	env.write("d.jpg", "first")
	env.read("d.jpg")
	env.origin.Remove(context.Background(), "d.jpg")
	if _, _, err := env.read("d.jpg"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed from the bucket: %v", err)
	}
	time.Sleep(10 * time.Millisecond) // a modification time after the tombstone's
	env.write("d.jpg", "second")
	if got, _, err := env.read("d.jpg"); err != nil || got != "second" {
		t.Fatalf("written again: %q, %v", got, err)
	}
}

// With revalidation always, every read asks the origin, and an origin
// that cannot be reached fails the read; otherwise the copy is served
// marked stale.
func TestKeyRevalidateAlwaysAndStaleIfError(t *testing.T) {
	env := newKeyEnv(t, RevalidateAlways)
	env.write("b.jpg", "bytes")
	env.read("b.jpg")
	env.read("b.jpg")
	if r := env.origin.revalidations.Load(); r != 1 {
		t.Errorf("%d revalidations for two reads (the first fetched), want 1", r)
	}

	ttl := newKeyEnv(t, RevalidateTTL)
	ttl.write("c.jpg", "cached bytes")
	ttl.read("c.jpg")
	ttl.origin.Origin = unreachable{ttl.origin.Origin}
	ttl.clock.Add(2 * time.Hour)
	got, obj, err := ttl.read("c.jpg")
	if err != nil || got != "cached bytes" || !obj.Stale {
		t.Fatalf("origin down: %q stale=%v, %v", got, obj != nil && obj.Stale, err)
	}
	env.origin.Origin = unreachable{env.origin.Origin}
	if _, _, err := env.read("b.jpg"); !errors.Is(err, ErrRemoteUnavailable) {
		t.Fatalf("origin down, revalidate always: %v", err)
	}
}

type unreachable struct{ storage.Origin }

func (unreachable) Revalidate(context.Context, string, string) (storage.ObjectInfo, error) {
	return storage.ObjectInfo{}, fmt.Errorf("dial: %w", storage.ErrUnavailable)
}

// A key PUT writes through to the bucket with its type and metadata; a
// delete removes it there and here; the key may be written again.
func TestPutAndDeleteKey(t *testing.T) {
	env := newKeyEnv(t, RevalidateTTL)
	ctx := context.Background()
	put := func(body string, level journal.Level) (Meta, error) {
		return env.node.Put(ctx, PutRequest{Bucket: "photos", Key: "dir/new.png", Level: level, ContentType: "image/png",
			UserMeta: map[string]string{"by": "objstore"}, Body: strings.NewReader(body), Size: int64(len(body))})
	}
	if _, err := put("local only", journal.LevelLocal); !errors.Is(err, ErrInvalid) {
		t.Errorf("level 0 key: %v, want ErrInvalid", err)
	}
	m, err := put("png bytes", journal.LevelRemote)
	if err != nil || m.ETag == "" || m.Key != "dir/new.png" {
		t.Fatalf("put: %+v, %v", m, err)
	}
	rc, info, err := env.origin.Origin.Get(ctx, "dir/new.png", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "png bytes" || info.ContentType != "image/png" || info.Meta["by"] != "objstore" || info.ETag != m.ETag {
		t.Errorf("in the bucket: %q %+v", b, info)
	}
	if got, obj, err := env.read("dir/new.png"); err != nil || got != "png bytes" || obj.Source != SourceLocal {
		t.Errorf("read: %q from %v, %v", got, obj.Source, err)
	}
	if _, err := env.node.DeleteKey(ctx, "photos", "dir/new.png"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.origin.Origin.Stat(ctx, "dir/new.png"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after delete, in the bucket: %v", err)
	}
	if _, _, err := env.read("dir/new.png"); !errors.Is(err, ErrNotFound) {
		t.Errorf("read after delete: %v", err)
	}
	if _, err := put("png again", journal.LevelFull); err != nil {
		t.Fatalf("put after delete: %v", err)
	}
	if got, _, err := env.read("dir/new.png"); err != nil || got != "png again" {
		t.Errorf("read after the new put: %q, %v", got, err)
	}
	list, err := env.node.ListKeys(ctx, "photos", ListKeysOptions{Prefix: "dir/"})
	if err != nil || len(list.Keys) != 1 || list.Keys[0].Key != "dir/new.png" || !list.Keys[0].Cached {
		t.Errorf("list: %+v, %v", list, err)
	}
}
