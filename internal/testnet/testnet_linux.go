//go:build linux

package testnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// cmdTimeout bounds every ip, nft and iptables invocation.
	cmdTimeout = 15 * time.Second
	// killTimeout bounds how long a host's cleanup waits for the processes
	// in its namespace to die.
	killTimeout = 15 * time.Second
	// defaultWaitDelay is the WaitDelay that Host.Command sets.
	defaultWaitDelay = 5 * time.Second
	// maxSeq keeps the base-36 sequence number in interface names at two
	// characters, so veth names stay within 15 characters.
	maxSeq = 36 * 36
	// firstHost and lastHost are the host octets AddHost hands out; .1 is
	// the gateway.
	firstHost, lastHost = 2, 254
)

var (
	// seq numbers the Nets of this process, so that their names differ.
	seqMu   sync.Mutex
	nextSeq int

	// envOnce checks the environment once per process.
	envOnce sync.Once
	envErr  error // why namespaces are unavailable, or nil
	ipPath  string
	nftPath string
)

// Net is a private switch: a Linux bridge in the root namespace, with its own
// IP in the subnet (GatewayIP) so the test process itself can reach every
// host, plus the test hosts attached to it. It is safe for concurrent use.
type Net struct {
	pid    int
	seq    int
	x      int    // third octet of the subnet 10.213.x.0/24
	bridge string // bridge interface name; hosts' veths are bridge+"-"+k
	table  string // nftables bridge-family table name
	lock   *subnetLock
	fw     []fwRule // iptables rules to delete at cleanup

	mu     sync.Mutex
	nextK  int
	hosts  []*Host
	closed bool
}

// Host is a test host: a network namespace with lo up and an interface eth0
// holding IP()/24, attached to its Net's switch, with no default route. It is
// safe for concurrent use.
type Host struct {
	net  *Net
	name string
	ns   string // network namespace name (ip netns)
	veth string // root-side end of the host's veth, a port of the bridge
	ip   string

	mu  sync.Mutex
	cut bool
	// isolated: the host's port is in the isolated set (see Isolate).
	isolated bool
	closed   bool
	cmds     []*exec.Cmd
}

// unavailable ends the test because network namespaces cannot be used here:
// it skips, or fails when the environment variable CI is non-empty.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := "testnet: " + fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set, so this is a failure, not a skip)")
	}
	t.Skip(msg)
}

// checkEnv finds ip and nft and makes sure namespaces can be created, by
// creating and deleting one; the result is cached for the process.
func checkEnv() error {
	envOnce.Do(func() {
		if euid := os.Geteuid(); euid != 0 {
			envErr = fmt.Errorf("needs root to create network namespaces (euid is %d)", euid)
			return
		}
		var err error
		if ipPath, err = exec.LookPath("ip"); err != nil {
			envErr = fmt.Errorf("iproute2 (ip) is missing: %w", err)
			return
		}
		if nftPath, err = exec.LookPath("nft"); err != nil {
			envErr = fmt.Errorf("nft (nftables) is missing: %w", err)
			return
		}
		probe := fmt.Sprintf("otn-%d-probe", os.Getpid())
		ctx, cancel := context.WithTimeout(context.Background(), 2*cmdTimeout)
		defer cancel()
		_, _ = run(ctx, ipPath, "netns", "delete", probe) // left by an earlier process with our PID
		if _, err := run(ctx, ipPath, "netns", "add", probe); err != nil {
			envErr = fmt.Errorf("cannot create a network namespace: %w", err)
			return
		}
		if _, err := run(ctx, ipPath, "netns", "delete", probe); err != nil {
			envErr = fmt.Errorf("cannot delete probe network namespace %s: %w", probe, err)
		}
	})
	return envErr
}

