package remotetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/objstore/objstore/storage"
)

// RunOrigin runs the conformance suite of storage.Origin's own operations
// (ETags, Revalidate, PutTyped and List) against the Origin returned by
// newOrigin, which is called once per subtest as Run calls newRemote. An
// Origin is also a Remote: run Run on it too. The suite uses keys that both
// storage.CheckRemoteKey and storage.CheckOriginKey accept, made with Key, so
// it may share a bucket or directory with other suites.
func RunOrigin(t *testing.T, newOrigin func(t *testing.T) storage.Origin) {
	tests := []struct {
		name string
		fn   func(*testing.T, storage.Origin)
	}{
		{"ETag", testETag},
		{"Revalidate", testRevalidate},
		{"ContentType", testContentType},
		{"ContentTypeLarge", testContentTypeLarge},
		{"ContentTypeInvalid", testContentTypeInvalid},
		{"InvalidKeys", testOriginInvalidKeys},
		{"List", testList},
		{"ListPages", testListPages},
		{"ListEmpty", testListEmpty},
		{"ListInvalid", testListInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newOrigin(t))
		})
	}
}

func putTyped(t *testing.T, o storage.Origin, key string, data []byte, contentType string, meta map[string]string) {
	t.Helper()
	if _, err := o.PutTyped(ctx(t), key, bytes.NewReader(data), int64(len(data)), contentType, meta); err != nil {
		t.Fatalf("PutTyped(%q, %q): %v", key, contentType, err)
	}
}

func stat(t *testing.T, r storage.Remote, key string) storage.ObjectInfo {
	t.Helper()
	info, err := r.Stat(ctx(t), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	return info
}

// quoted reports whether etag is a strong HTTP entity tag.
func quoted(etag string) bool {
	return len(etag) >= 3 && etag[0] == '"' && etag[len(etag)-1] == '"' && !strings.Contains(etag[1:len(etag)-1], `"`)
}

func testETag(t *testing.T, o storage.Origin) {
	key := Key(t, "obj")
	put(t, o, key, []byte("version one"), nil)
	st := stat(t, o, key)
	if !quoted(st.ETag) {
		t.Fatalf("Stat ETag = %q, want a quoted tag", st.ETag)
	}
	if again := stat(t, o, key); again.ETag != st.ETag {
		t.Errorf("ETag of an unchanged object changed: %q, then %q", st.ETag, again.ETag)
	}
	if _, info := get(t, o, key, 0, -1); info.ETag != st.ETag {
		t.Errorf("Get ETag = %q, Stat's %q", info.ETag, st.ETag)
	}
	if _, info := get(t, o, key, 2, 3); info.ETag != st.ETag {
		t.Errorf("ranged Get ETag = %q, Stat's %q", info.ETag, st.ETag)
	}
	if _, info := get(t, o, key, 0, 0); info.ETag != st.ETag {
		t.Errorf("empty Get ETag = %q, Stat's %q", info.ETag, st.ETag)
	}

	seen := map[string]string{st.ETag: "version one"}
	for _, data := range []string{
		"version two", // the same size
		"a third version, longer than the others",
		"",
	} {
		put(t, o, key, []byte(data), nil)
		st := stat(t, o, key)
		if !quoted(st.ETag) {
			t.Errorf("after Put(%q), ETag = %q, want a quoted tag", data, st.ETag)
		}
		if prev, ok := seen[st.ETag]; ok {
			t.Errorf("after Put(%q), ETag %q is the same as for %q", data, st.ETag, prev)
		}
		seen[st.ETag] = data
		if _, info := get(t, o, key, 0, -1); info.ETag != st.ETag {
			t.Errorf("after Put(%q), Get ETag = %q, Stat's %q", data, info.ETag, st.ETag)
		}
	}
}

func testRevalidate(t *testing.T, o storage.Origin) {
	key := Key(t, "obj")
	put(t, o, key, []byte("first"), map[string]string{"v": "1"})
	first := stat(t, o, key)

	info, err := o.Revalidate(ctx(t), key, first.ETag)
	if !errors.Is(err, storage.ErrNotModified) || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Revalidate(unchanged) = %+v, %v; want ErrNotModified", info, err)
	}

	second := []byte("the second, longer version")
	putTyped(t, o, key, second, "text/plain", map[string]string{"v": "2"})
	st := stat(t, o, key)
	info, err = o.Revalidate(ctx(t), key, first.ETag)
	if err != nil {
		t.Fatalf("Revalidate(changed) = %v, want the new description", err)
	}
	if info.Key != key || info.Size != int64(len(second)) || info.ETag != st.ETag || info.ETag == first.ETag ||
		info.Meta["v"] != "2" || info.ContentType != "text/plain" || info.ModTime.IsZero() {
		t.Errorf("Revalidate(changed) = %+v, want the new object's description %+v", info, st)
	}
	if _, err := o.Revalidate(ctx(t), key, st.ETag); !errors.Is(err, storage.ErrNotModified) {
		t.Errorf("Revalidate(new ETag) = %v, want ErrNotModified", err)
	}
	if info, err := o.Revalidate(ctx(t), key, `"not-the-etag"`); err != nil || info.ETag != st.ETag {
		t.Errorf("Revalidate(other ETag) = %+v, %v; want the description", info, err)
	}
	if info, err := o.Revalidate(ctx(t), key, ""); err != nil || info.ETag != st.ETag {
		t.Errorf(`Revalidate("") = %+v, %v; want the description`, info, err)
	}

	if err := o.Remove(ctx(t), key); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	for _, etag := range []string{st.ETag, first.ETag} {
		if _, err := o.Revalidate(ctx(t), key, etag); !errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrNotModified) {
			t.Errorf("Revalidate(removed, %s) = %v, want ErrNotFound", etag, err)
		}
	}
	if _, err := o.Revalidate(ctx(t), Key(t, "never-stored"), `"x"`); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Revalidate(never stored) = %v, want ErrNotFound", err)
	}
}

