package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Multipart uploads, for an S3-compatible endpoint that passes its clients'
// multipart calls through to an origin bucket. The errors below let such a
// caller answer with the S3 error code the bucket gave, without inspecting
// the backend's own errors.

// ErrNoSuchUpload is returned, wrapped, when an upload ID names no open
// upload of the key: never created, already completed, or aborted (S3's
// NoSuchUpload).
var ErrNoSuchUpload = errors.New("storage: no such multipart upload")

// ErrInvalidPart is returned, wrapped, by Multipart.CompleteMultipart when a
// listed part was not uploaded, its ETag does not match the part's (S3's
// InvalidPart), or the parts are not in ascending order (S3's
// InvalidPartOrder, which also matches ErrInvalidPartOrder).
var ErrInvalidPart = errors.New("storage: invalid multipart part")

// ErrInvalidPartOrder is returned, wrapped, by Multipart.CompleteMultipart
// when the parts are not listed in ascending order of number (S3's
// InvalidPartOrder). It matches ErrInvalidPart too.
var ErrInvalidPartOrder = fmt.Errorf("%w: parts not in ascending order", ErrInvalidPart)

// ErrEntityTooSmall is returned, wrapped, by Multipart.CompleteMultipart when
// a part other than the last is smaller than MinPartSize (S3's
// EntityTooSmall).
var ErrEntityTooSmall = errors.New("storage: multipart part too small")

// ErrEntityTooLarge is returned, wrapped, when a part is larger than
// MaxPartSize (S3's EntityTooLarge).
var ErrEntityTooLarge = errors.New("storage: multipart part too large")

// ErrBadDigest is returned, wrapped, by Multipart.UploadPart when the bytes
// received do not match PartOptions.ContentMD5 (S3's BadDigest); no part is
// stored then.
var ErrBadDigest = errors.New("storage: content digest mismatch")

// ErrInvalidPartNumber is returned, wrapped, by Multipart.PartRange for a
// part the object does not have (S3's InvalidPartNumber).
var ErrInvalidPartNumber = errors.New("storage: no such part")

// ErrPreconditionFailed is returned, wrapped, when the object does not
// have the ETag a call requires of it (S3's PreconditionFailed).
var ErrPreconditionFailed = errors.New("storage: precondition failed")

// ErrInvalidArgument is returned, wrapped, when an argument other than a key
// or metadata is malformed or out of range: an upload ID, a part number, a
// page size, a marker, a size, a copy range, a digest. The backend was not
// asked.
var ErrInvalidArgument = errors.New("storage: invalid argument")

const (
	// MaxParts is the most parts an upload may have; part numbers run from
	// 1 to MaxParts (S3's limits).
	MaxParts = 10000
	// MinPartSize is the smallest size of a part other than the last that
	// CompleteMultipart accepts (S3's limit).
	MinPartSize = 5 << 20
	// MaxPartSize is the largest part (S3's limit).
	MaxPartSize = 5 << 30
	// MaxUploadIDLen is the longest upload ID, in bytes, accepted.
	MaxUploadIDLen = 1024
	// maxETagLen bounds the ETags given to CompleteMultipart; S3's are
	// under 100 bytes.
	maxETagLen = 1024
)

