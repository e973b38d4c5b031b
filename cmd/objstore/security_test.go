package main_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/internal/testnode"
	"github.com/objstore/objstore/internal/testpki"
	"github.com/objstore/objstore/journal"
)

// secret returns a cluster secret made of one repeated byte.
func secret(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func secretEnv(b byte) []string {
	return []string{"APP_CLUSTER_SECRET=" + base64.StdEncoding.EncodeToString(secret(b))}
}

// secureNode starts a cluster node (as clusterNode) with extra environment
// and arguments.
func secureNode(t *testing.T, remote string, env, args []string, join ...*testnode.Node) *testnode.Node {
	t.Helper()
	a, renv := remoteArgs(t, remote)
	a = append(a, "--gossip-profile", "local", "--sync-interval", "2s")
	for _, j := range join {
		a = append(a, "-N", j.GossipAddr)
	}
	return testnode.Start(t, testnode.Options{Env: append(renv, env...), Args: append(a, args...)})
}

func aliveCount(t *testing.T, n *testnode.Node) int {
	alive := 0
	for _, m := range nodes(t, n) {
		if m.State == "alive" {
			alive++
		}
	}
	return alive
}

// journalCounts reads what a node's journal holds, from its stats.
func journalCounts(t *testing.T, n *testnode.Node) map[string]any {
	t.Helper()
	_, b, err := n.Do(testnode.Request{Path: "/api/v1/stats"})
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	json.Unmarshal(b, &st)
	j, _ := st["journal"].(map[string]any)
	return j
}

// rawPrivate sends an unauthenticated request to a node's private API, as
// a node the cluster does not know, and returns the status.
func rawPrivate(t *testing.T, n *testnode.Node, method, path string, body []byte) int {
	return rawPrivateAs(t, n, ulid.Make(), method, path, body)
}

// rawPrivateAs sends an unauthenticated request claiming to come from
// node from.
func rawPrivateAs(t *testing.T, n *testnode.Node, from ulid.ULID, method, path string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+n.PrivateAddr+path, bytes.NewReader(body))
	req.Header.Set(cluster.HeaderProto, cluster.ProtoVersion)
	req.Header.Set(cluster.HeaderNode, from.String())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A node without the cluster secret can neither join nor read, announce
// or replay anything: every such request is refused and no journal
// changes.
func TestClusterSecretKeepsOutsidersOut(t *testing.T) {
	remote := newRemote(t)
	a := secureNode(t, remote, secretEnv(1), nil)
	b := secureNode(t, remote, secretEnv(1), nil, a)
	eventually(t, "a and b joined", func() bool { return aliveCount(t, a) == 2 && aliveCount(t, b) == 2 })
	id := ulid.Make().String()
	mustPut(t, a, id, 0, "secret.txt", "only for the cluster")
	eventually(t, "b learns the object", func() bool { s, _ := metaOn(t, b, id); return s == 200 })
	before := journalCounts(t, a)

	// Another secret: gossip cannot be decrypted, so it never joins.
	outsider := secureNode(t, newRemote(t), secretEnv(2), nil, a)
	time.Sleep(3 * time.Second) // several gossip rounds on local timings
	if n := aliveCount(t, a); n != 2 {
		t.Errorf("a sees %d alive members after an outsider tried to join", n)
	}
	if n := aliveCount(t, outsider); n != 1 {
		t.Errorf("the outsider sees %d alive members", n)
	}

	// Straight to the private port, without the secret.
	oid, _ := ulid.Parse(id)
	tomb := cluster.EncodeEntries([]journal.Entry{{ID: oid, Deleted: true,
		Version: journal.Version{Time: journal.Timestamp{Wall: time.Now().UnixNano()}, Node: ulid.Make()}}})
	for _, c := range []struct {
		method, path string
		body         []byte
	}{
		{"GET", cluster.PathPing, nil},
		{"GET", cluster.PathNodes, nil},
		{"POST", cluster.PathSummaries, cluster.EncodeLeaves([]uint16{0, 1, 2})},
		{"POST", cluster.PathEntries, cluster.EncodeIDs([]ulid.ULID{oid})},
		{"GET", cluster.PathGet + id, nil},
		{"POST", cluster.PathAnnounce, tomb},
	} {
		// 403 as from an unknown node, 401 as from a member without the
		// secret: refused either way, before any handler runs.
		if code := rawPrivate(t, a, c.method, c.path, c.body); code != http.StatusForbidden {
			t.Errorf("%s %s without the secret: %d, want 403", c.method, c.path, code)
		}
		bID, _ := ulid.Parse(nodeID(t, b))
		if code := rawPrivateAs(t, a, bID, c.method, c.path, c.body); code != http.StatusUnauthorized {
			t.Errorf("%s %s as b without the secret: %d, want 401", c.method, c.path, code)
		}
	}
	// Signed with another secret, as b: refused too.
	wrong, _ := cluster.NewKeyring(secret(2))
	bID, _ := ulid.Parse(nodeID(t, b))
	wc := cluster.NewClient(cluster.ClientConfig{Auth: &cluster.Auth{Keyring: wrong, NodeID: bID}})
	defer wc.Close()
	// (Refused with 401, signed with a's key, which this client cannot
	// verify: it fails as untrusted.)
	if _, err := wc.Peer(a.PrivateAddr).Merge(context.Background(), []journal.Entry{}); !errors.Is(err, cluster.ErrUntrusted) {
		t.Errorf("announce signed with another secret: %v, want a refusal", err)
	}

	// A request captured on the wire is refused when sent again.
	right, _ := cluster.NewKeyring(secret(1))
	var captured *http.Request
	var capturedBody []byte
	rc := cluster.NewClient(cluster.ClientConfig{Auth: &cluster.Auth{Keyring: right, NodeID: bID},
		WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				captured = r.Clone(r.Context())
				if r.Body != nil {
					capturedBody, _ = io.ReadAll(r.Body)
					r.Body = io.NopCloser(bytes.NewReader(capturedBody))
				}
				return rt.RoundTrip(r)
			})
		}})
	defer rc.Close()
	if _, err := rc.Peer(a.PrivateAddr).Entries(context.Background(), []ulid.ULID{oid}); err != nil {
		t.Fatalf("a signed request from b: %v", err)
	}
	replay, _ := http.NewRequest(captured.Method, captured.URL.String(), bytes.NewReader(capturedBody))
	replay.Header = captured.Header.Clone()
	resp, err := http.DefaultClient.Do(replay)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("replayed request: %d, want 401", resp.StatusCode)
	}

	if after := journalCounts(t, a); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a's journal changed: %v -> %v", before, after)
	}
	if resp, body := get(t, b, id, nil); resp.StatusCode != 200 || body != "only for the cluster" {
		t.Errorf("the object after the attempts: %d %q", resp.StatusCode, body)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Even signed by a member, a forged tombstone or an entry stamped in the
// far future is refused, the object stays, and the clock does not move.
func TestForgedEntriesFromAMemberAreRefused(t *testing.T) {
	remote := newRemote(t)
	a := secureNode(t, remote, secretEnv(1), nil)
	b := secureNode(t, remote, secretEnv(1), nil, a)
	eventually(t, "a and b joined", func() bool { return aliveCount(t, a) == 2 })
	id := ulid.Make().String()
	mustPut(t, a, id, 0, "keep.txt", "a level-0 body")
	oid, _ := ulid.Parse(id)
	bID, _ := ulid.Parse(nodeID(t, b))
	kr, _ := cluster.NewKeyring(secret(1))
	c := cluster.NewClient(cluster.ClientConfig{Auth: &cluster.Auth{Keyring: kr, NodeID: bID}})
	defer c.Close()
	forged := []journal.Entry{
		{ID: oid, Deleted: true, Version: journal.Version{Time: journal.Timestamp{Wall: 1<<63 - 1, Logical: 1<<32 - 1}, Node: bID}},
		{ID: oid, Version: journal.Version{Time: journal.Timestamp{Wall: time.Now().Add(time.Hour).UnixNano()}, Node: bID},
			Origin: bID, Name: "evil", Size: 1, Level: journal.LevelLocal, Sum: [32]byte{1}},
	}
	applied, err := c.Peer(a.PrivateAddr).Merge(context.Background(), forged)
	if err != nil || applied != 0 {
		t.Fatalf("forged entries: applied %d, %v; want 0", applied, err)
	}
	if resp, body := get(t, a, id, nil); resp.StatusCode != 200 || body != "a level-0 body" {
		t.Fatalf("the object after forged entries: %d %q", resp.StatusCode, body)
	}
	// A new write is stamped by a clock that did not move.
	id2 := ulid.Make().String()
	mustPut(t, a, id2, 0, "new.txt", "after")
	if wall := versionWall(t, a, id2); time.Duration(wall-time.Now().UnixNano()).Abs() > time.Minute {
		t.Errorf("a write after the forged entries is stamped %v", time.Unix(0, wall))
	}
	if resp, _, _ := a.Do(testnode.Request{Method: "POST", Path: "/api/v1/delete/" + id2}); resp.StatusCode != 200 {
		t.Errorf("delete after the forged entries: %d", resp.StatusCode)
	}
	if s, m := metaOn(t, a, id2); s != 404 || m["is_deleted"] != true {
		t.Errorf("after delete: %d %v", s, m)
	}
}

// versionWall returns the wall time of an object's version on n.
func versionWall(t *testing.T, n *testnode.Node, id string) int64 {
	t.Helper()
	_, m := metaOn(t, n, id)
	v, _ := m["version"].(string)
	wall, err := strconv.ParseInt(strings.SplitN(v, ".", 2)[0], 10, 64)
	if err != nil {
		t.Fatalf("version %q of %s", v, id)
	}
	return wall
}

// A node whose clock runs an hour ahead refuses writes and readiness,
// saying why; the others go on; nothing acknowledged is lost and no
// version from the future reaches any journal.
func TestPeerClockAnHourAhead(t *testing.T) {
	remote := newRemote(t)
	a := secureNode(t, remote, secretEnv(1), nil)
	b := secureNode(t, remote, secretEnv(1), nil, a)
	skewed := secureNode(t, remote, append(secretEnv(1), "OBJSTORE_FAULT_CLOCK_SKEW=1h"), nil, a)
	for _, n := range []*testnode.Node{a, b, skewed} {
		eventually(t, "three alive", func() bool { return aliveCount(t, n) == 3 })
	}
	eventually(t, "the skewed node refuses writes", func() bool {
		resp, body := put(t, skewed, ulid.Make().String(), 1, "x.txt", "x", nil)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "clock")
	})
	var acked []string
	for i := range 20 {
		n := []*testnode.Node{a, b}[i%2]
		id := ulid.Make().String()
		if resp, body := put(t, n, id, 1, "ok.txt", "acknowledged "+id, nil); resp.StatusCode != 200 {
			t.Fatalf("write to a healthy node: %d %s", resp.StatusCode, body)
		}
		acked = append(acked, id)
	}
	// The healthy nodes' clocks were not dragged forward.
	for _, id := range acked {
		if wall := versionWall(t, a, id); time.Duration(wall-time.Now().UnixNano()) > 10*time.Second {
			t.Errorf("%s is stamped %v, in the future", id, time.Unix(0, wall))
		}
	}
	// The skewed node is not ready, so a load balancer routes around it;
	// every acknowledged write reads back through the others.
	if resp, body, _ := skewed.Do(testnode.Request{Path: "/readyz"}); resp.StatusCode != 503 || !strings.Contains(string(body), "clock") {
		t.Errorf("skewed /readyz: %d %s", resp.StatusCode, body)
	}
	for _, n := range []*testnode.Node{a, b} {
		for _, id := range acked {
			eventually(t, "acknowledged write readable", func() bool {
				resp, body := get(t, n, id, nil)
				return resp.StatusCode == 200 && body == "acknowledged "+id
			})
		}
	}
	if resp, body := put(t, skewed, ulid.Make().String(), 1, "x.txt", "x", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("the skewed node took a write: %d %s", resp.StatusCode, body)
	}
}

