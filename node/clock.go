package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/objstore/objstore/cluster"
)

// This file keeps the node's clock honest against its peers'. Every answer
// of the private API carries the answering node's clock (cluster.HeaderTime);
// the calling node turns it into an offset, with the round trip as its
// uncertainty (Cristian's algorithm). A node whose clock is further than
// MaxClockOffset from most of the peers it has measured refuses writes,
// since the cluster would refuse (or be misled by) the versions it stamps.

const (
	// clockProbeInterval is how often the node measures every live
	// peer's clock when no other private call has done so.
	clockProbeInterval = 5 * time.Second
	// clockSampleTTL is how long a measurement counts.
	clockSampleTTL = 4 * clockProbeInterval
)

// clockSample is one measurement of a peer's clock against this node's.
type clockSample struct {
	offset      time.Duration // the peer's clock minus this node's
	uncertainty time.Duration // half the round trip
	at          time.Time     // when it was taken, by this node's clock
}

// clockState holds the latest measurement of each peer, by private address.
type clockState struct {
	mu      sync.Mutex // guards samples
	samples map[string]clockSample
}

// observeClock records a measurement of the peer at addr; it is
// cluster.ClientConfig.OnClock.
func (n *Node) observeClock(addr string, offset, rtt time.Duration) {
	n.clocks.mu.Lock()
	n.clocks.samples[addr] = clockSample{offset: offset, uncertainty: rtt / 2, at: n.physicalNow()}
	n.clocks.mu.Unlock()
}

// physicalNow is the node's physical clock, the one behind its hybrid
// logical clock.
func (n *Node) physicalNow() time.Time {
	if n.cfg.Now != nil {
		return n.cfg.Now()
	}
	return time.Now()
}

// ClockOffsets returns the latest measured offset of each live peer's clock
// from this node's, by peer ID; peers not measured recently are left out.
func (n *Node) ClockOffsets() map[string]time.Duration {
	out := map[string]time.Duration{}
	if n.cl == nil || n.cl.members == nil {
		return out
	}
	now := n.physicalNow()
	n.clocks.mu.Lock()
	defer n.clocks.mu.Unlock()
	for _, p := range n.cl.members.Peers() {
		if s, ok := n.clocks.samples[p.PrivateAddr]; ok && now.Sub(s.at) < clockSampleTTL {
			out[p.ID.String()] = s.offset
		}
	}
	return out
}

// checkClock fails with ErrUnavailable when this node's clock is further
// than MaxClockOffset from the clocks of more than half of its live members,
// as measured recently. Only an offset beyond the measurement's own
// uncertainty counts, and a peer not measured yet counts as agreeing, so
// one skewed peer never stops a healthy majority.
func (n *Node) checkClock() error {
	if n.cfg.MaxClockOffset < 0 || n.cl == nil || n.cl.members == nil {
		return nil
	}
	now := n.physicalNow()
	var far int
	var worst time.Duration
	// Every live member counts, trusted or not: peers that refuse this
	// node because its clock is off are exactly the ones to count.
	peers := n.cl.members.Others()
	n.clocks.mu.Lock()
	for _, p := range peers {
		s, ok := n.clocks.samples[p.PrivateAddr]
		if !ok || now.Sub(s.at) >= clockSampleTTL {
			continue
		}
		if d := s.offset.Abs() - s.uncertainty; d > n.cfg.MaxClockOffset {
			far++
			if s.offset.Abs() > worst.Abs() {
				worst = s.offset
			}
		}
	}
	n.clocks.mu.Unlock()
	if 2*far <= len(peers) {
		return nil
	}
	return safeErrorf(ErrUnavailable, "this node's clock is %v away from the clocks of %d of its %d peers (the limit is %v); it refuses writes until its clock is fixed",
		worst.Abs().Round(time.Millisecond), far, len(peers), n.cfg.MaxClockOffset)
}

// clockLoop measures every live peer's clock every clockProbeInterval.
func (n *Node) clockLoop() {
	defer n.wg.Done()
	n.probeClocks()
	tick := time.NewTicker(clockProbeInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
			n.probeClocks()
		}
	}
}

// probeClocks pings every live member at once, trusted or not; each
// answer is a measurement of its clock (the client reports it through
// observeClock) and vets the member (vet).
func (n *Node) probeClocks() {
	ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
	defer cancel()
	eachPeer(n.cl.members.Others(), func(_ int, p cluster.Member) { n.vet(ctx, p) })
}

// vet pings a member over the private API and decides whether it is a
// peer: one that answers as the node gossip says it is is trusted; one that
// fails to authenticate (its certificate or signature refused, or ours),
// or answers as another node, is not, until a later ping passes. A member
// that cannot be reached is left as it is: gossip judges that. It reports
// whether the member is trusted now.
func (n *Node) vet(ctx context.Context, p cluster.Member) bool {
	id, err := n.cl.client.Peer(p.PrivateAddr).Ping(ctx)
	switch {
	case err == nil && id == p.ID:
		if p.Untrusted {
			n.log.Info("member authenticated; it is a peer again", "peer", p.ID, "private_addr", p.PrivateAddr)
			n.cl.members.SetTrusted(p.ID, true)
		}
		return true
	case err == nil || errors.Is(err, cluster.ErrUntrusted):
		if !p.Untrusted {
			if err == nil {
				err = fmt.Errorf("it answers as node %s", id)
			}
			n.log.Warn("member failed to authenticate on the private API; it is not a peer until it does",
				"peer", p.ID, "private_addr", p.PrivateAddr, "err", err)
			n.cl.members.SetTrusted(p.ID, false)
		}
		return false
	case !errors.Is(err, context.Canceled):
		n.log.Debug("clock probe failed", "peer", p.ID, "err", err)
	}
	return !p.Untrusted
}

// safeError is an error whose message is meant for clients as it is, even
// for a server-side failure: it says what failed without internal details.
// It matches its kind with errors.Is.
type safeError struct {
	kind error
	msg  string
}

func (e *safeError) Error() string { return e.msg }
func (e *safeError) Unwrap() error { return e.kind }

func safeErrorf(kind error, format string, args ...any) error {
	return &safeError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// PublicMessage returns what a client may be told of err when the server
// is at fault: the message of a deliberately client-safe error in its
// chain, or else only the text of its kind, never paths, addresses or the
// remote's own words.
func PublicMessage(err error) string {
	var se *safeError
	if errors.As(err, &se) {
		return se.msg
	}
	for _, kind := range []error{ErrRemoteUnavailable, ErrRemote, ErrNoSpace, ErrUnavailable, ErrClosed} {
		if errors.Is(err, kind) {
			return kind.Error()
		}
	}
	return "internal error"
}
