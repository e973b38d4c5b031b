//go:build linux

package testnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// The helper process: the test binary run again inside a host, in the mode
// named by helperEnv, on the address in addrEnv.
const (
	helperEnv = "TESTNET_HELPER"
	addrEnv   = "TESTNET_ADDR"
	echoPort  = "7000"
)

// TestHelperProcess is not a test: it is the body of the helper processes
// the other tests start inside hosts. It does nothing unless helperEnv is
// set.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	os.Exit(helperMain(mode, os.Getenv(addrEnv)))
}

// helperMain runs one helper mode and returns the exit code:
//
//   - echo: listen on addr, print "ready <pid> <pdeathsig>", echo every
//     connection back until killed;
//   - dial: connect to addr, send a line, expect it back, print "ok";
//   - stream: connect to addr, send a numbered line every 50ms and print
//     "echo <n>" for every line that comes back, "error: ..." on errors.
func helperMain(mode, addr string) int {
	switch mode {
	case "echo":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Println("error:", err)
			return 2
		}
		var sig int
		// prctl(PR_GET_PDEATHSIG, &sig)
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&sig)), 0); errno != 0 {
			fmt.Println("error: prctl:", errno)
			return 2
		}
		fmt.Printf("ready %d %d\n", os.Getpid(), sig)
		for {
			c, err := ln.Accept()
			if err != nil {
				fmt.Println("error:", err)
				return 2
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	case "dial":
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "ping\n" {
			fmt.Printf("error: read %q: %v\n", line, err)
			return 1
		}
		fmt.Println("ok")
		return 0
	case "stream":
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("connected")
		go func() {
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				fmt.Println("echo", sc.Text())
			}
			fmt.Println("error: read:", sc.Err(), "(nil means EOF)")
			os.Exit(1)
		}()
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(c, "%d\n", i); err != nil {
				fmt.Println("error: write:", err)
				return 1
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	fmt.Println("error: unknown mode", mode)
	return 2
}

// helperCmd returns a command running the helper in h.
func helperCmd(ctx context.Context, h *Host, mode, addr string) *exec.Cmd {
	cmd := h.Command(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, addrEnv+"="+addr)
	return cmd
}

// lines starts cmd and returns its standard output, line by line. The
// channel is closed when the output ends.
func lines(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", cmd.Args, err)
	}
	ch := make(chan string, 1024)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// next returns the next line from ch, failing the test after timeout.
func next(t *testing.T, ch <-chan string, timeout time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("helper output ended")
		}
		return l
	case <-time.After(timeout):
		t.Fatalf("no helper output within %v", timeout)
	}
	return ""
}

// startEcho starts an echo server in h on h.IP():echoPort and waits until
// it listens. It returns the command and the PID and parent-death signal
// the server reported about itself. The server dies with t's context.
func startEcho(t *testing.T, ctx context.Context, h *Host) (cmd *exec.Cmd, pid, pdeathsig int) {
	t.Helper()
	cmd = helperCmd(ctx, h, "echo", net.JoinHostPort(h.IP(), echoPort))
	ch := lines(t, cmd)
	l := next(t, ch, 20*time.Second)
	f := strings.Fields(l)
	if len(f) != 3 || f[0] != "ready" {
		t.Fatalf("echo server in %s: %s", h.Name(), l)
	}
	pid, _ = strconv.Atoi(f[1])
	pdeathsig, _ = strconv.Atoi(f[2])
	return cmd, pid, pdeathsig
}

// waitExit waits at most 20s for cmd to exit and returns Wait's error.
func waitExit(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("%v did not exit within 20s", cmd.Args)
		return nil
	}
}

