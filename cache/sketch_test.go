package cache

import (
	"math/rand/v2"
	"testing"
)

func TestSketchCountsAndSaturates(t *testing.T) {
	var s sketch
	s.init(minSketchWidth)
	a, b := hashID(id(1)), hashID(id(2))
	if s.estimate(a) != 0 {
		t.Fatal("unseen key has a count")
	}
	for i := 1; i <= 20; i++ {
		s.increment(a)
		if got, want := s.estimate(a), min(i, counterMax); got != want {
			t.Fatalf("after %d increments estimate = %d, want %d", i, got, want)
		}
	}
	if s.estimate(b) != 0 {
		t.Fatalf("other key estimate %d; the two collide in every row", s.estimate(b))
	}
}

// TestSketchNeverUnderCounts checks the count-min guarantee between
// halvings, with enough keys that collisions happen.
func TestSketchNeverUnderCounts(t *testing.T) {
	var s sketch
	s.init(minSketchWidth)
	r := rand.New(rand.NewPCG(7, 7))
	counts := map[uint64]int{}
	// 300 keys in 1024 counters per row: a key shares a counter in a given
	// row with probability ~25%, in all four rows ~0.4%.
	for range 1500 { // below sampleSize, so no halving
		h := hashID(id(r.IntN(300)))
		counts[h]++
		s.increment(h)
	}
	over := 0
	for h, c := range counts {
		est := s.estimate(h)
		if est < min(c, counterMax) {
			t.Fatalf("estimate %d below true count %d", est, c)
		}
		if est > min(c, counterMax) {
			over++
		}
	}
	// Independent rows keep over-estimates rare; rows sharing an index
	// would over-count about a quarter of the keys.
	if over > len(counts)/20 {
		t.Fatalf("%d of %d estimates are over-counted", over, len(counts))
	}
}

func TestSketchAging(t *testing.T) {
	var s sketch
	s.init(minSketchWidth)
	s.sampleSize = 20 // age after 20 additions
	a, b := hashID(id(1)), hashID(id(2))
	for range 15 {
		s.increment(a)
	}
	for range 4 {
		s.increment(b)
	}
	if s.estimate(a) != 15 || s.estimate(b) != 4 {
		t.Fatalf("before aging: %d, %d", s.estimate(a), s.estimate(b))
	}
	s.increment(b) // 20th addition triggers the halving
	if s.estimate(a) != 7 || s.estimate(b) != 2 {
		t.Fatalf("after aging: %d, %d; want 7, 2", s.estimate(a), s.estimate(b))
	}
	if s.additions >= 20 || s.additions < 5 {
		t.Fatalf("additions after aging = %d", s.additions)
	}
}

func TestSketchEnsure(t *testing.T) {
	var s sketch
	s.init(minSketchWidth)
	s.ensure(10)
	if s.width != minSketchWidth {
		t.Fatalf("shrank or grew needlessly to %d", s.width)
	}
	s.ensure(5000)
	if s.width != 8192 || len(s.table) != sketchRows*8192/16 || s.sampleSize != sampleFactor*8192 {
		t.Fatalf("ensure(5000): width %d, table %d, sample %d", s.width, len(s.table), s.sampleSize)
	}
	s.ensure(1 << 40)
	if s.width != maxSketchWidth {
		t.Fatalf("not capped: width %d", s.width)
	}
	s.ensure(-1)
	s.ensure(0)
}
