package s3remote

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/objstore/objstore/storage"
)

var _ storage.Multipart = (*Remote)(nil)

// wrapMultipart is wrap for the multipart operations: it also classifies
// the S3 error codes a caller maps back to S3's (NoSuchUpload, InvalidPart,
// InvalidPartOrder, EntityTooSmall, EntityTooLarge, BadDigest, and NoSuchKey
// for a copy's source). The SDK models few of them as types, so the codes
// are matched.
func wrapMultipart(op, key string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		var kind error
		switch ae.ErrorCode() {
		case "NoSuchUpload":
			kind = storage.ErrNoSuchUpload
		case "InvalidPart":
			kind = storage.ErrInvalidPart
		case "InvalidPartOrder":
			kind = storage.ErrInvalidPartOrder
		case "EntityTooSmall":
			kind = storage.ErrEntityTooSmall
		case "EntityTooLarge":
			kind = storage.ErrEntityTooLarge
		case "BadDigest":
			kind = storage.ErrBadDigest
		case "NoSuchKey":
			kind = storage.ErrNotFound
		}
		if kind != nil {
			return fmt.Errorf("s3 %s %s: %w: %w", op, key, kind, err)
		}
	}
	return wrap(op, key, err, false)
}

// checkUpload checks the key and upload ID every per-upload method takes.
func (r *Remote) checkUpload(op, key, uploadID string) error {
	if err := r.checkKey(key); err != nil {
		return err
	}
	if err := storage.CheckUploadID(uploadID); err != nil {
		return fmt.Errorf("s3 %s %s: %w", op, key, err)
	}
	return nil
}

// CreateMultipart starts a multipart upload to key with
// CreateMultipartUpload, as described by storage.Multipart. contentType and
// meta are checked and stored as PutTyped stores them, so Stat and Get
// report them alike once the upload completes. The upload asks for no
// checksum algorithm, so its parts need none.
func (r *Remote) CreateMultipart(ctx context.Context, key, contentType string, meta map[string]string) (string, error) {
	if err := r.checkWrite("create multipart", key, contentType, meta); err != nil {
		return "", err
	}
	in := &s3.CreateMultipartUploadInput{
		Bucket:   aws.String(r.bucket),
		Key:      aws.String(r.prefix + key),
		Metadata: encodeMeta(meta),
	}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	out, err := r.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return "", wrapMultipart("create multipart", key, err)
	}
	id := aws.ToString(out.UploadId)
	if err := storage.CheckUploadID(id); err != nil {
		return "", fmt.Errorf("s3 create multipart %s: server answered with a bad upload ID: %w", key, err)
	}
	return id, nil
}