// Multipart is implemented by remotes whose backend takes multipart uploads
// (S3): an object is built from parts uploaded separately, possibly in
// parallel and out of order, and appears under its key, whole, only when
// CompleteMultipart succeeds. Keys are checked as the remote checks them
// for its other methods (ErrInvalidKey); upload IDs with CheckUploadID
// (ErrInvalidArgument). An upload ID that is well formed but names no open
// upload of the key yields ErrNoSuchUpload. Implementations are safe for
// concurrent use.
type Multipart interface {
	// CreateMultipart starts an upload to key and returns its ID. The
	// object, once completed, has the media type contentType (which may
	// be empty) and the metadata meta, checked as for PutTyped
	// (ErrInvalidMeta).
	CreateMultipart(ctx context.Context, key, contentType string, meta map[string]string) (uploadID string, err error)
	// UploadPart stores part number part (1 to MaxParts) of the upload
	// from exactly size bytes of r (0 to MaxPartSize), replacing any part
	// of that number, and returns the part's ETag for CompleteMultipart.
	// The body streams: r is read once, as the bytes are sent, and never
	// held whole in memory; it need not be seekable, and UploadPart makes
	// a single attempt since r cannot be read again. r must end after
	// size bytes: a shorter r fails with an error matching
	// io.ErrUnexpectedEOF, a longer one with another error, and an error
	// from r or ctx is wrapped so errors.Is finds it. When r or ctx fails,
	// or r's length is wrong, r's bytes are not stored (a part stored
	// earlier under that number remains).
	UploadPart(ctx context.Context, key, uploadID string, part int32, r io.Reader, size int64, opts PartOptions) (etag string, err error)
	// UploadPartCopy stores part number part of the upload from bytes of
	// the object at srcKey, in the same bucket (or directory) and under
	// the same key rules: length bytes from offset, or, when length is
	// negative, the whole object (offset must then be 0). It returns the
	// part's ETag and when it was stored. A missing source yields
	// ErrNotFound.
	UploadPartCopy(ctx context.Context, key, uploadID string, part int32, srcKey string, offset, length int64) (etag string, lastModified time.Time, err error)
	// CompleteMultipart assembles the listed parts, in ascending order of
	// number, into the object at key, replacing any object there, ends
	// the upload and returns the object's ETag as Stat reports it. A part
	// missing or with another ETag yields ErrInvalidPart, parts out of
	// order ErrInvalidPartOrder, and a part other than the last smaller
	// than MinPartSize ErrEntityTooSmall; the upload stays open after
	// these, so that the caller may complete it again with other parts.
	// Parts uploaded but not listed are discarded.
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []CompletedPart) (etag string, err error)
	// AbortMultipart ends the upload and discards its parts. An upload
	// that is not open yields ErrNoSuchUpload, or nil from backends that
	// do not tell (MinIO): either way no such upload remains.
	AbortMultipart(ctx context.Context, key, uploadID string) error
	// ListParts returns one page of the upload's parts, in ascending order
	// of number, with numbers above marker (0 to MaxParts; 0 starts at the
	// first part). maxParts bounds the page: 1 to MaxListPage, or 0 for
	// MaxListPage.
	ListParts(ctx context.Context, key, uploadID string, marker, maxParts int32) (PartsPage, error)
	// ListMultipartUploads returns one page of the open uploads whose keys
	// start with opts.Prefix, in order of key and, for one key, of
	// initiation.
	ListMultipartUploads(ctx context.Context, opts UploadListOptions) (UploadsPage, error)
	// PartRange says where part number part (1 to MaxParts) of the object
	// at key lies in it, as uploaded, and how many parts the object has,
	// for reads of one part (S3's GetObject with partNumber). Unless etag
	// is empty, the object must have that ETag: another yields
	// ErrPreconditionFailed. A part the object does not have yields
	// ErrInvalidPartNumber, a missing object ErrNotFound.
	PartRange(ctx context.Context, key string, part int32, etag string) (PartRange, error)
}

// PartRange is where one part of a completed multipart object lies.
type PartRange struct {
	Offset, Length int64
	Parts          int32 // how many parts the object has
}

// PartOptions are optional checks of an uploaded part.
type PartOptions struct {
	// ContentMD5, when set, is the base64 MD5 digest of the part's bytes,
	// as in a Content-MD5 header: the backend refuses a part whose bytes
	// differ with ErrBadDigest. Empty sends none.
	ContentMD5 string
}

// CompletedPart names an uploaded part for CompleteMultipart.
type CompletedPart struct {
	// Number is the part's number, 1 to MaxParts.
	Number int32
	// ETag is the part's ETag as UploadPart, UploadPartCopy or ListParts
	// returned it.
	ETag string
}

// PartInfo describes an uploaded part.
type PartInfo struct {
	// Number is the part's number.
	Number int32
	// ETag is the part's ETag, to give CompleteMultipart.
	ETag string
	// Size is the part's length in bytes.
	Size int64
	// LastModified is when the part was stored.
	LastModified time.Time
}

// PartsPage is one page of an upload's parts.
type PartsPage struct {
	// Parts are the page's parts in ascending order of number.
	Parts []PartInfo
	// NextMarker is the marker of the next page: the greatest part number
	// of this one, when Truncated.
	NextMarker int32
	// Truncated reports whether more parts follow.
	Truncated bool
}

// UploadListOptions selects a page of open uploads.
type UploadListOptions struct {
	// Prefix selects the uploads whose keys start with it; empty selects
	// all.
	Prefix string
	// KeyMarker, when not empty, starts the page after the uploads of
	// this key, or, with UploadIDMarker, after that upload of this key.
	KeyMarker string
	// UploadIDMarker, with KeyMarker, starts the page after this upload
	// of KeyMarker's key (the previous page's NextUploadIDMarker).
	// Without KeyMarker it is ignored, as S3 ignores it.
	UploadIDMarker string
	// Max bounds the page: 1 to MaxListPage, or 0 for MaxListPage.
	Max int32
}

