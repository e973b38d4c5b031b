// Package node is one objstore node: it ties the local disk and the remote
// tier (package storage) to the metadata journal (package journal) and
// carries out the public operations: put, get, delete, level changes,
// fetches from the remote on a miss, and the scrub that keeps local bodies
// honest.
package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/cache"
	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
	"github.com/objstore/objstore/storage/seal"
)

// Config configures a Node. Zero values take the defaults documented on
// each field.
type Config struct {
	// StateDir holds the journal and the node's identity. Required.
	StateDir string
	// FilesDir holds the bodies. Required.
	FilesDir string
	// Remote is the durable tier. Required. An object's key there is its
	// ID; wrap the Remote (storage.WithPrefix) to keep objects under a
	// folder of a shared store.
	Remote storage.Remote
	// MaxObjectSize rejects larger bodies with ErrTooLarge; zero means no
	// limit.
	MaxObjectSize int64
	// ScrubInterval is the pause between full scrubs of the local bodies;
	// zero means 24h, negative disables the periodic scrub (the start-up
	// scrub still runs).
	ScrubInterval time.Duration
	// ScrubRate caps the bytes per second a scrub reads; zero means
	// 32 MiB/s, so verification never starves client traffic.
	ScrubRate int64
	// MaxUploads bounds the uploads to the remote tier in flight at once;
	// one of a body of unknown length holds the remote's part buffers
	// (about 40 MiB with the S3 defaults), so this bounds the node's memory
	// under a burst of level 1 and 2 PUTs (a body of known length is
	// uploaded from the local copy, with no buffers). Further uploads wait
	// for a slot. Zero means 8.
	MaxUploads int
	// MaxDisk is the quota in bytes for the bodies this node holds; above
	// it, copies that are safe elsewhere are evicted in the cache policy's
	// order, and a write that cannot fit fails with ErrNoSpace. Zero means
	// no quota (the disk's own size still bounds it).
	MaxDisk int64
	// CachePolicy names the eviction order: see cache.New; empty means the
	// default.
	CachePolicy string
	// CacheTTL expires cached copies: a copy older than this that is safe
	// elsewhere is dropped and fetched again before it is served. Zero
	// means copies never expire.
	CacheTTL time.Duration
	// MissTTL is how long an object the remote store or an origin bucket
	// did not have is answered 404 from memory, without asking again;
	// zero means DefaultMissTTL, negative remembers no miss. An object
	// written through objstore is never hidden by a remembered miss.
	MissTTL time.Duration
	// Origin returns the origin bucket of that name, whose objects the
	// node serves by key (GetKey and the rest), or an error matching
	// ErrForbidden when the node does not serve it; nil serves none.
	Origin func(bucket string) (storage.Origin, error)
	// Revalidate says when a cached copy of a key-addressed object is
	// checked against its origin: RevalidateTTL (the default) once it is
	// older than CacheTTL, RevalidateAlways on every read, RevalidateNever
	// never.
	Revalidate Revalidation
	// FetchPartSize and FetchConcurrency split a fetch from the remote of
	// a body larger than one part into ranged requests of FetchPartSize
	// bytes, FetchConcurrency at a time; zero means 8 MiB and 4.
	FetchPartSize    int64
	FetchConcurrency int
	// ReadAhead is how many parts past the end of a ranged read of an
	// object not held whole are fetched with it (see Range); zero fetches
	// only the parts the read touches.
	ReadAhead int
	// MemoryCache is the budget in bytes of the bodies of small objects
	// (up to MaxMemoryBody, and a sixteenth of the budget) kept in memory
	// once read from disk, so that hits on them make no file system call;
	// zero means DefaultMemoryCache, negative keeps none.
	MemoryCache int64
	// Cluster configures membership; nil runs the node solo. NodeID is
	// filled in from the node's identity, and Keyring from Auth.
	Cluster *cluster.Config
	// Auth authenticates this node to its peers and its peers to it on
	// the private API (the same value must serve the private API's
	// handler); nil means an insecure cluster. NodeID and Now are filled
	// in by Open.
	Auth *cluster.Auth
	// SyncInterval is the pause between anti-entropy rounds with a random
	// peer; zero means 30s.
	SyncInterval time.Duration
	// TombstoneTTL is how long deletions are kept as tombstones before they
	// are compacted; zero means 7 days. A node out of the cluster for longer
	// than this must be wiped before it rejoins, or objects deleted while it
	// was away could return through it.
	TombstoneTTL time.Duration
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
	// LogRing, when set, holds the node's recent warnings and errors
	// (its Logger's handler should be it), which Status reports.
	LogRing *LogRing
	// Now is the node's one clock for every time decision: the physical
	// clock behind its hybrid logical clock, cache expiry, the tombstone
	// horizon, stored and verified times, and staleness; nil means
	// time.Now. Tests inject skewed or advancing clocks here instead of
	// sleeping. (Timers and backoffs, which measure waits rather than
	// dates, use the system's monotonic clock.)
	Now func() time.Time
	// Keyring, when set, encrypts every body this node writes to its disk
	// (storage/seal), and lets it read bodies sealed with any of its keys;
	// the scrub reseals bodies in the clear or under older keys. Nil
	// writes bodies in the clear.
	Keyring *seal.Keyring
	// FaultHook, for fault tests only, is called at each step of the
	// write path ("after-upload", "before-commit", "after-commit", and the
	// storage steps of storage.Disk.SetFaultHook, where an error it returns
	// is taken for the disk's), so a test can fail or stop the process at
	// any of them. Nil in production.
	FaultHook func(step string) error
	// MaxClockOffset bounds how far apart nodes' clocks may be: an entry
	// from a peer (or a remote copy's metadata) stamped further ahead of
	// this node's clock is refused rather than observed, and a node whose
	// clock is further than this from most of its peers' refuses writes.
	// Zero means 500ms; negative disables both checks (tests only).
	MaxClockOffset time.Duration
}