// UploadPart stores part number part of the upload from size bytes of body
// with one UploadPart request, as described by storage.Multipart.
//
// The body streams straight into the request, which declares its
// Content-Length: nothing is buffered, whatever the part's size. Because
// body may be unseekable, the SDK can neither hash it for a signed payload
// (which plain HTTP otherwise needs) nor checksum it ahead of sending, so
// the request carries UNSIGNED-PAYLOAD and no x-amz-checksum; TLS (on an
// https endpoint) and opts.ContentMD5 (which S3 checks) protect the bytes.
// For the same reason the SDK's retries are off: an error reaches the
// caller at once, classified (a 503 matches storage.ErrUnavailable) so that
// it may send the part again. A bucket with Object Lock requires
// opts.ContentMD5.
//
// A server that refuses a part before reading all of it may reset the
// connection, and its answer is then lost (MinIO does so at times for an
// upload that is not open, though the request asks for 100-continue).
// When sending fails so, and neither body nor ctx caused it, UploadPart
// asks whether the upload is still open (ListParts of one part), and
// reports storage.ErrNoSuchUpload when it is not.
func (r *Remote) UploadPart(ctx context.Context, key, uploadID string, part int32, body io.Reader, size int64, opts storage.PartOptions) (string, error) {
	const op = "upload part"
	if err := r.checkUpload(op, key, uploadID); err != nil {
		return "", err
	}
	bad := func(err error) (string, error) { return "", fmt.Errorf("s3 %s %s: %w", op, key, err) }
	if err := storage.CheckPartNumber(part); err != nil {
		return bad(err)
	}
	switch {
	case size < 0:
		return bad(fmt.Errorf("%w: part size %d, want the exact length", storage.ErrInvalidArgument, size))
	case size > storage.MaxPartSize:
		return bad(fmt.Errorf("%w: part of %d bytes, above %d", storage.ErrEntityTooLarge, size, int64(storage.MaxPartSize)))
	case body == nil && size > 0:
		return bad(fmt.Errorf("%w: no body for %d bytes", storage.ErrInvalidArgument, size))
	}
	if opts.ContentMD5 != "" {
		if sum, err := base64.StdEncoding.DecodeString(opts.ContentMD5); err != nil || len(sum) != md5.Size {
			return bad(fmt.Errorf("%w: Content-MD5 %.40q is not a base64 MD5 digest", storage.ErrInvalidArgument, opts.ContentMD5))
		}
	}
	if err := ctx.Err(); err != nil {
		return bad(err)
	}
	in := &s3.UploadPartInput{
		Bucket:        aws.String(r.bucket),
		Key:           aws.String(r.prefix + key),
		UploadId:      aws.String(uploadID),
		PartNumber:    aws.Int32(part),
		ContentLength: aws.Int64(size),
	}
	if opts.ContentMD5 != "" {
		in.ContentMD5 = aws.String(opts.ContentMD5)
	}
	var src *partBody
	if size > 0 {
		// Wrapped also so that the SDK never sees an *io.PipeReader, which
		// it would send chunked whatever the declared length.
		src = &partBody{ctx: ctx, r: body, remain: size}
		in.Body = src
	} else if body != nil {
		// An empty request has no body to read; check that r is empty.
		if err := probeEnd(body); err != nil {
			return bad(err)
		}
	}
	out, err := r.client.UploadPart(ctx, in, streamedPart)
	if err != nil {
		if src != nil && src.err == nil && ctx.Err() == nil && httpStatus(err) == 0 && r.uploadGone(ctx, key, uploadID) {
			return "", fmt.Errorf("s3 %s %s: %w: sending the part failed (%w), and the upload is not open", op, key, storage.ErrNoSuchUpload, err)
		}
		return "", wrapMultipart(op, key, err)
	}
	etag := aws.ToString(out.ETag)
	if etag == "" {
		return "", fmt.Errorf("s3 %s %s: the answer carries no ETag", op, key)
	}
	return etag, nil
}

// uploadGone reports whether S3 says the upload is not open.
func (r *Remote) uploadGone(ctx context.Context, key, uploadID string) bool {
	_, err := r.client.ListParts(ctx, &s3.ListPartsInput{
		Bucket:   aws.String(r.bucket),
		Key:      aws.String(r.prefix + key),
		UploadId: aws.String(uploadID),
		MaxParts: aws.Int32(1),
	})
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload"
}

