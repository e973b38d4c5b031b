package cluster

import (
	"testing"

	"github.com/oklog/ulid/v2"
)

func members(n int) []Member {
	out := make([]Member, n)
	for i := range out {
		out[i] = Member{ID: ulid.Make()}
	}
	return out
}

// Every order of the same members picks the same owner; objects spread
// about evenly; removing a member moves only the objects it owned.
func TestOwner(t *testing.T) {
	if _, ok := Owner(nil, ulid.Make()); ok {
		t.Fatal("an owner among no members")
	}
	ms := members(4)
	reversed := []Member{ms[3], ms[2], ms[1], ms[0]}
	const objects = 20000
	counts := map[ulid.ULID]int{}
	moved := 0
	for range objects {
		id := ulid.Make()
		a, _ := Owner(ms, id)
		if b, _ := Owner(reversed, id); b.ID != a.ID {
			t.Fatalf("owner of %s depends on order: %s vs %s", id, a.ID, b.ID)
		}
		counts[a.ID]++
		c, _ := Owner(ms[:3], id)
		if a.ID != ms[3].ID && c.ID != a.ID {
			moved++
		}
	}
	for id, n := range counts {
		if n < objects/4*8/10 || n > objects/4*12/10 {
			t.Errorf("member %s owns %d of %d objects; want about a quarter", id, n, objects)
		}
	}
	if moved != 0 {
		t.Errorf("removing a member moved %d objects it did not own", moved)
	}
}
