// Package deploy_test runs tests against the compose cluster in this
// directory: three objstore nodes, MinIO and Caddy on a real Docker engine,
// one cluster for all the tests of the package. They build every image
// locally (make local-images), so they need no registry. Without a Docker
// engine they skip, unless CI is set.
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

type cluster struct {
	t          *testing.T // the test helpers fail; see with
	dir        string     // deploy/
	project    string
	env        []string
	compose    []string
	lb         string // the load balancer's public API (LB_ADDR)
	lbS3       string // the load balancer's S3 endpoint (LB_S3_ADDR)
	prometheus string // Prometheus's API (PROMETHEUS_ADDR)
	net        string // CLUSTER_NET prefix
	secret     string // of the access key "app" (read,write) in deploy/credentials
}

// run runs a command and returns its standard output; its error has the
// standard error too.
func run(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out), nil
}

func (c *cluster) do(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	all := append(append([]string{}, c.compose[1:]...), "-p", c.project, "-f", "docker-compose.yml")
	return run(ctx, c.dir, c.env, c.compose[0], append(all, args...)...)
}

func (c *cluster) docker(timeout time.Duration, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := run(ctx, c.dir, nil, "docker", args...)
	return err
}

// container returns the container ID of a compose service.
func (c *cluster) container(service string) string {
	c.t.Helper()
	out, err := c.do(time.Minute, "ps", "-q", service)
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// shared is the compose cluster of the package's tests: started by the
// first test that needs it, torn down by TestMain after the last.
var shared struct {
	once sync.Once
	c    *cluster // set once compose may have started something
	skip string   // why there can be no cluster here (no Docker engine)
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if c := shared.c; c != nil {
		if _, err := c.do(3*time.Minute, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			fmt.Fprintf(os.Stderr, "compose down: %v\n", err)
		}
	}
	os.Exit(code)
}

// up returns the compose cluster, whole, with its helpers failing t; the
// first call builds the images and starts it. Without a Docker engine t
// skips, or fails when CI is set; with -short it skips.
func up(t *testing.T) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("builds images and runs a compose cluster")
	}
	shared.once.Do(func() {
		shared.err = errors.New("the compose cluster did not start") // kept if start stops t
		shared.skip, shared.err = start(t)
	})
	if shared.skip != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(shared.skip)
		}
		t.Skip(shared.skip)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	c := shared.c.with(t)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := c.do(time.Minute, "logs", "--tail", "40")
			t.Logf("compose logs:\n%s", logs)
		}
	})
	c.waitWhole(90 * time.Second)
	return c
}

// start builds the images and starts the compose cluster as shared.c.
func start(t *testing.T) (skip string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := run(ctx, ".", nil, "docker", "info"); err != nil {
		return fmt.Sprintf("no Docker engine: %v", err), nil
	}
	dir, _ := filepath.Abs(".")
	c := &cluster{dir: dir, project: fmt.Sprintf("objstorefaults%d", os.Getpid())}
	if _, err := run(ctx, ".", nil, "docker", "compose", "version"); err == nil {
		c.compose = []string{"docker", "compose"}
	} else if _, err := exec.LookPath("docker-compose"); err == nil {
		c.compose = []string{"docker-compose"}
	} else {
		return "neither docker compose nor docker-compose is installed", nil
	}
	// A first run builds MinIO, Caddy, mc and Prometheus from source:
	// about 17 minutes of compiling on two cores.
	bctx, bcancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer bcancel()
	begin := time.Now()
	if _, err := run(bctx, dir, nil, "make", "local-images"); err != nil {
		return "", fmt.Errorf("building images: %w", err)
	}
	t.Logf("images built in %v", time.Since(begin).Round(time.Second))
	if c.secret, err = appSecret(filepath.Join(dir, "credentials")); err != nil {
		return "", err
	}
	c.lb, c.lbS3, c.prometheus = freeAddr(t), freeAddr(t), freeAddr(t)
	c.net = fmt.Sprintf("10.214.%d", 1+rand.IntN(250))
	c.env = []string{"LB_ADDR=" + c.lb, "LB_S3_ADDR=" + c.lbS3, "CLUSTER_NET=" + c.net, "MINIO_IMAGE=objstore-minio:local",
		"LB_IMAGE=objstore-caddy:local", "MC_IMAGE=objstore-mc:local", "OBJSTORE_IMAGE=objstore:latest",
		"PROMETHEUS_IMAGE=objstore-prometheus:local", "PROMETHEUS_ADDR=" + c.prometheus}
	shared.c = c
	_, err = c.do(5*time.Minute, "up", "-d")
	return "", err
}

