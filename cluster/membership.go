package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/oklog/ulid/v2"
)

// Defaults applied to zero values.
const (
	// DefaultGossipPort is the gossip port when BindAddr or a seed has none.
	DefaultGossipPort = 7946
	// DefaultRejoinInterval is Config.RejoinInterval's default.
	DefaultRejoinInterval = 5 * time.Second
	// DefaultReapAfter is Config.ReapAfter's default.
	DefaultReapAfter = 72 * time.Hour
	// DefaultLeaveTimeout is used by Leave when given no timeout.
	DefaultLeaveTimeout = 5 * time.Second
)

// ErrClosed is returned by Leave once Close has been called.
var ErrClosed = errors.New("cluster: membership closed")

// Config configures a Membership. Start reads it once; later changes have no
// effect.
type Config struct {
	// NodeID is the node's persistent identity. It is the memberlist node
	// name, so it must be unique in the cluster and the same across
	// restarts. Required.
	NodeID ulid.ULID

	// Tag names the cluster. Nodes with another tag never become members of
	// each other's cluster: the tag is both memberlist's packet label
	// ("objstore/"+Tag) and a field of the node metadata checked on every
	// alive message and join, so a mis-labelled peer is refused either way.
	Tag string

	// BindAddr is the gossip listen address, host:port, used for both UDP
	// and TCP, e.g. "0.0.0.0:7946". Empty means "0.0.0.0:7946"; a missing
	// port means 7946; port 0 picks a free port (see Self().GossipAddr).
	BindAddr string

	// AdvertiseAddr is the host:port other nodes use to reach our gossip
	// port, for NAT or containers. A host name is resolved once, by Start
	// (an IPv4 address preferred), because gossip carries IPs; a missing
	// port means the bound port. Empty: memberlist's default, the bind
	// address, or a private IP of this host when bound to 0.0.0.0.
	AdvertiseAddr string

	// PublicAddr and PrivateAddr are advertised in the gossip metadata:
	// where peers reach this node's public and private HTTP APIs. Together
	// with the rest of the metadata they must encode within 512 bytes.
	PublicAddr, PrivateAddr string

	// Join lists seed addresses, "host" or "host:port". A missing port means
	// the bind port, or 7946 if the bind port is 0. Seeds are contacted once
	// by Start and again by the rejoin loop whenever this node has no alive
	// peer. Our own address may be listed.
	Join []string

	// Key enables gossip encryption (AES-GCM) when set; it must be 16, 24
	// or 32 bytes and the same on every node. Nil means no encryption
	// unless Keyring is set.
	Key []byte

	// Keyring, when set, encrypts gossip with its primary key and
	// decrypts with any of its keys, following its rotations; it takes
	// precedence over Key. Either way, an encrypted member refuses
	// unencrypted gossip and never sends any.
	Keyring *Keyring

	// RejoinInterval is how often the rejoin loop contacts dead members (and
	// the seeds, when no peer is alive) and reaps old ones. 0 means 5s.
	RejoinInterval time.Duration

	// ReapAfter is how long a dead or left member stays in the table (and,
	// if dead, is retried by the rejoin loop) before it is forgotten. 0
	// means 72h.
	ReapAfter time.Duration

	// Local selects memberlist.DefaultLocalConfig timings (loopback tests)
	// instead of DefaultLANConfig.
	Local bool

	// Logger receives this package's logs and memberlist's, bridged to
	// slog levels. Nil means slog.Default().
	Logger *slog.Logger

	// hooks lets tests in this package tune memberlist and inject faults and
	// time; nil in production.
	hooks *testHooks
}

// testHooks are in-package test knobs. Every field is optional.
type testHooks struct {
	// tune adjusts the memberlist config after Start has filled it in
	// (timings, label), just before memberlist.Create.
	tune func(*memberlist.Config)
	// wrapTransport wraps the network transport, e.g. to inject faults.
	wrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
	// now replaces time.Now for the member table (state ages, reaping).
	now func() time.Time
	// resolver replaces net.DefaultResolver for seed names (a DNS server
	// of the test's own).
	resolver *net.Resolver
}

