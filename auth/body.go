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
//     differs. A caller must therefore read to io.EOF (io.Copy does) and
//     must not commit what it read before seeing io.EOF.
//   - For an aws-chunked body (p.Streaming()), the reader fails on the
//     first Read with ErrStreamingPayload: the body holds chunk framing
//     and chunk signatures that this package does not decode or verify,
//     and storing it as it is would corrupt the object. A caller that
//     handles aws-chunked itself reads r.Body instead.
//   - Otherwise (UNSIGNED-PAYLOAD, or Basic authentication) the client
//     signed no body, and the body is returned as it is.
//
// Closing the returned reader closes r.Body.
func VerifyBody(r *http.Request, p Principal) io.ReadCloser {
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	switch {
	case p.Streaming():
		return &failingBody{body: body}
	case !isHexSHA256(p.PayloadHash):
		return body
	}
	want, _ := hex.DecodeString(p.PayloadHash) // valid: isHexSHA256
	return &hashingBody{body: body, h: sha256.New(), want: want}
}

// failingBody is the reader VerifyBody returns for aws-chunked bodies.
type failingBody struct{ body io.ReadCloser }

func (b *failingBody) Read([]byte) (int, error) { return 0, ErrStreamingPayload }
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
