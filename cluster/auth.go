package cluster

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// How nodes authenticate each other on the private API. With a keyring
// (cluster secret), every request carries the sender's node ID, a
// timestamp, a random nonce and the SHA-256 of its body, all signed with an
// HMAC under the primary key; the receiver checks the signature, refuses a
// timestamp outside AuthWindow and any nonce it has seen within twice that
// window, so a captured request cannot be replayed, and reads the body
// whole before it acts on it. Every answer is signed back over the
// request's nonce, its status and its headers, and an answer's body
// (except a get's, which the reader checks against the object's checksum)
// over a trailer, so a man in the middle can neither forge nor replay an
// answer. With mutual TLS, certificates authenticate both ends and the
// sender's certificate must cover the private address it advertises in
// gossip for the node ID it claims. Both may be on at once.
const (
	// HeaderNode names the sending node on every private request.
	HeaderNode = "X-Objstore-Node"
	// HeaderTime carries the answering node's clock (Unix nanoseconds) on
	// every answer, for clock offset measurement.
	HeaderTime = "X-Objstore-Time"

	headerKey       = "X-Objstore-Key"
	headerDate      = "X-Objstore-Date"
	headerNonce     = "X-Objstore-Nonce"
	headerBodySum   = "X-Objstore-Body-Sha256"
	headerSignature = "X-Objstore-Signature"
	trailerBodySig  = "X-Objstore-Body-Signature"

	// AuthWindow is how far a signed request's timestamp may be from the
	// receiver's clock.
	AuthWindow = 30 * time.Second
	// maxNonces bounds the replay cache: about 40 MiB at most.
	maxNonces = 1 << 20
)

// Errors of private API authentication, matched with errors.Is.
var (
	// ErrUnauthenticated: a request or answer is unsigned, badly signed,
	// replayed, stale, or from a node the cluster does not know.
	ErrUnauthenticated = errors.New("cluster: not authenticated")
)

// Auth is the private API's security settings, shared by the client and
// the server side of a node. The zero value (no keyring, no TLS) signs and
// checks nothing: an insecure cluster.
type Auth struct {
	// Keyring signs and verifies requests and answers with HMACs; nil
	// means no HMACs.
	Keyring *Keyring
	// TLS, when set, makes the private API mutual TLS with its cluster CA.
	TLS *CertReloader
	// NodeID is this node, named on every request it sends.
	NodeID ulid.ULID
	// Addr is the private address peers reach this node at (the one it
	// advertises). A signed request names the address it was sent to, and
	// a node serves only those sent to Addr, so a request captured on its
	// way to one node cannot be replayed to another. Empty: not checked.
	Addr string
	// Now is the clock used for timestamps and their window; nil means
	// time.Now.
	Now func() time.Time

	nonces *nonceCache
	once   sync.Once
}

// Secure reports whether the private API is authenticated at all.
func (a *Auth) Secure() bool { return a != nil && (a.Keyring != nil || a.TLS != nil) }

// Scheme returns the URL scheme of the private API: https under TLS.
func (a *Auth) Scheme() string {
	if a != nil && a.TLS != nil {
		return "https"
	}
	return "http"
}

func (a *Auth) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// signRequest adds the authentication headers to req, whose body is body
// (nil for none). It returns the nonce, to check the answer with.
func (a *Auth) signRequest(req *http.Request, body []byte) string {
	req.Header.Set(HeaderNode, a.NodeID.String())
	if a.Keyring == nil {
		return ""
	}
	k := a.Keyring.primaryKey()
	var nb [16]byte
	rand.Read(nb[:])
	nonce := hex.EncodeToString(nb[:])
	date := strconv.FormatInt(a.now().UnixNano(), 10)
	sum := sha256.Sum256(body)
	bodySum := hex.EncodeToString(sum[:])
	h := req.Header
	h.Set(headerKey, k.id)
	h.Set(headerDate, date)
	h.Set(headerNonce, nonce)
	h.Set(headerBodySum, bodySum)
	h.Set(headerSignature, base64.StdEncoding.EncodeToString(
		k.sign("request", req.Method, req.URL.Host, req.URL.RequestURI(), a.NodeID.String(), k.id, date, nonce, bodySum)))
	return nonce
}