// State is a member's state as seen by this node.
type State string

// Member states.
const (
	// StateAlive: the member answers probes, or has not yet been found
	// unreachable.
	StateAlive State = "alive"
	// StateSuspect is memberlist's "unreachable, waiting for refutation"
	// state. memberlist v0.7.0 does not expose it (its Node.State is never
	// set), so suspect members are reported as StateAlive until declared
	// dead; the value is reserved for a memberlist that does.
	StateSuspect State = "suspect"
	// StateDead: the member was declared failed; the rejoin loop keeps
	// trying to reach it until ReapAfter.
	StateDead State = "dead"
	// StateLeft: the member left gracefully (called Leave); it is not
	// retried.
	StateLeft State = "left"
)

// Member is one node of the cluster as seen by this node. It is a value; the
// table it was copied from may change at any time.
type Member struct {
	// ID is the node's Config.NodeID.
	ID ulid.ULID `json:"id"`
	// PublicAddr and PrivateAddr are the node's Config values, as gossiped.
	PublicAddr  string `json:"public_addr"`
	PrivateAddr string `json:"private_addr"`
	// GossipAddr is the ip:port the node advertises for gossip.
	GossipAddr string `json:"gossip_addr"`
	// State is this node's current view of the member.
	State State `json:"state"`
	// Self marks the local node.
	Self bool `json:"self"`
	// Untrusted marks a member that gossip knows but that failed to
	// authenticate on the private API (its certificate or signature was
	// refused, or it refused ours): it is not a peer until it passes
	// (SetTrusted). Gossip alone proves nothing when it is not encrypted.
	Untrusted bool `json:"untrusted,omitempty"`
}

// EventType says what happened to a member.
type EventType int

// Event types.
const (
	// EventJoin: a member became alive: a new node, one returning after a
	// failure or partition, or one that restarted (it may repeat for the
	// same ID without an EventFail in between).
	EventJoin EventType = iota + 1
	// EventLeave: a member left gracefully. It may follow an EventFail for
	// the same member when the news of the leave arrived after the failure.
	EventLeave
	// EventFail: a member was declared dead.
	EventFail
	// EventUpdate: a member's metadata (addresses) changed.
	EventUpdate
)

// String returns "join", "leave", "fail" or "update".
func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventLeave:
		return "leave"
	case EventFail:
		return "fail"
	case EventUpdate:
		return "update"
	default:
		return "EventType(" + strconv.Itoa(int(t)) + ")"
	}
}

// Event is a change of one member, with the member as it was right after the
// change. Events are never emitted about the local node.
type Event struct {
	// Type says what happened.
	Type EventType
	// Member is the member after the change (State dead for EventFail,
	// left for EventLeave, alive otherwise).
	Member Member
}

// Membership is this node's view of the cluster, kept current by gossip and
// by a rejoin goroutine. Its methods are safe for concurrent use. The owner
// must Close it, and must drain Events if it calls Events at all.
type Membership struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	seeds  []string // normalized Config.Join
	selfID ulid.ULID
	boot   string // distinguishes this process's life from earlier ones with the same NodeID

	ml         *memberlist.Memberlist
	broadcasts *memberlist.TransmitLimitedQueue // our own gossip (leave intents)
	queue      *eventQueue
	events     chan Event

	mu      sync.Mutex // guards members
	members map[ulid.ULID]*entry
	alive   atomic.Int32 // alive members including self, for broadcast retransmit limits

	left atomic.Bool // Leave was called: stop rejoining

	lifeMu sync.Mutex // serializes Leave and Close: memberlist panics on Leave after Shutdown
	closed bool       // guarded by lifeMu

	stop chan struct{} // closed by Close: stops the goroutines below
	wg   sync.WaitGroup

	// Test observability.
	rejoinRounds  atomic.Int64 // completed rejoin loop iterations
	rejoinSuccess atomic.Int64 // rejoin attempts that contacted at least one node
}

