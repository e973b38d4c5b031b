package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/oklog/ulid/v2"
)

// Generous: the race detector and parallel tests slow gossip down.
const (
	waitDeadline = 20 * time.Second
	waitPoll     = 20 * time.Millisecond
)

// testRun tells this test process's clusters from those of others running
// at the same time on the same loopback.
var testRun = ulid.Make().String()

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitDeadline, what)
		}
		time.Sleep(waitPoll)
	}
}

// testLogger logs through t.Log until the test's cleanups finish;
// memberlist's goroutines may outlive Close and t.Log would then panic.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLogWriterFor(t), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func testLogWriterFor(t *testing.T) *testLogWriter {
	w := &testLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

type testLogWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// collector drains a Membership's events, as the node must.
type collector struct {
	mu   sync.Mutex
	evs  []Event
	done chan struct{} // closed when Events is closed
}

func collect(m *Membership) *collector {
	c := &collector{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for ev := range m.Events() {
			c.mu.Lock()
			c.evs = append(c.evs, ev)
			c.mu.Unlock()
		}
	}()
	return c
}

// about returns the event types received about id, in order.
func (c *collector) about(id ulid.ULID) []EventType {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []EventType
	for _, ev := range c.evs {
		if ev.Member.ID == id {
			out = append(out, ev.Type)
		}
	}
	return out
}

func (c *collector) first(typ EventType, id ulid.ULID) (Event, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range c.evs {
		if ev.Type == typ && ev.Member.ID == id {
			return ev, true
		}
	}
	return Event{}, false
}

type testNode struct {
	*Membership
	ev    *collector
	fault *faultTransport // nil unless opts.fault
}

type nodeOpts struct {
	tag       string
	key       []byte
	join      []string
	tune      func(*memberlist.Config)
	fault     bool
	rejoin    time.Duration // default 100ms
	reapAfter time.Duration
	now       func() time.Time
	id        ulid.ULID // zero: a new one
	bind      string    // default 127.0.0.1:0
	resolver  *net.Resolver
}

func publicAddr(id ulid.ULID) string { return "public-" + strings.ToLower(id.String()[20:]) + ":8080" }
func privateAddr(id ulid.ULID) string {
	return "private-" + strings.ToLower(id.String()[20:]) + ":9090"
}

// startNode starts a member on a free loopback port with Local timings.
func startNode(t *testing.T, log *slog.Logger, o nodeOpts) *testNode {
	t.Helper()
	id := ulid.Make()
	tn := &testNode{}
	hooks := &testHooks{tune: o.tune, now: o.now, resolver: o.resolver}
	if o.bind == "" {
		o.bind = "127.0.0.1:0"
	}
	if o.fault {
		hooks.wrapTransport = func(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
			tn.fault = newFaultTransport(inner)
			return tn.fault
		}
	}
	if o.rejoin == 0 {
		o.rejoin = 100 * time.Millisecond
	}
	// Tags unique to the test run: the rejoin loop retries dead members'
	// addresses, which other tests (or test processes) may have reused.
	tag := t.Name() + "/" + o.tag + "/" + testRun

	if o.id != (ulid.ULID{}) {
		id = o.id
	}
	m, err := Start(Config{
		NodeID:         id,
		Tag:            tag,
		BindAddr:       o.bind,
		PublicAddr:     publicAddr(id),
		PrivateAddr:    privateAddr(id),
		Join:           o.join,
		Key:            o.key,
		RejoinInterval: o.rejoin,
		ReapAfter:      o.reapAfter,
		Local:          true,
		Logger:         log.With("test_node", id.String()[20:]),
		hooks:          hooks,
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	tn.Membership = m
	tn.ev = collect(m)
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		<-tn.ev.done
	})
	return tn
}

// fastTimings shortens failure detection; still loose enough for -race.
func fastTimings(c *memberlist.Config) {
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.GossipInterval = 50 * time.Millisecond
	c.SuspicionMult = 3
	c.PushPullInterval = 2 * time.Second
	c.TCPTimeout = 500 * time.Millisecond
}

func (n *testNode) addr() string { return n.Self().GossipAddr }

func stateOf(m *Membership, id ulid.ULID) State {
	mb, ok := m.Member(id)
	if !ok {
		return ""
	}
	return mb.State
}

