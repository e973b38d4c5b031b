package s3api

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/objstore/objstore/api"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/node"
)

// metaPrefix starts the headers that carry an object's user metadata.
const metaPrefix = "X-Amz-Meta-"

// setObjectHeaders describes an object as S3 does.
func setObjectHeaders(h http.Header, m node.Meta) {
	if m.ETag != "" {
		h.Set("ETag", m.ETag)
	}
	ct := m.ContentType
	if ct == "" {
		ct = "binary/octet-stream"
	}
	h.Set("Content-Type", ct)
	if m.LastModified != nil {
		h.Set("Last-Modified", m.LastModified.UTC().Format(http.TimeFormat))
	}
	for k, v := range m.UserMeta {
		h.Set(metaPrefix+k, v)
	}
	h.Set("Accept-Ranges", "bytes")
}

// responseOverrides are the query parameters of a GET that set the
// answer's headers (S3's response-* parameters).
var responseOverrides = map[string]string{
	"response-content-type":        "Content-Type",
	"response-content-language":    "Content-Language",
	"response-expires":             "Expires",
	"response-cache-control":       "Cache-Control",
	"response-content-disposition": "Content-Disposition",
	"response-content-encoding":    "Content-Encoding",
}

// getObject answers GetObject (withBody) and HeadObject. Reads go through
// the cache (local disk, a peer, then the origin); Range and the
// conditional headers are answered as S3 does.
func (s *server) getObject(req *request, withBody bool) {
	q := req.r.URL.Query()
	var (
		m   node.Meta
		obj *node.Object
		err error
	)
	if withBody {
		opts := node.KeyGetOptions{}
		if !q.Has("partNumber") && !strings.Contains(req.r.Header.Get("Range"), ",") {
			opts.Range = api.RequestRange(req.r.Header)
		}
		obj, err = s.cfg.Store.GetKey(req.r.Context(), req.bucket, req.key, opts)
		if err == nil {
			defer obj.Close()
			m = obj.Meta
		}
	} else {
		m, err = s.cfg.Store.StatKey(req.r.Context(), req.bucket, req.key)
	}
	if err != nil {
		s.fail(req, err)
		return
	}
	if v := q.Get("partNumber"); v != "" {
		if err := s.partRange(req, m, v); err != nil {
			s.fail(req, err)
			return
		}
	}
	h := req.w.Header()
	setObjectHeaders(h, m)
	for p, header := range responseOverrides {
		if v := q.Get(p); v != "" {
			h.Set(header, v)
		}
	}
	if withBody {
		h.Set("X-Objstore-Source", string(obj.Source))
	}
	if strings.Contains(req.r.Header.Get("Range"), ",") {
		req.r.Header.Del("Range") // S3 serves one range; with several, the whole object
	}
	var modified time.Time
	if m.LastModified != nil {
		modified = *m.LastModified
	}
	var content io.ReadSeeker = sizeOnly(m.Size)
	if withBody {
		content = obj.Content
	}
	cw := &contentWriter{ResponseWriter: req.w, s: s, req: req}
	var data []byte
	if withBody {
		data = obj.Bytes()
		if s.cfg.Metrics != nil {
			cw.first = api.FirstByte(s.cfg.Metrics, req.w, obj)
		}
	}
	if withBody {
		api.SparseHeaders(req.w.Header(), obj, "")
	}
	if data == nil || !api.ServeBytes(cw, req.r, "", modified, data) {
		http.ServeContent(cw, req.r, "", modified, content)
	}
	if withBody {
		s.cfg.Store.Served(obj.Source, cw.n)
		if obj.Source != node.SourceLocal {
			// As in the REST API: the last bytes before the copy's commit.
			http.NewResponseController(req.w).Flush()
		}
	}
}

