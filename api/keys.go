package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/node"
)

// KeyStore is what the key routes need of the node: the objects of origin
// buckets, by bucket and key.
type KeyStore interface {
	GetKey(ctx context.Context, bucket, key string, opts node.KeyGetOptions) (*node.Object, error)
	StatKey(ctx context.Context, bucket, key string) (node.Meta, error)
	DeleteKey(ctx context.Context, bucket, key string) (node.Meta, error)
	ListKeys(ctx context.Context, bucket string, opts node.ListKeysOptions) (node.KeyList, error)
	DeletePrefix(ctx context.Context, bucket, prefix string) (node.PrefixResult, error)
	InvalidateKeys(ctx context.Context, inv node.KeyInvalidation, everywhere bool) (node.PrefixResult, error)
}

var _ KeyStore = (*node.Node)(nil)

// HeaderStale marks an answer served from a copy the origin bucket could
// not be asked about.
const HeaderStale = "X-Meta-Stale"

// keyPrefix is where the key routes live: /api/v1/b/{bucket}/{key...}.
const keyPrefix = "/api/v1/b/"

// routeKeys adds the key routes to mux.
func (s *server) routeKeys(mux *http.ServeMux, read, write func(http.HandlerFunc) http.HandlerFunc) {
	mux.HandleFunc("GET "+keyPrefix+"{bucket}", read(s.listKeys))
	mux.HandleFunc("GET "+keyPrefix+"{bucket}/{key...}", read(s.getKey))
	mux.HandleFunc("HEAD "+keyPrefix+"{bucket}/{key...}", read(s.headKey))
	mux.HandleFunc("PUT "+keyPrefix+"{bucket}/{key...}", write(s.putKey))
	mux.HandleFunc("DELETE "+keyPrefix+"{bucket}/{key...}", write(s.deleteKey))
	mux.HandleFunc("DELETE "+keyPrefix+"{bucket}", write(s.deletePrefix))
	mux.HandleFunc("POST "+keyPrefix+"{bucket}", write(s.uploadKeys))
	mux.HandleFunc("POST "+invalidateKeyPrefix+"{bucket}", write(s.invalidateKeys))
	mux.HandleFunc("POST "+invalidateKeyPrefix+"{bucket}/{key...}", write(s.invalidateKeys))
}

// invalidateKeyPrefix is where invalidations of origin keys are asked:
// /api/v1/invalidate/b/{bucket}/{key...}, or /api/v1/invalidate/b/{bucket}
// with ?prefix=.
const invalidateKeyPrefix = "/api/v1/invalidate/b/"

