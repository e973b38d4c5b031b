package cache

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/oklog/ulid/v2"
)

// id returns a distinct, deterministic ULID for small test keys.
func id(k int) ulid.ULID { return keyID(k) }

// policies builds one of each policy for contract tests. capacity matters
// only to W-TinyLFU.
func policies(capacity int64) map[string]Policy {
	return map[string]Policy{
		NameLRU:     NewLRU(),
		NameTinyLFU: NewTinyLFU(capacity),
	}
}

// checkInvariants verifies the internal bookkeeping of p: list links, per-
// list counts and bytes, segment markers, the id index and, for W-TinyLFU,
// the segment bounds that maintain promises after every public call.
func checkInvariants(t *testing.T, p Policy) {
	t.Helper()
	walk := func(name string, l *list, seg segment, entries map[ulid.ULID]*entry) (int, int64) {
		n, b := 0, int64(0)
		prev := &l.root
		for e := l.root.next; e != &l.root; e = e.next {
			if e.prev != prev {
				t.Fatalf("%s: broken back link at %s", name, e.id)
			}
			if e.seg != seg {
				t.Fatalf("%s: entry %s marked segment %d", name, e.id, e.seg)
			}
			if entries[e.id] != e {
				t.Fatalf("%s: entry %s not indexed", name, e.id)
			}
			prev = e
			n++
			b += e.size
		}
		if n != l.len || b != l.bytes {
			t.Fatalf("%s: counted %d entries/%d bytes, list says %d/%d", name, n, b, l.len, l.bytes)
		}
		return n, b
	}
	switch p := p.(type) {
	case *lru:
		p.mu.Lock()
		defer p.mu.Unlock()
		n, _ := walk("lru", &p.order, segLRU, p.entries)
		if n != len(p.entries) {
			t.Fatalf("lru: %d listed, %d indexed", n, len(p.entries))
		}
	case *tinyLFU:
		p.mu.Lock()
		defer p.mu.Unlock()
		n, b := 0, int64(0)
		for _, s := range []struct {
			name string
			seg  segment
		}{{"window", segWindow}, {"cand", segCand}, {"probation", segProbation}, {"protected", segProtected}, {"doomed", segDoomed}} {
			ln, lb := walk(s.name, p.list(s.seg), s.seg, p.entries)
			n += ln
			b += lb
		}
		if n != len(p.entries) || b != p.bytes {
			t.Fatalf("tinylfu: lists hold %d/%d bytes, index %d, bytes %d", n, b, len(p.entries), p.bytes)
		}
		if p.window.bytes > p.windowCap {
			t.Fatalf("tinylfu: window %d > cap %d", p.window.bytes, p.windowCap)
		}
		if p.protected.bytes > p.protectedCap {
			t.Fatalf("tinylfu: protected %d > cap %d", p.protected.bytes, p.protectedCap)
		}
		if p.cand.len > 0 && p.live() <= p.capacity {
			t.Fatalf("tinylfu: %d candidates waiting although live %d <= capacity %d", p.cand.len, p.live(), p.capacity)
		}
	default:
		t.Fatalf("unknown policy type %T", p)
	}
}

// victims collects everything one Victims call offers, removing nothing,
// and fails at once if an id is offered twice (rather than hanging, should
// the walk go round in circles).
func victims(t *testing.T, p Policy) []ulid.ULID {
	t.Helper()
	var out []ulid.ULID
	seen := map[ulid.ULID]bool{}
	p.Victims(func(id ulid.ULID) bool {
		if seen[id] {
			t.Fatalf("Victims offered %s twice in one call", id)
		}
		seen[id] = true
		out = append(out, id)
		return true
	})
	return out
}

func TestNew(t *testing.T) {
	for _, name := range Names() {
		for _, spelled := range []string{name, strings.ToUpper(name), " " + name + "\n"} {
			p, err := New(spelled, 1<<20)
			if err != nil || p == nil {
				t.Fatalf("New(%q) = %v, %v", spelled, p, err)
			}
		}
	}
	if _, err := New(DefaultPolicy, 1<<20); err != nil {
		t.Fatalf("DefaultPolicy %q not accepted: %v", DefaultPolicy, err)
	}
	if _, ok := must(New(NameLRU, 0)).(*lru); !ok {
		t.Error("New(lru) is not LRU")
	}
	if _, ok := must(New(NameTinyLFU, 0)).(*tinyLFU); !ok {
		t.Error("New(tinylfu) is not W-TinyLFU")
	}
	for _, bad := range []string{"", "arc", "lru2"} {
		p, err := New(bad, 1<<20)
		if err == nil || p != nil {
			t.Fatalf("New(%q) = %v, %v; want error", bad, p, err)
		}
		for _, name := range Names() {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not list %q", err, name)
			}
		}
	}
}

func must(p Policy, err error) Policy {
	if err != nil {
		panic(err)
	}
	return p
}

