//go:build sidebyside

package sidebyside_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/internal/testnode"
)

func TestMain(m *testing.M) { testminio.Main(m) }

// The access key of the harness's requests to objstore.
const accessKey, secretKey = "bench", "bench-secret-of-the-side-by-side-run"

// size is an object size measured.
type size struct {
	name string
	n    int64
}

var (
	kib1   = size{"1 KiB", 1 << 10}
	kib64  = size{"64 KiB", 64 << 10}
	mib1   = size{"1 MiB", 1 << 20}
	mib64  = size{"64 MiB", 64 << 20}
	mib256 = size{"256 MiB", 256 << 20}
)

// key is the origin key of the source object of size s.
func (s size) key() string { return "src/" + strings.ReplaceAll(s.name, " ", "") }

// Column names of the systems measured.
const (
	sysULID       = "objstore REST, ULID"
	sysKey        = "objstore REST, key"
	sysS3         = "objstore S3 endpoint"
	sysNginx      = "nginx proxy_cache"
	sysCachenator = "cachenator"
	sysMinIO      = "MinIO direct"
)

// harness is everything one side-by-side run starts: the servers, pinned
// to one core, and the client, pinned to another.
type harness struct {
	t       *testing.T
	ctx     context.Context
	cpu     cpus
	seconds int // of each load run

	srv    *testminio.Server
	origin string // the bucket read through, public-read for nginx and MinIO direct
	tier   string // node 0's remote tier, for ULID objects
	nodes  []*testnode.Node
	s3Base string // node 0's S3 endpoint
	s3     *s3.PresignClient
	basic  string // Authorization header of REST API requests
	ids    map[size]string

	nginx      *daemon
	cachenator *daemon // nil unless $CACHENATOR_BIN is given

	hc *http.Client
}

// cpus says where the servers and the load generator run; empty when the
// machine has one core and nothing is pinned.
type cpus struct{ server, load string }

// TestSideBySide runs every measurement and writes the report.
func TestSideBySide(t *testing.T) {
	h := start(t)
	r := &report{machine: machine(h), seconds: h.seconds}
	sections := map[string]func(*report){"hits": h.hits, "cold": h.cold, "peer": h.peer, "puts": h.puts}
	only := os.Getenv("BENCH_ONLY")
	for _, name := range []string{"hits", "cold", "peer", "puts"} {
		if only == "" || slices.Contains(strings.Split(only, ","), name) {
			sections[name](r)
		}
	}
	for i, n := range h.nodes[:2] {
		_, peak, err := testnode.RSS(n.Pid())
		if err != nil {
			t.Fatal(err)
		}
		r.rss = append(r.rss, rssOf{[]string{"objstore (alone)", "objstore (cluster node 1)"}[i], peak})
	}
	if pid := h.nginx.cmd.Process.Pid; pid > 0 {
		r.rss = append(r.rss, rssOf{"nginx (master and worker)", treePeak(pid)})
	}
	if pid := h.srv.Pid(); pid > 0 {
		_, peak, _ := testnode.RSS(pid)
		r.rss = append(r.rss, rssOf{"MinIO", peak})
	}
	md := r.markdown()
	t.Log("\n" + md)
	if os.Getenv("BENCH_NO_WRITE") != "" {
		return
	}
	if err := r.chart("../../docs/bench-sidebyside.png"); err != nil {
		t.Fatal(err)
	}
	if err := writeSection("../../docs/benchmarks.md", md); err != nil {
		t.Fatal(err)
	}
	t.Log("wrote docs/benchmarks.md and docs/bench-sidebyside.png")
}

