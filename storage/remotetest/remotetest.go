// Package remotetest is the conformance suite every storage.Remote passes.
// A backend's tests call Run with a constructor; the suite stores, reads and
// removes objects under unique keys and checks the contracts documented in
// package storage.
package remotetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/objstore/objstore/storage"
)

// ErrInjected is the error returned by readers from FailAfter.
var ErrInjected = errors.New("remotetest: injected reader failure")

// Data returns a reader of n deterministic pseudo-random bytes derived from
// seed. It generates the bytes as they are read, so large objects are never
// held in memory; the same seed and n always yield the same bytes.
func Data(seed uint64, n int64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return io.LimitReader(mrand.NewChaCha8(key), n)
}

// DataSum returns the SHA-256 of Data(seed, n).
func DataSum(seed uint64, n int64) [32]byte {
	h := sha256.New()
	if _, err := io.Copy(h, Data(seed, n)); err != nil {
		// Data never fails; a failure here is a broken generator.
		return [32]byte{}
	}
	return [32]byte(h.Sum(nil))
}

// FailAfter returns a reader yielding the first n bytes of r, then failing
// with ErrInjected.
func FailAfter(r io.Reader, n int64) io.Reader {
	return io.MultiReader(io.LimitReader(r, n), failReader{})
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, ErrInjected }

// cancelAfter yields r's bytes and calls cancel once n bytes were read, then
// goes on yielding bytes, so only the context can stop the Put.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// Key returns a key unique to this test run, under a folder named after the
// test, for suites sharing a bucket or directory.
func Key(t testing.TB, name string) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	clean := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, t.Name())
	return fmt.Sprintf("remotetest/%s-%s/%s", clean, hex.EncodeToString(b[:]), name)
}

// Run runs the conformance suite against the Remote returned by newRemote,
// which is called once per subtest (sequentially) and should return an empty
// or shared backend; the suite only touches keys it made with Key. newRemote
// may register cleanups with t.
func Run(t *testing.T, newRemote func(t *testing.T) storage.Remote) {
	tests := []struct {
		name string
		fn   func(*testing.T, storage.Remote)
	}{
		{"RoundTripSmall", testRoundTripSmall},
		{"RoundTripEmpty", testRoundTripEmpty},
		{"RoundTripLarge", testRoundTripLarge},
		{"SizeMismatch", testSizeMismatch},
		{"Metadata", testMetadata},
		{"MetadataLongValues", testMetadataLong},
		{"MetadataEmpty", testMetadataEmpty},
		{"MetadataKeys", testMetadataKeys},
		{"Missing", testMissing},
		{"Ranges", testRanges},
		{"Replace", testReplace},
		{"IdempotentPut", testIdempotentPut},
		{"Remove", testRemove},
		{"InvalidKeys", testInvalidKeys},
		{"NestedKeys", testNestedKeys},
		{"FailingReader", testFailingReader},
		{"Canceled", testCanceled},
		{"Concurrent", testConcurrent},
		{"PartialReadClose", testPartialReadClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newRemote(t))
		})
	}
}

// ctx returns a context bounded well below any test timeout, so a hung
// backend fails the subtest instead of the whole binary.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	t.Cleanup(cancel)
	return c
}

func put(t *testing.T, r storage.Remote, key string, data []byte, meta map[string]string) {
	t.Helper()
	if err := r.Put(ctx(t), key, bytes.NewReader(data), int64(len(data)), meta); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

// get reads a whole range and checks that Get's ObjectInfo agrees with Stat.
func get(t *testing.T, r storage.Remote, key string, off, n int64) ([]byte, storage.ObjectInfo) {
	t.Helper()
	rc, info, err := r.Get(ctx(t), key, off, n)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): %v", key, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): read: %v", key, off, n, err)
	}
	if info.Key != key {
		t.Errorf("Get(%q).Key = %q", key, info.Key)
	}
	return b, info
}

