package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// Multipart uploads of key-addressed objects pass through to the origin
// bucket: parts go straight to it (never to this node's disk, since the
// parts of one upload may reach different nodes behind a load balancer),
// and once the bucket has assembled the object, the cluster learns it as a
// write through objstore. Its entry then has no checksum (no node has the
// body); the first node to fetch the body records it under a newer
// version, as when the bucket's object changed.

// The errors of multipart uploads, as the origin reports them; they match
// storage's own sentinels, so callers need not import storage.
var (
	// ErrNoSuchUpload: the upload ID names no open upload of the key.
	ErrNoSuchUpload = storage.ErrNoSuchUpload
	// ErrInvalidPart: a listed part was not uploaded, has another ETag,
	// or the parts are out of order.
	ErrInvalidPart = storage.ErrInvalidPart
	// ErrInvalidPartOrder: the parts are not listed in ascending order
	// (it matches ErrInvalidPart too).
	ErrInvalidPartOrder = storage.ErrInvalidPartOrder
	// ErrEntityTooSmall: a part other than the last is under 5 MiB.
	ErrEntityTooSmall = storage.ErrEntityTooSmall
	// ErrBadDigest: a part's bytes do not match its Content-MD5.
	ErrBadDigest = storage.ErrBadDigest
	// ErrInvalidPartNumber: the object has no part of that number.
	ErrInvalidPartNumber = storage.ErrInvalidPartNumber
)

// Types of multipart uploads, from storage.
type (
	// CompletedPart names an uploaded part for CompleteUpload.
	CompletedPart = storage.CompletedPart
	// PartsPage is one page of an upload's parts.
	PartsPage = storage.PartsPage
	// UploadsPage is one page of open uploads.
	UploadsPage = storage.UploadsPage
	// UploadListOptions selects a page of open uploads.
	UploadListOptions = storage.UploadListOptions
	// PartRange is where one part of an object uploaded in parts lies.
	PartRange = storage.PartRange
)

// multipartOrigin checks bucket and key and returns the bucket's origin's
// multipart uploads.
func (n *Node) multipartOrigin(bucket, key string) (storage.Multipart, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	o, err := n.origin(bucket, key)
	if err != nil {
		return nil, err
	}
	m, ok := o.(storage.Multipart)
	if !ok {
		return nil, fmt.Errorf("%w: the origin of bucket %s takes no multipart uploads", ErrInvalid, bucket)
	}
	return m, nil
}

// multipartErr turns an error of the origin's multipart calls into the
// node's kinds, keeping the multipart sentinels matchable.
func multipartErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNoSuchUpload), errors.Is(err, storage.ErrInvalidPart),
		errors.Is(err, storage.ErrEntityTooSmall), errors.Is(err, storage.ErrBadDigest),
		errors.Is(err, storage.ErrInvalidPartNumber):
		return fmt.Errorf("%w: %s: %w", ErrInvalid, op, err)
	case errors.Is(err, storage.ErrEntityTooLarge):
		return fmt.Errorf("%w: %s: %w", ErrTooLarge, op, err)
	case errors.Is(err, storage.ErrInvalidArgument), errors.Is(err, storage.ErrInvalidKey), errors.Is(err, storage.ErrInvalidMeta):
		return fmt.Errorf("%w: %s: %w", ErrInvalid, op, err)
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("%w: %s: %w", ErrNotFound, op, err)
	}
	return remoteErr(op, err)
}

// CreateUpload starts a multipart upload of bucket/key in its origin and
// returns the upload's ID. The object will have the media type contentType
// and the user metadata meta.
func (n *Node) CreateUpload(ctx context.Context, bucket, key, contentType string, meta map[string]string) (string, error) {
	m, err := n.multipartOrigin(bucket, key)
	if err != nil {
		return "", err
	}
	if err := n.writable(); err != nil {
		return "", err
	}
	if err := validUserMeta(meta); err != nil {
		return "", err
	}
	if err := storage.CheckContentType(contentType); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	id, err := m.CreateMultipart(ctx, key, contentType, meta)
	return id, multipartErr("create upload "+bucket+"/"+key, err)
}

