// Package storage holds objstore's two tiers of blob storage: the local disk
// (Disk), where a node keeps the bodies it serves, and the remote tier
// (Remote), the durable store behind the cache: an S3 bucket or a directory.
//
// The package imports nothing else of objstore's; the node package ties it to
// the journal.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned, possibly wrapped, when an object does not exist.
// Match it with errors.Is. Every backend maps its own not-found condition
// (for S3: NoSuchKey and HeadObject's bare 404) to it, and to nothing else.
var ErrNotFound = errors.New("storage: object not found")

// ErrUnavailable is returned, wrapped, when a backend could not be
// reached, timed out, or asked the caller to back off (S3's 503 SlowDown,
// 429): the same request may succeed later. Every backend classifies its
// own errors, so callers match this with errors.Is and never inspect a
// backend's SDK errors. Errors matching neither this nor ErrNotFound are
// failures: the backend refused or broke the request.
var ErrUnavailable = errors.New("storage: remote unavailable")

// ErrInvalidKey is returned when a key cannot name an object in a backend
// (empty, absolute, or containing "." or ".." path elements). It is never
// reported as ErrNotFound.
var ErrInvalidKey = errors.New("storage: invalid key")

// ErrNotModified is returned, wrapped, by Origin.Revalidate when the
// object still has the ETag asked about.
var ErrNotModified = errors.New("storage: object not modified")

// ErrInvalidMeta is returned by Put when a metadata key is not made of
// lower-case ASCII letters, digits and hyphens.
var ErrInvalidMeta = errors.New("storage: invalid metadata key")

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	// Key is the object's key in the backend.
	Key string
	// Size is the object's full length in bytes, whatever range was read.
	Size int64
	// ModTime is when the backend last stored the object.
	ModTime time.Time
	// Meta is the metadata given to Put. Values round-trip exactly, whatever
	// UTF-8 they hold.
	Meta map[string]string
	// ETag is the backend's tag for this version of the object, quoted as
	// in HTTP (`"…"`): it changes whenever the object does. S3's is its
	// own; a directory's is derived from the file's size and time.
	ETag string
	// ContentType is the media type stored with the object, or empty.
	ContentType string
}

// Getter reads objects.
type Getter interface {
	// Get returns a reader over length bytes of the object at key starting at
	// offset; a negative length reads to the end. The caller must close the
	// reader. The returned ObjectInfo describes the whole object. A missing
	// object yields an error matching ErrNotFound. Reading past the end
	// returns the bytes that exist.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, ObjectInfo, error)
}

// FilePutter stores an object from a body of known size that is still
// being written, typically a local copy as it arrives: PutFile reads
// body's bytes [0, n) only after ready(ctx, n) returned nil, and fails
// with ready's error. It may read a byte more than once (to checksum it,
// and again to send it or retry); it holds none of the body in memory.
// The object gets contentType (which may be empty) and meta, checked as
// for PutTyped, and PutFile returns its ETag; as with Put, nothing is
// visible under key unless PutFile returns nil.
type FilePutter interface {
	PutFile(ctx context.Context, key string, body io.ReaderAt, size int64, ready func(ctx context.Context, n int64) error,
		contentType string, meta map[string]string) (etag string, err error)
}

// Putter stores objects.
type Putter interface {
	// Put stores the bytes read from r under key with the given metadata,
	// replacing any object already there. size is the exact length when known
	// and -1 otherwise. Put returns nil only once the object is durable in the
	// backend; on error no partial object is visible under key. Put is
	// idempotent: storing the same bytes twice leaves one object.
	Put(ctx context.Context, key string, r io.Reader, size int64, meta map[string]string) error
}

// Statter describes objects without reading them.
type Statter interface {
	// Stat returns the object's description, or an error matching
	// ErrNotFound.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
}

// Remover deletes objects.
type Remover interface {
	// Remove deletes the object at key. Removing a missing object is not an
	// error.
	Remove(ctx context.Context, key string) error
}

// Remote is the durable tier behind the cache. Implementations are safe for
// concurrent use.
type Remote interface {
	Getter
	Putter
	Statter
	Remover
	// String names the remote for logs, for example "s3://bucket/prefix".
	String() string
}

// Origin is a bucket whose objects objstore caches by key: objects other
// programs wrote, under keys objstore did not choose. Besides a Remote's
// operations it lists keys, revalidates a cached copy without moving its
// body, and stores an object's media type. Keys are those CheckOriginKey
// accepts. Implementations are safe for concurrent use.
type Origin interface {
	Remote
	// List returns one page of the objects whose keys start with
	// opts.Prefix and sort after opts.After, in key order. With a
	// delimiter, keys holding it after the prefix are rolled up into
	// CommonPrefixes, as S3 does.
	List(ctx context.Context, opts ListOptions) (ListPage, error)
	// Revalidate asks whether the object at key still has the ETag etag,
	// without transferring its body (S3: a HEAD with If-None-Match). It
	// returns an error matching ErrNotModified when it does, the object's
	// new description when it changed, and ErrNotFound when it is gone.
	Revalidate(ctx context.Context, key, etag string) (ObjectInfo, error)
	// PutTyped is Put that also stores the object's media type
	// (contentType, which may be empty), and returns the stored object's
	// ETag as Stat would report it, so that a writer learns its own
	// object's ETag even if another write replaces it at once.
	PutTyped(ctx context.Context, key string, r io.Reader, size int64, contentType string, meta map[string]string) (etag string, err error)
}

// ListOptions selects a page of a listing.
type ListOptions struct {
	// Prefix selects the keys that start with it; empty selects all.
	Prefix string
	// Delimiter, when not empty, rolls up the keys that hold it after the
	// prefix into one common prefix each (up to and including it).
	Delimiter string
	// After starts the page after this key (or common prefix): the
	// previous page's Next.
	After string
	// Max bounds the objects plus common prefixes in the page; 0 or more
	// than MaxListPage means MaxListPage.
	Max int
}

// MaxListPage is the largest page List returns, S3's own limit.
const MaxListPage = 1000

// ListPage is one page of a listing.
type ListPage struct {
	// Objects are the page's objects in key order. Their Meta is not
	// filled (S3's listing does not carry it).
	Objects []ObjectInfo
	// CommonPrefixes are the rolled-up prefixes, in order.
	CommonPrefixes []string
	// Next, when not empty, is the After of the next page; empty when
	// this is the last.
	Next string
}
