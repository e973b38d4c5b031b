package s3api

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/objstore/objstore/node"
)

// listAllMyBuckets answers ListBuckets.
type listAllMyBuckets struct {
	XMLName xml.Name `xml:"ListAllMyBucketsResult"`
	Xmlns   string   `xml:"xmlns,attr"`
	Owner   owner
	Buckets []bucketEntry `xml:"Buckets>Bucket"`
}

type owner struct {
	ID          string
	DisplayName string
}

// objstoreOwner stands as the owner of every bucket, object and upload:
// the origin's owners are not known here.
var objstoreOwner = owner{ID: "objstore", DisplayName: "objstore"}

type bucketEntry struct {
	Name         string
	CreationDate string
}

// listBuckets answers ListBuckets with the buckets this node serves.
func (s *server) listBuckets(req *request) {
	var buckets []BucketInfo
	if s.cfg.Buckets != nil {
		var err error
		if buckets, err = s.cfg.Buckets(req.r.Context()); err != nil {
			s.fail(req, err)
			return
		}
	}
	out := listAllMyBuckets{Xmlns: xmlns, Owner: objstoreOwner}
	for _, b := range buckets {
		created := b.Created
		if created.IsZero() {
			created = time.Unix(0, 0) // a date is required; the origin did not give one
		}
		out.Buckets = append(out.Buckets, bucketEntry{Name: b.Name, CreationDate: created.UTC().Format(timeFormat)})
	}
	writeXML(req.w, http.StatusOK, out)
}

// locationConstraint answers GetBucketLocation.
type locationConstraint struct {
	XMLName xml.Name `xml:"LocationConstraint"`
	Xmlns   string   `xml:"xmlns,attr"`
	Region  string   `xml:",chardata"`
}

// checkBucket reports whether the bucket is served and exists, by asking
// its origin for a listing of one key.
func (s *server) checkBucket(req *request) error {
	_, err := s.cfg.Store.ListKeys(req.r.Context(), req.bucket, node.ListKeysOptions{Max: 1})
	return err
}

func (s *server) bucketLocation(req *request) {
	if err := s.checkBucket(req); err != nil {
		s.fail(req, err)
		return
	}
	region := s.cfg.Region
	if region == "us-east-1" {
		region = "" // S3 answers us-east-1 with an empty constraint
	}
	writeXML(req.w, http.StatusOK, locationConstraint{Xmlns: xmlns, Region: region})
}

func (s *server) headBucket(req *request) {
	if err := s.checkBucket(req); err != nil {
		s.fail(req, err)
		return
	}
	region := s.cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	req.w.Header().Set("X-Amz-Bucket-Region", region)
	req.w.WriteHeader(http.StatusOK)
}

// createBucket answers CreateBucket for a bucket this node serves as S3
// does for a bucket its caller owns already: buckets are made in the
// origin, and clients that create a bucket before writing to it go on.
func (s *server) createBucket(req *request) {
	if err := s.checkBucket(req); err != nil {
		s.fail(req, err)
		return
	}
	s.fail(req, fmt.Errorf("%w: bucket %s exists and is served here", errBucketOwned, req.bucket))
}

// listResult answers ListObjectsV2 and ListObjects (v1); the fields of
// the version not asked for stay empty.
type listResult struct {
	XMLName     xml.Name `xml:"ListBucketResult"`
	Xmlns       string   `xml:"xmlns,attr"`
	Name        string
	Prefix      string
	Delimiter   string `xml:",omitempty"`
	MaxKeys     int
	IsTruncated bool
	// v2
	KeyCount              *int    `xml:",omitempty"`
	ContinuationToken     *string `xml:",omitempty"`
	NextContinuationToken string  `xml:",omitempty"`
	StartAfter            *string `xml:",omitempty"`
	// v1
	Marker     *string `xml:",omitempty"`
	NextMarker string  `xml:",omitempty"`

	EncodingType   string         `xml:",omitempty"`
	Contents       []listObject   `xml:"Contents"`
	CommonPrefixes []commonPrefix `xml:"CommonPrefixes"`
}

type listObject struct {
	Key          string
	LastModified string
	ETag         string
	Size         int64
	StorageClass string
	Owner        *owner `xml:",omitempty"`
}

type commonPrefix struct {
	Prefix string
}