// serveEcho runs an echo server for the test process on the gateway.
func serveEcho(t *testing.T, n *Net) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(n.GatewayIP(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// dialFrom tries one TCP round trip from inside h to addr.
func dialFrom(ctx context.Context, h *Host, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := helperCmd(ctx, h, "dial", addr).CombinedOutput()
	if err != nil {
		return fmt.Errorf("from %s to %s: %w: %s", h.Name(), addr, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// dialHere tries one TCP round trip from the test process to addr.
func dialHere(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return fmt.Errorf("read %q", line)
	}
	return nil
}

// eventually retries f every 200ms for up to 20s until it succeeds.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestReachability(t *testing.T) {
	n := New(t)
	a, b := n.AddHost(t, "a"), n.AddHost(t, "b")
	gw := serveEcho(t, n)
	if a.IP() == b.IP() || a.IP() == n.GatewayIP() {
		t.Fatalf("addresses: gateway %s, a %s, b %s", n.GatewayIP(), a.IP(), b.IP())
	}

	cmd, pid, sig := startEcho(t, t.Context(), a)
	if pid != cmd.Process.Pid {
		t.Errorf("Command's Process is %d, but the program runs as %d: ip did not exec in place", cmd.Process.Pid, pid)
	}
	if sig != int(syscall.SIGKILL) {
		t.Errorf("program's parent-death signal is %d, want SIGKILL", sig)
	}
	startEcho(t, t.Context(), b)
	aAddr, bAddr := net.JoinHostPort(a.IP(), echoPort), net.JoinHostPort(b.IP(), echoPort)

	for _, addr := range []string{aAddr, bAddr} {
		if err := dialHere(addr); err != nil {
			t.Errorf("gateway to %s: %v", addr, err)
		}
	}
	for _, c := range []struct {
		from *Host
		to   string
	}{{a, bAddr}, {b, aAddr}, {a, gw}, {b, gw}, {a, aAddr}} {
		if err := dialFrom(t.Context(), c.from, c.to); err != nil {
			t.Error(err)
		}
	}

	// No route leads out of a host.
	out, err := exec.Command("ip", "-n", a.Namespace(), "-4", "route", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	if routes := strings.TrimSpace(string(out)); strings.Contains(routes, "default") || strings.Count(routes, "\n") != 0 {
		t.Errorf("routes in host a: %q, want only the subnet's", routes)
	}

	// Kill and Signal through the Cmd reach the program itself.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := waitExit(t, cmd); err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("after SIGTERM, Wait = %v, want signal: terminated", err)
	}
}

func TestCutHeal(t *testing.T) {
	n := New(t)
	a, b := n.AddHost(t, "a"), n.AddHost(t, "b")
	gw := serveEcho(t, n)
	startEcho(t, t.Context(), a)
	startEcho(t, t.Context(), b)
	aAddr, bAddr := net.JoinHostPort(a.IP(), echoPort), net.JoinHostPort(b.IP(), echoPort)
	if err := dialFrom(t.Context(), a, bAddr); err != nil {
		t.Fatal(err)
	}

	for range 2 { // Cut is idempotent
		if err := b.Cut(); err != nil {
			t.Fatal(err)
		}
	}
	if err := dialHere(bAddr); err == nil {
		t.Error("gateway reached b after Cut")
	}
	for _, c := range []struct {
		from *Host
		to   string
	}{{a, bAddr}, {b, aAddr}, {b, gw}} {
		if err := dialFrom(t.Context(), c.from, c.to); err == nil {
			t.Errorf("%s reached %s after Cut of b", c.from.Name(), c.to)
		}
	}
	// The others are not affected, nor is traffic inside b.
	if err := dialFrom(t.Context(), a, gw); err != nil {
		t.Errorf("a, which is not cut: %v", err)
	}
	if err := dialHere(aAddr); err != nil {
		t.Errorf("gateway to a, which is not cut: %v", err)
	}
	if err := dialFrom(t.Context(), b, bAddr); err != nil {
		t.Errorf("b to itself while cut: %v", err)
	}

	for range 2 { // Heal is idempotent
		if err := b.Heal(); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "gateway to b after Heal", func() error { return dialHere(bAddr) })
	eventually(t, "a to b after Heal", func() error { return dialFrom(t.Context(), a, bAddr) })
	eventually(t, "b to a after Heal", func() error { return dialFrom(t.Context(), b, aAddr) })
	eventually(t, "b to gateway after Heal", func() error { return dialFrom(t.Context(), b, gw) })
}

func TestIsolateRejoin(t *testing.T) {
	n := New(t)
	a, b := n.AddHost(t, "a"), n.AddHost(t, "b")
	gw := serveEcho(t, n)
	startEcho(t, t.Context(), a)
	startEcho(t, t.Context(), b)
	aAddr, bAddr := net.JoinHostPort(a.IP(), echoPort), net.JoinHostPort(b.IP(), echoPort)
	if err := b.Isolate(); err != nil {
		t.Fatal(err)
	}
	if err := dialFrom(t.Context(), a, bAddr); err == nil {
		t.Error("a reached b after Isolate of b")
	}
	if err := dialFrom(t.Context(), b, aAddr); err == nil {
		t.Error("b reached a after Isolate of b")
	}
	// The gateway still reaches both sides, and they reach it.
	if err := dialHere(bAddr); err != nil {
		t.Errorf("gateway to isolated b: %v", err)
	}
	if err := dialFrom(t.Context(), b, gw); err != nil {
		t.Errorf("isolated b to gateway: %v", err)
	}
	if err := b.Rejoin(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a to b after Rejoin", func() error { return dialFrom(t.Context(), a, bAddr) })
	eventually(t, "b to a after Rejoin", func() error { return dialFrom(t.Context(), b, aAddr) })
}

func TestCutEstablished(t *testing.T) {
	n := New(t)
	a, b := n.AddHost(t, "a"), n.AddHost(t, "b")
	startEcho(t, t.Context(), b)
	bAddr := net.JoinHostPort(b.IP(), echoPort)

	// The test process (gateway) to b.
	c, err := net.DialTimeout("tcp", bAddr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	roundTrip := func(msg string, timeout time.Duration) error {
		_ = c.SetDeadline(time.Now().Add(timeout))
		if _, err := io.WriteString(c, msg+"\n"); err != nil {
			return err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if line != msg+"\n" {
			return fmt.Errorf("got %q, want %q", line, msg)
		}
		return nil
	}
	if err := roundTrip("before", 2*time.Second); err != nil {
		t.Fatal(err)
	}

	// a to b, streaming.
	stream := lines(t, helperCmd(t.Context(), a, "stream", bAddr))
	if l := next(t, stream, 20*time.Second); l != "connected" {
		t.Fatalf("stream: %s", l)
	}
	if l := next(t, stream, 5*time.Second); !strings.HasPrefix(l, "echo ") {
		t.Fatalf("stream: %s", l)
	}

	if err := b.Cut(); err != nil {
		t.Fatal(err)
	}
	// Data sent across the cut is not delivered, and the connection
	// neither fails nor closes: the read just times out.
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "during\n"); err != nil {
		t.Fatalf("write after Cut: %v", err)
	}
	if line, err := r.ReadString('\n'); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after Cut = %q, %v; want a timeout", line, err)
	}
	// The stream may still print what was in flight, then goes silent.
	quiet := time.After(300 * time.Millisecond)
drain:
	for {
		select {
		case l := <-stream:
			if !strings.HasPrefix(l, "echo ") {
				t.Fatalf("stream after Cut: %s", l)
			}
		case <-quiet:
			break drain
		}
	}
	select {
	case l, ok := <-stream:
		t.Fatalf("stream delivered across the cut: %q (open %v)", l, ok)
	case <-time.After(2 * time.Second):
	}

	if err := b.Heal(); err != nil {
		t.Fatal(err)
	}
	// Both connections survive and resume with the next retransmission.
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "during\n" {
		t.Fatalf("read after Heal = %q, %v; want the echo of what was sent during the cut", line, err)
	}
	if err := roundTrip("after", 5*time.Second); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
	if l := next(t, stream, 30*time.Second); !strings.HasPrefix(l, "echo ") {
		t.Fatalf("stream after Heal: %s", l)
	}
}

// TestCleanup checks that a switch and its hosts leave nothing behind: no
// namespace, link, nftables table, iptables rule, lock file or process, even
// for a cut host and a process started without Command.
func TestCleanup(t *testing.T) {
	var (
		created          bool
		bridge, table    string
		lockPath         string
		names            []string // namespaces and links
		viaCmd, outsider *exec.Cmd
	)
	t.Run("net", func(t *testing.T) {
		n := New(t)
		a, b := n.AddHost(t, "a"), n.AddHost(t, "b b/with odd chars")
		created = true
		bridge, table, lockPath = n.bridge, n.table, n.lock.path
		names = []string{n.bridge, a.ns, a.veth, b.ns, b.veth}

		// Left running on purpose: one through Command, one not.
		viaCmd, _, _ = startEcho(t, context.Background(), a)
		outsider = exec.Command("ip", "netns", "exec", b.ns, os.Args[0], "-test.run=^TestHelperProcess$", "-test.timeout=5m")
		outsider.Env = append(os.Environ(), helperEnv+"=echo", addrEnv+"="+net.JoinHostPort(b.IP(), echoPort))
		if err := outsider.Start(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "outsider listening", func() error { return dialHere(net.JoinHostPort(b.IP(), echoPort)) })
		if err := b.Cut(); err != nil {
			t.Fatal(err)
		}
	})
	if !created {
		t.Skip("the switch could not be created")
	}
	defer func() { // in case cleanup failed to kill it
		if outsider.ProcessState == nil {
			_ = outsider.Process.Kill()
		}
	}()

	if err := waitExit(t, viaCmd); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("process started with Command: Wait = %v, want signal: killed", err)
	}
	if err := waitExit(t, outsider); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("process started without Command: Wait = %v, want signal: killed", err)
	}

	netns, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	links, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		for _, list := range []string{string(netns), string(links)} {
			for line := range strings.Lines(list) {
				f := strings.Fields(line)
				if len(f) > 0 && f[0] == name || len(f) > 1 && (strings.TrimSuffix(f[1], ":") == name || strings.HasPrefix(f[1], name+"@")) {
					t.Errorf("left behind: %s", strings.TrimSpace(line))
				}
			}
		}
	}
	tables, err := exec.Command("nft", "list", "tables").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(tables), table) {
		t.Errorf("nftables table %s left behind", table)
	}
	for _, bin := range iptablesBackends(t.Context()) {
		out, err := exec.Command(bin, "-S", "FORWARD").Output()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), bridge) {
			t.Errorf("%s rule for %s left behind:\n%s", bin, bridge, out)
		}
	}
	if _, err := os.Stat(lockPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file %s left behind (%v)", lockPath, err)
	}
}

// TestTwoNets checks that switches in one process get distinct names and
// subnets and work side by side.
func TestTwoNets(t *testing.T) {
	n1, n2 := New(t), New(t)
	if n1.GatewayIP() == n2.GatewayIP() || n1.bridge == n2.bridge || n1.table == n2.table {
		t.Fatalf("two switches share a name or subnet: %s %s %s, %s %s %s", n1.bridge, n1.table, n1.GatewayIP(), n2.bridge, n2.table, n2.GatewayIP())
	}
	h1, h2 := n1.AddHost(t, "h"), n2.AddHost(t, "h")
	startEcho(t, t.Context(), h1)
	startEcho(t, t.Context(), h2)
	for _, h := range []*Host{h1, h2} {
		if err := dialHere(net.JoinHostPort(h.IP(), echoPort)); err != nil {
			t.Errorf("gateway to %s: %v", h.IP(), err)
		}
	}
	// The switches are separate networks: no route between them.
	if err := dialFrom(t.Context(), h1, net.JoinHostPort(h2.IP(), echoPort)); err == nil {
		t.Error("a host reached a host of another switch")
	}
}
