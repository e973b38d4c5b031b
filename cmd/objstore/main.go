// Command objstore runs one node of objstore, a disk-backed near-cache for
// Amazon S3 and S3-compatible stores.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	cli "github.com/jawher/mow.cli"

	"github.com/objstore/objstore/api"
	"github.com/objstore/objstore/cache"
	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/metrics"
	"github.com/objstore/objstore/node"
	"github.com/objstore/objstore/s3api"
	"github.com/objstore/objstore/storage"
	"github.com/objstore/objstore/storage/s3remote"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	app := cli.App("objstore", "A multi-master, disk-backed near-cache cluster for Amazon S3 and S3-compatible stores.")
	// Not app.Version, which prints to standard error: a version asked
	// for is output, for scripts to read.
	showVersion := app.BoolOpt("version", false, "Show the version and exit")
	var c config
	app.IntPtr(&c.Debug, cli.IntOpt{Name: "d debug", Value: 0, EnvVar: "APP_DEBUG_LEVEL", Desc: "Debug level, 0 or 1."})
	app.StringsPtr(&c.Nodes, cli.StringsOpt{Name: "N nodes", EnvVar: "APP_CLUSTER_NODES", Desc: "Gossip addresses (host[:port], comma-separated) of cluster nodes to join; a name stands for every address it resolves to, looked up again while no peer is alive (a Kubernetes headless service)."})
	app.StringPtr(&c.Tag, cli.StringOpt{Name: "T tag", Value: "default", EnvVar: "APP_CLUSTER_TAGNAME", Desc: "Cluster tag name; nodes with another tag are another cluster."})
	app.StringPtr(&c.PublicAddr, cli.StringOpt{Name: "public-addr", Value: "0.0.0.0:10999", EnvVar: "NET_PUBLIC_ADDR", Desc: "Listen address of the public HTTP API."})
	app.StringPtr(&c.PrivateAddr, cli.StringOpt{Name: "private-addr", Value: "127.0.0.1:11999", EnvVar: "NET_PRIVATE_ADDR", Desc: "Listen address of the private (node to node) HTTP API; on a non-loopback address the cluster must be secured (docs/security.md)."})
	app.StringPtr(&c.GossipAddr, cli.StringOpt{Name: "gossip-addr", Value: "127.0.0.1:7946", EnvVar: "NET_GOSSIP_ADDR", Desc: "Listen address for cluster gossip; on a non-loopback address the cluster must be secured (docs/security.md)."})
	app.StringPtr(&c.MetricsAddr, cli.StringOpt{Name: "metrics-addr", Value: "", EnvVar: "NET_METRICS_ADDR", Desc: "Listen address of Prometheus metrics (/metrics), open to whoever reaches it; when empty they are served at /metrics on the public port, with the read scope when --credentials-file is set."})
	app.StringPtr(&c.DebugAddr, cli.StringOpt{Name: "debug-addr", Value: "", EnvVar: "NET_DEBUG_ADDR", Desc: "Listen address for pprof; off when empty."})
	app.StringPtr(&c.StateDir, cli.StringOpt{Name: "state-dir", Value: "state/", EnvVar: "APP_STATE_DIR", Desc: "Directory of the journal and the node's identity."})
	app.StringPtr(&c.FilesDir, cli.StringOpt{Name: "files-dir", Value: "files/", EnvVar: "APP_FILES_DIR", Desc: "Directory of the object bodies."})
	app.StringPtr(&c.Region, cli.StringOpt{Name: "R region", Value: "us-east-1", EnvVar: "S3_REGION_NAME", Desc: "S3 region."})
	app.StringPtr(&c.Bucket, cli.StringOpt{Name: "B bucket", Value: "", EnvVar: "S3_BUCKET_NAME", Desc: "S3 bucket; without it the remote tier is --remote-dir."})
	app.StringPtr(&c.Endpoint, cli.StringOpt{Name: "s3-endpoint", Value: "", EnvVar: "S3_ENDPOINT", Desc: "Custom S3 endpoint such as MinIO (path-style addressing)."})
	app.StringPtr(&c.Prefix, cli.StringOpt{Name: "s3-prefix", Value: "", EnvVar: "S3_KEY_PREFIX", Desc: "Key prefix inside the bucket; an object's key is prefix + ID."})
	app.BoolPtr(&c.S3CreateBucket, cli.BoolOpt{Name: "s3-create-bucket", Value: false, EnvVar: "S3_CREATE_BUCKET", Desc: "Create the bucket at start-up if it does not exist."})
	app.StringPtr(&c.S3PartSize, cli.StringOpt{Name: "s3-part-size", Value: fmt.Sprintf("%dMiB", s3remote.DefaultPartSize>>20), EnvVar: "S3_PART_SIZE", Desc: "Part size of multipart uploads; an upload of a body of unknown length (chunked) holds about part size x (concurrency + 2) of memory, one of known length none."})
	app.IntPtr(&c.S3Concurrency, cli.IntOpt{Name: "s3-concurrency", Value: s3remote.DefaultConcurrency, EnvVar: "S3_CONCURRENCY", Desc: "Parts of one upload in flight at once."})
	app.StringPtr(&c.S3Timeout, cli.StringOpt{Name: "s3-timeout", Value: s3remote.DefaultIOTimeout.String(), EnvVar: "S3_TIMEOUT", Desc: "Longest wait on S3 for an answer to begin or for any read or write of a body to move; a stalled or black-holed S3 fails requests (503) instead of holding them."})
	app.IntPtr(&c.MaxUploads, cli.IntOpt{Name: "max-uploads", Value: node.DefaultMaxUploads, EnvVar: "APP_MAX_UPLOADS", Desc: "Uploads to the remote in flight at once; more wait for a slot. Bounds memory: each of a body of unknown length holds about part size x (concurrency + 2)."})
	app.StringPtr(&c.RemoteDir, cli.StringOpt{Name: "remote-dir", Value: "remote/", EnvVar: "APP_REMOTE_DIR", Desc: "Directory used as the remote tier when no bucket is given."})
	app.StringPtr(&c.MaxObjectSize, cli.StringOpt{Name: "max-object-size", Value: "", EnvVar: "APP_MAX_OBJECT_SIZE", Desc: "Largest accepted upload (bytes, or with a unit: 64MiB, 5GiB); larger ones get 413. No limit when empty."})
	app.StringPtr(&c.MaxDisk, cli.StringOpt{Name: "max-disk", Value: "", EnvVar: "APP_MAX_DISK", Desc: "Quota for the bodies this node holds: bytes (8388608, 8MiB) or a percentage of the files directory's filesystem (80%). Above it, copies safe elsewhere are evicted. No quota when empty."})
	app.StringPtr(&c.CacheTTL, cli.StringOpt{Name: "cache-ttl", Value: "", EnvVar: "APP_CACHE_TTL", Desc: "Age (90s, 24h) after which a cached copy is fetched again before it is served; never when empty."})
	app.StringPtr(&c.OriginBuckets, cli.StringOpt{Name: "origin-buckets", Value: "", EnvVar: "APP_ORIGIN_BUCKETS", Desc: "S3 buckets (comma-separated, or * for any the node's credentials read) whose objects are served by key under /api/v1/b/{bucket}/{key}, read through and cached. None when empty."})
	app.StringPtr(&c.S3APIAddr, cli.StringOpt{Name: "s3-api-addr", Value: "", EnvVar: "APP_S3_API_ADDR", Desc: "Address (host:port) of the S3-compatible endpoint serving --origin-buckets to S3 clients and SDKs (path-style, and virtual-hosted-style under --s3-api-domain); needs --credentials-file. Off when empty."})
	app.StringPtr(&c.S3APIDomain, cli.StringOpt{Name: "s3-api-domain", Value: "", EnvVar: "APP_S3_API_DOMAIN", Desc: "Domain of virtual-hosted-style requests to the S3 endpoint: host <bucket>.<domain> addresses that bucket."})
	app.IntPtr(&c.S3APILevel, cli.IntOpt{Name: "s3-api-level", Value: 1, EnvVar: "APP_S3_API_LEVEL", Desc: "Consistency level (1 or 2) of writes through the S3 endpoint; a request's X-Objstore-Consistency-Level header chooses another."})
	app.StringPtr(&c.S3PublicRead, cli.StringOpt{Name: "s3-public-read", Value: "", EnvVar: "APP_S3_PUBLIC_READ", Desc: "Origin buckets (comma-separated) that anyone may read through the S3 endpoint without credentials."})
	app.StringPtr(&c.Revalidate, cli.StringOpt{Name: "revalidate", Value: string(node.RevalidateTTL), EnvVar: "APP_REVALIDATE", Desc: "When a cached key is checked against its bucket (a conditional request): ttl (once older than --cache-ttl), always (every read), never."})
	app.StringPtr(&c.MissTTL, cli.StringOpt{Name: "miss-ttl", Value: node.DefaultMissTTL.String(), EnvVar: "APP_MISS_TTL", Desc: "How long a key or ID missing in S3 is answered 404 without asking again; 0 asks every time."})
	app.StringPtr(&c.FetchPartSize, cli.StringOpt{Name: "fetch-part-size", Value: fmt.Sprintf("%dMiB", node.DefaultFetchPartSize>>20), EnvVar: "APP_FETCH_PART_SIZE", Desc: "A cold object larger than this is fetched from the remote in ranged parts of this size."})
	app.StringPtr(&c.MemoryCache, cli.StringOpt{Name: "memory-cache", Value: fmt.Sprintf("%dMiB", node.DefaultMemoryCache>>20), EnvVar: "APP_MEMORY_CACHE", Desc: fmt.Sprintf("Memory for the bodies of small objects (up to %d KiB each, and a sixteenth of this) once read from disk, so that hits on them make no file system call; 0 keeps none.", node.MaxMemoryBody>>10)})
	app.IntPtr(&c.FetchParallel, cli.IntOpt{Name: "fetch-concurrency", Value: node.DefaultFetchConcurrency, EnvVar: "APP_FETCH_CONCURRENCY", Desc: "Ranged parts of one cold object fetched at once."})
	app.IntPtr(&c.ReadAhead, cli.IntOpt{Name: "read-ahead", Value: 0, EnvVar: "APP_READ_AHEAD", Desc: "Parts (of --fetch-part-size) past the end of a ranged read of an object not held whole that are fetched with it; 0 fetches only the parts the read touches."})
	app.StringPtr(&c.CachePolicy, cli.StringOpt{Name: "cache-policy", Value: cache.DefaultPolicy, EnvVar: "APP_CACHE_POLICY", Desc: "Eviction order: " + strings.Join(cache.Names(), " or ") + " (docs/cache-policy.md compares them)."})
	app.StringPtr(&c.ScrubInterval, cli.StringOpt{Name: "scrub-interval", Value: node.DefaultScrubInterval.String(), EnvVar: "APP_SCRUB_INTERVAL", Desc: "Pause between scrubs that verify local bodies against their checksums; negative disables the periodic scrub."})
	app.StringPtr(&c.ScrubRate, cli.StringOpt{Name: "scrub-rate", Value: fmt.Sprintf("%dMiB", node.DefaultScrubRate>>20), EnvVar: "APP_SCRUB_RATE", Desc: "Bytes per second a scrub may read."})
	app.StringPtr(&c.ClusterSecretFile, cli.StringOpt{Name: "cluster-secret-file", Value: "", EnvVar: "APP_CLUSTER_SECRET_FILE", Desc: "File holding the cluster secret (base64, from `objstore keygen`): it encrypts gossip and signs every node-to-node request. Or give the secret itself in $" + envClusterSecret + "."})
	app.StringPtr(&c.ClusterCA, cli.StringOpt{Name: "cluster-ca", Value: "", EnvVar: "APP_CLUSTER_CA", Desc: "PEM file of the cluster CA: node-to-node traffic is mutual TLS, each node's certificate signed by it (reloaded on SIGHUP)."})
	app.StringPtr(&c.NodeCert, cli.StringOpt{Name: "node-cert", Value: "", EnvVar: "APP_NODE_CERT", Desc: "PEM certificate of this node for mutual TLS; it must cover the host of the advertised private address (reloaded on SIGHUP)."})
	app.StringPtr(&c.NodeKey, cli.StringOpt{Name: "node-key", Value: "", EnvVar: "APP_NODE_KEY", Desc: "PEM private key of --node-cert."})
	app.BoolPtr(&c.InsecureCluster, cli.BoolOpt{Name: "insecure-cluster", Value: false, EnvVar: "APP_INSECURE_CLUSTER", Desc: "Run the private API and gossip unauthenticated on a non-loopback address (anyone who reaches them can read and destroy data)."})
	app.StringPtr(&c.TLSCert, cli.StringOpt{Name: "tls-cert", Value: "", EnvVar: "APP_TLS_CERT", Desc: "PEM certificate for the public API: it serves HTTPS (reloaded on SIGHUP)."})
	app.StringPtr(&c.TLSKey, cli.StringOpt{Name: "tls-key", Value: "", EnvVar: "APP_TLS_KEY", Desc: "PEM private key of --tls-cert."})
	app.StringPtr(&c.CredentialsFile, cli.StringOpt{Name: "credentials-file", Value: "", EnvVar: "APP_CREDENTIALS_FILE", Desc: "File of access keys with scopes (read, write, admin): the public API then needs a key (SigV4 or Basic); reloaded on SIGHUP. Open when empty."})
	app.StringPtr(&c.EncryptionKeyFile, cli.StringOpt{Name: "encryption-key-file", Value: "", EnvVar: "APP_ENCRYPTION_KEY_FILE", Desc: "File of keys (id:base64, 32 bytes each; the first seals) that encrypt bodies on local disk with AES-256-GCM; reloaded on SIGHUP, and the scrub reseals bodies under older keys. In the clear when empty."})
	app.IntPtr(&c.MaxConns, cli.IntOpt{Name: "max-connections", Value: 10000, EnvVar: "NET_MAX_CONNECTIONS", Desc: "Open connections a listener keeps at most; more are turned away at once."})
	app.IntPtr(&c.MaxConnsPerClient, cli.IntOpt{Name: "max-connections-per-client", Value: 512, EnvVar: "NET_MAX_CONNECTIONS_PER_CLIENT", Desc: "Open connections one client address may hold on a listener."})
	app.StringPtr(&c.MinBodyRate, cli.StringOpt{Name: "min-body-rate", Value: "16KiB", EnvVar: "NET_MIN_BODY_RATE", Desc: "Slowest a request body may arrive, per second over 10s windows; slower ones get 408 and give back what they held."})
	app.StringPtr(&c.MaxClockOffset, cli.StringOpt{Name: "max-clock-offset", Value: node.DefaultMaxClockOffset.String(), EnvVar: "APP_MAX_CLOCK_OFFSET", Desc: "Largest clock offset between nodes: entries stamped further ahead are refused, and a node this far off from most peers refuses writes."})
	app.StringPtr(&c.GossipProfile, cli.StringOpt{Name: "gossip-profile", Value: "lan", EnvVar: "APP_GOSSIP_PROFILE", Desc: "Gossip timings: lan (a datacenter network) or local (every node on one machine: failures are noticed in about a second)."})
	app.StringPtr(&c.AdvertiseHost, cli.StringOpt{Name: "advertise-host", Value: "", EnvVar: "NET_ADVERTISE_HOST", Desc: "Host or IP peers use to reach this node; default: the listen host, or the first private IP when listening on 0.0.0.0."})
	app.StringPtr(&c.SyncInterval, cli.StringOpt{Name: "sync-interval", Value: node.DefaultSyncInterval.String(), EnvVar: "APP_SYNC_INTERVAL", Desc: "Pause between anti-entropy rounds with a random peer."})
	app.StringPtr(&c.TombstoneTTL, cli.StringOpt{Name: "tombstone-ttl", Value: node.DefaultTombstoneTTL.String(), EnvVar: "APP_TOMBSTONE_TTL", Desc: "How long deletions are remembered; a node away for longer must be wiped before it rejoins."})
	app.StringPtr(&c.DrainDelay, cli.StringOpt{Name: "drain-delay", Value: "0s", EnvVar: "APP_DRAIN_DELAY", Desc: "On SIGTERM, how long /readyz fails while requests are still served, so a load balancer stops routing here first."})
	app.StringPtr(&c.ShutdownGrace, cli.StringOpt{Name: "shutdown-grace", Value: "30s", EnvVar: "APP_SHUTDOWN_GRACE", Desc: "How long requests in flight may run after SIGTERM."})

	registerClientCommands(app)
	app.Command("healthcheck", "Exit 0 if a node answers 200 at the given URL (for container health checks).", func(cmd *cli.Cmd) {
		url := cmd.StringOpt("url", "http://127.0.0.1:10999/readyz", "URL to probe")
		timeout := cmd.StringOpt("timeout", "3s", "how long to wait for the answer")
		cmd.Action = func() {
			if err := healthcheck(*url, *timeout); err != nil {
				fmt.Fprintf(os.Stderr, "objstore healthcheck: %v\n", err)
				cli.Exit(1)
			}
		}
	})
	app.Command("wipe", "Remove a stopped node's journal and bodies (keeping its identity and cluster keyring), so a node away for longer than --tombstone-ttl can rejoin afresh.", func(cmd *cli.Cmd) {
		state := cmd.StringOpt("state-dir", "state/", "the node's --state-dir")
		files := cmd.StringOpt("files-dir", "files/", "the node's --files-dir")
		cmd.Action = func() {
			if err := wipe(*state, *files); err != nil {
				fmt.Fprintf(os.Stderr, "objstore wipe: %v\n", err)
				cli.Exit(1)
			}
		}
	})
	app.Command("keygen", "Print a new random key: a cluster secret (base64) for --cluster-secret-file or $"+envClusterSecret+", or with --id a line for --encryption-key-file.", func(cmd *cli.Cmd) {
		id := cmd.IntOpt("id", -1, "key ID of an encryption key line (id:base64)")
		cmd.Action = func() {
			b := make([]byte, 32)
			rand.Read(b)
			if *id >= 0 {
				fmt.Printf("%d:%s\n", *id, base64.StdEncoding.EncodeToString(b))
				return
			}
			fmt.Println(base64.StdEncoding.EncodeToString(b))
		}
	})
	app.Action = func() {
		if *showVersion {
			fmt.Println("objstore " + version)
			return
		}
		if err := c.validate(); err != nil {
			fmt.Fprintf(os.Stderr, "objstore: invalid configuration:\n%v\n", err)
			cli.Exit(2)
		}
		if err := run(c); err != nil {
			fmt.Fprintf(os.Stderr, "objstore: %v\n", err)
			cli.Exit(1)
		}
	}
	app.Run(os.Args)
}

