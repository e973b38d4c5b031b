package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/journal"
)

// Replica is one side of anti-entropy: a node's journal, reached directly
// (the local node) or through the private API (a peer). Implementations
// are safe for concurrent use.
type Replica interface {
	// TreeChildren returns the journal.TreeFanout children of each node at
	// level of the journal's hash tree, in order.
	TreeChildren(ctx context.Context, level int, nodes []uint32) ([]journal.TreeNode, error)
	// Summaries returns the (ID, version) of every entry in the leaves.
	Summaries(ctx context.Context, leaves []uint16) ([]journal.Summary, error)
	// Entries returns the entries of ids that the replica holds.
	Entries(ctx context.Context, ids []ulid.ULID) ([]journal.Entry, error)
	// Merge applies entries last writer wins and returns how many were
	// newer than what the replica held.
	Merge(ctx context.Context, entries []journal.Entry) (int, error)
}

// SyncStats describes one anti-entropy round.
type SyncStats struct {
	// Leaves is the number of hash-tree leaves whose digests differed.
	Leaves int
	// Pulled and Pushed count the entries sent each way; Applied counts
	// those the receiving side found newer than its own.
	Pulled, Pushed, Applied int
	Elapsed                 time.Duration
}

// batch sizes for the calls of one round; each message stays within
// MaxBatch items.
const (
	treeBatch  = 1024 // nodes per tree request: 16 KiB of digests back
	leafBatch  = 1024 // leaves per summaries request
	entryBatch = 2048 // entries per message
)

// Sync brings local and remote to the same journal: it walks both hash trees
// from the root, descending only into nodes whose digests differ, compares
// the (ID, version) summaries of the leaves that differ, and sends each side
// the entries it lacks or holds older. Its cost is proportional to the
// number of differing leaves, not to the journals' size. Both sides merge
// last writer wins, so a round that races with new writes never undoes
// them; the next round picks up whatever changed meanwhile.
func Sync(ctx context.Context, local, remote Replica) (SyncStats, error) {
	start := time.Now()
	var st SyncStats
	nodes := []uint32{0}
	for level := 0; level < journal.TreeDepth && len(nodes) > 0; level++ {
		var next []uint32
		for chunk := range Chunks(nodes, treeBatch) {
			mine, err := local.TreeChildren(ctx, level, chunk)
			if err != nil {
				return st, fmt.Errorf("sync: local tree: %w", err)
			}
			theirs, err := remote.TreeChildren(ctx, level, chunk)
			if err != nil {
				return st, fmt.Errorf("sync: remote tree: %w", err)
			}
			if len(mine) != len(theirs) {
				return st, fmt.Errorf("sync: tree answers of %d and %d nodes: %w", len(mine), len(theirs), ErrBadMessage)
			}
			for i := range mine {
				if mine[i] != theirs[i] {
					next = append(next, chunk[i/journal.TreeFanout]*journal.TreeFanout+uint32(i%journal.TreeFanout))
				}
			}
		}
		nodes = next
	}
	st.Leaves = len(nodes)
	var pull, push []ulid.ULID
	for chunk := range Chunks(nodes, leafBatch) {
		leaves := make([]uint16, len(chunk))
		for i, n := range chunk {
			leaves[i] = uint16(n)
		}
		mine, err := local.Summaries(ctx, leaves)
		if err != nil {
			return st, fmt.Errorf("sync: local summaries: %w", err)
		}
		theirs, err := remote.Summaries(ctx, leaves)
		if err != nil {
			return st, fmt.Errorf("sync: remote summaries: %w", err)
		}
		have := make(map[ulid.ULID]journal.Version, len(mine))
		for _, s := range mine {
			have[s.ID] = s.Version
		}
		for _, s := range theirs {
			v, ok := have[s.ID]
			switch {
			case !ok || s.Version.Compare(v) > 0:
				pull = append(pull, s.ID)
			case s.Version.Compare(v) < 0:
				push = append(push, s.ID)
			}
			delete(have, s.ID)
		}
		for id := range have {
			push = append(push, id)
		}
	}
	n, err := transfer(ctx, remote, local, pull)
	st.Pulled += n.sent
	st.Applied += n.applied
	if err != nil {
		return st, fmt.Errorf("sync: pull: %w", err)
	}
	n, err = transfer(ctx, local, remote, push)
	st.Pushed += n.sent
	st.Applied += n.applied
	if err != nil {
		return st, fmt.Errorf("sync: push: %w", err)
	}
	st.Elapsed = time.Since(start)
	return st, nil
}

type transferred struct{ sent, applied int }

// transfer copies the entries of ids from one replica to the other.
func transfer(ctx context.Context, from, to Replica, ids []ulid.ULID) (transferred, error) {
	var t transferred
	for chunk := range Chunks(ids, entryBatch) {
		entries, err := from.Entries(ctx, chunk)
		if err != nil {
			return t, err
		}
		if len(entries) == 0 {
			continue
		}
		applied, err := to.Merge(ctx, entries)
		if err != nil {
			return t, err
		}
		t.sent += len(entries)
		t.applied += applied
	}
	return t, nil
}

// Chunks yields s in consecutive pieces of at most n elements, for
// sending long lists in bounded messages.
func Chunks[T any](s []T, n int) func(func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}