// entry is one row of the member table.
type entry struct {
	m       Member
	boot    string    // from metadata; a new value means the node restarted
	leaving bool      // a leave intent arrived while it was alive
	since   time.Time // when m.State last changed
}

// Start creates the gossip listener, contacts the seeds once and starts the
// rejoin loop. Failing to reach any seed is not an error: it is logged, and
// the rejoin loop keeps trying. Start blocks while it resolves a host name
// AdvertiseAddr and contacts the seeds (up to memberlist's TCP timeout, 10s
// on LAN timings, per unreachable seed). The caller must Close the returned
// Membership.
func Start(cfg Config) (*Membership, error) {
	if cfg.NodeID == (ulid.ULID{}) {
		return nil, errors.New("cluster: start: NodeID is required")
	}
	switch len(cfg.Key) {
	case 0, 16, 24, 32:
	default:
		return nil, fmt.Errorf("cluster: start: gossip key is %d bytes, want 16, 24 or 32", len(cfg.Key))
	}
	if cfg.RejoinInterval < 0 || cfg.ReapAfter < 0 {
		return nil, errors.New("cluster: start: RejoinInterval and ReapAfter must not be negative")
	}
	if cfg.RejoinInterval == 0 {
		cfg.RejoinInterval = DefaultRejoinInterval
	}
	if cfg.ReapAfter == 0 {
		cfg.ReapAfter = DefaultReapAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	label := "objstore/" + cfg.Tag
	if len(label) > memberlist.LabelMaxSize {
		return nil, fmt.Errorf("cluster: start: tag is longer than %d bytes", memberlist.LabelMaxSize-len("objstore/"))
	}

	bindHost, bindPort, err := splitHostPortDefault(cfg.BindAddr, "0.0.0.0", DefaultGossipPort)
	if err != nil {
		return nil, fmt.Errorf("cluster: start: bind address: %w", err)
	}
	if net.ParseIP(bindHost) == nil {
		return nil, fmt.Errorf("cluster: start: bind address %q: host must be an IP", cfg.BindAddr)
	}
	var advHost string
	advPort := -1 // the bound port, known later
	if cfg.AdvertiseAddr != "" {
		advHost, advPort, err = splitHostPortDefault(cfg.AdvertiseAddr, "", -1)
		if err != nil {
			return nil, fmt.Errorf("cluster: start: advertise address: %w", err)
		}
		if advHost, err = resolveAdvertiseHost(advHost); err != nil {
			return nil, fmt.Errorf("cluster: start: advertise address %q: %w", cfg.AdvertiseAddr, err)
		}
	}

	m := &Membership{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "cluster", "node", cfg.NodeID.String()),
		now:     time.Now,
		selfID:  cfg.NodeID,
		boot:    ulid.Make().String(),
		queue:   newEventQueue(),
		events:  make(chan Event),
		members: make(map[ulid.ULID]*entry),
		stop:    make(chan struct{}),
	}
	if cfg.hooks != nil && cfg.hooks.now != nil {
		m.now = cfg.hooks.now
	}
	m.broadcasts = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return int(m.alive.Load()) },
		RetransmitMult: 4, // set again below from the memberlist config
	}

	meta, err := m.localMeta()
	if err != nil {
		return nil, fmt.Errorf("cluster: start: %w", err)
	}
	if len(meta) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("cluster: start: node metadata is %d bytes, limit %d (shorten the advertised addresses or tag)", len(meta), memberlist.MetaMaxSize)
	}

	mlog := newMemberlistLogger(cfg.Logger.With("component", "memberlist", "node", cfg.NodeID.String()))

	// We build the transport ourselves so that Close can cut off dials and
	// streams in flight: otherwise a rejoin against a blackholed address
	// would hold Close for a whole TCP timeout.
	var nt *memberlist.NetTransport
	for attempt := 0; ; attempt++ {
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{bindHost},
			BindPort:  bindPort,
			Logger:    mlog,
		})
		// With port 0 TCP picks the port and UDP may find it taken: retry,
		// as memberlist does.
		if err == nil || bindPort != 0 || attempt == 9 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: start: gossip transport: %w", err)
	}
	boundPort := nt.GetAutoBindPort()
	var transport memberlist.NodeAwareTransport = newClosingTransport(nt)
	if cfg.hooks != nil && cfg.hooks.wrapTransport != nil {
		transport = cfg.hooks.wrapTransport(transport)
	}

	m.seeds = normalizeSeeds(cfg.Join, seedDefaultPort(bindPort))

	var mc *memberlist.Config
	if cfg.Local {
		mc = memberlist.DefaultLocalConfig()
	} else {
		mc = memberlist.DefaultLANConfig()
	}
	mc.Name = cfg.NodeID.String()
	mc.Label = label
	mc.BindAddr = bindHost
	mc.BindPort = boundPort
	mc.AdvertisePort = boundPort
	if advHost != "" {
		mc.AdvertiseAddr = advHost
		if advPort != -1 {
			mc.AdvertisePort = advPort
		}
	}
	mc.Transport = transport
	// NodeIDs are persistent, so a dead member reappearing at another
	// address is that node restarted elsewhere (a new pod IP), not an
	// impostor: let it reclaim its name soon instead of being ignored until
	// memberlist forgets the dead entry (GossipToTheDeadTime, then a
	// push/pull interval: about a minute on LAN timings).
	mc.DeadNodeReclaimTime = mc.ProbeInterval
	switch {
	case cfg.Keyring != nil:
		mc.Keyring = cfg.Keyring.Gossip()
	case len(cfg.Key) > 0:
		mc.SecretKey = slices.Clone(cfg.Key)
	}
	encrypted := mc.Keyring != nil || len(mc.SecretKey) > 0
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = encrypted, encrypted
	d := &delegate{m: m}
	mc.Delegate = d
	mc.Alive = d
	mc.Merge = d
	mc.Events = &eventDelegate{m: m}
	mc.Logger = mlog
	if cfg.hooks != nil && cfg.hooks.tune != nil {
		cfg.hooks.tune(mc)
	}
	m.broadcasts.RetransmitMult = mc.RetransmitMult

	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = transport.Shutdown() // Create does not own it on failure
		return nil, fmt.Errorf("cluster: start: memberlist: %w", err)
	}
	m.ml = ml
	m.log.Info("gossip started", "gossip_addr", m.Self().GossipAddr, "tag", cfg.Tag,
		"encrypted", encrypted, "seeds", m.seeds)

	if seeds := m.seedsExceptSelf(); len(seeds) > 0 {
		n, err := ml.Join(seeds)
		switch peers := len(m.Peers()); {
		case err != nil:
			m.log.Warn("could not reach any seed; the rejoin loop keeps trying", "seeds", seeds, "err", err)
		case peers == 0:
			// E.g. the only seed that answered was ourselves by another name.
			m.log.Info("seeds reached but no other member yet; the rejoin loop keeps trying", "seeds", seeds)
		default:
			m.log.Info("joined cluster", "seeds_reached", n, "alive_peers", peers)
		}
	}

	m.wg.Add(2)
	go m.deliverEvents()
	go m.rejoinLoop()
	return m, nil
}

