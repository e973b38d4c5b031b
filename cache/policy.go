// Package cache decides which locally held object bodies a node evicts
// first when its disk quota (--max-disk) is exceeded.
//
// The package only orders bodies; it never touches disk. The node tells a
// Policy what it stores (Add), reads (Touch) and deletes (Remove), and when it
// is over quota asks for victims (Victims) and deletes the ones it can. Two
// policies are provided: LRU, and W-TinyLFU, which resists scans and is the
// default (see docs/cache-policy.md for the simulation behind that choice).
//
// All policies returned by this package are safe for concurrent use by
// multiple goroutines.
package cache

import (
	"fmt"
	"strings"

	"github.com/oklog/ulid/v2"
)

// Policy orders the bodies a node holds for eviction.
//
// Implementations in this package are safe for concurrent use: every method
// takes an internal mutex, and Victims releases it while its callback runs.
// Sizes are in bytes; a negative size is treated as 0.
type Policy interface {
	// Add records a newly stored body of the given size (bytes). Adding a
	// key already present updates its size and counts as an access. Add
	// itself counts as the access that caused the store, so callers should
	// not also Touch the id for the same request.
	Add(id ulid.ULID, size int64)
	// Touch records a read of id. Unknown ids are ignored by LRU; W-TinyLFU
	// records them in its frequency history so that a body read often while
	// not held is admitted more readily once it is stored.
	Touch(id ulid.ULID)
	// Remove forgets id (deleted, invalidated or evicted). Removing an id
	// that is not held is a no-op.
	Remove(id ulid.ULID)
	// Victims calls fn with held ids in the order they should be evicted,
	// best victim first, until fn returns false or no ids are left. fn may
	// decline an id (for example the only copy of something) by returning
	// true without removing it; it is then not offered again by this call,
	// but stays first in line for the next one. Each call offers an id at
	// most once. The policy's lock is not held while fn runs, so fn may call
	// any method of the policy, typically Remove(id) for the id it evicted.
	// Concurrent Victims calls may offer the same id to each caller; the
	// node should run a single evictor. A nil fn is a no-op.
	Victims(fn func(id ulid.ULID) bool)
	// Len reports how many bodies are held.
	Len() int
	// Bytes reports the total size of the bodies held.
	Bytes() int64
}

// Policy names accepted by New.
const (
	// NameLRU selects NewLRU: evict the least recently used body first.
	NameLRU = "lru"
	// NameTinyLFU selects NewTinyLFU: W-TinyLFU, scan resistant.
	NameTinyLFU = "tinylfu"
	// DefaultPolicy is the policy a node should use unless configured
	// otherwise. It is W-TinyLFU because, on the simulated Zipf workloads
	// with scans, it had a higher hit ratio than LRU at every cache size
	// tried, and kept the hot set through scans (docs/cache-policy.md).
	DefaultPolicy = NameTinyLFU
)

// Names returns the policy names New accepts, in a stable order suitable for
// flag help text.
func Names() []string {
	return []string{NameLRU, NameTinyLFU}
}

// New returns the policy called name (case-insensitive, surrounding space
// ignored) for a cache of capacityBytes. LRU ignores the capacity; W-TinyLFU
// needs it to size its window and main segments and should be given the same
// quota the node evicts down to. An unknown name is an error that lists the
// valid names.
func New(name string, capacityBytes int64) (Policy, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case NameLRU:
		return NewLRU(), nil
	case NameTinyLFU:
		return NewTinyLFU(capacityBytes), nil
	}
	return nil, fmt.Errorf("cache: unknown policy %q (valid: %s)", name, strings.Join(Names(), ", "))
}

// clampSize maps invalid (negative) sizes to 0 so that byte accounting can
// never go negative because of a caller bug.
func clampSize(size int64) int64 {
	if size < 0 {
		return 0
	}
	return size
}