// run starts the node and its servers, and shuts them down in order on
// SIGINT or SIGTERM: stop accepting and finish requests in flight, then
// close the node (background work, then the journal).
func run(c config) error {
	level := slog.LevelInfo
	if c.Debug == 1 {
		level = slog.LevelDebug
	}
	// The status page shows the last warnings and errors: they pass
	// through a ring on their way to standard error.
	logRing := node.NewLogRing(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	log := slog.New(logRing)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	reg := metrics.New(version)
	remote, err := openRemote(ctx, c, reg, log)
	if err != nil {
		return err
	}
	log.Info("remote tier", "remote", remote.String())

	maxDisk, err := c.diskQuota()
	if err != nil {
		return err
	}
	if maxDisk > 0 {
		log.Info("disk quota", "bytes", maxDisk, "files_dir", c.FilesDir)
	}

	origins, originStore, err := openOrigins(ctx, c, remote, reg, log)
	if err != nil {
		return err
	}
	sec, err := openSecurity(c, log)
	if err != nil {
		return err
	}
	reloads := startReloader(ctx, log, sec.reloaders...)
	defer reloads()

	// The private API listens before the node joins, so peers that hear
	// of it can reach it at once; it answers 503 until the node is open.
	private := &lateHandler{}
	limits := api.Limits{MaxConns: c.MaxConns, MaxConnsPerClient: c.MaxConnsPerClient, MinBodyRate: c.minBodyRate}
	privateSrv := &http.Server{Handler: private, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: maxHeaderBytes, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 3)
	if err := serve(privateSrv, c.PrivateAddr, sec.privateTLS, &limits, log, errc); err != nil {
		return err
	}
	n, err := node.Open(ctx, node.Config{
		StateDir:         c.StateDir,
		FilesDir:         c.FilesDir,
		Remote:           remote,
		MaxObjectSize:    c.maxObjectSize,
		MaxUploads:       c.MaxUploads,
		MaxDisk:          maxDisk,
		CacheTTL:         c.cacheTTL,
		Revalidate:       c.revalidate,
		MissTTL:          c.missTTL,
		Origin:           origins,
		CachePolicy:      c.CachePolicy,
		FetchPartSize:    c.fetchPartSize,
		FetchConcurrency: c.FetchParallel,
		ReadAhead:        c.ReadAhead,
		MemoryCache:      c.memoryCache,
		ScrubInterval:    c.scrubInterval,
		ScrubRate:        c.scrubRate,
		SyncInterval:     c.syncInterval,
		TombstoneTTL:     c.tombstoneTTL,
		MaxClockOffset:   c.maxClockOffset,
		Keyring:          sec.bodyKeys,
		Now:              faultClock(log),
		FaultHook:        faultHook(log),
		Auth:             sec.auth,
		Logger:           log,
		LogRing:          logRing,
		Cluster: &cluster.Config{
			Tag:      c.Tag,
			BindAddr: c.GossipAddr,
			AdvertiseAddr: func() string {
				if c.AdvertiseHost == "" {
					return ""
				}
				return c.advertise(c.GossipAddr)
			}(),
			PublicAddr:  c.advertise(c.PublicAddr),
			PrivateAddr: c.advertise(c.PrivateAddr),
			Join:        c.Nodes,
			Local:       c.GossipProfile == "local",
		},
	})
	if err != nil {
		privateSrv.Close()
		return err
	}
	reg.WatchNode(n.Stats)
	private.set(api.NewPrivate(api.PrivateConfig{Store: n, Auth: sec.auth, Logger: log, Metrics: reg}))
	sec.onBodyKeys(n.SetKeyring)
	log.Info("node started", "node_id", n.ID(), "version", version, "state_dir", c.StateDir, "files_dir", c.FilesDir,
		"private_addr", c.PrivateAddr, "gossip_addr", c.GossipAddr, "tag", c.Tag)
	if len(c.Nodes) == 0 {
		log.Warn("no cluster nodes given; this node starts a cluster of its own")
	}

	public := &http.Server{
		Handler: api.NewPublic(api.Config{Store: n, Version: version, Logger: log, Auth: sec.clients, Limits: limits,
			Metrics: reg, ServeMetrics: c.MetricsAddr == ""}),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	servers := []*http.Server{public}
	if err := serve(public, c.PublicAddr, sec.publicTLS, &limits, log, errc); err != nil {
		privateSrv.Close()
		n.Close()
		return err
	}
	log.Info("public API listening", "addr", c.PublicAddr)
	if c.S3APIAddr != "" {
		h, err := s3api.New(s3api.Config{Store: n, Auth: sec.clients, Buckets: listOrigins(c, originStore), PublicRead: c.s3PublicRead,
			Domain: c.S3APIDomain, Level: journal.Level(c.S3APILevel), Region: c.Region, Limits: limits, Logger: log, Metrics: reg})
		if err == nil {
			s3srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: maxHeaderBytes,
				IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
			if err = serve(s3srv, c.S3APIAddr, sec.publicTLS, &limits, log, errc); err == nil {
				servers = append(servers, s3srv)
				log.Info("S3 endpoint listening", "addr", c.S3APIAddr, "domain", c.S3APIDomain)
			}
		}
		if err != nil {
			public.Close()
			privateSrv.Close()
			n.Close()
			return err
		}
	}
	// Listeners of their own, off when their address is empty: metrics,
	// and pprof (no connection limits, so a profile can be taken from an
	// overloaded node).
	for _, side := range []struct {
		name, addr string
		h          http.Handler
		limits     *api.Limits
	}{
		{"metrics", c.MetricsAddr, metricsMux(reg), &limits},
		{"pprof", c.DebugAddr, debugMux(), nil},
	} {
		if side.addr == "" {
			continue
		}
		srv := &http.Server{Handler: side.h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		if err := serve(srv, side.addr, nil, side.limits, log, errc); err != nil {
			for _, s := range servers {
				s.Close()
			}
			privateSrv.Close()
			n.Close()
			return err
		}
		servers = append(servers, srv)
		log.Info(side.name+" listening", "addr", side.addr)
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
		if c.drainDelay > 0 {
			// Fail /readyz first, so load balancers route elsewhere before
			// the listeners close.
			n.Drain()
			log.Info("draining", "for", c.drainDelay)
			time.Sleep(c.drainDelay)
		}
	case err = <-errc:
		log.Error("server failed", "err", err)
	}
	// Stop taking client requests and finish those in flight; then leave
	// the cluster and close the node (the journal last); the private API
	// stays up meanwhile so peers in the middle of a call can finish it.
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownGrace)
	defer cancel()
	shutdown := func(s *http.Server) {
		if serr := s.Shutdown(sctx); serr != nil {
			log.Warn("requests still in flight at the end of the grace period", "err", serr)
			s.Close()
		}
	}
	for _, s := range servers {
		shutdown(s)
	}
	if cerr := n.Close(); cerr != nil && err == nil {
		err = cerr
	}
	shutdown(privateSrv)
	log.Info("stopped")
	return err
}

// maxHeaderBytes bounds a request's headers on every listener.
const maxHeaderBytes = 64 << 10

// serve listens on addr (with connection limits when given, and TLS when
// tlsCfg is set) and serves s in the background; a failure to listen is
// returned at once, a later failure is sent to errc.
func serve(s *http.Server, addr string, tlsCfg *tls.Config, limits *api.Limits, log *slog.Logger, errc chan<- error) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if limits != nil {
		ln = api.LimitListener(ln, *limits, tlsCfg == nil, log)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	go func() {
		if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	return nil
}

// metricsMux serves the metrics at /metrics on a listener of their own.
func metricsMux(reg *metrics.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg.Handler())
	return mux
}

func openRemote(ctx context.Context, c config, reg *metrics.Registry, log *slog.Logger) (storage.Remote, error) {
	if c.Bucket == "" {
		log.Info("no --bucket given; the remote tier is a local directory", "dir", c.RemoteDir)
		return storage.NewDirRemote(c.RemoteDir)
	}
	r, err := s3remote.New(ctx, s3remote.Config{
		Bucket:      c.Bucket,
		Region:      c.Region,
		Endpoint:    c.Endpoint,
		Prefix:      c.Prefix,
		PartSize:    c.s3PartSize,
		Concurrency: c.S3Concurrency,
		IOTimeout:   c.s3Timeout,
		Logger:      log.With("component", "s3"),
		Observer:    reg.S3(),
	})
	if err != nil {
		return nil, err
	}
	if c.S3CreateBucket {
		// The S3 server may be starting alongside this node (as in a
		// compose file): keep trying for a minute.
		deadline := time.Now().Add(time.Minute)
		for {
			err := r.EnsureBucket(ctx)
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return nil, err
			}
			log.Warn("bucket not ready yet; retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(2 * time.Second):
			}
		}
	}
	return r, nil
}

// openOrigins returns the node's Config.Origin for --origin-buckets: each
// bucket on the S3 endpoint and credentials of --bucket, or of the same
// settings without it; and the store those buckets are in. Nil when none
// is served.
func openOrigins(ctx context.Context, c config, remote storage.Remote, reg *metrics.Registry, log *slog.Logger) (func(string) (storage.Origin, error), *s3remote.Remote, error) {
	if len(c.originBuckets) == 0 {
		return nil, nil, nil
	}
	base, ok := remote.(*s3remote.Remote)
	if !ok {
		var err error
		base, err = s3remote.New(ctx, s3remote.Config{
			Bucket: c.originBuckets[0], Region: c.Region, Endpoint: c.Endpoint, PartSize: c.s3PartSize,
			Concurrency: c.S3Concurrency, IOTimeout: c.s3Timeout, Logger: log.With("component", "s3"), AnyKey: true,
			Observer: reg.S3(),
		})
		if err != nil {
			return nil, nil, err
		}
	}
	anyBucket := c.originBuckets[0] == "*"
	log.Info("serving origin buckets by key", "buckets", c.originBuckets, "revalidate", c.revalidate)
	return func(bucket string) (storage.Origin, error) {
		if !anyBucket && !slices.Contains(c.originBuckets, bucket) {
			return nil, fmt.Errorf("%w: bucket %s is not among --origin-buckets", node.ErrForbidden, bucket)
		}
		return base.WithBucket(bucket), nil
	}, base, nil
}

// listOrigins lists the origin buckets for the S3 endpoint's ListBuckets,
// as the origin store names them (with their creation dates): those of
// --origin-buckets, or, for "*", every bucket the node's credentials own.
// When the credentials may not list buckets, --origin-buckets are named
// without dates; for "*" the origin's refusal is the answer.
func listOrigins(c config, store *s3remote.Remote) func(context.Context) ([]s3api.BucketInfo, error) {
	anyBucket := len(c.originBuckets) == 1 && c.originBuckets[0] == "*"
	return func(ctx context.Context) ([]s3api.BucketInfo, error) {
		owned, err := store.ListBuckets(ctx)
		if err != nil && (anyBucket || errors.Is(err, storage.ErrUnavailable)) {
			return nil, err
		}
		created := make(map[string]time.Time, len(owned))
		for _, b := range owned {
			created[b.Name] = b.Created
		}
		var out []s3api.BucketInfo
		if anyBucket {
			for _, b := range owned {
				out = append(out, s3api.BucketInfo{Name: b.Name, Created: b.Created})
			}
			return out, nil
		}
		for _, name := range c.originBuckets {
			out = append(out, s3api.BucketInfo{Name: name, Created: created[name]})
		}
		return out, nil
	}
}

// healthcheck probes url and fails unless it answers 200 in time.
func healthcheck(url, timeout string) error {
	d, err := time.ParseDuration(timeout)
	if err != nil {
		return fmt.Errorf("--timeout: %w", err)
	}
	client := &http.Client{Timeout: d}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// lateHandler serves 503 until its handler is set.
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) set(h http.Handler) { l.h.Store(&h) }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "node starting", http.StatusServiceUnavailable)
}

// debugMux serves pprof. The command line is left out: it is nobody's
// business on a debug port, even though no secret is ever on it.
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
