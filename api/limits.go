package api

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// What one client can hold of a node is bounded: connections (in all and
// per client address), how long a request's headers may take (the
// server's ReadHeaderTimeout), and how slowly its body may arrive.

// Limits bounds what clients can hold of a server. Zero fields take the
// defaults documented on each.
type Limits struct {
	// MaxConns bounds the open connections; zero means 10000.
	MaxConns int
	// MaxConnsPerClient bounds the open connections from one IP address;
	// zero means 512.
	MaxConnsPerClient int
	// MinBodyRate is the slowest a request body may arrive, in bytes per
	// second, averaged over BodyWindow; zero means 16 KiB/s.
	MinBodyRate int64
	// BodyWindow is the span over which MinBodyRate is judged; zero means
	// 10s. A body that sends nothing for a whole window is cut off.
	BodyWindow time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxConns <= 0 {
		l.MaxConns = 10000
	}
	if l.MaxConnsPerClient <= 0 {
		l.MaxConnsPerClient = 512
	}
	if l.MinBodyRate <= 0 {
		l.MinBodyRate = 16 << 10
	}
	if l.BodyWindow <= 0 {
		l.BodyWindow = 10 * time.Second
	}
	return l
}

// LimitListener wraps a TCP listener so that a connection beyond
// MaxConns, or beyond MaxConnsPerClient from one address, is turned away at
// once (with a 503 when answerHTTP is set, as for a plain HTTP listener)
// instead of waiting: one client opening connections by the thousand
// cannot keep others out. Wrap the TCP listener, under any TLS.
func LimitListener(ln net.Listener, l Limits, answerHTTP bool, log *slog.Logger) net.Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &limitListener{Listener: ln, l: l.withDefaults(), answer: answerHTTP, log: log, per: make(map[string]int)}
}

type limitListener struct {
	net.Listener
	l      Limits
	answer bool
	log    *slog.Logger

	mu      sync.Mutex // guards total and per
	total   int
	per     map[string]int
	refused atomic.Int64
}

func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		ll.mu.Lock()
		ok := ll.total < ll.l.MaxConns && ll.per[host] < ll.l.MaxConnsPerClient
		if ok {
			ll.total++
			ll.per[host]++
		}
		ll.mu.Unlock()
		if ok {
			return &limitedConn{Conn: c, ll: ll, host: host}, nil
		}
		if n := ll.refused.Add(1); n&(n-1) == 0 { // log at 1, 2, 4, 8...
			ll.log.Warn("connection refused: too many open", "client", host, "refused_so_far", n,
				"max_conns", ll.l.MaxConns, "max_conns_per_client", ll.l.MaxConnsPerClient)
		}
		if ll.answer {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 29\r\n\r\ntoo many connections; retry.\n")
		}
		c.Close()
	}
}

type limitedConn struct {
	net.Conn
	ll   *limitListener
	host string
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() {
		c.ll.mu.Lock()
		c.ll.total--
		if c.ll.per[c.host]--; c.ll.per[c.host] <= 0 {
			delete(c.ll.per, c.host)
		}
		c.ll.mu.Unlock()
	})
	return c.Conn.Close()
}

// ErrSlowBody is returned, wrapped, by a request body that arrives slower
// than the minimum rate; the client gets 408.
// ErrSlowBody is the error a request body read under BodyRate fails with
// when the client sends slower than the minimum rate.
var ErrSlowBody = errors.New("request body too slow")

// rateBody enforces the minimum rate on a request body, counting only the
// time spent waiting for the client inside Read: time the server spends
// elsewhere (waiting for an upload slot, a lock, the remote) is not the
// client's fault. A window's worth of waiting must bring at least
// MinBodyRate × BodyWindow bytes; each Read's deadline is what is left of
// that budget.
type rateBody struct {
	io.ReadCloser
	ctl     *http.ResponseController
	need    int64 // bytes per window
	window  time.Duration
	got     int64         // bytes in this window
	blocked time.Duration // time waited in Read in this window
	noDeadl bool          // the writer does not support deadlines
}

func newRateBody(w http.ResponseWriter, body io.ReadCloser, l Limits) io.ReadCloser {
	return &rateBody{ReadCloser: body, ctl: http.NewResponseController(w),
		need: l.MinBodyRate * int64(l.BodyWindow/time.Second), window: l.BodyWindow}
}

func (b *rateBody) Read(p []byte) (int, error) {
	if b.noDeadl {
		return b.ReadCloser.Read(p)
	}
	start := time.Now()
	if err := b.ctl.SetReadDeadline(start.Add(b.window - b.blocked)); err != nil {
		b.noDeadl = true // a writer without deadlines (tests): nothing to enforce
		return b.ReadCloser.Read(p)
	}
	n, err := b.ReadCloser.Read(p)
	b.blocked += time.Since(start)
	b.got += int64(n)
	if b.got >= b.need {
		b.got, b.blocked = 0, 0
	}
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return n, fmt.Errorf("%w: less than %d bytes in %v of waiting", ErrSlowBody, b.need, b.window)
	}
	// Between reads the server may take its time: no deadline is left set
	// that would count it against the client.
	b.ctl.SetReadDeadline(time.Time{})
	return n, err
}
