//go:build linux

package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// run runs a system tool with a bounded time and returns its standard
// output; the error includes the command line and the standard error.
func run(ctx context.Context, name string, args ...string) (string, error) {
	return runInput(ctx, "", name, args...)
}

// runInput is run with stdin as the tool's standard input.
func runInput(ctx context.Context, stdin, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// notFound reports whether a tool failed because the thing it was told to
// delete does not exist.
func notFound(err error) bool {
	s := err.Error()
	return strings.Contains(s, "No such file") || strings.Contains(s, "Cannot find device") ||
		strings.Contains(s, "does not exist") || strings.Contains(s, "Bad rule")
}

// disableIPv6 turns IPv6 off on a root-namespace interface, so that it sends
// no IPv6 (router solicitations, MLD) onto the switch. A kernel without IPv6
// has nothing to turn off.
func disableIPv6(ifname string) error {
	err := os.WriteFile("/proc/sys/net/ipv6/conf/"+ifname+"/disable_ipv6", []byte("1\n"), 0o644)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("disabling IPv6 on %s: %w", ifname, err)
	}
	return nil
}

// killNamespace SIGKILLs every process in the named network namespace until
// none is left, or fails after killTimeout.
func killNamespace(ns string) error {
	deadline := time.Now().Add(killTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		out, err := run(ctx, ipPath, "netns", "pids", ns)
		cancel()
		if err != nil {
			if notFound(err) {
				return nil
			}
			return err
		}
		pids := strings.Fields(out)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %s in namespace %s survived SIGKILL for %v", strings.Join(pids, " "), ns, killTimeout)
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL) // it may have exited meanwhile
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// subnetLock is an exclusive claim on one /24 of 10.213.0.0/16 among the
// test processes of this machine: a flock on a file named after the subnet.
// The kernel drops the lock when its holder dies.
type subnetLock struct {
	x    int
	path string
	f    *os.File
}

// lockDir is where the subnet lock files live; every process must agree.
func lockDir() string {
	if fi, err := os.Stat("/run"); err == nil && fi.IsDir() {
		return "/run"
	}
	return os.TempDir()
}

// lockSubnet claims a subnet 10.213.x.0/24, starting from an x derived from
// pid and going on to the next one while a subnet is locked by another
// process or overlaps an existing route or address.
func lockSubnet(ctx context.Context, pid int) (*subnetLock, error) {
	start := pid % 254
	for i := range 254 {
		x := (start+i)%254 + 1
		l, err := tryLock(x)
		if err != nil {
			return nil, err
		}
		if l == nil {
			continue
		}
		inUse, err := subnetInUse(ctx, x)
		if err == nil && !inUse {
			return l, nil
		}
		if rerr := l.release(); rerr != nil && err == nil {
			err = rerr
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, errors.New("no free /24 in 10.213.0.0/16")
}

// tryLock takes the lock of subnet x, or returns nil if another process
// holds it.
func tryLock(x int) (*subnetLock, error) {
	path := filepath.Join(lockDir(), fmt.Sprintf("objstore-testnet-10.213.%d.lock", x))
	for range 5 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening subnet lock: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, nil
			}
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		// The previous holder removes the file before unlocking it; if it
		// did so between our open and our flock, we locked a dead file.
		fi, err1 := f.Stat()
		cur, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(fi, cur) {
			_ = f.Truncate(0)
			_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
			return &subnetLock{x: x, path: path, f: f}, nil
		}
		f.Close()
	}
	return nil, nil
}

// release removes the lock file and then unlocks it.
func (l *subnetLock) release() error {
	err := os.Remove(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("releasing subnet lock: %w", err)
	}
	return nil
}

// subnetInUse reports whether any route or local address in the root
// namespace (any table) falls inside 10.213.x.0/24. Wider routes, such as
// a 10.0.0.0/8 VPN route, do not count: our /24 is more specific.
func subnetInUse(ctx context.Context, x int) (bool, error) {
	ours := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(x), 0}), 24)
	out, err := run(ctx, ipPath, "-4", "route", "show", "table", "all")
	if err != nil {
		return false, fmt.Errorf("listing routes: %w", err)
	}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) > 1 && routeTypes[f[0]] {
			f = f[1:]
		}
		if len(f) == 0 || f[0] == "default" {
			continue
		}
		p, err := netip.ParsePrefix(f[0])
		if err != nil {
			a, aerr := netip.ParseAddr(f[0])
			if aerr != nil {
				continue
			}
			p = netip.PrefixFrom(a, 32)
		}
		if p.Bits() >= 24 && ours.Contains(p.Addr()) {
			return true, nil
		}
	}
	return false, nil
}

