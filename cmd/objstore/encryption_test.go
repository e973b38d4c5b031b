package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/internal/testnode"
	"github.com/objstore/objstore/storage/seal"
)

// keyOf returns the key ID a sealed body file was sealed with.
func keyOf(t *testing.T, path string) uint32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := seal.Inspect(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return info.KeyID
}

// bodyFiles lists the body files of a node by object ID.
func bodyFiles(t *testing.T, n *testnode.Node) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(n.FilesDir(), func(path string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && !strings.Contains(path, ".tmp") {
			out[strings.SplitN(filepath.Base(path), ".", 2)[0]] = path
		}
		return nil
	})
	return out
}

// rotFile flips one bit in the middle of a body file, keeping its size,
// so that only a checksum can tell.
func rotFile(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/3] ^= 0x20
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func resealed(t *testing.T, n *testnode.Node) float64 {
	_, b, _ := n.Do(testnode.Request{Path: "/api/v1/stats"})
	var st struct{ Traffic map[string]float64 }
	json.Unmarshal(b, &st)
	return st.Traffic["resealed"]
}

// Bodies are encrypted on disk with the key file's first key: they read
// back whole and by range over HTTP, the files hold no plaintext, a key
// rolled in by SIGHUP seals new bodies, and the scrub reseals the old ones
// so the old key can go.
func TestEncryptionAtRest(t *testing.T) {
	bin := testnode.Binary(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "keys")
	line := func(id int) string {
		out, err := exec.Command(bin, "keygen", "--id", fmt.Sprint(id)).Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	k1, k2 := line(1), line(2)
	os.WriteFile(keyFile, []byte(k1), 0o600)
	n := testnode.Start(t, testnode.Options{Args: []string{"--encryption-key-file", keyFile}})

	body := strings.Repeat("patient record 0042; ", 100000) // 2 MiB
	id := ulid.Make().String()
	mustPut(t, n, id, 1, "records.txt", body)
	if resp, got := get(t, n, id, nil); resp.StatusCode != 200 || got != body {
		t.Fatalf("GET: %d, %d bytes", resp.StatusCode, len(got))
	}
	resp, got := get(t, n, id, map[string]string{"Range": "bytes=1000000-1000999"})
	if resp.StatusCode != 206 || got != body[1000000:1001000] {
		t.Fatalf("Range GET: %d %q", resp.StatusCode, got[:min(len(got), 40)])
	}
	files := bodyFiles(t, n)
	raw, err := os.ReadFile(files[id])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("patient record")) || !strings.HasSuffix(files[id], ".s") || keyOf(t, files[id]) != 1 {
		t.Fatalf("%s is not sealed with key 1", files[id])
	}

	// Key 2 first, key 1 kept: SIGHUP, and new bodies use key 2.
	os.WriteFile(keyFile, []byte(k2+k1), 0o600)
	n.Signal(syscall.SIGHUP)
	eventually(t, "keys reloaded", func() bool { return strings.Contains(n.Log(), "what=\"encryption keys\"") })
	id2 := ulid.Make().String()
	mustPut(t, n, id2, 0, "later.txt", "sealed under the new key")
	if k := keyOf(t, bodyFiles(t, n)[id2]); k != 2 {
		t.Fatalf("a body written after the reload is sealed with key %d", k)
	}
	// The start-up scrub reseals the old body under key 2.
	n.Stop()
	n.Start()
	eventually(t, "old body resealed", func() bool { return resealed(t, n) >= 1 })
	if k := keyOf(t, bodyFiles(t, n)[id]); k != 2 {
		t.Fatalf("after the scrub the old body is under key %d", k)
	}
	// Key 1 can go now.
	n.Stop()
	os.WriteFile(keyFile, []byte(k2), 0o600)
	n.Start()
	if resp, got := get(t, n, id, nil); resp.StatusCode != 200 || got != body {
		t.Fatalf("GET with key 1 gone: %d", resp.StatusCode)
	}
	if strings.Contains(n.Log(), strings.TrimSpace(strings.SplitN(k2, ":", 2)[1])) {
		t.Error("a key shows in the log")
	}
}
