package s3remote

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/objstore/objstore/storage"
)

// PutFile stores the size bytes of body under key, as described by
// storage.FilePutter: parts are sent as soon as ready says their bytes
// can be read, several at once, each a section of body that the SDK reads
// to checksum (CRC-32, checked by the store), sends, and reads again if it
// retries. Nothing is buffered in memory, so an upload costs no more
// memory whatever its size, and the last part leaves as soon as the body
// has arrived. A body below the part size is one PutObject; a larger one
// a multipart upload, aborted on failure.
func (r *Remote) PutFile(ctx context.Context, key string, body io.ReaderAt, size int64, ready func(ctx context.Context, n int64) error, contentType string, meta map[string]string) (string, error) {
	if err := r.checkWrite("put", key, contentType, meta); err != nil {
		return "", err
	}
	if size < 0 {
		return "", fmt.Errorf("s3 put %s: %w: PutFile needs the body's size", key, storage.ErrInvalidArgument)
	}
	var ct *string
	if contentType != "" {
		ct = aws.String(contentType)
	}
	partSize := r.partSize
	if n := (size + partSize - 1) / partSize; n > storage.MaxParts {
		// Parts grow, in whole MiB, so the body fits S3's part count.
		partSize = (size/storage.MaxParts + 1<<20) &^ (1<<20 - 1)
	}
	if size < partSize {
		if err := ready(ctx, size); err != nil {
			return "", fmt.Errorf("s3 put %s: %w", key, err)
		}
		out, err := r.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:            aws.String(r.bucket),
			Key:               aws.String(r.prefix + key),
			Body:              io.NewSectionReader(body, 0, size),
			ContentLength:     aws.Int64(size),
			ContentType:       ct,
			Metadata:          encodeMeta(meta),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		})
		if err != nil {
			return "", wrap("put", key, err, false)
		}
		return aws.ToString(out.ETag), nil
	}

	created, err := r.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:            aws.String(r.bucket),
		Key:               aws.String(r.prefix + key),
		ContentType:       ct,
		Metadata:          encodeMeta(meta),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	})
	if err != nil {
		return "", wrap("put", key, err, false)
	}
	uploadID := aws.ToString(created.UploadId)
	parts := make([]types.CompletedPart, (size+partSize-1)/partSize)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.concurrency)
	for i := range parts {
		off := int64(i) * partSize
		n := min(partSize, size-off)
		// Parts start in order, each once its bytes are readable, at most
		// the configured number in flight.
		if err := ready(gctx, off+n); err != nil {
			// A part that failed canceled gctx; its error is the cause.
			if gerr := g.Wait(); gerr != nil {
				err = gerr
			}
			r.abort(key, uploadID)
			return "", wrap("put", key, err, false)
		}
		g.Go(func() error {
			out, err := r.client.UploadPart(gctx, &s3.UploadPartInput{
				Bucket:            aws.String(r.bucket),
				Key:               aws.String(r.prefix + key),
				UploadId:          aws.String(uploadID),
				PartNumber:        aws.Int32(int32(i + 1)),
				Body:              io.NewSectionReader(body, off, n),
				ContentLength:     aws.Int64(n),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
			})
			if err != nil {
				return fmt.Errorf("part %d: %w", i+1, err)
			}
			parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		r.abort(key, uploadID)
		return "", wrap("put", key, err, false)
	}
	out, err := r.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(r.bucket),
		Key:             aws.String(r.prefix + key),
		UploadId:        aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		var nsu *types.NoSuchUpload
		if !errors.As(err, &nsu) {
			r.abort(key, uploadID)
		}
		return "", wrap("put", key, err, false)
	}
	return aws.ToString(out.ETag), nil
}
