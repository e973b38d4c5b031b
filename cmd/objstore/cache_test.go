package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/internal/testnode"
)

type traffic struct {
	HitsLocal   int64 `json:"hits_local"`
	HitsPeer    int64 `json:"hits_peer"`
	HitsRemote  int64 `json:"hits_remote"`
	BytesLocal  int64 `json:"bytes_local"`
	BytesPeer   int64 `json:"bytes_peer"`
	BytesRemote int64 `json:"bytes_remote"`
	Evictions   int64 `json:"evictions"`
	ReadDamaged int64 `json:"read_damaged"`
	Repairs     int64 `json:"repairs"`
}

type stats struct {
	Journal struct {
		LocalObjects int64 `json:"local_objects"`
		LocalBytes   int64 `json:"local_bytes"`
	} `json:"journal"`
	Traffic traffic `json:"traffic"`
}

func statsOf(t *testing.T, n *testnode.Node) stats {
	t.Helper()
	_, b, err := n.Do(testnode.Request{Path: "/api/v1/stats"})
	if err != nil {
		t.Fatal(err)
	}
	var st stats
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("stats: %v: %s", err, b)
	}
	return st
}

// Above --max-disk the node evicts copies that are safe in the remote and
// reads them back through when asked; when only sole copies are left, a
// PUT gets 507 and nothing held is touched.
func TestQuotaEvictsAndReadsThrough(t *testing.T) {
	n := testnode.Start(t, testnode.Options{Args: []string{"--max-disk", "1MiB"}})
	body := func(i int) string { return fmt.Sprintf("%06d", i) + strings.Repeat("q", 300<<10-6) }
	var ids []string
	for i := range 6 {
		id := ulid.Make().String()
		ids = append(ids, id)
		mustPut(t, n, id, 1, "big.bin", body(i))
	}
	st := statsOf(t, n)
	if st.Journal.LocalBytes > 1<<20 || st.Traffic.Evictions < 3 {
		t.Errorf("after 6 x 300 KiB in a 1 MiB quota: local bytes %d, evictions %d", st.Journal.LocalBytes, st.Traffic.Evictions)
	}
	// The first objects were evicted; reading them fetches them back from
	// the remote without X-Meta-Fetch.
	resp, got := get(t, n, ids[0], nil)
	if resp.StatusCode != 200 || got != body(0) || resp.Header.Get("X-Meta-Source") != "remote" {
		t.Errorf("evicted object: %d from %s", resp.StatusCode, resp.Header.Get("X-Meta-Source"))
	}
	resp, _ = get(t, n, ids[0], nil)
	if resp.Header.Get("X-Meta-Source") != "local" {
		t.Errorf("second read of a read-through object from %s, want local", resp.Header.Get("X-Meta-Source"))
	}

	// Fill the quota with sole (level-0) copies: they are never evicted.
	m := testnode.Start(t, testnode.Options{Args: []string{"--max-disk", "1MiB"}})
	var kept []string
	for i := range 3 {
		id := ulid.Make().String()
		kept = append(kept, id)
		mustPut(t, m, id, 0, "only.bin", body(i))
	}
	resp, b := put(t, m, ulid.Make().String(), 0, "one-too-many.bin", body(9), nil)
	if resp.StatusCode != http.StatusInsufficientStorage || !strings.Contains(string(b), "quota") {
		t.Errorf("PUT over a quota of sole copies: %d %s", resp.StatusCode, b)
	}
	for i, id := range kept {
		if resp, got := get(t, m, id, nil); resp.StatusCode != 200 || got != body(i) {
			t.Errorf("sole copy %d after the refused PUT: %d", i, resp.StatusCode)
		}
	}
}

// Concurrent misses for one object make one remote request, counted at
// the S3 endpoint, and every client gets the whole body.
func TestCoalescedMissesMakeOneRemoteRequest(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	proxy := newS3Proxy(t, srv.Endpoint())
	endpoint, gets := proxy.URL, &proxy.gets
	n := testnode.Start(t, testnode.Options{Env: srv.Env(),
		Args: []string{"--bucket", bucket, "--s3-endpoint", endpoint, "--s3-prefix", "objects/"}})
	id := ulid.Make().String()
	body := strings.Repeat("coalesce ", 2<<20/9)
	mustPut(t, n, id, 1, "c.bin", body)
	n.LoseDisk()
	gets.Store(0)
	const clients = 16
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, got, err := n.Do(testnode.Request{Path: "/api/v1/get/" + id, Header: map[string]string{"X-Meta-Fetch": "1"}})
			if err != nil || resp.StatusCode != 200 || string(got) != body {
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d of %d clients did not get the whole body", bad.Load(), clients)
	}
	if g := gets.Load(); g != 1 {
		t.Errorf("%d GETs reached S3 for %d concurrent misses, want 1", g, clients)
	}
}