// allAlive reports whether m sees exactly ids, all alive.
func allAlive(m *Membership, ids ...ulid.ULID) bool {
	ms := m.Members()
	if len(ms) != len(ids) {
		return false
	}
	for _, mb := range ms {
		if mb.State != StateAlive || !slices.Contains(ids, mb.ID) {
			return false
		}
	}
	return true
}

func onlySelf(m *Membership) bool {
	ms := m.Members()
	return len(ms) == 1 && ms[0].Self && len(m.Peers()) == 0
}

// threeNodes forms a cluster; the third node knows only the second.
func threeNodes(t *testing.T, o nodeOpts) (a, b, c *testNode) {
	t.Helper()
	log := testLogger(t)
	a = startNode(t, log, o)
	ob := o
	ob.join = []string{a.addr()}
	b = startNode(t, log, ob)
	oc := o
	oc.join = []string{b.addr()}
	c = startNode(t, log, oc)
	for _, n := range []*testNode{a, b, c} {
		waitFor(t, "three alive members on "+n.selfID.String(), func() bool {
			return allAlive(n.Membership, a.selfID, b.selfID, c.selfID)
		})
	}
	return a, b, c
}

func TestThreeNodesFormCluster(t *testing.T) {
	t.Parallel()
	a, b, c := threeNodes(t, nodeOpts{})
	nodes := []*testNode{a, b, c}

	for _, n := range nodes {
		ms := n.Members()
		if !slices.IsSortedFunc(ms, func(x, y Member) int { return x.ID.Compare(y.ID) }) {
			t.Errorf("Members not sorted by ID: %v", ms)
		}
		for _, mb := range ms {
			var want *testNode
			for _, o := range nodes {
				if o.selfID == mb.ID {
					want = o
				}
			}
			if mb.PublicAddr != publicAddr(mb.ID) || mb.PrivateAddr != privateAddr(mb.ID) ||
				mb.GossipAddr != want.addr() || mb.Self != (mb.ID == n.selfID) {
				t.Errorf("node %s sees member %+v; want public %s private %s gossip %s self %v",
					n.selfID, mb, publicAddr(mb.ID), privateAddr(mb.ID), want.addr(), mb.ID == n.selfID)
			}
		}
		if self := n.Self(); !self.Self || self.ID != n.selfID || self.State != StateAlive {
			t.Errorf("Self() = %+v", self)
		}
		if p := n.Peers(); len(p) != 2 || slices.ContainsFunc(p, func(mb Member) bool { return mb.Self }) {
			t.Errorf("Peers() = %+v, want the two others", p)
		}
		if _, ok := n.Member(ulid.Make()); ok {
			t.Error("Member(unknown) found something")
		}
	}

	// Join events, with the member's addresses; none about oneself.
	for _, n := range nodes {
		for _, o := range nodes {
			if o == n {
				if evs := n.ev.about(n.selfID); len(evs) != 0 {
					t.Errorf("node got events about itself: %v", evs)
				}
				continue
			}
			waitFor(t, "join event", func() bool { _, ok := n.ev.first(EventJoin, o.selfID); return ok })
			ev, _ := n.ev.first(EventJoin, o.selfID)
			if ev.Member.PublicAddr != publicAddr(o.selfID) || ev.Member.GossipAddr != o.addr() || ev.Member.State != StateAlive {
				t.Errorf("join event %+v", ev)
			}
		}
	}
}