// localMeta encodes this node's gossip metadata.
func (m *Membership) localMeta() ([]byte, error) {
	return encodeMeta(nodeMeta{
		ID:      m.selfID.String(),
		Tag:     m.cfg.Tag,
		Public:  m.cfg.PublicAddr,
		Private: m.cfg.PrivateAddr,
		Boot:    m.boot,
	})
}

// Self returns the local member. It does not block.
func (m *Membership) Self() Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.members[m.selfID]; ok {
		return e.m
	}
	// Not yet told by memberlist (only possible inside Start).
	return Member{ID: m.selfID, PublicAddr: m.cfg.PublicAddr, PrivateAddr: m.cfg.PrivateAddr, State: StateAlive, Self: true}
}

// Members returns every member known, self included, alive or not: dead and
// left members stay until ReapAfter. Sorted by ID. States follow memberlist's
// notifications (alive, dead, left; see StateSuspect). It does not block.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	out := make([]Member, 0, len(m.members))
	for _, e := range m.members {
		out = append(out, e.m)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return a.ID.Compare(b.ID) })
	return out
}

// Peers returns the alive (and suspect) members other than self that are
// not untrusted, sorted by ID: the nodes worth sending requests to. It
// does not block.
func (m *Membership) Peers() []Member {
	return slices.DeleteFunc(m.Others(), func(mb Member) bool { return mb.Untrusted })
}