// The cluster secret is rotated (install, use, remove) across a running
// three-node cluster while clients write, without one failed write; the
// rotation outlives a restart, and the old secret no longer gets in.
func TestKeyRotationUnderWrites(t *testing.T) {
	remote := newRemote(t)
	a := secureNode(t, remote, secretEnv(1), nil)
	b := secureNode(t, remote, secretEnv(1), nil, a)
	c := secureNode(t, remote, secretEnv(1), nil, b)
	ns := []*testnode.Node{a, b, c}
	for _, n := range ns {
		eventually(t, "three alive", func() bool { return aliveCount(t, n) == 3 })
	}
	var (
		mu      sync.Mutex
		written []string
		failed  atomic.Int64
		stop    = make(chan struct{})
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := ulid.Make().String()
			// Not put: a goroutine other than the test's must not stop it.
			resp, body, err := ns[i%3].Do(testnode.Request{Method: "POST", Path: "/api/v1/put", Body: strings.NewReader(id),
				Header: map[string]string{"X-Meta-ID": id, "X-Meta-Name": "w.txt", "X-Meta-ConsistencyLevel": "2"}})
			if err != nil || resp.StatusCode != 200 {
				failed.Add(1)
				t.Logf("write during rotation: %v %v %s", err, resp, body)
				continue
			}
			mu.Lock()
			written = append(written, id)
			mu.Unlock()
		}
	}()
	rotate := func(req map[string]string) {
		t.Helper()
		body, _ := json.Marshal(req)
		resp, b, err := a.Do(testnode.Request{Method: "POST", Path: "/api/v1/cluster/keyring", Body: bytes.NewReader(body)})
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("keyring %v: %v %d %s", req["op"], err, resp.StatusCode, b)
		}
		var res struct {
			Nodes []struct {
				Node  string
				OK    bool
				Error string
			}
		}
		json.Unmarshal(b, &res)
		if len(res.Nodes) != 3 {
			t.Fatalf("keyring %v reached %d nodes: %s", req["op"], len(res.Nodes), b)
		}
		for _, r := range res.Nodes {
			if !r.OK {
				t.Fatalf("keyring %v on %s: %s", req["op"], r.Node, r.Error)
			}
		}
		time.Sleep(500 * time.Millisecond) // writes go on between the steps
	}
	oldID, _ := cluster.Fingerprint(secret(1))
	newID, _ := cluster.Fingerprint(secret(2))
	time.Sleep(500 * time.Millisecond)
	rotate(map[string]string{"op": "install", "secret": base64.StdEncoding.EncodeToString(secret(2))})
	rotate(map[string]string{"op": "use", "id": newID})
	rotate(map[string]string{"op": "remove", "id": oldID})
	close(stop)
	<-done
	if n := failed.Load(); n > 0 {
		t.Errorf("%d writes failed during the rotation", n)
	}
	for _, n := range ns {
		_, b, _ := n.Do(testnode.Request{Path: "/api/v1/cluster/keyring"})
		if !strings.Contains(string(b), newID) || strings.Contains(string(b), oldID) {
			t.Errorf("keyring of %s after the rotation: %s", n.PublicAddr, b)
		}
	}
	t.Logf("%d writes during the rotation, %d failed", len(written), failed.Load())
	// b restarts with the old secret in its environment: its persisted
	// keyring stands, and it rejoins.
	b.Kill()
	b.Start()
	eventually(t, "b back", func() bool { return aliveCount(t, a) == 3 && aliveCount(t, b) == 3 })
	for _, id := range written[len(written)-5:] {
		if resp, body := get(t, b, id, nil); resp.StatusCode != 200 || body != id {
			t.Errorf("read after restart: %d %q", resp.StatusCode, body)
		}
	}
	// A new node with only the old secret stays out.
	late := secureNode(t, newRemote(t), secretEnv(1), nil, a)
	time.Sleep(3 * time.Second)
	if n := aliveCount(t, late); n != 1 {
		t.Errorf("a node with the removed secret sees %d members", n)
	}
}

