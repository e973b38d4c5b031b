package node

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// Key-addressed objects are the objects of origin buckets (Config.Origin),
// named by bucket and key, which other programs may have written. Each is
// kept under the ID journal.KeyID(bucket, key), so bodies, journal records
// and anti-entropy treat it like any other object; its entry records the
// bucket, the key and what the origin said of it (ETag, Content-Type,
// Last-Modified), which revalidation compares.
//
// Unlike a ULID, a key is reused: a tombstone hides only versions older
// than itself, so a key deleted and written again (through objstore, or in
// the bucket by another program) is served again.

// Revalidation says when a cached copy of a key-addressed object is checked
// against its origin.
type Revalidation string

// Revalidation modes.
const (
	// RevalidateTTL checks a copy older than Config.CacheTTL; with no TTL
	// copies are never checked.
	RevalidateTTL Revalidation = "ttl"
	// RevalidateAlways checks on every read: reads are as fresh as the
	// origin's, at the cost of one conditional request each.
	RevalidateAlways Revalidation = "always"
	// RevalidateNever serves copies until they are invalidated.
	RevalidateNever Revalidation = "never"
)

// ParseRevalidation parses a Revalidation's name; empty means
// RevalidateTTL.
func ParseRevalidation(s string) (Revalidation, error) {
	switch r := Revalidation(s); r {
	case "":
		return RevalidateTTL, nil
	case RevalidateTTL, RevalidateAlways, RevalidateNever:
		return r, nil
	}
	return "", fmt.Errorf("revalidate %q: want never, ttl or always", s)
}

// validBucket checks a bucket name against S3's rules, loosely enough for
// the older buckets (capitals and underscores) that us-east-1 still holds.
func validBucket(bucket string) error {
	if len(bucket) < 3 || len(bucket) > 255 {
		return fmt.Errorf("%w: bucket name %q must be 3 to 255 characters", ErrInvalid, bucket)
	}
	for i, r := range bucket {
		ok := r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) ||
			i > 0 && (r == '.' || r == '-' || r == '_')
		if !ok {
			return fmt.Errorf("%w: bucket name %q may hold letters, digits, '.', '-' and '_', and starts with a letter or digit", ErrInvalid, bucket)
		}
	}
	return nil
}

// validKey checks a key as S3 would take it, less what could be read as a
// path (see storage.CheckOriginKey).
func validKey(key string) error {
	if err := storage.CheckOriginKey(key); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// origin checks bucket and key and returns the bucket's origin.
func (n *Node) origin(bucket, key string) (storage.Origin, error) {
	if err := validBucket(bucket); err != nil {
		return nil, err
	}
	if err := validKey(key); err != nil {
		return nil, err
	}
	if n.cfg.Origin == nil {
		return nil, fmt.Errorf("%w: this node serves no origin bucket (--origin-buckets)", ErrForbidden)
	}
	o, err := n.cfg.Origin(bucket)
	if err != nil {
		return nil, err
	}
	return o, nil
}

// checkKeyed validates the fields of a key-addressed entry from a peer or
// an origin like a client's request: a bucket and key that could be
// served, the ID they make, and bounded origin fields. An entry that is
// not keyed carries none of them.
func checkKeyed(e journal.Entry) error {
	if !e.Keyed() {
		if e.Key != "" || e.ETag != "" || e.ContentType != "" || !e.LastModified.IsZero() {
			return fmt.Errorf("%w: entry %s has key fields without a bucket", ErrInvalid, e.ID)
		}
		return nil
	}
	if err := validBucket(e.Bucket); err != nil {
		return fmt.Errorf("entry %s: %w", e.ID, err)
	}
	if err := validKey(e.Key); err != nil {
		return fmt.Errorf("entry %s: %w", e.ID, err)
	}
	switch {
	case e.ID != journal.KeyID(e.Bucket, e.Key):
		return fmt.Errorf("%w: entry %s is not the ID of its bucket and key", ErrInvalid, e.ID)
	case len(e.ETag) > maxETagBytes || !printable(e.ETag):
		return fmt.Errorf("%w: entry %s has a malformed ETag", ErrInvalid, e.ID)
	}
	if err := storage.CheckContentType(e.ContentType); err != nil {
		return fmt.Errorf("%w: entry %s: %w", ErrInvalid, e.ID, err)
	}
	return nil
}

// maxETagBytes bounds an origin's ETag; S3's are 34 to 50 bytes.
const maxETagBytes = 256

func printable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r > unicode.MaxASCII })
}