// signedHeaders are the answer headers the answer's signature covers.
var signedHeaders = []string{HeaderSHA256, HeaderVersion, HeaderTime, HeaderProto, "Content-Type", "Content-Range"}

// optionalSignedHeaders are signed too, but only when present, so that
// answers without them sign as releases that did not know them expect.
var optionalSignedHeaders = []string{HeaderEntry, HeaderAbsent}

func answerParts(nonce string, status int, h http.Header) []string {
	parts := []string{"answer", nonce, strconv.Itoa(status)}
	for _, name := range signedHeaders {
		parts = append(parts, h.Get(name))
	}
	for _, name := range optionalSignedHeaders {
		if v := h.Get(name); v != "" {
			parts = append(parts, name, v)
		}
	}
	return parts
}

// checkAnswer verifies the signature of an answer to the request signed
// with nonce, and reports whether the answer is authenticated. A 200
// answer must verify. Another answer may come unsigned from a node that is
// not serving yet (starting up) or from the HTTP server itself: it fails
// the call anyway, so it is only not believed (its clock is not read);
// one whose signature does not verify is an error. Without a keyring there
// is nothing to check here: TLS, if on, authenticated the answer already.
func (a *Auth) checkAnswer(resp *http.Response, nonce string) (bool, error) {
	if a.Keyring == nil {
		return true, nil
	}
	sig := resp.Header.Get(headerSignature)
	if sig == "" && resp.StatusCode != http.StatusOK {
		return false, nil
	}
	k, ok := a.Keyring.key(resp.Header.Get(headerKey))
	if !ok {
		return false, fmt.Errorf("%w: answer signed with an unknown key", ErrUnauthenticated)
	}
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, k.sign(answerParts(nonce, resp.StatusCode, resp.Header)...)) {
		return false, fmt.Errorf("%w: answer signature does not verify", ErrUnauthenticated)
	}
	return true, nil
}

// bodyChecker hashes an answer's body as the caller reads it; check then
// verifies the trailer's signature once the body is read to its end.
type bodyChecker struct {
	r     io.Reader
	h     hash.Hash
	resp  *http.Response
	nonce string
	k     clusterKey
}

func (a *Auth) checkBody(resp *http.Response, nonce string) (io.Reader, func() error) {
	if a.Keyring == nil {
		return resp.Body, func() error { return nil }
	}
	k, _ := a.Keyring.key(resp.Header.Get(headerKey))
	bc := &bodyChecker{h: sha256.New(), resp: resp, nonce: nonce, k: k}
	bc.r = io.TeeReader(resp.Body, bc.h)
	return bc.r, bc.check
}

func (bc *bodyChecker) check() error {
	// The trailer arrives after the last byte of the body.
	if _, err := io.Copy(io.Discard, bc.r); err != nil {
		return err
	}
	got, err := base64.StdEncoding.DecodeString(bc.resp.Trailer.Get(trailerBodySig))
	if err != nil || !hmac.Equal(got, bc.k.sign("body", bc.nonce, hex.EncodeToString(bc.h.Sum(nil)))) {
		return fmt.Errorf("%w: answer body signature does not verify", ErrUnauthenticated)
	}
	return nil
}

// MemberLookup finds a member by ID, for binding a request to the node
// gossip knows by that ID.
type MemberLookup func(id ulid.ULID) (Member, bool)

