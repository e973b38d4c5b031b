package s3api

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/node"
)

// The multipart upload calls are passed through to the origin bucket
// (node's CreateUpload and the rest): parts go to the bucket as they
// stream in, and the completed object is recorded in the cluster as a
// write through objstore.

// Multipart is what the multipart calls need of the node. *node.Node
// implements it.
type Multipart interface {
	CreateUpload(ctx context.Context, bucket, key, contentType string, meta map[string]string) (string, error)
	UploadPart(ctx context.Context, bucket, key, uploadID string, part int32, r io.Reader, size int64, contentMD5 string) (string, error)
	UploadPartCopy(ctx context.Context, bucket, key, uploadID string, part int32, srcBucket, srcKey string, offset, length int64) (string, error)
	CompleteUpload(ctx context.Context, bucket, key, uploadID string, parts []node.CompletedPart, level journal.Level) (node.Meta, error)
	AbortUpload(ctx context.Context, bucket, key, uploadID string) error
	ListParts(ctx context.Context, bucket, key, uploadID string, marker, max int32) (node.PartsPage, error)
	ListUploads(ctx context.Context, bucket string, opts node.UploadListOptions) (node.UploadsPage, error)
	KeyPart(ctx context.Context, bucket, key string, part int32, etag string) (node.PartRange, error)
}

var _ Multipart = (*node.Node)(nil)

// multipart returns the store's multipart calls, or fails the request.
func (s *server) multipart(req *request) (Multipart, bool) {
	m, ok := s.cfg.Store.(Multipart)
	if !ok {
		s.fail(req, fmt.Errorf("%w: multipart uploads", errNotImplemented))
	}
	return m, ok
}

type initiateResult struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Bucket   string
	Key      string
	UploadID string `xml:"UploadId"`
}

func (s *server) createUpload(req *request) {
	m, ok := s.multipart(req)
	if !ok {
		return
	}
	id, err := m.CreateUpload(req.r.Context(), req.bucket, req.key, req.r.Header.Get("Content-Type"), userMeta(req.r.Header))
	if err != nil {
		s.fail(req, err)
		return
	}
	writeXML(req.w, http.StatusOK, initiateResult{Xmlns: xmlns, Bucket: req.bucket, Key: req.key, UploadID: id})
}

// partNumber parses ?partNumber=.
func partNumber(req *request) (int32, error) {
	v := req.r.URL.Query().Get("partNumber")
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 1 || n > 10000 {
		return 0, fmt.Errorf("%w: partNumber %q must be 1 to 10000", errInvalidArgument, v)
	}
	return int32(n), nil
}

