package api

import (
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/objstore/objstore/node"
)

// RequestRange returns the span of a body that a GET with header h will
// read, for the node to fetch no more of an object it does not hold than
// that: its Range header's single range, or the span from the first to
// the last byte of several. It returns nil (the whole body) when there is
// no Range header or it cannot be read; http.ServeContent still answers
// the header itself, and reads outside the span work, only slower.
func RequestRange(h http.Header) *node.Range {
	spec, ok := strings.CutPrefix(h.Get("Range"), "bytes=")
	if !ok || len(spec) > 1024 {
		return nil
	}
	var out *node.Range
	var last int64 // the end of the span, inclusive; -1: to the end
	for part := range strings.SplitSeq(spec, ",") {
		first, end, ok := strings.Cut(strings.TrimSpace(part), "-")
		if !ok {
			return nil
		}
		if first == "" {
			// A suffix: only alone can it be told without the size.
			n, err := strconv.ParseInt(end, 10, 64)
			if err != nil || n <= 0 || out != nil || strings.Contains(spec, ",") {
				return nil
			}
			return &node.Range{Offset: -n, Length: -1}
		}
		start, err := strconv.ParseInt(first, 10, 64)
		if err != nil || start < 0 {
			return nil
		}
		stop := int64(-1)
		if end != "" {
			if stop, err = strconv.ParseInt(end, 10, 64); err != nil || stop < start {
				return nil
			}
		}
		if stop > maxRangeOffset {
			stop = -1 // past any object: to the end, and no sum overflows
		}
		if out == nil {
			out, last = &node.Range{Offset: start}, stop
			continue
		}
		out.Offset = min(out.Offset, start)
		if last >= 0 && (stop < 0 || stop > last) {
			last = stop
		}
	}
	if out == nil {
		return nil
	}
	out.Length = -1
	if last >= 0 {
		out.Length = last - out.Offset + 1
	}
	return out
}

// maxRangeOffset is S3's largest object: a range's end past it is read as
// "to the end", so that no length RequestRange computes overflows.
const maxRangeOffset = 5 << 40

// SparseHeaders sets the headers of a body read through a sparse copy
// (obj.Sparse; nothing otherwise): HeaderHeld, and a Content-Type when
// none is set, named by name's extension or application/octet-stream,
// since http.ServeContent would otherwise read the body's first bytes to
// sniff one, fetching a part the client did not ask for.
func SparseHeaders(h http.Header, obj *node.Object, name string) {
	if !obj.Sparse {
		return
	}
	if obj.Held > 0 {
		h.Set(HeaderHeld, strconv.FormatInt(obj.Held, 10))
	}
	if h.Get("Content-Type") != "" {
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
}
