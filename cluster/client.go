package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/journal"
)

// Paths of the private API, served on --private-addr only.
const (
	PathPing       = "/private/v1/ping"
	PathNodes      = "/private/v1/nodes"
	PathAnnounce   = "/private/v1/announce"
	PathTree       = "/private/v1/sync/tree"
	PathSummaries  = "/private/v1/sync/summaries"
	PathEntries    = "/private/v1/sync/entries"
	PathGet        = "/private/v1/get/"
	PathInvalidate = "/private/v1/invalidate/"
	// PathInvalidateKeys drops the copies of origin keys (one, or all
	// under a prefix) on the node called.
	PathInvalidateKeys = "/private/v1/invalidate-keys"
	PathPrewarm        = "/private/v1/prewarm"
	PathStatus         = "/private/v1/status"
	PathKeyring        = "/private/v1/keyring"
	// PathKey serves a key-addressed object to the node that routed its
	// fill to this one (the owner, see Owner), fetching it first if
	// need be; ?bucket= and ?key= name it.
	PathKey = "/private/v1/key"
)

// HeaderLastSync carries, on private requests, when the sending node last
// completed anti-entropy (Unix nanoseconds).
const HeaderLastSync = "X-Objstore-Last-Sync"

// Headers of a private get's answer: the served body's checksum and
// version, so the reader can refuse a body that is not the one it wants
// before streaming it.
const (
	HeaderSHA256  = "X-Meta-SHA256"
	HeaderVersion = "X-Meta-Version"
	// HeaderEntry carries, on a PathKey answer, the serving node's journal
	// entry of the object (EncodeEntryHeader), which the asker adopts.
	HeaderEntry = "X-Objstore-Entry"
	// HeaderAbsent marks a PathKey 404 that means the object does not
	// exist (the serving node looked), as opposed to a 404 from a node
	// that does not know the route.
	HeaderAbsent = "X-Objstore-Absent"
)

// ErrPeer is returned, wrapped, when a peer answers a private call with an
// error or cannot be reached.
var ErrPeer = errors.New("peer failed")

// ErrUntrusted is returned, wrapped, when a peer and this node do not
// authenticate each other: the peer refused this node's signature or
// certificate (401, or a TLS alert), or presented a certificate this node
// refuses. Unlike a peer that is down, it will not get better by itself.
var ErrUntrusted = errors.New("peer not authenticated")

// ErrAbsent is returned, wrapped, when a peer answers that the object
// asked for does not exist (404): it looked, which is an answer, not a
// failure to be routed around.
var ErrAbsent = errors.New("peer: no such object")

// ErrMisdirected is returned, wrapped, when a peer refuses a fill routed
// to it because its own fill of the object is routed elsewhere (421), as
// happens while two nodes' views of the members differ: the asker fetches
// the object itself.
var ErrMisdirected = errors.New("peer: not the owner")