const (
	// DefaultScrubInterval, DefaultScrubRate, DefaultMaxUploads,
	// DefaultFetchPartSize and DefaultFetchConcurrency are the defaults of
	// the Config fields of those names; the command's flags use them.
	DefaultScrubInterval    = 24 * time.Hour
	DefaultScrubRate        = 32 << 20
	DefaultMaxUploads       = 8
	DefaultFetchPartSize    = 8 << 20
	DefaultFetchConcurrency = 4
	// DefaultMemoryCache is the default of Config.MemoryCache.
	DefaultMemoryCache = 16 << 20
	nodeIDFile         = "node-id"
	journalFile        = "journal.db"
	// copyBufferSize is the unit bodies stream in.
	copyBufferSize = 256 << 10
	// Limits on what the remote tier's metadata must carry; S3 caps user
	// metadata at 2 KiB per object.
	maxNameBytes     = 255
	maxUserMetaBytes = 1024
)

// Node is one objstore node. Its methods are safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	id      ulid.ULID
	journal *journal.Journal
	disk    *storage.Disk
	remote  *storage.Counted // cfg.Remote, its requests counted for the stats
	clock   *journal.Clock
	locks   keyLock
	uploads chan struct{} // a slot per remote upload in flight

	fills *fillEngine
	// sparse holds the sparse copies in use (ranged reads of objects not
	// held whole).
	sparse *sparseSet

	repairMu sync.Mutex // guards want
	want     map[ulid.ULID]*wanted
	repairC  chan struct{} // signals new repair work, capacity 1

	counters counters
	history  history
	// statusCache bounds how often the cluster status asks the peers.
	statusCache statusCache
	cl          *clusterState
	clocks      clockState
	misses      missCache
	quota       quota
	jobs        prewarms
	policy      cache.Policy
	mem         *memBodies // small bodies read from disk, kept in memory

	// ctx is canceled by Close; every background goroutine and every
	// fetch runs under it and is counted in wg.
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closed    atomic.Bool
	draining  atomic.Bool
	staleOnce sync.Once // logs the wipe instructions once
}