// keyFillRequest says where the body of bucket/key is: in its origin,
// when this node serves that bucket, and on the peers. With route, a fill
// is routed through the member that owns the key's fills (see fillOwner);
// routed says the request was routed here by a peer.
func (n *Node) keyFillRequest(bucket, key string, known *journal.Entry, route, routed bool) fillRequest {
	id := journal.KeyID(bucket, key)
	req := fillRequest{id: id, known: known, key: key, direct: routed}
	req.learn = func(info storage.ObjectInfo) (journal.Entry, error) {
		return n.describeOrigin(bucket, key, info, known)
	}
	o, err := n.origin(bucket, key)
	if err != nil {
		req.noRemote = fmt.Errorf("%w: %s/%s: %w", ErrNotFound, bucket, key, err)
		return req
	}
	req.remote = o
	if owner, ok := n.fillOwner(id); ok && route && !routed {
		g := &ownerGetter{n: n, owner: owner, bucket: bucket, origin: o, known: known}
		req.remote, req.viaOwner = g, true
		req.learn = func(info storage.ObjectInfo) (journal.Entry, error) {
			if e := g.ownerEntry(); e != nil {
				return *e, nil // checked by the getter
			}
			return n.describeOrigin(bucket, key, info, known)
		}
	}
	return req
}

// describeOrigin makes the entry of bucket/key from the origin's
// description of it. Its version is the origin's Last-Modified (so the
// origin's order of writes is kept, and a copy fetched before a write
// through objstore does not win over it), and later than prev's when the
// origin's object replaced the one prev describes. The fetching node
// stands as its writer and origin: the first node to ask for the body.
func (n *Node) describeOrigin(bucket, key string, info storage.ObjectInfo, prev *journal.Entry) (journal.Entry, error) {
	e := journal.Entry{
		ID:           journal.KeyID(bucket, key),
		Origin:       n.id,
		Name:         path.Base(key),
		Size:         info.Size,
		Level:        journal.LevelRemote,
		UserMeta:     info.Meta,
		Bucket:       bucket,
		Key:          key,
		ETag:         info.ETag,
		ContentType:  info.ContentType,
		LastModified: info.ModTime.UTC(),
	}
	if len(e.UserMeta) == 0 {
		e.UserMeta = nil
	}
	if len(e.Name) > maxNameBytes || !utf8Name(e.Name) {
		e.Name = ""
	}
	e.Version = journal.Version{Time: journal.Timestamp{Wall: info.ModTime.UnixNano()}, Node: n.id}
	if e.Version.Time.Wall <= 0 || n.clock.Check(e.Version.Time) != nil {
		// No time, or a store whose clock runs ahead: this node's reading
		// stands in for it.
		e.Version.Time = n.clock.Now()
	}
	if prev != nil && !prev.Deleted && prev.Level == journal.LevelFull {
		e.Level = prev.Level // the key's level is the cluster's to keep
	}
	if prev != nil && prev.Version.Compare(e.Version) >= 0 {
		// The origin changed since prev was recorded, yet its time does
		// not say so (a write within the same second, or clocks apart).
		e.Version.Time = prev.Version.Time.Next()
	}
	if err := validUserMeta(e.UserMeta); err != nil {
		// What another program stored may not fit the journal: the body
		// is served, its metadata is not kept.
		e.UserMeta = nil
	}
	if err := checkKeyed(e); err != nil {
		return e, fmt.Errorf("%w: %s/%s: %w", ErrRemote, bucket, key, err)
	}
	return e, nil
}

func utf8Name(s string) bool { return validName(s) == nil }

// KeyGetOptions tunes GetKey.
type KeyGetOptions struct {
	// Range is GetOptions.Range.
	Range *Range
}

// GetKey opens the object at key in an origin bucket. It is served from
// local disk when this node holds a fresh copy (see Config.Revalidate),
// otherwise from a peer holding it or from the origin, and a copy is kept.
// A copy the origin can no longer vouch for because it cannot be reached
// is served anyway, with Meta.Stale set, unless RevalidateAlways. Errors
// match ErrInvalid (a bad bucket or key), ErrForbidden (a bucket not
// served), ErrNotFound, ErrRemote or ErrRemoteUnavailable.
func (n *Node) GetKey(ctx context.Context, bucket, key string, opts KeyGetOptions) (*Object, error) {
	return n.getKey(ctx, bucket, key, opts.Range, false)
}