// ClientConfig configures a Client.
type ClientConfig struct {
	// CallTimeout bounds a metadata call (announce, sync); zero means 30s.
	CallTimeout time.Duration
	// DialTimeout bounds connecting to a peer; zero means 2s, so a request
	// to a peer that is down fails fast rather than hanging.
	DialTimeout time.Duration
	// HeaderTimeout bounds the wait for a body's response headers; zero
	// means 10s. The body itself streams for as long as it takes.
	HeaderTimeout time.Duration
	// Auth signs requests and checks answers (and makes the client speak
	// mutual TLS when it has certificates); nil means neither.
	Auth *Auth
	// OnClock, when set, receives every answer's measurement of the
	// peer's clock: its offset from Auth's clock (or time.Now) and the
	// round trip it was measured over.
	OnClock func(addr string, offset, rtt time.Duration)
	// LastSync, when set, says when this node last completed anti-entropy;
	// every request carries it (HeaderLastSync), so peers can refuse the
	// entries of a node away for longer than their tombstone retention.
	LastSync func() time.Time
	// WrapTransport, when set, wraps the client's transport, for tests
	// that watch or replay what goes on the wire.
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// Client calls peers' private APIs. It is safe for concurrent use and
// counts the bytes it moves, for measurements.
type Client struct {
	hc       *http.Client
	timeout  time.Duration
	auth     *Auth
	onClock  func(addr string, offset, rtt time.Duration)
	lastSync func() time.Time
	sent     atomic.Int64
	recv     atomic.Int64
}

// NewClient returns a Client.
func NewClient(cfg ClientConfig) *Client {
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = 10 * time.Second
	}
	if cfg.Auth == nil {
		cfg.Auth = &Auth{}
	}
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.HeaderTimeout,
	}
	if certs := cfg.Auth.TLS; certs != nil {
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialTLS(ctx, dialer, certs, network, addr)
		}
	}
	var rt http.RoundTripper = tr
	if cfg.WrapTransport != nil {
		rt = cfg.WrapTransport(tr)
	}
	return &Client{hc: &http.Client{Transport: rt}, timeout: cfg.CallTimeout, auth: cfg.Auth, onClock: cfg.OnClock, lastSync: cfg.LastSync}
}

// dialTLS connects to a peer with mutual TLS, checking that the peer's
// certificate covers the host dialled (an IP or a name), which is the
// private address the peer advertises in gossip.
func dialTLS(ctx context.Context, d *net.Dialer, certs *CertReloader, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := certs.ClientConfig()
	cfg.ServerName = host
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		_, pool := certs.current()
		chain := make([][]byte, len(cs.PeerCertificates))
		for i, c := range cs.PeerCertificates {
			chain[i] = c.Raw
		}
		return verifyChain(chain, pool, host, x509.ExtKeyUsageServerAuth)
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		var alert tls.AlertError
		var verr *tls.CertificateVerificationError
		var opErr *net.OpError
		remoteAlert := errors.As(err, &opErr) && opErr.Op == "remote error" // the peer refused our certificate
		if errors.As(err, &alert) || errors.As(err, &verr) || errors.Is(err, errBadCert) || remoteAlert {
			return nil, fmt.Errorf("%w: %w", ErrUntrusted, err)
		}
		return nil, err
	}
	return conn, nil
}

// do sends req (signed, with body as its body) and measures the peer's
// clock from the answer. It returns the request's nonce, to check the
// answer's body with, and whether the answer is authenticated (see
// Auth.checkAnswer).
func (p *Peer) do(req *http.Request, body []byte) (*http.Response, string, bool, error) {
	req.Header.Set(HeaderProto, ProtoVersion)
	if p.c.lastSync != nil {
		if t := p.c.lastSync(); !t.IsZero() {
			req.Header.Set(HeaderLastSync, strconv.FormatInt(t.UnixNano(), 10))
		}
	}
	nonce := p.c.auth.signRequest(req, body)
	start := time.Now()
	resp, err := p.c.hc.Do(req)
	if err != nil {
		return nil, "", false, err
	}
	rtt := time.Since(start)
	verified, err := p.c.auth.checkAnswer(resp, nonce)
	if err != nil {
		resp.Body.Close()
		return nil, "", false, fmt.Errorf("%w: %w", ErrUntrusted, err)
	}
	// Only an authenticated answer's clock is believed: a forged one
	// could otherwise make this node think its clock is off.
	if p.c.onClock != nil && verified {
		if t, err := strconv.ParseInt(resp.Header.Get(HeaderTime), 10, 64); err == nil {
			// The peer read its clock about halfway through the round trip.
			local := p.c.auth.now().Add(-rtt / 2)
			p.c.onClock(p.addr, time.Duration(t-local.UnixNano()), rtt)
		}
	}
	return resp, nonce, verified, nil
}

