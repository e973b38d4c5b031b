package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/oklog/ulid/v2"
	"golang.org/x/sync/errgroup"

	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// Operations on many keys of an origin bucket at once: by prefix, as
// cachenator's delete?prefix= and invalidation, and pre-warming.

// Limits of the operations on a prefix.
const (
	// maxDeletePrefix bounds the keys one delete by prefix removes; a
	// larger prefix answers More and the client repeats the call.
	maxDeletePrefix = 10_000
	// prefixWorkers bounds the deletes a delete by prefix runs at once.
	prefixWorkers = 8
	// maxPrefixErrors bounds the errors a result reports.
	maxPrefixErrors = 10
)

// PrefixResult says what an operation on the keys under a prefix did.
type PrefixResult struct {
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix"`
	// Deleted counts the keys a delete by prefix removed from the bucket
	// and the cluster.
	Deleted int `json:"deleted,omitempty"`
	// Dropped counts, per node ID, the copies an invalidation dropped.
	Dropped map[string]int `json:"dropped,omitempty"`
	// Failed counts the keys the operation failed on, and Errors gives
	// the first reasons (key: reason), and the nodes that could not be
	// reached (node ID: reason).
	Failed int               `json:"failed,omitempty"`
	Errors map[string]string `json:"errors,omitempty"`
	// More says the prefix holds more keys than one call handles: call
	// again for the rest.
	More bool `json:"more,omitempty"`
}

func (r *PrefixResult) fail(what string, err error) {
	r.Failed++
	if r.Errors == nil {
		r.Errors = map[string]string{}
	}
	if len(r.Errors) < maxPrefixErrors {
		r.Errors[what] = err.Error()
	}
}

