package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/metrics"
	"github.com/objstore/objstore/node"
)

// PrivateStore is what the private API serves to other nodes.
// *node.Node implements it.
type PrivateStore interface {
	cluster.Replica
	ID() ulid.ULID
	Members() []cluster.Member
	// OpenLocal opens the body of id only if this node holds it (or,
	// for a read of rng, the parts of it that rng touches); it never
	// fetches.
	OpenLocal(ctx context.Context, id ulid.ULID, rng *node.Range) (*node.Object, error)
	// FillKey opens bucket/key for the peer that routed its fill here,
	// fetching it from its origin if no node holds it, and returns the
	// journal's entry of what it serves.
	FillKey(ctx context.Context, bucket, key string, rng *node.Range) (*node.Object, journal.Entry, error)
	// InvalidateKeys drops the copies of the keys inv names; the private
	// API calls it for this node alone.
	InvalidateKeys(ctx context.Context, inv node.KeyInvalidation, everywhere bool) (node.PrefixResult, error)
	// DropCopy drops this node's copy of id if it is safe elsewhere.
	DropCopy(ctx context.Context, id ulid.ULID) (dropped, kept bool)
	Prewarm(ctx context.Context, spec node.PrewarmSpec) (node.PrewarmJob, error)
	PrewarmStatus(ctx context.Context, job string, withPeers bool) (node.PrewarmJob, error)
	// Member finds a member of the cluster by ID, for binding a request
	// to the node it claims to come from.
	Member(id ulid.ULID) (cluster.Member, bool)
	// ApplyKeyring carries out a peer's keyring change on this node.
	ApplyKeyring(ctx context.Context, op node.KeyringOp) error
	// Status returns this node's status for a peer's status page.
	Status(ctx context.Context) (node.Status, error)
	// CheckFresh refuses the entries of a node whose last sync is older
	// than this node's tombstone retention.
	CheckFresh(peerLastSync time.Time) error
	// Syncable fails while this node is stale: its journal may hold
	// entries its peers have forgotten they deleted, so it offers none.
	Syncable() error
}

var _ PrivateStore = (*node.Node)(nil)

// PrivateConfig configures the private API handler.
type PrivateConfig struct {
	Store PrivateStore
	// Auth authenticates every request and signs every answer; nil
	// means an insecure cluster.
	Auth *cluster.Auth
	// Logger receives request and error logs; nil discards them.
	Logger *slog.Logger
	// Metrics records every request; nil records nothing.
	Metrics *metrics.Registry
}

// maxPrivateBody bounds a private request's body: the largest message is a
// batch of MaxBatch entries of a few hundred bytes each.
const maxPrivateBody = 32 << 20

// NewPrivate returns the handler of the private API (/private/v1), which
// nodes use to announce writes, reconcile their journals and read each
// other's bodies. It must be served on the private address only. Every
// request is authenticated by cfg.Auth before it is served.
func NewPrivate(cfg PrivateConfig) http.Handler {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Auth == nil {
		cfg.Auth = &cluster.Auth{}
	}
	store := cfg.Store
	s := &privateServer{store: store, server: server{log: logger.With("component", "private-api"), metrics: cfg.Metrics, api: "private"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+cluster.PathPing, s.ping)
	mux.HandleFunc("GET "+cluster.PathNodes, s.nodes)
	mux.HandleFunc("POST "+cluster.PathAnnounce, s.announce)
	mux.HandleFunc("POST "+cluster.PathTree, s.tree)
	mux.HandleFunc("POST "+cluster.PathSummaries, s.summaries)
	mux.HandleFunc("POST "+cluster.PathEntries, s.entries)
	mux.HandleFunc("GET "+cluster.PathGet+"{id}", s.get)
	mux.HandleFunc("GET "+cluster.PathKey, s.key)
	mux.HandleFunc("POST "+cluster.PathInvalidateKeys, s.invalidateKeys)
	mux.HandleFunc("POST "+cluster.PathInvalidate+"{id}", s.invalidate)
	mux.HandleFunc("POST "+cluster.PathPrewarm, s.prewarm)
	mux.HandleFunc("GET "+cluster.PathPrewarm+"/{job}", s.prewarmStatus)
	mux.HandleFunc("POST "+cluster.PathKeyring, s.keyring)
	mux.HandleFunc("GET "+cluster.PathStatus, s.status)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, fmt.Errorf("%w: no such private endpoint %s %s", errNoRoute, r.Method, r.URL.Path))
	})
	return s.middleware(cfg.Auth.Middleware(s.checkProto(mux), store.Member, maxPrivateBody, s.log, cluster.PathGet))
}

// keyring applies a peer's keyring change (install, use, remove) here.
func (s *privateServer) keyring(w http.ResponseWriter, r *http.Request) {
	var op node.KeyringOp
	if err := json.NewDecoder(r.Body).Decode(&op); err != nil {
		s.failMessage(w, r, err)
		return
	}
	if err := s.store.ApplyKeyring(r.Context(), op); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, map[string]bool{"ok": true})
}

type privateServer struct {
	server
	store PrivateStore
}

var errBadProto = errors.New("unsupported protocol version")

// checkProto refuses calls from a release that speaks another version of
// the private protocol, so a rolling upgrade fails loudly instead of
// misreading messages.
func (s *privateServer) checkProto(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(cluster.HeaderProto, cluster.ProtoVersion)
		if v := r.Header.Get(cluster.HeaderProto); v != cluster.ProtoVersion {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%v %q: this node speaks %s %s", errBadProto, v, cluster.HeaderProto, cluster.ProtoVersion))
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxPrivateBody)
		}
		next.ServeHTTP(w, r)
	})
}

