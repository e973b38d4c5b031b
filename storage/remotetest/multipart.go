package remotetest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/objstore/objstore/storage"
)

// MultipartRemote is a Remote that also takes multipart uploads, as
// RunMultipart tests it: the Remote's methods read back what the uploads
// stored.
type MultipartRemote interface {
	storage.Remote
	storage.Multipart
}

// RunMultipart runs the conformance suite of storage.Multipart against the
// remote returned by newRemote, which is called once per subtest as Run
// calls it. The suite uses keys made with Key that both
// storage.CheckRemoteKey and storage.CheckOriginKey accept, and aborts the
// uploads it leaves open. It uploads parts of storage.MinPartSize, streamed
// from generators that are neither seekable nor held in memory.
//
// Uploads are listed by the exact key as prefix, since some servers
// (MinIO) list nothing else; S3 itself treats the prefix as a prefix.
func RunMultipart(t *testing.T, newRemote func(t *testing.T) MultipartRemote) {
	tests := []struct {
		name string
		fn   func(*testing.T, MultipartRemote)
	}{
		{"RoundTrip", testMultipartRoundTrip},
		{"ReplacePart", testReplacePart},
		{"PartCopy", testPartCopy},
		{"ListParts", testListParts},
		{"ListUploads", testListUploads},
		{"InvalidPart", testInvalidPart},
		{"EntityTooSmall", testEntityTooSmall},
		{"NoSuchUpload", testNoSuchUpload},
		{"ContentMD5", testContentMD5},
		{"BodyErrors", testPartBodyErrors},
		{"InvalidArguments", testMultipartInvalidArguments},
		{"InvalidKeys", testMultipartInvalidKeys},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newRemote(t))
		})
	}
}

// createUpload starts an upload and aborts it when the test ends, unless it
// was completed or aborted by then.
func createUpload(t *testing.T, m MultipartRemote, key, contentType string, meta map[string]string) string {
	t.Helper()
	id, err := m.CreateMultipart(ctx(t), key, contentType, meta)
	if err != nil {
		t.Fatalf("CreateMultipart(%q): %v", key, err)
	}
	if id == "" {
		t.Fatalf("CreateMultipart(%q) returned an empty upload ID", key)
	}
	t.Cleanup(func() {
		// t's context is done by now.
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := m.AbortMultipart(c, key, id); err != nil && !errors.Is(err, storage.ErrNoSuchUpload) {
			t.Errorf("cleanup: AbortMultipart(%q, %s): %v", key, id, err)
		}
	})
	return id
}

// onlyReader hides every method of r but Read, so that a backend cannot
// seek or measure the body.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// uploadPart uploads part n of size bytes from seed's generator.
func uploadPart(t *testing.T, m MultipartRemote, key, id string, n int32, seed uint64, size int64) string {
	t.Helper()
	etag, err := m.UploadPart(ctx(t), key, id, n, onlyReader{Data(seed, size)}, size, storage.PartOptions{})
	if err != nil {
		t.Fatalf("UploadPart(%q, part %d, %d bytes): %v", key, n, size, err)
	}
	if !quoted(etag) {
		t.Errorf("UploadPart(%q, part %d) ETag = %q, want a quoted tag", key, n, etag)
	}
	return etag
}

func uploadBytes(t *testing.T, m MultipartRemote, key, id string, n int32, data []byte) string {
	t.Helper()
	etag, err := m.UploadPart(ctx(t), key, id, n, onlyReader{bytes.NewReader(data)}, int64(len(data)), storage.PartOptions{})
	if err != nil {
		t.Fatalf("UploadPart(%q, part %d, %q): %v", key, n, data, err)
	}
	return etag
}

func complete(t *testing.T, m MultipartRemote, key, id string, parts ...storage.CompletedPart) string {
	t.Helper()
	etag, err := m.CompleteMultipart(ctx(t), key, id, parts)
	if err != nil {
		t.Fatalf("CompleteMultipart(%q, %v): %v", key, parts, err)
	}
	if !quoted(etag) {
		t.Errorf("CompleteMultipart(%q) ETag = %q, want a quoted tag", key, etag)
	}
	return etag
}

// sumOf returns the SHA-256 and length of the readers' bytes in turn.
func sumOf(t *testing.T, rs ...io.Reader) ([32]byte, int64) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, io.MultiReader(rs...))
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil)), n
}