// New creates a private switch for the test and registers its removal, and
// that of every host on it, with t.Cleanup. It skips the test when not
// running as root, when ip or nft is missing or when network namespaces
// cannot be created, unless the environment variable CI is non-empty, in
// which case it fails the test with the reason. Any other setup error fails
// the test.
//
// If the kernel passes bridged frames through iptables (br_netfilter with
// net.bridge.bridge-nf-call-iptables=1) and the iptables FORWARD chain could
// drop them (Docker sets its policy to DROP), New inserts one rule at the
// top of FORWARD, "-i BRIDGE -o BRIDGE -j ACCEPT" with the comment
// "objstore-testnet pid=PID", in each iptables backend (nft and, if its
// filter table is loaded, legacy) whose FORWARD chain is not an empty
// ACCEPT chain, and deletes it at cleanup. It changes no global sysctl (it
// only turns IPv6 off on the interfaces it creates).
func New(t testing.TB) *Net {
	t.Helper()
	if err := checkEnv(); err != nil {
		unavailable(t, "%v", err)
	}
	sweepStale(t)

	ctx, cancel := context.WithTimeout(context.Background(), 4*cmdTimeout)
	defer cancel()
	n := &Net{pid: os.Getpid(), nextK: firstHost}
	lock, err := lockSubnet(ctx, n.pid)
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	n.lock = lock
	n.x = lock.x
	t.Cleanup(func() { n.close(t) })

	if err := n.createBridge(ctx); err != nil {
		t.Fatalf("testnet: %v", err)
	}
	if err := n.createTable(ctx); err != nil {
		t.Fatalf("testnet: %v", err)
	}
	if err := n.allowForward(ctx, t); err != nil {
		t.Fatalf("testnet: %v", err)
	}
	t.Logf("testnet: switch %s on 10.213.%d.0/24, gateway %s", n.bridge, n.x, n.GatewayIP())
	return n
}

// createBridge creates the bridge under the next free name of this process,
// gives it the gateway address and sets it up. IPv6 is disabled on it.
func (n *Net) createBridge(ctx context.Context) error {
	for {
		seqMu.Lock()
		seq := nextSeq
		nextSeq++
		seqMu.Unlock()
		if seq >= maxSeq {
			return fmt.Errorf("more than %d switches in one test process", maxSeq)
		}
		name := "otn" + strconv.FormatInt(int64(n.pid), 36) + "-" + strconv.FormatInt(int64(seq), 36)
		_, err := run(ctx, ipPath, "link", "add", "name", name, "type", "bridge", "stp_state", "0")
		if err != nil && strings.Contains(err.Error(), "File exists") {
			continue // left behind by an earlier process with our PID
		}
		if err != nil {
			return fmt.Errorf("creating bridge: %w", err)
		}
		n.seq, n.bridge = seq, name
		n.table = fmt.Sprintf("objstore_testnet_%d_%d", n.pid, seq)
		break
	}
	if err := disableIPv6(n.bridge); err != nil {
		return err
	}
	if _, err := run(ctx, ipPath, "addr", "add", n.GatewayIP()+"/24", "dev", n.bridge); err != nil {
		return fmt.Errorf("addressing bridge: %w", err)
	}
	if _, err := run(ctx, ipPath, "link", "set", n.bridge, "up"); err != nil {
		return fmt.Errorf("setting bridge up: %w", err)
	}
	return nil
}

// createTable creates the nftables bridge table that implements Cut (the
// set "cut" of root-side veth names whose frames are dropped) and keeps the
// hosts' traffic inside the subnet.
func (n *Net) createTable(ctx context.Context) error {
	ports := n.bridge + "-*" // every host port, and nothing else
	subnet := n.subnet()
	script := fmt.Sprintf(`table bridge %[1]s {
	set cut {
		type ifname
	}
	set isolated {
		type ifname
	}
	chain forward {
		type filter hook forward priority -200; policy accept;
		iifname @cut drop
		oifname @cut drop
		iifname @isolated drop
		oifname @isolated drop
	}
	chain input {
		type filter hook input priority -200; policy accept;
		iifname @cut drop
		iifname %[2]q ether type != { arp, ip } drop
		iifname %[2]q ip daddr != %[3]s drop
	}
	chain output {
		type filter hook output priority -200; policy accept;
		oifname @cut drop
		oifname %[2]q ether type != { arp, ip } drop
		oifname %[2]q ip saddr != %[3]s drop
	}
}
`, n.table, ports, subnet)
	if _, err := runInput(ctx, script, nftPath, "-f", "-"); err != nil {
		return fmt.Errorf("creating nftables table: %w", err)
	}
	return nil
}

// subnet returns the Net's subnet in CIDR notation.
func (n *Net) subnet() string { return fmt.Sprintf("10.213.%d.0/24", n.x) }

// GatewayIP returns the bridge's IPv4 address, the root namespace's (and so
// the test process's) address on the switch, such as "10.213.7.1". Every
// host can reach it (unless cut), so services the hosts need, such as a
// MinIO server started by the test, must listen on it; services listening
// only on 127.0.0.1 are not reachable from hosts, and 0.0.0.0 works but also
// listens on the machine's real interfaces. The address exists until the
// Net's cleanup, so stop such services in a cleanup registered after New.
func (n *Net) GatewayIP() string { return fmt.Sprintf("10.213.%d.1", n.x) }

