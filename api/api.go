// Package api serves objstore's public HTTP API under /api/v1. It knows
// only the operations it serves (the Store interface) and is the one place
// where errors become HTTP status codes.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/auth"
	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/metrics"
	"github.com/objstore/objstore/node"
)

// Store is what the public API serves. *node.Node implements it.
type Store interface {
	ID() ulid.ULID
	NewID() ulid.ULID
	Put(ctx context.Context, req node.PutRequest) (node.Meta, error)
	Get(ctx context.Context, id ulid.ULID, opts node.GetOptions) (*node.Object, error)
	Meta(ctx context.Context, id ulid.ULID) (node.Meta, error)
	Delete(ctx context.Context, id ulid.ULID, purge bool) (node.Meta, error)
	SetLevel(ctx context.Context, id ulid.ULID, level journal.Level) (node.Meta, error)
	Stats(ctx context.Context) (node.Stats, error)
	Members() []cluster.Member
	Invalidate(ctx context.Context, id ulid.ULID, everywhere bool) (node.InvalidateResult, error)
	Served(src node.Source, bytes int64)
	Ready() error
	Prewarm(ctx context.Context, spec node.PrewarmSpec) (node.PrewarmJob, error)
	PrewarmStatus(ctx context.Context, job string, withPeers bool) (node.PrewarmJob, error)
	Keys() ([]cluster.KeyInfo, error)
	RotateKeyring(ctx context.Context, req node.KeyringRequest) (node.KeyringResult, error)
	// ClusterStatus returns every member with its status, each peer's
	// asked for within timeout.
	ClusterStatus(ctx context.Context, timeout time.Duration) ([]node.MemberStatus, error)
}

var _ Store = (*node.Node)(nil)

// Request and response headers of the public API.
const (
	HeaderID       = "X-Meta-ID"
	HeaderName     = "X-Meta-Name"
	HeaderLevel    = "X-Meta-ConsistencyLevel"
	HeaderUserMeta = "X-Meta-UserMeta"
	HeaderFetch    = "X-Meta-Fetch"
	HeaderFetched  = "X-Meta-Fetched"
	HeaderDeleted  = "X-Meta-Deleted"
	HeaderSymlink  = "X-Meta-Symlink"
	HeaderSource   = "X-Meta-Source"
	HeaderPurge    = "X-Meta-Purge"
	HeaderLocal    = "X-Meta-Local"
	// HeaderHeld, on a read of an object this node does not hold whole,
	// is how many of its bytes it held (parts of a sparse copy) when the
	// read began.
	HeaderHeld       = "X-Meta-Held"
	contentTypeJSON  = "application/json"
	contentTypePlain = "text/plain; charset=utf-8"
	idHint           = "a ULID, for example one from GET /api/v1/id"
)

// Config configures the public API handler.
type Config struct {
	Store Store
	// Version is reported by /api/v1/version.
	Version string
	// Logger receives request and error logs; nil discards them.
	Logger *slog.Logger
	// Auth checks clients' access keys (*auth.Store); nil means the API
	// is open, except for administrative calls, which are then served to
	// clients on the node's own machine only.
	Auth Authenticator
	// Limits bounds how slowly request bodies may arrive (the listener
	// applies the connection limits: LimitListener).
	Limits Limits
	// Metrics records every request and each GET's time to first byte;
	// nil records nothing.
	Metrics *metrics.Registry
	// ServeMetrics serves Metrics at /metrics (read scope when Auth is
	// set). Off when the metrics have a listener of their own.
	ServeMetrics bool
}

