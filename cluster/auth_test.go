package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testpki"
	"github.com/objstore/objstore/journal"
)

func testSecret(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// authPair is a server node and a client node sharing Auth settings, the
// server's private API reduced to an echo of the entries call.
type authPair struct {
	srv        *httptest.Server
	client     *Client
	clientAuth *Auth
	served     atomic.Int64
	members    map[ulid.ULID]Member
}

func newAuthPair(t *testing.T, server, client *Auth, tlsServer bool) *authPair {
	t.Helper()
	p := &authPair{clientAuth: client, members: map[ulid.ULID]Member{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathEntries, func(w http.ResponseWriter, r *http.Request) {
		ids, err := DecodeIDs(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		p.served.Add(1)
		w.Write(EncodeIDs(ids))
	})
	mux.HandleFunc("GET "+PathPing, func(w http.ResponseWriter, r *http.Request) {
		p.served.Add(1)
		io.WriteString(w, server.NodeID.String())
	})
	mux.HandleFunc("GET "+PathKey, func(w http.ResponseWriter, r *http.Request) {
		switch key := r.URL.Query().Get("key"); key {
		case "absent":
			w.Header().Set(HeaderAbsent, "true")
			http.Error(w, "no such key", http.StatusNotFound)
		case "unmarked":
			http.Error(w, "no such route", http.StatusNotFound)
		default:
			w.Header().Set(HeaderEntry, EncodeEntryHeader(journal.Entry{ID: ulid.Make(), Bucket: r.URL.Query().Get("bucket"), Key: key,
				Version: journal.Version{Time: journal.Timestamp{Wall: 1}, Node: server.NodeID}}))
			http.ServeContent(w, r, "", time.Time{}, strings.NewReader("0123456789"))
		}
	})
	lookup := func(id ulid.ULID) (Member, bool) { m, ok := p.members[id]; return m, ok }
	h := server.Middleware(mux, lookup, 1<<20, slog.New(slog.DiscardHandler), PathGet)
	if tlsServer {
		// httptest's StartTLS would put its own certificate first.
		p.srv = httptest.NewUnstartedServer(h)
		p.srv.Listener = tls.NewListener(p.srv.Listener, server.TLS.ServerConfig())
		p.srv.Start()
		p.srv.URL = strings.Replace(p.srv.URL, "http://", "https://", 1)
	} else {
		p.srv = httptest.NewServer(h)
	}
	t.Cleanup(p.srv.Close)
	p.client = NewClient(ClientConfig{Auth: client})
	t.Cleanup(p.client.Close)
	// The client is a member, reachable at the loopback address its
	// certificate (if any) names.
	p.members[client.NodeID] = Member{ID: client.NodeID, PrivateAddr: "127.0.0.1:1"}
	return p
}

func (p *authPair) peer() *Peer {
	return p.client.Peer(strings.TrimPrefix(strings.TrimPrefix(p.srv.URL, "http://"), "https://"))
}

func (p *authPair) entries(t *testing.T) error {
	t.Helper()
	ids := []ulid.ULID{ulid.Make()}
	var out []ulid.ULID
	err := p.peer().call(context.Background(), PathEntries, EncodeIDs(ids), func(r io.Reader) (err error) {
		out, err = DecodeIDs(r)
		return err
	})
	if err == nil && (len(out) != 1 || out[0] != ids[0]) {
		t.Fatalf("echo: %v", out)
	}
	return err
}

func TestHMACAuthenticatesBothWays(t *testing.T) {
	kr, _ := NewKeyring(testSecret(1))
	server := &Auth{Keyring: kr, NodeID: ulid.Make()}
	client := &Auth{Keyring: kr, NodeID: ulid.Make()}
	p := newAuthPair(t, server, client, false)
	if err := p.entries(t); err != nil {
		t.Fatalf("signed request: %v", err)
	}
	if id, err := p.peer().Ping(context.Background()); err != nil || id != server.NodeID {
		t.Fatalf("ping: %v %v", id, err)
	}

	// Another secret, no secret, an unknown node: refused before the
	// handler runs.
	other, _ := NewKeyring(testSecret(2))
	for name, a := range map[string]*Auth{
		"other secret": {Keyring: other, NodeID: client.NodeID},
		"no secret":    {NodeID: client.NodeID},
		"not a member": {Keyring: kr, NodeID: ulid.Make()},
	} {
		q := &authPair{srv: p.srv, client: NewClient(ClientConfig{Auth: a})}
		before := p.served.Load()
		// Refused with 401 (403 for a node gossip has not told of); a
		// client with another secret cannot even verify the refusal,
		// which is signed with the server's key.
		err := q.entries(t)
		if err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "403") && !errors.Is(err, ErrUntrusted) {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
		if p.served.Load() != before {
			t.Errorf("%s: the handler ran", name)
		}
	}
}

// A captured request cannot be replayed, altered or sent late.
func TestHMACRefusesReplayTamperAndStaleRequests(t *testing.T) {
	kr, _ := NewKeyring(testSecret(1))
	server := &Auth{Keyring: kr, NodeID: ulid.Make()}
	client := &Auth{Keyring: kr, NodeID: ulid.Make()}
	p := newAuthPair(t, server, client, false)
	body := EncodeIDs([]ulid.ULID{ulid.Make()})
	req, _ := http.NewRequest(http.MethodPost, p.srv.URL+PathEntries, bytes.NewReader(body))
	req.Header.Set(HeaderProto, ProtoVersion)
	client.signRequest(req, body)
	send := func(h http.Header, b []byte, path string) int {
		r, _ := http.NewRequest(http.MethodPost, p.srv.URL+path, bytes.NewReader(b))
		r.Header = h.Clone()
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send(req.Header, body, PathEntries); code != 200 {
		t.Fatalf("first send: %d", code)
	}
	if code := send(req.Header, body, PathEntries); code != 401 {
		t.Errorf("replay: %d, want 401", code)
	}
	// A fresh nonce, but the body or the path changed after signing.
	req2, _ := http.NewRequest(http.MethodPost, p.srv.URL+PathEntries, nil)
	client.signRequest(req2, body)
	if code := send(req2.Header, EncodeIDs([]ulid.ULID{ulid.Make()}), PathEntries); code != 401 {
		t.Errorf("altered body: %d, want 401", code)
	}
	req3, _ := http.NewRequest(http.MethodPost, p.srv.URL+PathEntries, nil)
	client.signRequest(req3, body)
	if code := send(req3.Header, body, PathSummaries); code != 401 {
		t.Errorf("other path: %d, want 401", code)
	}
	// Signed a minute ago.
	late := &Auth{Keyring: kr, NodeID: client.NodeID, Now: func() time.Time { return time.Now().Add(-time.Minute) }}
	req4, _ := http.NewRequest(http.MethodPost, p.srv.URL+PathEntries, nil)
	late.signRequest(req4, body)
	if code := send(req4.Header, body, PathEntries); code != 401 {
		t.Errorf("stale request: %d, want 401", code)
	}
}

// A request signed for one node is refused by another.
func TestHMACBindsRequestsToTheirNode(t *testing.T) {
	kr, _ := NewKeyring(testSecret(1))
	a := &Auth{Keyring: kr, NodeID: ulid.Make()}
	client := &Auth{Keyring: kr, NodeID: ulid.Make()}
	p := newAuthPair(t, a, client, false)
	a.Addr = strings.TrimPrefix(p.srv.URL, "http://")
	if err := p.entries(t); err != nil {
		t.Fatalf("a request to the node's own address: %v", err)
	}
	body := EncodeIDs([]ulid.ULID{ulid.Make()})
	req, _ := http.NewRequest(http.MethodPost, "http://10.1.2.3:11999"+PathEntries, bytes.NewReader(body))
	req.Header.Set(HeaderProto, ProtoVersion)
	client.signRequest(req, body) // captured on its way to another node
	replay, _ := http.NewRequest(http.MethodPost, p.srv.URL+PathEntries, bytes.NewReader(body))
	replay.Header = req.Header.Clone()
	replay.Host = "10.1.2.3:11999"
	before := p.served.Load()
	resp, err := http.DefaultClient.Do(replay)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || p.served.Load() != before {
		t.Errorf("a request for another node: %d", resp.StatusCode)
	}
}

// An answer altered on the way (a man in the middle) is refused by the
// client, headers or body.
func TestHMACRefusesForgedAnswers(t *testing.T) {
	kr, _ := NewKeyring(testSecret(1))
	server := &Auth{Keyring: kr, NodeID: ulid.Make()}
	client := &Auth{Keyring: kr, NodeID: ulid.Make()}
	p := newAuthPair(t, server, client, false)
	target := p.srv.URL
	for name, alter := range map[string]func(*http.Response, []byte) []byte{
		"body":   func(_ *http.Response, b []byte) []byte { return EncodeIDs([]ulid.ULID{ulid.Make()}) },
		"header": func(r *http.Response, b []byte) []byte { r.Header.Set("Content-Type", "text/html"); return b },
		// Signed only when present, so adding one is caught too.
		"entry header": func(r *http.Response, b []byte) []byte { r.Header.Set(HeaderEntry, "AQ"); return b },
	} {
		mitm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			out, _ := http.NewRequest(r.Method, target+r.URL.Path, r.Body)
			out.Header = r.Header.Clone()
			out.Host = r.Host // the request was signed for this host
			resp, err := http.DefaultClient.Do(out)
			if err != nil {
				http.Error(w, err.Error(), 502)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			b = alter(resp, b)
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.Header().Set("Trailer", trailerBodySig)
			w.WriteHeader(resp.StatusCode)
			w.Write(b)
			w.Header().Set(trailerBodySig, resp.Trailer.Get(trailerBodySig))
		}))
		q := &authPair{srv: mitm, client: p.client}
		err := q.entries(t)
		if !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s altered: %v, want ErrUnauthenticated", name, err)
		}
		mitm.Close()
	}
}

// A key's body from its owner is checked against the answer's signature,
// ranges included: one altered on the way ends in an error, never in EOF.
// Only a signed 404 marked absent says the object does not exist.
func TestGetKeyAuthenticated(t *testing.T) {
	kr, _ := NewKeyring(testSecret(1))
	server := &Auth{Keyring: kr, NodeID: ulid.Make()}
	client := &Auth{Keyring: kr, NodeID: ulid.Make()}
	p := newAuthPair(t, server, client, false)
	ctx := context.Background()
	resp, e, err := p.peer().GetKey(ctx, "photos", "a b/c", 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "23456" || e.Bucket != "photos" || e.Key != "a b/c" {
		t.Errorf("ranged read: %q, %v, entry %+v", b, err, e)
	}
	if _, _, err := p.peer().GetKey(ctx, "photos", "absent", 0, -1); !errors.Is(err, ErrAbsent) {
		t.Errorf("a marked 404: %v, want ErrAbsent", err)
	}
	if _, _, err := p.peer().GetKey(ctx, "photos", "unmarked", 0, -1); err == nil || errors.Is(err, ErrAbsent) {
		t.Errorf("an unmarked 404: %v, want a plain failure", err)
	}

	target := p.srv.URL
	mitm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, _ := http.NewRequest(r.Method, target+r.URL.RequestURI(), nil)
		out.Header = r.Header.Clone()
		out.Host = r.Host
		resp, err := http.DefaultClient.Do(out)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.Header().Set("Trailer", trailerBodySig)
		w.WriteHeader(resp.StatusCode)
		w.Write(bytes.ToUpper(bytes.Replace(b, []byte("3"), []byte("X"), 1)))
		w.Header().Set(trailerBodySig, resp.Trailer.Get(trailerBodySig))
	}))
	defer mitm.Close()
	q := &authPair{srv: mitm, client: p.client}
	resp, _, err = q.peer().GetKey(ctx, "photos", "k", 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, ErrUntrusted) {
		t.Errorf("an altered body read as %q, %v; want ErrUntrusted", b, err)
	}
}