// counters are the node's traffic statistics since start.
type counters struct {
	hitsLocal, hitsRemote    atomic.Int64
	hitsMemory               atomic.Int64
	hitsPeer                 atomic.Int64
	misses                   atomic.Int64
	fetches, fetchErrors     atomic.Int64
	coalesced                atomic.Int64
	syncRounds, syncFailures atomic.Int64
	syncPulled, syncPushed   atomic.Int64
	syncApplied              atomic.Int64
	scrubbed, scrubDamaged   atomic.Int64
	readDamaged              atomic.Int64
	repairs, repairErrors    atomic.Int64
	puts, deletes, putErrors atomic.Int64
	evictions                atomic.Int64
	mergeRefused             atomic.Int64
	resealed                 atomic.Int64
	bytesLocal, bytesPeer    atomic.Int64
	bytesRemote              atomic.Int64
	ownerFills               atomic.Int64
	ownerFallbacks           atomic.Int64
	fillsForPeers            atomic.Int64
	// sparseReads counts the GETs served through a sparse copy,
	// rangedRemoteBytes the bytes their part fetches pulled from the
	// remote, and sparseAssembled the sparse copies that became whole.
	sparseReads, sparseAssembled atomic.Int64
	rangedRemoteBytes            atomic.Int64
}

// Open starts a node: it loads or creates the node's identity, opens the
// journal and the files directory, reconciles them (leftovers of a crash are
// removed; records of missing bodies are dropped and their bodies fetched
// again from the remote where it has them), and starts the background scrub
// and repair. Close stops it.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.StateDir == "" || cfg.FilesDir == "" || cfg.Remote == nil {
		return nil, errors.New("node: StateDir, FilesDir and Remote are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ScrubInterval == 0 {
		cfg.ScrubInterval = DefaultScrubInterval
	}
	if cfg.ScrubRate <= 0 {
		cfg.ScrubRate = DefaultScrubRate
	}
	if cfg.MaxUploads <= 0 {
		cfg.MaxUploads = DefaultMaxUploads
	}
	if cfg.FetchPartSize <= 0 {
		cfg.FetchPartSize = DefaultFetchPartSize
	}
	if cfg.FetchConcurrency <= 0 {
		cfg.FetchConcurrency = DefaultFetchConcurrency
	}
	if cfg.MemoryCache == 0 {
		cfg.MemoryCache = DefaultMemoryCache
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.MissTTL == 0 {
		cfg.MissTTL = DefaultMissTTL
	}
	if cfg.TombstoneTTL <= 0 {
		cfg.TombstoneTTL = DefaultTombstoneTTL
	}
	if cfg.MaxClockOffset == 0 {
		cfg.MaxClockOffset = DefaultMaxClockOffset
	}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("node: state dir: %w", err)
	}
	id, err := loadIdentity(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	if cfg.Auth == nil {
		cfg.Auth = &cluster.Auth{}
	}
	cfg.Auth.NodeID = id
	if cfg.Cluster != nil {
		cfg.Auth.Addr = cfg.Cluster.PrivateAddr
	}
	if cfg.Now != nil {
		cfg.Auth.Now = cfg.Now
	}
	if r := cfg.FetchPartSize % storage.SegmentSize; r != 0 {
		// Parts written side by side must start on segment boundaries.
		cfg.FetchPartSize += storage.SegmentSize - r
	}
	disk, err := storage.OpenDisk(cfg.FilesDir, cfg.Keyring)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	disk.SetFaultHook(cfg.FaultHook)
	opened := time.Now()
	jc := journal.Config{
		Path:   filepath.Join(cfg.StateDir, journalFile),
		Logger: cfg.Logger.With("component", "journal"),
	}
	if cfg.Keyring != nil {
		jc.Sealer = cfg.Keyring // names and user metadata sealed like bodies
	}
	j, err := journal.Open(jc)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	st := j.Stats()
	cfg.Logger.Info("journal opened", "objects", st.Objects, "tombstones", st.Tombstones, "local_objects", st.Blobs,
		"elapsed", time.Since(opened).Round(time.Millisecond))
	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "node"),
		id:      id,
		journal: j,
		disk:    disk,
		remote:  storage.NewCounted(cfg.Remote),
		clock:   journal.NewClock(cfg.Now, cfg.MaxClockOffset),
		clocks:  clockState{samples: make(map[string]clockSample)},
		repairC: make(chan struct{}, 1),
		uploads: make(chan struct{}, cfg.MaxUploads),
		mem:     newMemBodies(cfg.MemoryCache),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.fills = newFillEngine(n.ctx, &n.wg, fillDeps{
		disk:        disk,
		reserve:     n.reserve,
		peerBody:    n.peerBody,
		noCopy:      n.noCopy,
		commit:      n.commitFill,
		partSize:    cfg.FetchPartSize,
		concurrency: cfg.FetchConcurrency,
		log:         n.log,
		fetches:     &n.counters.fetches,
		fetchErrors: &n.counters.fetchErrors,
		coalesced:   &n.counters.coalesced,
		keep:        n.mem.put,
	})
	n.sparse = newSparseSet(n)
	n.misses.now, n.misses.ttl = n.physicalNow, cfg.MissTTL
	// Resume above every version this node has written or merged, so a
	// wall clock that stepped back while the node was down cannot order
	// its next writes before its last ones.
	latest := j.Latest()
	n.clock.Restore(latest)
	if err := n.clock.Check(latest); err != nil {
		n.log.Warn("the journal holds versions ahead of this machine's clock; new writes follow them", "latest", latest.Time(), "err", err)
	}
	policy := cfg.CachePolicy
	switch {
	case cfg.MaxDisk <= 0:
		// Without a quota nothing is evicted; LRU keeps an order at the
		// least cost.
		policy = cache.NameLRU
	case policy == "":
		policy = cache.DefaultPolicy
	}
	if n.policy, err = cache.New(policy, cfg.MaxDisk); err != nil {
		j.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := n.reconcile(ctx); err != nil {
		j.Close()
		return nil, err
	}
	if err := n.loadPolicy(); err != nil {
		j.Close()
		return nil, err
	}
	if err := n.startCluster(); err != nil {
		j.Close()
		return nil, err
	}
	n.wg.Add(3)
	go n.repairLoop()
	go n.scrubLoop()
	go n.sampleLoop()
	return n, nil
}