// checkPrefix validates an origin bucket and a key prefix (empty: every
// key) and returns the bucket's origin.
func (n *Node) checkPrefix(bucket, prefix string) (storage.Origin, error) {
	// Any valid key stands in for the check of the bucket alone.
	o, err := n.origin(bucket, "k")
	if err != nil {
		return nil, err
	}
	if len(prefix) > storage.MaxRemoteKeyLen {
		return nil, fmt.Errorf("%w: prefix longer than %d bytes", ErrInvalid, storage.MaxRemoteKeyLen)
	}
	if err := storage.CheckListOptions(storage.ListOptions{Prefix: prefix}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return o, nil
}

// walkBatch bounds the key-addressed entries one read transaction of a walk
// under a prefix visits, so that a walk holds neither a transaction open
// nor entries in memory for every key (other entries are skipped without
// being decoded).
var walkBatch = 1000

// eachCachedUnder calls fn with the live key-addressed entries of bucket
// whose keys start with prefix, walkBatch at a time, each batch read in a
// transaction of its own, until the journal is walked, fn fails, or ctx
// ends.
func (n *Node) eachCachedUnder(ctx context.Context, bucket, prefix string, fn func([]journal.Entry) error) error {
	var from ulid.ULID
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var batch []journal.Entry
		done, visited := true, 0
		err := n.journal.View(func(tx *journal.Tx) error {
			return tx.ForEachKeyed(from, func(e journal.Entry) error {
				if visited == walkBatch {
					from, done = e.ID, false
					return errStopWalk
				}
				visited++
				if e.Bucket == bucket && strings.HasPrefix(e.Key, prefix) {
					batch = append(batch, e)
				}
				return nil
			})
		})
		if err != nil && !errors.Is(err, errStopWalk) {
			return fmt.Errorf("node: walk the journal: %w", err)
		}
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

// listUnder lists the keys of bucket under prefix from its origin, at most
// limit, and reports whether there were more.
func listUnder(ctx context.Context, o storage.Origin, bucket, prefix string, limit int) ([]string, bool, error) {
	var keys []string
	opts := storage.ListOptions{Prefix: prefix}
	for {
		page, err := o.List(ctx, opts)
		if err != nil {
			return nil, false, remoteErr("list "+bucket, err)
		}
		for _, obj := range page.Objects {
			if len(keys) == limit {
				return keys, true, nil
			}
			keys = append(keys, obj.Key)
		}
		if page.Next == "" {
			return keys, false, nil
		}
		opts.After = page.Next
	}
}

// DeletePrefix deletes every key of bucket under prefix, which must not be
// empty: the keys its origin lists and those the cluster has cached, each
// as DeleteKey does (from the bucket first, then by a tombstone). One call
// deletes at most maxDeletePrefix keys; More asks for another call.
func (n *Node) DeletePrefix(ctx context.Context, bucket, prefix string) (PrefixResult, error) {
	res := PrefixResult{Bucket: bucket, Prefix: prefix}
	if n.closed.Load() {
		return res, ErrClosed
	}
	if err := n.writable(); err != nil {
		return res, err
	}
	if prefix == "" {
		return res, fmt.Errorf("%w: a delete by prefix needs a prefix; deleting a whole bucket is the bucket's owner's call", ErrInvalid)
	}
	o, err := n.checkPrefix(bucket, prefix)
	if err != nil {
		return res, err
	}
	keys, more, err := listUnder(ctx, o, bucket, prefix, maxDeletePrefix)
	if err != nil {
		return res, err
	}
	// Keys cached here but gone from the listing (deleted in the bucket
	// by another program) are deleted too, within the same bound.
	listed := make(map[string]bool, len(keys))
	for _, k := range keys {
		listed[k] = true
	}
	errFull := errors.New("full")
	err = n.eachCachedUnder(ctx, bucket, prefix, func(batch []journal.Entry) error {
		for _, e := range batch {
			if listed[e.Key] {
				continue
			}
			if len(keys) == maxDeletePrefix {
				more = true
				return errFull
			}
			listed[e.Key] = true
			keys = append(keys, e.Key)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		return res, err
	}
	res.More = more
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(prefixWorkers)
	for _, k := range keys {
		if gctx.Err() != nil {
			break // a failure stopped the batch: the rest is for the next call
		}
		g.Go(func() error {
			_, err := n.DeleteKey(gctx, bucket, k)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.fail(k, err)
				if errors.Is(err, ErrRemoteUnavailable) {
					return err // the rest would fail alike: stop
				}
				return nil
			}
			res.Deleted++
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		res.More = true
	}
	n.log.Info("delete by prefix", "bucket", bucket, "prefix", prefix, "deleted", res.Deleted, "failed", res.Failed, "more", res.More)
	return res, nil
}

// KeyInvalidation names the keys an invalidation drops: one Key, or every
// key under Prefix.
type KeyInvalidation struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key,omitempty"`
	Prefix string `json:"prefix,omitempty"`
}

// InvalidateKeys drops the cached copies of the keys inv names on this
// node and, with everywhere, on every live peer, keeping their entries:
// the next read fetches each afresh from its origin (comparing ETags, so a
// changed object replaces the entry). The bucket is not touched. A key the
// cluster has not cached is no error; nothing is dropped.
func (n *Node) InvalidateKeys(ctx context.Context, inv KeyInvalidation, everywhere bool) (PrefixResult, error) {
	res := PrefixResult{Bucket: inv.Bucket, Prefix: inv.Prefix, Dropped: map[string]int{}}
	if n.closed.Load() {
		return res, ErrClosed
	}
	if inv.Key != "" {
		if inv.Prefix != "" {
			return res, fmt.Errorf("%w: invalidate a key or a prefix, not both", ErrInvalid)
		}
		if _, err := n.origin(inv.Bucket, inv.Key); err != nil {
			return res, err
		}
	} else if _, err := n.checkPrefix(inv.Bucket, inv.Prefix); err != nil {
		return res, err
	}
	dropped, err := n.dropKeys(ctx, inv)
	if err != nil {
		return res, err
	}
	res.Dropped[n.id.String()] = dropped
	if !everywhere {
		return res, nil
	}
	var mu sync.Mutex
	eachPeer(n.peers(ulid.ULID{}), func(_ int, p cluster.Member) {
		var got PrefixResult
		err := n.cl.client.Peer(p.PrivateAddr).CallJSON(ctx, "POST", cluster.PathInvalidateKeys, inv, &got)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			res.fail(p.ID.String(), err)
			return
		}
		res.Dropped[p.ID.String()] = got.Dropped[p.ID.String()]
	})
	return res, nil
}

// dropKeys drops this node's copies of the keys inv names (all safe in
// their origin) and counts them.
func (n *Node) dropKeys(ctx context.Context, inv KeyInvalidation) (int, error) {
	if inv.Key != "" {
		if dropped, _ := n.DropCopy(ctx, journal.KeyID(inv.Bucket, inv.Key)); dropped {
			return 1, nil
		}
		return 0, nil
	}
	dropped := 0
	err := n.eachCachedUnder(ctx, inv.Bucket, inv.Prefix, func(batch []journal.Entry) error {
		for _, e := range batch {
			if d, _ := n.DropCopy(ctx, e.ID); d {
				dropped++
			}
		}
		return nil
	})
	return dropped, err
}

// warmKey loads the object at bucket/key into this node unless it holds it
// already, by reading it as a client would (so freshness rules and fill
// routing apply), and reports whether it loaded it and how many bytes.
func (n *Node) warmKey(ctx context.Context, bucket, key string) (bool, int64, error) {
	e, b, err := n.lookup(journal.KeyID(bucket, key))
	if err == nil && !e.Deleted && b != nil {
		return false, 0, nil
	}
	obj, err := n.getKey(ctx, bucket, key, nil, false)
	if err != nil {
		return false, 0, err
	}
	defer obj.Close()
	if obj.Source == SourceLocal {
		return false, 0, nil
	}
	got, err := io.Copy(io.Discard, obj.Content)
	if err != nil {
		return false, 0, err
	}
	return true, got, nil
}
