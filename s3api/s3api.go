// Package s3api serves the key namespace of origin buckets (see node's
// key-addressed objects) through the S3 REST API, so that S3 clients and
// SDKs work against objstore by changing their endpoint alone. Reads are
// served by the cache exactly as the REST API's key reads are; writes go
// through to the origin bucket before the answer. Requests are
// authenticated with AWS Signature Version 4 (header, presigned, and
// aws-chunked bodies) against the node's credentials file.
package s3api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/objstore/objstore/api"
	"github.com/objstore/objstore/auth"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/metrics"
	"github.com/objstore/objstore/node"
)

// Store is what the S3 endpoint needs of the node. *node.Node implements
// it.
type Store interface {
	GetKey(ctx context.Context, bucket, key string, opts node.KeyGetOptions) (*node.Object, error)
	StatKey(ctx context.Context, bucket, key string) (node.Meta, error)
	Put(ctx context.Context, req node.PutRequest) (node.Meta, error)
	DeleteKey(ctx context.Context, bucket, key string) (node.Meta, error)
	ListKeys(ctx context.Context, bucket string, opts node.ListKeysOptions) (node.KeyList, error)
	// Served records bytes sent to clients, for the stats.
	Served(src node.Source, bytes int64)
}

var _ Store = (*node.Node)(nil)

// Authenticator verifies a request's credentials. *auth.Store implements
// it.
type Authenticator interface {
	Authenticate(r *http.Request) (auth.Principal, error)
}

// BucketInfo is a bucket ListBuckets names.
type BucketInfo struct {
	Name    string
	Created time.Time // zero when not known
}

// Config configures the S3 endpoint.
type Config struct {
	Store Store
	// Auth verifies every request; it is required (an S3 endpoint without
	// credentials would let anyone write the origin buckets).
	Auth Authenticator
	// Buckets lists the buckets ListBuckets answers with: those the node
	// serves. Without it, ListBuckets names none.
	Buckets func(ctx context.Context) ([]BucketInfo, error)
	// PublicRead lists buckets whose objects and listings anyone may read
	// without credentials.
	PublicRead []string
	// Domain turns on virtual-hosted-style addressing: a request for host
	// "<bucket>.<Domain>" addresses that bucket. Path-style addressing
	// always works.
	Domain string
	// Level is the consistency level of writes (1 or 2; 0 means 1); a
	// request's x-objstore-consistency-level header chooses another.
	Level journal.Level
	// Region is what GetBucketLocation answers; empty means us-east-1.
	Region string
	// Limits bounds how slowly request bodies may arrive.
	Limits api.Limits
	// Logger receives request and error logs; nil discards them.
	Logger *slog.Logger
	// Metrics records every request, by S3 operation, and each GET's time
	// to first byte; nil records nothing.
	Metrics *metrics.Registry
}

// HeaderLevel chooses a write's consistency level (1 or 2).
const HeaderLevel = "X-Objstore-Consistency-Level"

// server serves the S3 API.
type server struct {
	cfg Config
	log *slog.Logger
}

// New returns the handler of the S3 endpoint.
func New(cfg Config) (http.Handler, error) {
	if cfg.Store == nil || cfg.Auth == nil {
		return nil, errors.New("s3api: Store and Auth are required")
	}
	if cfg.Level == journal.LevelLocal {
		cfg.Level = journal.LevelRemote
	}
	if cfg.Level != journal.LevelRemote && cfg.Level != journal.LevelFull {
		return nil, fmt.Errorf("s3api: level %d: writes through the S3 endpoint are level 1 or 2", cfg.Level)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{cfg: cfg, log: cfg.Logger.With("component", "s3api")}
	return api.BodyRate(http.HandlerFunc(s.serve), cfg.Limits), nil
}

// request is one S3 request, resolved.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	id     string // x-amz-request-id
	bucket string
	key    string
	p      auth.Principal
}

// newRequestID makes an x-amz-request-id: 16 random hex digits, as S3's.
func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// Go's server sends 100 Continue only when a handler reads a body, so
	// an empty PUT with Expect: 100-continue would get no interim answer.
	// S3 sends one, and botocore (the aws CLI) depends on it: without it,
	// it misreads the next answer on the same connection.
	if r.ContentLength == 0 && r.ProtoAtLeast(1, 1) && strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		w.WriteHeader(http.StatusContinue)
	}
	rec := &api.StatusRecorder{ResponseWriter: w, Start: start}
	req := &request{w: rec, r: r, id: newRequestID()}
	h := w.Header()
	h.Set("x-amz-request-id", req.id)
	h.Set("x-amz-id-2", req.id)
	h.Set("Server", "objstore")
	op := "other" // the S3 operation, once routed
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p)
			if rec.Status == 0 {
				s.fail(req, errInternal)
			}
		}
		if s.log.Enabled(r.Context(), slog.LevelDebug) { // as in the REST API
			s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.Status,
				"request_id", req.id, "elapsed", time.Since(start))
		}
		if s.cfg.Metrics != nil {
			s.cfg.Metrics.Request("s3", op, r.Method, rec.Status, time.Since(start))
		}
	}()
	req.bucket, req.key = s.address(r)
	var serve func(*request)
	op, serve = s.route(req)
	if err := s.authenticate(req); err != nil {
		s.fail(req, err)
		return
	}
	serve(req)
}

