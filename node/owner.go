package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// Fills of key-addressed objects are owned: every node routes the fill of
// a cold key to the live member that cluster.Owner picks for its ID, which
// fetches it from the origin once, however many clients ask however many
// nodes at once, and streams it to each asker as it arrives. The asker
// keeps a copy as from any peer. When the owner cannot be reached (or is
// itself routing the fill elsewhere, while views of the members differ)
// the asker fetches from the origin itself: ownership saves origin
// requests, it never stands between a client and its object.

// fillOwner returns the member that owns the fills of id, when it is not
// this node.
func (n *Node) fillOwner(id ulid.ULID) (cluster.Member, bool) {
	if n.cl == nil || n.cl.members == nil {
		return cluster.Member{}, false
	}
	peers := n.cl.members.Peers()
	if len(peers) == 0 {
		return cluster.Member{}, false
	}
	owner, _ := cluster.Owner(append(peers, n.cl.members.Self()), id)
	if owner.ID == n.id {
		return cluster.Member{}, false
	}
	return owner, true
}

// ownerGetter reads a key-addressed object of one origin bucket through
// the member that owns its fills, falling back to the origin.
type ownerGetter struct {
	n      *Node
	owner  cluster.Member
	bucket string
	origin storage.Origin
	// known is the asker's entry of the object, if any: an owner whose
	// entry is older (it has not heard of a later write yet) is not
	// believed.
	known *journal.Entry

	mu    sync.Mutex // guards entry
	entry *journal.Entry
}

// Get implements storage.Getter, for a fill of the whole object: the
// owner fills it whole too.
func (g *ownerGetter) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, storage.ObjectInfo, error) {
	return g.get(ctx, key, off, length, false)
}

// getPart is Get for a part of a sparse copy: the owner keeps only the
// parts the range touches.
func (g *ownerGetter) getPart(ctx context.Context, key string, off, length int64) (io.ReadCloser, storage.ObjectInfo, error) {
	return g.get(ctx, key, off, length, true)
}

func (g *ownerGetter) get(ctx context.Context, key string, off, length int64, part bool) (io.ReadCloser, storage.ObjectInfo, error) {
	peer := g.n.cl.client.Peer(g.owner.PrivateAddr)
	getKey := peer.GetKey
	if part {
		getKey = peer.GetKeyPart
	}
	resp, e, err := getKey(ctx, g.bucket, key, off, length)
	if err == nil {
		err = g.n.checkOwnerEntry(e, g.bucket, key)
		if err == nil && g.known != nil && e.Version.Compare(g.known.Version) < 0 {
			err = fmt.Errorf("the owner's entry of %s/%s is older than this node's", g.bucket, key)
		}
		if err != nil {
			resp.Body.Close()
		}
	}
	switch {
	case err == nil:
		if off == 0 && length >= 0 && !part { // a fill's first request
			g.n.counters.ownerFills.Add(1)
		}
		g.mu.Lock()
		if g.entry == nil {
			g.entry = &e
		}
		g.mu.Unlock()
		return resp.Body, storage.ObjectInfo{Key: key, Size: e.Size, ModTime: e.LastModified, Meta: e.UserMeta,
			ETag: e.ETag, ContentType: e.ContentType}, nil
	case errors.Is(err, cluster.ErrAbsent):
		return nil, storage.ObjectInfo{}, fmt.Errorf("%w: %s/%s, says its owner %s", storage.ErrNotFound, g.bucket, key, g.owner.ID)
	case ctx.Err() != nil:
		return nil, storage.ObjectInfo{}, ctx.Err()
	}
	g.n.log.Debug("owner of a fill did not serve it; fetching from the origin", "bucket", g.bucket, "key", key,
		"owner", g.owner.ID, "err", err)
	g.n.counters.ownerFallbacks.Add(1)
	return g.origin.Get(ctx, key, off, length)
}

// ownerEntry returns the owner's entry of the object, once its first answer
// came from the owner rather than the origin.
func (g *ownerGetter) ownerEntry() *journal.Entry {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.entry
}

// checkOwnerEntry validates the entry a fill's owner sent with the body of
// bucket/key, like any peer's: it must describe that key, live.
func (n *Node) checkOwnerEntry(e journal.Entry, bucket, key string) error {
	if e.Deleted || e.Bucket != bucket || e.Key != key {
		return fmt.Errorf("%w: the owner's entry %s does not describe %s/%s", ErrInvalid, e.ID, bucket, key)
	}
	return n.checkEntry(e)
}

// FillKey serves bucket/key to the peer that routed its fill here, for a
// read of rng (nil: all of it): as GetKey, but a fill it starts goes to the origin rather than being
// routed on. It returns the journal's entry of the object served, for the
// asker to adopt. Errors are GetKey's, or ErrMisdirected when this node
// routes its own fill of the key to another node.
func (n *Node) FillKey(ctx context.Context, bucket, key string, rng *Range) (*Object, journal.Entry, error) {
	n.counters.fillsForPeers.Add(1)
	obj, err := n.getKey(ctx, bucket, key, rng, true)
	if err != nil {
		return nil, journal.Entry{}, err
	}
	return obj, obj.entry, nil
}