// Others returns the alive (and suspect) members other than self, trusted
// or not, sorted by ID: the ones to vet, and whose clocks count. It does
// not block.
func (m *Membership) Others() []Member {
	all := m.Members()
	out := all[:0]
	for _, mb := range all {
		if !mb.Self && (mb.State == StateAlive || mb.State == StateSuspect) {
			out = append(out, mb)
		}
	}
	return out
}

// SetTrusted marks a member as trusted or not (see Member.Untrusted); a
// member that rejoins starts trusted until vetted again. Unknown IDs are
// ignored.
func (m *Membership) SetTrusted(id ulid.ULID, trusted bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.members[id]; ok && !e.m.Self {
		e.m.Untrusted = !trusted
	}
}

// Member returns the member with the given ID, if known (in any state). It
// does not block.
func (m *Membership) Member(id ulid.ULID) (Member, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.members[id]
	if !ok {
		return Member{}, false
	}
	return e.m, true
}

// Events returns the channel of membership changes, in the order they
// happened. The same channel is returned on every call; it is closed by
// Close, and events not yet received then are dropped.
//
// Events are queued without bound so that gossip never waits for the
// receiver: the caller must keep draining the channel (a warning is logged
// as the backlog grows), or ignore it entirely and never call Events.
func (m *Membership) Events() <-chan Event {
	return m.events
}

// Leave announces a graceful departure: peers mark this node left (not
// dead) and do not try to rejoin it. It blocks until the news has been
// gossiped or timeout (<= 0 means DefaultLeaveTimeout) passes, and returns an
// error on timeout; peers then may see this node as dead instead. Gossip
// keeps running until Close, which should follow. Calling Leave again is a
// no-op; after Close it returns ErrClosed. A concurrent Close waits for
// Leave.
func (m *Membership) Leave(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultLeaveTimeout
	}
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.left.Swap(true) {
		return nil
	}
	start := time.Now()

	// memberlist's NotifyLeave does not say whether a node left or died
	// (Node.State is never set in v0.7.0), so first gossip our own leave
	// intent, and only then memberlist's leave: peers that got the intent
	// report the coming "dead" as left. Half the time for each step.
	if len(m.Peers()) > 0 {
		done := make(chan struct{}, 1)
		m.broadcasts.QueueBroadcast(&intentBroadcast{
			msg:    encodeIntent(leaveIntent{ID: m.selfID.String(), Boot: m.boot}),
			key:    m.selfID.String() + "/" + m.boot,
			notify: done,
		})
		select {
		case <-done:
		case <-time.After(timeout / 2):
			m.log.Warn("leave intent not fully gossiped in time; some peers may report this node dead", "timeout", timeout/2)
		}
	}
	err := m.ml.Leave(max(timeout-time.Since(start), timeout/2))

	m.mu.Lock()
	if e, ok := m.members[m.selfID]; ok && e.m.State != StateLeft {
		e.m.State, e.since = StateLeft, m.now()
	}
	m.refreshAliveLocked()
	m.mu.Unlock()

	if err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	m.log.Info("left cluster", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Close stops the rejoin loop and event delivery, shuts memberlist down
// without leaving (peers will declare this node dead unless Leave was called
// first), waits for its goroutines and closes the Events channel. It is
// idempotent; it blocks only briefly (in-flight gossip connections are cut).
func (m *Membership) Close() error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	close(m.stop)
	err := m.ml.Shutdown()
	m.queue.close()
	m.wg.Wait()
	if err != nil {
		return fmt.Errorf("cluster: close: %w", err)
	}
	return nil
}

