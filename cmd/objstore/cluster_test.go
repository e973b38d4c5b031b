package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/internal/testnode"
)

// clusterNode starts a node that joins through the given nodes (none for
// the first), with local gossip timings and frequent anti-entropy, whose
// remote tier is the bucket remote (newRemote) on the real MinIO.
func clusterNode(t *testing.T, remote string, join ...*testnode.Node) *testnode.Node {
	t.Helper()
	return secureNode(t, remote, nil, nil, join...)
}

// newRemote returns a new bucket on the test MinIO server, for a cluster's
// remote tier.
func newRemote(t *testing.T) string {
	t.Helper()
	return testminio.Start(t).NewBucket(t)
}

// remoteArgs returns the arguments and environment that make a node use
// bucket on the test MinIO server.
func remoteArgs(t *testing.T, bucket string) (args, env []string) {
	t.Helper()
	srv := testminio.Start(t)
	return []string{"--bucket", bucket, "--s3-endpoint", srv.Endpoint(), "--s3-prefix", "objects/"}, srv.Env()
}

type member struct {
	ID         string `json:"id"`
	PublicAddr string `json:"public_addr"`
	State      string `json:"state"`
}

func nodes(t *testing.T, n *testnode.Node) map[string]member {
	t.Helper()
	resp, b, err := n.Do(testnode.Request{Path: "/api/v1/nodes"})
	if err != nil || resp.StatusCode != 200 {
		return nil
	}
	var ms []member
	if err := json.Unmarshal(b, &ms); err != nil {
		t.Fatalf("nodes: %v: %s", err, b)
	}
	out := map[string]member{}
	for _, m := range ms {
		out[m.ID] = m
	}
	return out
}

