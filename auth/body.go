package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
)

// VerifyBody returns the request body to read in place of r.Body, so
// that what the handler reads is what the client signed:
//
//   - For a hex SHA-256 payload hash (p.PayloadHash), the reader hashes
//     the body as it streams through, buffering nothing, and at the end
//     returns an error wrapping ErrBodyHash instead of io.EOF if the hash
//     differs.
//   - For an aws-chunked body (p.Streaming()), the reader decodes the
//     chunk framing and returns only the object's bytes. For
//     STREAMING-AWS4-HMAC-SHA256-PAYLOAD and its -TRAILER form, which
//     only a request signed in the Authorization header can use, it
//     holds each chunk (at most MaxChunkSize) until its signature
//     verifies and fails with ErrChunkSignature before returning any
//     byte of a chunk that does not; the trailing headers' signature is
//     checked too. For STREAMING-UNSIGNED-PAYLOAD-TRAILER, nothing is
//     signed and the bytes stream through as they arrive. For both
//     -TRAILER forms, the checksum named by the request's x-amz-trailer
//     header (x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256
//     or -sha512) is checked at the end (ErrChecksum). In all three, the
//     decoded length must equal x-amz-decoded-content-length when the
//     request has one, and a body that ends early fails
//     (ErrIncompleteBody); bad framing fails with ErrChunkEncoding; other
//     STREAMING-* variants and trailing checksum algorithms fail with
//     ErrStreamingPayload.
//   - Otherwise (UNSIGNED-PAYLOAD, or Basic authentication) the client
//     signed no body, and the body is returned as it is.
//
// The reader reports a failure only once it has read as far as the
// failure, so a caller must read to io.EOF (io.Copy does) and must not
// commit what it read before seeing io.EOF. Errors are sticky. Closing
// the returned reader closes r.Body.
func VerifyBody(r *http.Request, p Principal) io.ReadCloser {
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	switch {
	case p.Streaming():
		return newChunkedBody(r, body, p)
	case !isHexSHA256(p.PayloadHash):
		return body
	}
	want, _ := hex.DecodeString(p.PayloadHash) // valid: isHexSHA256
	return &hashingBody{body: body, h: sha256.New(), want: want}
}

// failingBody is the reader VerifyBody returns for a body it cannot
// decode, such as an unsupported aws-chunked variant.
type failingBody struct {
	body io.ReadCloser
	err  error
}

func (b *failingBody) Read([]byte) (int, error) { return 0, b.err }
func (b *failingBody) Close() error             { return b.body.Close() }

// hashingBody is the reader VerifyBody returns for a signed payload hash.
type hashingBody struct {
	body io.ReadCloser
	h    hash.Hash
	want []byte
	err  error // sticky: io.EOF, the ErrBodyHash error, or a read error
}

func (b *hashingBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.body.Read(p)
	b.h.Write(p[:n])
	switch {
	case err == io.EOF:
		if subtle.ConstantTimeCompare(b.h.Sum(nil), b.want) != 1 {
			err = ErrBodyHash
		}
		b.err = err
	case err != nil:
		b.err = err
	}
	return n, err
}

func (b *hashingBody) Close() error { return b.body.Close() }