// streamedPart sets up an UploadPart request for a body read once, as it
// is sent: see UploadPart.
func streamedPart(o *s3.Options) {
	o.Retryer = aws.NopRetryer{}
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	// Options.Copy gave this request its own APIOptions slice.
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

// partBody feeds an UploadPart: it stops once ctx is done, and checks that
// the body has exactly remain bytes. Unlike putReader it checks for a byte
// past the end before handing over the last bytes, and fails instead, so
// that S3 never receives a whole part from a body longer than declared.
type partBody struct {
	ctx    context.Context
	r      io.Reader
	remain int64
	err    error // the first error Read returned but io.EOF
}

func (p *partBody) Read(b []byte) (int, error) {
	n, err := p.read(b)
	if err != nil && err != io.EOF && p.err == nil {
		p.err = err
	}
	return n, err
}

func (p *partBody) read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	if p.remain == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.remain {
		b = b[:p.remain]
	}
	n, err := p.r.Read(b)
	p.remain -= int64(n)
	switch {
	case p.remain > 0:
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	case err != nil && err != io.EOF:
		// Withheld: the part must not complete from a failing body.
		return 0, err
	case err == nil:
		if err := probeEnd(p.r); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// probeEnd checks that r has no byte left.
func probeEnd(r io.Reader) error {
	var one [1]byte
	n, err := io.ReadFull(r, one[:])
	switch {
	case n > 0:
		return errTooLong
	case err == io.EOF:
		return nil
	}
	return err
}

// UploadPartCopy stores part number part of the upload from bytes of the
// object at srcKey in the same bucket (under the same prefix), with one
// UploadPartCopy request, as described by storage.Multipart: S3 copies the
// bytes itself, none pass through objstore. A range (x-amz-copy-source-range)
// is sent unless length is negative. A missing source matches
// storage.ErrNotFound; a range reaching past the source's end is refused by
// S3 with an error matching neither that nor storage.ErrInvalidArgument.
func (r *Remote) UploadPartCopy(ctx context.Context, key, uploadID string, part int32, srcKey string, offset, length int64) (string, time.Time, error) {
	const op = "upload part copy"
	if err := r.checkUpload(op, key, uploadID); err != nil {
		return "", time.Time{}, err
	}
	if err := r.checkKey(srcKey); err != nil {
		return "", time.Time{}, err
	}
	bad := func(err error) (string, time.Time, error) {
		return "", time.Time{}, fmt.Errorf("s3 %s %s from %s: %w", op, key, srcKey, err)
	}
	if err := storage.CheckPartNumber(part); err != nil {
		return bad(err)
	}
	switch {
	case offset < 0:
		return bad(fmt.Errorf("%w: negative offset %d", storage.ErrInvalidArgument, offset))
	case length < 0 && offset != 0:
		return bad(fmt.Errorf("%w: offset %d without a length (a whole object starts at 0)", storage.ErrInvalidArgument, offset))
	case length == 0:
		return bad(fmt.Errorf("%w: empty copy range", storage.ErrInvalidArgument))
	case length > storage.MaxPartSize:
		return bad(fmt.Errorf("%w: copy of %d bytes, above %d", storage.ErrEntityTooLarge, length, int64(storage.MaxPartSize)))
	case length > 0 && offset > math.MaxInt64-length:
		return bad(fmt.Errorf("%w: copy range %d+%d overflows", storage.ErrInvalidArgument, offset, length))
	}
	in := &s3.UploadPartCopyInput{
		Bucket:     aws.String(r.bucket),
		Key:        aws.String(r.prefix + key),
		UploadId:   aws.String(uploadID),
		PartNumber: aws.Int32(part),
		CopySource: aws.String(copySource(r.bucket, r.prefix+srcKey)),
	}
	if length > 0 {
		in.CopySourceRange = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	}
	out, err := r.client.UploadPartCopy(ctx, in)
	if err != nil {
		return "", time.Time{}, wrapMultipart(op, key+" from "+srcKey, err)
	}
	if out.CopyPartResult == nil || aws.ToString(out.CopyPartResult.ETag) == "" {
		return bad(errors.New("the answer carries no ETag"))
	}
	return aws.ToString(out.CopyPartResult.ETag), aws.ToTime(out.CopyPartResult.LastModified), nil
}

// PartRange finds a part with a HEAD of that part number, as described by
// storage.Multipart: S3 answers with the part's length and Content-Range.
// A HEAD answer has no body, so errors are told apart by status.
func (r *Remote) PartRange(ctx context.Context, key string, part int32, etag string) (storage.PartRange, error) {
	const op = "part range"
	if err := r.checkKey(key); err != nil {
		return storage.PartRange{}, err
	}
	if err := storage.CheckPartNumber(part); err != nil {
		return storage.PartRange{}, fmt.Errorf("s3 %s %s: %w", op, key, err)
	}
	in := &s3.HeadObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(r.prefix + key), PartNumber: aws.Int32(part)}
	if etag != "" {
		in.IfMatch = aws.String(etag)
	}
	out, err := r.client.HeadObject(ctx, in)
	if err != nil {
		switch httpStatus(err) {
		case http.StatusRequestedRangeNotSatisfiable:
			return storage.PartRange{}, fmt.Errorf("s3 %s %s part %d: %w: %w", op, key, part, storage.ErrInvalidPartNumber, err)
		case http.StatusPreconditionFailed:
			return storage.PartRange{}, fmt.Errorf("s3 %s %s: %w: %w", op, key, storage.ErrPreconditionFailed, err)
		}
		return storage.PartRange{}, wrap(op, key, err, true)
	}
	first, _, total, ok := parseContentRange(aws.ToString(out.ContentRange))
	length := aws.ToInt64(out.ContentLength)
	parts := aws.ToInt32(out.PartsCount)
	if !ok || length < 0 || first > total-length || parts < part {
		return storage.PartRange{}, fmt.Errorf("s3 %s %s part %d: the answer (Content-Range %q, length %d, %d parts) does not place the part",
			op, key, part, aws.ToString(out.ContentRange), length, parts)
	}
	return storage.PartRange{Offset: first, Length: length, Parts: parts}, nil
}

// copySource returns the x-amz-copy-source naming key in bucket. S3 wants
// the key URL-encoded; slashes are kept, and every byte but the unreserved
// ones is escaped, since servers parse the value as a URL path (MinIO:
// with url.Parse, which would cut it at '?' or '#').
func copySource(bucket, key string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(bucket) + 1 + 3*len(key))
	b.WriteString(bucket)
	b.WriteByte('/')
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-._~/", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// CompleteMultipart assembles the upload's listed parts into the object at
// key with CompleteMultipartUpload, as described by storage.Multipart, and
// returns the ETag S3 gives the object (for S3 and MinIO, a digest of the
// parts' digests followed by "-" and the number of parts). S3 may answer
// 200 and report an error in the body; the SDK turns that into the error.
// The SDK retries a Complete whose answer was lost; when the first attempt
// succeeded, the retry finds the upload gone and Complete reports
// storage.ErrNoSuchUpload although the object was stored.
func (r *Remote) CompleteMultipart(ctx context.Context, key, uploadID string, parts []storage.CompletedPart) (string, error) {
	const op = "complete multipart"
	if err := r.checkUpload(op, key, uploadID); err != nil {
		return "", err
	}
	if err := storage.CheckCompletedParts(parts); err != nil {
		return "", fmt.Errorf("s3 %s %s: %w", op, key, err)
	}
	completed := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		completed[i] = types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag)}
	}
	out, err := r.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(r.bucket),
		Key:             aws.String(r.prefix + key),
		UploadId:        aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: completed},
	})
	if err != nil {
		return "", wrapMultipart(op, key, err)
	}
	etag := aws.ToString(out.ETag)
	if etag == "" {
		return "", fmt.Errorf("s3 %s %s: the answer carries no ETag", op, key)
	}
	return etag, nil
}