// checkKeyPath refuses key paths that a path cleaner would rewrite into
// another key (dot segments, empty segments) with 400, before routing: a
// key is taken as it is written or not at all.
func checkKeyPath(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		rest, ok := strings.CutPrefix(p, keyPrefix)
		if !ok {
			rest, ok = strings.CutPrefix(p, invalidateKeyPrefix)
		}
		if ok {
			for seg := range strings.SplitSeq(rest, "/") {
				if seg == "." || seg == ".." {
					writeError(w, http.StatusBadRequest, "invalid key: \".\" and \"..\" path elements are not served")
					return
				}
			}
			if strings.Contains(rest, "//") {
				writeError(w, http.StatusBadRequest, "invalid key: empty path elements (\"//\") cannot be addressed through this API")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) keyStore(w http.ResponseWriter, r *http.Request) (KeyStore, bool) {
	ks, ok := s.store.(KeyStore)
	if !ok {
		s.fail(w, r, fmt.Errorf("%w: this node serves no origin bucket", node.ErrForbidden))
	}
	return ks, ok
}

// setKeyHeaders describes a key-addressed object as S3 clients expect
// (ETag, Content-Type, Last-Modified) and with the API's own headers.
func setKeyHeaders(h http.Header, m node.Meta) {
	setMetaHeaders(h, m)
	if m.ETag != "" {
		h.Set("ETag", m.ETag)
	}
	ct := m.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	if m.LastModified != nil {
		h.Set("Last-Modified", m.LastModified.UTC().Format(http.TimeFormat))
	}
	if m.Stale {
		h.Set(HeaderStale, "true")
	}
	// Served under this API's origin: never sniffed, never run.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
}

func (s *server) getKey(w http.ResponseWriter, r *http.Request) {
	ks, ok := s.keyStore(w, r)
	if !ok {
		return
	}
	bucket, key := r.PathValue("bucket"), r.PathValue("key")
	if key == "" {
		s.listKeys(w, r)
		return
	}
	if r.URL.Query().Has("meta") {
		m, err := ks.StatKey(r.Context(), bucket, key)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, m)
		return
	}
	obj, err := ks.GetKey(r.Context(), bucket, key, node.KeyGetOptions{Range: RequestRange(r.Header)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer obj.Close()
	h := w.Header()
	setKeyHeaders(h, obj.Meta)
	h.Set(HeaderSource, string(obj.Source))
	var modified time.Time
	if obj.LastModified != nil {
		modified = *obj.LastModified
	}
	s.serveBody(w, r, obj, "", modified)
}

func (s *server) headKey(w http.ResponseWriter, r *http.Request) {
	ks, ok := s.keyStore(w, r)
	if !ok {
		return
	}
	m, err := ks.StatKey(r.Context(), r.PathValue("bucket"), r.PathValue("key"))
	if err != nil {
		w.WriteHeader(status(err))
		return
	}
	setKeyHeaders(w.Header(), m)
	w.Header().Set("Content-Length", strconv.FormatInt(m.Size, 10))
	w.Header().Set("Accept-Ranges", "bytes")
}

func (s *server) putKey(w http.ResponseWriter, r *http.Request) {
	h := r.Header
	level := journal.LevelRemote
	if v := h.Get(HeaderLevel); v != "" {
		var err error
		if level, err = parseLevel(v); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	req := node.PutRequest{Bucket: r.PathValue("bucket"), Key: r.PathValue("key"), Level: level,
		ContentType: h.Get("Content-Type"), Body: r.Body, Size: r.ContentLength}
	if err := parseUserMeta(h, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.store.Put(r.Context(), req)
	s.answer(w, r, m, err, setKeyHeaders)
}

// deletePrefix deletes the keys under ?prefix= (required, not empty).
func (s *server) deletePrefix(w http.ResponseWriter, r *http.Request) {
	ks, ok := s.keyStore(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	if !q.Has("prefix") {
		s.fail(w, r, fmt.Errorf("%w: DELETE of a bucket needs ?prefix=: the keys to delete start with it", node.ErrInvalid))
		return
	}
	res, err := ks.DeletePrefix(r.Context(), r.PathValue("bucket"), q.Get("prefix"))
	s.reply(w, r, res, err)
}

// invalidateKeys drops the cached copies of a key, or of the keys under
// ?prefix= (every key of the bucket with an empty prefix), on every node
// (on this one alone with X-Meta-Local).
func (s *server) invalidateKeys(w http.ResponseWriter, r *http.Request) {
	ks, ok := s.keyStore(w, r)
	if !ok {
		return
	}
	inv := node.KeyInvalidation{Bucket: r.PathValue("bucket"), Key: r.PathValue("key"), Prefix: r.URL.Query().Get("prefix")}
	res, err := ks.InvalidateKeys(r.Context(), inv, !parseFlag(r.Header.Get(HeaderLocal)))
	s.reply(w, r, res, err)
}

func (s *server) deleteKey(w http.ResponseWriter, r *http.Request) {
	ks, ok := s.keyStore(w, r)
	if !ok {
		return
	}
	m, err := ks.DeleteKey(r.Context(), r.PathValue("bucket"), r.PathValue("key"))
	s.answer(w, r, m, err, setMetaHeaders)
}

// reply answers err's status, or v as JSON.
func (s *server) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, v)
}

// answer answers an operation on one object: err's status, or m in the
// headers (by setHeaders) and as JSON.
func (s *server) answer(w http.ResponseWriter, r *http.Request, m node.Meta, err error, setHeaders func(http.Header, node.Meta)) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	setHeaders(w.Header(), m)
	writeJSON(w, m)
}

// listKeys answers a page of the bucket's listing:
// ?prefix=&delimiter=&after=&max=.
func (s *server) listKeys(w http.ResponseWriter, r *http.Request) {
	ks, ok := s.keyStore(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	opts := node.ListKeysOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), After: q.Get("after")}
	if v := q.Get("max"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.fail(w, r, fmt.Errorf("%w: max %q must be a positive number", node.ErrInvalid, v))
			return
		}
		opts.Max = n
	}
	list, err := ks.ListKeys(r.Context(), r.PathValue("bucket"), opts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, list)
}

// parseUserMeta reads X-Meta-UserMeta, a JSON object of strings.
func parseUserMeta(h http.Header, req *node.PutRequest) error {
	s := strings.TrimSpace(h.Get(HeaderUserMeta))
	if s == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(s), &req.UserMeta); err != nil {
		return fmt.Errorf("%w: %s must be a JSON object of strings, such as {\"owner\":\"alice\"}: %v", node.ErrInvalid, HeaderUserMeta, err)
	}
	if req.UserMeta == nil {
		return fmt.Errorf("%w: %s must be a JSON object of strings, not %s", node.ErrInvalid, HeaderUserMeta, s)
	}
	return nil
}