// Close leaves the cluster gracefully, stops the background work, waits
// for fetches in flight, and closes the journal last. Operations after
// Close fail with ErrClosed.
func (n *Node) Close() error {
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	n.fills.stop() // no fill starts after the wait below
	n.sparse.stop()

	n.stopCluster()
	n.cancel()
	n.wg.Wait()
	n.closeCluster()
	return n.journal.Close()
}

// SetKeyring replaces the keys bodies are encrypted with at rest, as when
// the key file is reloaded: new bodies are sealed with the new primary,
// and the scrub reseals the rest.
func (n *Node) SetKeyring(kr *seal.Keyring) {
	n.disk.SetKeyring(kr)
	if kr == nil {
		n.journal.SetSealer(nil)
	} else {
		n.journal.SetSealer(kr)
	}
}

// fault marks a step of the write path for crash tests (Config.FaultHook).
func (n *Node) fault(step string) {
	if n.cfg.FaultHook != nil {
		n.cfg.FaultHook(step) // crash tests stop here; errors are the disk's steps' only
	}
}

// ID returns the node's persistent identity.
func (n *Node) ID() ulid.ULID { return n.id }

// Remote returns the remote tier, for logs and stats.
func (n *Node) Remote() storage.Remote { return n.remote }

// loadIdentity reads the node's ULID from the state directory, creating it
// on first start so that restarts keep the node's identity.
func loadIdentity(stateDir string) (ulid.ULID, error) {
	path := filepath.Join(stateDir, nodeIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id, perr := ulid.ParseStrict(strings.TrimSpace(string(b)))
		if perr != nil {
			return ulid.ULID{}, fmt.Errorf("node: identity file %s is damaged (%w); remove it to give this node a new identity", path, perr)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return ulid.ULID{}, fmt.Errorf("node: read identity: %w", err)
	}
	id := ulid.Make()
	if err := writeFileAtomic(path, []byte(id.String()+"\n")); err != nil {
		return ulid.ULID{}, fmt.Errorf("node: write identity: %w", err)
	}
	return id, nil
}

// writeFileAtomic writes a small file so that a crash leaves either the old
// contents or the new, never a torn file.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// remoteKey is the key of an object in the remote tier.
func (n *Node) remoteKey(id ulid.ULID) string { return id.String() }

// Meta is the public description of an object, as /api/v1/meta returns it.
type Meta struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Size        int64             `json:"size"`
	Timestamp   int64             `json:"timestamp"`
	Modified    time.Time         `json:"modified"`
	UserMeta    map[string]string `json:"user_meta,omitempty"`
	IsSymlink   bool              `json:"is_symlink"`
	Consistency journal.Level     `json:"consistency"`
	IsDeleted   bool              `json:"is_deleted"`
	IsFetched   bool              `json:"is_fetched"`
	// IsLocal reports whether this node holds the body on its disk.
	IsLocal bool `json:"is_local"`
	// SHA256 is the hex checksum of the body, when known.
	SHA256  string `json:"sha256,omitempty"`
	Version string `json:"version"`
	// Bucket and Key name a key-addressed object; ETag, ContentType and
	// LastModified are what its origin bucket said of it.
	Bucket       string     `json:"bucket,omitempty"`
	Key          string     `json:"key,omitempty"`
	ETag         string     `json:"etag,omitempty"`
	ContentType  string     `json:"content_type,omitempty"`
	LastModified *time.Time `json:"last_modified,omitempty"`
	// Stale is set when a key-addressed object is served from a copy
	// its origin could not be asked about (stale-if-error).
	Stale bool `json:"stale,omitempty"`
	// Held is set on a read through a sparse copy: the bytes of the
	// object this node held when the read began.
	Held int64 `json:"held,omitempty"`
}