func TestLeave(t *testing.T) {
	t.Parallel()
	a, b, c := threeNodes(t, nodeOpts{tune: fastTimings})

	if err := c.Leave(5 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if got := c.Self().State; got != StateLeft {
		t.Errorf("leaver's Self().State = %s, want left", got)
	}
	if err := c.Leave(time.Second); err != nil {
		t.Errorf("second Leave: %v", err)
	}
	for _, n := range []*testNode{a, b} {
		waitFor(t, "others see left", func() bool { return stateOf(n.Membership, c.selfID) == StateLeft })
		waitFor(t, "leave event", func() bool { _, ok := n.ev.first(EventLeave, c.selfID); return ok })
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Shutting down after leaving must not turn "left" into "dead": wait
	// for several rejoin rounds and failure-detection periods.
	r := a.rejoinRounds.Load()
	waitFor(t, "rejoin rounds", func() bool { return a.rejoinRounds.Load() >= r+20 })
	for _, n := range []*testNode{a, b} {
		if got := stateOf(n.Membership, c.selfID); got != StateLeft {
			t.Errorf("after Close of the leaver, state = %s, want left", got)
		}
		// A leave is reported as such, never as a failure first. (An
		// earlier fail/join pair would be a false suspicion under load.)
		if evs := n.ev.about(c.selfID); len(evs) < 2 || !slices.Equal(evs[len(evs)-2:], []EventType{EventJoin, EventLeave}) {
			t.Errorf("events about the leaver: %v, want [... join leave]", evs)
		}
		if p := n.Peers(); len(p) != 1 {
			t.Errorf("Peers() = %+v, want one", p)
		}
	}
	if err := c.Leave(time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Leave after Close: %v, want ErrClosed", err)
	}
}

func TestCloseWithoutLeave(t *testing.T) {
	t.Parallel()
	a, b, c := threeNodes(t, nodeOpts{tune: fastTimings})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case <-c.ev.done:
	case <-time.After(waitDeadline):
		t.Fatal("Events not closed by Close")
	}
	for _, n := range []*testNode{a, b} {
		waitFor(t, "others see dead", func() bool { return stateOf(n.Membership, c.selfID) == StateDead })
		waitFor(t, "fail event", func() bool { _, ok := n.ev.first(EventFail, c.selfID); return ok })
		if _, ok := n.ev.first(EventLeave, c.selfID); ok {
			t.Error("got a leave event for a node that failed")
		}
		if p := n.Peers(); len(p) != 1 {
			t.Errorf("Peers() = %+v, want one", p)
		}
	}
}

// A node restarted with the same NodeID at another address is taken back,
// whether or not its old self was already seen dead.
func TestRestartSameID(t *testing.T) {
	t.Parallel()
	log := testLogger(t)
	a := startNode(t, log, nodeOpts{tune: fastTimings})
	b := startNode(t, log, nodeOpts{tune: fastTimings, join: []string{a.addr()}})
	id := b.selfID
	waitFor(t, "cluster", func() bool { return allAlive(a.Membership, a.selfID, id) })

	for round, waitDead := range []bool{true, false} {
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if waitDead {
			waitFor(t, "old run dead", func() bool { return stateOf(a.Membership, id) == StateDead })
		}
		joins := len(slices.DeleteFunc(a.ev.about(id), func(e EventType) bool { return e != EventJoin }))
		b = startNode(t, log, nodeOpts{tune: fastTimings, join: []string{a.addr()}, id: id})
		waitFor(t, fmt.Sprintf("round %d: restarted node alive at its new address", round), func() bool {
			mb, ok := a.Member(id)
			return ok && mb.State == StateAlive && mb.GossipAddr == b.addr() && allAlive(b.Membership, a.selfID, id)
		})
		waitFor(t, "a join event for the new run", func() bool {
			return len(slices.DeleteFunc(a.ev.about(id), func(e EventType) bool { return e != EventJoin })) > joins
		})
	}
}

// refused checks that intruder never joins good, on either side, while the
// intruder keeps retrying its seed.
func refused(t *testing.T, good, intruder *testNode) {
	t.Helper()
	r := intruder.rejoinRounds.Load()
	waitFor(t, "intruder retries", func() bool { return intruder.rejoinRounds.Load() >= r+5 })
	if !onlySelf(intruder.Membership) {
		t.Errorf("intruder sees members %+v", intruder.Members())
	}
	if _, ok := good.Member(intruder.selfID); ok {
		t.Errorf("cluster sees intruder: %+v", good.Members())
	}
	if n := intruder.rejoinSuccess.Load(); n != 0 {
		t.Errorf("intruder's rejoin succeeded %d times", n)
	}
	if evs := good.ev.about(intruder.selfID); len(evs) != 0 {
		t.Errorf("cluster got events about the intruder: %v", evs)
	}
	if len(intruder.ev.about(good.selfID)) != 0 {
		t.Error("intruder got events about the cluster")
	}
}

func TestForeignTagRefused(t *testing.T) {
	t.Parallel()
	tap := &logTap{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(tap, testLogWriterFor(t)), nil))
	a := startNode(t, log, nodeOpts{tag: "blue"})
	b := startNode(t, log, nodeOpts{tag: "green", join: []string{a.addr()}})
	refused(t, a, b)
	if !tap.contains("unacceptable label") {
		t.Error("not refused by the packet label")
	}
}