// A cached copy older than --cache-ttl is fetched again before it is
// served.
func TestCacheTTL(t *testing.T) {
	remote := newRemote(t)
	a := clusterNode(t, remote)
	b := secureNode(t, remote, nil, []string{"--cache-ttl", "2s"}, a)
	id := ulid.Make().String()
	mustPut(t, a, id, 1, "ttl.txt", "fresh")
	eventually(t, "b knows it", func() bool { s, _ := metaOn(t, b, id); return s == 200 })
	resp, _ := get(t, b, id, nil)
	if src := resp.Header.Get("X-Meta-Source"); src == "local" {
		t.Fatalf("first read on b from %s", src)
	}
	if resp, _ := get(t, b, id, nil); resp.Header.Get("X-Meta-Source") != "local" {
		t.Errorf("second read within the TTL from %s, want local", resp.Header.Get("X-Meta-Source"))
	}
	time.Sleep(2500 * time.Millisecond)
	resp, got := get(t, b, id, nil)
	if resp.StatusCode != 200 || got != "fresh" || resp.Header.Get("X-Meta-Source") == "local" {
		t.Errorf("read after the TTL: %d %q from %s, want a fresh fetch", resp.StatusCode, got, resp.Header.Get("X-Meta-Source"))
	}
	// The origin's copy of its own level-1 object is also a cached copy
	// (the remote has it) but a never-expiring sole copy would be kept.
}

// Invalidation drops the cached copies on every node and keeps the
// metadata and the remote copy; the next read fetches a fresh copy.
func TestInvalidateEverywhere(t *testing.T) {
	_, ns := threeNodes(t)
	a, b := ns[0], ns[1]
	id := ulid.Make().String()
	mustPut(t, a, id, 2, "inv.txt", "everywhere")
	for _, n := range ns {
		eventually(t, "replicated", func() bool { _, m := metaOn(t, n, id); return m["is_local"] == true })
	}
	sole := ulid.Make().String()
	mustPut(t, a, sole, 0, "sole.txt", "only on a")
	resp, b1, _ := b.Do(testnode.Request{Method: "POST", Path: "/api/v1/invalidate/" + id})
	var res struct {
		Dropped []string
		Errors  map[string]string
	}
	json.Unmarshal(b1, &res)
	if resp.StatusCode != 200 || len(res.Dropped) != 3 || len(res.Errors) != 0 {
		t.Fatalf("invalidate: %d %s", resp.StatusCode, b1)
	}
	for _, n := range ns {
		s, m := metaOn(t, n, id)
		if s != 200 || m["is_local"] != false {
			t.Errorf("%s after invalidate: %d local=%v", n.PublicAddr, s, m["is_local"])
		}
		if resp, got := get(t, n, id, nil); resp.StatusCode != 200 || got != "everywhere" || resp.Header.Get("X-Meta-Source") == "local" {
			t.Errorf("%s read after invalidate: %d %q from %s", n.PublicAddr, resp.StatusCode, got, resp.Header.Get("X-Meta-Source"))
		}
	}
	// A sole copy is never dropped.
	resp, b1, _ = a.Do(testnode.Request{Method: "POST", Path: "/api/v1/invalidate/" + sole})
	if resp.StatusCode != 200 || !strings.Contains(string(b1), `"kept"`) {
		t.Errorf("invalidate of a sole copy: %d %s", resp.StatusCode, b1)
	}
	if resp, got := get(t, a, sole, nil); resp.StatusCode != 200 || got != "only on a" {
		t.Errorf("sole copy after invalidate: %d", resp.StatusCode)
	}
	if resp, _, _ := a.Do(testnode.Request{Method: "POST", Path: "/api/v1/invalidate/" + ulid.Make().String()}); resp.StatusCode != 404 {
		t.Errorf("invalidate of an unknown object: %d", resp.StatusCode)
	}
}

