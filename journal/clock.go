package journal

import (
	"fmt"
	"sync"
	"time"
)

// Timestamp is a hybrid logical clock reading: wall time in nanoseconds
// since the Unix epoch, and a logical counter that orders events within one
// wall tick or while a faster remote clock is being followed.
type Timestamp struct {
	Wall    int64
	Logical uint32
}

// Compare returns -1, 0 or +1 as t is before, equal to or after u.
func (t Timestamp) Compare(u Timestamp) int {
	switch {
	case t.Wall < u.Wall:
		return -1
	case t.Wall > u.Wall:
		return 1
	case t.Logical < u.Logical:
		return -1
	case t.Logical > u.Logical:
		return 1
	}
	return 0
}

// Time returns the wall component as a time.Time.
func (t Timestamp) Time() time.Time { return time.Unix(0, t.Wall).UTC() }

// IsZero reports whether t is the zero reading.
func (t Timestamp) IsZero() bool { return t.Wall == 0 && t.Logical == 0 }

// String formats t as wall.logical.
func (t Timestamp) String() string { return fmt.Sprintf("%d.%d", t.Wall, t.Logical) }

// Clock is a hybrid logical clock (Kulkarni et al., 2014). Its readings never
// go backwards, and once it has observed a timestamp from another node every
// later reading is greater than it, so a write made after seeing another
// node's write wins over it even when this node's wall clock lags behind.
// A Clock is safe for concurrent use.
type Clock struct {
	physical func() time.Time

	mu   sync.Mutex // guards last
	last Timestamp
}

// NewClock returns a clock reading physical time from now; nil means
// time.Now. Tests inject a skewed or frozen source here.
func NewClock(now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{physical: now}
}

// Now returns a reading greater than every reading returned or observed
// before.
func (c *Clock) Now() Timestamp {
	pt := c.physical().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if pt > c.last.Wall {
		c.last = Timestamp{Wall: pt}
	} else {
		c.last.Logical++
	}
	return c.last
}

// Observe merges a timestamp seen in another node's write, so that readings
// after it are greater.
func (c *Clock) Observe(ts Timestamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ts.Compare(c.last) > 0 {
		c.last = ts
	}
}