// wantObject reads key whole, streaming, and checks its bytes against sum
// and its ETag against etag, in both Get's and Stat's descriptions.
func wantObject(t *testing.T, r storage.Remote, key string, sum [32]byte, size int64, etag string) storage.ObjectInfo {
	t.Helper()
	rc, info, err := r.Get(ctx(t), key, 0, -1)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", key, err)
	}
	if n != size || info.Size != size || [32]byte(h.Sum(nil)) != sum {
		t.Errorf("Get(%q): read %d bytes (size %d) of another content; want %d bytes", key, n, info.Size, size)
	}
	st := stat(t, r, key)
	if st.ETag != etag || info.ETag != etag || st.Size != size {
		t.Errorf("Stat(%q) = %+v, Get ETag %q; want size %d, the ETag CompleteMultipart returned (%s)", key, st, info.ETag, size, etag)
	}
	return st
}

// openUploads lists the open uploads of key, following every page.
func openUploads(t *testing.T, m MultipartRemote, key string, pageSize int32) (ids []string, pages int) {
	t.Helper()
	opts := storage.UploadListOptions{Prefix: key, Max: pageSize}
	for {
		pages++
		if pages > 100 {
			t.Fatalf("ListMultipartUploads(%q): more than 100 pages", key)
		}
		page, err := m.ListMultipartUploads(ctx(t), opts)
		if err != nil {
			t.Fatalf("ListMultipartUploads(%+v): %v", opts, err)
		}
		if pageSize > 0 && len(page.Uploads) > int(pageSize) {
			t.Errorf("ListMultipartUploads(%+v) returned %d uploads, more than Max", opts, len(page.Uploads))
		}
		for _, u := range page.Uploads {
			if u.Key != key || u.UploadID == "" || u.Initiated.IsZero() {
				t.Errorf("ListMultipartUploads(%+v) listed %+v, want an upload of %q with its ID and time", opts, u, key)
			}
			ids = append(ids, u.UploadID)
		}
		if !page.Truncated {
			return ids, pages
		}
		if page.NextKeyMarker == "" {
			t.Fatalf("ListMultipartUploads(%+v) truncated without a next key marker", opts)
		}
		opts.KeyMarker, opts.UploadIDMarker = page.NextKeyMarker, page.NextUploadIDMarker
	}
}

// A three-part upload, parts sent out of order, reads back byte for byte
// with the ETag Complete returned, the media type and the metadata.
func testMultipartRoundTrip(t *testing.T, m MultipartRemote) {
	key := Key(t, "object")
	meta := map[string]string{"k": "v", "unicode": "héllo ✓"}
	id := createUpload(t, m, key, "video/mp4", meta)
	if ids, _ := openUploads(t, m, key, 0); !slices.Contains(ids, id) {
		t.Errorf("open uploads of %q = %q, want %s listed", key, ids, id)
	}
	const big, last = storage.MinPartSize, 1234
	etag3 := uploadPart(t, m, key, id, 3, 103, last)
	etag1 := uploadPart(t, m, key, id, 1, 101, big)
	etag2 := uploadPart(t, m, key, id, 2, 102, big)
	if etag1 == etag2 || etag1 == etag3 {
		t.Errorf("parts of other bytes have the same ETag: %s %s %s", etag1, etag2, etag3)
	}

	page, err := m.ListParts(ctx(t), key, id, 0, 0)
	if err != nil {
		t.Fatalf("ListParts: %v", err)
	}
	want := []storage.PartInfo{{Number: 1, ETag: etag1, Size: big}, {Number: 2, ETag: etag2, Size: big}, {Number: 3, ETag: etag3, Size: last}}
	if page.Truncated || len(page.Parts) != len(want) {
		t.Fatalf("ListParts = %+v, want %+v", page, want)
	}
	for i, p := range page.Parts {
		w := want[i]
		if p.Number != w.Number || p.ETag != w.ETag || p.Size != w.Size || p.LastModified.IsZero() {
			t.Errorf("ListParts part %d = %+v, want %+v with a time", i, p, w)
		}
	}
	if _, err := m.Stat(ctx(t), key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat before Complete = %v, want ErrNotFound", err)
	}

	etag := complete(t, m, key, id, storage.CompletedPart{Number: 1, ETag: etag1}, storage.CompletedPart{Number: 2, ETag: etag2}, storage.CompletedPart{Number: 3, ETag: etag3})
	sum, size := sumOf(t, Data(101, big), Data(102, big), Data(103, last))
	st := wantObject(t, m, key, sum, size, etag)
	if st.ContentType != "video/mp4" || !sameMeta(st.Meta, meta) {
		t.Errorf("Stat = %+v, want video/mp4 and %v", st, meta)
	}
	if _, err := m.ListParts(ctx(t), key, id, 0, 0); !errors.Is(err, storage.ErrNoSuchUpload) {
		t.Errorf("ListParts after Complete = %v, want ErrNoSuchUpload", err)
	}
	if ids, _ := openUploads(t, m, key, 0); slices.Contains(ids, id) {
		t.Errorf("completed upload %s still listed", id)
	}

	for i, w := range []storage.PartRange{{Offset: 0, Length: big, Parts: 3}, {Offset: big, Length: big, Parts: 3}, {Offset: 2 * big, Length: last, Parts: 3}} {
		got, err := m.PartRange(ctx(t), key, int32(i+1), etag)
		if err != nil || got != w {
			t.Errorf("PartRange(%d) = %+v, %v, want %+v", i+1, got, err, w)
		}
	}
	if _, err := m.PartRange(ctx(t), key, 4, ""); !errors.Is(err, storage.ErrInvalidPartNumber) {
		t.Errorf("PartRange of a part the object lacks = %v, want ErrInvalidPartNumber", err)
	}
	if _, err := m.PartRange(ctx(t), key, 1, `"0123456789abcdef0123456789abcdef-3"`); !errors.Is(err, storage.ErrPreconditionFailed) {
		t.Errorf("PartRange with another ETag = %v, want ErrPreconditionFailed", err)
	}
	if _, err := m.PartRange(ctx(t), Key(t, "missing"), 1, ""); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("PartRange of a missing object = %v, want ErrNotFound", err)
	}
}