// partRange turns a read of one part (partNumber) into a read of that
// part's bytes, as S3 does: the origin locates a part of an object
// uploaded in parts, and any other object is its own single part.
func (s *server) partRange(req *request, m node.Meta, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 10000 {
		return fmt.Errorf("%w: partNumber %q must be 1 to 10000", errInvalidArgument, v)
	}
	if req.r.Header.Get("Range") != "" {
		return fmt.Errorf("%w: a Range header and partNumber together", errInvalidRequest)
	}
	pr := node.PartRange{Length: m.Size, Parts: 1}
	switch {
	case multipartETag(m.ETag):
		mp, ok := s.cfg.Store.(Multipart)
		if !ok {
			return fmt.Errorf("%w: reading one part of an object uploaded in parts", errNotImplemented)
		}
		if pr, err = mp.KeyPart(req.r.Context(), req.bucket, req.key, int32(n), m.ETag); err != nil {
			return err
		}
		if pr.Offset > m.Size-pr.Length {
			return fmt.Errorf("%w: part %d (%d bytes at %d) lies outside the cached copy of %d bytes",
				node.ErrConflict, n, pr.Length, pr.Offset, m.Size)
		}
	case n != 1:
		return fmt.Errorf("%w: the object has 1 part", errInvalidPartNumber)
	}
	req.w.Header().Set("x-amz-mp-parts-count", strconv.Itoa(int(pr.Parts)))
	if pr.Length > 0 {
		req.r.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", pr.Offset, pr.Offset+pr.Length-1))
	}
	return nil
}

// multipartETag reports whether an ETag is that of an object uploaded in
// parts ("<md5 of the parts' md5s>-<parts>").
func multipartETag(etag string) bool {
	_, n, ok := strings.Cut(strings.Trim(etag, `"`), "-")
	return ok && n != ""
}

// sizeOnly is a body of a known size that is never read: HEAD's, for
// http.ServeContent, which only measures it.
type sizeOnly int64

func (s sizeOnly) Read([]byte) (int, error) { return 0, io.EOF }

func (s sizeOnly) Seek(off int64, whence int) (int64, error) {
	if whence == io.SeekEnd {
		return int64(s) + off, nil
	}
	return off, nil
}

// contentWriter passes http.ServeContent's answer through, turning its
// plain-text refusals (412, 416) into S3's XML errors and counting the
// body bytes.
type contentWriter struct {
	http.ResponseWriter
	s       *server
	req     *request
	refused bool
	n       int64
	first   func() // called as the first body byte leaves, when set
}

func (c *contentWriter) WriteHeader(code int) {
	switch code {
	case http.StatusPreconditionFailed:
		c.refused = true
		c.s.fail(c.req, errPrecondition)
	case http.StatusRequestedRangeNotSatisfiable:
		c.refused = true
		c.Header().Del("Content-Range")
		c.s.fail(c.req, errInvalidRange)
	default:
		c.ResponseWriter.WriteHeader(code)
	}
}

// ReadFrom copies a body in large writes (api.CopyBody): http.ServeContent
// would copy through io.Copy's 32 KiB buffer.
func (c *contentWriter) ReadFrom(src io.Reader) (int64, error) {
	return api.CopyBody(struct{ io.Writer }{c}, src)
}