func start(t *testing.T) *harness {
	for _, tool := range []string{"wrk", "nginx", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
				t.Fatalf("%s is not installed: run scripts/bench-deps.sh (make bench does)", tool)
			}
		}
	}
	h := &harness{t: t, ctx: context.Background(), seconds: 1, ids: map[size]string{}}
	if s := os.Getenv("BENCH_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("BENCH_SECONDS=%q: want a whole number of seconds", s)
		}
		h.seconds = n
	}
	if n := runtime.NumCPU(); n >= 2 {
		h.cpu = cpus{server: "0", load: strconv.Itoa(n - 1)}
	}
	// The harness is the load generator of single GETs and PUTs, and wrk
	// inherits its core; every server is moved to the server core.
	h.pin(os.Getpid(), h.cpu.load)
	h.hc = &http.Client{Transport: &http.Transport{DisableCompression: true, ReadBufferSize: 64 << 10,
		MaxIdleConnsPerHost: 16}}
	t.Cleanup(h.hc.CloseIdleConnections)

	h.srv = testminio.Start(t)
	// MinIO stands for S3, another machine: it runs beside the load
	// generators, not on the core of the cache measured, except while it
	// is itself the server measured (MinIO direct hits).
	h.pin(h.srv.Pid(), h.cpu.load)
	h.origin, h.tier = h.srv.NewBucket(t), h.srv.NewBucket(t)
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},`+
		`"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/*"]}]}`, h.origin)
	if _, err := h.srv.Client().PutBucketPolicy(h.ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(h.origin),
		Policy: aws.String(policy)}); err != nil {
		t.Fatalf("public-read policy on %s: %v", h.origin, err)
	}
	for i, s := range []size{kib1, kib64, mib1, mib256} {
		if _, err := h.putMinIO(h.origin, s.key(), s.n, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	h.startNodes()
	h.nginx = startNginx(t, h.srv.Endpoint())
	h.pin(h.nginx.cmd.Process.Pid, h.cpu.server)
	if bin := os.Getenv("CACHENATOR_BIN"); bin != "" {
		h.cachenator = startCachenator(t, bin, h.srv)
		h.pin(h.cachenator.cmd.Process.Pid, h.cpu.server)
	}
	return h
}

// startNodes starts the objstore nodes measured. Node 0 is alone, as
// nginx is: it serves the hits, the cold reads, the S3 endpoint and the
// PUTs of levels 0 and 1, on the server core. Nodes 1 to 3 are a cluster
// for what needs one, peer reads and level-2 PUTs: node 1, on the server
// core, is the node measured; nodes 2 and 3, other machines in a real
// cluster, run on the load generator's core.
func (h *harness) startNodes() {
	t := h.t
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte(accessKey+" "+secretKey+" read,write\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(accessKey+":"+secretKey))
	s3Addr := testnode.FreeAddr(t)
	for i := range 4 {
		args := []string{"--bucket", h.tier, "--s3-endpoint", h.srv.Endpoint(), "--origin-buckets", h.origin,
			"--cache-ttl", "1h", "--credentials-file", creds, "--gossip-profile", "local",
			"--debug", "0"} // the harness's nodes log every request at debug level
		switch i {
		case 0:
			args = append(args, "--s3-api-addr", s3Addr)
		case 1:
			args = append(args, "--tag", "cluster")
		default:
			args = append(args, "--tag", "cluster", "-N", h.nodes[1].GossipAddr)
		}
		n := testnode.Start(t, testnode.Options{Env: h.srv.Env(), Args: args})
		cpu := h.cpu.server
		if i >= 2 {
			cpu = h.cpu.load
		}
		h.pin(n.Pid(), cpu)
		h.nodes = append(h.nodes, n)
	}
	h.until("three members alive", func() bool {
		resp, b, err := h.nodes[1].Do(testnode.Request{Path: "/api/v1/nodes", Header: map[string]string{"Authorization": h.basic}})
		return err == nil && resp.StatusCode == 200 && strings.Count(string(b), `"state":"alive"`) == 3
	})
	h.s3Base = "http://" + s3Addr
	h.s3 = s3.NewPresignClient(s3.New(s3.Options{Region: "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		BaseEndpoint: aws.String(h.s3Base), UsePathStyle: true}), func(o *s3.PresignOptions) { o.Expires = time.Hour })
	for i, s := range []size{kib1, kib64, mib1, mib256} {
		id, _, err := h.putNode(0, s.n, 0, uint64(100+i))
		if err != nil {
			t.Fatal(err)
		}
		h.ids[s] = id
	}
}

// pin moves every thread of process pid to cpu (threads it starts later
// inherit it); nothing when cpu is empty.
func (h *harness) pin(pid int, cpu string) {
	h.t.Helper()
	if cpu == "" {
		return
	}
	if out, err := exec.Command("taskset", "-a", "-p", "-c", cpu, strconv.Itoa(pid)).CombinedOutput(); err != nil {
		h.t.Fatalf("taskset %d to CPU %s: %v\n%s", pid, cpu, err, out)
	}
}

// until polls cond for up to a minute.
func (h *harness) until(what string, cond func() bool) {
	h.t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			h.t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// body returns n bytes of random content from seed, as an upload body.
func body(n int64, seed uint64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}), n)
}

// putMinIO PUTs n bytes to MinIO directly with a presigned URL, as an S3
// client would, and returns how long it took.
func (h *harness) putMinIO(bucket, key string, n int64, seed uint64) (time.Duration, error) {
	ps, err := s3.NewPresignClient(h.srv.Client()).PresignPutObject(h.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return 0, err
	}
	return h.put("PUT", ps.URL, nil, n, seed)
}

// putNode PUTs n bytes to node i at level through the REST API and returns
// the new object's ID and how long it took.
func (h *harness) putNode(i int, n int64, level int, seed uint64) (string, time.Duration, error) {
	id := ulid.Make().String()
	d, err := h.put("POST", h.nodes[i].URL+"/api/v1/put", map[string]string{"Authorization": h.basic,
		"X-Meta-ID": id, "X-Meta-ConsistencyLevel": strconv.Itoa(level)}, n, seed)
	return id, d, err
}

// putS3 PUTs n bytes to key in the origin bucket through node 0's S3
// endpoint (a presigned PutObject) and returns how long it took.
func (h *harness) putS3(key string, n int64, seed uint64) (time.Duration, error) {
	ps, err := h.s3.PresignPutObject(h.ctx, &s3.PutObjectInput{Bucket: aws.String(h.origin), Key: aws.String(key)})
	if err != nil {
		return 0, err
	}
	return h.put("PUT", ps.URL, nil, n, seed)
}

// put sends n bytes of seed's content and fails unless the answer is 200.
func (h *harness) put(method, url string, header map[string]string, n int64, seed uint64) (time.Duration, error) {
	req, err := http.NewRequestWithContext(h.ctx, method, url, body(n, seed))
	if err != nil {
		return 0, err
	}
	req.ContentLength = n
	for k, v := range header {
		req.Header.Set(k, v)
	}
	// Every PUT starts with no dirty pages left by the one before: the
	// kernel's writeback of earlier bodies would otherwise land on
	// whichever PUT comes next.
	syscall.Sync()
	start := time.Now()
	resp, err := h.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, url, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	d := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, msg)
	}
	return d, nil
}

// timing is one GET's time to the first body byte and to the last.
type timing struct{ ttfb, total time.Duration }

// get GETs url and reads the body to its end; it fails unless the answer
// is 200 with want bytes. It also returns the answer's headers.
func (h *harness) get(url string, header map[string]string, want int64) (timing, http.Header, error) {
	req, err := http.NewRequestWithContext(h.ctx, "GET", url, nil)
	if err != nil {
		return timing{}, nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := h.hc.Do(req)
	if err != nil {
		return timing{}, nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return timing{}, nil, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, msg)
	}
	var first [1]byte
	if _, err := io.ReadFull(resp.Body, first[:]); err != nil {
		return timing{}, nil, fmt.Errorf("GET %s: %w", url, err)
	}
	var tm timing
	tm.ttfb = time.Since(start)
	n, err := io.Copy(io.Discard, resp.Body)
	tm.total = time.Since(start)
	if err != nil || n+1 != want {
		return timing{}, nil, fmt.Errorf("GET %s: %d of %d bytes: %v", url, n+1, want, err)
	}
	return tm, resp.Header, nil
}

// target is one way of reading an object: the URL and the headers a
// client sends, and how to tell that an answer was a cache hit.
type target struct {
	system string
	url    string
	header map[string]string
	hit    func(http.Header) bool
}

// targets returns every system's way of reading origin key (id: the
// ULID object of the same size on node 0, when there is one).
func (h *harness) targets(key, id string) []target {
	ps, err := h.s3.PresignGetObject(h.ctx, &s3.GetObjectInput{Bucket: aws.String(h.origin), Key: aws.String(key)})
	if err != nil {
		h.t.Fatal(err)
	}
	local := func(name string) func(http.Header) bool {
		return func(hd http.Header) bool { return hd.Get(name) == "local" }
	}
	auth := map[string]string{"Authorization": h.basic}
	var ts []target
	if id != "" {
		ts = append(ts, target{sysULID, h.nodes[0].URL + "/api/v1/get/" + id, auth, local("X-Meta-Source")})
	}
	ts = append(ts,
		target{sysKey, h.nodes[0].URL + "/api/v1/b/" + h.origin + "/" + key, auth, local("X-Meta-Source")},
		target{sysS3, ps.URL, nil, local("X-Objstore-Source")},
		target{sysNginx, h.nginx.base + "/" + h.origin + "/" + key, nil,
			func(hd http.Header) bool { return hd.Get("X-Cache-Status") == "HIT" }},
	)
	if h.cachenator != nil {
		// cachenator serves a hit from memory and says nothing of it; its
		// second answer is a hit.
		seen := false
		ts = append(ts, target{sysCachenator, h.cachenator.base + "/get?bucket=" + h.origin + "&key=" + key, nil,
			func(http.Header) bool { hit := seen; seen = true; return hit }})
	}
	return append(ts, target{sysMinIO, h.srv.Endpoint() + "/" + h.origin + "/" + key, nil,
		func(http.Header) bool { return true }})
}

// hitRounds is how many wrk runs each system gets per size, taken in
// turn, system after system: a machine whose speed drifts (a shared VM)
// then slows every system alike, and the median of each is reported.
const hitRounds = 3

// hits measures hot-object GETs at 16 connections with wrk.
func (h *harness) hits(r *report) {
	for _, s := range []size{kib1, kib64, mib1, mib256} {
		targets := h.targets(s.key(), h.ids[s])
		for _, tg := range targets {
			h.until(tg.system+" holding "+s.name, func() bool {
				_, hd, err := h.get(tg.url, tg.header, s.n)
				if err != nil {
					h.t.Fatal(err)
				}
				return tg.hit(hd)
			})
		}
		runs := make([][][2]float64, len(targets)) // [target][round]{rps, bps}
		for range hitRounds {
			for i, tg := range targets {
				if tg.system == sysMinIO {
					h.pin(h.srv.Pid(), h.cpu.server)
				}
				rps, bps := h.wrk(tg, s)
				if tg.system == sysMinIO {
					h.pin(h.srv.Pid(), h.cpu.load)
				}
				runs[i] = append(runs[i], [2]float64{rps, bps})
			}
		}
		for i, tg := range targets {
			slices.SortFunc(runs[i], func(a, b [2]float64) int { return cmp.Compare(a[1], b[1]) })
			m := runs[i][len(runs[i])/2]
			r.add(result{kind: "hit", system: tg.system, size: s, rps: m[0], bps: m[1]})
			h.t.Logf("hit %s %s: %.0f req/s, %.1f MB/s (median of %d)", s.name, tg.system, m[0], m[1]/1e6, hitRounds)
		}
	}
}

// wrk runs wrk against tg for h.seconds at 16 connections on one thread
// and returns the requests and body bytes per second, failing on any
// error answer. Throughput is wrk's bytes read per second less the
// answers' headers, so that large bodies still being read when the run
// ends count too.
func (h *harness) wrk(tg target, s size) (rps, bps float64) {
	args := []string{"-t1", "-c16", fmt.Sprintf("-d%ds", h.seconds), "--timeout", "60s"}
	for k, v := range tg.header {
		args = append(args, "-H", k+": "+v)
	}
	out, err := exec.Command("wrk", append(args, tg.url)...).CombinedOutput()
	if err != nil {
		h.t.Fatalf("wrk %s: %v\n%s", tg.url, err, out)
	}
	text := string(out)
	for _, bad := range []string{"Non-2xx or 3xx responses", "Socket errors"} {
		if strings.Contains(text, bad) {
			h.t.Fatalf("wrk %s (%s, %s): %s", tg.url, tg.system, s.name, text)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "Requests/sec:"); ok {
			rps, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				h.t.Fatalf("wrk %s: %q: %v", tg.url, line, err)
			}
		}
		if v, ok := strings.CutPrefix(line, "Transfer/sec:"); ok {
			bps, err = wrkBytes(strings.TrimSpace(v))
			if err != nil {
				h.t.Fatalf("wrk %s: %q: %v", tg.url, line, err)
			}
		}
	}
	if rps == 0 && bps == 0 {
		h.t.Fatalf("wrk %s: no Requests/sec or Transfer/sec in\n%s", tg.url, text)
	}
	// The headers of the answers, their share of the bytes read.
	_, hd, err := h.get(tg.url, tg.header, s.n)
	if err != nil {
		h.t.Fatal(err)
	}
	var hdr bytes.Buffer
	hd.Write(&hdr)
	perAnswer := float64(s.n + int64(hdr.Len()) + 20)
	return rps, bps * float64(s.n) / perAnswer
}

// wrkBytes parses wrk's byte counts, such as 16.67MB (powers of 1024).
func wrkBytes(v string) (float64, error) {
	mult := 1.0
	for i, unit := range []string{"KB", "MB", "GB", "TB"} {
		if num, ok := strings.CutSuffix(v, unit); ok {
			v, mult = num, float64(int64(1)<<(10*(i+1)))
			break
		}
	}
	v = strings.TrimSuffix(v, "B")
	f, err := strconv.ParseFloat(v, 64)
	return f * mult, err
}

// cold measures single GETs of objects no cache holds yet: each iteration
// reads a fresh server-side copy of the source object, through each
// system in turn.
func (h *harness) cold(r *report) {
	for _, c := range []struct {
		s    size
		runs int
	}{{kib1, 15}, {mib1, 9}, {mib256, 3}} {
		times := map[string][]timing{}
		systems := h.targets(c.s.key(), "") // the same systems, in the same order, for any key
		for run := range c.runs {
			for i, sys := range systems {
				key := fmt.Sprintf("cold/%s/%d/%s", c.s.key(), run, strings.ReplaceAll(sys.system, " ", "-"))
				if _, err := h.srv.Client().CopyObject(h.ctx, &s3.CopyObjectInput{Bucket: aws.String(h.origin),
					Key: aws.String(key), CopySource: aws.String(h.origin + "/" + c.s.key())}); err != nil {
					h.t.Fatal(err)
				}
				tg := h.targets(key, "")[i]
				tm, _, err := h.get(tg.url, tg.header, c.s.n)
				if err != nil {
					h.t.Fatal(err)
				}
				times[tg.system] = append(times[tg.system], tm)
				// Let a cache finish its copy (objstore commits it after
				// the last byte) before the next timed GET.
				h.until(tg.system+" settled", func() bool {
					_, hd, err := h.get(tg.url, tg.header, c.s.n)
					return err == nil && tg.hit(hd)
				})
			}
		}
		for sys, ts := range times {
			r.add(result{kind: "cold", system: sys, size: c.s, timing: median(ts)})
			h.t.Logf("cold %s %s: %v", c.s.name, sys, median(ts))
		}
	}
}

// peer measures a 256 MiB read that node 1 serves from node 2's copy
// (level 0: node 2 alone holds it), beside a local read of it on node 1
// right after (node 1 keeps the copy it read).
func (h *harness) peer(r *report) {
	var peer, local []timing
	for run := range 3 {
		id, _, err := h.putNode(2, mib256.n, 0, uint64(200+run))
		if err != nil {
			h.t.Fatal(err)
		}
		auth := map[string]string{"Authorization": h.basic}
		url := h.nodes[1].URL + "/api/v1/get/" + id
		tm, hd, err := h.get(url, auth, mib256.n)
		if err != nil {
			h.t.Fatal(err)
		}
		if src := hd.Get("X-Meta-Source"); src != "peer" {
			h.t.Fatalf("node 1 served %s from %q, not from its peer", id, src)
		}
		peer = append(peer, tm)
		h.until("node 1 holding its copy", func() bool {
			_, hd, err := h.get(url, auth, mib256.n)
			return err == nil && hd.Get("X-Meta-Source") == "local"
		})
		tm, _, err = h.get(url, auth, mib256.n)
		if err != nil {
			h.t.Fatal(err)
		}
		local = append(local, tm)
	}
	r.add(result{kind: "peer", system: "from a peer", size: mib256, timing: median(peer)})
	r.add(result{kind: "peer", system: "local hit", size: mib256, timing: median(local)})
}

// puts measures PUTs at each level beside a PUT straight to MinIO.
func (h *harness) puts(r *report) {
	for _, c := range []struct {
		s    size
		runs int
	}{{mib1, 9}, {mib64, 5}} {
		times := map[string][]time.Duration{}
		for run := range c.runs {
			seed := uint64(1000 + run)
			d, err := h.putMinIO(h.tier, fmt.Sprintf("direct/%s/%d", c.s.key(), run), c.s.n, seed)
			if err != nil {
				h.t.Fatal(err)
			}
			times[sysMinIO] = append(times[sysMinIO], d)
			for level := range 3 {
				node := 0
				if level == 2 {
					node = 1 // level 2 needs the cluster
				}
				_, d, err := h.putNode(node, c.s.n, level, seed)
				if err != nil {
					h.t.Fatal(err)
				}
				name := fmt.Sprintf("objstore level %d", level)
				times[name] = append(times[name], d)
			}
			d, err = h.putS3(fmt.Sprintf("put/%s/%d", c.s.key(), run), c.s.n, seed)
			if err != nil {
				h.t.Fatal(err)
			}
			times[sysS3+", level 1"] = append(times[sysS3+", level 1"], d)
		}
		for sys, ds := range times {
			ts := make([]timing, len(ds))
			for i, d := range ds {
				ts[i] = timing{total: d}
			}
			r.add(result{kind: "put", system: sys, size: c.s, timing: median(ts)})
		}
	}
}

// median returns the timing of median total time.
func median(ts []timing) timing {
	s := slices.Clone(ts)
	slices.SortFunc(s, func(a, b timing) int { return int(a.total - b.total) })
	return s[len(s)/2]
}

// treePeak returns the sum of the peak RSS of pid and its children.
func treePeak(pid int) int64 {
	_, total, _ := testnode.RSS(pid)
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(kids)) {
		if k, err := strconv.Atoi(f); err == nil {
			total += treePeak(k)
		}
	}
	return total
}

// machine describes where the run happened.
func machine(h *harness) string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	ngx, _ := exec.Command("nginx", "-v").CombinedOutput()
	rev, _ := exec.Command("git", "describe", "--always", "--dirty").Output()
	pinned := "nothing pinned (one core)"
	if h.cpu.server != "" {
		pinned = fmt.Sprintf("every cache on CPU %s; the load generators and MinIO, as S3 another machine, on CPU %s (MinIO on CPU %s while its own hits are measured)", h.cpu.server, h.cpu.load, h.cpu.server)
	}
	return fmt.Sprintf("%s, %d cores, Linux %s; %s; %s; objstore %s",
		cpu, runtime.NumCPU(), strings.TrimSpace(string(kernel)), pinned,
		strings.TrimSpace(strings.TrimPrefix(string(bytes.TrimSpace(ngx)), "nginx version: ")), strings.TrimSpace(string(rev)))
}
