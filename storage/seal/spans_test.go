package seal

import (
	"math/rand/v2"
	"testing"
)

func TestSpans(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := int64(1 + r.IntN(200))
		var s spans
		in := make(map[int64]bool)
		for _, j := range r.Perm(int(n)) {
			s.add(int64(j))
			in[int64(j)] = true
			for k := range n {
				if s.has(k) != in[k] {
					t.Fatalf("after adding %d: has(%d) = %v", j, k, s.has(k))
				}
			}
			var want int64
			for in[want] {
				want++
			}
			if s.prefix() != want {
				t.Fatalf("prefix = %d, want %d", s.prefix(), want)
			}
			for i := 1; i < len(s); i++ {
				if s[i-1].end >= s[i].start {
					t.Fatalf("ranges overlap or touch: %v", s)
				}
			}
		}
		if len(s) != 1 || s[0] != (span{0, n}) {
			t.Fatalf("full set is %v", s)
		}
	}
}
