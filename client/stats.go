package client

import "context"

// Stats is a node's state and its work since it started, as
// GET /api/v1/stats reports it (the same figures as its Prometheus
// metrics).
type Stats struct {
	NodeID string `json:"node_id"`
	// Remote names the remote store ("s3://bucket/prefix/").
	Remote string `json:"remote"`
	// Quota is --max-disk in bytes; 0 when there is none.
	Quota   int64        `json:"quota"`
	Journal JournalStats `json:"journal"`
	Traffic Traffic      `json:"traffic"`
	// RepairBacklog counts the bodies the node should hold and does not
	// yet.
	RepairBacklog int              `json:"repair_backlog"`
	MemoryCache   MemoryCacheStats `json:"memory_cache"`
	Fills         FillStats        `json:"fills"`
	Sync          SyncCounts       `json:"sync"`
	Members       map[string]int   `json:"members"`
	PeerBytesSent int64            `json:"peer_bytes_sent"`
	PeerBytesRecv int64            `json:"peer_bytes_received"`
	// Filesystem describes the files directory's filesystem; Disk says
	// the same in the original objstore's units.
	Filesystem Filesystem `json:"filesystem"`
	Disk       DiskStats  `json:"disk_stats"`
}

// Filesystem is the size, free space (available to the node) and use of
// a filesystem, in bytes.
type Filesystem struct {
	Total uint64 `json:"total"`
	Free  uint64 `json:"free"`
	Used  uint64 `json:"used"`
}

// JournalStats counts the objects the cluster knows and the bodies the
// node holds.
type JournalStats struct {
	Objects    int64 `json:"objects"`
	Bytes      int64 `json:"bytes"`
	Tombstones int64 `json:"tombstones"`
	// LocalObjects and LocalBytes are the bodies held on the node's disk.
	LocalObjects int64 `json:"local_objects"`
	LocalBytes   int64 `json:"local_bytes"`
	// SparseObjects and SparseBytes are the objects of which the node
	// holds some parts only (ranged reads asked for them), and those
	// parts' bytes.
	SparseObjects int64 `json:"sparse_objects"`
	SparseBytes   int64 `json:"sparse_bytes"`
}

// Traffic counts a node's work since it started.
type Traffic struct {
	HitsLocal      int64 `json:"hits_local"`
	HitsMemory     int64 `json:"hits_memory"`
	HitsPeer       int64 `json:"hits_peer"`
	HitsRemote     int64 `json:"hits_remote"`
	Misses         int64 `json:"misses"`
	BytesLocal     int64 `json:"bytes_local"`
	BytesPeer      int64 `json:"bytes_peer"`
	BytesRemote    int64 `json:"bytes_remote"`
	Evictions      int64 `json:"evictions"`
	Fetches        int64 `json:"fetches"`
	FetchErrors    int64 `json:"fetch_errors"`
	Coalesced      int64 `json:"coalesced"`
	Puts           int64 `json:"puts"`
	PutErrors      int64 `json:"put_errors"`
	Deletes        int64 `json:"deletes"`
	RemoteUploads  int64 `json:"remote_uploads"`
	RemoteGets     int64 `json:"remote_gets"`
	Scrubbed       int64 `json:"scrubbed"`
	ScrubDamaged   int64 `json:"scrub_damaged"`
	ReadDamaged    int64 `json:"read_damaged"`
	Repairs        int64 `json:"repairs"`
	RepairErrors   int64 `json:"repair_errors"`
	OwnerFills     int64 `json:"owner_fills"`
	OwnerFallbacks int64 `json:"owner_fallbacks"`
	FillsForPeers  int64 `json:"fills_for_peers"`
	MergeRefused   int64 `json:"merge_refused"`
	Resealed       int64 `json:"resealed"`
	// SparseReads counts GETs served through a sparse copy,
	// RangedRemoteBytes the bytes their part fetches pulled from the
	// remote, SparseAssembled the sparse copies that became whole.
	SparseReads       int64 `json:"sparse_reads"`
	RangedRemoteBytes int64 `json:"ranged_remote_bytes"`
	SparseAssembled   int64 `json:"sparse_assembled"`
}

// MemoryCacheStats describes the memory cache of small bodies.
type MemoryCacheStats struct {
	Bodies int   `json:"bodies"`
	Bytes  int64 `json:"bytes"`
	Budget int64 `json:"budget"`
}

// FillStats counts the fetches under way and the reads following them.
type FillStats struct {
	InFlight int `json:"in_flight"`
	Readers  int `json:"readers"`
}

// SyncCounts counts anti-entropy rounds and the entries they moved.
type SyncCounts struct {
	Rounds   int64 `json:"rounds"`
	Failures int64 `json:"failures"`
	Pulled   int64 `json:"pulled"`
	Pushed   int64 `json:"pushed"`
	Applied  int64 `json:"applied"`
}

// DiskStats describes the filesystem of the node's files directory; Free
// is what the node may still use.
type DiskStats struct {
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

// Stats returns the node's stats.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := c.call(ctx, request{op: "stats", method: "GET", path: "/api/v1/stats"}, &s)
	return s, err
}
