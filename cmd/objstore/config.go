package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/objstore/objstore/cache"
	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/node"
)

// config is every setting of an objstore process, read from flags and
// environment variables by mow.cli, validated once by validate, and mapped
// into each package's own Config by main. No other place reads flags or the
// environment.
type config struct {
	Debug       int
	Nodes       []string
	Tag         string
	PublicAddr  string
	PrivateAddr string
	GossipAddr  string
	DebugAddr   string
	MetricsAddr string

	StateDir  string
	FilesDir  string
	RemoteDir string

	Region         string
	Bucket         string
	Endpoint       string
	Prefix         string
	S3CreateBucket bool
	S3PartSize     string
	S3Concurrency  int
	S3Timeout      string
	MaxUploads     int

	MaxObjectSize string
	ScrubInterval string
	ScrubRate     string
	ShutdownGrace string
	MaxDisk       string
	FetchPartSize string
	MemoryCache   string
	DrainDelay    string
	FetchParallel int
	ReadAhead     int
	CacheTTL      string
	CachePolicy   string
	OriginBuckets string
	S3APIAddr     string
	S3APIDomain   string
	S3APILevel    int
	S3PublicRead  string
	Revalidate    string
	MissTTL       string
	GossipProfile string
	AdvertiseHost string
	SyncInterval  string
	TombstoneTTL  string

	// Security. Secrets come from files or the environment only, never
	// from a flag's value, so they appear in no process list.
	ClusterSecretFile string
	ClusterCA         string
	NodeCert          string
	NodeKey           string
	InsecureCluster   bool
	TLSCert           string
	TLSKey            string
	CredentialsFile   string
	EncryptionKeyFile string
	MaxClockOffset    string
	MaxConns          int
	MaxConnsPerClient int
	MinBodyRate       string

	// Parsed forms, set by validate.
	maxObjectSize int64
	scrubInterval time.Duration
	scrubRate     int64
	s3PartSize    int64
	s3Timeout     time.Duration
	shutdownGrace time.Duration
	clusterSecret []byte
	cacheTTL      time.Duration
	fetchPartSize int64
	memoryCache   int64    // -1: none
	originBuckets []string // nil: none; ["*"]: any the credentials read
	s3PublicRead  []string
	revalidate    node.Revalidation
	missTTL       time.Duration
	drainDelay    time.Duration
	// maxDiskBytes or maxDiskPercent is set by validate; the percentage
	// becomes bytes once the files directory's filesystem is known.
	maxDiskBytes   int64
	maxDiskPercent float64
	syncInterval   time.Duration
	tombstoneTTL   time.Duration
	maxClockOffset time.Duration
	minBodyRate    int64
}

// envClusterSecret holds the cluster secret itself (base64), for
// deployments that pass secrets through the environment rather than files.
const envClusterSecret = "APP_CLUSTER_SECRET"