// rejoinLoop runs until Close: every RejoinInterval it reaps old members and
// rejoins missing ones.
func (m *Membership) rejoinLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		m.reap()
		if !m.left.Load() {
			m.rejoin()
		}
		m.rejoinRounds.Add(1)
	}
}

// rejoin contacts dead members, and the seeds if no peer is alive.
// memberlist stops gossiping to a dead node after GossipToTheDeadTime and then
// forgets it, so without this a partition longer than that would leave two
// clusters for good. Left members are not contacted: they come back, if
// ever, through their own seeds.
func (m *Membership) rejoin() {
	var targets []string
	seen := make(map[string]bool)
	add := func(addr string) {
		if addr != "" && !seen[addr] {
			seen[addr] = true
			targets = append(targets, addr)
		}
	}
	m.mu.Lock()
	alivePeers := 0
	for _, e := range m.members {
		switch {
		case e.m.Self:
		case e.m.State == StateDead:
			add(e.m.GossipAddr)
		case e.m.State == StateAlive || e.m.State == StateSuspect:
			alivePeers++
		}
	}
	m.mu.Unlock()
	if alivePeers == 0 {
		for _, s := range m.seedsExceptSelf() {
			add(s)
		}
	}
	if len(targets) == 0 {
		return
	}
	n, err := m.ml.Join(targets)
	if err != nil {
		m.log.Debug("rejoin failed", "targets", targets, "err", err)
		return
	}
	m.rejoinSuccess.Add(1)
	// Reaching a node is not news by itself (a seed may be ourselves under
	// another name); finding new alive peers is.
	if now := len(m.Peers()); now > alivePeers {
		m.log.Info("rejoined", "targets", targets, "reached", n, "alive_peers", now)
	} else {
		m.log.Debug("rejoin reached nodes but found no new peer", "targets", targets, "reached", n)
	}
}

// reap forgets dead and left members older than ReapAfter.
func (m *Membership) reap() {
	now := m.now()
	m.mu.Lock()
	var reaped []Member
	for id, e := range m.members {
		if !e.m.Self && (e.m.State == StateDead || e.m.State == StateLeft) && now.Sub(e.since) > m.cfg.ReapAfter {
			delete(m.members, id)
			reaped = append(reaped, e.m)
		}
	}
	m.mu.Unlock()
	for _, mb := range reaped {
		m.log.Info("forgetting member", "member", mb.ID.String(), "state", mb.State, "after", m.cfg.ReapAfter)
	}
}