// issue makes a certificate of ca for a node reachable at ips and loads it.
func issue(t *testing.T, ca *testpki.CA, name string, ips ...string) *CertReloader {
	cert, key := ca.Issue(name, ips...)
	r, err := LoadCerts(ca.CertFile(), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir)
	server := &Auth{TLS: issue(t, ca, "server", "127.0.0.1"), NodeID: ulid.Make()}
	client := &Auth{TLS: issue(t, ca, "client", "127.0.0.1"), NodeID: ulid.Make()}
	p := newAuthPair(t, server, client, true)
	if err := p.entries(t); err != nil {
		t.Fatalf("mutual TLS: %v", err)
	}

	// A certificate from another CA is refused in the handshake.
	rogue := issue(t, testpki.NewCA(t, t.TempDir()), "rogue", "127.0.0.1")
	q := &authPair{srv: p.srv, client: NewClient(ClientConfig{Auth: &Auth{TLS: rogue, NodeID: client.NodeID}})}
	before := p.served.Load()
	if err := q.entries(t); err == nil {
		t.Error("a certificate of another CA was accepted")
	}
	// A valid certificate that does not cover the address the claimed
	// node advertises is refused: the certificate is bound to the node.
	elsewhere := issue(t, ca, "elsewhere", "10.9.9.9")
	q = &authPair{srv: p.srv, client: NewClient(ClientConfig{Auth: &Auth{TLS: elsewhere, NodeID: client.NodeID}})}
	if err := q.entries(t); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("certificate for another address: %v, want 401", err)
	}
	// Plain HTTP to the TLS port gets nowhere.
	if resp, err := http.Post(strings.Replace(p.srv.URL, "https", "http", 1)+PathEntries, ContentType, nil); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP was served")
		}
	}
	if p.served.Load() != before {
		t.Error("the handler ran for a refused client")
	}
	// A client must also find the server's certificate valid for the
	// address it dials.
	wrongHost := &Auth{TLS: issue(t, ca, "wronghost", "10.1.1.1"), NodeID: ulid.Make()}
	p2 := newAuthPair(t, wrongHost, client, true)
	if err := p2.entries(t); err == nil {
		t.Error("a server certificate for another address was accepted")
	}
}