// AddHost creates a host named name (used in messages and, sanitized, in the
// namespace name; it need not be unique) and registers its removal with
// t.Cleanup, which first kills every process in its namespace. The host has
// lo up and eth0 with the next free address 10.213.X.k/24 (k from 2 to 254),
// no IPv6 addresses and no default route. It fails the test on error.
func (n *Net) AddHost(t testing.TB, name string) *Host {
	t.Helper()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		t.Fatalf("testnet: AddHost(%q) on a switch that was already removed", name)
	}
	if n.nextK > lastHost {
		n.mu.Unlock()
		t.Fatalf("testnet: AddHost(%q): no more than %d hosts per switch", name, lastHost-firstHost+1)
	}
	k := n.nextK
	n.nextK++
	h := &Host{
		net:  n,
		name: name,
		ns:   fmt.Sprintf("otn-%d-%d-%d-%s", n.pid, n.seq, k, sanitize(name)),
		veth: n.bridge + "-" + strconv.FormatInt(int64(k), 36),
		ip:   fmt.Sprintf("10.213.%d.%d", n.x, k),
	}
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	t.Cleanup(func() {
		if err := h.close(); err != nil {
			t.Errorf("testnet: removing host %s: %v", h.name, err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 4*cmdTimeout)
	defer cancel()
	if err := h.create(ctx); err != nil {
		t.Fatalf("testnet: adding host %s: %v", name, err)
	}
	return h
}

// create makes the host's namespace and veth and configures both ends.
func (h *Host) create(ctx context.Context) error {
	n := h.net
	steps := [][]string{
		{"netns", "add", h.ns},
		{"link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns},
	}
	for _, args := range steps {
		if _, err := run(ctx, ipPath, args...); err != nil {
			return err
		}
	}
	if err := disableIPv6(h.veth); err != nil {
		return err
	}
	steps = [][]string{
		{"link", "set", h.veth, "master", n.bridge},
		{"link", "set", h.veth, "up"},
		// No link-local IPv6 address, so the host sends no IPv6 at all.
		{"-n", h.ns, "link", "set", "eth0", "addrgenmode", "none"},
		{"-n", h.ns, "addr", "add", h.ip + "/24", "dev", "eth0"},
		{"-n", h.ns, "link", "set", "lo", "up"},
		{"-n", h.ns, "link", "set", "eth0", "up"},
	}
	for _, args := range steps {
		if _, err := run(ctx, ipPath, args...); err != nil {
			return err
		}
	}
	return nil
}

// Name returns the name the host was added with.
func (h *Host) Name() string { return h.name }

// IP returns the host's IPv4 address on the switch, such as "10.213.7.2".
// Processes in the host should listen on it (or on 0.0.0.0, which inside
// the namespace means lo and eth0 only) and advertise it to their peers.
func (h *Host) IP() string { return h.ip }

// Namespace returns the name of the host's network namespace, as listed by
// "ip netns list", for running other tools in it (ip -n NAME ...).
func (h *Host) Namespace() string { return h.ns }

// Command returns a command that runs the program name with args inside the
// host's network namespace, via "ip netns exec NS name args...". ip execs
// the program in place, so the returned Cmd's Process is the program itself
// and Kill, Signal and the context's cancellation reach it; its Path and the
// first elements of its Args are those of ip, so do not rewrite Args.
// SysProcAttr.Pdeathsig is SIGKILL, so the kernel kills the program if the
// test process dies (strictly: if the OS thread that started it exits, which
// the Go runtime only does for goroutines locked with runtime.LockOSThread,
// so do not Start from such a goroutine); WaitDelay is 5s, so Wait returns at most 5s after ctx
// is done even if a grandchild holds its output open. The caller may set the
// other fields (Env, Dir, Stdout, ...) before Start and must Wait as usual.
// Whatever still runs in the namespace when the host is removed, including
// processes not started through Command, is killed with SIGKILL. ctx must be
// non-nil. Once the host is removed, Start returns an error.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, ipPath, append([]string{"netns", "exec", h.ns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = defaultWaitDelay
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		cmd.Err = fmt.Errorf("testnet: host %s was already removed", h.name)
		return cmd
	}
	h.cmds = append(h.cmds, cmd)
	return cmd
}

// Cut partitions the host: from now on the switch silently drops every
// frame to or from the host's port (an nftables bridge-family rule matching
// the root-side veth in the forward, input and output hooks), so the host
// reaches neither the other hosts nor the gateway, and nothing reaches it.
// Links stay up and nothing is reset: established TCP connections stop
// delivering data and hang with their packets retransmitted, as in a real
// partition, until Heal or until the sender's own timeouts (keepalive,
// TCP_USER_TIMEOUT, or about 15 minutes of retransmissions) end them. New
// connections time out, or fail with "no route to host" once ARP for the
// peer has failed. Traffic inside the host (on lo or to its own IP) is not
// affected. Cut on a cut host does nothing.
func (h *Host) Cut() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("testnet: cut %s: host was already removed", h.name)
	}
	if h.cut {
		return nil
	}
	if err := h.setCut(true); err != nil {
		return fmt.Errorf("testnet: cut %s: %w", h.name, err)
	}
	h.cut = true
	return nil
}

