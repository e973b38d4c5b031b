package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/internal/testnode"
)

// sparseStats are the figures of /api/v1/stats that ranged reads move.
type sparseStats struct {
	Journal struct {
		LocalObjects  int64 `json:"local_objects"`
		SparseObjects int64 `json:"sparse_objects"`
		SparseBytes   int64 `json:"sparse_bytes"`
	} `json:"journal"`
	Traffic struct {
		SparseReads       int64 `json:"sparse_reads"`
		RangedRemoteBytes int64 `json:"ranged_remote_bytes"`
		SparseAssembled   int64 `json:"sparse_assembled"`
	} `json:"traffic"`
}

func sparseStatsOf(t *testing.T, n *testnode.Node, header ...string) sparseStats {
	t.Helper()
	h := map[string]string{}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	resp, b, err := n.Do(testnode.Request{Path: "/api/v1/stats", Header: h})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stats: %d %s", resp.StatusCode, b)
	}
	var st sparseStats
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("stats: %v: %s", err, b)
	}
	return st
}

// randomBody returns size bytes that no two parts share.
func randomBody(size int, seed byte) []byte {
	b := make([]byte, size)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// sparseOrigin puts body under key in a fresh bucket of srv and starts a
// node serving that bucket through a counting proxy, with extra flags.
func sparseOrigin(t *testing.T, srv *testminio.Server, key string, body []byte, extra ...string) (*testnode.Node, *s3Proxy, string) {
	t.Helper()
	bucket := srv.NewBucket(t)
	putObject(t, srv, bucket, key, body)
	proxy := newS3Proxy(t, srv.Endpoint())
	args := append([]string{"--s3-endpoint", proxy.URL, "--origin-buckets", bucket, "--cache-ttl", "1h"}, extra...)
	return testnode.Start(t, testnode.Options{Env: srv.Env(), Args: args}), proxy, bucket
}

func putObject(t *testing.T, srv *testminio.Server, bucket, key string, body []byte) {
	t.Helper()
	if _, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket),
		Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

// getRange reads bytes [from, to] of bucket/key through n.
func getRange(t *testing.T, n *testnode.Node, bucket, key string, from, to int64) (*http.Response, []byte, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", keyURL(n, bucket, key), nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func mustRange(t *testing.T, n *testnode.Node, bucket, key string, body []byte, from, to int64) *http.Response {
	t.Helper()
	resp, got, err := getRange(t, n, bucket, key, from, to)
	if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, body[from:to+1]) {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Fatalf("bytes=%d-%d: %d, %d bytes, %v, match %v", from, to, code, len(got), err, bytes.Equal(got, body[from:min(to+1, from+int64(len(got)))]))
	}
	return resp
}

// One 64 KiB range of a cold 256 MiB object moves one part (8 MiB) from
// S3, not the object; the same range again moves nothing; the stats and
// headers say what the node holds.
func TestSparseRangeOfColdObjectMovesOnePart(t *testing.T) {
	srv := testminio.Start(t)
	body := randomBody(256<<20, 1)
	n, proxy, bucket := sparseOrigin(t, srv, "data/big.parquet", body)

	const from, to = 100_000_000, 100_000_000 + 64<<10 - 1
	resp := mustRange(t, n, bucket, "data/big.parquet", body, from, to)
	if resp.Header.Get("X-Meta-Source") != "remote" || resp.Header.Get("X-Meta-Held") != "" {
		t.Errorf("first read: source %q, held %q", resp.Header.Get("X-Meta-Source"), resp.Header.Get("X-Meta-Held"))
	}
	const part = 8 << 20
	eventually(t, "the part recorded", func() bool { return sparseStatsOf(t, n).Journal.SparseBytes == part })
	if got := proxy.objectBytes.Load(); got > part {
		t.Fatalf("a 64 KiB range moved %d bytes from S3 (more than one %d-byte part)", got, part)
	}
	st := sparseStatsOf(t, n)
	if st.Journal.SparseObjects != 1 || st.Journal.LocalObjects != 0 || st.Traffic.RangedRemoteBytes != part || st.Traffic.SparseReads != 1 {
		t.Errorf("stats after one range: %+v", st)
	}
	before := proxy.objectBytes.Load()
	resp = mustRange(t, n, bucket, "data/big.parquet", body, from+1000, to)
	if resp.Header.Get("X-Meta-Source") != "local" || resp.Header.Get("X-Meta-Held") != strconv.Itoa(part) || proxy.objectBytes.Load() != before {
		t.Errorf("the same range again: source %q, held %q, %d bytes from S3", resp.Header.Get("X-Meta-Source"),
			resp.Header.Get("X-Meta-Held"), proxy.objectBytes.Load()-before)
	}
	// A suffix (a footer's length, as Parquet readers ask) moves the last
	// part only.
	before = proxy.objectBytes.Load()
	req, _ := http.NewRequest("GET", keyURL(n, bucket, "data/big.parquet"), nil)
	req.Header.Set("Range", "bytes=-8")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusPartialContent || !bytes.Equal(tail, body[len(body)-8:]) {
		t.Fatalf("suffix: %d %x", r.StatusCode, tail)
	}
	if got := proxy.objectBytes.Load() - before; got > part {
		t.Errorf("an 8-byte suffix moved %d bytes", got)
	}
}

