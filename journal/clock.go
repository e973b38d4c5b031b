package journal

import (
	"errors"
	"fmt"
	"math"
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

// Next returns the least timestamp after t.
func (t Timestamp) Next() Timestamp {
	if t.Logical == math.MaxUint32 {
		return Timestamp{Wall: t.Wall + 1}
	}
	return Timestamp{Wall: t.Wall, Logical: t.Logical + 1}
}

// IsZero reports whether t is the zero reading.
func (t Timestamp) IsZero() bool { return t.Wall == 0 && t.Logical == 0 }

// String formats t as wall.logical.
func (t Timestamp) String() string { return fmt.Sprintf("%d.%d", t.Wall, t.Logical) }

// ErrClockOffset is returned, wrapped, for a timestamp further ahead of
// the local physical clock than the clock's maximum offset allows.
var ErrClockOffset = errors.New("journal: timestamp too far ahead of the local clock")

// Clock is a hybrid logical clock (Kulkarni et al., 2014). Its readings never
// go backwards, and once it has observed a timestamp from another node every
// later reading is greater than it, so a write made after seeing another
// node's write wins over it even when this node's wall clock lags behind.
//
// A clock with a maximum offset refuses to observe a timestamp more than
// that far ahead of its own physical time (as CockroachDB bounds its HLC),
// so one peer with a broken clock, or a forged message, cannot drag every
// node's versions into the future. A Clock is safe for concurrent use.
type Clock struct {
	physical  func() time.Time
	maxOffset time.Duration

	mu   sync.Mutex // guards last
	last Timestamp
}

// NewClock returns a clock reading physical time from now (nil means
// time.Now; tests inject a skewed or frozen source) that refuses remote
// timestamps more than maxOffset ahead of it; zero or less means no bound.
func NewClock(now func() time.Time, maxOffset time.Duration) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{physical: now, maxOffset: maxOffset}
}

// MaxOffset returns the bound given to NewClock.
func (c *Clock) MaxOffset() time.Duration { return c.maxOffset }

// Now returns a reading greater than every reading returned or observed
// before. The logical counter never wraps: when it is exhausted the wall
// component moves on by a nanosecond instead.
func (c *Clock) Now() Timestamp {
	pt := c.physical().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case pt > c.last.Wall:
		c.last = Timestamp{Wall: pt}
	case c.last.Logical == math.MaxUint32:
		c.last = Timestamp{Wall: c.last.Wall + 1}
	default:
		c.last.Logical++
	}
	return c.last
}

// Check reports, with an error matching ErrClockOffset, whether ts is too
// far ahead of the local physical clock to be observed. It changes nothing.
func (c *Clock) Check(ts Timestamp) error {
	if c.maxOffset <= 0 {
		return nil
	}
	limit := c.physical().Add(c.maxOffset).UnixNano()
	if ts.Wall > limit {
		return fmt.Errorf("%w: %s is %v ahead, the limit is %v", ErrClockOffset, ts.Time().Format(time.RFC3339Nano),
			time.Duration(ts.Wall-limit)+c.maxOffset, c.maxOffset)
	}
	return nil
}

// Observe merges a timestamp seen in another node's write, so that readings
// after it are greater. A timestamp that Check refuses is not observed, and
// its error is returned.
func (c *Clock) Observe(ts Timestamp) error {
	if err := c.Check(ts); err != nil {
		return err
	}
	c.Restore(ts)
	return nil
}

// Restore moves the clock past ts without any bound: for the versions in
// the node's own journal at start-up, so a node whose wall clock stepped
// back while it was down still orders its new writes after its old ones.
func (c *Clock) Restore(ts Timestamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ts.Compare(c.last) > 0 {
		c.last = ts
	}
}
