package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/client"
	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/internal/testnode"
)

// A real node process in front of a real MinIO: its tier bucket, and an
// origin bucket served by key. Access keys: "writer" may read and write,
// "reader" only read.
type env struct {
	n      *testnode.Node
	srv    *testminio.Server
	origin string
	rw, ro *client.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := testminio.Start(t)
	tier, origin := srv.NewBucket(t), srv.NewBucket(t)
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("writer rw-secret-0123456789 read,write,admin\nreader ro-secret-0123456789 read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := testnode.Start(t, testnode.Options{Env: srv.Env(), Args: []string{"--bucket", tier, "--s3-endpoint", srv.Endpoint(),
		"--origin-buckets", origin, "--credentials-file", creds}})
	e := &env{n: n, srv: srv, origin: origin}
	var err error
	if e.rw, err = client.New(n.URL, client.WithCredentials("writer", "rw-secret-0123456789")); err != nil {
		t.Fatal(err)
	}
	if e.ro, err = client.New(strings.TrimPrefix(n.URL, "http://"), client.WithCredentials("reader", "ro-secret-0123456789")); err != nil {
		t.Fatal(err)
	}
	return e
}

// seed puts an object straight into the origin bucket, as an application
// using S3 would.
func (e *env) seed(t *testing.T, key, body string) {
	t.Helper()
	_, err := e.srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(e.origin),
		Key: aws.String(key), Body: strings.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
}

// randomBody is n bytes of seeded random content and its SHA-256.
func randomBody(n int64, seed uint64) (io.Reader, string) {
	h := sha256.New()
	io.Copy(h, io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), n))
	return io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), n), hex.EncodeToString(h.Sum(nil))
}