func TestRemoveAndTouchUnknownAreNoops(t *testing.T) {
	for name, p := range policies(1000) {
		t.Run(name, func(t *testing.T) {
			p.Remove(id(1)) // empty
			p.Touch(id(1))
			p.Add(id(2), 10)
			p.Remove(id(1))
			p.Touch(id(3))
			p.Remove(id(2))
			p.Remove(id(2)) // twice
			if p.Len() != 0 || p.Bytes() != 0 {
				t.Fatalf("Len/Bytes = %d/%d, want 0/0", p.Len(), p.Bytes())
			}
			if got := victims(t, p); len(got) != 0 {
				t.Fatalf("Victims on empty policy offered %v", got)
			}
			checkInvariants(t, p)
		})
	}
}

func TestReAddUpdatesSize(t *testing.T) {
	for name, p := range policies(1000) {
		t.Run(name, func(t *testing.T) {
			p.Add(id(1), 10)
			p.Add(id(2), 20)
			p.Add(id(1), 300)
			if p.Len() != 2 || p.Bytes() != 320 {
				t.Fatalf("after re-add: Len/Bytes = %d/%d, want 2/320", p.Len(), p.Bytes())
			}
			p.Add(id(2), 5)
			if p.Bytes() != 305 {
				t.Fatalf("after shrinking re-add: Bytes = %d, want 305", p.Bytes())
			}
			checkInvariants(t, p)
			p.Remove(id(1))
			p.Remove(id(2))
			if p.Bytes() != 0 {
				t.Fatalf("Bytes after removing all = %d", p.Bytes())
			}
		})
	}
}

func TestNegativeSizeCountsAsZero(t *testing.T) {
	for name, p := range policies(1000) {
		t.Run(name, func(t *testing.T) {
			p.Add(id(1), -5)
			p.Add(id(2), 7)
			if p.Len() != 2 || p.Bytes() != 7 {
				t.Fatalf("Len/Bytes = %d/%d, want 2/7", p.Len(), p.Bytes())
			}
			checkInvariants(t, p)
		})
	}
}

func TestVictimsOffersEveryIDOnceWhileRemoving(t *testing.T) {
	const n = 200
	for name, p := range policies(50 * 10) {
		t.Run(name, func(t *testing.T) {
			for k := range n {
				p.Add(id(k), 10)
				if k%3 == 0 {
					p.Touch(id(k))
				}
			}
			seen := map[ulid.ULID]bool{}
			p.Victims(func(v ulid.ULID) bool {
				if seen[v] {
					t.Fatalf("offered %s twice", v)
				}
				seen[v] = true
				p.Remove(v)
				return true
			})
			if len(seen) != n || p.Len() != 0 || p.Bytes() != 0 {
				t.Fatalf("offered %d of %d; left Len/Bytes %d/%d", len(seen), n, p.Len(), p.Bytes())
			}
			checkInvariants(t, p)
		})
	}
}

func TestVictimsDeclineAndStop(t *testing.T) {
	const n = 100
	for name, p := range policies(20 * 10) {
		t.Run(name, func(t *testing.T) {
			for k := range n {
				p.Add(id(k), 10)
			}
			// Decline every other id; removed ones must not come back and
			// declined ones must not be offered twice.
			seen := map[ulid.ULID]bool{}
			var declined []ulid.ULID
			i := 0
			p.Victims(func(v ulid.ULID) bool {
				if seen[v] {
					t.Fatalf("offered %s twice", v)
				}
				seen[v] = true
				if i%2 == 0 {
					declined = append(declined, v)
				} else {
					p.Remove(v)
				}
				i++
				return true
			})
			if len(seen) != n || p.Len() != len(declined) {
				t.Fatalf("offered %d of %d, Len %d, declined %d", len(seen), n, p.Len(), len(declined))
			}
			checkInvariants(t, p)
			// Declined ids stay first in line, in the same order.
			if got := victims(t, p); !slices.Equal(got, declined) {
				t.Fatalf("next call offered %v, want declined %v", got, declined)
			}
			// Returning false stops the walk at once.
			calls := 0
			p.Victims(func(ulid.ULID) bool { calls++; return calls < 3 })
			if calls != 3 {
				t.Fatalf("fn called %d times after returning false on the 3rd", calls)
			}
			p.Victims(nil) // must not panic
		})
	}
}

// TestVictimsWhenFnTouches has fn read every id it is offered and keep it,
// so each offered entry moves while the walk is unlocked (for W-TinyLFU,
// out of the doomed list). The walk must notice, carry on from a valid
// position and still offer every held id exactly once.
func TestVictimsWhenFnTouches(t *testing.T) {
	const n = 60
	for name, p := range policies(20 * 10) {
		t.Run(name, func(t *testing.T) {
			fill(p, 0, n-1)
			seen := map[ulid.ULID]bool{}
			p.Victims(func(v ulid.ULID) bool {
				if k := keyOf(v); k < 0 || k >= n || seen[v] {
					t.Fatalf("offered %s (key %d): unknown or repeated", v, k)
				}
				seen[v] = true
				p.Touch(v)
				return true
			})
			if len(seen) != n {
				t.Fatalf("offered %d of %d", len(seen), n)
			}
			checkInvariants(t, p)
		})
	}
}