// failMessage answers a malformed message with 400.
func (s *privateServer) failMessage(w http.ResponseWriter, r *http.Request, err error) {
	s.fail(w, r, fmt.Errorf("%w: %w", node.ErrInvalid, err))
}

func writeBinary(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", cluster.ContentType)
	w.Write(b)
}

func (s *privateServer) ping(w http.ResponseWriter, r *http.Request) {
	writeText(w, s.store.ID().String())
}

func (s *privateServer) nodes(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.store.Members())
}

func (s *privateServer) announce(w http.ResponseWriter, r *http.Request) {
	if v := r.Header.Get(cluster.HeaderLastSync); v != "" {
		ns, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.failMessage(w, r, fmt.Errorf("%s: %w", cluster.HeaderLastSync, err))
			return
		}
		if err := s.store.CheckFresh(time.Unix(0, ns)); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	entries, err := cluster.DecodeEntries(r.Body)
	if err != nil {
		s.failMessage(w, r, err)
		return
	}
	n, err := s.store.Merge(r.Context(), entries)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, map[string]int{"applied": n})
}

func (s *privateServer) tree(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Syncable(); err != nil {
		s.fail(w, r, err)
		return
	}
	level, nodes, err := cluster.DecodeTreeRequest(r.Body)
	if err != nil {
		s.failMessage(w, r, err)
		return
	}
	out, err := s.store.TreeChildren(r.Context(), level, nodes)
	if err != nil {
		s.failMessage(w, r, err)
		return
	}
	writeBinary(w, cluster.EncodeTreeNodes(out))
}

func (s *privateServer) summaries(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Syncable(); err != nil {
		s.fail(w, r, err)
		return
	}
	leaves, err := cluster.DecodeLeaves(r.Body)
	if err != nil {
		s.failMessage(w, r, err)
		return
	}
	out, err := s.store.Summaries(r.Context(), leaves)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeBinary(w, cluster.EncodeSummaries(out))
}

func (s *privateServer) entries(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Syncable(); err != nil {
		s.fail(w, r, err)
		return
	}
	ids, err := cluster.DecodeIDs(r.Body)
	if err != nil {
		s.failMessage(w, r, err)
		return
	}
	out, err := s.store.Entries(r.Context(), ids)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeBinary(w, cluster.EncodeEntries(out))
}

// invalidate drops this node's copy of a body, for a peer carrying out an
// invalidation.
func (s *privateServer) invalidate(w http.ResponseWriter, r *http.Request) {
	id, err := parseID("object ID", r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	dropped, kept := s.store.DropCopy(r.Context(), id)
	writeJSON(w, map[string]bool{"dropped": dropped, "kept": kept})
}

// prewarm starts a peer's share of a pre-warm job on every node.
func (s *privateServer) prewarm(w http.ResponseWriter, r *http.Request) {
	var spec node.PrewarmSpec
	if err := json.NewDecoder(r.Body).Decode(&spec); err != nil {
		s.failMessage(w, r, err)
		return
	}
	spec.AllNodes = false
	job, err := s.store.Prewarm(r.Context(), spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, job)
}

func (s *privateServer) invalidateKeys(w http.ResponseWriter, r *http.Request) {
	var inv node.KeyInvalidation
	if err := json.NewDecoder(r.Body).Decode(&inv); err != nil {
		s.failMessage(w, r, err)
		return
	}
	res, err := s.store.InvalidateKeys(r.Context(), inv, false)
	s.reply(w, r, res, err)
}

func (s *privateServer) prewarmStatus(w http.ResponseWriter, r *http.Request) {
	job, err := s.store.PrewarmStatus(r.Context(), r.PathValue("job"), false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, job)
}

// key serves a key-addressed object to the node that routed its fill
// here, with this node's entry of it.
func (s *privateServer) key(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// For a part of the asker's sparse copy this node keeps only what the
	// range touches too; otherwise the asker fills the whole object, and
	// so does this node.
	obj, e, err := s.store.FillKey(r.Context(), q.Get("bucket"), q.Get("key"), partRange(r))
	if err != nil {
		if errors.Is(err, node.ErrNotFound) {
			w.Header().Set(cluster.HeaderAbsent, "true")
		}
		s.fail(w, r, err)
		return
	}
	defer obj.Close()
	w.Header().Set(cluster.HeaderEntry, cluster.EncodeEntryHeader(e))
	w.Header().Set("Content-Type", "application/octet-stream") // never sniffed: see SparseHeaders
	http.ServeContent(w, r, "", obj.Modified, obj.Content)
}

// partRange returns the span a peer's request reads when it asks for a
// part of its sparse copy (cluster.QuerySparse), and nil otherwise.
func partRange(r *http.Request) *node.Range {
	if r.URL.Query().Get(cluster.QuerySparse) != "1" {
		return nil
	}
	return RequestRange(r.Header)
}

// status serves this node's status, for a peer's status page.
func (s *privateServer) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.store.Status(r.Context())
	s.reply(w, r, st, err)
}

// get serves a body this node holds, for a peer that does not.
func (s *privateServer) get(w http.ResponseWriter, r *http.Request) {
	id, err := parseID("object ID", r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	obj, err := s.store.OpenLocal(r.Context(), id, partRange(r)) // this node's parts may serve a part
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer obj.Close()
	h := w.Header()
	setMetaHeaders(h, obj.Meta)
	h.Set(cluster.HeaderSHA256, obj.SHA256)
	h.Set(cluster.HeaderVersion, obj.Version)
	h.Set("Content-Type", "application/octet-stream") // never sniffed: see SparseHeaders
	http.ServeContent(w, r, "", obj.Modified, obj.Content)
}