// appSecret returns the secret of the access key "app" in the credentials
// file that make wrote.
func appSecret(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "app" {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("%s: no access key app", path)
}

var client = &http.Client{Timeout: 30 * time.Second}

// call sends a request to the public API through the load balancer, with
// the access key "app".
func (c *cluster) call(method, path string, body io.Reader, header map[string]string) (*http.Response, error) {
	req, err := http.NewRequest(method, "http://"+c.lb+path, body)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("app", c.secret)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return client.Do(req)
}

type member struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// waitWhole waits until the cluster answers through the load balancer with
// three alive members, as seen from every node.
func (c *cluster) waitWhole(limit time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	for {
		seen := map[string]bool{}
		ok := true
		for range 6 {
			resp, err := c.call("GET", "/api/v1/nodes", nil, nil)
			if err != nil {
				ok = false
				break
			}
			var ms []member
			json.NewDecoder(resp.Body).Decode(&ms)
			resp.Body.Close()
			alive := 0
			for _, m := range ms {
				if m.State == "alive" {
					alive++
				}
			}
			if alive != 3 {
				ok = false
				break
			}
			for _, m := range ms {
				seen[m.ID] = true
			}
		}
		if ok && len(seen) == 3 {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			c.t.Fatalf("cluster not whole within %v", limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// with returns the cluster with its helpers failing t: a subtest must not
// call its parent's Fatal (from the subtest's goroutine that panics, and
// leaves the load running).
func (c *cluster) with(t *testing.T) *cluster {
	cp := *c
	cp.t = t
	return &cp
}

// put stores body under a new ID at level through the load balancer.
func (c *cluster) put(level int, body string) (string, int, string) {
	id := ulid.Make().String()
	resp, err := c.call("POST", "/api/v1/put", strings.NewReader(body),
		map[string]string{"X-Meta-ID": id, "X-Meta-ConsistencyLevel": fmt.Sprint(level)})
	if err != nil {
		return id, 0, err.Error()
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return id, resp.StatusCode, string(msg)
}

func (c *cluster) get(id string) (int, string) {
	resp, err := c.call("GET", "/api/v1/get/"+id, nil, nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// load is a steady stream of writes and reads through the load balancer.
type load struct {
	c      *cluster
	levels []int

	mu      sync.Mutex // guards acked
	acked   map[string]string
	seeded  []string // level-2 objects written before the fault
	reads   atomic.Int64
	readErr atomic.Int64
	writes  atomic.Int64
	wErr    atomic.Int64
	errs    sync.Map // first errors, for the log
	stop    chan struct{}
	halted  sync.Once
	wg      sync.WaitGroup
}

func newLoad(c *cluster, levels ...int) *load {
	l := &load{c: c, levels: levels, acked: map[string]string{}, stop: make(chan struct{})}
	for i := range 20 {
		body := fmt.Sprintf("seed %d %s", i, strings.Repeat("s", 1000))
		id, code, msg := c.put(2, body)
		if code != 200 {
			c.t.Fatalf("seeding: %d %s", code, msg)
		}
		l.acked[id] = body
		l.seeded = append(l.seeded, id)
	}
	// Let every node pull its level-2 copies.
	time.Sleep(3 * time.Second)
	return l
}

func (l *load) start(workers int) {
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				if i%2 == 0 {
					level := l.levels[(w+i)%len(l.levels)]
					body := fmt.Sprintf("w%d-%d level %d %s", w, i, level, strings.Repeat("x", 2000))
					id, code, msg := l.c.put(level, body)
					l.writes.Add(1)
					if code == 200 {
						l.mu.Lock()
						l.acked[id] = body
						l.mu.Unlock()
					} else {
						l.wErr.Add(1)
						l.errs.LoadOrStore(fmt.Sprintf("put %d", code), msg)
					}
				} else {
					id := l.seeded[(w+i)%len(l.seeded)]
					code, got := l.c.get(id)
					l.reads.Add(1)
					l.mu.Lock()
					want := l.acked[id]
					l.mu.Unlock()
					if code != 200 || got != want {
						l.readErr.Add(1)
						l.errs.LoadOrStore(fmt.Sprintf("get %d", code), got)
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
}

func (l *load) halt() {
	l.halted.Do(func() { close(l.stop) })
	l.wg.Wait()
}

func (l *load) report(t *testing.T, what string) {
	t.Logf("%s: %d writes (%d failed), %d reads of level-2 objects (%d failed)", what,
		l.writes.Load(), l.wErr.Load(), l.reads.Load(), l.readErr.Load())
	l.errs.Range(func(k, v any) bool {
		t.Logf("  first %s: %.200s", k, v)
		return true
	})
}

// verify reads back every acknowledged object through the load balancer.
func (l *load) verify(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	lost := 0
	for id, body := range l.acked {
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, got := l.c.get(id)
			if code == 200 && got == body {
				break
			}
			if time.Now().After(deadline) {
				lost++
				t.Errorf("acknowledged object %s: %d %.100s", id, code, got)
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	t.Logf("%d acknowledged objects read back, %d lost", len(l.acked)-lost, lost)
}

// nodeStats is what a node's /api/v1/stats says of its journal and work.
type nodeStats struct {
	NodeID  string  `json:"node_id"`
	Journal journal `json:"journal"`
	Traffic struct {
		BytesLocal  int64 `json:"bytes_local"`
		BytesPeer   int64 `json:"bytes_peer"`
		BytesRemote int64 `json:"bytes_remote"`
	} `json:"traffic"`
}

// journal counts a node's live and deleted objects.
type journal struct {
	Objects    int64 `json:"objects"`
	Tombstones int64 `json:"tombstones"`
}

// stats samples /api/v1/stats through the load balancer until it has
// heard from every node, and returns each node's.
func (c *cluster) stats() map[string]nodeStats {
	out := map[string]nodeStats{}
	for range 30 {
		resp, err := c.call("GET", "/api/v1/stats", nil, nil)
		if err != nil {
			continue
		}
		var st nodeStats
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err == nil && st.NodeID != "" {
			out[st.NodeID] = st
		}
		if len(out) == 3 {
			break
		}
	}
	return out
}

// TestFaults runs the fault scenarios in order on one compose cluster.
func TestFaults(t *testing.T) {
	c := up(t)
	t.Run("KillNode", func(t *testing.T) {
		c := c.with(t)
		l := newLoad(c, 1, 2)
		l.start(4)
		defer l.halt() // stops the load even when the subtest fails early
		time.Sleep(5 * time.Second)
		node := c.container("node2")
		if err := c.docker(time.Minute, "kill", node); err != nil {
			t.Fatal(err)
		}
		time.Sleep(15 * time.Second)
		l.halt()
		l.report(t, "one node killed")
		if l.readErr.Load() != 0 {
			t.Errorf("%d reads of level-2 objects failed while a node was down", l.readErr.Load())
		}
		if err := c.docker(time.Minute, "start", node); err != nil {
			t.Fatal(err)
		}
		t.Logf("cluster whole again %v after the restart", c.waitWhole(2*time.Minute).Round(time.Millisecond))
		l.verify(t)
	})
	t.Run("Partition", func(t *testing.T) {
		c := c.with(t)
		l := newLoad(c, 1, 2)
		netName := c.project + "_cluster"
		node := c.container("node3")
		if err := c.docker(time.Minute, "network", "disconnect", netName, node); err != nil {
			t.Fatal(err)
		}
		// Writes go on at both sides: the load balancer still reaches node3,
		// which is cut off from its peers only.
		l.start(4)
		defer l.halt() // stops the load even when the subtest fails early
		time.Sleep(20 * time.Second)
		l.halt()
		l.report(t, "node3 cut off")
		if err := c.docker(time.Minute, "network", "connect", "--ip", c.net+".13", netName, node); err != nil {
			t.Fatal(err)
		}
		healed := time.Now()
		c.waitWhole(2 * time.Minute)
		for {
			js, distinct := map[string]journal{}, map[journal]bool{}
			for id, st := range c.stats() {
				js[id] = st.Journal
				distinct[st.Journal] = true
			}
			if len(js) == 3 && len(distinct) == 1 {
				t.Logf("journals converged %v after healing: %v", time.Since(healed).Round(time.Millisecond), js)
				break
			}
			if time.Since(healed) > 2*time.Minute {
				t.Fatalf("journals did not converge within 2m: %v", js)
			}
			time.Sleep(500 * time.Millisecond)
		}
		l.verify(t)
	})
	t.Run("RollingRestart", func(t *testing.T) {
		c := c.with(t)
		l := newLoad(c, 1, 2)
		l.start(4)
		defer l.halt() // stops the load even when the subtest fails early
		for _, svc := range []string{"node1", "node2", "node3"} {
			id := c.container(svc)
			if err := c.docker(2*time.Minute, "restart", "-t", "40", id); err != nil {
				t.Fatal(err)
			}
			// Wait until the restarted node is healthy and the cluster whole.
			deadline := time.Now().Add(2 * time.Minute)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				out, _ := run(ctx, c.dir, nil, "docker", "inspect", "-f", "{{.State.Health.Status}}", id)
				cancel()
				if strings.TrimSpace(out) == "healthy" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s not healthy within 2m after restart", svc)
				}
				time.Sleep(500 * time.Millisecond)
			}
			c.waitWhole(2 * time.Minute)
		}
		l.halt()
		l.report(t, "rolling restart")
		if l.wErr.Load()+l.readErr.Load() != 0 {
			t.Errorf("%d requests failed during the rolling restart", l.wErr.Load()+l.readErr.Load())
		}
		l.verify(t)
	})
	t.Run("MinIOOutage", func(t *testing.T) {
		c := c.with(t)
		minio := c.container("minio")
		if err := c.docker(time.Minute, "stop", minio); err != nil {
			t.Fatal(err)
		}
		var level0 []string
		for i := range 5 {
			id, code, msg := c.put(0, fmt.Sprintf("local %d", i))
			if code != 200 {
				t.Errorf("level-0 PUT with S3 down: %d %s", code, msg)
			}
			level0 = append(level0, id)
		}
		for _, level := range []int{1, 2} {
			_, code, msg := c.put(level, "needs S3")
			if code != http.StatusServiceUnavailable && code != http.StatusBadGateway {
				t.Errorf("level-%d PUT with S3 down: %d %s, want 502 or 503", level, code, msg)
			}
			if !strings.Contains(msg, "remote") {
				t.Errorf("level-%d PUT with S3 down says %q, which does not name the cause", level, msg)
			}
		}
		for i, id := range level0 {
			if code, got := c.get(id); code != 200 || got != fmt.Sprintf("local %d", i) {
				t.Errorf("level-0 read with S3 down: %d %q", code, got)
			}
		}
		if err := c.docker(time.Minute, "start", minio); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		for _, level := range []int{1, 2} {
			for {
				id, code, msg := c.put(level, "S3 is back")
				if code == 200 {
					if code, got := c.get(id); code != 200 || got != "S3 is back" {
						t.Errorf("read after S3 came back: %d %q", code, got)
					}
					break
				}
				if time.Since(back) > 90*time.Second {
					t.Fatalf("level-%d PUT still failing 90s after S3 came back: %d %s", level, code, msg)
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
		t.Logf("level 1 and 2 PUTs succeed again %v after S3 came back", time.Since(back).Round(time.Millisecond))
	})
}