func testContentType(t *testing.T, o storage.Origin) {
	types := []string{
		"text/plain; charset=utf-8",
		"application/json",
		"image/png",
		`multipart/form-data; boundary="a b"`,
		"application/vnd.objstore+json; v=1",
	}
	for i, ct := range types {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			key := Key(t, "typed")
			meta := map[string]string{"m": fmt.Sprint(i)}
			putTyped(t, o, key, []byte("typed data"), ct, meta)
			got, info := get(t, o, key, 0, -1)
			if string(got) != "typed data" || info.ContentType != ct || !sameMeta(info.Meta, meta) {
				t.Errorf("Get = %q, type %q, meta %v; want type %q, meta %v", got, info.ContentType, info.Meta, ct, meta)
			}
			if _, info := get(t, o, key, 1, 2); info.ContentType != ct {
				t.Errorf("ranged Get type = %q, want %q", info.ContentType, ct)
			}
			if st := stat(t, o, key); st.ContentType != ct || !sameMeta(st.Meta, meta) {
				t.Errorf("Stat type %q, meta %v; want %q, %v", st.ContentType, st.Meta, ct, meta)
			}
		})
	}
	t.Run("unknownSize", func(t *testing.T) {
		key := Key(t, "typed")
		etag, err := o.PutTyped(ctx(t), key, strings.NewReader("abc"), -1, "text/csv", nil)
		if err != nil {
			t.Fatalf("PutTyped: %v", err)
		}
		if st := stat(t, o, key); st.ContentType != "text/csv" || st.Size != 3 || st.ETag != etag || etag == "" {
			t.Errorf("Stat = %+v, want text/csv, 3 bytes, the ETag PutTyped returned (%s)", st, etag)
		}
	})
	t.Run("replace", func(t *testing.T) {
		key := Key(t, "typed")
		putTyped(t, o, key, []byte("{}"), "application/json", nil)
		// A Put without a type does not keep the previous one (a backend
		// may report its default instead of none).
		put(t, o, key, []byte("x"), nil)
		if st := stat(t, o, key); st.ContentType == "application/json" {
			t.Errorf("after an untyped Put, type = %q, the replaced object's", st.ContentType)
		}
		putTyped(t, o, key, []byte("a,b"), "text/csv", nil)
		if st := stat(t, o, key); st.ContentType != "text/csv" {
			t.Errorf("after PutTyped(text/csv), type = %q", st.ContentType)
		}
	})
}

// testContentTypeLarge stores a typed object large enough for a multipart
// upload.
func testContentTypeLarge(t *testing.T, o storage.Origin) {
	const n = 12 << 20
	for _, size := range []int64{n, -1} {
		t.Run(fmt.Sprintf("size%d", size), func(t *testing.T) {
			key := Key(t, "large")
			etag, err := o.PutTyped(ctx(t), key, Data(12, n), size, "video/mp4", map[string]string{"k": "v"})
			if err != nil {
				t.Fatalf("PutTyped: %v", err)
			}
			st := stat(t, o, key)
			if st.ContentType != "video/mp4" || st.Size != n || st.Meta["k"] != "v" || !quoted(st.ETag) || st.ETag != etag {
				t.Errorf("Stat = %+v, want video/mp4, %d bytes, k=v, the ETag PutTyped returned (%s)", st, n, etag)
			}
			if _, err := o.Revalidate(ctx(t), key, st.ETag); !errors.Is(err, storage.ErrNotModified) {
				t.Errorf("Revalidate = %v, want ErrNotModified", err)
			}
		})
	}
}

