package node

import (
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Misses remembered: an ID the remote tier did not have is answered 404
// from memory for Config.MissTTL (a minute by default), so a client asking again and again for IDs that
// do not exist (X-Meta-Fetch) costs one remote request per ID and minute,
// not one per request. The memory is bounded: past maxMisses the oldest
// are forgotten first. Only total misses are remembered: once the journal
// knows an ID (a write, a merge), reads of it never consult this.
const maxMisses = 1 << 16

// DefaultMissTTL is Config.MissTTL's default.
const DefaultMissTTL = time.Minute

// missCache is a bounded, expiring set of IDs. It is safe for concurrent
// use.
type missCache struct {
	mu    sync.Mutex // guards seen and order
	seen  map[ulid.ULID]time.Time
	order []ulid.ULID // in the order added, for forgetting the oldest
	now   func() time.Time
	ttl   time.Duration // how long a miss is remembered; 0 remembers none
}

func (c *missCache) has(id ulid.ULID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.seen[id]
	return ok && c.clock().Sub(at) < c.ttl
}

// forget drops id, once the journal knows it (a write through this node).
func (c *missCache) forget(id ulid.ULID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.seen, id) // its place in order goes with the oldest
}

func (c *missCache) add(id ulid.ULID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = make(map[ulid.ULID]time.Time)
	}
	if _, ok := c.seen[id]; !ok {
		c.order = append(c.order, id)
	}
	c.seen[id] = c.clock()
	for len(c.order) > maxMisses {
		delete(c.seen, c.order[0])
		c.order = c.order[1:]
	}
}

func (c *missCache) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}