// validate checks every setting and fills in the parsed forms, returning
// all problems at once so an operator fixes them in one go.
func (c *config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.Debug != 0 && c.Debug != 1 {
		bad("--debug must be 0 or 1, not %d", c.Debug)
	}
	for name, addr := range map[string]string{"--public-addr": c.PublicAddr, "--private-addr": c.PrivateAddr, "--gossip-addr": c.GossipAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad("%s %q: %v", name, addr, err)
		}
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("--metrics-addr %q: %v", c.MetricsAddr, err)
		}
	}
	if c.DebugAddr != "" {
		if _, _, err := net.SplitHostPort(c.DebugAddr); err != nil {
			bad("--debug-addr %q: %v", c.DebugAddr, err)
		}
	}
	var nodes []string
	for _, n := range c.Nodes {
		for _, part := range strings.Split(n, ",") {
			if part = strings.TrimSpace(part); part != "" {
				nodes = append(nodes, part)
			}
		}
	}
	c.Nodes = nodes
	if c.StateDir == "" || c.FilesDir == "" {
		bad("--state-dir and --files-dir must not be empty")
	}
	if c.Bucket == "" && c.RemoteDir == "" {
		bad("either --bucket or --remote-dir must be set")
	}
	if c.Bucket == "" && (c.Endpoint != "" && c.OriginBuckets == "" || c.Prefix != "") {
		bad("--s3-endpoint and --s3-prefix need --bucket (or, for the endpoint, --origin-buckets)")
	}
	if strings.HasPrefix(c.Prefix, "/") {
		bad("--s3-prefix %q must not start with /", c.Prefix)
	}
	var err error
	if c.MaxObjectSize != "" {
		if c.maxObjectSize, err = parseBytes(c.MaxObjectSize); err != nil || c.maxObjectSize <= 0 {
			bad("--max-object-size %q: want a positive size such as 5368709120 or 5GiB", c.MaxObjectSize)
		}
	}
	if c.scrubInterval, err = time.ParseDuration(c.ScrubInterval); err != nil {
		bad("--scrub-interval %q: %v", c.ScrubInterval, err)
	}
	if c.scrubRate, err = parseBytes(c.ScrubRate); err != nil || c.scrubRate <= 0 {
		bad("--scrub-rate %q: want a positive size per second such as 32MiB", c.ScrubRate)
	}
	if c.s3PartSize, err = parseBytes(c.S3PartSize); err != nil || c.s3PartSize < 5<<20 {
		bad("--s3-part-size %q: want at least 5MiB, the S3 minimum", c.S3PartSize)
	}
	if c.S3Concurrency < 1 {
		bad("--s3-concurrency must be at least 1")
	}
	if c.s3Timeout, err = time.ParseDuration(c.S3Timeout); err != nil || c.s3Timeout <= 0 {
		bad("--s3-timeout %q: want a positive duration such as 30s", c.S3Timeout)
	}
	if c.MaxUploads < 1 {
		bad("--max-uploads must be at least 1")
	}
	if c.shutdownGrace, err = time.ParseDuration(c.ShutdownGrace); err != nil || c.shutdownGrace < 0 {
		bad("--shutdown-grace %q: want a duration such as 30s", c.ShutdownGrace)
	}
	c.validateSecurity(bad)
	if c.MaxConns < 1 || c.MaxConnsPerClient < 1 {
		bad("--max-connections and --max-connections-per-client must be at least 1")
	}
	if c.minBodyRate, err = parseBytes(c.MinBodyRate); err != nil || c.minBodyRate < 1 {
		bad("--min-body-rate %q: want a size per second such as 16KiB", c.MinBodyRate)
	}
	if c.MaxDisk != "" {
		if p, ok := strings.CutSuffix(strings.TrimSpace(c.MaxDisk), "%"); ok {
			v, err := strconv.ParseFloat(p, 64)
			if err != nil || v <= 0 || v > 100 {
				bad("--max-disk %q: a percentage must be above 0 and at most 100", c.MaxDisk)
			}
			c.maxDiskPercent = v
		} else if c.maxDiskBytes, err = parseBytes(c.MaxDisk); err != nil || c.maxDiskBytes <= 0 {
			bad("--max-disk %q: want a size such as 8388608 or 8MiB, or a percentage such as 80%%", c.MaxDisk)
		}
	}
	if c.fetchPartSize, err = parseBytes(c.FetchPartSize); err != nil || c.fetchPartSize < 64<<10 {
		bad("--fetch-part-size %q: want at least 64KiB", c.FetchPartSize)
	}
	if c.memoryCache, err = parseBytes(c.MemoryCache); err != nil || c.memoryCache < 0 {
		bad("--memory-cache %q: want a size such as 16MiB, or 0 for none", c.MemoryCache)
	} else if c.memoryCache == 0 {
		c.memoryCache = -1 // the node's zero is its default
	}
	if c.FetchParallel < 1 {
		bad("--fetch-concurrency must be at least 1")
	}
	if c.ReadAhead < 0 || c.ReadAhead > 64 {
		bad("--read-ahead must be 0 to 64 parts")
	}
	if c.drainDelay, err = time.ParseDuration(c.DrainDelay); err != nil || c.drainDelay < 0 {
		bad("--drain-delay %q: want a duration such as 3s", c.DrainDelay)
	}
	if c.CachePolicy != "" {
		if _, err := cache.New(c.CachePolicy, 1); err != nil {
			bad("--cache-policy: %v", err)
		}
	}
	if c.CacheTTL != "" {
		if c.cacheTTL, err = time.ParseDuration(c.CacheTTL); err != nil || c.cacheTTL <= 0 {
			bad("--cache-ttl %q: want a positive duration such as 90s or 24h", c.CacheTTL)
		}
	}
	if c.OriginBuckets != "" {
		for b := range strings.SplitSeq(c.OriginBuckets, ",") {
			if b = strings.TrimSpace(b); b != "" {
				c.originBuckets = append(c.originBuckets, b)
			}
		}
		if slices.Contains(c.originBuckets, "*") && len(c.originBuckets) > 1 {
			bad("--origin-buckets %q: '*' serves every bucket and stands alone", c.OriginBuckets)
		}
	}
	if c.S3APIAddr != "" {
		if _, _, err := net.SplitHostPort(c.S3APIAddr); err != nil {
			bad("--s3-api-addr %q: %v", c.S3APIAddr, err)
		}
		if len(c.originBuckets) == 0 {
			bad("--s3-api-addr serves the keys of --origin-buckets: give some")
		}
		if c.CredentialsFile == "" {
			bad("--s3-api-addr needs --credentials-file: S3 clients sign every request with an access key")
		}
		if c.S3APILevel != 1 && c.S3APILevel != 2 {
			bad("--s3-api-level %d: writes through the S3 endpoint are level 1 or 2", c.S3APILevel)
		}
	}
	for b := range strings.SplitSeq(c.S3PublicRead, ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.s3PublicRead = append(c.s3PublicRead, b)
		}
	}
	if c.revalidate, err = node.ParseRevalidation(c.Revalidate); err != nil {
		bad("--revalidate: %v", err)
	}
	if c.MissTTL != "" {
		if c.missTTL, err = time.ParseDuration(c.MissTTL); err != nil || c.missTTL < 0 {
			bad("--miss-ttl %q: want a duration such as 1m (0 remembers no miss)", c.MissTTL)
		} else if c.missTTL == 0 {
			c.missTTL = -1 // the node's 0 means its default
		}
	}
	if c.GossipProfile != "lan" && c.GossipProfile != "local" {
		bad("--gossip-profile %q: want lan or local", c.GossipProfile)
	}
	if c.syncInterval, err = time.ParseDuration(c.SyncInterval); err != nil || c.syncInterval <= 0 {
		bad("--sync-interval %q: want a positive duration such as 30s", c.SyncInterval)
	}
	if c.tombstoneTTL, err = time.ParseDuration(c.TombstoneTTL); err != nil || c.tombstoneTTL < time.Minute {
		bad("--tombstone-ttl %q: want a duration of at least 1m, such as 168h", c.TombstoneTTL)
	}
	if c.AdvertiseHost != "" && net.ParseIP(c.AdvertiseHost) == nil && strings.ContainsAny(c.AdvertiseHost, ":/ ") {
		bad("--advertise-host %q: want an IP address or host name, without a port", c.AdvertiseHost)
	}
	return errors.Join(errs...)
}