// A part uploaded again replaces the earlier one, whose ETag no longer
// completes the upload.
func testReplacePart(t *testing.T, m MultipartRemote) {
	key := Key(t, "object")
	put(t, m, key, []byte("the object before"), nil)
	id := createUpload(t, m, key, "", nil)
	first := uploadBytes(t, m, key, id, 1, []byte("first version"))
	second := uploadBytes(t, m, key, id, 1, []byte("the second version"))
	if first == second {
		t.Errorf("both versions of the part have ETag %s", first)
	}
	page, err := m.ListParts(ctx(t), key, id, 0, 0)
	if err != nil || len(page.Parts) != 1 || page.Parts[0].ETag != second || page.Parts[0].Size != int64(len("the second version")) {
		t.Errorf("ListParts = %+v, %v; want the second version only", page, err)
	}
	_, err = m.CompleteMultipart(ctx(t), key, id, []storage.CompletedPart{{Number: 1, ETag: first}})
	if !errors.Is(err, storage.ErrInvalidPart) {
		t.Errorf("Complete with the replaced part's ETag = %v, want ErrInvalidPart", err)
	}
	if got, _ := get(t, m, key, 0, -1); string(got) != "the object before" {
		t.Errorf("after a failed Complete, Get = %q, want the previous object", got)
	}
	etag := complete(t, m, key, id, storage.CompletedPart{Number: 1, ETag: second})
	if got, info := get(t, m, key, 0, -1); string(got) != "the second version" || info.ETag != etag {
		t.Errorf("Get = %q (ETag %s), want the second version (ETag %s)", got, info.ETag, etag)
	}
}

// Parts copied from other objects, a range and whole ones, under keys
// that need escaping.
func testPartCopy(t *testing.T, m MultipartRemote) {
	const srcSize = storage.MinPartSize + 1<<20
	src := Key(t, "src ?#+%ü&=.bin")
	if err := m.Put(ctx(t), src, Data(31, srcSize), srcSize, nil); err != nil {
		t.Fatalf("Put(%q): %v", src, err)
	}
	small := Key(t, "small src")
	put(t, m, small, []byte("the small tail"), nil)

	key := Key(t, "copy")
	id := createUpload(t, m, key, "", nil)
	type copied struct {
		etag string
		size int64
	}
	var parts []copied
	for i, c := range []struct {
		src            string
		offset, length int64
		size           int64
	}{
		{src, 1 << 20, storage.MinPartSize, storage.MinPartSize},
		{src, 0, -1, srcSize},
		{small, 0, -1, int64(len("the small tail"))},
	} {
		before := time.Now()
		etag, modified, err := m.UploadPartCopy(ctx(t), key, id, int32(i+1), c.src, c.offset, c.length)
		if err != nil {
			t.Fatalf("UploadPartCopy(part %d from %q, %d, %d): %v", i+1, c.src, c.offset, c.length, err)
		}
		if !quoted(etag) || modified.Before(before.Add(-time.Minute)) || modified.After(time.Now().Add(time.Minute)) {
			t.Errorf("UploadPartCopy(part %d) = %q, %v; want a quoted ETag and about %v", i+1, etag, modified, before)
		}
		parts = append(parts, copied{etag, c.size})
	}
	page, err := m.ListParts(ctx(t), key, id, 0, 0)
	if err != nil || len(page.Parts) != len(parts) {
		t.Fatalf("ListParts = %+v, %v; want %d parts", page, err, len(parts))
	}
	var completed []storage.CompletedPart
	for i, p := range page.Parts {
		if p.Number != int32(i+1) || p.ETag != parts[i].etag || p.Size != parts[i].size {
			t.Errorf("ListParts part %d = %+v, want ETag %s and %d bytes", i+1, p, parts[i].etag, parts[i].size)
		}
		completed = append(completed, storage.CompletedPart{Number: int32(i + 1), ETag: parts[i].etag})
	}
	etag := complete(t, m, key, id, completed...)
	rangeOfSrc := Data(31, srcSize)
	if _, err := io.CopyN(io.Discard, rangeOfSrc, 1<<20); err != nil {
		t.Fatal(err)
	}
	sum, size := sumOf(t, io.LimitReader(rangeOfSrc, storage.MinPartSize), Data(31, srcSize), strings.NewReader("the small tail"))
	wantObject(t, m, key, sum, size, etag)

	t.Run("missingSource", func(t *testing.T) {
		key := Key(t, "copy")
		id := createUpload(t, m, key, "", nil)
		_, _, err := m.UploadPartCopy(ctx(t), key, id, 1, Key(t, "never-stored"), 0, -1)
		if !errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrNoSuchUpload) {
			t.Errorf("UploadPartCopy from a missing source = %v, want ErrNotFound", err)
		}
	})
}