// A peer whose label matches but whose metadata tag does not is refused by
// the alive and merge delegates.
func TestMislabelledPeerRefused(t *testing.T) {
	t.Parallel()
	tap := &logTap{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(tap, testLogWriterFor(t)), nil))
	a := startNode(t, log, nodeOpts{tag: "blue"})
	b := startNode(t, log, nodeOpts{tag: "green", join: []string{a.addr()},
		tune: func(c *memberlist.Config) { c.Label = "objstore/" + a.cfg.Tag }})
	refused(t, a, b)

	// And the other way round: the mislabelled node is the one joined.
	c := startNode(t, log, nodeOpts{tag: "blue", join: []string{b.addr()}})
	refused(t, b, c)

	// The labels matched, so it was the metadata check that refused them.
	for _, want := range []string{
		fmt.Sprintf("refusing merge: node %s: belongs to cluster tag", b.selfID),
		fmt.Sprintf("refusing merge: node %s: belongs to cluster tag", a.selfID),
		fmt.Sprintf("refusing merge: node %s: belongs to cluster tag", c.selfID),
	} {
		if !tap.contains(want) {
			t.Errorf("no log line %q", want)
		}
	}
	if tap.contains("unacceptable label") {
		t.Error("refused by label, not by tag")
	}
}

// logTap keeps log output for inspection.
type logTap struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logTap) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logTap) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}

func TestEncryption(t *testing.T) {
	t.Parallel()
	log := testLogger(t)
	key := bytes.Repeat([]byte{7}, 32)
	a := startNode(t, log, nodeOpts{key: key})
	b := startNode(t, log, nodeOpts{key: slices.Clone(key), join: []string{a.addr()}})
	waitFor(t, "same key joins", func() bool { return allAlive(a.Membership, a.selfID, b.selfID) })

	plain := startNode(t, log, nodeOpts{join: []string{a.addr()}})
	refused(t, a, plain)
	other := startNode(t, log, nodeOpts{key: bytes.Repeat([]byte{8}, 16), join: []string{a.addr()}})
	refused(t, a, other)
}

func TestStartValidation(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"no id":        {BindAddr: "127.0.0.1:0"},
		"bad key":      {NodeID: ulid.Make(), BindAddr: "127.0.0.1:0", Key: []byte("short")},
		"meta too big": {NodeID: ulid.Make(), BindAddr: "127.0.0.1:0", PublicAddr: strings.Repeat("x", 600)},
		"bind host":    {NodeID: ulid.Make(), BindAddr: "localhost:0"},
		"advertise":    {NodeID: ulid.Make(), BindAddr: "127.0.0.1:0", AdvertiseAddr: "127.0.0.1:port"},
		"negative":     {NodeID: ulid.Make(), BindAddr: "127.0.0.1:0", ReapAfter: -1},
	} {
		if m, err := Start(cfg); err == nil {
			_ = m.Close()
			t.Errorf("%s: Start succeeded", name)
		}
	}
}

// A node nobody can reach at start still starts, and joins later through
// the rejoin loop once the seed appears.
func TestUnreachableSeedIsNotFatal(t *testing.T) {
	t.Parallel()
	log := testLogger(t)
	// Reserve a port for the seed, then free it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seedAddr := l.Addr().String()
	_ = l.Close()

	b := startNode(t, log, nodeOpts{join: []string{seedAddr}})
	if !onlySelf(b.Membership) {
		t.Fatalf("members %+v", b.Members())
	}
	m, err := Start(Config{NodeID: ulid.Make(), Tag: t.Name() + "//" + testRun, BindAddr: seedAddr, Local: true, Logger: log})
	if err != nil {
		t.Skipf("seed port taken meanwhile: %v", err)
	}
	defer m.Close()
	waitFor(t, "late seed joined by the rejoin loop", func() bool { return len(b.Peers()) == 1 && len(m.Peers()) == 1 })
}

// faultTransport simulates a partition of one node: while cut, every packet
// in or out is dropped and every stream in or out refused.
type faultTransport struct {
	memberlist.NodeAwareTransport
	cut     atomic.Bool
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	stop    sync.Once
	wg      sync.WaitGroup
}

var errPartitioned = errors.New("fault injection: partitioned")

func newFaultTransport(inner memberlist.NodeAwareTransport) *faultTransport {
	f := &faultTransport{
		NodeAwareTransport: inner,
		packets:            make(chan *memberlist.Packet),
		streams:            make(chan net.Conn),
		done:               make(chan struct{}),
	}
	f.wg.Add(2)
	go f.forwardPackets()
	go f.forwardStreams()
	return f
}