func wantNotFound(t *testing.T, r storage.Remote, key string) {
	t.Helper()
	if _, err := r.Stat(ctx(t), key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(%q) = %v, want ErrNotFound", key, err)
	}
	rc, _, err := r.Get(ctx(t), key, 0, -1)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(%q) = %v, want ErrNotFound", key, err)
	}
	if rc != nil {
		rc.Close()
		t.Errorf("Get(%q) returned a reader with an error", key)
	}
}

func sameMeta(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}

func testRoundTripSmall(t *testing.T, r storage.Remote) {
	data := []byte("hello, objstore\n")
	meta := map[string]string{"content-type": "text/plain", "x1": "y"}
	for _, size := range []int64{int64(len(data)), -1} {
		t.Run(fmt.Sprintf("size%d", size), func(t *testing.T) {
			key := Key(t, "small")
			before := time.Now()
			if err := r.Put(ctx(t), key, bytes.NewReader(data), size, meta); err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, info := get(t, r, key, 0, -1)
			if !bytes.Equal(got, data) {
				t.Errorf("Get = %q, want %q", got, data)
			}
			if info.Size != int64(len(data)) {
				t.Errorf("Get size = %d, want %d", info.Size, len(data))
			}
			if !sameMeta(info.Meta, meta) {
				t.Errorf("Get meta = %v, want %v", info.Meta, meta)
			}
			// Backends keep time at second precision; allow for clock skew
			// with a server.
			if info.ModTime.Before(before.Add(-time.Minute)) || info.ModTime.After(time.Now().Add(time.Minute)) {
				t.Errorf("Get ModTime = %v, want about %v", info.ModTime, before)
			}
			st, err := r.Stat(ctx(t), key)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if st.Key != key || st.Size != info.Size || !sameMeta(st.Meta, meta) || !st.ModTime.Equal(info.ModTime) {
				t.Errorf("Stat = %+v, want %+v", st, info)
			}
		})
	}
}

func testRoundTripEmpty(t *testing.T, r storage.Remote) {
	for _, size := range []int64{0, -1} {
		t.Run(fmt.Sprintf("size%d", size), func(t *testing.T) {
			key := Key(t, "empty")
			if err := r.Put(ctx(t), key, bytes.NewReader(nil), size, nil); err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, info := get(t, r, key, 0, -1)
			if len(got) != 0 || info.Size != 0 {
				t.Errorf("Get = %d bytes, size %d; want empty", len(got), info.Size)
			}
			got, info = get(t, r, key, 0, 10)
			if len(got) != 0 || info.Size != 0 {
				t.Errorf("Get(0, 10) = %d bytes, size %d; want empty", len(got), info.Size)
			}
			st, err := r.Stat(ctx(t), key)
			if err != nil || st.Size != 0 {
				t.Errorf("Stat = %+v, %v; want size 0", st, err)
			}
		})
	}
}

func testRoundTripLarge(t *testing.T, r storage.Remote) {
	const n = 20 << 20 // several parts for a multipart upload
	const seed = 20
	want := DataSum(seed, n)
	for _, size := range []int64{n, -1} {
		t.Run(fmt.Sprintf("size%d", size), func(t *testing.T) {
			key := Key(t, "large")
			if err := r.Put(ctx(t), key, Data(seed, n), size, map[string]string{"k": "v"}); err != nil {
				t.Fatalf("Put: %v", err)
			}
			rc, info, err := r.Get(ctx(t), key, 0, -1)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			defer rc.Close()
			h := sha256.New()
			got, err := io.Copy(h, rc)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if got != n || info.Size != n {
				t.Errorf("read %d bytes, size %d; want %d", got, info.Size, n)
			}
			if [32]byte(h.Sum(nil)) != want {
				t.Errorf("sha256 mismatch")
			}
			// A range spanning a part boundary.
			off := int64(8<<20 - 10)
			b, info := get(t, r, key, off, 20)
			wantB := make([]byte, 20)
			src := Data(seed, n)
			if _, err := io.CopyN(io.Discard, src, off); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(src, wantB); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, wantB) || info.Size != n {
				t.Errorf("Get(%d, 20) = %x (size %d), want %x (size %d)", off, b, info.Size, wantB, n)
			}
		})
	}
}