func testContentTypeInvalid(t *testing.T, o storage.Origin) {
	for _, ct := range []string{"text/plain\n", "text/plain\r\nX-Injected: 1", "a\x00b", "tab\there", " text/plain", "text/plain ", "tëxt/plain", strings.Repeat("a", storage.MaxContentTypeLen+1)} {
		t.Run(fmt.Sprintf("%.20q", ct), func(t *testing.T) {
			key := Key(t, "obj")
			_, err := o.PutTyped(ctx(t), key, strings.NewReader("x"), 1, ct, nil)
			if !errors.Is(err, storage.ErrInvalidMeta) {
				t.Errorf("PutTyped with type %q = %v, want ErrInvalidMeta", ct, err)
			}
			wantNotFound(t, o, key)
		})
	}
}

// testOriginInvalidKeys checks the new methods refuse the keys every Origin
// refuses.
func testOriginInvalidKeys(t *testing.T, o storage.Origin) {
	for _, key := range []string{"", "a/../b", "a/./b", ".", "..", "x/..", "nul\x00", "bad\xffutf8", strings.Repeat("k", storage.MaxRemoteKeyLen+1)} {
		t.Run(fmt.Sprintf("%.20q", key), func(t *testing.T) {
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, storage.ErrInvalidKey) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrNotModified) {
					t.Errorf("%s(%q) = %v, want ErrInvalidKey", op, key, err)
				}
			}
			_, err := o.Revalidate(ctx(t), key, `"x"`)
			check("Revalidate", err)
			_, err = o.PutTyped(ctx(t), key, strings.NewReader("x"), 1, "text/plain", nil)
			check("PutTyped", err)
		})
	}
}

// listFixture stores objects under a fresh folder and returns the folder
// (ending in "/") and each key's data. Keys are chosen so that the order of
// key strings differs from a walk of a directory tree ("a-b" < "a/b" <
// "a0"), and next to the folder lie keys that share its name as a prefix
// without its slash.
func listFixture(t *testing.T, o storage.Origin) (string, map[string][]byte) {
	base := Key(t, "")
	data := map[string][]byte{}
	for i, name := range []string{"a-b", "a/b", "a/c/d", "a0", "b", "c/x", "c/y", "d", "e/f/g/h"} {
		data[base+name] = bytes.Repeat([]byte{'x'}, i+1)
	}
	for key, d := range data {
		put(t, o, key, d, map[string]string{"m": "1"})
	}
	folder := strings.TrimSuffix(base, "/")
	for _, outside := range []string{folder + "+before", folder + "-outside", folder + "0/after"} {
		put(t, o, outside, []byte("outside"), nil)
	}
	return base, data
}

// listPage lists one page and checks what holds for every page: it is
// sorted, within opts.Max, within the prefix and after opts.After, and its
// Next is its greatest entry or empty.
func listPage(t *testing.T, o storage.Origin, opts storage.ListOptions) storage.ListPage {
	t.Helper()
	page, err := o.List(ctx(t), opts)
	if err != nil {
		t.Fatalf("List(%+v): %v", opts, err)
	}
	var entries []string
	for _, obj := range page.Objects {
		entries = append(entries, obj.Key)
	}
	entries = append(entries, page.CommonPrefixes...)
	if opts.Max > 0 && len(entries) > opts.Max {
		t.Errorf("List(%+v) returned %d entries, more than Max", opts, len(entries))
	}
	keys := entries[:len(page.Objects)]
	if !slices.IsSorted(keys) || !slices.IsSorted(page.CommonPrefixes) {
		t.Errorf("List(%+v) = %q, %q; not in order", opts, keys, page.CommonPrefixes)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e, opts.Prefix) {
			t.Errorf("List(%+v) returned %q, outside the prefix", opts, e)
		}
		if e <= opts.After {
			t.Errorf("List(%+v) returned %q, not after %q", opts, e, opts.After)
		}
	}
	for _, p := range page.CommonPrefixes {
		if opts.Delimiter == "" || !strings.HasSuffix(p, opts.Delimiter) {
			t.Errorf("List(%+v) returned the common prefix %q", opts, p)
		}
	}
	if page.Next != "" {
		if len(entries) == 0 {
			t.Fatalf("List(%+v) returned an empty page with Next %q", opts, page.Next)
		}
		if greatest := slices.Max(entries); page.Next != greatest {
			t.Errorf("List(%+v).Next = %q, want the page's greatest entry %q", opts, page.Next, greatest)
		}
	}
	return page
}