// UploadInfo describes an open upload.
type UploadInfo struct {
	// Key is the key the upload will complete to.
	Key string
	// UploadID is the upload's ID.
	UploadID string
	// Initiated is when the upload was created.
	Initiated time.Time
}

// UploadsPage is one page of open uploads.
type UploadsPage struct {
	// Uploads are the page's uploads, in order of key and, for one key, of
	// initiation.
	Uploads []UploadInfo
	// NextKeyMarker and NextUploadIDMarker are, when Truncated, the
	// KeyMarker and UploadIDMarker of the next page.
	NextKeyMarker, NextUploadIDMarker string
	// Truncated reports whether more uploads follow.
	Truncated bool
}

// CheckUploadID reports whether id can be an upload ID: non-empty, at most
// MaxUploadIDLen bytes of printable ASCII without spaces, as S3's are. It
// returns nil, or an error matching ErrInvalidArgument.
func CheckUploadID(id string) error {
	return checkToken("upload ID", id, MaxUploadIDLen)
}

// checkToken checks a printable, space-free identifier of at most limit
// bytes.
func checkToken(what, s string, limit int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrInvalidArgument, what)
	case len(s) > limit:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidArgument, what, limit)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: %s %.40q is not printable ASCII", ErrInvalidArgument, what, s)
		}
	}
	return nil
}

// CheckPartNumber reports whether n is a part number, 1 to MaxParts. It
// returns nil, or an error matching ErrInvalidArgument.
func CheckPartNumber(n int32) error {
	if n < 1 || n > MaxParts {
		return fmt.Errorf("%w: part number %d is not within 1 to %d", ErrInvalidArgument, n, MaxParts)
	}
	return nil
}

// CheckCompletedParts reports whether parts can be given to
// CompleteMultipart: 1 to MaxParts parts, each with a part number and a
// non-empty ETag of printable ASCII. Their order is left to the backend
// to judge (ErrInvalidPartOrder). It returns nil, or an error matching
// ErrInvalidArgument.
func CheckCompletedParts(parts []CompletedPart) error {
	if len(parts) == 0 || len(parts) > MaxParts {
		return fmt.Errorf("%w: %d parts, want 1 to %d", ErrInvalidArgument, len(parts), MaxParts)
	}
	for _, p := range parts {
		if err := CheckPartNumber(p.Number); err != nil {
			return err
		}
		// ETags are quoted, so the quote is allowed; spaces are not.
		if err := checkToken(fmt.Sprintf("ETag of part %d", p.Number), p.ETag, maxETagLen); err != nil {
			return err
		}
	}
	return nil
}

// CheckListMax reports whether n can bound a page of ListParts or
// ListMultipartUploads: 0 (for MaxListPage) to MaxListPage. It returns nil,
// or an error matching ErrInvalidArgument.
func CheckListMax(n int32) error {
	if n < 0 || n > MaxListPage {
		return fmt.Errorf("%w: page size %d is not within 0 to %d", ErrInvalidArgument, n, MaxListPage)
	}
	return nil
}

// CheckPartMarker reports whether marker can start a page of ListParts: 0
// to MaxParts. It returns nil, or an error matching ErrInvalidArgument.
func CheckPartMarker(marker int32) error {
	if marker < 0 || marker > MaxParts {
		return fmt.Errorf("%w: part number marker %d is not within 0 to %d", ErrInvalidArgument, marker, MaxParts)
	}
	return nil
}

// CheckUploadListOptions reports whether opts can select a page of open
// uploads: Prefix and KeyMarker UTF-8 without a NUL byte, as every key is
// (else ErrInvalidKey), UploadIDMarker empty or an upload ID, and Max as
// CheckListMax allows (else ErrInvalidArgument).
func CheckUploadListOptions(opts UploadListOptions) error {
	for _, f := range []struct{ name, v string }{{"prefix", opts.Prefix}, {"key marker", opts.KeyMarker}} {
		if !utf8.ValidString(f.v) || strings.ContainsRune(f.v, 0) {
			return fmt.Errorf("%w: upload list %s %q is not UTF-8 without NUL", ErrInvalidKey, f.name, f.v)
		}
	}
	if opts.UploadIDMarker != "" {
		if err := CheckUploadID(opts.UploadIDMarker); err != nil {
			return err
		}
	}
	return CheckListMax(opts.Max)
}