// NewPublic returns the handler of the public API. Each route needs a
// scope (read, write or admin) when Config.Auth is set; the health,
// readiness, ping and version routes are always open.
func NewPublic(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{store: cfg.Store, version: cfg.Version, log: cfg.Logger.With("component", "api"), auth: cfg.Auth,
		limits: cfg.Limits.withDefaults(), metrics: cfg.Metrics, api: "public"}
	read, write, admin := s.guard(auth.ScopeRead), s.guard(auth.ScopeWrite), s.guard(auth.ScopeAdmin)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/get/{id}", read(s.get))
	mux.HandleFunc("GET /api/v1/meta/{id}", read(s.meta))
	mux.HandleFunc("POST /api/v1/put", write(s.put))
	mux.HandleFunc("POST /api/v1/delete/{id}", write(s.delete))
	mux.HandleFunc("POST /api/v1/upgrade/{id}", write(s.upgrade))
	mux.HandleFunc("POST /api/v1/invalidate/{id}", write(s.invalidate))
	mux.HandleFunc("POST /api/v1/prewarm", write(s.prewarm))
	mux.HandleFunc("GET /api/v1/prewarm/{job}", read(s.prewarmStatus))
	mux.HandleFunc("GET /api/v1/id", read(s.newID))
	mux.HandleFunc("GET /api/v1/version", s.versionH)
	mux.HandleFunc("GET /api/v1/ping", s.ping)
	mux.HandleFunc("GET /api/v1/stats", read(s.stats))
	mux.HandleFunc("GET /api/v1/nodes", read(s.nodes))
	mux.HandleFunc("GET /api/v1/cluster/keyring", admin(s.keys))
	mux.HandleFunc("POST /api/v1/cluster/keyring", admin(s.rotateKeyring))
	s.routeKeys(mux, read, write)
	mux.HandleFunc("GET /api/v1/status", read(s.status))
	// The status page is behind the read scope too: a browser asks for a
	// key once (Basic), then its calls to the API carry it.
	mux.HandleFunc("GET /{$}", read(page("status.html", "text/html; charset=utf-8")))
	mux.HandleFunc("GET /ui/status.js", page("status.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /ui/status.css", page("status.css", "text/css; charset=utf-8"))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if cfg.ServeMetrics && cfg.Metrics != nil {
		h := cfg.Metrics.Handler()
		mux.HandleFunc("GET /metrics", read(h.ServeHTTP))
	}
	// Answer unknown paths and wrong methods in the API's JSON error form.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowed(mux, r); allow != "" {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s is not allowed; use %s", r.Method, r.URL.Path, allow))
			return
		}
		s.fail(w, r, fmt.Errorf("%w: no such endpoint %s %s", errNoRoute, r.Method, r.URL.Path))
	})
	return s.middleware(BodyRate(checkKeyPath(mux), s.limits))
}

// BodyRate holds every request body to l's minimum rate, so a client that
// sends slowly, or stops, cannot hold a connection, an upload slot or
// quota for long: a body read that waits too long fails with an error
// matching ErrSlowBody.
func BodyRate(next http.Handler, l Limits) http.Handler {
	l = l.withDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = newRateBody(w, r.Body, l)
		}
		next.ServeHTTP(w, r)
	})
}

// allowed lists the methods the mux serves r's path with, other than the
// catch-all.
func allowed(mux *http.ServeMux, r *http.Request) string {
	var methods []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
			methods = append(methods, m)
		}
	}
	return strings.Join(methods, ", ")
}

type server struct {
	store   Store
	version string
	log     *slog.Logger
	auth    Authenticator // nil: open
	limits  Limits
	metrics *metrics.Registry // nil: none kept
	api     string            // the API's name in the metrics
}

var errNoRoute = errors.New("not found")

// Route names the route that served r, for metrics: the pattern the mux
// matched without its method, or "other" for a request no route took
// (refused before routing, or an unknown path). Read once r is served.
func Route(r *http.Request) string {
	p := r.Pattern
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = p[i+1:]
	}
	if p == "" || p == "/" {
		return "other"
	}
	return p
}

// StatusRecorder passes an answer through and remembers its status, for
// a request log; it keeps the writer's sendfile path and reaches its
// connection (Unwrap).
type StatusRecorder struct {
	http.ResponseWriter
	// Status is the answer's status once written; 0 before.
	Status int
	// Start is when the request arrived, if the recorder's maker set it.
	Start time.Time
}