// AbortMultipart ends the upload and discards its parts with
// AbortMultipartUpload, as described by storage.Multipart. S3 may keep
// parts still being uploaded when it is called; abort again once they end
// to free them. MinIO answers success for an upload that is not open.
func (r *Remote) AbortMultipart(ctx context.Context, key, uploadID string) error {
	const op = "abort multipart"
	if err := r.checkUpload(op, key, uploadID); err != nil {
		return err
	}
	_, err := r.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(r.bucket),
		Key:      aws.String(r.prefix + key),
		UploadId: aws.String(uploadID),
	})
	if err != nil {
		return wrapMultipart(op, key, err)
	}
	return nil
}

// ListParts returns one page of the upload's parts with one ListParts
// request, as described by storage.Multipart. When S3 reports more parts
// but no next marker, NextMarker is the page's last part number.
func (r *Remote) ListParts(ctx context.Context, key, uploadID string, marker, maxParts int32) (storage.PartsPage, error) {
	const op = "list parts"
	if err := r.checkUpload(op, key, uploadID); err != nil {
		return storage.PartsPage{}, err
	}
	if err := storage.CheckPartMarker(marker); err != nil {
		return storage.PartsPage{}, fmt.Errorf("s3 %s %s: %w", op, key, err)
	}
	if err := storage.CheckListMax(maxParts); err != nil {
		return storage.PartsPage{}, fmt.Errorf("s3 %s %s: %w", op, key, err)
	}
	in := &s3.ListPartsInput{
		Bucket:   aws.String(r.bucket),
		Key:      aws.String(r.prefix + key),
		UploadId: aws.String(uploadID),
		MaxParts: aws.Int32(int32(listMax(int(maxParts)))),
	}
	if marker > 0 {
		in.PartNumberMarker = aws.String(strconv.Itoa(int(marker)))
	}
	out, err := r.client.ListParts(ctx, in)
	if err != nil {
		return storage.PartsPage{}, wrapMultipart(op, key, err)
	}
	page := storage.PartsPage{Truncated: aws.ToBool(out.IsTruncated)}
	for _, p := range out.Parts {
		page.Parts = append(page.Parts, storage.PartInfo{
			Number:       aws.ToInt32(p.PartNumber),
			ETag:         aws.ToString(p.ETag),
			Size:         aws.ToInt64(p.Size),
			LastModified: aws.ToTime(p.LastModified),
		})
	}
	if page.Truncated {
		next, err := strconv.ParseInt(aws.ToString(out.NextPartNumberMarker), 10, 32)
		if err != nil || next <= int64(marker) {
			if len(page.Parts) == 0 {
				// Nothing to continue after: following the listing would loop.
				return storage.PartsPage{}, fmt.Errorf("s3 %s %s: truncated page without parts", op, key)
			}
			next = int64(page.Parts[len(page.Parts)-1].Number)
		}
		page.NextMarker = int32(next)
	}
	return page, nil
}

