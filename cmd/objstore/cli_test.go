package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/internal/testnode"
)

// cliEnv is the command-line client pointed at a real node in front of a
// real MinIO with an origin bucket, and an access key in a key file.
type cliEnv struct {
	t       *testing.T
	bin     string
	env     []string
	origin  string
	dir     string
	keyFile string
}

func newCLIEnv(t *testing.T) *cliEnv {
	srv := testminio.Start(t)
	tier, origin := srv.NewBucket(t), srv.NewBucket(t)
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(creds, []byte("writer writer-secret-0123456789 read,write\nreader reader-secret-0123456789 read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("writer writer-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := testnode.Start(t, testnode.Options{Env: srv.Env(), Args: []string{"--bucket", tier, "--s3-endpoint", srv.Endpoint(),
		"--origin-buckets", origin, "--credentials-file", creds}})
	return &cliEnv{t: t, bin: testnode.Binary(t), origin: origin, dir: dir, keyFile: keyFile,
		env: []string{"OBJSTORE_URL=" + n.URL, "OBJSTORE_KEY_FILE=" + keyFile}}
}

// run runs the client with args and stdin, and returns its standard
// output, standard error and exit code.
func (e *cliEnv) run(stdin string, args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(os.Environ(), e.env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// must runs the client and fails the test unless it exits 0.
func (e *cliEnv) must(stdin string, args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(stdin, args...)
	if code != 0 {
		e.t.Fatalf("objstore %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func TestCLIObjects(t *testing.T) {
	e := newCLIEnv(t)
	a, b := filepath.Join(e.dir, "a.txt"), filepath.Join(e.dir, "b.bin")
	os.WriteFile(a, []byte("alpha"), 0o644)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB
	os.WriteFile(b, big, 0o644)

	// Several files at once, JSON for scripts.
	var put []struct {
		ID, Name string
		Size     int64
	}
	if err := json.Unmarshal([]byte(e.must("", "put", "--json", "-l", "1", "-m", "owner=alice", a, b)), &put); err != nil {
		t.Fatal(err)
	}
	if len(put) != 2 || put[0].Name != "a.txt" || put[1].Size != int64(len(big)) {
		t.Fatalf("put answered %+v", put)
	}
	// Standard input, named.
	line := e.must("from stdin", "put", "--name", "in.txt")
	id, rest, _ := strings.Cut(strings.TrimSpace(line), "\t")
	if rest != "10\tin.txt" {
		t.Fatalf("put from stdin printed %q", line)
	}
	if got := e.must("", "get", id); got != "from stdin" {
		t.Errorf("get to stdout: %q", got)
	}
	out := filepath.Join(e.dir, "copy.bin")
	e.must("", "get", "-o", out, put[1].ID)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, big) {
		t.Errorf("get -o: %d bytes, want %d", len(got), len(big))
	}
	if got := e.must("", "get", "--range", "2-4", put[0].ID); got != "pha" {
		t.Errorf("get --range 2-4: %q", got)
	}
	if got := e.must("", "get", "--range=-3", put[0].ID); got != "pha" {
		t.Errorf("get --range=-3: %q", got)
	}
	var meta []map[string]any
	if err := json.Unmarshal([]byte(e.must("", "stat", "--json", put[0].ID)), &meta); err != nil || len(meta) != 1 ||
		meta[0]["consistency"] != 1.0 || meta[0]["user_meta"].(map[string]any)["owner"] != "alice" {
		t.Errorf("stat --json: %v %v", meta, err)
	}
	if s := e.must("", "stat", put[0].ID); !strings.Contains(s, "meta owner:") || !strings.Contains(s, "level:") {
		t.Errorf("stat:\n%s", s)
	}
	if s := e.must("", "invalidate", put[0].ID); !strings.Contains(s, "1 copies dropped") {
		t.Errorf("invalidate: %q", s)
	}
	if s := e.must("", "prewarm", put[0].ID); !strings.Contains(s, "1 loaded") {
		t.Errorf("prewarm: %q", s)
	}
	e.must("", "rm", put[0].ID)

	// Exit codes scripts can rely on.
	for _, c := range []struct {
		args []string
		env  []string
		code int
	}{
		{[]string{"get", put[0].ID}, nil, 3},                     // deleted
		{[]string{"stat", "01JDQ6G4Y8N3ZK2V7M5R9T1W0X"}, nil, 3}, // unknown
		{[]string{"get", "not-an-id"}, nil, 2},                   // usage
		{[]string{"put", "--level", "5", a}, nil, 2},             // usage
		{[]string{"stats"}, []string{"OBJSTORE_KEY_FILE="}, 4},   // no key
		{[]string{"put", a}, []string{"OBJSTORE_KEY_FILE=", "OBJSTORE_ACCESS_KEY=reader", "OBJSTORE_SECRET_KEY=reader-secret-0123456789"}, 4}, // read-only
		{[]string{"nodes"}, []string{"OBJSTORE_URL=http://127.0.0.1:1"}, 1},                                                                   // unreachable
		{[]string{"put", filepath.Join(e.dir, "missing")}, nil, 1},                                                                            // local file
	} {
		saved := e.env
		e.env = append(append([]string{}, e.env...), c.env...)
		_, errOut, code := e.run("", c.args...)
		e.env = saved
		if code != c.code || !strings.HasPrefix(errOut, "objstore: ") {
			t.Errorf("objstore %s: exit %d, want %d; stderr %q", strings.Join(c.args, " "), code, c.code, errOut)
		}
	}

	var nodes []map[string]any
	if err := json.Unmarshal([]byte(e.must("", "nodes", "--json")), &nodes); err != nil || len(nodes) != 1 || nodes[0]["state"] != "alive" {
		t.Errorf("nodes --json: %v %v", nodes, err)
	}
	if s := e.must("", "stats"); !strings.Contains(s, "served without S3") || !strings.Contains(s, "1 alive") {
		t.Errorf("stats:\n%s", s)
	}
}

func TestCLIKeys(t *testing.T) {
	e := newCLIEnv(t)
	f := filepath.Join(e.dir, "report.csv")
	os.WriteFile(f, []byte("a,b\n1,2\n"), 0o644)
	e.must("", "put", "-b", e.origin, "--prefix", "reports/2026/", "--content-type", "text/csv", f)
	e.must("keyed from stdin", "put", "-b", e.origin, "-k", "notes/today.txt")
	if got := e.must("", "get", e.origin+"/reports/2026/report.csv"); got != "a,b\n1,2\n" {
		t.Errorf("get key: %q", got)
	}
	if got := e.must("", "ls", e.origin); got != "notes/\nreports/\n" {
		t.Errorf("ls: %q", got)
	}
	if got := e.must("", "ls", "-R", e.origin+"/reports/"); got != "reports/2026/report.csv\n" {
		t.Errorf("ls -R: %q", got)
	}
	if s := e.must("", "stat", e.origin+"/reports/2026/report.csv"); !strings.Contains(s, "text/csv") {
		t.Errorf("stat key:\n%s", s)
	}
	if s := e.must("", "invalidate", "--prefix", e.origin+"/reports/"); !strings.Contains(s, "1 copies dropped") {
		t.Errorf("invalidate --prefix: %q", s)
	}
	if s := e.must("", "prewarm", "-b", e.origin, "--prefix", "reports/"); !strings.Contains(s, "1 loaded") {
		t.Errorf("prewarm a prefix: %q", s)
	}
	e.must("", "rm", "--prefix", e.origin+"/reports/")
	e.must("", "rm", e.origin+"/notes/today.txt")
	if got := e.must("", "ls", "-R", e.origin); got != "" {
		t.Errorf("ls after rm: %q", got)
	}
	if _, _, code := e.run("", "rm", "--prefix", e.origin+"/"); code != 2 {
		t.Errorf("rm --prefix of a whole bucket: exit %d, want 2", code)
	}
}
