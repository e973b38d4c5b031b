// Package testnode runs real objstore node processes for tests: it builds
// the objstore binary once per test process, starts nodes on free loopback
// ports with their own directories, and stops, kills or restarts them.
package testnode

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of an objstore binary built from this module,
// building it on first use.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "objstore-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "objstore")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/objstore")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building objstore: %v", buildErr)
	}
	return binPath
}

// Options describe a node to start.
type Options struct {
	// Dir holds the node's state and files directories and its log; empty
	// means a new temporary directory.
	Dir string
	// Args are extra command-line arguments, such as --bucket.
	Args []string
	// Env are extra environment variables, such as S3 credentials.
	Env []string
	// Host, when set, runs the node on a test host of its own (a network
	// namespace): the node listens on the host's IP with fixed ports.
	Host Host
	// PublicCA, when set, is the PEM file of the CA that signed the
	// node's public TLS certificate (--tls-cert, given in Args): the
	// node's URL is https and requests trust that CA only.
	PublicCA string
	// Binary, when set, is the objstore binary to run instead of this
	// checkout's build (a benchmark measuring another release).
	Binary string
}

// Host is a test host a node can run on; *testnet.Host is one.
type Host interface {
	IP() string
	Command(ctx context.Context, name string, args ...string) *exec.Cmd
}

// Node is a running (or stopped) objstore process.
type Node struct {
	t          testing.TB
	opts       Options
	PublicAddr string
	// PrivateAddr and GossipAddr are the node's other listen addresses;
	// like PublicAddr they stay the same across restarts.
	PrivateAddr string
	GossipAddr  string
	// URL is the base URL of the public API, such as http://127.0.0.1:1234.
	URL     string
	client  *http.Client // bounds every request (2 min)
	ping    *http.Client // for start-up probes (2 s)
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
}

// Start starts a node and waits until its public API answers. The node is
// killed when the test ends.
func Start(t testing.TB, opts Options) *Node {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	n := &Node{t: t, opts: opts, logPath: filepath.Join(opts.Dir, "node.log")}
	if opts.Host != nil {
		ip := opts.Host.IP()
		n.PublicAddr, n.PrivateAddr, n.GossipAddr = ip+":10999", ip+":11999", ip+":7946"
	} else {
		n.PublicAddr, n.PrivateAddr, n.GossipAddr = FreeAddr(t), FreeAddr(t), FreeAddr(t)
	}
	n.URL = "http://" + n.PublicAddr
	n.client, n.ping = &http.Client{Timeout: 2 * time.Minute}, &http.Client{Timeout: 2 * time.Second}
	if opts.PublicCA != "" {
		pem, err := os.ReadFile(opts.PublicCA)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		n.client.Transport, n.ping.Transport = tr, tr
		n.URL = "https://" + n.PublicAddr
	}
	n.Start()
	t.Cleanup(func() {
		n.Kill()
		if t.Failed() {
			t.Logf("log of node %s:\n%s", n.PublicAddr, n.LogTail())
		}
	})
	return n
}

// Dir returns the node's directory.
func (n *Node) Dir() string { return n.opts.Dir }

// StateDir and FilesDir are the node's state and files directories.
func (n *Node) StateDir() string { return filepath.Join(n.opts.Dir, "state") }

// FilesDir is the node's files directory.
func (n *Node) FilesDir() string { return filepath.Join(n.opts.Dir, "files") }