// listObjects answers ListObjectsV2 (list-type=2) and ListObjects (v1)
// from the origin bucket's own listing.
func (s *server) listObjects(req *request) {
	q := req.r.URL.Query()
	v2 := q.Get("list-type") == "2"
	enc := q.Get("encoding-type")
	if enc != "" && enc != "url" {
		s.fail(req, fmt.Errorf("%w: encoding-type %q: only url", errInvalidArgument, enc))
		return
	}
	max := 1000
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.fail(req, fmt.Errorf("%w: max-keys %q", errInvalidArgument, v))
			return
		}
		max = min(n, 1000)
	}
	opts := node.ListKeysOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), Max: max}
	out := listResult{Xmlns: xmlns, Name: req.bucket, Prefix: opts.Prefix, Delimiter: opts.Delimiter, MaxKeys: max, EncodingType: enc}
	if v2 {
		token := q.Get("continuation-token")
		if _, ok := q["continuation-token"]; ok {
			after, err := base64.RawURLEncoding.DecodeString(token)
			if err != nil || len(after) == 0 {
				s.fail(req, fmt.Errorf("%w: continuation-token is not one this endpoint gave", errInvalidArgument))
				return
			}
			opts.After = string(after)
			out.ContinuationToken = &token
		} else if sa := q.Get("start-after"); sa != "" {
			opts.After = sa
		}
		if _, ok := q["start-after"]; ok {
			sa := q.Get("start-after")
			out.StartAfter = &sa
		}
	} else {
		marker := q.Get("marker")
		opts.After = marker
		out.Marker = &marker
	}
	var list node.KeyList
	if max > 0 {
		var err error
		if list, err = s.cfg.Store.ListKeys(req.r.Context(), req.bucket, opts); err != nil {
			s.fail(req, err)
			return
		}
	} else if err := s.checkBucket(req); err != nil {
		s.fail(req, err)
		return
	}
	encode := func(s string) string { return s }
	if enc == "url" {
		// S3 encodes as a query value, with spaces as "+".
		encode = url.QueryEscape
		out.Prefix, out.Delimiter = encode(out.Prefix), encode(out.Delimiter)
		if out.StartAfter != nil {
			sa := encode(*out.StartAfter)
			out.StartAfter = &sa
		}
		if out.Marker != nil {
			mk := encode(*out.Marker)
			out.Marker = &mk
		}
	}
	for _, k := range list.Keys {
		o := listObject{Key: encode(k.Key), LastModified: k.LastModified.UTC().Format(timeFormat), ETag: k.ETag,
			Size: k.Size, StorageClass: "STANDARD"}
		if !v2 || q.Get("fetch-owner") == "true" {
			o.Owner = &objstoreOwner
		}
		out.Contents = append(out.Contents, o)
	}
	for _, p := range list.Prefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{Prefix: encode(p)})
	}
	out.IsTruncated = list.Next != ""
	if v2 {
		n := len(out.Contents) + len(out.CommonPrefixes)
		out.KeyCount = &n
		if list.Next != "" {
			out.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(list.Next))
		}
	} else if list.Next != "" {
		out.NextMarker = encode(list.Next)
	}
	writeXML(req.w, http.StatusOK, out)
}

// deleteRequest is DeleteObjects' body.
type deleteRequest struct {
	XMLName xml.Name `xml:"Delete"`
	Quiet   bool
	Objects []struct {
		Key       string
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
}

// deleteResult answers DeleteObjects.
type deleteResult struct {
	XMLName xml.Name        `xml:"DeleteResult"`
	Xmlns   string          `xml:"xmlns,attr"`
	Deleted []deletedObject `xml:"Deleted"`
	Errors  []deleteError   `xml:"Error"`
}

type deletedObject struct {
	Key string
}

type deleteError struct {
	Key     string
	Code    string
	Message string
}

// Limits of DeleteObjects, S3's.
const (
	maxDeleteKeys  = 1000
	maxDeleteBody  = 2 << 20
	deleteParallel = 8
)

// deleteObjects answers DeleteObjects: up to 1,000 keys, each deleted as
// DeleteObject does, a few at a time; each key's outcome is reported.
func (s *server) deleteObjects(req *request) {
	raw, err := readSmallBody(req, maxDeleteBody)
	if err != nil {
		s.fail(req, err)
		return
	}
	var in deleteRequest
	if err := xml.Unmarshal(raw, &in); err != nil {
		s.fail(req, fmt.Errorf("%w: %v", errMalformedXML, err))
		return
	}
	if len(in.Objects) == 0 || len(in.Objects) > maxDeleteKeys {
		s.fail(req, fmt.Errorf("%w: %d keys; 1 to %d per request", errMalformedXML, len(in.Objects), maxDeleteKeys))
		return
	}
	out := deleteResult{Xmlns: xmlns}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(deleteParallel)
	for _, o := range in.Objects {
		g.Go(func() error {
			var err error
			if o.VersionID != "" {
				err = fmt.Errorf("%w: deleting a version", errNotImplemented)
			} else {
				_, err = s.cfg.Store.DeleteKey(req.r.Context(), req.bucket, o.Key)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				code, _ := s3ErrorCode(err, true)
				msg := err.Error()
				if code == "InternalError" || errors.Is(err, node.ErrRemoteUnavailable) {
					s.log.Warn("delete in a batch failed", "bucket", req.bucket, "key", o.Key, "err", err)
					msg = node.PublicMessage(err)
				}
				out.Errors = append(out.Errors, deleteError{Key: o.Key, Code: code, Message: msg})
			} else if !in.Quiet {
				out.Deleted = append(out.Deleted, deletedObject{Key: o.Key})
			}
			return nil
		})
	}
	g.Wait()
	writeXML(req.w, http.StatusOK, out)
}