// ListMultipartUploads returns one page of the open uploads with one
// ListMultipartUploads request, as described by storage.Multipart: its
// Prefix is the Remote's prefix followed by opts.Prefix, its KeyMarker
// likewise (when set), and the Remote's prefix is stripped from the keys
// returned. Keys travel URL-encoded, as for List. When S3 reports more
// uploads but no next markers, they are the page's last upload's.
//
// MinIO departs from S3 here: it lists only the uploads of the key equal
// to the prefix, and, with no prefix at all, every upload of the bucket
// known to the server in one page whatever opts.Max says.
func (r *Remote) ListMultipartUploads(ctx context.Context, opts storage.UploadListOptions) (storage.UploadsPage, error) {
	const op = "list multipart uploads"
	if err := storage.CheckUploadListOptions(opts); err != nil {
		return storage.UploadsPage{}, fmt.Errorf("s3 %s %s: %w", op, opts.Prefix, err)
	}
	in := &s3.ListMultipartUploadsInput{
		Bucket:     aws.String(r.bucket),
		MaxUploads: aws.Int32(int32(listMax(int(opts.Max)))),
		// As in List: every key survives the XML response.
		EncodingType: types.EncodingTypeUrl,
	}
	if p := r.prefix + opts.Prefix; p != "" {
		in.Prefix = aws.String(p)
	}
	if opts.KeyMarker != "" {
		in.KeyMarker = aws.String(r.prefix + opts.KeyMarker)
		if opts.UploadIDMarker != "" {
			in.UploadIdMarker = aws.String(opts.UploadIDMarker)
		}
	}
	out, err := r.client.ListMultipartUploads(ctx, in)
	if err != nil {
		return storage.UploadsPage{}, wrapMultipart(op, opts.Prefix, err)
	}
	decode := func(s string) (string, error) { return s, nil }
	if out.EncodingType == types.EncodingTypeUrl {
		decode = url.QueryUnescape
	}
	page := storage.UploadsPage{Truncated: aws.ToBool(out.IsTruncated)}
	for _, u := range out.Uploads {
		key, err := r.listedKey(decode, aws.ToString(u.Key))
		if err != nil {
			return storage.UploadsPage{}, fmt.Errorf("s3 %s %s: %w", op, opts.Prefix, err)
		}
		page.Uploads = append(page.Uploads, storage.UploadInfo{
			Key:       key,
			UploadID:  aws.ToString(u.UploadId),
			Initiated: aws.ToTime(u.Initiated),
		})
	}
	if page.Truncated {
		if len(page.Uploads) == 0 {
			return storage.UploadsPage{}, fmt.Errorf("s3 %s %s: truncated page without uploads", op, opts.Prefix)
		}
		last := page.Uploads[len(page.Uploads)-1]
		page.NextKeyMarker, page.NextUploadIDMarker = last.Key, aws.ToString(out.NextUploadIdMarker)
		if raw := aws.ToString(out.NextKeyMarker); raw != "" {
			key, err := r.listedKey(decode, raw)
			if err != nil {
				return storage.UploadsPage{}, fmt.Errorf("s3 %s %s: next key marker: %w", op, opts.Prefix, err)
			}
			page.NextKeyMarker = key
		}
		if page.NextUploadIDMarker == "" && page.NextKeyMarker == last.Key {
			// Without it the next page would skip the key's other uploads.
			page.NextUploadIDMarker = last.UploadID
		}
	}
	return page, nil
}