func (f *faultTransport) forwardPackets() {
	defer f.wg.Done()
	for {
		select {
		case p := <-f.NodeAwareTransport.PacketCh():
			if f.cut.Load() {
				continue
			}
			select {
			case f.packets <- p:
			case <-f.done:
				return
			}
		case <-f.done:
			return
		}
	}
}

func (f *faultTransport) forwardStreams() {
	defer f.wg.Done()
	for {
		select {
		case c := <-f.NodeAwareTransport.StreamCh():
			if f.cut.Load() {
				_ = c.Close()
				continue
			}
			select {
			case f.streams <- c:
			case <-f.done:
				_ = c.Close()
				return
			}
		case <-f.done:
			return
		}
	}
}

func (f *faultTransport) PacketCh() <-chan *memberlist.Packet { return f.packets }
func (f *faultTransport) StreamCh() <-chan net.Conn           { return f.streams }

func (f *faultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if f.cut.Load() {
		return time.Now(), nil // lost on the way, as UDP is
	}
	return f.NodeAwareTransport.WriteTo(b, addr)
}

func (f *faultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if f.cut.Load() {
		return time.Now(), nil
	}
	return f.NodeAwareTransport.WriteToAddress(b, a)
}

func (f *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if f.cut.Load() {
		return nil, errPartitioned
	}
	return f.NodeAwareTransport.DialTimeout(addr, timeout)
}

func (f *faultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if f.cut.Load() {
		return nil, errPartitioned
	}
	return f.NodeAwareTransport.DialAddressTimeout(a, timeout)
}

// Shutdown stops the inner transport first: its listeners hand over what
// they already read through our forwarders, which memberlist still drains.
// It may be called twice (memberlist.Create failing after its own Shutdown).
func (f *faultTransport) Shutdown() error {
	err := f.NodeAwareTransport.Shutdown()
	f.stop.Do(func() { close(f.done) })
	f.wg.Wait()
	return err
}

// stateAge is how long ago m's view of id last changed state.
func stateAge(m *Membership, id ulid.ULID) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.members[id]
	if !ok {
		return 0
	}
	return m.now().Sub(e.since)
}

func TestRejoinAfterPartition(t *testing.T) {
	t.Parallel()
	const deadTime = 300 * time.Millisecond
	tune := func(c *memberlist.Config) {
		fastTimings(c)
		c.GossipToTheDeadTime = deadTime
	}
	a, b, c := threeNodes(t, nodeOpts{tune: tune, fault: true, rejoin: 200 * time.Millisecond})

	c.fault.cut.Store(true)
	for _, n := range []*testNode{a, b} {
		waitFor(t, "majority sees the cut node dead", func() bool { return stateOf(n.Membership, c.selfID) == StateDead })
		waitFor(t, "fail event", func() bool { _, ok := n.ev.first(EventFail, c.selfID); return ok })
	}
	waitFor(t, "cut node sees the others dead", func() bool {
		return stateOf(c.Membership, a.selfID) == StateDead && stateOf(c.Membership, b.selfID) == StateDead
	})
	// Stay cut well past GossipToTheDeadTime on every side: memberlist has
	// then stopped gossiping to the dead and dropped them, and would never
	// merge the two halves by itself.
	waitFor(t, "partition outlasts dead-node handling", func() bool {
		return stateAge(a.Membership, c.selfID) > 5*deadTime &&
			stateAge(b.Membership, c.selfID) > 5*deadTime &&
			stateAge(c.Membership, a.selfID) > 5*deadTime &&
			stateAge(c.Membership, b.selfID) > 5*deadTime
	})
	if allAlive(a.Membership, a.selfID, b.selfID, c.selfID) {
		t.Fatal("cluster whole while partitioned")
	}
	before := a.rejoinSuccess.Load() + b.rejoinSuccess.Load() + c.rejoinSuccess.Load()

	c.fault.cut.Store(false) // heal; no Join from here on
	for _, n := range []*testNode{a, b, c} {
		waitFor(t, "cluster whole again on "+n.selfID.String(), func() bool {
			return allAlive(n.Membership, a.selfID, b.selfID, c.selfID)
		})
	}
	if after := a.rejoinSuccess.Load() + b.rejoinSuccess.Load() + c.rejoinSuccess.Load(); after == before {
		t.Error("healed without a successful rejoin")
	}
	for _, n := range []*testNode{a, b} {
		waitFor(t, "fail then join events about the partitioned node", func() bool {
			evs := n.ev.about(c.selfID)
			return len(evs) >= 3 && slices.Equal(evs[len(evs)-2:], []EventType{EventFail, EventJoin})
		})
	}
}