func TestIDSet(t *testing.T) {
	var s idSet
	const n = 3 * idSetSmallMax
	for k := range n {
		if s.has(id(k)) {
			t.Fatalf("has %d before adding it", k)
		}
		s.add(id(k))
		for j := 0; j <= k; j++ {
			if !s.has(id(j)) {
				t.Fatalf("lost %d after adding %d", j, k)
			}
		}
	}
	if s.has(id(n)) {
		t.Fatal("has an id never added")
	}
	if s.big == nil {
		t.Fatal("still a linear slice after many adds")
	}
}

// countingOrder counts the steps a walk takes through an order.
type countingOrder struct {
	order
	steps int
}

func (c *countingOrder) first() *entry         { c.steps++; return c.order.first() }
func (c *countingOrder) after(e *entry) *entry { c.steps++; return c.order.after(e) }

// TestVictimsWalkIsLinear checks that declined ids do not make the walk
// quadratic: after a removal it resumes after the last declined entry
// instead of re-skipping every declined one from the front.
func TestVictimsWalkIsLinear(t *testing.T) {
	const n = 2000
	for name, p := range policies(10) {
		t.Run(name, func(t *testing.T) {
			fill(p, 0, n-1)
			var mu *sync.Mutex
			var o order
			switch p := p.(type) {
			case *lru:
				mu, o = &p.mu, p
			case *tinyLFU:
				mu, o = &p.mu, p
			}
			c := &countingOrder{order: o}
			offered := 0
			walkVictims(mu, c, func(v ulid.ULID) bool {
				if offered%2 == 0 {
					p.Remove(v)
				}
				offered++
				return true
			})
			if offered != n || c.steps > 2*n {
				t.Fatalf("offered %d of %d in %d steps; want at most %d", offered, n, c.steps, 2*n)
			}
		})
	}
}

// TestVictimsReentrant calls every method from inside fn, which must not
// deadlock because the lock is released while fn runs.
func TestVictimsReentrant(t *testing.T) {
	for name, p := range policies(30 * 10) {
		t.Run(name, func(t *testing.T) {
			for k := range 50 {
				p.Add(id(k), 10)
			}
			extra := 1000
			seen := map[ulid.ULID]bool{}
			p.Victims(func(v ulid.ULID) bool {
				if seen[v] {
					t.Fatalf("offered %s twice", v)
				}
				seen[v] = true
				_, _ = p.Len(), p.Bytes()
				p.Touch(v)
				p.Remove(v)
				if extra < 1010 {
					p.Add(id(extra), 10)
					p.Touch(id(extra - 1))
					extra++
				}
				nested := 0
				p.Victims(func(ulid.ULID) bool { nested++; return false })
				return true
			})
			if p.Len() != 0 {
				t.Fatalf("Len = %d after removing everything offered", p.Len())
			}
			checkInvariants(t, p)
		})
	}
}

// TestConcurrentUse hammers each policy from several goroutines, one of
// them evicting like the node, and checks the bookkeeping afterwards. Its
// main value is under -race.
func TestConcurrentUse(t *testing.T) {
	const (
		workers  = 8
		ops      = 3000
		universe = 400
		capacity = 100 * 1000
	)
	for name, p := range policies(capacity) {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(w), 1))
					for range ops {
						k := r.IntN(universe)
						switch op := r.IntN(10); {
						case op < 4:
							p.Add(id(k), int64(1+r.IntN(2000)))
						case op < 8:
							p.Touch(id(k))
						case op < 9:
							p.Remove(id(k))
						default:
							_, _ = p.Len(), p.Bytes()
						}
					}
				})
			}
			stop := make(chan struct{})
			var evicted int
			evictorDone := make(chan struct{})
			go func() {
				defer close(evictorDone)
				for {
					select {
					case <-stop:
						return
					default:
					}
					p.Victims(func(v ulid.ULID) bool {
						p.Remove(v)
						evicted++
						return p.Bytes() > capacity
					})
				}
			}()
			wg.Wait()
			close(stop)
			<-evictorDone
			checkInvariants(t, p)
			for p.Bytes() > capacity {
				before := p.Len()
				p.Victims(func(v ulid.ULID) bool { p.Remove(v); return p.Bytes() > capacity })
				if p.Len() == before {
					t.Fatal("over capacity but nothing offered")
				}
			}
			checkInvariants(t, p)
			t.Logf("evicted %d, left %d bodies / %d bytes", evicted, p.Len(), p.Bytes())
		})
	}
}

func ExampleNew() {
	const maxDisk = 64 << 30
	p, err := New(DefaultPolicy, maxDisk)
	if err != nil {
		panic(err)
	}
	body := ulid.Make()
	p.Add(body, 4<<20) // after the body is on disk
	p.Touch(body)      // on each local read
	if p.Bytes() > maxDisk {
		p.Victims(func(id ulid.ULID) bool {
			// Delete the body's file; once it is gone:
			p.Remove(id)
			// To keep a body instead (e.g. the only copy), skip both
			// and return true to be offered the next one.
			return p.Bytes() > maxDisk
		})
	}
	fmt.Println(p.Len(), p.Bytes())
	// Output: 1 4194304
}