// listAll follows a listing from opts to its end, checking each page, and
// returns the objects' keys and the common prefixes.
func listAll(t *testing.T, o storage.Origin, opts storage.ListOptions) (keys, prefixes []string, pages int) {
	t.Helper()
	seen := map[string]bool{}
	for {
		pages++
		if pages > 100 {
			t.Fatalf("List(%+v): more than 100 pages", opts)
		}
		page := listPage(t, o, opts)
		for _, obj := range page.Objects {
			keys = append(keys, obj.Key)
		}
		prefixes = append(prefixes, page.CommonPrefixes...)
		for _, e := range append(slices.Clone(keys[len(keys)-len(page.Objects):]), page.CommonPrefixes...) {
			if seen[e] {
				t.Errorf("List(%+v): %q listed twice", opts, e)
			}
			seen[e] = true
		}
		if page.Next == "" {
			return keys, prefixes, pages
		}
		if page.Next <= opts.After {
			t.Fatalf("List(%+v).Next = %q, not after After", opts, page.Next)
		}
		opts.After = page.Next
	}
}

func testList(t *testing.T, o storage.Origin) {
	base, data := listFixture(t, o)
	p := func(names ...string) []string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = base + n
		}
		return out
	}
	t.Run("objects", func(t *testing.T) {
		page := listPage(t, o, storage.ListOptions{Prefix: base})
		if page.Next != "" || len(page.CommonPrefixes) != 0 {
			t.Errorf("List = %+v, want one page of objects", page)
		}
		var keys []string
		for _, obj := range page.Objects {
			keys = append(keys, obj.Key)
			st := stat(t, o, obj.Key)
			if obj.Size != int64(len(data[obj.Key])) || obj.ETag != st.ETag || !quoted(obj.ETag) ||
				obj.ModTime.IsZero() || obj.ModTime.Sub(st.ModTime).Abs() > 1e9 {
				t.Errorf("listed %+v, want size %d, Stat's ETag and time %+v", obj, len(data[obj.Key]), st)
			}
		}
		if want := p("a-b", "a/b", "a/c/d", "a0", "b", "c/x", "c/y", "d", "e/f/g/h"); !slices.Equal(keys, want) {
			t.Errorf("List keys = %q, want %q", keys, want)
		}
	})
	for _, tc := range []struct {
		name           string
		opts           storage.ListOptions
		keys, prefixes []string
	}{
		{"delimiter", storage.ListOptions{Prefix: base, Delimiter: "/"},
			p("a-b", "a0", "b", "d"), p("a/", "c/", "e/")},
		{"partialElement", storage.ListOptions{Prefix: base + "a", Delimiter: "/"},
			p("a-b", "a0"), p("a/")},
		{"subfolder", storage.ListOptions{Prefix: base + "a/", Delimiter: "/"},
			p("a/b"), p("a/c/")},
		{"subfolderAll", storage.ListOptions{Prefix: base + "c/"},
			p("c/x", "c/y"), nil},
		{"deep", storage.ListOptions{Prefix: base + "e/f/", Delimiter: "/"},
			nil, p("e/f/g/")},
		{"exactKey", storage.ListOptions{Prefix: base + "a/b"},
			p("a/b"), nil},
		{"otherDelimiter", storage.ListOptions{Prefix: base, Delimiter: "-"},
			p("a/b", "a/c/d", "a0", "b", "c/x", "c/y", "d", "e/f/g/h"), p("a-")},
		{"longDelimiter", storage.ListOptions{Prefix: base, Delimiter: "/g/"},
			p("a-b", "a/b", "a/c/d", "a0", "b", "c/x", "c/y", "d"), p("e/f/g/")},
		{"after", storage.ListOptions{Prefix: base, After: base + "a0"},
			p("b", "c/x", "c/y", "d", "e/f/g/h"), nil},
		{"afterMissingKey", storage.ListOptions{Prefix: base, After: base + "c/a"},
			p("c/x", "c/y", "d", "e/f/g/h"), nil},
		{"afterInFolder", storage.ListOptions{Prefix: base, After: base + "a/b"},
			p("a/c/d", "a0", "b", "c/x", "c/y", "d", "e/f/g/h"), nil},
		{"afterPrefix", storage.ListOptions{Prefix: base, Delimiter: "/", After: base + "a/"},
			p("a0", "b", "d"), p("c/", "e/")},
		{"afterBeforePrefix", storage.ListOptions{Prefix: base + "c/", After: base + "a"},
			p("c/x", "c/y"), nil},
		{"afterLast", storage.ListOptions{Prefix: base, After: base + "e/f/g/h"},
			nil, nil},
		{"afterAll", storage.ListOptions{Prefix: base, After: base + "z"},
			nil, nil},
		{"maxAboveLimit", storage.ListOptions{Prefix: base, Delimiter: "/", Max: 5 * storage.MaxListPage},
			p("a-b", "a0", "b", "d"), p("a/", "c/", "e/")},
		// Without its slash, the folder's name also prefixes its neighbours.
		{"folderName", storage.ListOptions{Prefix: strings.TrimSuffix(base, "/"), Delimiter: "/"},
			[]string{strings.TrimSuffix(base, "/") + "+before", strings.TrimSuffix(base, "/") + "-outside"},
			[]string{base, strings.TrimSuffix(base, "/") + "0/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := listPage(t, o, tc.opts)
			var keys []string
			for _, obj := range page.Objects {
				keys = append(keys, obj.Key)
			}
			if !slices.Equal(keys, tc.keys) || !slices.Equal(page.CommonPrefixes, tc.prefixes) || page.Next != "" {
				t.Errorf("List(%+v) = %q, %q, Next %q;\nwant %q, %q, no Next", tc.opts, keys, page.CommonPrefixes, page.Next, tc.keys, tc.prefixes)
			}
		})
	}
}