// fakeClock is a settable clock for the member table.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func (n *testNode) waitRounds(t *testing.T, k int64) {
	t.Helper()
	r := n.rejoinRounds.Load()
	waitFor(t, "rejoin rounds", func() bool { return n.rejoinRounds.Load() >= r+k })
}

func TestReap(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	log := testLogger(t)
	// ReapAfter left at its 72h default: the fake clock makes it testable.
	a := startNode(t, log, nodeOpts{tune: fastTimings, now: clock.now})
	b := startNode(t, log, nodeOpts{tune: fastTimings, join: []string{a.addr()}})
	c := startNode(t, log, nodeOpts{tune: fastTimings, join: []string{a.addr()}})
	waitFor(t, "cluster", func() bool { return allAlive(a.Membership, a.selfID, b.selfID, c.selfID) })

	if err := c.Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b dead, c left", func() bool {
		return stateOf(a.Membership, b.selfID) == StateDead && stateOf(a.Membership, c.selfID) == StateLeft
	})

	clock.advance(DefaultReapAfter - time.Minute)
	a.waitRounds(t, 3)
	if len(a.Members()) != 3 {
		t.Fatalf("reaped too early: %+v", a.Members())
	}
	clock.advance(2 * time.Minute)
	waitFor(t, "dead and left members reaped", func() bool { return onlySelf(a.Membership) })
	if _, ok := a.Member(b.selfID); ok {
		t.Error("reaped member still found")
	}
}

// The event queue never blocks its producer and keeps order.
func TestEventQueueUnbounded(t *testing.T) {
	t.Parallel()
	q := newEventQueue()
	var grew int
	for i := range 5000 {
		_, g := q.push(Event{Type: EventUpdate, Member: Member{PublicAddr: fmt.Sprint(i)}})
		if g {
			grew++
		}
	}
	if grew != 3 { // at 1024, 2048 and 4096
		t.Errorf("warned %d times, want 3", grew)
	}
	got := q.take()
	if len(got) != 5000 {
		t.Fatalf("took %d", len(got))
	}
	for i, ev := range got {
		if ev.Member.PublicAddr != fmt.Sprint(i) {
			t.Fatalf("event %d out of order: %+v", i, ev)
		}
	}
	q.close()
	if _, g := q.push(Event{}); g || len(q.take()) != 0 {
		t.Error("push after close was kept")
	}
}