// Start (re)starts the node's process with the same directories and ports.
func (n *Node) Start() {
	n.t.Helper()
	args := []string{
		"--public-addr", n.PublicAddr,
		"--private-addr", n.PrivateAddr,
		"--gossip-addr", n.GossipAddr,
		"--state-dir", n.StateDir(),
		"--files-dir", n.FilesDir(),
		"--remote-dir", filepath.Join(n.opts.Dir, "remote"),
		"--debug", "1",
	}
	args = append(args, n.opts.Args...)
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	bin := n.opts.Binary
	if bin == "" {
		bin = Binary(n.t)
	}
	var cmd *exec.Cmd
	if n.opts.Host != nil {
		cmd = n.opts.Host.Command(context.Background(), bin, args...)
	} else {
		cmd = exec.Command(bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	cmd.Env = append(os.Environ(), n.opts.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		n.t.Fatalf("start objstore: %v", err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(n.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := n.ping.Get(n.URL + "/api/v1/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-n.exited:
			n.t.Fatalf("objstore exited during start-up:\n%s", n.LogTail())
		default:
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("objstore did not answer within 30s:\n%s", n.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LoseDisk kills the node, removes its state and files directories, as if
// its disk had been replaced, and starts it again.
func (n *Node) LoseDisk() {
	n.t.Helper()
	n.Kill()
	os.RemoveAll(n.StateDir())
	os.RemoveAll(n.FilesDir())
	n.Start()
}

// Pid returns the process ID of the running node.
func (n *Node) Pid() int { return n.cmd.Process.Pid }

// SetEnv replaces the extra environment the next Start gives the process.
func (n *Node) SetEnv(env ...string) { n.opts.Env = env }

// Exited reports whether the process has ended (for a crash a test
// provoked).
func (n *Node) Exited() bool {
	select {
	case <-n.exited:
		return true
	default:
		return false
	}
}

// WaitExit reports whether the process ends within d. A crash a test
// provoked refuses connections a moment before the process is reaped, so
// a test that saw its requests fail waits here rather than asking Exited.
func (n *Node) WaitExit(d time.Duration) bool {
	select {
	case <-n.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// Signal sends sig to the running node, such as SIGHUP to reload its
// certificates.
func (n *Node) Signal(sig os.Signal) error { return n.cmd.Process.Signal(sig) }

// Stop sends SIGTERM and waits for a graceful exit.
func (n *Node) Stop() {
	n.t.Helper()
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(60 * time.Second):
		n.t.Errorf("objstore did not stop within 60s of SIGTERM:\n%s", n.LogTail())
		n.Kill()
	}
	n.cmd = nil
}

// Kill ends the process with SIGKILL, as a crash would.
func (n *Node) Kill() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Kill()
	<-n.exited
	n.cmd = nil
}

// ExitCode waits for the process to exit and returns its exit code.
func (n *Node) ExitCode() int {
	<-n.exited
	return n.cmd.ProcessState.ExitCode()
}

// LogTail returns the end of the node's log.
func (n *Node) LogTail() string {
	b, _ := os.ReadFile(n.logPath)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// Log returns the node's whole log.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.logPath)
	return string(b)
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago. Ports come from below the kernel's ephemeral range (32768 and up on
// Linux), so that the outgoing connections of the processes under test
// (to MinIO, to each other) cannot take a port between its choice here
// and a node's bind.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 100 {
		port := 20000 + mrand.IntN(12000)
		// Both TCP and UDP: gossip binds the same port for both.
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// RSS returns the resident set size of a process and its peak (VmRSS and
// VmHWM from /proc), in bytes.
func RSS(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v << 10
		case "VmHWM:":
			peak = v << 10
		}
	}
	return rss, peak, nil
}

// Request is a helper for API calls in tests.
type Request struct {
	Method  string
	Path    string
	Header  map[string]string
	Body    io.Reader
	Length  int64 // for Body; -1 sends it chunked
	Context context.Context
}

// Do sends r to the node and returns the response with its body read.
func (n *Node) Do(r Request) (*http.Response, []byte, error) {
	if r.Method == "" {
		r.Method = http.MethodGet
	}
	ctx := r.Context
	if ctx == nil {
		ctx = context.Background()
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, n.URL+r.Path, r.Body)
	if err != nil {
		return nil, nil, err
	}
	if r.Body != nil {
		req.ContentLength = r.Length
		if s, ok := r.Body.(*strings.Reader); ok && r.Length == 0 {
			req.ContentLength = int64(s.Len())
		}
		if b, ok := r.Body.(*bytes.Reader); ok && r.Length == 0 {
			req.ContentLength = int64(b.Len())
		}
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}
