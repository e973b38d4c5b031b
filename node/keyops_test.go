package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// An invalidated copy is fetched again on the next read, and an object
// changed in the bucket meanwhile (same size, new ETag) replaces the
// journal's description rather than being taken for the old one.
func TestInvalidatedKeyTakesTheOriginsChange(t *testing.T) {
	env := newKeyEnv(t, RevalidateNever)
	ctx := context.Background()
	env.write("k.txt", "old!")
	if got, _, err := env.read("k.txt"); err != nil || got != "old!" {
		t.Fatalf("first read: %q, %v", got, err)
	}
	before, _ := env.node.StatKey(ctx, "photos", "k.txt")
	res, err := env.node.InvalidateKeys(ctx, KeyInvalidation{Bucket: "photos", Key: "k.txt"}, false)
	if err != nil || res.Dropped[env.node.ID().String()] != 1 {
		t.Fatalf("invalidate: %+v, %v", res, err)
	}
	env.write("k.txt", "new!")
	got, obj, err := env.read("k.txt")
	if err != nil || got != "new!" || obj.Source != SourceRemote {
		t.Fatalf("read after invalidation: %q from %v, %v", got, obj.Source, err)
	}
	after, _ := env.node.StatKey(ctx, "photos", "k.txt")
	if after.ETag == before.ETag || after.SHA256 == before.SHA256 {
		t.Errorf("the entry still describes the old object: %+v", after)
	}
	if got, obj, _ := env.read("k.txt"); got != "new!" || obj.Source != SourceLocal {
		t.Errorf("next read: %q from %v", got, obj.Source)
	}
	// A key never cached is no error; a key and a prefix at once is.
	if _, err := env.node.InvalidateKeys(ctx, KeyInvalidation{Bucket: "photos", Key: "never.txt"}, true); err != nil {
		t.Errorf("invalidate a key not cached: %v", err)
	}
	if _, err := env.node.InvalidateKeys(ctx, KeyInvalidation{Bucket: "photos", Key: "a", Prefix: "b"}, true); !errors.Is(err, ErrInvalid) {
		t.Errorf("key and prefix: %v", err)
	}
}

// Invalidation by prefix drops the copies under the prefix only, and
// leaves the bucket alone; delete by prefix removes the keys under it from
// the bucket and the journal, cached or not, and refuses an empty prefix.
func TestPrefixOperations(t *testing.T) {
	defer func(n int) { walkBatch = n }(walkBatch)
	walkBatch = 2 // walks in several transactions
	env := newKeyEnv(t, RevalidateNever)
	ctx := context.Background()
	for i := range 5 {
		env.write(fmt.Sprintf("a/%d.txt", i), "under a")
		env.write(fmt.Sprintf("b/%d.txt", i), "under b")
	}
	for i := range 3 { // some cached, some not
		env.read(fmt.Sprintf("a/%d.txt", i))
		env.read(fmt.Sprintf("b/%d.txt", i))
	}
	res, err := env.node.InvalidateKeys(ctx, KeyInvalidation{Bucket: "photos", Prefix: "a/"}, true)
	if err != nil || res.Dropped[env.node.ID().String()] != 3 {
		t.Fatalf("invalidate a/: %+v, %v", res, err)
	}
	if _, obj, _ := env.read("b/0.txt"); obj.Source != SourceLocal {
		t.Error("invalidating a/ dropped b/0.txt")
	}
	if _, obj, _ := env.read("a/0.txt"); obj.Source != SourceRemote {
		t.Error("a/0.txt was not dropped")
	}

	if _, err := env.node.DeletePrefix(ctx, "photos", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("delete with an empty prefix: %v", err)
	}
	if _, err := env.node.DeletePrefix(ctx, "other", "a/"); !errors.Is(err, ErrForbidden) {
		t.Errorf("delete in a bucket not served: %v", err)
	}
	res, err = env.node.DeletePrefix(ctx, "photos", "a/")
	if err != nil || res.Deleted != 5 || res.Failed != 0 || res.More {
		t.Fatalf("delete a/: %+v, %v", res, err)
	}
	for i := range 5 {
		key := fmt.Sprintf("a/%d.txt", i)
		if _, err := env.origin.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s is still in the bucket: %v", key, err)
		}
		if _, _, err := env.read(key); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s is still served: %v", key, err)
		}
	}
	if got, _, err := env.read("b/4.txt"); err != nil || got != "under b" {
		t.Errorf("b/4.txt after deleting a/: %q, %v", got, err)
	}
	// A key cached here but gone from the bucket's listing is deleted too.
	env.write("c/gone.txt", "cached, then removed behind the node's back")
	env.read("c/gone.txt")
	if err := env.origin.Remove(ctx, "c/gone.txt"); err != nil {
		t.Fatal(err)
	}
	if res, err := env.node.DeletePrefix(ctx, "photos", "c/"); err != nil || res.Deleted != 1 {
		t.Errorf("delete c/: %+v, %v", res, err)
	}
	if m, err := env.node.StatKey(ctx, "photos", "c/gone.txt"); !errors.Is(err, ErrNotFound) {
		t.Errorf("c/gone.txt after deleting c/: %+v, %v", m, err)
	}
}