func TestEventsNeverBlockGossip(t *testing.T) {
	t.Parallel()
	log := testLogger(t)
	// Nobody reads a's events.
	a, err := Start(Config{NodeID: ulid.Make(), Tag: t.Name() + "//" + testRun, BindAddr: "127.0.0.1:0", Local: true, Logger: log,
		RejoinInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var ids []ulid.ULID
	ids = append(ids, a.selfID)
	for range 4 {
		n := startNode(t, log, nodeOpts{join: []string{a.Self().GossipAddr}})
		ids = append(ids, n.selfID)
	}
	waitFor(t, "cluster forms with an undrained Events", func() bool { return allAlive(a, ids...) })
	// The backlog is delivered in order once someone reads.
	ev := <-a.Events()
	if ev.Type != EventJoin {
		t.Errorf("first event %+v", ev)
	}
}

func TestMetaEncoding(t *testing.T) {
	t.Parallel()
	in := nodeMeta{ID: ulid.Make().String(), Tag: "t", Public: "p:1", Private: "q:2", Boot: "b"}
	b, err := encodeMeta(in)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != metaVersion {
		t.Errorf("version byte %d", b[0])
	}
	if out, err := decodeMeta(b); err != nil || out != in {
		t.Errorf("round trip: %+v, %v", out, err)
	}
	// A later release: newer version, extra fields. Known fields still read.
	future := append([]byte{9}, `{"id":"X","tag":"t","public":"p","zone":"eu-1","weights":[1,2]}`...)
	if out, err := decodeMeta(future); err != nil || out.ID != "X" || out.Tag != "t" || out.Public != "p" {
		t.Errorf("future meta: %+v, %v", out, err)
	}
	for _, bad := range [][]byte{nil, {}, {0, '{', '}'}, append([]byte{1}, "not json"...)} {
		if _, err := decodeMeta(bad); err == nil {
			t.Errorf("decodeMeta(%q) succeeded", bad)
		}
	}
}

func TestCheckPeer(t *testing.T) {
	t.Parallel()
	m := &Membership{cfg: Config{Tag: "blue"}}
	id := ulid.Make().String()
	meta := func(nm nodeMeta) []byte { b, _ := encodeMeta(nm); return b }
	ok := &memberlist.Node{Name: id, Meta: meta(nodeMeta{ID: id, Tag: "blue"})}
	if _, _, err := m.checkPeer(ok); err != nil {
		t.Errorf("good peer refused: %v", err)
	}
	for name, n := range map[string]*memberlist.Node{
		"foreign tag": {Name: id, Meta: meta(nodeMeta{ID: id, Tag: "green"})},
		"name":        {Name: "hostname", Meta: meta(nodeMeta{ID: "hostname", Tag: "blue"})},
		"id mismatch": {Name: id, Meta: meta(nodeMeta{ID: ulid.Make().String(), Tag: "blue"})},
		"no meta":     {Name: id},
	} {
		if _, _, err := m.checkPeer(n); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	d := &delegate{m: m}
	if err := d.NotifyMerge([]*memberlist.Node{ok, {Name: id, Meta: meta(nodeMeta{ID: id, Tag: "green"})}}); err == nil {
		t.Error("merge with a foreign node accepted")
	}
}

func TestParseMemberlistLine(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]struct {
		level slog.Level
		msg   string
	}{
		"[DEBUG] memberlist: Stream connection from=1.2.3.4\n": {slog.LevelDebug, "Stream connection from=1.2.3.4"},
		"[INFO] memberlist: Marking x as failed":               {slog.LevelInfo, "Marking x as failed"},
		"[WARN] memberlist: Refuting a suspect message":        {slog.LevelWarn, "Refuting a suspect message"},
		"[ERR] memberlist: Failed to send gossip":              {slog.LevelError, "Failed to send gossip"},
		"[ERR] Failed to shutdown transport: x":                {slog.LevelError, "Failed to shutdown transport: x"},
		"no prefix at all":                                     {slog.LevelInfo, "no prefix at all"},
		"[weird] thing":                                        {slog.LevelInfo, "[weird] thing"},
	} {
		level, msg := parseMemberlistLine([]byte(in))
		if level != want.level || msg != want.msg {
			t.Errorf("%q: got %v %q, want %v %q", in, level, msg, want.level, want.msg)
		}
	}

	var buf bytes.Buffer
	l := newMemberlistLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.Printf("[DEBUG] memberlist: hidden")
	l.Printf("[WARN] memberlist: shown %d", 1)
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "level=WARN") || !strings.Contains(out, `msg="shown 1"`) {
		t.Errorf("bridged output: %q", out)
	}
}

func TestNormalizeSeeds(t *testing.T) {
	t.Parallel()
	got := normalizeSeeds([]string{"a", "a:7946", "b:1", "", "10.0.0.1", "::1", "[::2]", "[::3]:5"}, 7946)
	want := []string{"a:7946", "b:1", "10.0.0.1:7946", "[::1]:7946", "[::2]:7946", "[::3]:5"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if p := seedDefaultPort(0); p != DefaultGossipPort {
		t.Errorf("seedDefaultPort(0) = %d", p)
	}
	if p := seedDefaultPort(8000); p != 8000 {
		t.Errorf("seedDefaultPort(8000) = %d", p)
	}
}

func TestAdvertiseAddr(t *testing.T) {
	t.Parallel()
	log := testLogger(t)
	for _, adv := range []string{"127.0.0.1:1234", "localhost:1234", "127.0.0.1"} {
		m, err := Start(Config{NodeID: ulid.Make(), Tag: t.Name() + testRun, BindAddr: "127.0.0.1:0", AdvertiseAddr: adv, Local: true, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		got := m.Self().GossipAddr
		if strings.HasSuffix(adv, ":1234") && got != "127.0.0.1:1234" {
			t.Errorf("AdvertiseAddr %q: GossipAddr %q", adv, got)
		}
		if adv == "127.0.0.1" {
			// Without a port, the bound one: it must accept connections.
			c, err := net.Dial("tcp", got)
			if err != nil {
				t.Errorf("AdvertiseAddr %q: GossipAddr %q is not our listener: %v", adv, got, err)
			} else {
				_ = c.Close()
			}
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