func testSizeMismatch(t *testing.T, r storage.Remote) {
	data := []byte("0123456789")
	t.Run("short", func(t *testing.T) {
		key := Key(t, "short")
		err := r.Put(ctx(t), key, bytes.NewReader(data[:5]), 10, nil)
		if err == nil {
			t.Fatalf("Put of 5 bytes with size 10 succeeded")
		}
		wantNotFound(t, r, key)
	})
	t.Run("long", func(t *testing.T) {
		key := Key(t, "long")
		err := r.Put(ctx(t), key, bytes.NewReader(data), 5, nil)
		if err == nil {
			t.Fatalf("Put of 10 bytes with size 5 succeeded")
		}
		wantNotFound(t, r, key)
	})
	t.Run("keepsPrevious", func(t *testing.T) {
		key := Key(t, "prev")
		put(t, r, key, data, map[string]string{"v": "1"})
		if err := r.Put(ctx(t), key, bytes.NewReader(data[:3]), 10, map[string]string{"v": "2"}); err == nil {
			t.Fatalf("short Put succeeded")
		}
		got, info := get(t, r, key, 0, -1)
		if !bytes.Equal(got, data) || info.Meta["v"] != "1" {
			t.Errorf("after failed Put: %q %v, want %q v=1", got, info.Meta, data)
		}
	})
}

func testMetadata(t *testing.T, r storage.Remote) {
	meta := map[string]string{
		"ascii":       "plain-value_1.2",
		"unicode":     "héllo wörld ✓ 日本語 🎉",
		"json":        `{"a": [1, 2, "x"], "b": null, "c": "q\"uote"}`,
		"spaces":      "  leading, inner  double, trailing  ",
		"single":      "a b c",
		"space-only":  " ",
		"newlines":    "line1\nline2\r\nline3\n",
		"tabs":        "\tx\ty\t",
		"control":     "\x01\x7f",
		"empty":       "",
		"b64-looking": "b64:aGVsbG8=",
		"rfc2047":     "=?UTF-8?B?aMOpbGxv?=",
		"percent":     "100%25 %zz",
		"0digits-9":   "keys may hold digits and hyphens",
	}
	key := Key(t, "meta")
	put(t, r, key, []byte("x"), meta)
	_, info := get(t, r, key, 0, -1)
	st, err := r.Stat(ctx(t), key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	for name, got := range map[string]map[string]string{"Get": info.Meta, "Stat": st.Meta} {
		if len(got) != len(meta) {
			t.Errorf("%s meta has %d keys, want %d: %q", name, len(got), len(meta), got)
		}
		for k, v := range meta {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%s meta[%q] = %q (present %v), want %q", name, k, g, ok, v)
			}
		}
	}
}

func testMetadataLong(t *testing.T, r storage.Remote) {
	// S3 limits user metadata to 2 KiB in all, so one long value per object.
	values := map[string]string{
		"ascii":   strings.Repeat("0123456789abcdef", 64),              // 1 KiB
		"unicode": strings.Repeat("ü", 256) + strings.Repeat("x", 100), // ~600 bytes
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			key := Key(t, "long")
			meta := map[string]string{"long": v}
			put(t, r, key, []byte("x"), meta)
			st, err := r.Stat(ctx(t), key)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if !sameMeta(st.Meta, meta) {
				t.Errorf("Stat meta = %q, want %q", st.Meta, meta)
			}
		})
	}
}

func testMetadataEmpty(t *testing.T, r storage.Remote) {
	for name, meta := range map[string]map[string]string{"nil": nil, "empty": {}} {
		t.Run(name, func(t *testing.T) {
			key := Key(t, "obj")
			put(t, r, key, []byte("x"), meta)
			_, info := get(t, r, key, 0, -1)
			st, err := r.Stat(ctx(t), key)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if len(info.Meta) != 0 || len(st.Meta) != 0 {
				t.Errorf("meta = %v / %v, want none", info.Meta, st.Meta)
			}
		})
	}
}

