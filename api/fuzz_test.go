package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/node"
)

// Whatever a client puts in a request's Range, ID, name, level and user
// metadata, the answer is never a server error, a range answer holds
// exactly the bytes it names, and a PUT is either refused as the
// client's mistake or stored as sent.
func FuzzPublicRequest(f *testing.F) {
	srv, n := newServer(f)
	h := NewPublic(Config{Store: n, Version: "test"})
	body := strings.Repeat("0123456789abcdef", 64) // 1 KiB
	id := ulid.Make()
	if _, err := n.Put(context.Background(), node.PutRequest{ID: id, Name: "obj.bin", Body: strings.NewReader(body), Size: int64(len(body))}); err != nil {
		f.Fatal(err)
	}
	srv.Close()
	f.Add("bytes=0-9", ulid.Make().String(), "name.txt", "1", `{"a":"b"}`)
	f.Add("bytes=-5", "not-an-id", "\x00", "7", `{"a":1}`)
	f.Add("bytes=5-,0-1,9-3", "", strings.Repeat("n", 300), "", "null")
	f.Add("bytes=99999-", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "ünï", "2", `[]`)
	f.Fuzz(func(t *testing.T, rng, putID, name, level, userMeta string) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/get/"+id.String(), nil)
		req.Header.Set("Range", rng)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200:
			if rec.Body.String() != body {
				t.Fatalf("Range %q: 200 with a body of %d bytes", rng, rec.Body.Len())
			}
		case 206:
			var start, end, size int
			if _, err := fmt.Sscanf(rec.Header().Get("Content-Range"), "bytes %d-%d/%d", &start, &end, &size); err == nil {
				if rec.Body.String() != body[start:end+1] {
					t.Fatalf("Range %q: 206 %s with other bytes", rng, rec.Header().Get("Content-Range"))
				}
			} else if !strings.HasPrefix(rec.Header().Get("Content-Type"), "multipart/byteranges") {
				t.Fatalf("Range %q: 206 without a Content-Range", rng)
			}
		case 416:
		default:
			t.Fatalf("Range %q: %d %s", rng, rec.Code, rec.Body)
		}

		put := httptest.NewRequest(http.MethodPost, "/api/v1/put", strings.NewReader("fuzzed body"))
		for k, v := range map[string]string{HeaderID: putID, HeaderName: name, HeaderLevel: level, HeaderUserMeta: userMeta} {
			if v != "" {
				put.Header[k] = []string{v}
			}
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, put)
		switch {
		case rec.Code == 200:
			pid, _ := ulid.ParseStrict(putID)
			obj, err := n.Get(context.Background(), pid, node.GetOptions{})
			if err != nil {
				t.Fatalf("PUT answered 200 but the object is not there: %v", err)
			}
			got, _ := io.ReadAll(obj.Content)
			obj.Close()
			if !bytes.Equal(got, []byte("fuzzed body")) {
				t.Fatalf("PUT answered 200 but stored %q", got)
			}
		case rec.Code >= 500:
			t.Fatalf("PUT %q %q %q %q: %d %s", putID, name, level, userMeta, rec.Code, rec.Body)
		}
	})
}