// Middleware authenticates every private request before next sees it and
// signs every answer. Unauthenticated requests get 401 and change nothing.
// members finds the claimed sender; maxBody bounds a request's body, which
// is read whole (only under a keyring) so that nothing is acted on before
// its signature verifies. bodyless lists path prefixes whose answers'
// bodies are not signed (bodies checked by their checksum instead).
func (a *Auth) Middleware(next http.Handler, members MemberLookup, maxBody int64, log *slog.Logger, bodyless ...string) http.Handler {
	a.once.Do(func() { a.nonces = newNonceCache(maxNonces) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderTime, strconv.FormatInt(a.now().UnixNano(), 10))
		if !a.Secure() {
			next.ServeHTTP(w, r)
			return
		}
		nonce, err := a.verifyRequest(r, members, maxBody)
		if err != nil {
			log.Warn("refused a private request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			code := http.StatusUnauthorized
			switch {
			case errors.Is(err, errBusy):
				code = http.StatusServiceUnavailable
			case errors.Is(err, errNotMember):
				code = http.StatusForbidden
			}
			if a.Keyring != nil {
				// Refusals are signed too (over the nonce the request
				// claims), so a node can believe the clock of a peer
				// that refuses it; the status is in the signature, so
				// a refusal never passes for a success.
				w = &signingWriter{ResponseWriter: w, k: a.Keyring.primaryKey(), nonce: r.Header.Get(headerNonce)}
			}
			http.Error(w, err.Error(), code)
			return
		}
		if a.Keyring == nil {
			next.ServeHTTP(w, r)
			return
		}
		sw := &signingWriter{ResponseWriter: w, k: a.Keyring.primaryKey(), nonce: nonce, body: true}
		for _, p := range bodyless {
			if strings.HasPrefix(r.URL.Path, p) {
				sw.body = false
			}
		}
		if sw.body {
			sw.h = sha256.New()
		}
		next.ServeHTTP(sw, r)
		sw.finish()
	})
}

var errBusy = errors.New("cluster: replay cache full; try again")

// errNotMember refuses a request from a node this node has not heard of
// (yet: gossip may not have told it). It is answered 403, not 401, so the
// sender does not take it for a failure to authenticate.
var errNotMember = errors.New("cluster: not a member of this cluster")

// verifyRequest checks r's authentication and returns its nonce.
func (a *Auth) verifyRequest(r *http.Request, members MemberLookup, maxBody int64) (string, error) {
	id, err := ulid.ParseStrict(r.Header.Get(HeaderNode))
	if err != nil {
		return "", fmt.Errorf("%w: no valid %s", ErrUnauthenticated, HeaderNode)
	}
	m, known := members(id)
	if !known {
		return "", fmt.Errorf("%w: %w: node %s", ErrUnauthenticated, errNotMember, id)
	}
	if a.Addr != "" && r.Host != a.Addr {
		return "", fmt.Errorf("%w: request for %s, this node is %s", ErrUnauthenticated, r.Host, a.Addr)
	}
	if a.TLS != nil {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return "", fmt.Errorf("%w: no client certificate", ErrUnauthenticated)
		}
		host, _, err := net.SplitHostPort(m.PrivateAddr)
		if err != nil {
			host = m.PrivateAddr
		}
		if err := r.TLS.PeerCertificates[0].VerifyHostname(host); err != nil {
			return "", fmt.Errorf("%w: the certificate of node %s does not cover its private address %s: %w", ErrUnauthenticated, id, m.PrivateAddr, err)
		}
	}
	if a.Keyring == nil {
		return "", nil
	}
	h := r.Header
	k, ok := a.Keyring.key(h.Get(headerKey))
	if !ok {
		return "", fmt.Errorf("%w: signed with a key this node does not hold", ErrUnauthenticated)
	}
	date, err := strconv.ParseInt(h.Get(headerDate), 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: no valid %s", ErrUnauthenticated, headerDate)
	}
	if d := time.Duration(a.now().UnixNano() - date); d > AuthWindow || d < -AuthWindow {
		return "", fmt.Errorf("%w: request time is %v away from this node's clock (the window is %v)", ErrUnauthenticated, d.Round(time.Millisecond), AuthWindow)
	}
	nonce := h.Get(headerNonce)
	var nb [16]byte
	if len(nonce) != 32 {
		return "", fmt.Errorf("%w: no valid %s", ErrUnauthenticated, headerNonce)
	}
	if _, err := hex.Decode(nb[:], []byte(nonce)); err != nil {
		return "", fmt.Errorf("%w: no valid %s", ErrUnauthenticated, headerNonce)
	}
	want := k.sign("request", r.Method, r.Host, r.URL.RequestURI(), id.String(), k.id, h.Get(headerDate), nonce, h.Get(headerBodySum))
	got, err := base64.StdEncoding.DecodeString(h.Get(headerSignature))
	if err != nil || !hmac.Equal(got, want) {
		return "", fmt.Errorf("%w: signature does not verify", ErrUnauthenticated)
	}
	// The nonce is spent only by a request whose signature verifies, so
	// nobody without the key can fill the cache.
	switch a.nonces.add(nb, a.now().Add(2*AuthWindow)) {
	case nonceSeen:
		return "", fmt.Errorf("%w: replayed request (nonce seen before)", ErrUnauthenticated)
	case nonceFull:
		return "", errBusy
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return "", fmt.Errorf("%w: reading body: %w", ErrUnauthenticated, err)
	}
	if int64(len(body)) > maxBody {
		return "", fmt.Errorf("%w: body over %d bytes", ErrUnauthenticated, maxBody)
	}
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != h.Get(headerBodySum) {
		return "", fmt.Errorf("%w: body does not match its signed checksum", ErrUnauthenticated)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return nonce, nil
}