func metaOf(e journal.Entry, b *journal.Blob) Meta {
	m := Meta{
		ID:          e.ID.String(),
		Name:        e.Name,
		Size:        e.Size,
		Timestamp:   e.Modified().Unix(),
		Modified:    e.Modified(),
		UserMeta:    e.UserMeta,
		Consistency: e.Level,
		IsDeleted:   e.Deleted,
		Version:     e.Version.String(),
	}
	if e.Sum != (storage.Sum{}) {
		m.SHA256 = fmt.Sprintf("%x", e.Sum)
	}
	if e.Keyed() {
		m.Bucket, m.Key, m.ETag, m.ContentType = e.Bucket, e.Key, e.ETag, e.ContentType
		if !e.LastModified.IsZero() {
			lm := e.LastModified
			m.LastModified = &lm
		}
	}
	if b != nil && b.Sum == e.Sum {
		m.IsLocal = true
		m.IsFetched = b.Fetched
	}
	return m
}

// NewID returns a new object ID.
func (n *Node) NewID() ulid.ULID { return ulid.Make() }

// Meta returns the description of object id. A deleted object yields its
// tombstone's description and an error matching ErrDeleted; an unknown one
// an error matching ErrNotFound.
func (n *Node) Meta(ctx context.Context, id ulid.ULID) (Meta, error) {
	e, b, err := n.live("meta", id)
	if errors.Is(err, ErrDeleted) {
		return metaOf(e, nil), err
	}
	if err != nil {
		return Meta{}, err
	}
	return metaOf(e, b), nil
}

// live is lookup for an operation on a live object: an unknown ID is
// ErrNotFound and a tombstone ErrDeleted (with the tombstone returned).
func (n *Node) live(op string, id ulid.ULID) (journal.Entry, *journal.Blob, error) {
	e, b, err := n.lookup(id)
	switch {
	case errors.Is(err, journal.ErrNotFound):
		return e, nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	case err != nil:
		return e, nil, fmt.Errorf("node: %s %s: %w", op, id, err)
	case e.Deleted:
		return e, nil, fmt.Errorf("%w: %s", ErrDeleted, id)
	}
	return e, b, nil
}

// lookup reads the entry of id and, if this node holds a copy of that
// entry's body, its blob record, in one transaction.
func (n *Node) lookup(id ulid.ULID) (e journal.Entry, b *journal.Blob, err error) {
	err = n.journal.View(func(tx *journal.Tx) error {
		if e, err = tx.Entry(id); errors.Is(err, journal.ErrNoKey) {
			return safeErrorf(ErrUnavailable, "the journal entry of %s is encrypted with a key this node does not have", id)
		} else if err != nil {
			return err
		}
		blob, err := tx.Blob(id)
		switch {
		case err == nil && blob.Sum == e.Sum:
			b = &blob
		case err != nil && !errors.Is(err, journal.ErrNotFound):
			return err
		}
		return nil
	})
	return e, b, err
}