// FirstByte returns a function that records, in m, the time from the
// request's arrival to now as the time to first byte of obj's body, by
// its source (memory for a local body held in memory). The arrival is
// that of the StatusRecorder w wraps, if any; without one, the returned
// function records nothing.
func FirstByte(m *metrics.Registry, w http.ResponseWriter, obj *node.Object) func() {
	for {
		if rec, ok := w.(*StatusRecorder); ok && !rec.Start.IsZero() {
			source := string(obj.Source)
			if obj.Source == node.SourceLocal && obj.Bytes() != nil {
				source = "memory"
			}
			return func() { m.FirstByte(source, time.Since(rec.Start)) }
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
}

func (r *StatusRecorder) WriteHeader(code int) {
	if r.Status == 0 {
		r.Status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *StatusRecorder) Write(p []byte) (int, error) {
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *StatusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ReadFrom keeps the server's sendfile path: http.ServeContent copies an
// *os.File through io.Copy, which only uses sendfile when the writer is the
// server's own ReaderFrom.
func (r *StatusRecorder) ReadFrom(src io.Reader) (int64, error) {
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{r.ResponseWriter}, src)
}

// writerOnly hides every method but Write, so io.Copy does not recurse.
type writerOnly struct{ io.Writer }

// middleware logs each request and turns a panic into a 500 for that
// request alone, so one bad request never takes the node down.
func (s *server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &StatusRecorder{ResponseWriter: w, Start: start}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p)
				if rec.Status == 0 {
					writeError(rec, http.StatusInternalServerError, "internal error")
				}
			}
			// Checked first: building the record's arguments costs
			// a hit a few allocations even when it is discarded.
			if s.log.Enabled(r.Context(), slog.LevelDebug) {
				s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.Status,
					"elapsed", time.Since(start))
			}
			if s.metrics != nil {
				s.metrics.Request(s.api, Route(r), r.Method, rec.Status, time.Since(start))
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// status maps an error kind to its HTTP status.
func status(err error) int {
	switch {
	case errors.Is(err, ErrSlowBody):
		return http.StatusRequestTimeout
	case errors.Is(err, node.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, node.ErrNotFound), errors.Is(err, node.ErrDeleted), errors.Is(err, errNoRoute):
		return http.StatusNotFound
	case errors.Is(err, node.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, node.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, node.ErrNoSpace):
		return http.StatusInsufficientStorage
	case errors.Is(err, node.ErrRemoteUnavailable), errors.Is(err, node.ErrClosed), errors.Is(err, node.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, node.ErrRemote):
		return http.StatusBadGateway
	case errors.Is(err, node.ErrBusy):
		return http.StatusTooManyRequests
	case errors.Is(err, node.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, node.ErrMisdirected):
		return http.StatusMisdirectedRequest
	}
	return http.StatusInternalServerError
}

// fail answers with err's status and message. Server faults are logged in
// full and answered with a generic message, so internal details stay in the
// log.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := s.failure(r, err)
	writeError(w, code, msg)
}

// failure logs err as fail does and returns the status and the message a
// client may be told.
func (s *server) failure(r *http.Request, err error) (int, string) {
	code := status(err)
	if r.Context().Err() != nil && code == http.StatusInternalServerError {
		// The request was canceled (the client went away, or its
		// connection failed): not a server fault. An answer is still
		// written, since a handler that writes nothing answers 200.
		s.log.Debug("request canceled", "method", r.Method, "path", r.URL.Path, "err", err)
		return http.StatusBadRequest, "request canceled"
	}
	msg := err.Error()
	if code == http.StatusInternalServerError {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error"
	} else if code >= 500 {
		// What failed, without paths, addresses or the remote's words:
		// those stay in the log.
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
		msg = node.PublicMessage(err)
	}
	return code, msg
}

func writeError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("ETag")
	h.Del("Last-Modified")
	h.Set("Content-Type", contentTypeJSON)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", contentTypeJSON)
	json.NewEncoder(w).Encode(v)
}

func writeText(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", contentTypePlain)
	fmt.Fprintln(w, s)
}

// parseID reads a ULID from the path or a header value.
func parseID(what, s string) (ulid.ULID, error) {
	if s == "" {
		return ulid.ULID{}, fmt.Errorf("%w: %s is required: %s", node.ErrInvalid, what, idHint)
	}
	id, err := ulid.ParseStrict(s)
	if err != nil {
		return ulid.ULID{}, fmt.Errorf("%w: %s %q is not %s", node.ErrInvalid, what, s, idHint)
	}
	return id, nil
}

