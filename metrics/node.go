package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/objstore/objstore/node"
)

// nodeCollector turns node.Stats into metrics at each scrape, so that the
// metrics and /api/v1/stats are the same counters read at different times.
type nodeCollector struct {
	stats func(context.Context) (node.Stats, error)
}

// stat is one metric read from node.Stats: its description, type, and
// how to read its value (labels, when the description has any, by
// labeled).
type stat struct {
	desc    *prometheus.Desc
	kind    prometheus.ValueType
	value   func(*node.Stats) float64
	labeled func(*node.Stats) map[string]float64
}

func counter(name, help string, v func(*node.Stats) int64) stat {
	return stat{desc: prometheus.NewDesc(name, help, nil, nil), kind: prometheus.CounterValue,
		value: func(s *node.Stats) float64 { return float64(v(s)) }}
}

func gauge(name, help string, v func(*node.Stats) float64) stat {
	return stat{desc: prometheus.NewDesc(name, help, nil, nil), kind: prometheus.GaugeValue, value: v}
}

func labeled(name, help, label string, kind prometheus.ValueType, v func(*node.Stats) map[string]float64) stat {
	return stat{desc: prometheus.NewDesc(name, help, []string{label}, nil), kind: kind, labeled: v}
}

var nodeStats = []stat{
	labeled("objstore_hits_total", "Reads of a whole or ranged body served, by where the body came from: local (this node's disk or memory), peer, or remote (S3 or the remote directory). Reads served local or peer are S3 requests saved.",
		"source", prometheus.CounterValue, func(s *node.Stats) map[string]float64 {
			t := &s.Traffic
			return map[string]float64{"local": float64(t.HitsLocal), "peer": float64(t.HitsPeer), "remote": float64(t.HitsRemote)}
		}),
	counter("objstore_memory_hits_total", "Local hits served from the memory cache of small bodies (a part of objstore_hits_total{source=\"local\"}).",
		func(s *node.Stats) int64 { return s.Traffic.HitsMemory }),
	counter("objstore_misses_total", "Reads of objects found nowhere (404).", func(s *node.Stats) int64 { return s.Traffic.Misses }),
	labeled("objstore_served_bytes_total", "Body bytes sent to clients, by where the body came from. Bytes served local or peer are S3 egress saved.",
		"source", prometheus.CounterValue, func(s *node.Stats) map[string]float64 {
			t := &s.Traffic
			return map[string]float64{"local": float64(t.BytesLocal), "peer": float64(t.BytesPeer), "remote": float64(t.BytesRemote)}
		}),
	counter("objstore_fetches_total", "Fills started: bodies fetched from a peer or the remote onto this node.",
		func(s *node.Stats) int64 { return s.Traffic.Fetches }),
	counter("objstore_fetch_errors_total", "Fills that failed.", func(s *node.Stats) int64 { return s.Traffic.FetchErrors }),
	counter("objstore_fetches_coalesced_total", "Reads that joined a fill already under way instead of fetching the body again.",
		func(s *node.Stats) int64 { return s.Traffic.Coalesced }),
	gauge("objstore_fills_in_flight", "Fills under way now.", func(s *node.Stats) float64 { return float64(s.Fills.InFlight) }),
	gauge("objstore_fill_readers", "Client GETs following a fill as it streams in, now.", func(s *node.Stats) float64 { return float64(s.Fills.Readers) }),
	counter("objstore_puts_total", "Writes acknowledged.", func(s *node.Stats) int64 { return s.Traffic.Puts }),
	counter("objstore_put_errors_total", "Writes that failed.", func(s *node.Stats) int64 { return s.Traffic.PutErrors }),
	counter("objstore_deletes_total", "Deletes applied.", func(s *node.Stats) int64 { return s.Traffic.Deletes }),
	counter("objstore_remote_gets_total", "Reads of bodies from the remote tier (objstore_s3_requests_total counts every request sent to S3, origin buckets included).",
		func(s *node.Stats) int64 { return s.Traffic.RemoteGets }),
	counter("objstore_remote_uploads_total", "Bodies written to the remote tier.", func(s *node.Stats) int64 { return s.Traffic.RemoteUploads }),
	counter("objstore_evictions_total", "Bodies evicted to stay under the disk quota.", func(s *node.Stats) int64 { return s.Traffic.Evictions }),
	counter("objstore_scrub_checked_total", "Local bodies the scrub verified against their checksums.",
		func(s *node.Stats) int64 { return s.Traffic.Scrubbed }),
	counter("objstore_scrub_damaged_total", "Local bodies the scrub found damaged and dropped (fetched again where another copy exists).",
		func(s *node.Stats) int64 { return s.Traffic.ScrubDamaged }),
	counter("objstore_read_damaged_total", "Local bodies a read found damaged and dropped.",
		func(s *node.Stats) int64 { return s.Traffic.ReadDamaged }),
	counter("objstore_resealed_total", "Bodies the scrub rewrote under the primary encryption key.",
		func(s *node.Stats) int64 { return s.Traffic.Resealed }),
	counter("objstore_repairs_total", "Bodies this node pulled to hold the copies its levels require.",
		func(s *node.Stats) int64 { return s.Traffic.Repairs }),
	counter("objstore_repair_errors_total", "Repairs that failed (retried with backoff).", func(s *node.Stats) int64 { return s.Traffic.RepairErrors }),
	gauge("objstore_repair_backlog", "Bodies this node should hold and does not yet: level-2 copies and repairs pending.",
		func(s *node.Stats) float64 { return float64(s.RepairBacklog) }),
	counter("objstore_owner_fills_total", "Key fills routed to the owning peer and served by it.",
		func(s *node.Stats) int64 { return s.Traffic.OwnerFills }),
	counter("objstore_owner_fallbacks_total", "Key fills fetched from the origin by this node because the owner did not serve them.",
		func(s *node.Stats) int64 { return s.Traffic.OwnerFallbacks }),
	counter("objstore_fills_for_peers_total", "Fills that peers routed to this node as the key's owner.",
		func(s *node.Stats) int64 { return s.Traffic.FillsForPeers }),
	counter("objstore_merge_refused_total", "Journal entries from peers refused as invalid or stamped too far ahead.",
		func(s *node.Stats) int64 { return s.Traffic.MergeRefused }),
	gauge("objstore_objects", "Live objects in the journal (every node knows every object).",
		func(s *node.Stats) float64 { return float64(s.Journal.Objects) }),
	gauge("objstore_objects_bytes", "Total size of the live objects in the journal.",
		func(s *node.Stats) float64 { return float64(s.Journal.Bytes) }),
	gauge("objstore_journal_tombstones", "Deletions the journal still remembers.",
		func(s *node.Stats) float64 { return float64(s.Journal.Tombstones) }),
	gauge("objstore_local_objects", "Bodies held on this node's disk.", func(s *node.Stats) float64 { return float64(s.Journal.Blobs) }),
	gauge("objstore_disk_used_bytes", "Bytes of the bodies and of the sparse copies' parts held on this node's disk, which the quota bounds.",
		func(s *node.Stats) float64 { return float64(s.Journal.BlobBytes + s.Journal.SparseBytes) }),
	gauge("objstore_sparse_objects", "Objects of which this node holds some parts only (sparse copies left by ranged reads).",
		func(s *node.Stats) float64 { return float64(s.Journal.Sparse) }),
	gauge("objstore_sparse_bytes", "Bytes of the parts of sparse copies held on this node's disk, which the quota counts too.",
		func(s *node.Stats) float64 { return float64(s.Journal.SparseBytes) }),
	counter("objstore_sparse_reads_total", "GETs served through a sparse copy: ranged reads of objects not held whole, and reads of objects held sparsely.",
		func(s *node.Stats) int64 { return s.Traffic.SparseReads }),
	counter("objstore_ranged_remote_bytes_total", "Bytes that the part fetches of sparse copies pulled from the remote.",
		func(s *node.Stats) int64 { return s.Traffic.RangedRemoteBytes }),
	counter("objstore_sparse_assembled_total", "Sparse copies that came to hold every part and became whole bodies.",
		func(s *node.Stats) int64 { return s.Traffic.SparseAssembled }),
	gauge("objstore_disk_quota_bytes", "The quota of --max-disk in bytes; 0 when there is none.",
		func(s *node.Stats) float64 { return float64(s.Quota) }),
	gauge("objstore_filesystem_size_bytes", "Size of the filesystem of the files directory.",
		func(s *node.Stats) float64 { return float64(s.Disk.Total) }),
	gauge("objstore_filesystem_free_bytes", "Free space of the filesystem of the files directory (available to unprivileged users).",
		func(s *node.Stats) float64 { return float64(s.Disk.Free) }),
	gauge("objstore_memory_cache_bytes", "Bytes held by the memory cache of small bodies.",
		func(s *node.Stats) float64 { return float64(s.MemoryCache.Bytes) }),
	gauge("objstore_memory_cache_limit_bytes", "The memory cache's budget (--memory-cache).",
		func(s *node.Stats) float64 { return float64(s.MemoryCache.Budget) }),
	counter("objstore_sync_rounds_total", "Anti-entropy rounds run with a peer.", func(s *node.Stats) int64 { return s.Sync.Rounds }),
	counter("objstore_sync_failures_total", "Anti-entropy rounds that failed.", func(s *node.Stats) int64 { return s.Sync.Failures }),
	labeled("objstore_sync_entries_total", "Journal entries anti-entropy moved, by direction: pulled from peers, pushed to them.",
		"direction", prometheus.CounterValue, func(s *node.Stats) map[string]float64 {
			return map[string]float64{"pulled": float64(s.Sync.Pulled), "pushed": float64(s.Sync.Pushed)}
		}),
	counter("objstore_sync_entries_applied_total", "Entries moved by anti-entropy that the receiver found newer than its own.",
		func(s *node.Stats) int64 { return s.Sync.Applied }),
	labeled("objstore_peer_bytes_total", "Bytes of bodies exchanged with peers on the private API, by direction (sent, received).",
		"direction", prometheus.CounterValue, func(s *node.Stats) map[string]float64 {
			return map[string]float64{"sent": float64(s.PeerBytesSent), "received": float64(s.PeerBytesReceived)}
		}),
	labeled("objstore_cluster_members", "Members of the cluster, this node included, by state as this node sees them.",
		"state", prometheus.GaugeValue, func(s *node.Stats) map[string]float64 {
			m := map[string]float64{"alive": 0, "suspect": 0, "dead": 0, "left": 0, "untrusted": 0}
			for state, n := range s.Members {
				m[state] = float64(n)
			}
			return m
		}),
}

// Describe sends every metric's description.
func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, st := range nodeStats {
		ch <- st.desc
	}
}

// Collect reads the node's stats once and sends every metric from them;
// when they cannot be read the scrape fails rather than show zeros.
func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.stats(ctx)
	if err != nil {
		for _, st := range nodeStats {
			ch <- prometheus.NewInvalidMetric(st.desc, err)
		}
		return
	}
	for _, st := range nodeStats {
		if st.labeled == nil {
			ch <- prometheus.MustNewConstMetric(st.desc, st.kind, st.value(&s))
			continue
		}
		for label, v := range st.labeled(&s) {
			ch <- prometheus.MustNewConstMetric(st.desc, st.kind, v, label)
		}
	}
}