// UploadPart stores part number part of an upload from size bytes of r,
// streamed to the origin under one of the node's upload slots, and returns
// the part's ETag. contentMD5, when set, is checked by the origin.
func (n *Node) UploadPart(ctx context.Context, bucket, key, uploadID string, part int32, r io.Reader, size int64, contentMD5 string) (string, error) {
	m, err := n.multipartOrigin(bucket, key)
	if err != nil {
		return "", err
	}
	if n.cfg.MaxObjectSize > 0 && size > n.cfg.MaxObjectSize {
		return "", fmt.Errorf("%w: a part of %d bytes, the limit is %d", ErrTooLarge, size, n.cfg.MaxObjectSize)
	}
	release, err := n.uploadSlot(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	etag, err := m.UploadPart(ctx, key, uploadID, part, r, size, storage.PartOptions{ContentMD5: contentMD5})
	return etag, multipartErr(fmt.Sprintf("upload part %d of %s/%s", part, bucket, key), err)
}

// UploadPartCopy stores part number part of an upload from length bytes at
// offset of srcBucket/srcKey (the whole object when length is negative).
// A source in the same bucket is copied by the origin; another is read
// through the cache and streamed. It returns the part's ETag.
func (n *Node) UploadPartCopy(ctx context.Context, bucket, key, uploadID string, part int32, srcBucket, srcKey string, offset, length int64) (string, error) {
	m, err := n.multipartOrigin(bucket, key)
	if err != nil {
		return "", err
	}
	if srcBucket == bucket {
		if _, err := n.origin(srcBucket, srcKey); err != nil {
			return "", err
		}
		etag, _, err := m.UploadPartCopy(ctx, key, uploadID, part, srcKey, offset, length)
		return etag, multipartErr(fmt.Sprintf("copy part %d of %s/%s from %s", part, bucket, key, srcKey), err)
	}
	src, err := n.GetKey(ctx, srcBucket, srcKey, KeyGetOptions{})
	if err != nil {
		return "", err
	}
	defer src.Close()
	if length < 0 {
		offset, length = 0, src.Size
	}
	if offset < 0 || length < 0 || offset > src.Size || length > src.Size-offset {
		return "", fmt.Errorf("%w: bytes %d+%d of a %d-byte source", ErrInvalid, offset, length, src.Size)
	}
	if _, err := src.Content.Seek(offset, io.SeekStart); err != nil {
		return "", err
	}
	return n.UploadPart(ctx, bucket, key, uploadID, part, io.LimitReader(src.Content, length), length, "")
}

// CompleteUpload assembles an upload's parts into bucket/key in the origin
// and records the object in the cluster at level (1 or 2), as a write
// through objstore: every node learns it at once, and copies of the key's
// earlier version stop being served. The body stays in the bucket until a
// node reads it (at level 2, every node fetches it).
func (n *Node) CompleteUpload(ctx context.Context, bucket, key, uploadID string, parts []CompletedPart, level journal.Level) (Meta, error) {
	m, err := n.multipartOrigin(bucket, key)
	if err != nil {
		return Meta{}, err
	}
	if level != journal.LevelRemote && level != journal.LevelFull {
		return Meta{}, fmt.Errorf("%w: a key is written at level 1 or 2", ErrInvalid)
	}
	if err := n.writable(); err != nil {
		return Meta{}, err
	}
	id := journal.KeyID(bucket, key)
	unlock, err := n.locks.lock(ctx, id)
	if err != nil {
		return Meta{}, err
	}
	defer unlock()
	etag, err := m.CompleteMultipart(ctx, key, uploadID, parts)
	if err != nil {
		return Meta{}, multipartErr("complete upload of "+bucket+"/"+key, err)
	}
	o := m.(storage.Origin) // multipartOrigin found it on an Origin
	info, err := o.Stat(ctx, key)
	if err != nil {
		// Completed, but not described: every node forgets its copies,
		// and the next read learns the object from the bucket.
		n.log.Warn("describe a completed upload", "bucket", bucket, "key", key, "err", err)
		if _, terr := n.tombstone(ctx, id); terr != nil {
			return Meta{}, terr
		}
		return Meta{}, remoteErr("stat "+bucket+"/"+key, err)
	}
	if info.ETag != etag {
		// Replaced in the bucket at once by another writer: this upload's
		// object is what the cluster records, and revalidation finds the
		// other by its ETag.
		info.ETag, info.ModTime = etag, n.physicalNow()
	}
	e := journal.Entry{
		ID: id, Version: journal.Version{Time: n.clock.Now(), Node: n.id}, Origin: n.id, Name: path.Base(key),
		Size: info.Size, Level: level, UserMeta: info.Meta, Bucket: bucket, Key: key, ETag: info.ETag,
		ContentType: info.ContentType, LastModified: info.ModTime.UTC(),
	}
	if len(e.UserMeta) == 0 || validUserMeta(e.UserMeta) != nil {
		e.UserMeta = nil
	}
	if len(e.Name) > maxNameBytes || !utf8Name(e.Name) {
		e.Name = ""
	}
	old, applied, err := n.commit(e, nil)
	if err != nil {
		return Meta{}, err
	}
	if old != nil {
		n.disk.Remove(id, old.Sum)
		n.policy.Remove(id)
		n.mem.drop(id)
	}
	if !applied {
		return Meta{}, fmt.Errorf("%w: a newer version of %s/%s was written meanwhile", ErrConflict, bucket, key)
	}
	n.counters.puts.Add(1)
	n.tell(ctx, e)
	n.log.Debug("completed upload", "bucket", bucket, "key", key, "size", e.Size, "level", level)
	return metaOf(e, nil), nil
}

// AbortUpload ends an upload and discards its parts.
func (n *Node) AbortUpload(ctx context.Context, bucket, key, uploadID string) error {
	m, err := n.multipartOrigin(bucket, key)
	if err != nil {
		return err
	}
	return multipartErr("abort upload of "+bucket+"/"+key, m.AbortMultipart(ctx, key, uploadID))
}

// ListParts returns a page of an upload's parts, numbered above marker.
func (n *Node) ListParts(ctx context.Context, bucket, key, uploadID string, marker, max int32) (PartsPage, error) {
	m, err := n.multipartOrigin(bucket, key)
	if err != nil {
		return PartsPage{}, err
	}
	p, err := m.ListParts(ctx, key, uploadID, marker, max)
	return p, multipartErr("list parts of "+bucket+"/"+key, err)
}

// ListUploads returns a page of a bucket's open uploads.
func (n *Node) ListUploads(ctx context.Context, bucket string, opts UploadListOptions) (UploadsPage, error) {
	// Any valid key stands in for the check of the bucket alone.
	m, err := n.multipartOrigin(bucket, "k")
	if err != nil {
		return UploadsPage{}, err
	}
	p, err := m.ListMultipartUploads(ctx, opts)
	return p, multipartErr("list uploads of "+bucket, err)
}

// KeyPart says where part number part of bucket/key lies in the object as
// it was uploaded to its origin, and how many parts it has, for reads of
// one part (S3's partNumber); the bytes themselves are then served from
// the cache like any range. etag is the ETag of the copy the caller is
// about to serve. When the origin's object has another, that copy is
// stale: it is dropped on every node, so that the next read fetches the
// new object, and ErrConflict is returned for the client to retry. A part
// the object lacks yields ErrInvalidPartNumber (matching ErrInvalid).
func (n *Node) KeyPart(ctx context.Context, bucket, key string, part int32, etag string) (PartRange, error) {
	m, err := n.multipartOrigin(bucket, key)
	if err != nil {
		return PartRange{}, err
	}
	pr, err := m.PartRange(ctx, key, part, etag)
	if errors.Is(err, storage.ErrPreconditionFailed) {
		if _, ierr := n.InvalidateKeys(ctx, KeyInvalidation{Bucket: bucket, Key: key}, true); ierr != nil {
			n.log.Warn("dropping a copy its origin has replaced", "bucket", bucket, "key", key, "err", ierr)
		}
		return PartRange{}, fmt.Errorf("%w: %s/%s changed in its bucket since it was cached; read it again: %w", ErrConflict, bucket, key, err)
	}
	return pr, multipartErr("find part of "+bucket+"/"+key, err)
}