// address finds the bucket and key a request names: from the host, for
// virtual-hosted-style addressing under Config.Domain, or from the path.
// The path is taken as sent (decoded, never cleaned), so every key S3
// takes can be addressed.
func (s *server) address(r *http.Request) (bucket, key string) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	if s.cfg.Domain != "" {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if b, ok := strings.CutSuffix(strings.ToLower(host), "."+strings.ToLower(s.cfg.Domain)); ok && b != "" {
			return b, path
		}
	}
	bucket, key, _ = strings.Cut(path, "/")
	return bucket, key
}

// authenticate verifies the request's credentials and scope. A request
// without credentials is anonymous: it may read a public-read bucket.
func (s *server) authenticate(req *request) error {
	r := req.r
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	p, err := s.cfg.Auth.Authenticate(r)
	switch {
	case errors.Is(err, auth.ErrNoCredentials) && read && req.bucket != "" && slices.Contains(s.cfg.PublicRead, req.bucket):
		return nil
	case err != nil:
		s.log.Info("authentication failed", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		return err
	}
	scope := auth.ScopeWrite
	if read {
		scope = auth.ScopeRead
	}
	if !p.Scopes.Has(scope) {
		return fmt.Errorf("%w: access key %s may %s; this request needs %s", errAccessDenied, p.AccessKeyID, p.Scopes, scope)
	}
	req.p = p
	r.Body = auth.VerifyBody(r, p)
	return nil
}

// route finds the operation a request asks for by method, address and
// sub-resource: its S3 name (for metrics and logs) and its handler.
func (s *server) route(req *request) (string, func(*request)) {
	r := req.r
	q := r.URL.Query()
	switch {
	case req.bucket == "":
		if r.Method != http.MethodGet {
			return "other", s.refuse(errMethod)
		}
		return "ListBuckets", s.listBuckets
	case req.key == "":
		return s.routeBucket(req, q)
	default:
		return s.routeObject(req, q)
	}
}

// refuse is a handler that fails every request with err.
func (s *server) refuse(err error) func(*request) {
	return func(req *request) { s.fail(req, err) }
}

// unsupported names the sub-resources of buckets and objects this endpoint
// does not serve (versions, ACLs, policies, tagging...): they are answered
// NotImplemented rather than taken for plain requests.
var unsupported = []string{"acl", "policy", "cors", "lifecycle", "versioning", "versions", "tagging", "website",
	"logging", "notification", "replication", "encryption", "object-lock", "retention", "legal-hold",
	"accelerate", "requestPayment", "analytics", "inventory", "metrics", "intelligent-tiering",
	"ownershipControls", "publicAccessBlock", "torrent", "restore", "select", "attributes", "versionId"}

func unsupportedParam(q map[string][]string) string {
	for _, p := range unsupported {
		if _, ok := q[p]; ok {
			return p
		}
	}
	return ""
}

func (s *server) routeBucket(req *request, q map[string][]string) (string, func(*request)) {
	if p := unsupportedParam(q); p != "" {
		return "other", s.refuse(fmt.Errorf("%w: the bucket sub-resource ?%s", errNotImplemented, p))
	}
	_, uploads := q["uploads"]
	_, location := q["location"]
	_, del := q["delete"]
	switch r := req.r; {
	case r.Method == http.MethodGet && location:
		return "GetBucketLocation", s.bucketLocation
	case r.Method == http.MethodGet && uploads:
		return "ListMultipartUploads", s.listUploads
	case r.Method == http.MethodGet:
		return "ListObjects", s.listObjects
	case r.Method == http.MethodHead:
		return "HeadBucket", s.headBucket
	case r.Method == http.MethodPost && del:
		return "DeleteObjects", s.deleteObjects
	case r.Method == http.MethodPut:
		return "CreateBucket", s.createBucket
	case r.Method == http.MethodDelete:
		return "DeleteBucket", s.refuse(fmt.Errorf("%w: buckets are created and deleted in the origin, not through objstore", errAccessDenied))
	}
	return "other", s.refuse(errMethod)
}

func (s *server) routeObject(req *request, q map[string][]string) (string, func(*request)) {
	if p := unsupportedParam(q); p != "" {
		return "other", s.refuse(fmt.Errorf("%w: the object sub-resource ?%s", errNotImplemented, p))
	}
	_, uploads := q["uploads"]
	_, uploadID := q["uploadId"]
	copySource := req.r.Header.Get("X-Amz-Copy-Source") != ""
	switch r := req.r; r.Method {
	case http.MethodGet:
		if uploadID {
			return "ListParts", s.listParts
		}
		return "GetObject", func(req *request) { s.getObject(req, true) }
	case http.MethodHead:
		return "HeadObject", func(req *request) { s.getObject(req, false) }
	case http.MethodPut:
		switch {
		case uploadID && copySource:
			return "UploadPartCopy", s.uploadPartCopy
		case uploadID:
			return "UploadPart", s.uploadPart
		case copySource:
			return "CopyObject", s.copyObject
		}
		return "PutObject", s.putObject
	case http.MethodDelete:
		if uploadID {
			return "AbortMultipartUpload", s.abortUpload
		}
		return "DeleteObject", s.deleteObject
	case http.MethodPost:
		switch {
		case uploads:
			return "CreateMultipartUpload", s.createUpload
		case uploadID:
			return "CompleteMultipartUpload", s.completeUpload
		}
	}
	return "other", s.refuse(errMethod)
}