func TestObjectsStreamBothWays(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const size = 24 << 20
	// Of unknown length: sent chunked, never held whole by the client.
	body, sum := randomBody(size, 1)
	m, err := e.rw.Put(ctx, struct{ io.Reader }{body}, client.PutOptions{Name: "big.bin", Level: client.LevelRemote, Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != size || m.SHA256 != sum || m.Consistency != client.LevelRemote {
		t.Fatalf("put answered %+v", m)
	}
	id := ulid.MustParse(m.ID)
	obj, err := e.ro.Get(ctx, id, client.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, obj.Body)
	obj.Close()
	if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != sum || obj.SHA256 != sum || obj.Name != "big.bin" {
		t.Fatalf("get: %d bytes, err %v, meta %+v", n, err, obj.Meta)
	}
	// The last 1000 bytes.
	obj, err = e.ro.Get(ctx, id, client.GetOptions{Range: &client.Range{Offset: -1000, Length: -1}})
	if err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(obj.Body)
	obj.Close()
	if len(tail) != 1000 || obj.Length != 1000 || obj.Size != size {
		t.Fatalf("suffix range: %d bytes, length %d, size %d", len(tail), obj.Length, obj.Size)
	}
	// A conditional read of a current copy.
	if _, err := e.ro.Get(ctx, id, client.GetOptions{IfNoneMatch: `"` + sum + `"`}); !errors.Is(err, client.ErrNotModified) {
		t.Errorf("If-None-Match of the current ETag: %v", err)
	}
	st, err := e.ro.Stat(ctx, id)
	if err != nil || st.Size != size || !st.IsLocal {
		t.Fatalf("stat: %+v %v", st, err)
	}
	if m, err := e.rw.Upgrade(ctx, id, client.LevelFull); err != nil || m.Consistency != client.LevelFull {
		t.Errorf("upgrade: %+v %v", m, err)
	}
	if _, err := e.rw.Upgrade(ctx, id, client.LevelLocal); !errors.Is(err, client.ErrConflict) {
		t.Errorf("lowering the level: %v, want ErrConflict", err)
	}
	inv, err := e.rw.Invalidate(ctx, id, false)
	if err != nil || len(inv.Dropped) != 1 {
		t.Fatalf("invalidate: %+v %v", inv, err)
	}
	obj, err = e.ro.Get(ctx, id, client.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, err = io.Copy(io.Discard, obj.Body)
	obj.Close()
	if err != nil || n != size || obj.Source != "remote" {
		t.Fatalf("read after invalidate: %d bytes from %q: %v", n, obj.Source, err)
	}
	if _, err := e.rw.Delete(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ro.Stat(ctx, id); !errors.Is(err, client.ErrDeleted) || !errors.Is(err, client.ErrNotFound) {
		t.Errorf("stat of a deleted object: %v", err)
	}
}

func TestKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.seed(t, "photos/2026/a b+c%.jpg", "from the bucket")
	e.seed(t, "photos/2026/z.jpg", "zzz")
	e.seed(t, "docs/readme.txt", "read me")

	obj, err := e.ro.GetKey(ctx, e.origin, "photos/2026/a b+c%.jpg", client.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(obj.Body)
	obj.Close()
	if string(b) != "from the bucket" || obj.Source != "remote" || obj.Key != "photos/2026/a b+c%.jpg" || obj.ETag == "" {
		t.Fatalf("read through: %q from %q, %+v", b, obj.Source, obj.Meta)
	}
	m, err := e.rw.PutKey(ctx, e.origin, "docs/new.txt", strings.NewReader("written through objstore"),
		client.PutKeyOptions{ContentType: "text/plain", UserMeta: map[string]string{"k": "v"}})
	if err != nil || m.Key != "docs/new.txt" || m.Size != 24 {
		t.Fatalf("put key: %+v %v", m, err)
	}
	if st, err := e.ro.StatKey(ctx, e.origin, "docs/new.txt"); err != nil || st.ContentType != "text/plain" || st.UserMeta["k"] != "v" {
		t.Errorf("stat key: %+v %v", st, err)
	}
	page, err := e.ro.List(ctx, e.origin, client.ListOptions{Delimiter: "/"})
	if err != nil || len(page.Prefixes) != 2 || len(page.Keys) != 0 {
		t.Errorf("list with a delimiter: %+v %v", page, err)
	}
	var keys []string
	err = e.ro.ListAll(ctx, e.origin, client.ListOptions{Max: 1}, func(k client.KeyInfo) error {
		keys = append(keys, k.Key)
		return nil
	})
	if err != nil || strings.Join(keys, ",") != "docs/new.txt,docs/readme.txt,photos/2026/a b+c%.jpg,photos/2026/z.jpg" {
		t.Errorf("list all, a key a page: %q %v", keys, err)
	}
	st, err := e.ro.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.rw.InvalidateKeys(ctx, e.origin, "", "photos/", false)
	if err != nil || res.Dropped[st.NodeID] != 1 {
		t.Errorf("invalidate by prefix: %+v %v", res, err)
	}
	job, err := e.rw.Prewarm(ctx, client.PrewarmSpec{Bucket: e.origin, Prefix: "photos/"})
	if err != nil {
		t.Fatal(err)
	}
	var reports int
	job, err = e.ro.WaitPrewarm(ctx, job.ID, 50*time.Millisecond, func(client.PrewarmJob) { reports++ })
	if done, total, _ := job.Progress(); err != nil || job.Running() || done != 2 || total != 2 || job.Loaded != 2 || reports == 0 {
		t.Errorf("prewarm: %+v (%d reports) %v", job, reports, err)
	}
	if _, err := e.ro.DeleteKey(ctx, e.origin, "docs/new.txt"); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("delete with a read-only key: %v, want ErrForbidden", err)
	}
	if res, err := e.rw.DeletePrefix(ctx, e.origin, "docs/"); err != nil || res.Deleted != 2 {
		t.Errorf("delete by prefix: %+v %v", res, err)
	}
	if _, err := e.ro.GetKey(ctx, e.origin, "docs/readme.txt", client.GetOptions{}); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("read of a deleted key: %v", err)
	}
}

// Every field the server reports decodes into the client's types: a test
// that fails when the API grows a field the client does not know.
func TestClientTypesCoverTheAPI(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m, err := e.rw.Put(ctx, bytes.NewReader([]byte("x")), client.PutOptions{Name: "x", UserMeta: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.ro.Stats(ctx)
	if err != nil || st.Traffic.Puts != 1 || st.Journal.Objects != 1 || st.Members["alive"] != 1 || st.Disk.BytesAll == 0 {
		t.Errorf("stats: %+v %v", st, err)
	}
	ms, err := e.ro.Nodes(ctx)
	if err != nil || len(ms) != 1 || !ms[0].Self || ms[0].State != "alive" {
		t.Errorf("nodes: %+v %v", ms, err)
	}
	strict := func(path string, v any) {
		t.Helper()
		resp, b, err := e.n.Do(testnode.Request{Path: path, Header: map[string]string{"Authorization": basic("reader", "ro-secret-0123456789")}})
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %d", path, err, resp.StatusCode)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Errorf("%s does not decode strictly into %T: %v", path, v, err)
		}
	}
	strict("/api/v1/stats", &client.Stats{})
	strict("/api/v1/nodes", &[]client.Member{})
	strict("/api/v1/meta/"+m.ID, &client.Meta{})
}

func TestErrorsAreMatchable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	anon, _ := client.New(e.n.URL)
	if _, err := anon.Stats(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("no key: %v", err)
	}
	wrong, _ := client.New(e.n.URL, client.WithCredentials("writer", "not-the-secret"))
	if _, err := wrong.Stats(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := e.ro.Put(ctx, strings.NewReader("x"), client.PutOptions{}); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("read-only key writes: %v", err)
	}
	_, err := e.rw.Put(ctx, strings.NewReader("x"), client.PutOptions{Level: 7})
	var ce *client.Error
	if !errors.Is(err, client.ErrBadRequest) || !errors.As(err, &ce) || ce.Status != http.StatusBadRequest || !strings.Contains(ce.Message, "ConsistencyLevel") {
		t.Errorf("level 7: %v", err)
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.ro.Stats(ctx2); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: %v", err)
	}
	if _, err := client.New("ftp://x"); err == nil {
		t.Error("an ftp URL was taken")
	}
}

func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "http://x", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}
