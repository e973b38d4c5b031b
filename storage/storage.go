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