func TestCertReload(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir)
	r := issue(t, ca, "node", "127.0.0.1")
	first := r.Leaf().SerialNumber
	issue(t, ca, "node", "127.0.0.1") // new files in place
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if r.Leaf().SerialNumber.Cmp(first) == 0 {
		t.Error("reload kept the old certificate")
	}
	os.WriteFile(filepath.Join(dir, "node.pem"), []byte("garbage"), 0o600)
	if err := r.Reload(); err == nil {
		t.Error("a broken certificate file reloaded")
	}
	if r.Leaf() == nil {
		t.Error("a failed reload dropped the certificate in use")
	}
}

func TestKeyringRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	kr, fromFile, err := OpenKeyring(path, testSecret(1))
	if err != nil || fromFile {
		t.Fatalf("open: %v %v", fromFile, err)
	}
	old, _ := Fingerprint(testSecret(1))
	next, _ := Fingerprint(testSecret(2))
	if err := kr.Install(testSecret(2)); err != nil {
		t.Fatal(err)
	}
	if err := kr.Remove(old); !errors.Is(err, ErrKeyring) {
		t.Errorf("removing the primary: %v", err)
	}
	if err := kr.Use("0000"); !errors.Is(err, ErrKeyring) {
		t.Errorf("using an unknown key: %v", err)
	}
	if err := kr.Use(next); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(kr.Gossip().GetPrimaryKey(), kr.primaryKey().gossip) {
		t.Error("memberlist's primary did not follow")
	}
	// A peer that has both keys verifies what either signs.
	wrapped, err := kr.Wrap(testSecret(3))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := kr.Unwrap(wrapped); err != nil || !bytes.Equal(got, testSecret(3)) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := kr.Unwrap(wrapped[:len(wrapped)-4] + "AAA="); !errors.Is(err, ErrKeyring) {
		t.Errorf("altered wrapped key: %v", err)
	}
	if err := kr.Remove(old); err != nil {
		t.Fatal(err)
	}
	// The rotation outlives a restart; the configured secret no longer
	// matters.
	again, fromFile, err := OpenKeyring(path, testSecret(1))
	if err != nil || !fromFile {
		t.Fatalf("reopen: %v %v", fromFile, err)
	}
	list, _ := json.Marshal(again.List())
	if want, _ := json.Marshal([]KeyInfo{{ID: next, Primary: true}}); !bytes.Equal(list, want) {
		t.Errorf("keys after reopen: %s, want %s", list, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("keyring file mode %v", st.Mode().Perm())
	}
	if _, err := NewKeyring([]byte("short")); !errors.Is(err, ErrKeyring) {
		t.Errorf("short secret: %v", err)
	}
}

