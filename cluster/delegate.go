package cluster

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
	"github.com/oklog/ulid/v2"
)

// Wire formats. Each starts with a version or type byte, then JSON, so that a
// later release can add fields (old readers ignore them) or message types
// (old readers drop them).

// metaVersion is the first byte of the node metadata.
const metaVersion byte = 1

// nodeMeta is the gossip metadata of a node (memberlist Node.Meta).
type nodeMeta struct {
	ID      string `json:"id"`
	Tag     string `json:"tag"`
	Public  string `json:"public,omitempty"`
	Private string `json:"private,omitempty"`
	// Boot identifies one run of the node's process, so that news about an
	// earlier run (a leave) is not applied to the current one.
	Boot string `json:"boot,omitempty"`
}

func encodeMeta(nm nodeMeta) ([]byte, error) {
	b, err := json.Marshal(nm)
	if err != nil {
		return nil, fmt.Errorf("encode node metadata: %w", err)
	}
	return append([]byte{metaVersion}, b...), nil
}

// decodeMeta reads metadata leniently: any version from 1 up is read for the
// fields this release knows, unknown fields are ignored.
func decodeMeta(b []byte) (nodeMeta, error) {
	var nm nodeMeta
	if len(b) == 0 {
		return nm, errors.New("no node metadata")
	}
	if b[0] == 0 {
		return nm, errors.New("node metadata version 0 is not supported")
	}
	if err := json.Unmarshal(b[1:], &nm); err != nil {
		return nm, fmt.Errorf("decode node metadata (version %d): %w", b[0], err)
	}
	return nm, nil
}

// User message types (memberlist NotifyMsg / GetBroadcasts).
const msgLeaveIntent byte = 1

// leaveIntent says that run Boot of node ID is leaving on purpose.
type leaveIntent struct {
	ID   string `json:"id"`
	Boot string `json:"boot"`
}

func encodeIntent(li leaveIntent) []byte {
	b, _ := json.Marshal(li) // two strings: cannot fail
	return append([]byte{msgLeaveIntent}, b...)
}

// stateVersion is the first byte of our push/pull state.
const stateVersion byte = 1

// pushState is exchanged in memberlist's push/pull (anti-entropy): the
// members we know left, so a node that missed the leave intent reports them
// left rather than dead.
type pushState struct {
	Left []leaveIntent `json:"left,omitempty"`
}

// intentBroadcast is one of our gossip messages in the TransmitLimitedQueue.
type intentBroadcast struct {
	msg    []byte
	key    string        // id/boot: a newer message about the same run replaces this one
	notify chan struct{} // optional, buffered: signalled when sent often enough or replaced
}

func (b *intentBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*intentBroadcast)
	return ok && o.key == b.key
}

func (b *intentBroadcast) Message() []byte { return b.msg }

func (b *intentBroadcast) Finished() {
	if b.notify != nil {
		select {
		case b.notify <- struct{}{}:
		default:
		}
	}
}

// delegate adapts Membership to memberlist's Delegate, AliveDelegate and
// MergeDelegate. memberlist calls these from its gossip goroutines, some with
// its node lock held: they must not block and must not call back into
// memberlist.
type delegate struct{ m *Membership }

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.AliveDelegate = (*delegate)(nil)
	_ memberlist.MergeDelegate = (*delegate)(nil)
)

func (d *delegate) NodeMeta(limit int) []byte {
	b, err := d.m.localMeta()
	if err != nil || len(b) > limit {
		// Start checked both; an empty meta would make peers refuse us,
		// which is loud, rather than memberlist panicking.
		d.m.log.Error("cannot advertise node metadata", "err", err, "size", len(b), "limit", limit)
		return nil
	}
	return b
}

func (d *delegate) NotifyMsg(b []byte) {
	if len(b) == 0 {
		return
	}
	switch b[0] {
	case msgLeaveIntent:
		var li leaveIntent
		if err := json.Unmarshal(b[1:], &li); err != nil {
			d.m.log.Debug("dropping malformed leave intent", "err", err)
			return
		}
		if d.m.applyLeaveIntent(li) {
			// Pass news on, as memberlist does with its own messages:
			// the leaver only reaches a few nodes directly.
			d.m.broadcasts.QueueBroadcast(&intentBroadcast{msg: encodeIntent(li), key: li.ID + "/" + li.Boot})
		}
	default:
		// A newer release's message: ignore.
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.m.broadcasts.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(join bool) []byte {
	var ps pushState
	d.m.mu.Lock()
	for id, e := range d.m.members {
		if e.m.State == StateLeft {
			ps.Left = append(ps.Left, leaveIntent{ID: id.String(), Boot: e.boot})
		}
	}
	d.m.mu.Unlock()
	b, err := json.Marshal(ps)
	if err != nil {
		d.m.log.Error("encode push/pull state", "err", err)
		return nil
	}
	return append([]byte{stateVersion}, b...)
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	if len(buf) == 0 {
		return
	}
	if buf[0] == 0 {
		d.m.log.Debug("ignoring push/pull state of unknown version 0")
		return
	}
	var ps pushState
	if err := json.Unmarshal(buf[1:], &ps); err != nil {
		d.m.log.Debug("ignoring malformed push/pull state", "err", err)
		return
	}
	for _, li := range ps.Left {
		d.m.applyLeaveIntent(li)
	}
}

// NotifyAlive refuses alive messages from nodes outside our cluster. The
// packet label already keeps most of them out; this catches a peer whose
// label was configured to match but whose tag does not.
func (d *delegate) NotifyAlive(peer *memberlist.Node) error {
	_, _, err := d.m.checkPeer(peer)
	return err
}

// NotifyMerge cancels a join (in either direction) if the other side knows
// any node outside our cluster.
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if _, _, err := d.m.checkPeer(p); err != nil {
			return fmt.Errorf("refusing merge: %w", err)
		}
	}
	return nil
}