// ListParts pages through parts in order of number.
func testListParts(t *testing.T, m MultipartRemote) {
	key := Key(t, "parts")
	id := createUpload(t, m, key, "", nil)
	const n = 5
	etags := map[int32]string{}
	for i := int32(n); i >= 1; i-- {
		etags[i] = uploadBytes(t, m, key, id, i, bytes.Repeat([]byte{byte('a' + i)}, int(i)*10))
	}
	for _, tc := range []struct {
		marker, max int32
		want        []int32
		truncated   bool
	}{
		{0, 0, []int32{1, 2, 3, 4, 5}, false},
		{0, 1000, []int32{1, 2, 3, 4, 5}, false},
		{0, 2, []int32{1, 2}, true},
		{2, 2, []int32{3, 4}, true},
		{4, 2, []int32{5}, false},
		{2, 0, []int32{3, 4, 5}, false},
		{5, 0, nil, false},
		{storage.MaxParts, 1, nil, false},
	} {
		page, err := m.ListParts(ctx(t), key, id, tc.marker, tc.max)
		if err != nil {
			t.Fatalf("ListParts(marker %d, max %d): %v", tc.marker, tc.max, err)
		}
		var got []int32
		for _, p := range page.Parts {
			got = append(got, p.Number)
			if p.ETag != etags[p.Number] || p.Size != int64(p.Number)*10 {
				t.Errorf("ListParts(marker %d, max %d) part %+v, want ETag %s and %d bytes", tc.marker, tc.max, p, etags[p.Number], p.Number*10)
			}
		}
		if !slices.Equal(got, tc.want) || page.Truncated != tc.truncated {
			t.Errorf("ListParts(marker %d, max %d) = parts %v, truncated %v; want %v, %v", tc.marker, tc.max, got, page.Truncated, tc.want, tc.truncated)
		}
		if page.Truncated && page.NextMarker != got[len(got)-1] {
			t.Errorf("ListParts(marker %d, max %d).NextMarker = %d, want %d", tc.marker, tc.max, page.NextMarker, got[len(got)-1])
		}
	}
	// Following NextMarker with pages of one.
	var got []int32
	for marker, pages := int32(0), 0; ; pages++ {
		if pages > n+1 {
			t.Fatalf("ListParts: more than %d pages of one", n+1)
		}
		page, err := m.ListParts(ctx(t), key, id, marker, 1)
		if err != nil {
			t.Fatalf("ListParts(marker %d, max 1): %v", marker, err)
		}
		for _, p := range page.Parts {
			got = append(got, p.Number)
		}
		if !page.Truncated {
			break
		}
		marker = page.NextMarker
	}
	if !slices.Equal(got, []int32{1, 2, 3, 4, 5}) {
		t.Errorf("ListParts page by page = %v", got)
	}
	if err := m.AbortMultipart(ctx(t), key, id); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}
	if _, err := m.ListParts(ctx(t), key, id, 0, 0); !errors.Is(err, storage.ErrNoSuchUpload) {
		t.Errorf("ListParts after Abort = %v, want ErrNoSuchUpload", err)
	}
}

