package main_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testnode"
)

// The clock matrix: of five nodes one runs an hour ahead and one an hour
// behind, while clients overwrite and delete the same objects through
// every node; then a healthy node restarts with its clock stepped back,
// and the skewed two are fixed. Every write is either refused with a clear
// error or kept; every node ends agreeing on the same winner of every
// object, and no acknowledged write or delete is lost.
func TestClockMatrix(t *testing.T) {
	remote := newRemote(t)
	skew := map[int]string{3: "1h", 4: "-1h"}
	var ns []*testnode.Node
	for i := range 5 {
		var env []string
		if d, ok := skew[i]; ok {
			env = []string{"OBJSTORE_FAULT_CLOCK_SKEW=" + d}
		}
		var join []*testnode.Node
		if i > 0 {
			join = ns[:1]
		}
		ns = append(ns, secureNode(t, remote, env, nil, join...))
	}
	healthy := ns[:3]
	for _, n := range healthy {
		eventually(t, "five members", func() bool { return len(nodes(t, n)) == 5 })
	}
	ids := make([]string, 6)
	for i := range ids {
		ids[i] = ulid.Make().String()
		mustPut(t, ns[0], ids[i], 1, "contested.txt", "original")
	}
	// Rounds of overwrites and deletes of the same objects through every
	// node at once. What each acknowledged, in order, is the history the
	// outcome must honour.
	type op struct {
		node, round int
		delete      bool
		body        string
	}
	var mu sync.Mutex
	acked := map[string][]op{}
	refusedSkewed, acceptedSkewed := 0, 0
	for round := range 4 {
		var wg sync.WaitGroup
		for i, n := range ns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := ids[(i+round)%len(ids)]
				o := op{node: i, round: round, delete: (i+round)%5 == 4, body: fmt.Sprintf("round %d by node %d", round, i)}
				var resp *http.Response
				var err error
				if o.delete {
					resp, _, err = n.Do(testnode.Request{Method: "POST", Path: "/api/v1/delete/" + id})
				} else {
					resp, _, err = n.Do(testnode.Request{Method: "POST", Path: "/api/v1/put", Body: strings.NewReader(o.body),
						Header: map[string]string{"X-Meta-ID": id, "X-Meta-ConsistencyLevel": "1"}})
				}
				mu.Lock()
				defer mu.Unlock()
				if _, skewed := skew[i]; skewed {
					if err == nil && resp.StatusCode == http.StatusServiceUnavailable {
						refusedSkewed++
					} else {
						acceptedSkewed++
					}
					return
				}
				if err == nil && resp.StatusCode == 200 {
					acked[id] = append(acked[id], o)
				}
			}()
		}
		wg.Wait()
		if round == 1 {
			// A healthy node's clock steps back (within the bound) across
			// a restart: its later writes still order after its earlier.
			ns[1].Kill()
			ns[1].SetEnv("OBJSTORE_FAULT_CLOCK_SKEW=-300ms")
			ns[1].Start()
			eventually(t, "node 1 back", func() bool { resp, _, _ := ns[1].Do(testnode.Request{Path: "/readyz"}); return resp.StatusCode == 200 })
		}
	}
	if acceptedSkewed > 0 {
		t.Errorf("nodes an hour off accepted %d writes", acceptedSkewed)
	}
	// The skewed clocks are fixed; every node converges.
	for _, i := range []int{3, 4} {
		ns[i].Kill()
		ns[i].SetEnv()
		ns[i].Start()
	}
	winner := map[string]string{} // per ID: version and state as node 0 sees them
	for _, id := range ids {
		s, m := metaOn(t, ns[0], id)
		winner[id] = fmt.Sprint(s, m["version"], m["sha256"])
		for _, n := range ns[1:] {
			eventually(t, "the same winner of "+id, func() bool {
				s, m := metaOn(t, n, id)
				return fmt.Sprint(s, m["version"], m["sha256"]) == winner[id]
			})
		}
		// The winner is an operation acknowledged in the last round that
		// touched the object: a later write always beats an earlier one
		// (within a round, writes race and either may win).
		ops := acked[id]
		if len(ops) == 0 {
			continue
		}
		last := 0
		for _, o := range ops {
			last = max(last, o.round)
		}
		resp, got := get(t, ns[0], id, nil)
		found := false
		for _, o := range ops {
			if o.round == last && (o.delete && resp.StatusCode == 404 || !o.delete && resp.StatusCode == 200 && got == o.body) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s ended as %d %q, not what round %d acknowledged", id, resp.StatusCode, got, last)
		}
	}
	t.Logf("writes through the skewed nodes refused: %d; acknowledged elsewhere: %d objects", refusedSkewed, len(acked))
}
