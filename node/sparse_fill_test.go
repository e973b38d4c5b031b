package node

import (
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests meet a sparse copy and a whole fill (or a failing disk) of
// the same object at chosen moments, stopping a goroutine at a step of
// the disk's (SetFaultHook) when its stack shows the function named.

// calledFrom reports whether the calling goroutine is inside fn.
func calledFrom(fn string) bool {
	buf := make([]byte, 1<<16)
	return strings.Contains(string(buf[:runtime.Stack(buf, false)]), fn)
}

// holdAt stops the first goroutine that reaches step inside fn until
// release is closed; blocked is closed when it gets there.
func holdAt(env *sparseEnv, step, fn string) (blocked, release chan struct{}) {
	blocked, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	env.node.disk.SetFaultHook(func(s string) error {
		if s == step && calledFrom(fn) {
			once.Do(func() { close(blocked); <-release })
		}
		return nil
	})
	return blocked, release
}

// A whole fill that commits while the sparse copy is being assembled
// keeps its body: the assembly, finding its copy dropped, removes no file
// a record points at.
func TestSparseAssemblyKeepsAFillsBody(t *testing.T) {
	env := newSparseEnv(t, 3*sparsePart)
	env.mustRead(0, 10)
	env.mustRead(sparsePart, 10)
	env.settle()
	blocked, release := holdAt(env, "before-sync", "assembleBody")
	env.mustRead(2*sparsePart, 10) // the last part: assembly begins
	<-blocked
	env.node.sparse.mu.Lock()
	c := env.node.sparse.copies[env.id]
	env.node.sparse.mu.Unlock()
	e, _, err := env.node.lookup(env.id)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.node.startFill(env.id, &e, true).wait(); err != nil {
		t.Fatal(err)
	}
	close(release)
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return !c.assembling })
	b, err := env.node.journal.Blob(env.id)
	if err != nil {
		t.Fatal("the fill's record is gone")
	}
	f, _, err := env.node.disk.Open(env.id, b.Sum)
	if err != nil {
		t.Fatalf("the journal records a body whose file is gone: %v", err)
	}
	f.Close()
}

// A reader of a sparse copy goes on reading when a whole fill of the same
// object commits while one of its parts is still streaming in.
func TestSparseReaderGoesOnWhenAFillCommits(t *testing.T) {
	env := newSparseEnv(t, 4*sparsePart)
	env.mustRead(0, 10)
	env.settle()
	blocked, release := holdAt(env, "before-sync", "fetchPart")
	e, _, _ := env.node.lookup(env.id)
	obj, err := env.node.Get(t.Context(), env.id, GetOptions{Fetch: true, Range: &Range{Offset: 0, Length: 4 * sparsePart}})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	buf := make([]byte, 10)
	if _, err := io.ReadFull(obj.Content, buf); err != nil { // part 0; the next ones are fetched ahead
		t.Fatal(err)
	}
	<-blocked
	if err := env.node.startFill(env.id, &e, true).wait(); err != nil {
		t.Fatal(err)
	}
	close(release)
	c := obj.Content.(*sparseReader).c
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.parts) == 0 })
	rest, err := io.ReadAll(obj.Content)
	if err != nil {
		t.Fatalf("the reader of a copy made whole failed: %v", err)
	}
	if string(rest) != string(env.body[10:]) {
		t.Fatal("the reader got other bytes")
	}
}

// An entry a sparse copy recorded without its checksum learns it from a
// whole fill, so the body then counts as held and is read locally.
func TestSparseWholeFillAfterDropIsHeld(t *testing.T) {
	env := newSparseEnv(t, 3*sparsePart)
	env.mustRead(0, 10)
	env.settle()
	env.node.DropCopy(context.Background(), env.id)
	for i := range 3 {
		_, obj, err := (&testEnv{node: env.node}).read(env.id, true)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]Source{true: SourceRemote, false: SourceLocal}[i == 0]; obj.Source != want {
			t.Errorf("read %d from %s, want %s", i, obj.Source, want)
		}
	}
	if got := env.counter.bytes.Load(); got != sparsePart+3*sparsePart {
		t.Errorf("pulled %d bytes: the whole body was fetched more than once", got)
	}
}

// A copy whose assembly keeps failing (a disk error) makes repair and
// pre-warm fail after one more try, not loop.
func TestSparseAwaitWholeGivesUp(t *testing.T) {
	env := newSparseEnv(t, 3*sparsePart)
	env.mustRead(0, 10)
	env.settle()
	var attempts atomic.Int64
	env.node.disk.SetFaultHook(func(step string) error {
		if step == "before-sync" && calledFrom("assembleBody") {
			attempts.Add(1)
			return errors.New("injected disk error")
		}
		return nil
	})
	e, _, _ := env.node.lookup(env.id)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := env.node.fillSparse(ctx, e); err == nil || ctx.Err() != nil {
		t.Fatalf("fillSparse: %v", err)
	}
	if n := attempts.Load(); n > 2 {
		t.Errorf("%d assembly attempts", n)
	}
}

// A full read of an object whose sparse copy is fetching parts joins the
// copy: the parts in flight are not fetched a second time.
func TestSparseFullReadJoinsACopyInUse(t *testing.T) {
	env := newSparseEnv(t, 4*sparsePart)
	blocked, release := holdAt(env, "before-sync", "fetchPart")
	done := make(chan error, 1)
	go func() { _, err := env.read(0, 10); done <- err }()
	<-blocked // part 0 has arrived and waits to be made durable
	got := make(chan error, 1)
	go func() {
		s, obj, err := (&testEnv{node: env.node}).read(env.id, true)
		if err == nil && (!obj.Sparse || s != string(env.body)) {
			err = errors.New("the full read did not go through the sparse copy, or got other bytes")
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond) // the full read joins meanwhile
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	env.settle()
	if n := env.counter.bytes.Load(); n != int64(len(env.body)) {
		t.Errorf("a ranged and a full read together pulled %d bytes; the object has %d", n, len(env.body))
	}
}
