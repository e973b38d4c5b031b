package api

import (
	"net/http"
	"testing"

	"github.com/objstore/objstore/node"
)

func TestRequestRange(t *testing.T) {
	for _, c := range []struct {
		header string
		want   *node.Range
	}{
		{"", nil},
		{"bytes=0-99", &node.Range{Offset: 0, Length: 100}},
		{"bytes=100-", &node.Range{Offset: 100, Length: -1}},
		{"bytes=-8", &node.Range{Offset: -8, Length: -1}},
		{"bytes=10-19, 100-199", &node.Range{Offset: 10, Length: 190}},
		{"bytes=100-199,10-", &node.Range{Offset: 10, Length: -1}},
		{"bytes=-8,0-9", nil}, // a suffix among others: the whole body
		{"bytes=9-1", nil},
		{"bytes=abc", nil},
		{"items=0-9", nil},
		{"bytes=99999999999999999-", &node.Range{Offset: 99999999999999999, Length: -1}}, // past any object: 416 without a fetch
		{"bytes=0-9223372036854775807", &node.Range{Offset: 0, Length: -1}},
	} {
		h := http.Header{}
		if c.header != "" {
			h.Set("Range", c.header)
		}
		got := RequestRange(h)
		if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("%q: %+v, want %+v", c.header, got, c.want)
		}
	}
}

// Whatever a client puts in Range, RequestRange returns no span, or one
// whose end never overflows.
func FuzzRequestRange(f *testing.F) {
	for _, s := range []string{"bytes=0-99", "bytes=-8", "bytes=5-,1-2", "bytes=9223372036854775806-9223372036854775807", "bytes=-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		h := http.Header{}
		h.Set("Range", header)
		r := RequestRange(h)
		if r == nil {
			return
		}
		switch {
		case r.Offset < 0:
			if r.Length != -1 {
				t.Fatalf("%q: suffix %+v with a length", header, r)
			}
		case r.Length == 0 || r.Length < -1 || r.Length > 0 && r.Offset+r.Length < r.Offset:
			t.Fatalf("%q: %+v", header, r)
		}
	})
}