func (c *contentWriter) Write(p []byte) (int, error) {
	if c.refused {
		return len(p), nil
	}
	if c.first != nil && len(p) > 0 {
		c.first()
		c.first = nil
	}
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// level is the consistency level a write asks for.
func (s *server) level(req *request) (journal.Level, error) {
	v := req.r.Header.Get(HeaderLevel)
	if v == "" {
		return s.cfg.Level, nil
	}
	switch v {
	case "1":
		return journal.LevelRemote, nil
	case "2":
		return journal.LevelFull, nil
	}
	return 0, fmt.Errorf("%w: %s %q: writes are level 1 or 2", errInvalidArgument, HeaderLevel, v)
}

// userMeta collects x-amz-meta-* headers, with S3's lower-case names.
func userMeta(h http.Header) map[string]string {
	var m map[string]string
	for k, vs := range h {
		if name, ok := strings.CutPrefix(k, metaPrefix); ok && len(vs) > 0 {
			if m == nil {
				m = map[string]string{}
			}
			m[strings.ToLower(name)] = strings.Join(vs, ",")
		}
	}
	return m
}

// bodySize is the length of a write's decoded body: the
// x-amz-decoded-content-length of an aws-chunked body, else the
// Content-Length, which S3 requires.
func bodySize(req *request) (int64, error) {
	if req.p.Streaming() {
		v := req.r.Header.Get("X-Amz-Decoded-Content-Length")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: an aws-chunked body needs x-amz-decoded-content-length", errMissingLength)
		}
		return n, nil
	}
	if req.r.ContentLength < 0 {
		return 0, errMissingLength
	}
	return req.r.ContentLength, nil
}

// uploadBody returns the body of an upload (PutObject, UploadPart), which
// checks the digests its headers give as it is read, and its decoded size.
func uploadBody(req *request) (io.Reader, int64, error) {
	size, err := bodySize(req)
	if err != nil {
		return nil, 0, err
	}
	body, err := checkedBody(req.r.Body, req.r.Header)
	if err != nil {
		return nil, 0, err
	}
	return body, size, nil
}

// putObject answers PutObject: the body is verified as it streams (its
// signature's payload hash or chunk signatures, Content-MD5 and any
// x-amz-checksum-* header) and written through to the origin bucket and
// the node's disk; nothing is stored when a check fails.
func (s *server) putObject(req *request) {
	level, err := s.level(req)
	if err != nil {
		s.fail(req, err)
		return
	}
	body, size, err := uploadBody(req)
	if err != nil {
		s.fail(req, err)
		return
	}
	m, err := s.cfg.Store.Put(req.r.Context(), node.PutRequest{Bucket: req.bucket, Key: req.key, Level: level,
		ContentType: req.r.Header.Get("Content-Type"), UserMeta: userMeta(req.r.Header), Body: body, Size: size})
	if err != nil {
		s.fail(req, err)
		return
	}
	if m.ETag != "" {
		req.w.Header().Set("ETag", m.ETag)
	}
	req.w.WriteHeader(http.StatusOK)
}

// deleteObject answers DeleteObject: from the bucket, then the cluster.
// Deleting a key that does not exist succeeds, as in S3.
func (s *server) deleteObject(req *request) {
	if _, err := s.cfg.Store.DeleteKey(req.r.Context(), req.bucket, req.key); err != nil {
		s.fail(req, err)
		return
	}
	req.w.WriteHeader(http.StatusNoContent)
}

// copyResult answers CopyObject.
type copyResult struct {
	XMLName      xml.Name `xml:"CopyObjectResult"`
	Xmlns        string   `xml:"xmlns,attr"`
	LastModified string
	ETag         string
}

// copySource parses x-amz-copy-source: "[/]bucket/key", URL-encoded.
func copySource(v string) (bucket, key string, err error) {
	// The key is URL-encoded, so a '?' as sent starts the version: split
	// before decoding, or a key holding "%3F" would be cut.
	raw, query, _ := strings.Cut(v, "?")
	if query != "" {
		return "", "", fmt.Errorf("%w: copying a version (x-amz-copy-source %q)", errNotImplemented, v)
	}
	v, err = url.PathUnescape(raw)
	if err != nil {
		return "", "", fmt.Errorf("%w: x-amz-copy-source: %v", errInvalidArgument, err)
	}
	bucket, key, ok := strings.Cut(strings.TrimPrefix(v, "/"), "/")
	if !ok || bucket == "" || key == "" {
		return "", "", fmt.Errorf("%w: x-amz-copy-source %q must be bucket/key", errInvalidArgument, v)
	}
	return bucket, key, nil
}