// seedsExceptSelf returns the seeds minus our own gossip address, which
// would always "succeed" and hide that we are alone. A seed given by name
// is looked up each time and stands for every address it resolves to (a
// Kubernetes headless service names every pod of a StatefulSet), so that
// our own address among them is dropped too; a name that does not resolve
// is kept, for memberlist to report.
func (m *Membership) seedsExceptSelf() []string {
	self := m.Self().GossipAddr
	out := make([]string, 0, len(m.seeds))
	for _, s := range m.seeds {
		for _, a := range m.resolveSeed(s) {
			if a != self && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// seedLookupTimeout bounds the DNS lookup of one seed name.
const seedLookupTimeout = 2 * time.Second

// resolveSeed returns the ip:port addresses seed ("host:port") stands for:
// itself for an IP, every address of a name, or the name itself when it
// does not resolve.
func (m *Membership) resolveSeed(seed string) []string {
	host, port, err := net.SplitHostPort(seed)
	if err != nil || net.ParseIP(host) != nil {
		return []string{seed}
	}
	ctx, cancel := context.WithTimeout(context.Background(), seedLookupTimeout)
	defer cancel()
	r := net.DefaultResolver
	if m.cfg.hooks != nil && m.cfg.hooks.resolver != nil {
		r = m.cfg.hooks.resolver
	}
	ips, err := r.LookupIPAddr(ctx, host)
	if err != nil || len(ips) == 0 {
		return []string{seed}
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.IP.String(), port))
	}
	return out
}

// SeedsAreSelf reports whether seeds were given but none of them is
// another node: every one resolves to this node's own gossip address (the
// first pod of a StatefulSet, which its headless service names alone).
func (m *Membership) SeedsAreSelf() bool {
	return len(m.seeds) > 0 && len(m.seedsExceptSelf()) == 0
}

// refreshAliveLocked recounts alive members (self included) for the
// broadcast queue. Caller holds m.mu.
func (m *Membership) refreshAliveLocked() {
	n := 0
	for _, e := range m.members {
		if e.m.State == StateAlive || e.m.State == StateSuspect {
			n++
		}
	}
	m.alive.Store(int32(n))
}

// emitLocked queues an event. Caller holds m.mu, so events are queued in the
// same order as the table changes they describe.
func (m *Membership) emitLocked(t EventType, mb Member) {
	if mb.Self {
		return
	}
	if n, grew := m.queue.push(Event{Type: t, Member: mb}); grew {
		// Logging under m.mu is acceptable here: it happens once per
		// doubling of the backlog.
		m.log.Warn("membership events are not being drained", "queued", n)
	}
}

// deliverEvents moves queued events to the Events channel until Close.
func (m *Membership) deliverEvents() {
	defer m.wg.Done()
	defer close(m.events)
	for {
		batch := m.queue.take()
		for _, ev := range batch {
			select {
			case m.events <- ev:
			case <-m.stop:
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-m.queue.wake:
		case <-m.stop:
			return
		}
	}
}

// resolveAdvertiseHost returns host if it is an IP, else its first IPv4
// address, else its first address.
func resolveAdvertiseHost(host string) (string, error) {
	if net.ParseIP(host) != nil {
		return host, nil
	}
	if host == "" {
		return "", errors.New("no host")
	}
	ctx, cancel := context.WithTimeout(context.Background(), advertiseLookupTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return "", fmt.Errorf("resolve: %w", err)
	}
	for _, a := range addrs {
		if a.IP.To4() != nil {
			return a.IP.String(), nil
		}
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("resolve %q: no addresses", host)
	}
	return addrs[0].IP.String(), nil
}

// advertiseLookupTimeout bounds Start's lookup of a host name AdvertiseAddr.
const advertiseLookupTimeout = 10 * time.Second

// splitHostPortDefault splits "host[:port]", filling in defaults for a
// missing host or port.
func splitHostPortDefault(addr, defHost string, defPort int) (string, int, error) {
	if addr == "" {
		return defHost, defPort, nil
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		// No port: a bare host or IP (IPv6 possibly in brackets).
		host, portStr = addr, ""
		if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
			host = host[1 : len(host)-1]
		}
	}
	if host == "" {
		host = defHost
	}
	port := defPort
	if portStr != "" {
		port, err = strconv.Atoi(portStr)
		if err != nil || port < 0 || port > 65535 {
			return "", 0, fmt.Errorf("invalid port in %q", addr)
		}
	}
	return host, port, nil
}

// seedDefaultPort is the port assumed for seeds given without one.
func seedDefaultPort(bindPort int) int {
	if bindPort != 0 {
		return bindPort
	}
	return DefaultGossipPort
}

// normalizeSeeds turns "host" and "host:port" into "host:port", dropping
// empty and duplicate entries.
func normalizeSeeds(seeds []string, defPort int) []string {
	var out []string
	for _, s := range seeds {
		if s == "" {
			continue
		}
		host, port, err := splitHostPortDefault(s, "", defPort)
		if err != nil || host == "" {
			// Let memberlist report it on every attempt rather than
			// dropping the operator's input silently.
			out = append(out, s)
			continue
		}
		hp := net.JoinHostPort(host, strconv.Itoa(port))
		if !slices.Contains(out, hp) {
			out = append(out, hp)
		}
	}
	return out
}