func testMetadataKeys(t *testing.T, r storage.Remote) {
	for _, k := range []string{"Content-Type", "UPPER", "under_score", "sp ace", "", "dot.ted", "ünï"} {
		t.Run(k, func(t *testing.T) {
			key := Key(t, "obj")
			err := r.Put(ctx(t), key, strings.NewReader("x"), 1, map[string]string{"ok": "1", k: "v"})
			if !errors.Is(err, storage.ErrInvalidMeta) {
				t.Errorf("Put with meta key %q = %v, want ErrInvalidMeta", k, err)
			}
			wantNotFound(t, r, key)
		})
	}
	t.Run("invalidUTF8Value", func(t *testing.T) {
		key := Key(t, "obj")
		err := r.Put(ctx(t), key, strings.NewReader("x"), 1, map[string]string{"k": "\xff\xfe"})
		if !errors.Is(err, storage.ErrInvalidMeta) {
			t.Errorf("Put with a non-UTF-8 value = %v, want ErrInvalidMeta", err)
		}
	})
}

func testMissing(t *testing.T, r storage.Remote) {
	key := Key(t, "never-stored")
	wantNotFound(t, r, key)
	_, err := r.Stat(ctx(t), key)
	if errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Stat of a missing key = %v, matches ErrInvalidKey", err)
	}
	rc, _, err := r.Get(ctx(t), key, 10, 5)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ranged Get of a missing key = %v, want ErrNotFound", err)
	}
	if rc != nil {
		rc.Close()
	}
	rc, _, err = r.Get(ctx(t), key, 0, 0)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(0, 0) of a missing key = %v, want ErrNotFound", err)
	}
	if rc != nil {
		rc.Close()
	}
}

func testRanges(t *testing.T, r storage.Remote) {
	const n = 1000
	data, err := io.ReadAll(Data(7, n))
	if err != nil {
		t.Fatal(err)
	}
	key := Key(t, "ranges")
	put(t, r, key, data, map[string]string{"r": "1"})
	for _, tc := range []struct {
		off, n   int64
		from, to int // expected data[from:to]
	}{
		{0, -1, 0, n},
		{0, 1, 0, 1},
		{500, 100, 500, 600},
		{n - 1, 1, n - 1, n},
		{n - 1, -1, n - 1, n},
		{100, -1, 100, n},
		{900, 500, 900, n},
		{0, n, 0, n},
		{0, n + 1, 0, n},
		{0, 0, 0, 0},
		{10, 0, 10, 10},
		{n, -1, n, n},
		{n, 10, n, n},
		{n + 5000, 10, n, n},
		{n + 5000, -1, n, n},
	} {
		t.Run(fmt.Sprintf("%d+%d", tc.off, tc.n), func(t *testing.T) {
			got, info := get(t, r, key, tc.off, tc.n)
			if !bytes.Equal(got, data[tc.from:tc.to]) {
				t.Errorf("Get(%d, %d) = %d bytes, want data[%d:%d]", tc.off, tc.n, len(got), tc.from, tc.to)
			}
			if info.Size != n {
				t.Errorf("Get(%d, %d).Size = %d, want the full %d", tc.off, tc.n, info.Size, n)
			}
			if info.Meta["r"] != "1" {
				t.Errorf("Get(%d, %d).Meta = %v", tc.off, tc.n, info.Meta)
			}
		})
	}
	t.Run("negativeOffset", func(t *testing.T) {
		rc, _, err := r.Get(ctx(t), key, -1, 10)
		if err == nil {
			rc.Close()
			t.Errorf("Get(-1, 10) succeeded")
		}
	})
}

func testReplace(t *testing.T, r storage.Remote) {
	key := Key(t, "obj")
	put(t, r, key, []byte("first version, longer"), map[string]string{"v": "1", "old": "x"})
	put(t, r, key, []byte("second"), map[string]string{"v": "2"})
	got, info := get(t, r, key, 0, -1)
	if string(got) != "second" || info.Size != 6 {
		t.Errorf("Get = %q (size %d), want %q", got, info.Size, "second")
	}
	if !sameMeta(info.Meta, map[string]string{"v": "2"}) {
		t.Errorf("Get meta = %v, want only v=2", info.Meta)
	}
	st, err := r.Stat(ctx(t), key)
	if err != nil || st.Size != 6 || !sameMeta(st.Meta, map[string]string{"v": "2"}) {
		t.Errorf("Stat = %+v, %v", st, err)
	}
}