// Nodes speak mutual TLS with a cluster CA; a node with a certificate of
// another CA gets nothing; certificates reload on SIGHUP; the public API
// serves HTTPS that curl verifies with --cacert.
func TestMutualTLSAndPublicTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir)
	remote := newRemote(t)
	tlsArgs := func(name string) []string {
		cert, key := ca.Issue(name, "127.0.0.1")
		return []string{"--cluster-ca", ca.CertFile(), "--node-cert", cert, "--node-key", key}
	}
	a := secureNode(t, remote, nil, tlsArgs("a"))
	b := secureNode(t, remote, nil, tlsArgs("b"), a)
	eventually(t, "a and b joined", func() bool { return aliveCount(t, a) == 2 && aliveCount(t, b) == 2 })
	id := ulid.Make().String()
	mustPut(t, a, id, 2, "tls.txt", "over mutual TLS")
	eventually(t, "b holds a copy", func() bool { _, m := metaOn(t, b, id); return m["is_local"] == true })

	// Another CA's certificate does not get through the handshake.
	rogueDir := t.TempDir()
	rogue := testpki.NewCA(t, rogueDir)
	rcert, rkey := rogue.Issue("rogue", "127.0.0.1")
	certs, err := cluster.LoadCerts(rogue.CertFile(), rcert, rkey)
	if err != nil {
		t.Fatal(err)
	}
	bID, _ := ulid.Parse(nodeID(t, b))
	rc := cluster.NewClient(cluster.ClientConfig{Auth: &cluster.Auth{TLS: certs, NodeID: bID}})
	defer rc.Close()
	if _, err := rc.Peer(a.PrivateAddr).Entries(context.Background(), nil); err == nil {
		t.Error("a node with another CA's certificate was served")
	}
	if code := rawPrivate(t, a, "GET", cluster.PathPing, nil); code == 200 {
		t.Error("plain HTTP to the private port was served")
	}
	// A node with another CA's certificate gets into gossip (which TLS
	// does not cover) but not into the cluster: vetted over the private
	// API, it is marked untrusted, is no one's peer, and learns nothing.
	rogueArgs := []string{"--cluster-ca", rogue.CertFile(), "--node-cert", rcert, "--node-key", rkey}
	intruder := secureNode(t, newRemote(t), nil, rogueArgs, a)
	intruderID := nodeID(t, intruder)
	eventually(t, "a marks the intruder untrusted", func() bool {
		_, b, _ := a.Do(testnode.Request{Path: "/api/v1/nodes"})
		var ms []struct {
			ID        string `json:"id"`
			Untrusted bool   `json:"untrusted"`
		}
		json.Unmarshal(b, &ms)
		for _, m := range ms {
			if m.ID == intruderID {
				return m.Untrusted
			}
		}
		return false
	})
	if s, _ := metaOn(t, intruder, id); s != 404 {
		t.Errorf("the intruder learned of an object: %d", s)
	}
	if resp, _ := get(t, intruder, id, map[string]string{"X-Meta-Fetch": "true"}); resp.StatusCode == 200 {
		t.Error("the intruder read an object")
	}

	// SIGHUP reloads the node certificate.
	tlsArgs("a")
	if err := a.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a reloads", func() bool { return strings.Contains(a.Log(), "reloaded") })
	id2 := ulid.Make().String()
	mustPut(t, a, id2, 2, "after-reload.txt", "still speaking TLS")
	eventually(t, "b holds the later copy", func() bool { _, m := metaOn(t, b, id2); return m["is_local"] == true })

	// The public API over HTTPS.
	pcert, pkey := ca.Issue("public", "127.0.0.1", "localhost")
	p := testnode.Start(t, testnode.Options{PublicCA: ca.CertFile(), Args: []string{"--tls-cert", pcert, "--tls-key", pkey}})
	if _, err := exec.LookPath("curl"); err != nil {
		need(t, "curl is not installed")
	}
	out, err := exec.Command("curl", "-sS", "--fail", "--cacert", ca.CertFile(), p.URL+"/api/v1/ping").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 26 {
		t.Errorf("curl --cacert: %v %s", err, out)
	}
	if out, err := exec.Command("curl", "-sS", "--fail", p.URL+"/api/v1/ping").CombinedOutput(); err == nil {
		t.Errorf("curl without the CA trusted the certificate: %s", out)
	}
}