// copyObject answers CopyObject: the source is read through the cache and
// written through to the destination's bucket, with the source's type and
// metadata (x-amz-metadata-directive COPY) or the request's (REPLACE).
func (s *server) copyObject(req *request) {
	h := req.r.Header
	srcBucket, srcKey, err := copySource(h.Get("X-Amz-Copy-Source"))
	if err != nil {
		s.fail(req, err)
		return
	}
	level, err := s.level(req)
	if err != nil {
		s.fail(req, err)
		return
	}
	directive := h.Get("X-Amz-Metadata-Directive")
	switch directive {
	case "", "COPY", "REPLACE":
	default:
		s.fail(req, fmt.Errorf("%w: x-amz-metadata-directive %q", errInvalidArgument, directive))
		return
	}
	if srcBucket == req.bucket && srcKey == req.key && directive != "REPLACE" {
		s.fail(req, fmt.Errorf("%w: an object copied onto itself needs x-amz-metadata-directive REPLACE", errInvalidArgument))
		return
	}
	obj, err := s.cfg.Store.GetKey(req.r.Context(), srcBucket, srcKey, node.KeyGetOptions{})
	if err != nil {
		s.fail(req, fmt.Errorf("copy source %s/%s: %w", srcBucket, srcKey, err))
		return
	}
	defer obj.Close()
	if err := copyPreconditions(h, obj.Meta); err != nil {
		s.fail(req, err)
		return
	}
	put := node.PutRequest{Bucket: req.bucket, Key: req.key, Level: level, Body: obj.Content, Size: obj.Size,
		ContentType: obj.ContentType, UserMeta: obj.UserMeta}
	if directive == "REPLACE" {
		put.ContentType, put.UserMeta = h.Get("Content-Type"), userMeta(h)
	}
	m, err := s.cfg.Store.Put(req.r.Context(), put)
	if err != nil {
		s.fail(req, err)
		return
	}
	lm := time.Now().UTC()
	if m.LastModified != nil {
		lm = m.LastModified.UTC()
	}
	writeXML(req.w, http.StatusOK, copyResult{Xmlns: xmlns, LastModified: lm.Format(timeFormat), ETag: m.ETag})
}

// timeFormat is the time format of S3's XML documents.
const timeFormat = "2006-01-02T15:04:05.000Z"

// copyPreconditions checks CopyObject's x-amz-copy-source-if-* headers
// against the source.
func copyPreconditions(h http.Header, m node.Meta) error {
	var lm time.Time
	if m.LastModified != nil {
		lm = *m.LastModified
	}
	since := func(name string) (time.Time, bool) {
		t, err := http.ParseTime(h.Get(name))
		return t, err == nil
	}
	if v := h.Get("X-Amz-Copy-Source-If-Match"); v != "" && !etagMatch(v, m.ETag) {
		return fmt.Errorf("%w: x-amz-copy-source-if-match", errPrecondition)
	}
	if v := h.Get("X-Amz-Copy-Source-If-None-Match"); v != "" && etagMatch(v, m.ETag) {
		return fmt.Errorf("%w: x-amz-copy-source-if-none-match", errPrecondition)
	}
	if t, ok := since("X-Amz-Copy-Source-If-Unmodified-Since"); ok && lm.Truncate(time.Second).After(t) {
		return fmt.Errorf("%w: x-amz-copy-source-if-unmodified-since", errPrecondition)
	}
	if t, ok := since("X-Amz-Copy-Source-If-Modified-Since"); ok && !lm.Truncate(time.Second).After(t) {
		return fmt.Errorf("%w: x-amz-copy-source-if-modified-since", errPrecondition)
	}
	return nil
}

// etagMatch reports whether an If-Match style list holds etag ("*"
// matches any).
func etagMatch(list, etag string) bool {
	for v := range strings.SplitSeq(list, ",") {
		v = strings.TrimSpace(v)
		if v == "*" || strings.Trim(v, `"`) == strings.Trim(etag, `"`) {
			return true
		}
	}
	return false
}