// ListMultipartUploads lists open uploads, page by page, and not once
// aborted.
func testListUploads(t *testing.T, m MultipartRemote) {
	key := Key(t, "listed")
	other := Key(t, "other")
	id1 := createUpload(t, m, key, "", nil)
	id2 := createUpload(t, m, key, "", nil)
	otherID := createUpload(t, m, other, "", nil)
	want := []string{id1, id2}
	slices.Sort(want)

	for _, n := range []int32{0, 1, 2} {
		ids, pages := openUploads(t, m, key, n)
		slices.Sort(ids)
		if !slices.Equal(ids, want) || slices.Contains(ids, otherID) {
			t.Errorf("open uploads of %q (pages of %d) = %q, want %q", key, n, ids, want)
		}
		if n == 1 && pages < 2 {
			t.Errorf("two uploads listed in %d page of one", pages)
		}
	}
	page, err := m.ListMultipartUploads(ctx(t), storage.UploadListOptions{Prefix: key, Max: 1})
	if err != nil || len(page.Uploads) != 1 || !page.Truncated || page.NextKeyMarker != key || page.NextUploadIDMarker != page.Uploads[0].UploadID {
		t.Errorf("ListMultipartUploads(max 1) = %+v, %v; want one upload, truncated, markers naming it", page, err)
	}

	if err := m.AbortMultipart(ctx(t), key, id1); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}
	if ids, _ := openUploads(t, m, key, 0); !slices.Equal(ids, []string{id2}) {
		t.Errorf("after aborting %s, open uploads = %q, want %s", id1, ids, id2)
	}
	for _, u := range []struct{ key, id string }{{key, id2}, {other, otherID}} {
		if err := m.AbortMultipart(ctx(t), u.key, u.id); err != nil {
			t.Fatalf("AbortMultipart: %v", err)
		}
	}
	if ids, _ := openUploads(t, m, key, 0); len(ids) != 0 {
		t.Errorf("after aborting every upload, open uploads = %q", ids)
	}
	if ids, _ := openUploads(t, m, other, 0); len(ids) != 0 {
		t.Errorf("after aborting every upload, open uploads of %q = %q", other, ids)
	}
}

// Complete refuses a wrong ETag, a part never uploaded and parts out of
// order with ErrInvalidPart, and the upload stays open for a right one.
func testInvalidPart(t *testing.T, m MultipartRemote) {
	key := Key(t, "object")
	id := createUpload(t, m, key, "", nil)
	etag1 := uploadPart(t, m, key, id, 1, 41, storage.MinPartSize)
	etag2 := uploadBytes(t, m, key, id, 2, []byte("last"))
	for _, tc := range []struct {
		name  string
		parts []storage.CompletedPart
		order bool
	}{
		{"wrongETag", []storage.CompletedPart{{Number: 1, ETag: `"0123456789abcdef0123456789abcdef"`}, {Number: 2, ETag: etag2}}, false},
		{"swappedETags", []storage.CompletedPart{{Number: 1, ETag: etag2}, {Number: 2, ETag: etag1}}, false},
		{"missingPart", []storage.CompletedPart{{Number: 1, ETag: etag1}, {Number: 3, ETag: etag2}}, false},
		{"order", []storage.CompletedPart{{Number: 2, ETag: etag2}, {Number: 1, ETag: etag1}}, true},
	} {
		_, err := m.CompleteMultipart(ctx(t), key, id, tc.parts)
		if !errors.Is(err, storage.ErrInvalidPart) || errors.Is(err, storage.ErrInvalidPartOrder) != tc.order ||
			errors.Is(err, storage.ErrNoSuchUpload) || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: Complete(%v) = %v, want ErrInvalidPart (order: %v)", tc.name, tc.parts, err, tc.order)
		}
		if _, err := m.Stat(ctx(t), key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: Stat after a failed Complete = %v, want ErrNotFound", tc.name, err)
		}
	}
	etag := complete(t, m, key, id, storage.CompletedPart{Number: 1, ETag: etag1}, storage.CompletedPart{Number: 2, ETag: etag2})
	sum, size := sumOf(t, Data(41, storage.MinPartSize), strings.NewReader("last"))
	wantObject(t, m, key, sum, size, etag)
}

// A part under MinPartSize but the last fails Complete with
// ErrEntityTooSmall.
func testEntityTooSmall(t *testing.T, m MultipartRemote) {
	key := Key(t, "object")
	id := createUpload(t, m, key, "", nil)
	parts := []storage.CompletedPart{
		{Number: 1, ETag: uploadPart(t, m, key, id, 1, 51, storage.MinPartSize)},
		{Number: 2, ETag: uploadPart(t, m, key, id, 2, 52, storage.MinPartSize-1)},
		{Number: 3, ETag: uploadPart(t, m, key, id, 3, 53, 10)},
	}
	_, err := m.CompleteMultipart(ctx(t), key, id, parts)
	if !errors.Is(err, storage.ErrEntityTooSmall) || errors.Is(err, storage.ErrInvalidPart) {
		t.Errorf("Complete with a small middle part = %v, want ErrEntityTooSmall", err)
	}
	if _, err := m.Stat(ctx(t), key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after a failed Complete = %v, want ErrNotFound", err)
	}
	// Without the small part, the upload completes.
	etag := complete(t, m, key, id, parts[0], parts[2])
	sum, size := sumOf(t, Data(51, storage.MinPartSize), Data(53, 10))
	wantObject(t, m, key, sum, size, etag)
}