// A node refuses to start with an unauthenticated cluster reachable from
// the network, unless told so; no secret shows on its command line, in its
// log or on its debug port.
func TestInsecureClusterRefusedAndSecretsHidden(t *testing.T) {
	bin := testnode.Binary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--private-addr", "0.0.0.0:0", "--gossip-addr", "127.0.0.1:0", "--public-addr", "127.0.0.1:0",
		"--state-dir", filepath.Join(dir, "s"), "--files-dir", filepath.Join(dir, "f"), "--remote-dir", filepath.Join(dir, "r"))
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--insecure-cluster") {
		t.Errorf("insecure start: %v\n%s", err, out)
	}

	// With a secret given in a file.
	secretFile := filepath.Join(dir, "cluster.secret")
	enc := base64.StdEncoding.EncodeToString(secret(7))
	os.WriteFile(secretFile, []byte(enc+"\n"), 0o600)
	debug := testnode.FreeAddr(t)
	n := testnode.Start(t, testnode.Options{Args: []string{"--cluster-secret-file", secretFile, "--debug-addr", debug}})
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n.Pid()))
	if bytes.Contains(cmdline, []byte(enc)) || strings.Contains(n.Log(), enc) {
		t.Error("the secret shows on the command line or in the log")
	}
	resp, err := http.Get("http://" + debug + "/debug/pprof/cmdline")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || bytes.Contains(body, []byte(enc)) {
			t.Errorf("/debug/pprof/cmdline: %d %s", resp.StatusCode, body)
		}
	}
	if fi, err := os.Stat(filepath.Join(n.StateDir(), "keyring.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("persisted keyring: %v %v", fi, err)
	}
}