// eventDelegate adapts Membership to memberlist's EventDelegate. memberlist
// calls it one event at a time, with its node lock held.
type eventDelegate struct{ m *Membership }

var _ memberlist.EventDelegate = (*eventDelegate)(nil)

func (e *eventDelegate) NotifyJoin(n *memberlist.Node)   { e.m.nodeAlive(n, true) }
func (e *eventDelegate) NotifyUpdate(n *memberlist.Node) { e.m.nodeAlive(n, false) }
func (e *eventDelegate) NotifyLeave(n *memberlist.Node)  { e.m.nodeGone(n) }

// checkPeer validates a node's name and metadata against our cluster.
func (m *Membership) checkPeer(n *memberlist.Node) (ulid.ULID, nodeMeta, error) {
	id, err := ulid.ParseStrict(n.Name)
	if err != nil {
		return id, nodeMeta{}, fmt.Errorf("node name %q is not a ULID: %w", n.Name, err)
	}
	nm, err := decodeMeta(n.Meta)
	if err != nil {
		return id, nm, fmt.Errorf("node %s: %w", n.Name, err)
	}
	if nm.ID != n.Name {
		return id, nm, fmt.Errorf("node %s: metadata names node %q", n.Name, nm.ID)
	}
	if nm.Tag != m.cfg.Tag {
		return id, nm, fmt.Errorf("node %s: belongs to cluster tag %q, not %q", n.Name, nm.Tag, m.cfg.Tag)
	}
	return id, nm, nil
}

// nodeAlive records a node memberlist reports alive (joined) or changed.
func (m *Membership) nodeAlive(n *memberlist.Node, joined bool) {
	id, nm, err := m.checkPeer(n)
	if err != nil {
		// NotifyAlive let it through, so this cannot happen.
		m.log.Warn("ignoring member with bad metadata", "err", err)
		return
	}
	mb := Member{
		ID:          id,
		PublicAddr:  nm.Public,
		PrivateAddr: nm.Private,
		GossipAddr:  n.Address(),
		State:       StateAlive,
		Self:        id == m.selfID,
	}
	now := m.now()

	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.refreshAliveLocked()
	e, ok := m.members[id]
	switch {
	case !ok:
		m.members[id] = &entry{m: mb, boot: nm.Boot, since: now}
		m.emitLocked(EventJoin, mb)
	case joined || e.m.State != StateAlive || e.boot != nm.Boot:
		// Back from dead or left, or restarted before anyone noticed it
		// was gone (memberlist reports that as a metadata update).
		if e.boot != nm.Boot {
			e.leaving = false
		}
		e.m, e.boot, e.since = mb, nm.Boot, now
		m.emitLocked(EventJoin, mb)
	case e.m != mb:
		mb.Untrusted = e.m.Untrusted // vetted again on join, not on updates
		if e.m != mb {
			e.m = mb
			m.emitLocked(EventUpdate, mb)
		}
	}
}

// nodeGone records a node memberlist reports dead or left.
func (m *Membership) nodeGone(n *memberlist.Node) {
	id, err := ulid.ParseStrict(n.Name)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.members[id]
	if !ok {
		return
	}
	// n.State is StateAlive in memberlist v0.7.0 whatever happened; it is
	// honoured in case a later release fills it in. The leave intent is what
	// tells a leave from a failure today.
	state := StateDead
	if n.State == memberlist.StateLeft || e.leaving || (id == m.selfID && m.left.Load()) {
		state = StateLeft
	}
	if e.m.State == state {
		return
	}
	e.m.State, e.since = state, m.now()
	m.refreshAliveLocked()
	if state == StateLeft {
		m.emitLocked(EventLeave, e.m)
	} else {
		m.emitLocked(EventFail, e.m)
	}
}

// applyLeaveIntent records that a node's run is leaving (or left) on
// purpose and reports whether that was news. A dead member becomes left,
// with an EventLeave, when the intent arrives after the failure was noticed.
func (m *Membership) applyLeaveIntent(li leaveIntent) bool {
	id, err := ulid.ParseStrict(li.ID)
	if err != nil || id == m.selfID {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.members[id]
	if !ok || e.boot != li.Boot {
		return false
	}
	switch e.m.State {
	case StateAlive, StateSuspect:
		if e.leaving {
			return false
		}
		e.leaving = true
		return true
	case StateDead:
		e.m.State, e.since = StateLeft, m.now()
		m.emitLocked(EventLeave, e.m)
		return true
	default:
		return false
	}
}