// Every per-upload method refuses an upload ID that names no open upload
// of the key with ErrNoSuchUpload.
func testNoSuchUpload(t *testing.T, m MultipartRemote) {
	key := Key(t, "object")
	src := Key(t, "src")
	put(t, m, src, []byte("source"), nil)
	// Well formed as the backend makes them, but no longer open.
	gone := createUpload(t, m, key, "", nil)
	if err := m.AbortMultipart(ctx(t), key, gone); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}
	// Open, but for another key.
	otherKey := Key(t, "other")
	ofOther := createUpload(t, m, otherKey, "", nil)
	for name, id := range map[string]string{"aborted": gone, "otherKey": ofOther} {
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, storage.ErrNoSuchUpload) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidArgument) {
				t.Errorf("%s: %s = %v, want ErrNoSuchUpload", name, op, err)
			}
		}
		_, err := m.UploadPart(ctx(t), key, id, 1, onlyReader{strings.NewReader("data")}, 4, storage.PartOptions{})
		check("UploadPart", err)
		_, err = m.UploadPart(ctx(t), key, id, 1, onlyReader{Data(61, storage.MinPartSize)}, storage.MinPartSize, storage.PartOptions{})
		check("UploadPart(5 MiB)", err)
		_, _, err = m.UploadPartCopy(ctx(t), key, id, 1, src, 0, -1)
		check("UploadPartCopy", err)
		_, err = m.ListParts(ctx(t), key, id, 0, 0)
		check("ListParts", err)
		_, err = m.CompleteMultipart(ctx(t), key, id, []storage.CompletedPart{{Number: 1, ETag: `"0123456789abcdef0123456789abcdef"`}})
		check("CompleteMultipart", err)
		// Some backends (MinIO) do not tell.
		if err := m.AbortMultipart(ctx(t), key, id); err != nil {
			check("AbortMultipart", err)
		}
	}
	// The other key's upload was left alone.
	if ids, _ := openUploads(t, m, otherKey, 0); !slices.Equal(ids, []string{ofOther}) {
		t.Errorf("open uploads of %q = %q, want %s", otherKey, ids, ofOther)
	}
	if _, err := m.Stat(ctx(t), key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(%q) = %v, want ErrNotFound", key, err)
	}
}

// PartOptions.ContentMD5 is checked by the backend.
func testContentMD5(t *testing.T, m MultipartRemote) {
	key := Key(t, "object")
	id := createUpload(t, m, key, "", nil)
	data := []byte("the part's bytes")
	sum := md5.Sum(data)
	other := md5.Sum([]byte("other bytes"))
	_, err := m.UploadPart(ctx(t), key, id, 1, onlyReader{bytes.NewReader(data)}, int64(len(data)),
		storage.PartOptions{ContentMD5: base64.StdEncoding.EncodeToString(other[:])})
	if !errors.Is(err, storage.ErrBadDigest) {
		t.Errorf("UploadPart with another digest = %v, want ErrBadDigest", err)
	}
	if page, err := m.ListParts(ctx(t), key, id, 0, 0); err != nil || len(page.Parts) != 0 {
		t.Errorf("ListParts after a refused part = %+v, %v; want none", page, err)
	}
	etag, err := m.UploadPart(ctx(t), key, id, 1, onlyReader{bytes.NewReader(data)}, int64(len(data)),
		storage.PartOptions{ContentMD5: base64.StdEncoding.EncodeToString(sum[:])})
	if err != nil {
		t.Fatalf("UploadPart with its digest: %v", err)
	}
	complete(t, m, key, id, storage.CompletedPart{Number: 1, ETag: etag})
	if got, _ := get(t, m, key, 0, -1); !bytes.Equal(got, data) {
		t.Errorf("Get = %q, want %q", got, data)
	}
}