func TestNonceCacheBounded(t *testing.T) {
	c := newNonceCache(2)
	now := time.Now()
	if c.add([16]byte{1}, now.Add(2*AuthWindow)) != nonceNew || c.add([16]byte{1}, now.Add(2*AuthWindow)) != nonceSeen {
		t.Fatal("replay not caught")
	}
	c.add([16]byte{2}, now.Add(2*AuthWindow))
	if c.add([16]byte{3}, now.Add(2*AuthWindow)) != nonceFull {
		t.Error("cache grew past its bound")
	}
	// Once the first two expire there is room again.
	if c.add([16]byte{3}, now.Add(5*AuthWindow)) != nonceNew {
		t.Error("expired nonces were not dropped")
	}
}

// Whatever a client without the key puts in the authentication headers
// and body, the request does not verify, and nothing panics.
func FuzzVerifyRequest(f *testing.F) {
	kr, _ := NewKeyring(testSecret(1))
	member := ulid.Make()
	a := &Auth{Keyring: kr, NodeID: ulid.Make()}
	a.once.Do(func() { a.nonces = newNonceCache(1 << 10) })
	lookup := func(id ulid.ULID) (Member, bool) { return Member{ID: id, PrivateAddr: "127.0.0.1:1"}, id == member }
	k := kr.primaryKey()
	f.Add(member.String(), k.id, "1700000000000000000", strings.Repeat("ab", 16), "c2ln", strings.Repeat("0", 64), []byte("body"))
	f.Add("", "", "", "", "", "", []byte{})
	f.Fuzz(func(t *testing.T, node, key, date, nonce, sig, bodySum string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, PathAnnounce, bytes.NewReader(body))
		for h, v := range map[string]string{HeaderNode: node, headerKey: key, headerDate: date, headerNonce: nonce, headerSignature: sig, headerBodySum: bodySum} {
			r.Header.Set(h, v)
		}
		if _, err := a.verifyRequest(r, lookup, 1<<20); err == nil {
			t.Fatalf("a forged request verified: %v", r.Header)
		}
	})
}

