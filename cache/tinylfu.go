package cache

import (
	"sync"

	"github.com/oklog/ulid/v2"
)

// tinyLFU is W-TinyLFU (Einziger, Friedman, Manes: "TinyLFU: A Highly
// Efficient Cache Admission Policy", and the Caffeine library) adapted to a
// cache that cannot refuse a write and weighs entries in bytes.
//
// New bodies enter a small LRU window (1% of capacity) so that a burst of
// accesses to something new can build up frequency. Bodies pushed out of the
// window become candidates. While the cache is within capacity candidates
// simply join the main area; when it is over, each candidate must beat the
// main area's victim (the probation LRU) on estimated frequency, ties going
// to the victim. The loser of each duel moves to the doomed list, which
// Victims offers first. Because the node has already written the body, a
// rejected candidate is evicted like any other victim; that is what keeps a
// one-off scan from displacing the hot set.
//
// The main area is a segmented LRU: probation (about 20%) holds bodies not
// read since admission; a read promotes to protected (about 80%), whose
// overflow is demoted back to probation, so only bodies read at least twice
// resist eviction.
//
// Admission is resolved lazily inside Victims rather than in Add, so the
// lock is never held across the node's deletes and an eviction round does
// exactly as many duels as it needs victims.
type tinyLFU struct {
	mu sync.Mutex

	capacity     int64
	windowCap    int64
	protectedCap int64

	entries   map[ulid.ULID]*entry
	window    list // front = least recently used
	cand      list // front = first to leave the window
	probation list // front = least recently used; main's victim end
	protected list // front = least recently used
	doomed    list // front = offered first by Victims
	bytes     int64
	clock     uint64
	sketch    sketch
}

// NewTinyLFU returns a W-TinyLFU Policy for a cache of capacityBytes
// (negative is treated as 0). capacityBytes should be the quota the node
// evicts down to: while Bytes() exceeds it, Victims first offers the bodies
// that lost admission, which is what makes the policy scan resistant. Victims
// keeps offering sensible victims past that point (probation, then protected,
// then window, least recently used first) if the node needs more room. The
// result is safe for concurrent use by multiple goroutines.
func NewTinyLFU(capacityBytes int64) Policy {
	capacityBytes = clampSize(capacityBytes)
	windowCap := capacityBytes / 100
	mainCap := capacityBytes - windowCap
	p := &tinyLFU{
		capacity:     capacityBytes,
		windowCap:    windowCap,
		protectedCap: mainCap - mainCap/5,
		entries:      make(map[ulid.ULID]*entry),
	}
	for _, l := range []*list{&p.window, &p.cand, &p.probation, &p.protected, &p.doomed} {
		l.init()
	}
	p.sketch.init(minSketchWidth)
	return p
}

func (p *tinyLFU) list(s segment) *list {
	switch s {
	case segWindow:
		return &p.window
	case segCand:
		return &p.cand
	case segProbation:
		return &p.probation
	case segProtected:
		return &p.protected
	case segDoomed:
		return &p.doomed
	}
	return nil
}

// move appends e to the list for segment to, taking it off its current list
// if it is on one.
func (p *tinyLFU) move(e *entry, to segment) {
	if l := p.list(e.seg); l != nil {
		l.remove(e)
	}
	p.clock++
	e.stamp = p.clock
	e.seg = to
	p.list(to).pushBack(e)
}

// live is what the cache holds once the doomed bodies, which the node is
// expected to delete, are gone. Admission is decided against it so a doomed
// body still on disk does not cause a second eviction.
func (p *tinyLFU) live() int64 {
	return p.bytes - p.doomed.bytes
}

// Add implements Policy.
func (p *tinyLFU) Add(id ulid.ULID, size int64) {
	size = clampSize(size)
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[id]
	if !ok {
		// Grow before counting so this access is not lost to the reset.
		p.sketch.ensure(len(p.entries) + 1)
	}
	p.sketch.increment(hashID(id))
	if ok {
		p.list(e.seg).bytes += size - e.size
		p.bytes += size - e.size
		e.size = size
		p.access(e)
	} else {
		e = &entry{id: id, size: size}
		p.entries[id] = e
		p.bytes += size
		p.move(e, segWindow)
	}
	p.maintain()
}

