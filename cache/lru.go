package cache

import (
	"sync"

	"github.com/oklog/ulid/v2"
)

// lru evicts the least recently added or touched body first.
type lru struct {
	mu      sync.Mutex
	entries map[ulid.ULID]*entry
	order   list // front = least recently used
	clock   uint64
}

// NewLRU returns a Policy whose Victims offers held ids least recently used
// first, where both Add and Touch count as a use. It needs no capacity
// because the order does not depend on it. The result is safe for concurrent
// use by multiple goroutines.
//
// LRU is kept as the baseline and as an escape hatch; it is not scan
// resistant: one pass over many cold bodies flushes the whole cache.
func NewLRU() Policy {
	c := &lru{entries: make(map[ulid.ULID]*entry)}
	c.order.init()
	return c
}

func (c *lru) pushBack(e *entry) {
	c.clock++
	e.stamp = c.clock
	e.seg = segLRU
	c.order.pushBack(e)
}

// Add implements Policy.
func (c *lru) Add(id ulid.ULID, size int64) {
	size = clampSize(size)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok {
		c.order.remove(e)
		e.size = size
		c.pushBack(e)
		return
	}
	e := &entry{id: id, size: size}
	c.entries[id] = e
	c.pushBack(e)
}

// Touch implements Policy. Unknown ids are ignored.
func (c *lru) Touch(id ulid.ULID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok {
		c.order.remove(e)
		c.pushBack(e)
	}
}

// Remove implements Policy.
func (c *lru) Remove(id ulid.ULID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok {
		c.order.remove(e)
		e.seg = segNone
		delete(c.entries, id)
	}
}

// Victims implements Policy: least recently used first.
func (c *lru) Victims(fn func(id ulid.ULID) bool) {
	walkVictims(&c.mu, c, fn)
}

func (c *lru) first() *entry         { return c.order.front() }
func (c *lru) after(e *entry) *entry { return c.order.after(e) }

// Len implements Policy.
func (c *lru) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Bytes implements Policy.
func (c *lru) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.bytes
}