// A wrapped key arrives from a peer; garbage never unwraps or panics.
func FuzzUnwrap(f *testing.F) {
	kr, _ := NewKeyring(testSecret(1))
	good, _ := kr.Wrap(testSecret(2))
	f.Add(good)
	f.Add(kr.primaryKey().id + ":")
	f.Add(":::")
	f.Fuzz(func(t *testing.T, s string) {
		if s == good {
			return
		}
		if secret, err := kr.Unwrap(s); err == nil && !bytes.Equal(secret, testSecret(2)) {
			t.Fatalf("garbage unwrapped to %x", secret)
		}
	})
}

// A damaged keyring file is refused with an error, never a panic.
func FuzzOpenKeyring(f *testing.F) {
	f.Add([]byte(`{"format":1,"secrets":["` + base64.StdEncoding.EncodeToString(testSecret(1)) + `"]}`))
	f.Add([]byte(`{"format":1,"secrets":[]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if kr, err := parseKeyring(b); err == nil && len(kr.List()) == 0 {
			t.Fatal("an empty keyring opened")
		}
	})
}

// An answer that does not authenticate says nothing about the peer's
// clock: a forged time could otherwise make a node refuse writes.
func TestClockOnlyFromAuthenticatedAnswers(t *testing.T) {
	kr, _ := NewKeyring(testSecret(1))
	forger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderTime, fmt.Sprint(time.Now().Add(time.Hour).UnixNano()))
		w.Header().Set(headerKey, kr.primaryKey().id)
		w.Header().Set(headerSignature, "Zm9yZ2Vk")
		io.WriteString(w, "01ARZ3NDEKTSV4RRFFQ69G5FAV")
	}))
	defer forger.Close()
	var samples int
	c := NewClient(ClientConfig{Auth: &Auth{Keyring: kr, NodeID: ulid.Make()},
		OnClock: func(string, time.Duration, time.Duration) { samples++ }})
	defer c.Close()
	if _, err := c.Peer(strings.TrimPrefix(forger.URL, "http://")).Ping(context.Background()); !errors.Is(err, ErrUntrusted) {
		t.Errorf("a forged answer: %v", err)
	}
	if samples != 0 {
		t.Error("the clock of a forged answer was measured")
	}
	// A node still starting answers 503 unsigned: the call fails, the
	// peer is not taken for untrusted, and its clock is not read.
	starting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderTime, fmt.Sprint(time.Now().Add(time.Hour).UnixNano()))
		http.Error(w, "node starting", http.StatusServiceUnavailable)
	}))
	defer starting.Close()
	if _, err := c.Peer(strings.TrimPrefix(starting.URL, "http://")).Ping(context.Background()); err == nil || errors.Is(err, ErrUntrusted) {
		t.Errorf("an unsigned 503: %v", err)
	}
	if samples != 0 {
		t.Error("the clock of an unsigned answer was measured")
	}
}

// A keyring change that cannot be saved is not made.
func TestKeyringChangeSavedFirst(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	os.WriteFile(file, nil, 0o600)
	kr, _ := NewKeyring(testSecret(1))
	kr.path = filepath.Join(file, "keyring.json") // cannot be written
	if err := kr.Install(testSecret(2)); err == nil {
		t.Fatal("an install that could not be saved succeeded")
	}
	if len(kr.List()) != 1 || len(kr.Gossip().GetKeys()) != 1 {
		t.Errorf("an unsaved install took effect: %v", kr.List())
	}
}