func testIdempotentPut(t *testing.T, r storage.Remote) {
	key := Key(t, "obj")
	data := []byte("same bytes")
	put(t, r, key, data, map[string]string{"a": "b"})
	put(t, r, key, data, map[string]string{"a": "b"})
	got, info := get(t, r, key, 0, -1)
	if !bytes.Equal(got, data) || info.Size != int64(len(data)) || !sameMeta(info.Meta, map[string]string{"a": "b"}) {
		t.Errorf("Get = %q %+v", got, info)
	}
}

func testRemove(t *testing.T, r storage.Remote) {
	key := Key(t, "obj")
	put(t, r, key, []byte("doomed"), nil)
	if err := r.Remove(ctx(t), key); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	wantNotFound(t, r, key)
	if err := r.Remove(ctx(t), key); err != nil {
		t.Errorf("second Remove = %v, want nil", err)
	}
	if err := r.Remove(ctx(t), Key(t, "never-stored")); err != nil {
		t.Errorf("Remove of a missing key = %v, want nil", err)
	}
	// Removing a key that is only a prefix of another removes nothing.
	child := Key(t, "dir/child")
	put(t, r, child, []byte("child"), nil)
	if err := r.Remove(ctx(t), strings.TrimSuffix(child, "/child")); err != nil {
		t.Errorf("Remove of a prefix = %v, want nil", err)
	}
	if got, _ := get(t, r, child, 0, -1); string(got) != "child" {
		t.Errorf("after removing its prefix, Get(child) = %q", got)
	}
}

func testInvalidKeys(t *testing.T, r storage.Remote) {
	for _, key := range []string{"", "../x", "/abs", "a/../b", "a/./b", ".", "..", "a//b", "a/", "a\\b", "x/..", "nul\x00"} {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, storage.ErrInvalidKey) {
					t.Errorf("%s(%q) = %v, want ErrInvalidKey", op, key, err)
				}
				if errors.Is(err, storage.ErrNotFound) {
					t.Errorf("%s(%q) = %v, matches ErrNotFound", op, key, err)
				}
			}
			rc, _, err := r.Get(ctx(t), key, 0, -1)
			if rc != nil {
				rc.Close()
			}
			check("Get", err)
			_, err = r.Stat(ctx(t), key)
			check("Stat", err)
			check("Put", r.Put(ctx(t), key, strings.NewReader("x"), 1, nil))
			check("Remove", r.Remove(ctx(t), key))
		})
	}
}

func testNestedKeys(t *testing.T, r storage.Remote) {
	base := Key(t, "")
	keys := []string{
		base + "prefix/01ARZ3NDEKTSV4RRFFQ69G5FAV",
		base + "prefix/01ARZ3NDEKTSV4RRFFQ69G5FAW",
		base + "a/b/c/d/e",
		base + "with space/ünïcode-ключ.bin",
		base + ".hidden/x",
	}
	for i, k := range keys {
		put(t, r, k, []byte(fmt.Sprint(i)), nil)
	}
	for i, k := range keys {
		if got, _ := get(t, r, k, 0, -1); string(got) != fmt.Sprint(i) {
			t.Errorf("Get(%q) = %q, want %q", k, got, fmt.Sprint(i))
		}
	}
	wantNotFound(t, r, base+"prefix")
}