func parseLevel(s string) (journal.Level, error) {
	if s == "" {
		return journal.LevelLocal, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || !journal.Level(n).Valid() {
		return 0, fmt.Errorf("%w: %s %q must be 0 (local), 1 (local and remote) or 2 (every node and remote)", node.ErrInvalid, HeaderLevel, s)
	}
	return journal.Level(n), nil
}

// parseFlag reads a boolean header: 1 or true (any case) turn it on.
func parseFlag(s string) bool {
	s = strings.TrimSpace(s)
	return s == "1" || strings.EqualFold(s, "true")
}

// setMetaHeaders describes an object in the response headers.
func setMetaHeaders(h http.Header, m node.Meta) {
	h.Set(HeaderID, m.ID)
	h.Set(HeaderName, m.Name)
	h.Set(HeaderLevel, strconv.Itoa(int(m.Consistency)))
	if len(m.UserMeta) > 0 {
		b, _ := json.Marshal(m.UserMeta) // a map of strings always marshals
		h.Set(HeaderUserMeta, string(b))
	}
	if m.IsDeleted {
		h.Set(HeaderDeleted, "true")
	}
}

// setObjectSafety keeps a browser from treating a stored object as part of
// this site: an uploaded report.html is downloaded, not rendered, its type
// is not sniffed, and if shown anyway it runs no script and loads nothing.
func setObjectSafety(h http.Header, name string) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	cd := "attachment"
	if name != "" {
		if v := mime.FormatMediaType("attachment", map[string]string{"filename": name}); v != "" {
			cd = v
		}
	}
	h.Set("Content-Disposition", cd)
}

func (s *server) get(w http.ResponseWriter, r *http.Request) {
	id, err := parseID("object ID", r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	obj, err := s.store.Get(r.Context(), id, node.GetOptions{Fetch: parseFlag(r.Header.Get(HeaderFetch)), Range: RequestRange(r.Header)})
	if err != nil {
		if errors.Is(err, node.ErrDeleted) && obj != nil {
			setMetaHeaders(w.Header(), obj.Meta)
		}
		s.fail(w, r, err)
		return
	}
	defer obj.Close()
	h := w.Header()
	setMetaHeaders(h, obj.Meta)
	h.Set(HeaderSource, string(obj.Source))
	if obj.Fetched {
		h.Set(HeaderFetched, "true")
	}
	if obj.Source == node.SourcePeer {
		h.Set(HeaderSymlink, "true")
	}
	if obj.SHA256 != "" {
		h.Set("ETag", `"`+obj.SHA256+`"`)
	}
	setObjectSafety(h, obj.Name)
	s.serveBody(w, r, obj, obj.Name, obj.Modified)
}

// serveBody answers with obj's body, named name (for its type when no
// Content-Type is set) and modified at modified, and counts the bytes.
func (s *server) serveBody(w http.ResponseWriter, r *http.Request, obj *node.Object, name string, modified time.Time) {
	// A reader that stops reading gives up its connection and open file
	// after a while: long enough for the whole body at the minimum rate.
	// A small body leaves with its headers in one write that the socket's
	// buffer takes whole, so it needs no deadline (setting and clearing
	// one is a tenth of a small hit's cost).
	if obj.Size > smallAnswer {
		ctl := http.NewResponseController(w)
		ctl.SetWriteDeadline(time.Now().Add(time.Minute +
			time.Duration(float64(obj.Size)/float64(s.limits.MinBodyRate)*float64(time.Second))))
		defer ctl.SetWriteDeadline(time.Time{}) // the connection may serve more requests
	}
	// ServeContent answers Range and conditional requests, and copies an
	// *os.File with sendfile (the counting writer keeps that path).
	cw := &countingWriter{ResponseWriter: w}
	if s.metrics != nil {
		cw.first = FirstByte(s.metrics, w, obj)
	}
	SparseHeaders(w.Header(), obj, name)
	if data := obj.Bytes(); data == nil || !ServeBytes(cw, r, name, modified, data) {
		http.ServeContent(cw, r, name, modified, obj.Content)
	}
	s.store.Served(obj.Source, cw.n)
	if obj.Source != node.SourceLocal {
		// The client has its last bytes now; closing a fetched body then
		// waits for this node's copy to be committed.
		http.NewResponseController(w).Flush()
	}
}

// ServeBytes answers a GET or HEAD of a whole body held in memory, data,
// as http.ServeContent would answer one without Range or conditional
// headers (Content-Type from name or sniffed when unset, Last-Modified from
// modified when set, Accept-Ranges, Content-Length), with the body in one
// write: ServeContent copies through a buffer, in two or more. It reports
// false, having written nothing, for any other request, which the caller
// then gives to http.ServeContent.
func ServeBytes(w http.ResponseWriter, r *http.Request, name string, modified time.Time, data []byte) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, k := range [...]string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"} {
		if _, ok := r.Header[k]; ok {
			return false
		}
	}
	h := w.Header()
	if _, ok := h["Content-Type"]; !ok {
		ctype := mime.TypeByExtension(filepath.Ext(name))
		if ctype == "" {
			ctype = http.DetectContentType(data[:min(len(data), 512)])
		}
		h["Content-Type"] = []string{ctype}
	}
	if !modified.IsZero() && !modified.Equal(time.Unix(0, 0)) {
		h["Last-Modified"] = []string{modified.UTC().Format(http.TimeFormat)}
	}
	h["Accept-Ranges"] = []string{"bytes"}
	h["Content-Length"] = []string{strconv.Itoa(len(data))}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(data)
	}
	return true
}

