package main_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testnode"
)

// need skips a test that lacks something of the machine it runs on, or
// fails it when CI is set: CI must run everything.
func need(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// A full disk answers 507 and leaves existing objects as they were.
func TestDiskFullIs507(t *testing.T) {
	dir := t.TempDir()
	files := filepath.Join(dir, "files")
	os.MkdirAll(files, 0o755)
	if err := syscall.Mount("tmpfs", files, "tmpfs", 0, "size=2m"); err != nil {
		need(t, "cannot mount a small tmpfs (needs root): %v", err)
	}
	defer syscall.Unmount(files, syscall.MNT_DETACH)
	n := testnode.Start(t, testnode.Options{Dir: dir})
	defer n.Kill()
	small := ulid.Make().String()
	mustPut(t, n, small, 0, "small.txt", "fits")
	resp, b := put(t, n, ulid.Make().String(), 0, "big.bin", strings.Repeat("x", 3<<20), nil)
	if resp.StatusCode != http.StatusInsufficientStorage {
		t.Errorf("PUT beyond the disk: %d %s, want 507", resp.StatusCode, b)
	}
	if resp, body := get(t, n, small, nil); resp.StatusCode != 200 || body != "fits" {
		t.Errorf("existing object after a full disk: %d %q", resp.StatusCode, body)
	}
	entries, _ := os.ReadDir(filepath.Join(files, ".tmp"))
	if len(entries) != 0 {
		t.Errorf("%d temporary files left after the failed PUT", len(entries))
	}
	mustPut(t, n, ulid.Make().String(), 0, "again.txt", "space is back")
}

// A body damaged on disk is found by the start-up scrub, never served, and
// fetched again from S3.
func TestStartupScrubRepairsFromS3(t *testing.T) {
	n, _, _ := s3Node(t)
	id := ulid.Make().String()
	mustPut(t, n, id, 1, "precious.txt", "precious bytes")
	n.Kill()
	var path string
	filepath.Walk(n.FilesDir(), func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(info.Name(), id) {
			path = p
		}
		return nil
	})
	if path == "" {
		t.Fatal("body file not found")
	}
	rotFile(t, path) // same size, bit rot
	n.Start()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(n.Log(), "repaired body from the remote") {
		if time.Now().After(deadline) {
			t.Fatalf("no repair within 30s:\n%s", n.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, body := get(t, n, id, nil); resp.StatusCode != 200 || body != "precious bytes" {
		t.Errorf("after repair: %d %q", resp.StatusCode, body)
	}
	if !strings.Contains(n.Log(), "scrub found a damaged body") {
		t.Error("the scrub did not report the damage")
	}
}

// Every option can come from the environment instead of a flag.
func TestConfigurationFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	pub, dbg := testnode.FreeAddr(t), testnode.FreeAddr(t)
	cmd := exec.Command(testnode.Binary(t))
	cmd.Env = append(os.Environ(),
		"NET_PUBLIC_ADDR="+pub, "NET_PRIVATE_ADDR="+testnode.FreeAddr(t), "NET_GOSSIP_ADDR="+testnode.FreeAddr(t),
		"NET_DEBUG_ADDR="+dbg, "APP_STATE_DIR="+filepath.Join(dir, "s"), "APP_FILES_DIR="+filepath.Join(dir, "f"),
		"APP_REMOTE_DIR="+filepath.Join(dir, "r"), "APP_MAX_OBJECT_SIZE=10", "APP_DEBUG_LEVEL=1")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitUp(t, "http://"+pub+"/api/v1/ping")
	req, _ := http.NewRequest("POST", "http://"+pub+"/api/v1/put", strings.NewReader("eleven byte"))
	req.Header.Set("X-Meta-ID", ulid.Make().String())
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("APP_MAX_OBJECT_SIZE=10 and 11 bytes: %v %v", resp, err)
	}
	resp, err = http.Get("http://" + dbg + "/debug/pprof/goroutine?debug=1")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("pprof on NET_DEBUG_ADDR: %v %v", resp, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "s", "node-id")); err != nil {
		t.Errorf("APP_STATE_DIR not used: %v", err)
	}
}

func waitUp(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within 30s", url)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestVersionAndBadConfiguration(t *testing.T) {
	out, err := exec.Command(testnode.Binary(t), "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "objstore ") {
		t.Errorf("--version: %q %v", out, err)
	}
	cmd := exec.CommandContext(context.Background(), testnode.Binary(t), "--public-addr", "nowhere", "--scrub-rate", "lots")
	out, err = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "--public-addr") || !strings.Contains(string(out), "--scrub-rate") {
		t.Errorf("bad configuration: exit %d, %q, %v", cmd.ProcessState.ExitCode(), out, err)
	}
}

// A second node on the same state directory fails to start instead of
// sharing the journal.
func TestSecondNodeOnSameStateFails(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	cmd := exec.Command(testnode.Binary(t), "--public-addr", testnode.FreeAddr(t), "--private-addr", testnode.FreeAddr(t),
		"--gossip-addr", testnode.FreeAddr(t), "--state-dir", n.StateDir(),
		"--files-dir", n.FilesDir(), "--remote-dir", filepath.Join(n.Dir(), "remote"))
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() == 0 || !strings.Contains(string(out), "journal") {
		t.Errorf("second node: exit %d, %s", cmd.ProcessState.ExitCode(), out)
	}
}

// /healthz answers while the process lives; /readyz once the node has
// synced with a peer (at once when it has none to join), and no longer
// while it drains before a shutdown.
func TestHealthAndReadiness(t *testing.T) {
	solo := testnode.Start(t, testnode.Options{Args: []string{"--drain-delay", "3s"}})
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, b, _ := solo.Do(testnode.Request{Path: path}); resp.StatusCode != 200 {
			t.Errorf("solo %s: %d %s", path, resp.StatusCode, b)
		}
	}
	if out, err := exec.Command(testnode.Binary(t), "healthcheck", "--url", solo.URL+"/readyz").CombinedOutput(); err != nil {
		t.Errorf("healthcheck of a ready node: %v %s", err, out)
	}
	// A node whose only seed never answers is alive but not ready.
	lonely := testnode.Start(t, testnode.Options{Args: []string{"--gossip-profile", "local", "-N", testnode.FreeAddr(t)}})
	if resp, _, _ := lonely.Do(testnode.Request{Path: "/healthz"}); resp.StatusCode != 200 {
		t.Errorf("lonely /healthz: %d", resp.StatusCode)
	}
	resp, b, _ := lonely.Do(testnode.Request{Path: "/readyz"})
	if resp.StatusCode != 503 || !strings.Contains(string(b), "first sync") {
		t.Errorf("lonely /readyz: %d %s", resp.StatusCode, b)
	}
	if out, err := exec.Command(testnode.Binary(t), "healthcheck", "--url", lonely.URL+"/readyz").CombinedOutput(); err == nil {
		t.Errorf("healthcheck of an unready node passed: %s", out)
	}
	// Draining: /readyz fails while requests are still answered.
	syscall.Kill(solo.Pid(), syscall.SIGTERM)
	eventually(t, "readyz fails while draining", func() bool {
		resp, _, err := solo.Do(testnode.Request{Path: "/readyz"})
		return err == nil && resp.StatusCode == 503
	})
	if resp, _, err := solo.Do(testnode.Request{Path: "/api/v1/ping"}); err != nil || resp.StatusCode != 200 {
		t.Errorf("ping while draining: %v %v", resp, err)
	}
}