// Bytes returns the bytes of request and response bodies this client has
// sent and received.
func (c *Client) Bytes() (sent, received int64) { return c.sent.Load(), c.recv.Load() }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Peer returns the private API of the node at addr (host:port).
func (c *Client) Peer(addr string) *Peer {
	return &Peer{c: c, addr: addr, base: c.auth.Scheme() + "://" + addr}
}

// Peer is one node's private API. It implements Replica.
type Peer struct {
	c    *Client
	addr string
	base string
}

var _ Replica = (*Peer)(nil)

// call POSTs a binary message (or GETs when body is nil) and hands the
// answer's body to decode.
func (p *Peer) call(ctx context.Context, path string, body []byte, decode func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, p.c.timeout)
	defer cancel()
	method := http.MethodGet
	var rd io.Reader
	if body != nil {
		method, rd = http.MethodPost, bytes.NewReader(body)
		p.c.sent.Add(int64(len(body)))
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", ContentType)
	}
	resp, nonce, _, err := p.do(req, body)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrPeer, path, err)
	}
	defer resp.Body.Close()
	resp.Body = &countingReadCloser{ReadCloser: resp.Body, n: &p.c.recv}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		err := fmt.Errorf("%w: %s: %s: %s", ErrPeer, path, resp.Status, strings.TrimSpace(string(msg)))
		if resp.StatusCode == http.StatusUnauthorized {
			err = fmt.Errorf("%w: %w", ErrUntrusted, err)
		}
		return err
	}
	r, check := p.c.auth.checkBody(resp, nonce)
	if err := decode(r); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrPeer, path, err)
	}
	// Nothing decoded is returned before the whole answer verifies.
	if err := check(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrPeer, path, err)
	}
	return nil
}

// Ping returns the peer's node ID.
func (p *Peer) Ping(ctx context.Context) (ulid.ULID, error) {
	var id ulid.ULID
	err := p.call(ctx, PathPing, nil, func(r io.Reader) error {
		b, err := io.ReadAll(io.LimitReader(r, 64))
		if err != nil {
			return err
		}
		id, err = ulid.ParseStrict(strings.TrimSpace(string(b)))
		return err
	})
	return id, err
}

// Nodes returns the peer's view of the cluster.
func (p *Peer) Nodes(ctx context.Context) ([]Member, error) {
	var ms []Member
	err := p.call(ctx, PathNodes, nil, func(r io.Reader) error { return json.NewDecoder(r).Decode(&ms) })
	return ms, err
}

// Merge sends entries to the peer (an announcement, or the push half of
// anti-entropy) and returns how many it applied.
func (p *Peer) Merge(ctx context.Context, entries []journal.Entry) (int, error) {
	var res struct{ Applied int }
	err := p.call(ctx, PathAnnounce, EncodeEntries(entries), func(r io.Reader) error { return json.NewDecoder(r).Decode(&res) })
	return res.Applied, err
}

// TreeChildren implements Replica.
func (p *Peer) TreeChildren(ctx context.Context, level int, nodes []uint32) ([]journal.TreeNode, error) {
	var out []journal.TreeNode
	err := p.call(ctx, PathTree, EncodeTreeRequest(level, nodes), func(r io.Reader) (err error) {
		out, err = DecodeTreeNodes(r)
		return err
	})
	return out, err
}

// Summaries implements Replica.
func (p *Peer) Summaries(ctx context.Context, leaves []uint16) ([]journal.Summary, error) {
	var out []journal.Summary
	err := p.call(ctx, PathSummaries, EncodeLeaves(leaves), func(r io.Reader) (err error) {
		out, err = DecodeSummaries(r)
		return err
	})
	return out, err
}

// Entries implements Replica.
func (p *Peer) Entries(ctx context.Context, ids []ulid.ULID) ([]journal.Entry, error) {
	var out []journal.Entry
	err := p.call(ctx, PathEntries, EncodeIDs(ids), func(r io.Reader) (err error) {
		out, err = DecodeEntries(r)
		return err
	})
	return out, err
}

