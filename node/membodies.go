package node

import (
	"sync"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/cache"
	"github.com/objstore/objstore/storage"
)

// MaxMemoryBody is the largest body the memory cache holds.
const MaxMemoryBody = 64 << 10

// memBodies keeps the bodies of small objects that were read from this
// node's disk in memory, within a byte budget, least recently used out
// first. A hit on a small body is otherwise mostly system calls (open,
// stat, read, close) around a few kilobytes; from memory it costs none.
//
// A body enters only after a whole read from disk, verified as every read
// is (its segment checksums checked, or its seal opened; a body left in
// the legacy raw form has neither), so what is kept is what the disk held
// when it was sound. Entries are keyed by ID and checksum, and a read
// always looks the journal up first: a body replaced under the same ID has
// another checksum and misses, and one dropped, evicted or deleted is no
// longer in the journal, so it is never served from here even before its
// entry leaves. Bodies of encrypted disks are held in the clear, as every
// body being served is.
type memBodies struct {
	budget int64 // bytes; 0 disables the cache

	mu     sync.Mutex
	bodies map[ulid.ULID]memBody
	order  cache.Policy
}

// memBody is a kept body and the checksum it was read under.
type memBody struct {
	sum  storage.Sum
	data []byte
}

func newMemBodies(budget int64) *memBodies {
	return &memBodies{budget: max(budget, 0), bodies: make(map[ulid.ULID]memBody), order: cache.NewLRU()}
}

// fits reports whether a body of size bytes may be kept.
func (m *memBodies) fits(size int64) bool {
	return m.budget > 0 && size <= MaxMemoryBody && size <= m.budget/16
}

// get returns the kept body of id with checksum sum.
func (m *memBodies) get(id ulid.ULID, sum storage.Sum) ([]byte, bool) {
	if m.budget == 0 {
		return nil, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.bodies[id]
	if !ok || b.sum != sum {
		return nil, false
	}
	m.order.Touch(id)
	return b.data, true
}

// put keeps data as the body of id with checksum sum, making room by
// dropping the least recently used bodies. The caller must not change
// data afterwards.
func (m *memBodies) put(id ulid.ULID, sum storage.Sum, data []byte) {
	if !m.fits(int64(len(data))) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bodies[id] = memBody{sum: sum, data: data}
	m.order.Add(id, int64(len(data)))
	if m.order.Bytes() <= m.budget {
		return
	}
	m.order.Victims(func(victim ulid.ULID) bool {
		delete(m.bodies, victim)
		m.order.Remove(victim)
		return m.order.Bytes() > m.budget
	})
}

// drop forgets the body of id, if kept.
func (m *memBodies) drop(id ulid.ULID) {
	if m.budget == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.bodies, id)
	m.order.Remove(id)
}

// stats reports how many bodies are kept and their bytes.
func (m *memBodies) stats() (n int, bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.bodies), m.order.Bytes()
}