// Touch implements Policy. For an id not held it only records the access in
// the frequency sketch.
func (p *tinyLFU) Touch(id ulid.ULID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sketch.increment(hashID(id))
	if e, ok := p.entries[id]; ok {
		p.access(e)
		p.maintain()
	}
}

// access repositions a held entry after a read; the caller has counted the
// read in the sketch and runs maintain afterwards.
func (p *tinyLFU) access(e *entry) {
	switch e.seg {
	case segWindow, segProtected:
		p.move(e, e.seg)
	case segProbation:
		p.move(e, segProtected)
	case segDoomed:
		// Read after losing admission: new evidence it is wanted, so give
		// it another chance in main rather than evicting it next.
		p.move(e, segProbation)
	case segCand:
		// Stays put: its higher count is what its pending duel will see.
	}
}

// Remove implements Policy.
func (p *tinyLFU) Remove(id ulid.ULID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[id]
	if !ok {
		return
	}
	p.list(e.seg).remove(e)
	e.seg = segNone
	p.bytes -= e.size
	delete(p.entries, id)
	p.maintain()
}

// maintain restores the segment bounds after any change: window overflow
// becomes candidates, protected overflow is demoted to probation, and if
// everything fits, candidates are admitted without a duel.
func (p *tinyLFU) maintain() {
	for p.window.bytes > p.windowCap {
		p.move(p.window.front(), segCand)
	}
	for p.protected.bytes > p.protectedCap {
		p.move(p.protected.front(), segProbation)
	}
	p.admitIfRoom()
}

func (p *tinyLFU) admitIfRoom() {
	if p.live() > p.capacity {
		return
	}
	for e := p.cand.front(); e != nil; e = p.cand.front() {
		p.move(e, segProbation)
	}
}

// Victims implements Policy. Bodies that lost admission come first, in the
// order they lost; after those, further duels are run one per victim needed.
func (p *tinyLFU) Victims(fn func(id ulid.ULID) bool) {
	walkVictims(&p.mu, p, fn)
}

func (p *tinyLFU) first() *entry {
	if e := p.doomed.front(); e != nil {
		return e
	}
	return p.duel()
}

func (p *tinyLFU) after(e *entry) *entry {
	if n := p.doomed.after(e); n != nil {
		return n
	}
	return p.duel()
}

// duel picks the next body to evict, moves it to the doomed list and returns
// it, or returns nil if every held body is already doomed. It follows
// Caffeine's evictFromMain: the candidate is the oldest body that left the
// window (or, when none is waiting, the window's LRU body); the victim is
// the probation LRU body (or protected's, or the window's, when the earlier
// lists are empty). The candidate must have a strictly higher estimated
// frequency to win, so new, once-read bodies lose to anything read before.
func (p *tinyLFU) duel() *entry {
	c := p.cand.front()
	if c == nil {
		c = p.window.front()
	}
	v := p.probation.front()
	if v == nil {
		v = p.protected.front()
	}
	if v == nil {
		v = p.window.front()
	}
	var loser *entry
	switch {
	case c == nil && v == nil:
		return nil
	case c == nil:
		loser = v
	case v == nil || v == c:
		loser = c
	case c.size > p.capacity:
		// Could never fit; admitting it would flush everything else.
		loser = c
	case p.sketch.estimate(hashID(c.id)) > p.sketch.estimate(hashID(v.id)):
		loser = v
		if c.seg == segCand {
			p.move(c, segProbation)
		}
		// A winning window body stays in the window, as in Caffeine.
	default:
		loser = c
	}
	p.move(loser, segDoomed)
	p.admitIfRoom()
	return loser
}

// Len implements Policy.
func (p *tinyLFU) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

// Bytes implements Policy. It includes doomed bodies until they are removed,
// because they are still on disk.
func (p *tinyLFU) Bytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bytes
}