// blockingOrigin holds every Get until release is closed.
type blockingOrigin struct {
	storage.Origin
	release chan struct{}
}

func (b *blockingOrigin) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, storage.ObjectInfo, error) {
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, storage.ObjectInfo{}, ctx.Err()
	}
	return b.Origin.Get(ctx, key, off, n)
}

// A fill a peer routes here while this node routes its own fill of the
// key elsewhere is refused as misdirected, so two nodes never wait on
// each other; other callers join the fill as usual.
func TestRoutedFillRefusedWhileRoutingElsewhere(t *testing.T) {
	defer func(g time.Duration) { abandonGrace = g }(abandonGrace)
	abandonGrace = 10 * time.Millisecond // a refused fill's caller leaving must not cancel what never started
	env := newKeyEnv(t, RevalidateNever)
	env.write("k.txt", "body")
	id := journal.KeyID("photos", "k.txt")
	blocked := &blockingOrigin{Origin: env.origin, release: make(chan struct{})}
	req := env.node.keyFillRequest("photos", "k.txt", nil, false, false)
	req.remote, req.viaOwner = blocked, true // as if routed to an owner
	f := env.node.fills.start(req, false)
	defer f.leave()
	if _, _, err := env.node.FillKey(context.Background(), "photos", "k.txt", nil); !errors.Is(err, ErrMisdirected) {
		t.Errorf("a routed fill joining a routed fill: %v, want ErrMisdirected", err)
	}
	time.Sleep(5 * abandonGrace)
	done := make(chan error, 1)
	go func() {
		_, _, err := env.read("k.txt")
		done <- err
	}()
	close(blocked.release)
	if err := <-done; err != nil {
		t.Errorf("a client's read joining the fill: %v", err)
	}
	if err := f.wait(); err != nil {
		t.Errorf("the fill: %v", err)
	}
	if _, obj, _ := env.read("k.txt"); obj.Source != SourceLocal || obj.entry.ID != id {
		t.Errorf("after the fill: from %v", obj.Source)
	}
}

// replacingOrigin replaces the object at its key with another of the same
// size right after the first part of a fetch is asked for.
type replacingOrigin struct {
	storage.Origin
	key, with string
	once      sync.Once
}

func (r *replacingOrigin) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, storage.ObjectInfo, error) {
	rc, info, err := r.Origin.Get(ctx, key, off, n)
	if key == r.key && off == 0 {
		r.once.Do(func() {
			if _, err := r.Origin.PutTyped(ctx, key, strings.NewReader(r.with), int64(len(r.with)), "", nil); err != nil {
				panic(err)
			}
		})
	}
	return rc, info, err
}

// An object replaced in its bucket while its parts are being fetched fails
// the fetch (each part's ETag must be the first's, and so must that of the
// single stream a fetch without parallel parts asks for next) instead of
// committing a body that blends two versions; the next read fetches the
// new one whole.
func TestPartedFetchRefusesAChangingObject(t *testing.T) {
	for _, concurrency := range []int{2, 1} {
		t.Run(fmt.Sprint("concurrency=", concurrency), func(t *testing.T) {
			env := newKeyEnvWith(t, RevalidateNever, func(c *Config) { c.FetchPartSize, c.FetchConcurrency = 64<<10, concurrency })
			old, replacement := strings.Repeat("o", 300_000), strings.Repeat("n", 300_000)
			env.write("big.bin", old)
			env.origin.Origin = &replacingOrigin{Origin: env.origin.Origin, key: "big.bin", with: replacement}
			got, _, err := env.read("big.bin")
			if err == nil {
				t.Fatalf("a read across the replacement succeeded with %d bytes (%d of the old object's)", len(got), strings.Count(got, "o"))
			}
			got, _, err = env.read("big.bin")
			if err != nil || got != replacement {
				t.Errorf("the read after the replacement: %d bytes, %v", len(got), err)
			}
		})
	}
}