// routeTypes are the route types "ip route" prints before a destination.
var routeTypes = map[string]bool{
	"unicast": true, "local": true, "broadcast": true, "multicast": true, "anycast": true,
	"unreachable": true, "blackhole": true, "prohibit": true, "throw": true, "nat": true,
}

// fwRule is an iptables rule New added, to delete at cleanup.
type fwRule struct {
	bin  string   // iptables binary of the backend the rule is in
	spec []string // chain and rule, as after -I or -D
}

// remove deletes the rule; a rule that is already gone is not an error.
func (r fwRule) remove(ctx context.Context) error {
	_, err := run(ctx, r.bin, append([]string{"-w", "5", "-D"}, r.spec...)...)
	if err != nil && !notFound(err) {
		return fmt.Errorf("deleting iptables rule: %w", err)
	}
	return nil
}

// forwardSpec is the FORWARD rule that lets frames bridged between the
// ports of bridge through iptables.
func forwardSpec(bridge string, pid int) []string {
	return []string{"FORWARD", "-i", bridge, "-o", bridge, "-m", "comment", "--comment", fmt.Sprintf("objstore-testnet pid=%d", pid), "-j", "ACCEPT"}
}

// allowForward makes sure iptables does not drop frames bridged between the
// hosts; see New.
func (n *Net) allowForward(ctx context.Context, t testing.TB) error {
	v, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	if err != nil || strings.TrimSpace(string(v)) != "1" {
		return nil // br_netfilter not loaded, or bridged frames skip iptables
	}
	bins := iptablesBackends(ctx)
	if len(bins) == 0 {
		t.Logf("testnet: warning: bridged frames go through iptables but no iptables binary was found; hosts may not reach each other")
		return nil
	}
	for _, bin := range bins {
		out, err := run(ctx, bin, "-w", "5", "-S", "FORWARD")
		if err != nil {
			return fmt.Errorf("reading the FORWARD chain: %w", err)
		}
		if onlyAccept(out) {
			continue
		}
		spec := forwardSpec(n.bridge, n.pid)
		var ierr error
		for attempt := range 3 {
			if _, ierr = run(ctx, bin, append([]string{"-w", "5", "-I"}, spec...)...); ierr == nil {
				break
			}
			time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond) // concurrent updates
		}
		if ierr != nil {
			return fmt.Errorf("allowing bridged traffic: %w", ierr)
		}
		n.fw = append(n.fw, fwRule{bin: bin, spec: spec})
	}
	return nil
}

// onlyAccept reports whether "iptables -S FORWARD" printed an empty chain
// with policy ACCEPT, which lets everything through.
func onlyAccept(out string) bool {
	var rules []string
	for line := range strings.Lines(out) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			rules = append(rules, line)
		}
	}
	return len(rules) == 1 && rules[0] == "-P FORWARD ACCEPT"
}

var (
	backendsOnce sync.Once
	backends     []string
)

// iptablesBackends returns the iptables binaries whose FORWARD chains
// bridged frames traverse: the nf_tables one, and the legacy one if its
// filter table is loaded.
func iptablesBackends(ctx context.Context) []string {
	backendsOnce.Do(func() {
		var def string // "nf_tables" or "legacy", the flavor of plain iptables
		if out, err := run(ctx, "iptables", "-V"); err == nil {
			def = "legacy"
			if strings.Contains(out, "nf_tables") {
				def = "nf_tables"
			}
		}
		if p, err := exec.LookPath("iptables-nft"); err == nil {
			backends = append(backends, p)
		} else if def == "nf_tables" {
			backends = append(backends, "iptables")
		}
		tables, _ := os.ReadFile("/proc/net/ip_tables_names")
		if !strings.Contains("\n"+string(tables), "\nfilter\n") {
			return
		}
		if p, err := exec.LookPath("iptables-legacy"); err == nil {
			backends = append(backends, p)
		} else if def == "legacy" {
			backends = append(backends, "iptables")
		}
	})
	return backends
}

var (
	sweepOnce sync.Once
	// Names of what dead test processes may have left behind.
	staleNetns = regexp.MustCompile(`^otn-(\d+)-`)
	staleLink  = regexp.MustCompile(`^otn([0-9a-z]{1,5})-[0-9a-z]{1,2}(-[0-9a-z]{1,2})?$`)
	staleTable = regexp.MustCompile(`^table bridge (objstore_testnet_(\d+)_\d+)$`)
	staleRule  = regexp.MustCompile(`^-A FORWARD -i (otn[0-9a-z-]+) -o otn[0-9a-z-]+ -m comment --comment "objstore-testnet pid=(\d+)" -j ACCEPT$`)
)

