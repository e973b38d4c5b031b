package cache

import (
	"slices"
	"testing"

	"github.com/oklog/ulid/v2"
)

// fill adds keys first..last (inclusive) of size 10 to p.
func fill(p Policy, first, last int) {
	for k := first; k <= last; k++ {
		p.Add(id(k), 10)
	}
}

// evictOver removes whatever p offers until it is within capacity, the way
// the node and the simulation do, and returns the ids it removed.
func evictOver(t *testing.T, p Policy, capacity int64) []ulid.ULID {
	t.Helper()
	var out []ulid.ULID
	for p.Bytes() > capacity {
		before := p.Len()
		p.Victims(func(v ulid.ULID) bool {
			p.Remove(v)
			out = append(out, v)
			return p.Bytes() > capacity
		})
		if p.Len() == before {
			t.Fatalf("over capacity (%d > %d) but nothing offered", p.Bytes(), capacity)
		}
	}
	return out
}

// TestTinyLFUAdmission checks the duel the node relies on: a new body that
// was read before (history from Touch) displaces the main victim, while a
// body seen once loses to it and is itself what Victims offers first.
func TestTinyLFUAdmission(t *testing.T) {
	const capacity = 100
	p := NewTinyLFU(capacity)
	fill(p, 0, 9) // exactly full: 0..9 in probation, 0 least recent
	checkInvariants(t, p)

	for range 3 {
		p.Touch(id(100)) // not held: recorded as history only
	}
	p.Add(id(100), 10)
	if got := evictOver(t, p, capacity); !slices.Equal(got, ids(0)) {
		t.Fatalf("frequent newcomer: evicted %v, want the probation victim %v", got, ids(0))
	}

	p.Add(id(101), 10) // seen once; ties lose
	if got := evictOver(t, p, capacity); !slices.Equal(got, ids(101)) {
		t.Fatalf("one-off newcomer: evicted %v, want itself", got)
	}
	if p.Len() != 10 || p.Bytes() != capacity {
		t.Fatalf("Len/Bytes = %d/%d", p.Len(), p.Bytes())
	}
	checkInvariants(t, p)
}

// TestTinyLFUVictimOrder checks the whole order Victims gives when the node
// keeps asking: admission losers, then probation least recently used first,
// then protected (bodies read since admission), even when probation holds
// bodies newer than them; and that a doomed body read again loses its place
// at the front.
func TestTinyLFUVictimOrder(t *testing.T) {
	p := NewTinyLFU(100)
	fill(p, 0, 9)
	p.Touch(id(0)) // read again: promoted to protected
	for range 3 {
		p.Touch(id(60))
	}
	p.Add(id(60), 10) // frequent: will beat 1 and join probation after 0's read
	p.Add(id(50), 10) // once-read: will lose to 2
	want := ids(1, 50, 2, 3, 4, 5, 6, 7, 8, 9, 60, 0)
	if got := victims(t, p); !slices.Equal(got, want) {
		t.Fatalf("order: got %v, want %v", got, want)
	}
	checkInvariants(t, p)
	// Everything declined is doomed; reading 5 rescues it to the back.
	p.Touch(id(5))
	want = ids(1, 50, 2, 3, 4, 6, 7, 8, 9, 60, 0, 5)
	if got := victims(t, p); !slices.Equal(got, want) {
		t.Fatalf("after rescue: got %v, want %v", got, want)
	}
	checkInvariants(t, p)
}

// TestTinyLFUProtectedOverflowDemotes reads every body once, which would
// promote all of main to protected; protected is capped at 80% of main, so
// the least recently promoted overflow back to probation and are the first
// main victims. (Body 99 is the window's only body; read as often as main's
// head, it loses the tie and goes first.)
func TestTinyLFUProtectedOverflowDemotes(t *testing.T) {
	p := NewTinyLFU(1000) // window 10, main 990, protected 792: 79 bodies of 10
	fill(p, 0, 99)
	for k := range 100 {
		p.Touch(id(k))
	}
	checkInvariants(t, p)
	demoted := ids(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)
	want := append(ids(99), demoted...)
	want = append(want, ids(20, 21)...) // then protected, least recent first
	if got := victims(t, p); !slices.Equal(got[:len(want)], want) {
		t.Fatalf("first victims %v, want %v", got[:len(want)], want)
	}
}

// TestTinyLFUDeclinesAndDeletes covers what happens around evictions the
// node does not carry out, or deletions it makes for other reasons.
func TestTinyLFUDeclinesAndDeletes(t *testing.T) {
	t.Run("declined loser does not block newcomers", func(t *testing.T) {
		p := NewTinyLFU(100)
		fill(p, 0, 9)
		p.Add(id(50), 10)
		// The node keeps 50 (say, the only copy) and stops; later it
		// deletes 3.
		var first ulid.ULID
		p.Victims(func(v ulid.ULID) bool { first = v; return false })
		if first != id(50) {
			t.Fatalf("first victim %v, want 50", first)
		}
		p.Remove(id(3))
		// 50 is still on disk, but it is doomed, so there is room for 51
		// without a duel; the next victims are 50 again, then main's head.
		p.Add(id(51), 10)
		checkInvariants(t, p)
		if got := victims(t, p); !slices.Equal(got[:2], ids(50, 0)) {
			t.Fatalf("victims %v, want 50 then 0", got[:2])
		}
	})
	t.Run("delete makes room for a waiting candidate", func(t *testing.T) {
		p := NewTinyLFU(100)
		fill(p, 0, 9)
		p.Add(id(50), 10) // waits: cache is over capacity
		p.Remove(id(3))   // deleted by a client; now 50 fits
		checkInvariants(t, p)
		if got := victims(t, p); got[0] != id(0) {
			t.Fatalf("first victim %v, want main's head 0 (50 was admitted)", got[0])
		}
	})
	t.Run("candidates admitted once a duel made room", func(t *testing.T) {
		p := NewTinyLFU(100)
		p.Add(id(0), 30)
		fill(p, 1, 7) // full: 0 (30 bytes) heads probation
		for range 3 {
			p.Touch(id(50))
		}
		p.Add(id(50), 10) // frequent: beats 0, which frees 30 bytes
		p.Add(id(51), 10) // then fits without a duel
		var got []ulid.ULID
		p.Victims(func(v ulid.ULID) bool {
			got = append(got, v)
			checkInvariants(t, p) // mid-walk, nothing removed
			return len(got) < 2
		})
		if !slices.Equal(got, ids(0, 1)) {
			t.Fatalf("victims %v, want 0 then 1", got)
		}
	})
}

