package cache

import (
	"sync"

	"github.com/oklog/ulid/v2"
)

// segment says which list of its policy an entry is on. segNone marks an
// entry that has been removed: a Victims walk may still hold a pointer to it
// after dropping the lock, and uses the marker to notice.
type segment uint8

const (
	segNone      segment = iota
	segLRU               // lru: the only list
	segWindow            // tinyLFU: admission window, LRU order
	segCand              // tinyLFU: left the window, awaiting admission, FIFO
	segProbation         // tinyLFU: main, not yet re-accessed, LRU order
	segProtected         // tinyLFU: main, accessed while in main, LRU order
	segDoomed            // tinyLFU: lost admission; offered first by Victims, FIFO
)

// entry is one held body. Entries are intrusive list nodes so that moving
// one between lists allocates nothing.
type entry struct {
	id         ulid.ULID
	size       int64
	prev, next *entry
	seg        segment
	// stamp changes every time the entry is placed on a list, so a Victims
	// walk can tell "still exactly where I left it" from "moved or removed
	// since I dropped the lock".
	stamp uint64
}

// inPlace reports whether e is still held at the position it had when its
// stamp was read.
func (e *entry) inPlace(stamp uint64) bool {
	return e.seg != segNone && e.stamp == stamp
}

// list is a doubly linked list of entries with a sentinel root. The front is
// always the end entries leave from (least recently used, or oldest), the
// back is where they are appended. A list must not be copied after init
// because root points to itself.
type list struct {
	root  entry
	len   int
	bytes int64
}

func (l *list) init() {
	l.root.next = &l.root
	l.root.prev = &l.root
}

// front returns the first entry, or nil if the list is empty.
func (l *list) front() *entry {
	if l.len == 0 {
		return nil
	}
	return l.root.next
}

// after returns the entry following e, or nil if e is the last one. e must
// be on l.
func (l *list) after(e *entry) *entry {
	if e.next == &l.root {
		return nil
	}
	return e.next
}

func (l *list) pushBack(e *entry) {
	e.prev = l.root.prev
	e.next = &l.root
	l.root.prev.next = e
	l.root.prev = e
	l.len++
	l.bytes += e.size
}

func (l *list) remove(e *entry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
	l.len--
	l.bytes -= e.size
}

// order is the view of a policy that walkVictims needs. Both methods are
// called with the policy's mutex held. first returns the best victim; after
// returns the victim following e, where e was returned by first or after and
// is still in place. Either may change the policy's state to produce the
// next victim (W-TinyLFU resolves admission lazily), and returns nil when no
// held entry is left to offer.
type order interface {
	first() *entry
	after(e *entry) *entry
}

// walkVictims implements Policy.Victims for both policies. It holds mu only
// while choosing the next id, never while fn runs, so fn can call back into
// the policy (normally Remove) without deadlocking.
//
// Positions can go stale while the lock is dropped, so after fn returns the
// walk resumes, in order of preference, after the entry it just offered (if
// fn declined it and nothing moved it), after the last offered entry that is
// still in place, or from the start. Both orders only ever append entries at
// their end, so resuming after an in-place entry skips nothing unoffered;
// restarting from the start is always correct and merely re-skips offered
// ids. Offered ids are remembered, so an id is offered at most once per call
// even if it moves or is removed and re-added concurrently.
func walkVictims(mu *sync.Mutex, o order, fn func(ulid.ULID) bool) {
	if fn == nil {
		return
	}
	var seen idSet
	var anchor *entry
	var anchorStamp uint64
	mu.Lock()
	e := o.first()
	for {
		for e != nil && seen.has(e.id) {
			e = o.after(e)
		}
		if e == nil {
			mu.Unlock()
			return
		}
		id, stamp := e.id, e.stamp
		mu.Unlock()
		seen.add(id)
		if !fn(id) {
			return
		}
		mu.Lock()
		switch {
		case e.inPlace(stamp):
			anchor, anchorStamp = e, stamp
			e = o.after(e)
		case anchor != nil && anchor.inPlace(anchorStamp):
			e = o.after(anchor)
		default:
			anchor = nil
			e = o.first()
		}
	}
}

// idSet remembers the ids one Victims call has offered. Most calls offer a
// handful of ids, so it starts as a short slice and only builds a map when
// many ids are declined.
type idSet struct {
	small []ulid.ULID
	big   map[ulid.ULID]struct{}
}

const idSetSmallMax = 16

func (s *idSet) has(id ulid.ULID) bool {
	if s.big != nil {
		_, ok := s.big[id]
		return ok
	}
	for _, x := range s.small {
		if x == id {
			return true
		}
	}
	return false
}

func (s *idSet) add(id ulid.ULID) {
	if s.big != nil {
		s.big[id] = struct{}{}
		return
	}
	if len(s.small) < idSetSmallMax {
		s.small = append(s.small, id)
		return
	}
	s.big = make(map[ulid.ULID]struct{}, 2*idSetSmallMax)
	for _, x := range s.small {
		s.big[x] = struct{}{}
	}
	s.big[id] = struct{}{}
	s.small = nil
}