// alive reports whether a process with the given PID exists and is not a
// zombie. Our own PID counts as alive, so we never remove our own things.
func alive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	// "pid (comm) state ...", where comm may contain spaces and parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// sweepStale removes, once per process, the namespaces, links, nftables
// tables, iptables rules and lock files that test processes which no longer
// exist left behind (all are named after their PID or, for lock files,
// unlocked), for example because go test killed them on a timeout before
// their cleanups ran. What it removes and any failure are only logged.
func sweepStale(t testing.TB) {
	t.Helper()
	var msgs []string
	sweepOnce.Do(func() { msgs = sweep() })
	for _, m := range msgs {
		t.Log("testnet: " + m)
	}
}

// sweep does the work of sweepStale and returns what to log.
func sweep() []string {
	ctx, cancel := context.WithTimeout(context.Background(), 6*cmdTimeout)
	defer cancel()
	var msgs []string
	var errs []error
	note := func(err error) {
		if err != nil && !notFound(err) {
			errs = append(errs, err)
		}
	}
	removing := func(what string, pid int) {
		msgs = append(msgs, fmt.Sprintf("removing %s, left behind by process %d", what, pid))
	}

	if out, err := run(ctx, ipPath, "netns", "list"); err != nil {
		note(err)
	} else {
		for line := range strings.Lines(out) {
			f := strings.Fields(line) // "otn-123-0-2-a (id: 0)"
			if len(f) == 0 {
				continue
			}
			m := staleNetns.FindStringSubmatch(f[0])
			if m == nil {
				continue
			}
			if pid, _ := strconv.Atoi(m[1]); pid > 0 && !alive(pid) {
				removing("namespace "+f[0], pid)
				note(killNamespace(f[0]))
				_, err := run(ctx, ipPath, "netns", "delete", f[0])
				note(err)
			}
		}
	}

	if out, err := run(ctx, ipPath, "-o", "link", "show"); err != nil {
		note(err)
	} else {
		for line := range strings.Lines(out) {
			f := strings.Fields(line) // "7: otnxyz-0-2@if2: <...> ..."
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			m := staleLink.FindStringSubmatch(name)
			if m == nil {
				continue
			}
			if pid, err := strconv.ParseInt(m[1], 36, 64); err == nil && pid > 0 && !alive(int(pid)) {
				removing("link "+name, int(pid))
				_, err := run(ctx, ipPath, "link", "delete", name)
				note(err)
			}
		}
	}

	if out, err := run(ctx, nftPath, "list", "tables", "bridge"); err != nil {
		note(err)
	} else {
		for line := range strings.Lines(out) {
			m := staleTable.FindStringSubmatch(strings.TrimSpace(line))
			if m == nil {
				continue
			}
			if pid, _ := strconv.Atoi(m[2]); pid > 0 && !alive(pid) {
				removing("nftables table "+m[1], pid)
				_, err := run(ctx, nftPath, "delete", "table", "bridge", m[1])
				note(err)
			}
		}
	}

	for _, bin := range iptablesBackends(ctx) {
		out, err := run(ctx, bin, "-w", "5", "-S", "FORWARD")
		if err != nil {
			note(err)
			continue
		}
		for line := range strings.Lines(out) {
			m := staleRule.FindStringSubmatch(strings.TrimSpace(line))
			if m == nil {
				continue
			}
			if pid, _ := strconv.Atoi(m[2]); pid > 0 && !alive(pid) {
				removing(filepath.Base(bin)+" FORWARD rule for "+m[1], pid)
				note(fwRule{bin: bin, spec: forwardSpec(m[1], pid)}.remove(ctx))
			}
		}
	}

	// A lock file we can lock belongs to no live process.
	paths, _ := filepath.Glob(filepath.Join(lockDir(), "objstore-testnet-10.213.*.lock"))
	for _, path := range paths {
		var x int
		if _, err := fmt.Sscanf(filepath.Base(path), "objstore-testnet-10.213.%d.lock", &x); err != nil || x < 1 || x > 254 {
			continue
		}
		l, err := tryLock(x)
		note(err)
		if l != nil {
			msgs = append(msgs, "removing lock file "+path+", left behind by a dead process")
			note(l.release())
		}
	}

	if err := errors.Join(errs...); err != nil {
		msgs = append(msgs, fmt.Sprintf("warning: removing what dead test processes left behind: %v", err))
	}
	return msgs
}