// CallJSON sends in as JSON (nothing when nil) with method to path and
// decodes the JSON answer into out, for the peer's control calls.
func (p *Peer) CallJSON(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	if method == http.MethodGet {
		body = nil
	}
	return p.call(ctx, path, body, func(r io.Reader) error {
		return json.NewDecoder(io.LimitReader(r, maxControlAnswer)).Decode(out)
	})
}

// maxControlAnswer bounds the answer of a control call: the largest, a
// node's status, is tens of kilobytes.
const maxControlAnswer = 8 << 20

// Invalidate asks the peer to drop its copy of id if the copy is safe
// elsewhere. It reports whether the peer dropped a copy, and whether it
// kept one because it is the only one.
func (p *Peer) Invalidate(ctx context.Context, id ulid.ULID) (dropped, kept bool, err error) {
	var res struct{ Dropped, Kept bool }
	err = p.call(ctx, PathInvalidate+id.String(), []byte{}, func(r io.Reader) error { return json.NewDecoder(r).Decode(&res) })
	return res.Dropped, res.Kept, err
}

// Get opens the body of id that the peer holds. The caller closes the
// response body. A peer that does not hold the body answers 404, which Get
// returns as an error matching ErrPeer.
func (p *Peer) Get(ctx context.Context, id ulid.ULID) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+PathGet+id.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, _, _, err := p.do(req, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: get %s: %w", ErrPeer, id, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		err := fmt.Errorf("%w: get %s: %s", ErrPeer, id, resp.Status)
		if resp.StatusCode == http.StatusUnauthorized {
			err = fmt.Errorf("%w: %w", ErrUntrusted, err)
		}
		return nil, err
	}
	resp.Body = &countingReadCloser{ReadCloser: resp.Body, n: &p.c.recv}
	return resp, nil
}

// checkPartAnswer checks that resp answers a request for length bytes at
// off (fewer at the object's end): a 206 starting at off, no longer than
// asked, whose body is the length its Content-Range says.
func checkPartAnswer(resp *http.Response, off, length int64) error {
	var first, last, size int64
	cr := resp.Header.Get("Content-Range")
	if resp.StatusCode != http.StatusPartialContent {
		return fmt.Errorf("a part answered %s, not 206", resp.Status)
	}
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &first, &last, &size); err != nil ||
		first != off || last < first || last >= size || length >= 0 && last-first+1 > length || resp.ContentLength != last-first+1 {
		return fmt.Errorf("a part asked at %d (%d bytes) answered %q, %d bytes", off, length, cr, resp.ContentLength)
	}
	return nil
}

// GetPart opens length bytes at off of the body of id on the peer, read
// from its whole copy or from the parts of its sparse copy, never fetched:
// an answer of any status but 206 with exactly that range is an error.
// The body's signature is checked at its end, as GetKey's.
func (p *Peer) GetPart(ctx context.Context, id ulid.ULID, off, length int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+PathGet+id.String()+"?"+QuerySparse+"=1", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+length-1))
	resp, nonce, _, err := p.do(req, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: get part of %s: %w", ErrPeer, id, err)
	}
	if err := checkPartAnswer(resp, off, length); err != nil || resp.ContentLength != length {
		resp.Body.Close()
		if err == nil {
			err = fmt.Errorf("%d bytes answered, %d asked", resp.ContentLength, length)
		}
		err := fmt.Errorf("%w: get part of %s: %w", ErrPeer, id, err)
		if resp.StatusCode == http.StatusUnauthorized {
			err = fmt.Errorf("%w: %w", ErrUntrusted, err)
		}
		return nil, err
	}
	r, check := p.c.auth.checkBody(resp, nonce)
	resp.Body = &checkedBody{r: r, check: check, c: resp.Body, n: &p.c.recv}
	return resp, nil
}

