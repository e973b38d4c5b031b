package main_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testnet"
	"github.com/objstore/objstore/internal/testnode"
)

// A node is cut off from the others for longer than gossip's dead-node
// window while clients write on both sides; after the network heals the
// cluster becomes whole again by itself, every journal converges, and no
// acknowledged level 1 or 2 object is lost.
func TestPartitionHeals(t *testing.T) {
	net := testnet.New(t)
	remote := t.TempDir() // a directory remote, which every host's node reaches through the filesystem
	start := func(name string, join ...*testnode.Node) *testnode.Node {
		args := []string{"--gossip-profile", "local", "--sync-interval", "2s", "--remote-dir", remote}
		for _, j := range join {
			args = append(args, "-N", j.GossipAddr)
		}
		return testnode.Start(t, testnode.Options{Host: net.AddHost(t, name), Args: args, Env: secretEnv(3)})
	}
	a := start("a")
	b := start("b", a)
	cHost := net.AddHost(t, "c")
	c := testnode.Start(t, testnode.Options{Host: cHost, Env: secretEnv(3), Args: []string{"--gossip-profile", "local", "--sync-interval", "2s",
		"--remote-dir", remote, "-N", a.GossipAddr}})
	all := []*testnode.Node{a, b, c}
	ids := map[*testnode.Node]string{}
	for _, n := range all {
		ids[n] = nodeID(t, n)
	}
	for _, n := range all {
		eventually(t, "three alive members", func() bool {
			alive := 0
			for _, m := range nodes(t, n) {
				if m.State == "alive" {
					alive++
				}
			}
			return alive == 3
		})
	}

	written := map[string]string{} // ID -> body, acknowledged level 1 and 2 writes
	write := func(n *testnode.Node, level int, tag string) {
		id := ulid.Make().String()
		body := fmt.Sprintf("%s level %d %s", tag, level, id)
		mustPut(t, n, id, level, tag+".txt", body)
		written[id] = body
	}
	// Objects both sides will then change: deletes and overwrites that
	// conflict across the partition.
	shared := make([]string, 4)
	for i := range shared {
		shared[i] = ulid.Make().String()
		mustPut(t, a, shared[i], 1, "shared.txt", "before")
	}
	for _, n := range all {
		eventually(t, "shared objects everywhere", func() bool {
			for _, id := range shared {
				if s, _ := metaOn(t, n, id); s != 200 {
					return false
				}
			}
			return true
		})
	}
	// Isolate cuts c off from a and b while the test process still
	// reaches every node, so clients can write on both sides.
	if err := cHost.Isolate(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a sees c dead", func() bool { return stateOf(t, a, ids[c]) == "dead" })
	eventually(t, "c sees a and b dead", func() bool {
		return stateOf(t, c, ids[a]) == "dead" && stateOf(t, c, ids[b]) == "dead"
	})
	for i := range 5 {
		write(a, 1+i%2, "majority")
		write(b, 1+i%2, "majority")
		write(c, 1+i%2, "minority")
	}
	// Conflicts, in this order in time; the later write wins everywhere.
	del := func(n *testnode.Node, id string) {
		if resp, b, _ := n.Do(testnode.Request{Method: "POST", Path: "/api/v1/delete/" + id}); resp.StatusCode != 200 {
			t.Fatalf("delete %s: %d %s", id, resp.StatusCode, b)
		}
	}
	over := func(n *testnode.Node, id, body string) {
		time.Sleep(20 * time.Millisecond) // well apart in time, as writes by people are
		mustPut(t, n, id, 1, "shared.txt", body)
	}
	want := map[string]string{} // ID -> winning body, "" for deleted
	del(a, shared[0])
	over(c, shared[0], "c overwrote after a deleted")
	want[shared[0]] = "c overwrote after a deleted"
	over(a, shared[1], "a overwrote before c deleted")
	time.Sleep(20 * time.Millisecond)
	del(c, shared[1])
	want[shared[1]] = ""
	over(a, shared[2], "a overwrote first")
	over(c, shared[2], "c overwrote last")
	want[shared[2]] = "c overwrote last"
	over(c, shared[3], "c overwrote first")
	over(b, shared[3], "b overwrote last")
	want[shared[3]] = "b overwrote last"
	// Stay cut past the dead-node window, so memberlist alone would never
	// bring c back.
	time.Sleep(20 * time.Second)
	if err := cHost.Rejoin(); err != nil {
		t.Fatal(err)
	}
	for _, n := range all {
		eventually(t, "cluster whole again", func() bool {
			for _, other := range all {
				if stateOf(t, n, ids[other]) != "alive" {
					return false
				}
			}
			return true
		})
	}
	for id, body := range written {
		for _, n := range all {
			eventually(t, "converged on "+id, func() bool {
				s, m := metaOn(t, n, id)
				return s == 200 && m["consistency"] != nil
			})
			resp, got := get(t, n, id, nil)
			if resp.StatusCode != 200 || got != body {
				t.Errorf("%s on %s: %d %q", id, n.PublicAddr, resp.StatusCode, got)
			}
		}
	}
	// The conflicts resolve to the same winners everywhere.
	for id, body := range want {
		for _, n := range all {
			eventually(t, "the winner of "+id, func() bool {
				resp, got := get(t, n, id, nil)
				if body == "" {
					return resp.StatusCode == 404 && resp.Header.Get("X-Meta-Deleted") == "true"
				}
				return resp.StatusCode == 200 && got == body
			})
		}
	}
	// Every node ends with the same journal: the same object and
	// tombstone counts and, for each object, the same version.
	for id := range written {
		_, ma := metaOn(t, a, id)
		for _, n := range all[1:] {
			eventually(t, "same version of "+id, func() bool {
				_, m := metaOn(t, n, id)
				return m["version"] == ma["version"]
			})
		}
	}
	counts := func(n *testnode.Node) string {
		j := journalCounts(t, n)
		return fmt.Sprint(j["objects"], "/", j["tombstones"])
	}
	want0 := counts(a)
	for _, n := range all[1:] {
		eventually(t, "same journal counts", func() bool { return counts(n) == counts(a) })
	}
	t.Logf("journal counts everywhere (objects/tombstones): %s", want0)
}