func nodeID(t *testing.T, n *testnode.Node) string {
	t.Helper()
	_, b, err := n.Do(testnode.Request{Path: "/api/v1/ping"})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// eventually retries cond until it holds or a generous deadline passes;
// it never asserts how fast something happens.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 45s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stateOf reports how observer sees the node with the given ID.
func stateOf(t *testing.T, observer *testnode.Node, id string) string {
	return nodes(t, observer)[id].State
}

func metaOn(t *testing.T, n *testnode.Node, id string) (int, map[string]any) {
	t.Helper()
	resp, b, err := n.Do(testnode.Request{Path: "/api/v1/meta/" + id})
	if err != nil {
		return 0, nil
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func threeNodes(t *testing.T) (remote string, ns []*testnode.Node) {
	remote = newRemote(t)
	a := clusterNode(t, remote)
	b := clusterNode(t, remote, a)
	c := clusterNode(t, remote, b) // knows only b
	ns = []*testnode.Node{a, b, c}
	for _, n := range ns {
		eventually(t, "three alive members", func() bool {
			ms := nodes(t, n)
			alive := 0
			for _, m := range ms {
				if m.State == "alive" {
					alive++
				}
			}
			return alive == 3
		})
	}
	return remote, ns
}

func TestClusterFormsThroughOneAddress(t *testing.T) {
	_, ns := threeNodes(t)
	ms := nodes(t, ns[0])
	for _, n := range ns {
		m, ok := ms[nodeID(t, n)]
		if !ok || m.PublicAddr != n.PublicAddr {
			t.Errorf("node %s: %+v", n.PublicAddr, m)
		}
	}
}

func TestPeerReadsAndReplication(t *testing.T) {
	_, ns := threeNodes(t)
	a, b, c := ns[0], ns[1], ns[2]
	id0, id2 := ulid.Make().String(), ulid.Make().String()
	mustPut(t, a, id0, 0, "local.txt", "level zero lives on a")
	mustPut(t, a, id2, 2, "everywhere.txt", "level two lives everywhere")

	// Every node learns of both objects; b reads the level-0 one from a.
	for _, n := range []*testnode.Node{b, c} {
		eventually(t, "entries announced", func() bool {
			s0, _ := metaOn(t, n, id0)
			s2, _ := metaOn(t, n, id2)
			return s0 == 200 && s2 == 200
		})
	}
	resp, body := get(t, b, id0, nil)
	if resp.StatusCode != 200 || body != "level zero lives on a" || resp.Header.Get("X-Meta-Symlink") != "true" ||
		resp.Header.Get("X-Meta-Source") != "peer" {
		t.Errorf("peer read: %d %q symlink=%q source=%q", resp.StatusCode, body, resp.Header.Get("X-Meta-Symlink"), resp.Header.Get("X-Meta-Source"))
	}
	// Level 2: every node holds a local copy within seconds.
	for _, n := range []*testnode.Node{b, c} {
		eventually(t, "level-2 copy on "+n.PublicAddr, func() bool {
			_, m := metaOn(t, n, id2)
			return m["is_local"] == true
		})
		resp, body := get(t, n, id2, nil)
		if resp.StatusCode != 200 || body != "level two lives everywhere" || resp.Header.Get("X-Meta-Source") != "local" {
			t.Errorf("level-2 read on %s: %d %q from %s", n.PublicAddr, resp.StatusCode, body, resp.Header.Get("X-Meta-Source"))
		}
	}
}

func TestDeleteOnAnyNodeWinsEverywhere(t *testing.T) {
	_, ns := threeNodes(t)
	a, b, c := ns[0], ns[1], ns[2]
	id := ulid.Make().String()
	mustPut(t, a, id, 2, "doomed.txt", "soon deleted")
	eventually(t, "replicated", func() bool { _, m := metaOn(t, c, id); return m["is_local"] == true })
	resp, _, _ := b.Do(testnode.Request{Method: "POST", Path: "/api/v1/delete/" + id})
	if resp.StatusCode != 200 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	// Deletes reach the live peers before the DELETE returns.
	for _, n := range ns {
		resp, _ := get(t, n, id, map[string]string{"X-Meta-Fetch": "1"})
		if resp.StatusCode != 404 || resp.Header.Get("X-Meta-Deleted") != "true" {
			t.Errorf("%s after delete: %d deleted=%q", n.PublicAddr, resp.StatusCode, resp.Header.Get("X-Meta-Deleted"))
		}
	}
}

func TestKilledNodeCatchesUpAfterRestart(t *testing.T) {
	_, ns := threeNodes(t)
	a, b, c := ns[0], ns[1], ns[2]
	cID := nodeID(t, c)
	gone := ulid.Make().String()
	mustPut(t, a, gone, 1, "gone.txt", "deleted while c is down")
	eventually(t, "c knows it", func() bool { s, _ := metaOn(t, c, gone); return s == 200 })
	c.Kill()
	eventually(t, "a sees c dead", func() bool { return stateOf(t, a, cID) == "dead" })
	var ids []string
	for i := range 20 {
		id := ulid.Make().String()
		ids = append(ids, id)
		mustPut(t, a, id, i%3, fmt.Sprintf("f%d.txt", i), "written while c is down "+id)
	}
	if resp, _, _ := b.Do(testnode.Request{Method: "POST", Path: "/api/v1/delete/" + gone}); resp.StatusCode != 200 {
		t.Fatal("delete failed")
	}
	c.Start()
	for i, id := range ids {
		eventually(t, "c catches up on "+id, func() bool {
			_, m := metaOn(t, c, id)
			return m != nil && (i%3 != 2 || m["is_local"] == true)
		})
	}
	if resp, _ := get(t, c, gone, nil); resp.StatusCode != 404 || resp.Header.Get("X-Meta-Deleted") != "true" {
		t.Errorf("deleted object on the restarted node: %d", resp.StatusCode)
	}
	eventually(t, "a sees c alive again", func() bool { return stateOf(t, a, cID) == "alive" })
}

func TestLateJoinerGetsEverything(t *testing.T) {
	remote := newRemote(t)
	a := clusterNode(t, remote)
	var ids []string
	for i := range 30 {
		id := ulid.Make().String()
		ids = append(ids, id)
		mustPut(t, a, id, i%3, "early.txt", "before the second node "+id)
	}
	late := clusterNode(t, remote, a)
	for i, id := range ids {
		eventually(t, "late joiner has "+id, func() bool {
			_, m := metaOn(t, late, id)
			return m != nil && (i%3 != 2 || m["is_local"] == true)
		})
	}
	resp, body := get(t, late, ids[0], nil)
	if resp.StatusCode != 200 || body != "before the second node "+ids[0] {
		t.Errorf("read on the late joiner: %d %q", resp.StatusCode, body)
	}
}

func TestGracefulLeaveAndKill(t *testing.T) {
	_, ns := threeNodes(t)
	a, b, c := ns[0], ns[1], ns[2]
	bID, cID := nodeID(t, b), nodeID(t, c)
	b.Stop()
	eventually(t, "b seen as left", func() bool { return stateOf(t, a, bID) == "left" })
	c.Kill()
	eventually(t, "c seen as dead", func() bool { return stateOf(t, a, cID) == "dead" })
}

// With the only holder of a level-0 object down, another node answers a
// clear 503 at once instead of hanging.
func TestOnlyHolderDownIs503(t *testing.T) {
	_, ns := threeNodes(t)
	a, b := ns[0], ns[1]
	aID := nodeID(t, a)
	id := ulid.Make().String()
	mustPut(t, a, id, 0, "only-on-a.txt", "only here")
	eventually(t, "b knows it", func() bool { s, _ := metaOn(t, b, id); return s == 200 })
	a.Kill()
	eventually(t, "b sees a dead", func() bool { return stateOf(t, b, aID) == "dead" })
	start := time.Now()
	resp, body := get(t, b, id, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, aID) {
		t.Errorf("read with the holder down: %d %s", resp.StatusCode, body)
	}
	t.Logf("answered in %v", time.Since(start).Round(time.Millisecond))
}