// smallAnswer is the largest body written without a write deadline: with
// its headers it fits a socket's send buffer, so the write never waits on
// the reader.
const smallAnswer = 8 << 10

// countingWriter counts the body bytes written, for the stats, and calls
// first, when set, as the first of them leaves.
type countingWriter struct {
	http.ResponseWriter
	n     int64
	first func()
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.first != nil && len(p) > 0 {
		c.first()
		c.first = nil
	}
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) ReadFrom(src io.Reader) (int64, error) {
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok && sendfileable(src) {
		if c.first != nil {
			c.first()
			c.first = nil
		}
		n, err := rf.ReadFrom(src)
		c.n += n
		return n, err
	}
	return CopyBody(writerOnly{c}, src) // through Write, which counts
}

// sendfileable reports whether src is a file the server can send with
// sendfile (as http.ServeContent passes it: limited to the answer's
// length). A checksummed or sealed body is not: its bytes are checked, or
// opened, as they are read.
func sendfileable(src io.Reader) bool {
	if lr, ok := src.(*io.LimitedReader); ok {
		src = lr.R
	}
	_, ok := src.(*os.File)
	return ok
}

// copyBufs holds CopyBody's buffers: four 64 KiB segments of a body on
// disk and room for their tags, so that a read takes whole segments
// straight into the buffer.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 4*(64<<10)+4<<10); return &b }}

// CopyBody copies src to dst in writes of about 256 KiB: an answer's body
// that is not a plain file goes out in a few large writes rather than
// io.Copy's many 32 KiB ones.
func CopyBody(dst io.Writer, src io.Reader) (int64, error) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(dst, src, *buf)
}

// maxJSONBody bounds a JSON request body, such as a pre-warm list.
const maxJSONBody = 64 << 20

// prewarm starts a pre-warm job: 202 with the job, whose progress
// GET /api/v1/prewarm/{job} reports.
func (s *server) prewarm(w http.ResponseWriter, r *http.Request) {
	var spec node.PrewarmSpec
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		s.fail(w, r, fmt.Errorf(`%w: the body must be JSON such as {"ids":["01J..."],"all_nodes":true} or {"from":"01J...","to":"01J..."}: %v`, node.ErrInvalid, err))
		return
	}
	spec.Job = ""
	job, err := s.store.Prewarm(r.Context(), spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/prewarm/"+job.ID)
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(job)
}

func (s *server) prewarmStatus(w http.ResponseWriter, r *http.Request) {
	job, err := s.store.PrewarmStatus(r.Context(), r.PathValue("job"), true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, job)
}

// invalidate drops the cached copies of an object on every live node (or
// on this node only with X-Meta-Local: true), keeping its metadata and the
// remote copy.
func (s *server) invalidate(w http.ResponseWriter, r *http.Request) {
	id, err := parseID("object ID", r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.store.Invalidate(r.Context(), id, !parseFlag(r.Header.Get(HeaderLocal)))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, res)
}