// With a credentials file, every call but health, readiness, ping and
// version needs an access key with the right scope, given as SigV4 (curl
// --aws-sigv4) or Basic; the file reloads on SIGHUP.
func TestAccessKeysAndScopes(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		need(t, "curl is not installed")
	}
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	os.WriteFile(creds, []byte("# test keys\nreader  reader-secret-1  read\nwriter  writer-secret-1  read,write\n"), 0o600)
	n := testnode.Start(t, testnode.Options{Args: []string{"--credentials-file", creds}})
	curl := func(args ...string) (int, string) {
		t.Helper()
		out, err := exec.Command("curl", append([]string{"-s", "-o", "/dev/stderr", "-w", "%{http_code}"}, args...)...).Output()
		code, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil && code == 0 {
			t.Fatalf("curl %v: %v", args, err)
		}
		return code, string(out)
	}
	sig := func(user string) []string { return []string{"--aws-sigv4", "aws:amz:us-east-1:s3", "--user", user} }
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/api/v1/ping": 200, "/api/v1/id": 401, "/api/v1/stats": 401} {
		if code, _ := curl(n.URL + path); code != want {
			t.Errorf("anonymous %s: %d, want %d", path, code, want)
		}
	}
	id := ulid.Make().String()
	putArgs := func(user, body string) []string {
		return append(sig(user), "--data-binary", body, "-H", "X-Meta-ID: "+id, "-H", "X-Meta-Name: s.txt",
			"-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", n.URL+"/api/v1/put")
	}
	if code, _ := curl(putArgs("reader:reader-secret-1", "no")...); code != 403 {
		t.Errorf("PUT with a read key: %d, want 403", code)
	}
	if code, _ := curl(putArgs("writer:wrong-secret-9", "no")...); code != 401 {
		t.Errorf("PUT with a wrong secret: %d, want 401", code)
	}
	if code, _ := curl(putArgs("writer:writer-secret-1", "scoped body")...); code != 200 {
		t.Fatalf("PUT with a write key: %d", code)
	}
	if code, _ := curl(append(sig("reader:reader-secret-1"), n.URL+"/api/v1/get/"+id)...); code != 200 {
		t.Errorf("GET with a read key (SigV4): %d", code)
	}
	if code, _ := curl("--user", "reader:reader-secret-1", n.URL+"/api/v1/get/"+id); code != 200 {
		t.Errorf("GET with a read key (Basic): %d", code)
	}
	if code, _ := curl(append(sig("reader:reader-secret-1"), "-X", "POST", n.URL+"/api/v1/delete/"+id)...); code != 403 {
		t.Errorf("DELETE with a read key: %d, want 403", code)
	}
	if code, _ := curl(append(sig("writer:writer-secret-1"), n.URL+"/api/v1/cluster/keyring")...); code != 403 {
		t.Errorf("keyring with a write key: %d, want 403", code)
	}
	// A body that is not the one signed is refused and not stored.
	other := ulid.Make().String()
	sum := "0000000000000000000000000000000000000000000000000000000000000000"
	if code, _ := curl(append(sig("writer:writer-secret-1"), "--data-binary", "tampered", "-H", "X-Meta-ID: "+other,
		"-H", "x-amz-content-sha256: "+sum, n.URL+"/api/v1/put")...); code != 400 {
		t.Errorf("PUT whose body does not match its signed checksum: %d, want 400", code)
	}
	if code, _ := curl("--user", "writer:writer-secret-1", n.URL+"/api/v1/meta/"+other); code != 404 {
		t.Errorf("the refused body was stored: meta %d", code)
	}
	// A key added to the file works after SIGHUP.
	os.WriteFile(creds, []byte("reader reader-secret-1 read\nwriter writer-secret-1 read,write\nops ops-secret-12 admin\n"), 0o600)
	n.Signal(syscall.SIGHUP)
	eventually(t, "the new key works", func() bool {
		code, _ := curl(append(sig("ops:ops-secret-12"), n.URL+"/api/v1/stats")...)
		return code == 200
	})
}