// validateSecurity checks the cluster's and the public API's security
// settings and reads the cluster secret.
func (c *config) validateSecurity(bad func(string, ...any)) {
	var err error
	if c.maxClockOffset, err = time.ParseDuration(c.MaxClockOffset); err != nil || c.maxClockOffset <= 0 {
		bad("--max-clock-offset %q: want a positive duration such as 500ms", c.MaxClockOffset)
	}
	env := strings.TrimSpace(os.Getenv(envClusterSecret))
	switch {
	case c.ClusterSecretFile != "" && env != "":
		bad("give the cluster secret either in --cluster-secret-file or in $%s, not both", envClusterSecret)
	case c.ClusterSecretFile != "":
		b, err := os.ReadFile(c.ClusterSecretFile)
		if err != nil {
			bad("--cluster-secret-file: %v", err)
			break
		}
		if c.clusterSecret, err = parseSecret(string(b)); err != nil {
			bad("--cluster-secret-file %s: %v", c.ClusterSecretFile, err)
		}
	case env != "":
		if c.clusterSecret, err = parseSecret(env); err != nil {
			bad("$%s: %v", envClusterSecret, err)
		}
	}
	tlsSet := 0
	for _, f := range []string{c.ClusterCA, c.NodeCert, c.NodeKey} {
		if f != "" {
			tlsSet++
		}
	}
	if tlsSet != 0 && tlsSet != 3 {
		bad("--cluster-ca, --node-cert and --node-key go together: give all three for mutual TLS between nodes")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("--tls-cert and --tls-key go together")
	}
	if !c.clusterSecured() && !c.InsecureCluster {
		for name, addr := range map[string]string{"--private-addr": c.PrivateAddr, "--gossip-addr": c.GossipAddr} {
			if !loopback(addr) {
				bad("%s %s is reachable from the network, but the cluster is not secured: give a cluster secret "+
					"(--cluster-secret-file or $%s; make one with `objstore keygen`) or mutual TLS (--cluster-ca, --node-cert, --node-key), "+
					"or --insecure-cluster to run without (see docs/security.md)", name, addr, envClusterSecret)
			}
		}
	}
}