func (s *server) meta(w http.ResponseWriter, r *http.Request) {
	id, err := parseID("object ID", r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.store.Meta(r.Context(), id)
	if errors.Is(err, node.ErrDeleted) {
		// The tombstone is the answer: 404, with what is known of it.
		setMetaHeaders(w.Header(), m)
		w.Header().Set("Content-Type", contentTypeJSON)
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(m)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	setMetaHeaders(w.Header(), m)
	writeJSON(w, m)
}

func (s *server) put(w http.ResponseWriter, r *http.Request) {
	req, err := parsePut(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.store.Put(r.Context(), req)
	s.answer(w, r, m, err, setMetaHeaders)
}

func parsePut(r *http.Request) (node.PutRequest, error) {
	h := r.Header
	id, err := parseID(HeaderID, h.Get(HeaderID))
	if err != nil {
		return node.PutRequest{}, err
	}
	level, err := parseLevel(h.Get(HeaderLevel))
	if err != nil {
		return node.PutRequest{}, err
	}
	req := node.PutRequest{ID: id, Name: h.Get(HeaderName), Level: level, Body: r.Body, Size: r.ContentLength}
	return req, parseUserMeta(h, &req)
}

func (s *server) delete(w http.ResponseWriter, r *http.Request) {
	id, err := parseID("object ID", r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.store.Delete(r.Context(), id, parseFlag(r.Header.Get(HeaderPurge)))
	s.answer(w, r, m, err, setMetaHeaders)
}

func (s *server) upgrade(w http.ResponseWriter, r *http.Request) {
	id, err := parseID("object ID", r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.Header.Get(HeaderLevel) == "" {
		s.fail(w, r, fmt.Errorf("%w: %s is required: the level to raise the object to", node.ErrInvalid, HeaderLevel))
		return
	}
	level, err := parseLevel(r.Header.Get(HeaderLevel))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.store.SetLevel(r.Context(), id, level)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	setMetaHeaders(w.Header(), m)
	writeJSON(w, m)
}

func (s *server) newID(w http.ResponseWriter, r *http.Request) {
	writeText(w, s.store.NewID().String())
}

func (s *server) versionH(w http.ResponseWriter, r *http.Request) {
	writeText(w, s.version)
}

func (s *server) ping(w http.ResponseWriter, r *http.Request) {
	writeText(w, s.store.ID().String())
}

// statsResponse is /api/v1/stats: the node's stats, with disk usage in the
// original objstore's disk_stats form.
type statsResponse struct {
	node.Stats
	DiskStats diskStats `json:"disk_stats"`
}

// diskStats describes the files directory's filesystem. Free is what the
// node may still use (blocks available to unprivileged users).
type diskStats struct {
	BytesAll   uint64  `json:"bytes_all"`
	BytesUsed  uint64  `json:"bytes_used"`
	BytesFree  uint64  `json:"bytes_free"`
	KBytesAll  float64 `json:"kb_all"`
	KBytesUsed float64 `json:"kb_used"`
	KBytesFree float64 `json:"kb_free"`
	MBytesAll  float64 `json:"mb_all"`
	MBytesUsed float64 `json:"mb_used"`
	MBytesFree float64 `json:"mb_free"`
	GBytesAll  float64 `json:"gb_all"`
	GBytesUsed float64 `json:"gb_used"`
	GBytesFree float64 `json:"gb_free"`
}

// healthz answers 200 while the process serves HTTP at all.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeText(w, "ok")
}

// readyz answers 200 when the node should take traffic (journal open,
// first sync done, not shutting down), else 503 with the reason.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Ready(); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeText(w, "ready")
}

// nodes lists the cluster's members as this node sees them.
func (s *server) nodes(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.store.Members())
}

func (s *server) stats(w http.ResponseWriter, r *http.Request) {
	st, err := s.store.Stats(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u := st.Disk
	in := func(v uint64, unit float64) float64 { return float64(v) / unit }
	const kb, mb, gb = 1 << 10, 1 << 20, 1 << 30
	writeJSON(w, statsResponse{Stats: st, DiskStats: diskStats{
		BytesAll: u.Total, BytesUsed: u.Used, BytesFree: u.Free,
		KBytesAll: in(u.Total, kb), KBytesUsed: in(u.Used, kb), KBytesFree: in(u.Free, kb),
		MBytesAll: in(u.Total, mb), MBytesUsed: in(u.Used, mb), MBytesFree: in(u.Free, mb),
		GBytesAll: in(u.Total, gb), GBytesUsed: in(u.Used, gb), GBytesFree: in(u.Free, gb),
	}})
}