// Reading every part of an object in random order, some at once, moves it
// from S3 exactly once; the node then holds it whole and verified.
func TestSparseEveryPartMovesTheObjectOnce(t *testing.T) {
	srv := testminio.Start(t)
	const part, size = 4 << 20, 48<<20 + 12345
	body := randomBody(size, 2)
	n, proxy, bucket := sparseOrigin(t, srv, "video.mp4", body, "--fetch-part-size", "4MiB")
	parts := (size + part - 1) / part
	done := make(chan struct{}, parts)
	for i, k := range rand.Perm(parts) {
		from := int64(k) * part
		to := min(from+part, size) - 1
		if i%4 == 0 {
			go func() { // some reads race others
				defer func() { done <- struct{}{} }()
				resp, got, err := getRange(t, n, bucket, "video.mp4", from, to)
				if err != nil || resp.StatusCode != 206 || !bytes.Equal(got, body[from:to+1]) {
					t.Errorf("concurrent part %d: %v", k, err)
				}
			}()
		} else {
			done <- struct{}{}
		}
		mustRange(t, n, bucket, "video.mp4", body, from+int64(k), to)
	}
	for range parts {
		<-done
	}
	eventually(t, "the copy assembled", func() bool { return sparseStatsOf(t, n).Traffic.SparseAssembled == 1 })
	if got := proxy.objectBytes.Load(); got != size {
		t.Errorf("reading every part moved %d bytes from S3, the object has %d", got, size)
	}
	st := sparseStatsOf(t, n)
	if st.Journal.SparseObjects != 0 || st.Journal.SparseBytes != 0 || st.Journal.LocalObjects != 1 {
		t.Errorf("after every part: %+v", st)
	}
	resp, got := do(t, "GET", keyURL(n, bucket, "video.mp4"), nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(got, body) || resp.Header.Get("X-Meta-Source") != "local" {
		t.Errorf("whole read: %d, %d bytes from %s", resp.StatusCode, len(got), resp.Header.Get("X-Meta-Source"))
	}
	if proxy.objectBytes.Load() != size {
		t.Error("the whole read went to S3")
	}
}

// A full GET after some ranged reads fetches only the parts not held.
func TestSparseFullReadAfterRanges(t *testing.T) {
	srv := testminio.Start(t)
	const part, size = 4 << 20, 40 << 20
	body := randomBody(size, 3)
	n, proxy, bucket := sparseOrigin(t, srv, "table.orc", body, "--fetch-part-size", "4MiB")
	mustRange(t, n, bucket, "table.orc", body, size-100, size-1)
	mustRange(t, n, bucket, "table.orc", body, 3*part+10, 3*part+20_000)
	mustRange(t, n, bucket, "table.orc", body, 7*part-10, 7*part+10) // two parts
	eventually(t, "four parts held", func() bool { return sparseStatsOf(t, n).Journal.SparseBytes == 4*part })
	held := proxy.objectBytes.Load()
	resp, got := do(t, "GET", keyURL(n, bucket, "table.orc"), nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("full read: %d, %d bytes, match %v", resp.StatusCode, len(got), bytes.Equal(got, body))
	}
	if resp.Header.Get("X-Meta-Held") != strconv.Itoa(4*part) {
		t.Errorf("full read began holding %q bytes", resp.Header.Get("X-Meta-Held"))
	}
	eventually(t, "the copy assembled", func() bool { return sparseStatsOf(t, n).Journal.LocalObjects == 1 })
	if got := proxy.objectBytes.Load(); got != size || held != 4*part {
		t.Errorf("ranges moved %d bytes, then the full read %d more; the object has %d", held, got-held, size)
	}
}

// An object overwritten in S3 between two ranged reads is never served
// mixed: the read that would join old and new parts fails, and the next
// one serves the new version alone.
func TestSparseOverwriteBetweenRangesIsNeverMixed(t *testing.T) {
	srv := testminio.Start(t)
	const part, size = 4 << 20, 16 << 20
	oldBody := randomBody(size, 4)
	n, _, bucket := sparseOrigin(t, srv, "k", oldBody, "--fetch-part-size", "4MiB")
	mustRange(t, n, bucket, "k", oldBody, 0, 1000)
	eventually(t, "part 0 held", func() bool { return sparseStatsOf(t, n).Journal.SparseBytes == part })
	newBody := randomBody(size, 5)
	putObject(t, srv, bucket, "k", newBody)

	resp, got, err := getRange(t, n, bucket, "k", 0, 2*part-1)
	switch {
	case err == nil && resp.StatusCode == 206 && len(got) == 2*part:
		if !bytes.Equal(got, oldBody[:2*part]) && !bytes.Equal(got, newBody[:2*part]) {
			t.Fatal("a range across the overwrite was served mixed")
		}
	case err == nil && resp.StatusCode == 206:
		t.Fatalf("a short body (%d of %d bytes) was served as whole", len(got), 2*part)
	}
	if len(got) > 0 && !bytes.Equal(got, oldBody[:len(got)]) && !bytes.Equal(got, newBody[:len(got)]) {
		t.Fatal("the bytes served mix versions")
	}
	eventually(t, "the new version served", func() bool {
		resp, got, err := getRange(t, n, bucket, "k", 0, 2*part-1)
		return err == nil && resp.StatusCode == 206 && bytes.Equal(got, newBody[:2*part])
	})
	mustRange(t, n, bucket, "k", newBody, size-10, size-1)
}

// A node killed with SIGKILL while parts stream in restarts with a copy
// that serves only the parts it recorded as verified, and fetches the
// rest.
func TestSparseKilledWhileStreaming(t *testing.T) {
	srv := testminio.Start(t)
	const part, size = 1 << 20, 32 << 20
	body := randomBody(size, 6)
	n, proxy, bucket := sparseOrigin(t, srv, "stream.bin", body, "--fetch-part-size", "1MiB", "--fetch-concurrency", "2")
	proxy.rate.Store(8 << 20) // 8 MiB/s: the read takes about four seconds
	go getRange(t, n, bucket, "stream.bin", 0, size-2)
	eventually(t, "some parts recorded", func() bool { return sparseStatsOf(t, n).Journal.SparseBytes >= 4*part })
	n.Kill()
	proxy.rate.Store(0)
	n.Start()
	st := sparseStatsOf(t, n)
	if st.Journal.SparseBytes < 4*part || st.Journal.SparseBytes >= size || st.Journal.SparseBytes%part != 0 {
		t.Fatalf("after the crash the node holds %d bytes of parts", st.Journal.SparseBytes)
	}
	before := proxy.objectBytes.Load()
	resp, got := do(t, "GET", keyURL(n, bucket, "stream.bin"), nil, nil)
	if resp.StatusCode != 200 || sha256.Sum256(got) != sha256.Sum256(body) {
		t.Fatalf("read after the crash: %d, %d bytes, match %v", resp.StatusCode, len(got), bytes.Equal(got, body))
	}
	if moved := proxy.objectBytes.Load() - before; moved != size-st.Journal.SparseBytes {
		t.Errorf("after the crash the read moved %d bytes; %d were missing", moved, size-st.Journal.SparseBytes)
	}
}

// In a cluster, the parts of a key come through the member that owns the
// key's fills: a range read on one node, then the same range on another,
// moves the part from S3 once.
func TestSparsePartsThroughTheOwner(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	const size = 64 << 20
	body := randomBody(size, 7)
	putObject(t, srv, bucket, "shared.bin", body)
	proxy := newS3Proxy(t, srv.Endpoint())
	ns := keyCluster(t, srv, proxy, bucket, "1h")
	const from, to = 30 << 20, 30<<20 + 100_000
	for i, n := range ns {
		mustRange(t, n, bucket, "shared.bin", body, from, to)
		if i == 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if got := proxy.objectBytes.Load(); got > 8<<20 {
		t.Errorf("the same range on three nodes moved %d bytes from S3 (one part is %d)", got, 8<<20)
	}
}

// A ranged read of a ULID object on a node that does not hold it takes
// the part from a peer that does (whole, or as parts of its own sparse
// copy) before S3.
func TestSparsePartsFromPeers(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	proxy := newS3Proxy(t, srv.Endpoint())
	var ns []*testnode.Node
	for i := range 3 {
		args := []string{"--bucket", bucket, "--s3-endpoint", proxy.URL, "--s3-prefix", "objects/",
			"--gossip-profile", "local", "--sync-interval", "1s"}
		if i > 0 {
			args = append(args, "-N", ns[0].GossipAddr)
		}
		ns = append(ns, testnode.Start(t, testnode.Options{Env: srv.Env(), Args: args}))
	}
	for _, n := range ns {
		eventually(t, "three alive members", func() bool { return aliveCount(t, n) == 3 })
	}
	const part, size = 8 << 20, 64 << 20
	body := randomBody(size, 8)
	id := ulid.Make().String()
	mustPut(t, ns[0], id, 1, "table.parquet", string(body))
	for _, n := range ns[1:] {
		eventually(t, "the object known everywhere", func() bool { code, _ := metaOn(t, n, id); return code == 200 })
	}
	ranged := func(n *testnode.Node, from, to int64) *http.Response {
		t.Helper()
		resp, got := get(t, n, id, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", from, to)})
		if resp.StatusCode != http.StatusPartialContent || got != string(body[from:to+1]) {
			t.Fatalf("bytes=%d-%d: %d, %d bytes", from, to, resp.StatusCode, len(got))
		}
		return resp
	}
	before := proxy.objectBytes.Load()
	ranged(ns[1], 3*part+10, 3*part+1000)
	if moved := proxy.objectBytes.Load() - before; moved != 0 {
		t.Errorf("a part held by the writer moved %d bytes from S3", moved)
	}
	// With the writer gone, node 1's part serves node 2; a part nobody
	// holds comes from S3.
	eventually(t, "node 1 records its part", func() bool { return sparseStatsOf(t, ns[1]).Journal.SparseBytes == part })
	ns[0].Stop()
	eventually(t, "the writer gone", func() bool { return aliveCount(t, ns[2]) == 2 })
	ranged(ns[2], 3*part+2000, 3*part+5000)
	if moved := proxy.objectBytes.Load() - before; moved != 0 {
		t.Errorf("a part held by a peer's sparse copy moved %d bytes from S3", moved)
	}
	ranged(ns[2], 5*part, 5*part+99)
	eventually(t, "node 2 records two parts", func() bool { return sparseStatsOf(t, ns[2]).Journal.SparseBytes == 2*part })
	if moved := proxy.objectBytes.Load() - before; moved != part {
		t.Errorf("a part nobody held moved %d bytes from S3, want %d", moved, part)
	}
}

// An S3 client's ranged GetObject through the node's S3 endpoint fetches
// one part of a cold object, as the REST API does.
func TestSparseThroughTheS3Endpoint(t *testing.T) {
	c := startS3Cluster(t, 1)
	const size = 64 << 20
	body := randomBody(size, 9)
	putObject(t, c.srv, c.bucket, "logs/day.parquet", body)
	cl := c.client(0, s3Reader, s3ReaderSecret)
	out, err := cl.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(c.bucket),
		Key: aws.String("logs/day.parquet"), Range: aws.String("bytes=20000000-20065535")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, body[20000000:20065536]) || aws.ToString(out.ContentRange) != fmt.Sprintf("bytes 20000000-20065535/%d", size) {
		t.Fatalf("ranged GetObject: %d bytes, %v, %q", len(got), err, aws.ToString(out.ContentRange))
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(s3Reader+":"+s3ReaderSecret))
	eventually(t, "the part recorded", func() bool {
		return sparseStatsOf(t, c.nodes[0], "Authorization", auth).Journal.SparseBytes == 8<<20
	})
	if st := sparseStatsOf(t, c.nodes[0], "Authorization", auth); st.Traffic.RangedRemoteBytes != 8<<20 || st.Journal.LocalObjects != 0 {
		t.Errorf("after a ranged GetObject: %+v", st)
	}
}
