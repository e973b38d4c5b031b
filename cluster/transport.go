package cluster

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// closingTransport is memberlist's NetTransport with outbound streams that
// Shutdown cuts off: memberlist's own Shutdown does not interrupt a dial or a
// push/pull in flight, which would hold Close for up to a TCP timeout while
// the rejoin loop talks to an unreachable node.
type closingTransport struct {
	*memberlist.NetTransport
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // guards conns and closed
	conns  map[*trackedConn]struct{}
	closed bool
}

var _ memberlist.NodeAwareTransport = (*closingTransport)(nil)

func newClosingTransport(nt *memberlist.NetTransport) *closingTransport {
	ctx, cancel := context.WithCancel(context.Background())
	return &closingTransport{NetTransport: nt, ctx: ctx, cancel: cancel, conns: make(map[*trackedConn]struct{})}
}

var errTransportClosed = errors.New("gossip transport shut down")

// DialAddressTimeout dials like NetTransport, but cancellably.
func (t *closingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(t.ctx, "tcp", a.Addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, t: t}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = c.Close()
		return nil, errTransportClosed
	}
	t.conns[tc] = struct{}{}
	return tc, nil
}

// DialTimeout dials like NetTransport, but cancellably.
func (t *closingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// Shutdown cancels dials, closes outbound streams, then shuts the listeners.
func (t *closingTransport) Shutdown() error {
	t.cancel()
	t.mu.Lock()
	t.closed = true
	conns := t.conns
	t.conns = nil
	t.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
	return t.NetTransport.Shutdown()
}

// trackedConn removes itself from its transport's set when closed.
type trackedConn struct {
	net.Conn
	t *closingTransport
}

func (c *trackedConn) Close() error {
	c.t.mu.Lock()
	delete(c.t.conns, c)
	c.t.mu.Unlock()
	return c.Conn.Close()
}