func (s *server) uploadPart(req *request) {
	m, ok := s.multipart(req)
	if !ok {
		return
	}
	part, err := partNumber(req)
	if err != nil {
		s.fail(req, err)
		return
	}
	body, size, err := uploadBody(req)
	if err != nil {
		s.fail(req, err)
		return
	}
	etag, err := m.UploadPart(req.r.Context(), req.bucket, req.key, req.r.URL.Query().Get("uploadId"), part, body, size,
		req.r.Header.Get("Content-Md5"))
	if err != nil {
		s.fail(req, err)
		return
	}
	req.w.Header().Set("ETag", etag)
	req.w.WriteHeader(http.StatusOK)
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"CopyPartResult"`
	Xmlns        string   `xml:"xmlns,attr"`
	LastModified string
	ETag         string
}

// copyRange parses x-amz-copy-source-range, "bytes=first-last"; absent,
// the whole source (length -1).
func copyRange(v string) (offset, length int64, err error) {
	if v == "" {
		return 0, -1, nil
	}
	spec, ok := strings.CutPrefix(v, "bytes=")
	a, b, ok2 := strings.Cut(spec, "-")
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || !ok2 || err1 != nil || err2 != nil || first < 0 || last < first || last-first == math.MaxInt64 {
		return 0, 0, fmt.Errorf("%w: x-amz-copy-source-range %q must be bytes=first-last", errInvalidArgument, v)
	}
	return first, last - first + 1, nil
}

func (s *server) uploadPartCopy(req *request) {
	m, ok := s.multipart(req)
	if !ok {
		return
	}
	part, err := partNumber(req)
	if err != nil {
		s.fail(req, err)
		return
	}
	srcBucket, srcKey, err := copySource(req.r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		s.fail(req, err)
		return
	}
	offset, length, err := copyRange(req.r.Header.Get("X-Amz-Copy-Source-Range"))
	if err != nil {
		s.fail(req, err)
		return
	}
	etag, err := m.UploadPartCopy(req.r.Context(), req.bucket, req.key, req.r.URL.Query().Get("uploadId"), part,
		srcBucket, srcKey, offset, length)
	if err != nil {
		s.fail(req, err)
		return
	}
	writeXML(req.w, http.StatusOK, copyPartResult{Xmlns: xmlns, LastModified: time.Now().UTC().Format(timeFormat), ETag: etag})
}

// completeRequest is CompleteMultipartUpload's body.
type completeRequest struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		PartNumber int32
		ETag       string
	} `xml:"Part"`
}

type completeResult struct {
	XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Location string
	Bucket   string
	Key      string
	ETag     string
}

// maxCompleteBody bounds CompleteMultipartUpload's body: 10,000 parts of
// well under 200 bytes each.
const maxCompleteBody = 4 << 20

func (s *server) completeUpload(req *request) {
	m, ok := s.multipart(req)
	if !ok {
		return
	}
	level, err := s.level(req)
	if err != nil {
		s.fail(req, err)
		return
	}
	raw, err := readSmallBody(req, maxCompleteBody)
	if err != nil {
		s.fail(req, err)
		return
	}
	var in completeRequest
	if err := xml.Unmarshal(raw, &in); err != nil {
		s.fail(req, fmt.Errorf("%w: %v", errMalformedXML, err))
		return
	}
	if len(in.Parts) == 0 || len(in.Parts) > 10000 {
		s.fail(req, fmt.Errorf("%w: %d parts; 1 to 10000", errMalformedXML, len(in.Parts)))
		return
	}
	parts := make([]node.CompletedPart, len(in.Parts))
	for i, p := range in.Parts {
		parts[i] = node.CompletedPart{Number: p.PartNumber, ETag: p.ETag}
	}
	meta, err := m.CompleteUpload(req.r.Context(), req.bucket, req.key, req.r.URL.Query().Get("uploadId"), parts, level)
	if err != nil {
		s.fail(req, err)
		return
	}
	writeXML(req.w, http.StatusOK, completeResult{Xmlns: xmlns, Location: "/" + req.bucket + "/" + req.key,
		Bucket: req.bucket, Key: req.key, ETag: meta.ETag})
}

func (s *server) abortUpload(req *request) {
	m, ok := s.multipart(req)
	if !ok {
		return
	}
	if err := m.AbortUpload(req.r.Context(), req.bucket, req.key, req.r.URL.Query().Get("uploadId")); err != nil {
		s.fail(req, err)
		return
	}
	req.w.WriteHeader(http.StatusNoContent)
}

type listPartsResult struct {
	XMLName              xml.Name `xml:"ListPartsResult"`
	Xmlns                string   `xml:"xmlns,attr"`
	Bucket               string
	Key                  string
	UploadID             string `xml:"UploadId"`
	PartNumberMarker     int32
	NextPartNumberMarker int32
	MaxParts             int32
	IsTruncated          bool
	StorageClass         string
	Initiator            owner
	Owner                owner
	Parts                []partEntry `xml:"Part"`
}

type partEntry struct {
	PartNumber   int32
	LastModified string
	ETag         string
	Size         int64
}

// intParam parses an optional integer query parameter within [lo, hi].
func intParam(req *request, name string, lo, hi, def int32) (int32, error) {
	v := req.r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < int64(lo) {
		return 0, fmt.Errorf("%w: %s %q", errInvalidArgument, name, v)
	}
	return int32(min(n, int64(hi))), nil
}

func (s *server) listParts(req *request) {
	m, ok := s.multipart(req)
	if !ok {
		return
	}
	marker, err := intParam(req, "part-number-marker", 0, 10000, 0)
	if err != nil {
		s.fail(req, err)
		return
	}
	max, err := intParam(req, "max-parts", 1, 1000, 1000)
	if err != nil {
		s.fail(req, err)
		return
	}
	uploadID := req.r.URL.Query().Get("uploadId")
	page, err := m.ListParts(req.r.Context(), req.bucket, req.key, uploadID, marker, max)
	if err != nil {
		s.fail(req, err)
		return
	}
	out := listPartsResult{Xmlns: xmlns, Bucket: req.bucket, Key: req.key, UploadID: uploadID, PartNumberMarker: marker,
		NextPartNumberMarker: page.NextMarker, MaxParts: max, IsTruncated: page.Truncated, StorageClass: "STANDARD",
		Initiator: objstoreOwner, Owner: objstoreOwner}
	for _, p := range page.Parts {
		out.Parts = append(out.Parts, partEntry{PartNumber: p.Number, LastModified: p.LastModified.UTC().Format(timeFormat),
			ETag: p.ETag, Size: p.Size})
	}
	writeXML(req.w, http.StatusOK, out)
}

type listUploadsResult struct {
	XMLName            xml.Name `xml:"ListMultipartUploadsResult"`
	Xmlns              string   `xml:"xmlns,attr"`
	Bucket             string
	KeyMarker          string
	UploadIDMarker     string `xml:"UploadIdMarker"`
	NextKeyMarker      string
	NextUploadIDMarker string `xml:"NextUploadIdMarker"`
	Prefix             string
	MaxUploads         int32
	IsTruncated        bool
	Uploads            []uploadEntry `xml:"Upload"`
}

type uploadEntry struct {
	Key          string
	UploadID     string `xml:"UploadId"`
	Initiated    string
	StorageClass string
	Initiator    owner
	Owner        owner
}

func (s *server) listUploads(req *request) {
	m, ok := s.multipart(req)
	if !ok {
		return
	}
	q := req.r.URL.Query()
	if q.Get("delimiter") != "" {
		s.fail(req, fmt.Errorf("%w: listing uploads with a delimiter", errNotImplemented))
		return
	}
	max, err := intParam(req, "max-uploads", 1, 1000, 1000)
	if err != nil {
		s.fail(req, err)
		return
	}
	opts := node.UploadListOptions{Prefix: q.Get("prefix"), KeyMarker: q.Get("key-marker"), UploadIDMarker: q.Get("upload-id-marker"), Max: max}
	page, err := m.ListUploads(req.r.Context(), req.bucket, opts)
	if err != nil {
		s.fail(req, err)
		return
	}
	out := listUploadsResult{Xmlns: xmlns, Bucket: req.bucket, KeyMarker: opts.KeyMarker, UploadIDMarker: opts.UploadIDMarker,
		NextKeyMarker: page.NextKeyMarker, NextUploadIDMarker: page.NextUploadIDMarker, Prefix: opts.Prefix, MaxUploads: max,
		IsTruncated: page.Truncated}
	for _, u := range page.Uploads {
		out.Uploads = append(out.Uploads, uploadEntry{Key: u.Key, UploadID: u.UploadID, Initiated: u.Initiated.UTC().Format(timeFormat),
			StorageClass: "STANDARD", Initiator: objstoreOwner, Owner: objstoreOwner})
	}
	writeXML(req.w, http.StatusOK, out)
}

// readSmallBody reads a request's body of at most max bytes, checked
// against its checksum headers.
func readSmallBody(req *request, max int64) ([]byte, error) {
	body, err := checkedBody(io.LimitReader(req.r.Body, max+1), req.r.Header)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(body)
	switch {
	case err != nil:
		return nil, err
	case int64(len(raw)) > max:
		return nil, fmt.Errorf("%w: the request body is over %d bytes", errMalformedXML, max)
	}
	return raw, nil
}