// signingWriter signs an answer's status and headers as they are written,
// and its body in a trailer.
type signingWriter struct {
	http.ResponseWriter
	k       clusterKey
	nonce   string
	body    bool      // sign the body in a trailer
	h       hash.Hash // the body so far, when body is set
	wrote   bool
	written bool // any body bytes
}

func (w *signingWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	h := w.Header()
	if h.Get("Content-Type") == "" {
		// Set before signing, so the server's sniffing cannot change a
		// signed header afterwards.
		h.Set("Content-Type", "application/octet-stream")
	}
	h.Set(headerKey, w.k.id)
	h.Set(headerSignature, base64.StdEncoding.EncodeToString(w.k.sign(answerParts(w.nonce, code, h)...)))
	if w.body && (code == http.StatusOK || code == http.StatusPartialContent) {
		// Declaring a trailer makes the answer chunked, so it can follow
		// the body.
		h.Del("Content-Length")
		h.Set("Trailer", trailerBodySig)
	} else {
		w.body = false
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *signingWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.body {
		w.h.Write(p)
	}
	return w.ResponseWriter.Write(p)
}

// ReadFrom passes every byte through Write when the body is signed, and
// otherwise keeps the server's own ReadFrom (sendfile for bodies).
func (w *signingWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok && !w.body {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w}, r)
}

func (w *signingWriter) finish() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.body {
		w.Header().Set(trailerBodySig, base64.StdEncoding.EncodeToString(w.k.sign("body", w.nonce, hex.EncodeToString(w.h.Sum(nil)))))
	}
}

// nonceCache remembers the nonces of verified requests until they expire.
type nonceCache struct {
	mu    sync.Mutex // guards seen and queue
	limit int
	seen  map[[16]byte]struct{}
	queue []nonceAt // in order of expiry, since requests arrive in time order
}

type nonceAt struct {
	n   [16]byte
	exp time.Time
}

type nonceResult int

const (
	nonceNew nonceResult = iota
	nonceSeen
	nonceFull
)

func newNonceCache(limit int) *nonceCache {
	return &nonceCache{limit: limit, seen: make(map[[16]byte]struct{})}
}

func (c *nonceCache) add(n [16]byte, exp time.Time) nonceResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := exp.Add(-2 * AuthWindow)
	for len(c.queue) > 0 && c.queue[0].exp.Before(now) {
		delete(c.seen, c.queue[0].n)
		c.queue = c.queue[1:]
	}
	if _, ok := c.seen[n]; ok {
		return nonceSeen
	}
	if len(c.seen) >= c.limit {
		return nonceFull
	}
	c.seen[n] = struct{}{}
	c.queue = append(c.queue, nonceAt{n: n, exp: exp})
	return nonceNew
}