func testListPages(t *testing.T, o storage.Origin) {
	base, _ := listFixture(t, o)
	for _, delim := range []string{"", "/"} {
		full := listPage(t, o, storage.ListOptions{Prefix: base, Delimiter: delim})
		var wantKeys []string
		for _, obj := range full.Objects {
			wantKeys = append(wantKeys, obj.Key)
		}
		entries := len(full.Objects) + len(full.CommonPrefixes)
		for _, n := range []int{1, 2, 3, 4, entries - 1, entries, entries + 1} {
			t.Run(fmt.Sprintf("delim%q/max%d", delim, n), func(t *testing.T) {
				keys, prefixes, pages := listAll(t, o, storage.ListOptions{Prefix: base, Delimiter: delim, Max: n})
				if !slices.Equal(keys, wantKeys) || !slices.Equal(prefixes, full.CommonPrefixes) {
					t.Errorf("paged listing = %q, %q; want %q, %q", keys, prefixes, wantKeys, full.CommonPrefixes)
				}
				// A page holds Max entries but perhaps the last; one more
				// page may find nothing left.
				if least := (entries + n - 1) / n; pages < least || pages > least+1 {
					t.Errorf("%d entries took %d pages of %d", entries, pages, n)
				}
			})
		}
	}
}

func testListEmpty(t *testing.T, o storage.Origin) {
	base, _ := listFixture(t, o)
	for _, opts := range []storage.ListOptions{
		{Prefix: Key(t, "nothing-here/")},
		{Prefix: Key(t, "nothing-here/"), Delimiter: "/"},
		{Prefix: base + "zzz"},
		{Prefix: base + "a/b/"}, // below an object
		{Prefix: base + "c/", After: base + "c/y"},
	} {
		page := listPage(t, o, opts)
		if len(page.Objects) != 0 || len(page.CommonPrefixes) != 0 || page.Next != "" {
			t.Errorf("List(%+v) = %+v, want nothing", opts, page)
		}
	}
	// After a Remove, the object is no longer listed.
	key := base + "b"
	if err := o.Remove(ctx(t), key); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	page := listPage(t, o, storage.ListOptions{Prefix: key})
	if len(page.Objects) != 0 {
		t.Errorf("List after Remove = %+v", page)
	}
}

func testListInvalid(t *testing.T, o storage.Origin) {
	for _, opts := range []storage.ListOptions{
		{Prefix: "bad\xff"},
		{Prefix: "nul\x00"},
		{After: "bad\xff"},
		{Delimiter: "\x00"},
	} {
		if _, err := o.List(ctx(t), opts); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("List(%+v) = %v, want ErrInvalidKey", opts, err)
		}
	}
}
