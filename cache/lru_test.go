package cache

import (
	"slices"
	"testing"

	"github.com/oklog/ulid/v2"
)

func ids(ks ...int) []ulid.ULID {
	out := make([]ulid.ULID, len(ks))
	for i, k := range ks {
		out[i] = id(k)
	}
	return out
}

func TestLRUOrder(t *testing.T) {
	p := NewLRU()
	for k := 1; k <= 4; k++ {
		p.Add(id(k), 10)
	}
	if got, want := victims(t, p), ids(1, 2, 3, 4); !slices.Equal(got, want) {
		t.Fatalf("insertion order: got %v, want %v", got, want)
	}
	p.Touch(id(1))   // 1 becomes most recent
	p.Add(id(3), 99) // re-add is an access too
	p.Touch(id(42))  // unknown: ignored
	if got, want := victims(t, p), ids(2, 4, 1, 3); !slices.Equal(got, want) {
		t.Fatalf("after touches: got %v, want %v", got, want)
	}
	if p.Bytes() != 10+10+10+99 {
		t.Fatalf("Bytes = %d", p.Bytes())
	}
	p.Remove(id(4))
	if got, want := victims(t, p), ids(2, 1, 3); !slices.Equal(got, want) {
		t.Fatalf("after remove: got %v, want %v", got, want)
	}
	checkInvariants(t, p)
}

// TestLRUWalkSurvivesConcurrentMoves moves entries around from inside fn,
// the way other request goroutines would while the evictor is unlocked: a
// touched entry goes to the back and is offered later, never twice.
func TestLRUWalkSurvivesConcurrentMoves(t *testing.T) {
	p := NewLRU()
	for k := 1; k <= 5; k++ {
		p.Add(id(k), 10)
	}
	var got []ulid.ULID
	p.Victims(func(v ulid.ULID) bool {
		if slices.Contains(got, v) {
			t.Fatalf("offered %s twice", v)
		}
		got = append(got, v)
		switch v {
		case id(1):
			p.Touch(id(2)) // 2 was next; now it is last
			p.Touch(id(1)) // the declined one moves too
		case id(3):
			p.Remove(id(3))
			p.Remove(id(4)) // someone else deletes the next one
			p.Add(id(6), 10)
		}
		return true
	})
	if want := ids(1, 3, 5, 2, 6); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	checkInvariants(t, p)
}