// getKey is GetKey of rng; routed says a peer routed the request here as
// the owner of the key's fills.
func (n *Node) getKey(ctx context.Context, bucket, key string, rng *Range, routed bool) (*Object, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	o, err := n.origin(bucket, key)
	if err != nil {
		return nil, err
	}
	id := journal.KeyID(bucket, key)
	e, b, err := n.lookup(id)
	switch {
	case errors.Is(err, journal.ErrNotFound):
		return n.fetchRange(ctx, n.keyFillRequest(bucket, key, nil, true, routed), rng)
	case err != nil:
		return nil, fmt.Errorf("node: get %s/%s: %w", bucket, key, err)
	case e.Deleted:
		return n.getAfterTombstone(ctx, o, bucket, key, e, routed)
	case e.Bucket != bucket || e.Key != key:
		return nil, fmt.Errorf("node: %s/%s: its ID %s holds %s/%s", bucket, key, id, e.Bucket, e.Key)
	}
	stale := false
	if n.mustRevalidate(e, b) {
		info, err := o.Revalidate(ctx, key, e.ETag)
		switch {
		case errors.Is(err, storage.ErrNotModified):
			n.refreshed(e, b)
		case errors.Is(err, storage.ErrNotFound):
			n.keyGone(ctx, e)
			n.counters.misses.Add(1)
			return nil, fmt.Errorf("%w: %s/%s is no longer in its bucket", ErrNotFound, bucket, key)
		case err == nil:
			n.log.Debug("origin object changed; fetching it", "bucket", bucket, "key", key, "etag", info.ETag, "was", e.ETag)
			n.sparse.drop(id, nil, storage.Sum{}) // parts of the old object, if any
			return n.fetchRange(ctx, n.changedFillRequest(bucket, key, e, routed), rng)
		case isUnavailable(err) && n.cfg.Revalidate != RevalidateAlways && b != nil:
			n.log.Warn("origin unreachable; serving the cached copy as stale", "bucket", bucket, "key", key, "err", err)
			stale = true
		default:
			return nil, remoteErr("revalidate "+bucket+"/"+key, err)
		}
	}
	obj, err := n.openLocal(e, b)
	if err == nil {
		n.counters.hitsLocal.Add(1)
		n.policy.Touch(id)
		obj.Stale = stale
		return obj, nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	if b == nil {
		changed, err := n.revalidateSparse(ctx, o, e)
		if err != nil {
			return nil, err
		}
		if changed {
			// Not routed: the owner's copy may be the old one too.
			return n.fetchRange(ctx, n.changedFillRequest(bucket, key, e, routed), rng)
		}
	}
	return n.fetchRange(ctx, n.keyFillRequest(bucket, key, &e, true, routed), rng)
}

// revalidateSparse checks this node's sparse copy of key-addressed e, if
// any, against the origin once it is older than the cache TTL, as
// mustRevalidate does a whole copy: a copy the origin confirms is kept and
// dated anew; one of an object that changed is dropped (the read then
// fetches the new version's parts); a key gone from its bucket is
// forgotten. An origin that cannot be asked leaves the copy as it is. It
// reports whether the object changed.
func (n *Node) revalidateSparse(ctx context.Context, o storage.Origin, e journal.Entry) (bool, error) {
	rec, _, err := n.journal.Sparse(e.ID)
	if err != nil || n.cfg.Revalidate == RevalidateNever || n.cfg.CacheTTL <= 0 ||
		n.physicalNow().Sub(rec.Stored) <= n.cfg.CacheTTL {
		return false, nil
	}
	info, err := o.Revalidate(ctx, e.Key, rec.ETag)
	switch {
	case errors.Is(err, storage.ErrNotModified):
		err := n.journal.Update(func(tx *journal.Tx) error {
			now := n.physicalNow().UTC()
			return tx.ReviseSparse(e.ID, rec.Tag, func(s *journal.Sparse) { s.Stored = now })
		})
		if err != nil {
			n.log.Warn("date a sparse copy", "id", e.ID, "err", err)
		}
	case errors.Is(err, storage.ErrNotFound):
		n.sparse.drop(e.ID, nil, storage.Sum{})
		n.keyGone(ctx, e)
		n.counters.misses.Add(1)
		return false, fmt.Errorf("%w: %s/%s is no longer in its bucket", ErrNotFound, e.Bucket, e.Key)
	case err == nil:
		n.log.Debug("origin object changed; dropping its parts", "bucket", e.Bucket, "key", e.Key, "etag", info.ETag, "was", rec.ETag)
		n.sparse.drop(e.ID, nil, storage.Sum{})
		return true, nil
	}
	return false, nil
}

// changedFillRequest fetches bucket/key afresh from its origin, whose
// object changed since e was recorded: the origin's description replaces
// e, with a newer version. It is not routed, since the owner's copy may be
// the old one.
func (n *Node) changedFillRequest(bucket, key string, e journal.Entry, routed bool) fillRequest {
	req := n.keyFillRequest(bucket, key, nil, false, routed)
	req.learn = func(info storage.ObjectInfo) (journal.Entry, error) {
		return n.describeOrigin(bucket, key, info, &e)
	}
	return req
}

// getAfterTombstone serves a key deleted here only when its origin holds
// a version written after the delete; a key seen missing is remembered as
// a miss.
func (n *Node) getAfterTombstone(ctx context.Context, o storage.Origin, bucket, key string, tomb journal.Entry, routed bool) (*Object, error) {
	if n.misses.has(tomb.ID) {
		n.counters.misses.Add(1)
		return nil, fmt.Errorf("%w: %s/%s was deleted", ErrNotFound, bucket, key)
	}
	info, err := o.Stat(ctx, key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		n.misses.add(tomb.ID)
		n.counters.misses.Add(1)
		return nil, fmt.Errorf("%w: %s/%s was deleted", ErrNotFound, bucket, key)
	case err != nil:
		return nil, remoteErr("stat "+bucket+"/"+key, err)
	case info.ModTime.UnixNano() <= tomb.Version.Time.Wall:
		// What the bucket holds is what was deleted, or older.
		n.misses.add(tomb.ID)
		n.counters.misses.Add(1)
		return nil, fmt.Errorf("%w: %s/%s was deleted", ErrNotFound, bucket, key)
	}
	return n.fetch(ctx, n.changedFillRequest(bucket, key, tomb, routed))
}

// mustRevalidate reports whether this node's copy (b, nil when it holds
// none) of key-addressed e must be checked against the origin first.
func (n *Node) mustRevalidate(e journal.Entry, b *journal.Blob) bool {
	switch {
	case n.cfg.Revalidate == RevalidateAlways:
		return true
	case n.cfg.Revalidate == RevalidateNever || b == nil || n.cfg.CacheTTL <= 0:
		return false
	}
	return n.physicalNow().Sub(b.Stored) > n.cfg.CacheTTL
}

// refreshed restarts the TTL of this node's copy of e, which the origin
// just vouched for; the body does not move.
func (n *Node) refreshed(e journal.Entry, b *journal.Blob) {
	if b == nil {
		return
	}
	err := n.journal.Update(func(tx *journal.Tx) error {
		cur, err := tx.Blob(e.ID)
		if err != nil || cur.Sum != b.Sum {
			return nil // dropped or replaced meanwhile
		}
		cur.Stored = n.physicalNow().UTC()
		return tx.PutBlob(e.ID, cur)
	})
	if err != nil {
		n.log.Warn("record revalidation", "id", e.ID, "err", err)
	}
}

// keyGone records that the origin no longer holds e's object, deleted by
// another program: a tombstone (which a later write of the key outranks)
// drops every node's copy.
func (n *Node) keyGone(ctx context.Context, e journal.Entry) {
	unlock, err := n.locks.lock(ctx, e.ID)
	if err != nil {
		return
	}
	defer unlock()
	if _, err := n.tombstone(ctx, e.ID); err != nil {
		n.log.Warn("record a key deleted from its bucket", "bucket", e.Bucket, "key", e.Key, "err", err)
	}
}

// DeleteKey deletes the object at key in an origin bucket: from the
// bucket first (so a failure there changes nothing and the client may
// retry), then everywhere in the cluster, by a tombstone. Deleting a key
// that does not exist succeeds. A later write of the key, through
// objstore or in the bucket, is served again.
func (n *Node) DeleteKey(ctx context.Context, bucket, key string) (Meta, error) {
	if n.closed.Load() {
		return Meta{}, ErrClosed
	}
	if err := n.writable(); err != nil {
		return Meta{}, err
	}
	o, err := n.origin(bucket, key)
	if err != nil {
		return Meta{}, err
	}
	id := journal.KeyID(bucket, key)
	unlock, err := n.locks.lock(ctx, id)
	if err != nil {
		return Meta{}, err
	}
	defer unlock()
	if err := o.Remove(ctx, key); err != nil {
		return Meta{}, remoteErr("remove "+bucket+"/"+key, err)
	}
	tomb, err := n.tombstone(ctx, id)
	if err != nil {
		return Meta{}, err
	}
	m := metaOf(tomb, nil)
	m.Bucket, m.Key = bucket, key
	n.log.Debug("delete key", "bucket", bucket, "key", key)
	return m, nil
}

// StatKey describes the object at key in an origin bucket: from the
// journal when the cluster knows it, otherwise from the origin (without
// fetching its body). Errors are GetKey's.
func (n *Node) StatKey(ctx context.Context, bucket, key string) (Meta, error) {
	if n.closed.Load() {
		return Meta{}, ErrClosed
	}
	o, err := n.origin(bucket, key)
	if err != nil {
		return Meta{}, err
	}
	e, b, err := n.lookup(journal.KeyID(bucket, key))
	switch {
	case err == nil && !e.Deleted && e.Bucket == bucket && e.Key == key:
		return metaOf(e, b), nil
	case err != nil && !errors.Is(err, journal.ErrNotFound):
		return Meta{}, fmt.Errorf("node: stat %s/%s: %w", bucket, key, err)
	}
	info, err := o.Stat(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return Meta{}, fmt.Errorf("%w: %s/%s", ErrNotFound, bucket, key)
	}
	if err != nil {
		return Meta{}, remoteErr("stat "+bucket+"/"+key, err)
	}
	if err == nil && e.Deleted && info.ModTime.UnixNano() <= e.Version.Time.Wall {
		return Meta{}, fmt.Errorf("%w: %s/%s was deleted", ErrNotFound, bucket, key)
	}
	d, err := n.describeOrigin(bucket, key, info, nil)
	if err != nil {
		return Meta{}, err
	}
	return metaOf(d, nil), nil
}

// KeyList is one page of an origin bucket's listing.
type KeyList struct {
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix,omitempty"`
	// Keys are the page's objects, Prefixes the common prefixes a
	// delimiter rolled them up into.
	Keys     []KeyInfo `json:"keys"`
	Prefixes []string  `json:"prefixes,omitempty"`
	// Next, when set, asks for the next page (as ListKeysOptions.After).
	Next string `json:"next,omitempty"`
}

// KeyInfo describes one listed key.
type KeyInfo struct {
	Key          string    `json:"key"`
	Size         int64     `json:"size"`
	ETag         string    `json:"etag,omitempty"`
	LastModified time.Time `json:"last_modified"`
	// Cached is set when the cluster knows the key (some node has fetched
	// or written it).
	Cached bool `json:"cached"`
}

// ListKeysOptions selects a page of a bucket's listing: the keys starting
// with Prefix, after After (the previous page's Next), at most Max (0:
// storage.MaxListPage), rolled up at Delimiter when set.
type ListKeysOptions struct {
	Prefix, Delimiter, After string
	Max                      int
}

// ListKeys lists an origin bucket's keys from the bucket's own listing, so
// keys never read through objstore are listed too.
func (n *Node) ListKeys(ctx context.Context, bucket string, o ListKeysOptions) (KeyList, error) {
	if o.Max < 0 || o.Max > storage.MaxListPage {
		return KeyList{}, fmt.Errorf("%w: max %d must be 1 to %d", ErrInvalid, o.Max, storage.MaxListPage)
	}
	opts := storage.ListOptions{Prefix: o.Prefix, Delimiter: o.Delimiter, After: o.After, Max: o.Max}
	if n.closed.Load() {
		return KeyList{}, ErrClosed
	}
	// Any valid key stands in for the check of the bucket alone.
	org, err := n.origin(bucket, "k")
	if err != nil {
		return KeyList{}, err
	}
	if err := storage.CheckListOptions(opts); err != nil {
		return KeyList{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	page, err := org.List(ctx, opts)
	if errors.Is(err, storage.ErrNotFound) {
		return KeyList{}, fmt.Errorf("%w: bucket %s", ErrNotFound, bucket)
	}
	if err != nil {
		return KeyList{}, remoteErr("list "+bucket, err)
	}
	out := KeyList{Bucket: bucket, Prefix: opts.Prefix, Keys: make([]KeyInfo, 0, len(page.Objects)),
		Prefixes: page.CommonPrefixes, Next: page.Next}
	err = n.journal.View(func(tx *journal.Tx) error {
		for _, obj := range page.Objects {
			k := KeyInfo{Key: obj.Key, Size: obj.Size, ETag: obj.ETag, LastModified: obj.ModTime.UTC()}
			if e, err := tx.Head(journal.KeyID(bucket, obj.Key)); err == nil && !e.Deleted {
				k.Cached = true
			}
			out.Keys = append(out.Keys, k)
		}
		return nil
	})
	return out, err
}