// clusterSecured reports whether node-to-node traffic is authenticated.
func (c *config) clusterSecured() bool { return c.clusterSecret != nil || c.ClusterCA != "" }

// loopback reports whether a listen address accepts only local
// connections.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseSecret reads a cluster secret: base64 of at least
// cluster.MinSecretBytes bytes, as `objstore keygen` prints.
func parseSecret(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("the cluster secret must be base64 (make one with `objstore keygen`)")
	}
	if len(b) < cluster.MinSecretBytes {
		return nil, fmt.Errorf("the cluster secret is %d bytes; at least %d are needed (make one with `objstore keygen`)", len(b), cluster.MinSecretBytes)
	}
	return b, nil
}

// diskQuota returns --max-disk in bytes, turning a percentage into bytes of
// the files directory's filesystem; zero means no quota.
func (c *config) diskQuota() (int64, error) {
	if c.maxDiskPercent == 0 {
		return c.maxDiskBytes, nil
	}
	if err := os.MkdirAll(c.FilesDir, 0o750); err != nil {
		return 0, fmt.Errorf("files directory: %w", err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(c.FilesDir, &st); err != nil {
		return 0, fmt.Errorf("--max-disk %s: size of %s: %w", c.MaxDisk, c.FilesDir, err)
	}
	return int64(float64(st.Blocks*uint64(st.Bsize)) * c.maxDiskPercent / 100), nil
}

// advertise turns a listen address into the address peers use to reach
// it: the listen port on --advertise-host, or on the listen host when that
// is a specific address, or else on this machine's first private IP.
func (c *config) advertise(listen string) string {
	host, port, _ := net.SplitHostPort(listen)
	switch {
	case c.AdvertiseHost != "":
		host = c.AdvertiseHost
	case host == "" || host == "0.0.0.0" || host == "::":
		host = outboundIP()
	}
	return net.JoinHostPort(host, port)
}

// outboundIP returns the one address this node advertises for every
// listener on a wildcard address: the machine's first non-loopback IPv4
// address, or on a machine without one its first global IPv6 address, or
// 127.0.0.1. One address for all, so that peers reach every port of a node
// through the same family.
func outboundIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "127.0.0.1"
	}
	var v6 string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() {
			continue
		}
		if ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
		if v6 == "" && ipn.IP.IsGlobalUnicast() {
			v6 = ipn.IP.String()
		}
	}
	if v6 != "" {
		return v6
	}
	return "127.0.0.1"
}

// parseBytes reads a size: a number of bytes, optionally with a unit. KiB,
// MiB, GiB and TiB (and K, M, G, T) are powers of 1024; KB, MB, GB and TB
// are powers of 1000.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	mult := map[string]float64{
		"": 1, "B": 1,
		"K": 1 << 10, "KiB": 1 << 10, "KB": 1e3,
		"M": 1 << 20, "MiB": 1 << 20, "MB": 1e6,
		"G": 1 << 30, "GiB": 1 << 30, "GB": 1e9,
		"T": 1 << 40, "TiB": 1 << 40, "TB": 1e12,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q in size %q", unit, s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	if v*mult > float64(1<<62) {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(v * mult), nil
}