// Heal undoes Cut: the switch delivers the host's frames again. TCP
// connections that survived the cut resume when their next retransmission
// gets through, which can take as long as the current retransmission
// timeout (it doubles with every lost retransmission: a few seconds after a
// cut of a few seconds, up to two minutes after long cuts). Heal on a host
// that is not cut does nothing.
func (h *Host) Heal() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("testnet: heal %s: host was already removed", h.name)
	}
	if !h.cut {
		return nil
	}
	if err := h.setCut(false); err != nil {
		return fmt.Errorf("testnet: heal %s: %w", h.name, err)
	}
	h.cut = false
	return nil
}

// setCut adds the host's port to the Net's "cut" set, or removes it.
// h.mu must be held.
func (h *Host) setCut(cut bool) error { return h.setMember("cut", cut) }

// setMember adds the host's port to, or removes it from, one of the
// table's sets.
func (h *Host) setMember(set string, in bool) error {
	op := "delete"
	if in {
		op = "add"
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	_, err := run(ctx, nftPath, op, "element", "bridge", h.net.table, set, fmt.Sprintf("{ %q }", h.veth))
	return err
}

// Isolate partitions the host from the other hosts only: frames between its
// port and any other host's port are dropped (the bridge's forward hook),
// while the host and the gateway still reach each other, so the test
// process can keep talking to a node on both sides of the partition.
// Isolate on an isolated host does nothing.
func (h *Host) Isolate() error { return h.setIsolated(true) }

// Rejoin undoes Isolate. Rejoin on a host that is not isolated does nothing.
func (h *Host) Rejoin() error { return h.setIsolated(false) }

func (h *Host) setIsolated(on bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("testnet: isolate %s: host was already removed", h.name)
	}
	if h.isolated == on {
		return nil
	}
	if err := h.setMember("isolated", on); err != nil {
		return fmt.Errorf("testnet: isolate %s: %w", h.name, err)
	}
	h.isolated = on
	return nil
}

// close kills every process in the host's namespace and removes the veth
// and the namespace. Only the first call does anything.
func (h *Host) close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	cmds := h.cmds
	h.cmds = nil
	h.mu.Unlock()

	// Processes still in ip (before it entered the namespace) are only
	// reachable through their Cmd; the rest are found by namespace.
	for _, cmd := range cmds {
		if cmd.Process != nil {
			_ = cmd.Process.Kill() // fails if it already exited: fine
		}
	}
	var errs []error
	if err := killNamespace(h.ns); err != nil {
		errs = append(errs, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*cmdTimeout)
	defer cancel()
	// Deleting the root-side veth deletes both ends at once, even if some
	// process we could not kill keeps the namespace alive.
	if _, err := run(ctx, ipPath, "link", "delete", h.veth); err != nil && !notFound(err) {
		errs = append(errs, err)
	}
	if _, err := run(ctx, ipPath, "netns", "delete", h.ns); err != nil && !notFound(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// close removes the hosts, the iptables rules, the nftables table, the bridge
// and the subnet lock, reporting failures with t.Errorf. It runs once, as a
// cleanup registered by New.
func (n *Net) close(t testing.TB) {
	n.mu.Lock()
	n.closed = true
	hosts := n.hosts
	n.mu.Unlock()
	var errs []error
	for _, h := range hosts {
		if err := h.close(); err != nil {
			errs = append(errs, fmt.Errorf("host %s: %w", h.name, err))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*cmdTimeout)
	defer cancel()
	for _, r := range n.fw {
		if err := r.remove(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if n.table != "" {
		if _, err := run(ctx, nftPath, "delete", "table", "bridge", n.table); err != nil && !notFound(err) {
			errs = append(errs, err)
		}
	}
	if n.bridge != "" {
		if _, err := run(ctx, ipPath, "link", "delete", n.bridge); err != nil && !notFound(err) {
			errs = append(errs, err)
		}
	}
	if err := n.lock.release(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		t.Errorf("testnet: removing switch %s: %v", n.bridge, err)
	}
}

// sanitize makes name usable in a namespace name: letters, digits, '_',
// '.' and '-' only, at most 32 characters.
func sanitize(name string) string {
	b := []byte(name)
	if len(b) > 32 {
		b = b[:32]
	}
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}