func testFailingReader(t *testing.T, r storage.Remote) {
	for _, size := range []int64{-1, 3 << 20} {
		t.Run(fmt.Sprintf("size%d", size), func(t *testing.T) {
			key := Key(t, "obj")
			err := r.Put(ctx(t), key, FailAfter(Data(1, 3<<20), 1<<20), size, nil)
			if !errors.Is(err, ErrInjected) {
				t.Errorf("Put from a failing reader = %v, want an error matching the reader's", err)
			}
			wantNotFound(t, r, key)
		})
	}
	t.Run("keepsPrevious", func(t *testing.T) {
		key := Key(t, "obj")
		put(t, r, key, []byte("previous"), map[string]string{"v": "1"})
		err := r.Put(ctx(t), key, FailAfter(Data(1, 3<<20), 100<<10), -1, map[string]string{"v": "2"})
		if !errors.Is(err, ErrInjected) {
			t.Errorf("Put from a failing reader = %v, want an error matching the reader's", err)
		}
		got, info := get(t, r, key, 0, -1)
		if string(got) != "previous" || info.Meta["v"] != "1" {
			t.Errorf("after failed Put: %q %v, want the previous object", got, info.Meta)
		}
	})
}

func testCanceled(t *testing.T, r storage.Remote) {
	t.Run("before", func(t *testing.T) {
		key := Key(t, "obj")
		c, cancel := context.WithCancel(ctx(t))
		cancel()
		err := r.Put(c, key, strings.NewReader("data"), 4, nil)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Put with a canceled ctx = %v, want context.Canceled", err)
		}
		wantNotFound(t, r, key)
	})
	t.Run("during", func(t *testing.T) {
		key := Key(t, "obj")
		put(t, r, key, []byte("previous"), nil)
		c, cancel := context.WithCancel(ctx(t))
		defer cancel()
		src := &cancelAfter{r: Data(2, 12<<20), n: 2 << 20, cancel: cancel}
		err := r.Put(c, key, src, -1, nil)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Put canceled midway = %v, want context.Canceled", err)
		}
		if got, _ := get(t, r, key, 0, -1); string(got) != "previous" {
			t.Errorf("after canceled Put, Get = %q, want the previous object", got)
		}
	})
	t.Run("get", func(t *testing.T) {
		key := Key(t, "obj")
		put(t, r, key, []byte("data"), nil)
		c, cancel := context.WithCancel(ctx(t))
		cancel()
		rc, _, err := r.Get(c, key, 0, -1)
		if err == nil {
			// The request may have been answered before the cancel was
			// seen; reading must then fail or return the bytes.
			if _, err := io.ReadAll(rc); err == nil {
				t.Logf("Get with a canceled ctx served the object")
			}
			rc.Close()
		} else if !errors.Is(err, context.Canceled) {
			t.Errorf("Get with a canceled ctx = %v, want context.Canceled", err)
		}
		if _, err := r.Stat(c, key); !errors.Is(err, context.Canceled) {
			t.Errorf("Stat with a canceled ctx = %v, want context.Canceled", err)
		}
	})
}

func testConcurrent(t *testing.T, r storage.Remote) {
	const workers = 6
	const n = 300 << 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			key := Key(t, fmt.Sprintf("w%d", w))
			seed := uint64(100 + w)
			for round := range 3 {
				meta := map[string]string{"round": fmt.Sprint(round)}
				if err := r.Put(ctx(t), key, Data(seed, n), -1, meta); err != nil {
					t.Errorf("worker %d: Put: %v", w, err)
					return
				}
				rc, info, err := r.Get(ctx(t), key, 0, -1)
				if err != nil {
					t.Errorf("worker %d: Get: %v", w, err)
					return
				}
				h := sha256.New()
				_, err = io.Copy(h, rc)
				rc.Close()
				if err != nil {
					t.Errorf("worker %d: read: %v", w, err)
					return
				}
				if [32]byte(h.Sum(nil)) != DataSum(seed, n) || info.Meta["round"] != fmt.Sprint(round) {
					t.Errorf("worker %d round %d: wrong object", w, round)
				}
			}
			if err := r.Remove(ctx(t), key); err != nil {
				t.Errorf("worker %d: Remove: %v", w, err)
			}
		})
	}
	wg.Wait()
}

func testPartialReadClose(t *testing.T, r storage.Remote) {
	key := Key(t, "obj")
	if err := r.Put(ctx(t), key, Data(3, 2<<20), 2<<20, nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	rc, _, err := r.Get(ctx(t), key, 0, -1)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Errorf("read: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close after a partial read: %v", err)
	}
}