// A body that is short, long, failing or canceled stores no part, and
// UploadPart reports why.
func testPartBodyErrors(t *testing.T, m MultipartRemote) {
	key := Key(t, "object")
	id := createUpload(t, m, key, "", nil)
	const size = 2 << 20
	upload := func(c context.Context, r io.Reader, size int64) error {
		_, err := m.UploadPart(c, key, id, 1, onlyReader{r}, size, storage.PartOptions{})
		return err
	}
	if err := upload(ctx(t), Data(71, size-1), size); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("UploadPart of a short body = %v, want io.ErrUnexpectedEOF", err)
	}
	if err := upload(ctx(t), Data(71, size+1), size); err == nil {
		t.Errorf("UploadPart of a long body succeeded")
	}
	if err := upload(ctx(t), strings.NewReader("x"), 0); err == nil {
		t.Errorf("UploadPart of a byte as an empty part succeeded")
	}
	if err := upload(ctx(t), FailAfter(Data(71, size), 1<<20), size); !errors.Is(err, ErrInjected) {
		t.Errorf("UploadPart of a failing body = %v, want the reader's error", err)
	}
	if err := upload(ctx(t), FailAfter(Data(71, size), size), size); !errors.Is(err, ErrInjected) {
		t.Errorf("UploadPart of a body failing with its last byte = %v, want the reader's error", err)
	}
	c, cancel := context.WithCancel(ctx(t))
	err := upload(c, &cancelAfter{r: Data(71, size), n: 1 << 20, cancel: cancel}, size)
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("UploadPart canceled midway = %v, want context.Canceled", err)
	}
	c, cancel = context.WithCancel(ctx(t))
	cancel()
	if err := upload(c, Data(71, size), size); !errors.Is(err, context.Canceled) {
		t.Errorf("UploadPart with a canceled ctx = %v, want context.Canceled", err)
	}
	if page, err := m.ListParts(ctx(t), key, id, 0, 0); err != nil || len(page.Parts) != 0 {
		t.Errorf("ListParts after failed uploads = %+v, %v; want no part", page, err)
	}
	// An empty part is a part.
	etag, err := m.UploadPart(ctx(t), key, id, 1, onlyReader{strings.NewReader("")}, 0, storage.PartOptions{})
	if err != nil {
		t.Fatalf("UploadPart of an empty part: %v", err)
	}
	complete(t, m, key, id, storage.CompletedPart{Number: 1, ETag: etag})
	if got, info := get(t, m, key, 0, -1); len(got) != 0 || info.Size != 0 {
		t.Errorf("Get = %d bytes, want an empty object", len(got))
	}
}

// Malformed arguments are refused before the backend is asked.
func testMultipartInvalidArguments(t *testing.T, m MultipartRemote) {
	key := Key(t, "object")
	src := Key(t, "src")
	put(t, m, src, []byte("source"), nil)
	id := createUpload(t, m, key, "", nil)
	check := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) || errors.Is(err, storage.ErrNoSuchUpload) || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s = %v, want %v", what, err, want)
		}
	}
	body := func() io.Reader { return onlyReader{strings.NewReader("data")} }
	for _, bad := range []string{"", "has space", "nul\x00", "ü", "tab\t", strings.Repeat("u", storage.MaxUploadIDLen+1)} {
		what := fmt.Sprintf("upload ID %.20q: ", bad)
		_, err := m.UploadPart(ctx(t), key, bad, 1, body(), 4, storage.PartOptions{})
		check(what+"UploadPart", err, storage.ErrInvalidArgument)
		_, _, err = m.UploadPartCopy(ctx(t), key, bad, 1, src, 0, -1)
		check(what+"UploadPartCopy", err, storage.ErrInvalidArgument)
		_, err = m.ListParts(ctx(t), key, bad, 0, 0)
		check(what+"ListParts", err, storage.ErrInvalidArgument)
		_, err = m.CompleteMultipart(ctx(t), key, bad, []storage.CompletedPart{{Number: 1, ETag: `"x"`}})
		check(what+"CompleteMultipart", err, storage.ErrInvalidArgument)
		check(what+"AbortMultipart", m.AbortMultipart(ctx(t), key, bad), storage.ErrInvalidArgument)
	}
	for _, n := range []int32{0, -1, storage.MaxParts + 1} {
		what := fmt.Sprintf("part %d: ", n)
		_, err := m.UploadPart(ctx(t), key, id, n, body(), 4, storage.PartOptions{})
		check(what+"UploadPart", err, storage.ErrInvalidArgument)
		_, _, err = m.UploadPartCopy(ctx(t), key, id, n, src, 0, -1)
		check(what+"UploadPartCopy", err, storage.ErrInvalidArgument)
		_, err = m.CompleteMultipart(ctx(t), key, id, []storage.CompletedPart{{Number: n, ETag: `"x"`}})
		check(what+"CompleteMultipart", err, storage.ErrInvalidArgument)
	}
	_, err := m.UploadPart(ctx(t), key, id, 1, body(), -1, storage.PartOptions{})
	check("UploadPart of unknown size", err, storage.ErrInvalidArgument)
	_, err = m.UploadPart(ctx(t), key, id, 1, body(), storage.MaxPartSize+1, storage.PartOptions{})
	check("UploadPart above MaxPartSize", err, storage.ErrEntityTooLarge)
	for _, md := range []string{"not base64!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		_, err = m.UploadPart(ctx(t), key, id, 1, body(), 4, storage.PartOptions{ContentMD5: md})
		check(fmt.Sprintf("UploadPart with Content-MD5 %q", md), err, storage.ErrInvalidArgument)
	}
	for _, r := range []struct{ offset, length int64 }{{-1, 2}, {1, -1}, {0, 0}, {math.MaxInt64 - 10, 100}} {
		_, _, err = m.UploadPartCopy(ctx(t), key, id, 1, src, r.offset, r.length)
		check(fmt.Sprintf("UploadPartCopy(%d, %d)", r.offset, r.length), err, storage.ErrInvalidArgument)
	}
	_, _, err = m.UploadPartCopy(ctx(t), key, id, 1, src, 0, storage.MaxPartSize+1)
	check("UploadPartCopy above MaxPartSize", err, storage.ErrEntityTooLarge)
	for _, parts := range [][]storage.CompletedPart{nil, {{Number: 1, ETag: ""}}, {{Number: 1, ETag: `"a b"`}}, make([]storage.CompletedPart, storage.MaxParts+1)} {
		_, err = m.CompleteMultipart(ctx(t), key, id, parts)
		check(fmt.Sprintf("CompleteMultipart(%d parts)", len(parts)), err, storage.ErrInvalidArgument)
	}
	for _, a := range []struct{ marker, max int32 }{{-1, 0}, {storage.MaxParts + 1, 0}, {0, -1}, {0, storage.MaxListPage + 1}} {
		_, err = m.ListParts(ctx(t), key, id, a.marker, a.max)
		check(fmt.Sprintf("ListParts(marker %d, max %d)", a.marker, a.max), err, storage.ErrInvalidArgument)
	}
	for _, opts := range []storage.UploadListOptions{
		{Prefix: key, Max: -1},
		{Prefix: key, Max: storage.MaxListPage + 1},
		{Prefix: key, KeyMarker: key, UploadIDMarker: "has space"},
	} {
		_, err = m.ListMultipartUploads(ctx(t), opts)
		check(fmt.Sprintf("ListMultipartUploads(%+v)", opts), err, storage.ErrInvalidArgument)
	}
	for _, opts := range []storage.UploadListOptions{{Prefix: "bad\xff"}, {Prefix: "nul\x00"}, {KeyMarker: "bad\xff"}} {
		_, err = m.ListMultipartUploads(ctx(t), opts)
		check(fmt.Sprintf("ListMultipartUploads(%+v)", opts), err, storage.ErrInvalidKey)
	}
	_, err = m.CreateMultipart(ctx(t), Key(t, "meta"), "", map[string]string{"Bad Key": "v"})
	check("CreateMultipart with a bad metadata key", err, storage.ErrInvalidMeta)
	_, err = m.CreateMultipart(ctx(t), Key(t, "meta"), "text/plain\r\nX-Injected: 1", nil)
	check("CreateMultipart with a bad media type", err, storage.ErrInvalidMeta)

	if page, err := m.ListParts(ctx(t), key, id, 0, 0); err != nil || len(page.Parts) != 0 {
		t.Errorf("ListParts after refused calls = %+v, %v; want no part", page, err)
	}
}

