package node

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/journal"
)

// A small body read from disk is served from memory afterwards: the same
// bytes, the disk untouched (damage done to it after the read is not
// served, and is the scrub's to find), within the budget, and never after
// its object is deleted.
func TestMemoryCache(t *testing.T) {
	env := newEnv(t)
	env.memCache = 64 << 10 // bodies up to 4 KiB
	env.restart()
	ctx := context.Background()

	id := ulid.Make()
	env.put(id, journal.LevelRemote, "small and hot")
	for i := range 3 {
		got, obj, err := env.read(id, false)
		if err != nil || got != "small and hot" || obj.Source != SourceLocal {
			t.Fatalf("read %d: %q from %v, %v", i, got, obj.Source, err)
		}
	}
	if n := env.node.counters.hitsMemory.Load(); n != 2 {
		t.Errorf("memory hits = %d after three reads, want 2", n)
	}
	rot(t, env, id, 2)
	if got, _, err := env.read(id, false); err != nil || got != "small and hot" {
		t.Errorf("read after the disk copy rotted: %q, %v", got, err)
	}
	if rep, err := env.node.Scrub(ctx); err != nil || rep.Damaged != 1 {
		t.Errorf("scrub = %+v, %v; want the rotted copy found", rep, err)
	}

	// Bodies over the largest kept size are read from disk every time.
	big := ulid.Make()
	env.put(big, journal.LevelLocal, strings.Repeat("b", 5<<10))
	before := env.node.counters.hitsMemory.Load()
	for range 2 {
		if got, _, err := env.read(big, false); err != nil || len(got) != 5<<10 {
			t.Fatalf("big read: %d bytes, %v", len(got), err)
		}
	}
	if env.node.counters.hitsMemory.Load() != before {
		t.Error("a body over the largest kept size was served from memory")
	}

	// The budget holds however many small bodies are read.
	for i := range 40 {
		small := ulid.Make()
		env.put(small, journal.LevelLocal, strings.Repeat(string(rune('a'+i%26)), 3<<10))
		env.read(small, false)
	}
	if n, bytes := env.node.mem.stats(); bytes > 64<<10 || n == 0 {
		t.Errorf("memory cache holds %d bodies, %d bytes; budget 64 KiB", n, bytes)
	}

	// A deleted object is not served from memory.
	kept := ulid.Make()
	env.put(kept, journal.LevelLocal, "deleted soon")
	env.read(kept, false)
	if _, err := env.node.Delete(ctx, kept, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.read(kept, false); !errors.Is(err, ErrDeleted) {
		t.Errorf("read after delete: %v, want ErrDeleted", err)
	}
}