// TestScanResistance runs the same hot-set-then-scan sequence through both
// policies: W-TinyLFU must keep every hot body, and LRU must lose them all,
// which shows the test can tell the two apart.
func TestScanResistance(t *testing.T) {
	const (
		capacity = 1000 // 100 bodies of 10 bytes
		hot      = 50
	)
	for name, wantKept := range map[string]int{NameTinyLFU: hot, NameLRU: 0} {
		t.Run(name, func(t *testing.T) {
			p := must(New(name, capacity))
			fill(p, 0, hot-1)
			for range 4 {
				for k := range hot {
					p.Touch(id(k))
				}
			}
			for k := 1000; k < 3000; k++ { // one-off scan
				p.Add(id(k), 10)
				evictOver(t, p, capacity)
			}
			kept := 0
			for k := range hot {
				before := p.Len()
				p.Remove(id(k)) // Len drops only if it was held
				kept += before - p.Len()
			}
			if kept != wantKept {
				t.Fatalf("kept %d hot bodies through the scan, want %d", kept, wantKept)
			}
			checkInvariants(t, p)
		})
	}
}

func TestTinyLFUOversizedBodyGoesFirst(t *testing.T) {
	p := NewTinyLFU(100)
	fill(p, 0, 4)
	for range 10 {
		p.Touch(id(7))
	}
	p.Add(id(7), 500) // popular, but could never fit
	if got := evictOver(t, p, 100); !slices.Equal(got, ids(7)) {
		t.Fatalf("evicted %v, want the oversized body", got)
	}
	checkInvariants(t, p)
}

// TestTinyLFUDegenerateCapacity makes sure zero and negative capacities are
// usable (everything is a victim) rather than panicking or dividing by zero.
func TestTinyLFUDegenerateCapacity(t *testing.T) {
	for _, c := range []int64{0, -1, 1, 99} {
		p := NewTinyLFU(c)
		fill(p, 0, 4)
		p.Touch(id(2))
		p.Add(id(3), 0)
		checkInvariants(t, p)
		if got := victims(t, p); len(got) != 5 {
			t.Fatalf("capacity %d: offered %d of 5", c, len(got))
		}
		evictOver(t, p, max(c, 0))
		checkInvariants(t, p)
	}
}

// TestTinyLFUWindow covers both ways a body leaves the window under
// pressure. A body pushed out of the window by a newer one duels as a
// candidate, and wins if it was read while in the window. When the cache
// goes over capacity with no candidate waiting (here: a main body is
// re-added larger), the window's least recent body is dueled in its place,
// as in Caffeine: a once-read body loses and goes first, a frequently read
// one stays and main's victim goes instead.
func TestTinyLFUWindow(t *testing.T) {
	const capacity = 10_000 // window holds 100 bytes: one body
	setup := func(reads int) Policy {
		p := NewTinyLFU(capacity)
		for k := range 99 {
			p.Add(id(k), 100) // 0..97 end up in probation, 98 in the window
		}
		p.Add(id(500), 100) // pushes 98 to main; cache exactly full
		for range reads {
			p.Touch(id(500))
		}
		return p
	}

	p := setup(3)
	p.Add(id(99), 100) // 500 leaves the window as a candidate
	if got := evictOver(t, p, capacity); !slices.Equal(got, ids(0)) {
		t.Fatalf("read candidate: evicted %v, want main's victim %v", got, ids(0))
	}
	checkInvariants(t, p)

	p = setup(0)
	p.Add(id(50), 300) // grows a main body; no candidate
	if got := evictOver(t, p, capacity); !slices.Equal(got, ids(500, 0)) {
		t.Fatalf("unread window body: evicted %v, want %v", got, ids(500, 0))
	}
	checkInvariants(t, p)

	p = setup(3)
	p.Add(id(50), 200)
	if got := evictOver(t, p, capacity); !slices.Equal(got, ids(0)) {
		t.Fatalf("read window body: evicted %v, want %v", got, ids(0))
	}
	checkInvariants(t, p)
}

func TestTinyLFUSketchGrowsWithLen(t *testing.T) {
	p := NewTinyLFU(1 << 40).(*tinyLFU)
	for k := range 5000 {
		p.Add(id(k), 1)
	}
	if p.sketch.width < 5000 {
		t.Fatalf("sketch width %d for %d bodies", p.sketch.width, p.Len())
	}
	checkInvariants(t, p)
}