// Every method refuses the keys every Remote refuses, as target and as a
// copy's source.
func testMultipartInvalidKeys(t *testing.T, m MultipartRemote) {
	good := Key(t, "object")
	src := Key(t, "src")
	put(t, m, src, []byte("source"), nil)
	id := createUpload(t, m, good, "", nil)
	for _, key := range []string{"", "a/../b", "a/./b", ".", "..", "x/..", "nul\x00", "bad\xffutf8", strings.Repeat("k", storage.MaxRemoteKeyLen+1)} {
		t.Run(fmt.Sprintf("%.20q", key), func(t *testing.T) {
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, storage.ErrInvalidKey) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrNoSuchUpload) {
					t.Errorf("%s(%q) = %v, want ErrInvalidKey", op, key, err)
				}
			}
			_, err := m.CreateMultipart(ctx(t), key, "", nil)
			check("CreateMultipart", err)
			_, err = m.UploadPart(ctx(t), key, id, 1, onlyReader{strings.NewReader("data")}, 4, storage.PartOptions{})
			check("UploadPart", err)
			_, _, err = m.UploadPartCopy(ctx(t), key, id, 1, src, 0, -1)
			check("UploadPartCopy", err)
			_, _, err = m.UploadPartCopy(ctx(t), good, id, 1, key, 0, -1)
			check("UploadPartCopy from", err)
			_, err = m.CompleteMultipart(ctx(t), key, id, []storage.CompletedPart{{Number: 1, ETag: `"x"`}})
			check("CompleteMultipart", err)
			check("AbortMultipart", m.AbortMultipart(ctx(t), key, id))
			_, err = m.ListParts(ctx(t), key, id, 0, 0)
			check("ListParts", err)
		})
	}
	if page, err := m.ListParts(ctx(t), good, id, 0, 0); err != nil || len(page.Parts) != 0 {
		t.Errorf("ListParts after refused calls = %+v, %v; want no part", page, err)
	}
}