// GetKey opens length bytes from offset off (a negative length reads to
// the end) of the key-addressed object bucket/key on the peer that owns
// its fills, which fetches it from its origin first if no node holds it.
// It returns the answer, whose body the caller closes, and the peer's
// entry of the object, decoded but not validated. The body's signature is
// checked at its end: a body altered on the way ends in an error, never in
// EOF. An authenticated 404 that says the object does not exist is returned
// as an error matching ErrAbsent (any other 404, as from a release without
// the route, is a plain failure), a 421 as one matching ErrMisdirected.
func (p *Peer) GetKey(ctx context.Context, bucket, key string, off, length int64) (*http.Response, journal.Entry, error) {
	return p.getKey(ctx, url.Values{"bucket": {bucket}, "key": {key}}, off, length)
}

// GetKeyPart is GetKey for a part of a sparse copy (see node.Range): the
// peer fetches, and keeps, only the parts of its own copy that the range
// touches, where GetKey's peer fetches the whole object.
func (p *Peer) GetKeyPart(ctx context.Context, bucket, key string, off, length int64) (*http.Response, journal.Entry, error) {
	return p.getKey(ctx, url.Values{"bucket": {bucket}, "key": {key}, QuerySparse: {"1"}}, off, length)
}

// QuerySparse marks a key fill that asks for a part of a sparse copy.
const QuerySparse = "sparse"

func (p *Peer) getKey(ctx context.Context, q url.Values, off, length int64) (*http.Response, journal.Entry, error) {
	bucket, key := q.Get("bucket"), q.Get("key")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+PathKey+"?"+q.Encode(), nil)
	if err != nil {
		return nil, journal.Entry{}, err
	}
	if off > 0 || length >= 0 {
		rng := fmt.Sprintf("bytes=%d-", off)
		if length >= 0 {
			rng += strconv.FormatInt(off+length-1, 10)
		}
		req.Header.Set("Range", rng)
	}
	resp, nonce, verified, err := p.do(req, nil)
	if err != nil {
		return nil, journal.Entry{}, fmt.Errorf("%w: get %s/%s: %w", ErrPeer, bucket, key, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		err := fmt.Errorf("%w: get %s/%s: %s: %s", ErrPeer, bucket, key, resp.Status, strings.TrimSpace(string(msg)))
		switch resp.StatusCode {
		case http.StatusNotFound:
			if verified && resp.Header.Get(HeaderAbsent) != "" {
				err = fmt.Errorf("%w: %w", ErrAbsent, err)
			}
		case http.StatusMisdirectedRequest:
			err = fmt.Errorf("%w: %w", ErrMisdirected, err)
		case http.StatusUnauthorized:
			err = fmt.Errorf("%w: %w", ErrUntrusted, err)
		}
		return nil, journal.Entry{}, err
	}
	e, err := DecodeEntryHeader(resp.Header.Get(HeaderEntry))
	if err == nil && q.Get(QuerySparse) == "1" {
		err = checkPartAnswer(resp, off, length)
	}
	if err != nil {
		resp.Body.Close()
		return nil, journal.Entry{}, fmt.Errorf("%w: get %s/%s: %w", ErrPeer, bucket, key, err)
	}
	r, check := p.c.auth.checkBody(resp, nonce)
	resp.Body = &checkedBody{r: r, check: check, c: resp.Body, n: &p.c.recv}
	return resp, e, nil
}

// checkedBody is an answer's body whose signature is checked when its end
// is read: a failed check takes the place of io.EOF.
type checkedBody struct {
	r       io.Reader
	check   func() error
	c       io.Closer
	n       *atomic.Int64
	checked bool
}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n.Add(int64(n))
	if err == io.EOF && !b.checked {
		b.checked = true
		if cerr := b.check(); cerr != nil {
			return n, fmt.Errorf("%w: %w", ErrUntrusted, cerr)
		}
	}
	return n, err
}

func (b *checkedBody) Close() error { return b.c.Close() }

type countingReadCloser struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingReadCloser) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}
