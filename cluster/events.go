package cluster

import "sync"

// eventQueue is an unbounded FIFO between memberlist's callbacks, which must
// never block, and the Events channel, which a slow receiver may leave full.
type eventQueue struct {
	wake chan struct{} // capacity 1: "items may be non-empty"

	mu     sync.Mutex // guards the fields below
	items  []Event
	closed bool
	warnAt int // backlog size at which to warn next
}

const eventBacklogWarn = 1024

func newEventQueue() *eventQueue {
	return &eventQueue{wake: make(chan struct{}, 1), warnAt: eventBacklogWarn}
}

// push appends ev unless the queue is closed. grew reports that the backlog
// just reached another warning threshold (1024, 2048, 4096...), with n its
// size.
func (q *eventQueue) push(ev Event) (n int, grew bool) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, false
	}
	q.items = append(q.items, ev)
	n = len(q.items)
	if n >= q.warnAt {
		q.warnAt *= 2
		grew = true
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
	return n, grew
}

// take removes and returns everything queued.
func (q *eventQueue) take() []Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	if len(items) < q.warnAt/2 {
		q.warnAt = max(eventBacklogWarn, q.warnAt/2)
	}
	return items
}

// close drops queued events and refuses new ones: memberlist may still call
// us after its Shutdown returns.
func (q *eventQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.items = nil
}