// Pre-warming loads objects into every node as a job whose progress can be
// polled.
func TestPrewarmEveryNode(t *testing.T) {
	remote := newRemote(t)
	a := clusterNode(t, remote)
	b := clusterNode(t, remote, a)
	var ids []string
	for i := range 10 {
		id := ulid.Make().String()
		ids = append(ids, id)
		mustPut(t, a, id, 1, "warm.txt", fmt.Sprintf("warm %d", i))
	}
	eventually(t, "b knows them", func() bool { s, _ := metaOn(t, b, ids[9]); return s == 200 })
	spec, _ := json.Marshal(map[string]any{"ids": ids, "all_nodes": true})
	resp, body, _ := b.Do(testnode.Request{Method: "POST", Path: "/api/v1/prewarm", Body: strings.NewReader(string(spec))})
	var job struct {
		ID    string
		State string
		Total int
		Peers []struct {
			Node   string
			State  string
			Loaded int
			Done   int
		}
		Loaded, Skipped, Failed, Done int
	}
	if err := json.Unmarshal(body, &job); err != nil || resp.StatusCode != http.StatusAccepted || job.Total != 10 {
		t.Fatalf("prewarm: %d %s", resp.StatusCode, body)
	}
	eventually(t, "job done", func() bool {
		_, body, _ := b.Do(testnode.Request{Path: "/api/v1/prewarm/" + job.ID})
		json.Unmarshal(body, &job)
		return job.State == "done" && len(job.Peers) == 1 && job.Peers[0].State == "done"
	})
	if job.Loaded != 10 || job.Failed != 0 || job.Peers[0].Done != 10 || job.Peers[0].Loaded != 0 {
		t.Errorf("job: %+v", job) // a already held every body: its share skips them
	}
	for _, id := range ids {
		if _, m := metaOn(t, b, id); m["is_local"] != true {
			t.Errorf("%s not loaded on b", id)
		}
	}
	for _, bad := range []string{`{}`, `{"ids":["nope"]}`, `{"ids":[],"from":"x"}`, `not json`} {
		resp, body, _ := b.Do(testnode.Request{Method: "POST", Path: "/api/v1/prewarm", Body: strings.NewReader(bad)})
		if resp.StatusCode != 400 {
			t.Errorf("prewarm %s: %d %s", bad, resp.StatusCode, body)
		}
	}
	if resp, _, _ := b.Do(testnode.Request{Path: "/api/v1/prewarm/" + ulid.Make().String()}); resp.StatusCode != 404 {
		t.Errorf("unknown job: %d", resp.StatusCode)
	}
	// Traffic is counted by source.
	st := statsOf(t, b)
	if st.Traffic.HitsLocal == 0 && st.Traffic.BytesLocal == 0 {
		get(t, b, ids[0], nil)
		st = statsOf(t, b)
	}
	if st.Traffic.BytesLocal == 0 {
		t.Errorf("no local bytes counted: %+v", st.Traffic)
	}
}

// A ranged GET of a cold object fetched from S3 in parts answers with the
// right bytes and keeps only the parts it touched; a full GET then brings
// in the rest, and the object is whole on the node afterwards.
func TestRangedReadOfColdObject(t *testing.T) {
	n, _, _ := s3Node(t, "--fetch-part-size", "64KiB", "--fetch-concurrency", "4")
	id := ulid.Make().String()
	var sb strings.Builder
	for i := 0; sb.Len() < 4<<20; i++ {
		fmt.Fprintf(&sb, "%08d|", i)
	}
	body := sb.String()
	mustPut(t, n, id, 1, "parts.bin", body)
	n.LoseDisk()
	from, to := len(body)-200_000, len(body)-100_001
	resp, got := get(t, n, id, map[string]string{"X-Meta-Fetch": "1", "Range": fmt.Sprintf("bytes=%d-%d", from, to)})
	if resp.StatusCode != http.StatusPartialContent || got != body[from:to+1] {
		t.Fatalf("ranged cold read: %d, %d bytes, match %v", resp.StatusCode, len(got), got == body[from:to+1])
	}
	if _, m := metaOn(t, n, id); m["is_local"] == true {
		t.Error("a ranged read kept the whole object")
	}
	resp, got = get(t, n, id, nil)
	if resp.StatusCode != 200 || got != body {
		t.Fatalf("full read after the range: %d, %d bytes", resp.StatusCode, len(got))
	}
	eventually(t, "whole object kept", func() bool { _, m := metaOn(t, n, id); return m["is_local"] == true })
	resp, got = get(t, n, id, nil)
	if resp.StatusCode != 200 || got != body || resp.Header.Get("X-Meta-Source") != "local" {
		t.Errorf("after the full read: %d, %d bytes from %s", resp.StatusCode, len(got), resp.Header.Get("X-Meta-Source"))
	}
}

// Pre-warming an ID range loads the objects created in that window.
func TestPrewarmRange(t *testing.T) {
	remote := newRemote(t)
	a := clusterNode(t, remote)
	b := clusterNode(t, remote, a)
	var ids []string
	for i := range 5 {
		id := ulid.Make().String()
		ids = append(ids, id)
		mustPut(t, a, id, 1, "r.txt", fmt.Sprintf("range %d", i))
	}
	eventually(t, "b knows them", func() bool { s, _ := metaOn(t, b, ids[4]); return s == 200 })
	spec := fmt.Sprintf(`{"from":%q,"to":%q}`, ids[1], ids[3])
	resp, body, _ := b.Do(testnode.Request{Method: "POST", Path: "/api/v1/prewarm", Body: strings.NewReader(spec)})
	var job struct {
		ID            string
		State         string
		Total, Loaded int
	}
	if json.Unmarshal(body, &job); resp.StatusCode != http.StatusAccepted || job.Total != 3 {
		t.Fatalf("prewarm range: %d %s", resp.StatusCode, body)
	}
	eventually(t, "job done", func() bool {
		_, body, _ := b.Do(testnode.Request{Path: "/api/v1/prewarm/" + job.ID})
		json.Unmarshal(body, &job)
		return job.State == "done"
	})
	for i, id := range ids {
		_, m := metaOn(t, b, id)
		if want := i >= 1 && i <= 3; (m["is_local"] == true) != want {
			t.Errorf("object %d local on b = %v, want %v", i, m["is_local"], want)
		}
	}
}
