package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Limits of the time checks.
const (
	// MaxClockSkew is how far a signed request's X-Amz-Date may be from
	// the server's clock, either way, as in S3.
	MaxClockSkew = 15 * time.Minute
	// MaxPresignExpiry is the longest X-Amz-Expires a presigned URL may
	// carry, as in S3 (7 days).
	MaxPresignExpiry = 7 * 24 * time.Hour
)

// The values of Principal.Method.
const (
	MethodSigV4     = "sigv4"     // AWS Signature Version 4, Authorization header
	MethodPresigned = "presigned" // AWS Signature Version 4, query string
	MethodBasic     = "basic"     // HTTP Basic, access key ID and secret
)

// Principal is the authenticated identity of a request.
type Principal struct {
	// AccessKeyID is the access key the request was authenticated with.
	AccessKeyID string
	// Scopes is what the key may do; the caller maps routes to scopes.
	Scopes Scopes
	// Method is how the request was authenticated: MethodSigV4,
	// MethodPresigned or MethodBasic.
	Method string
	// Region is the region of the SigV4 credential scope; any region is
	// accepted, and it is empty for Basic.
	Region string
	// PayloadHash is the payload hash the signature covers, as the client
	// sent it: a hex SHA-256 of the body (checked by VerifyBody),
	// "UNSIGNED-PAYLOAD", or a "STREAMING-..." value for aws-chunked
	// bodies (decoded and checked by VerifyBody). It is empty for Basic.
	PayloadHash string

	// stream is what verifying aws-chunked chunk signatures takes, set
	// for a header-signed request with a signed STREAMING-* payload. It
	// holds a signing key, so it is unexported and never printed.
	stream *streamKey
}

// Streaming reports whether the body is aws-chunked ("STREAMING-..."
// payload hash): it then carries chunk framing, which the VerifyBody
// reader decodes and verifies, and its object length is in the
// x-amz-decoded-content-length header (when the client sent one), not
// Content-Length. The caller should also drop "aws-chunked" from a
// Content-Encoding it stores.
func (p Principal) Streaming() bool { return strings.HasPrefix(p.PayloadHash, "STREAMING-") }

// Authenticate checks the credentials a request carries and returns who
// sent it. It accepts, in this order of precedence:
//
//   - an "Authorization: AWS4-HMAC-SHA256 ..." header (SigV4);
//   - "Authorization: Basic ..." with the access key ID as user name and
//     the secret as password (meant for TLS only: the secret travels in
//     the clear otherwise);
//   - SigV4 query parameters (a presigned URL).
//
// A request with none of these gets ErrNoCredentials; a request with both
// a header and presigned query parameters gets ErrMalformed. Every other
// failure wraps one of the package's sentinel errors. Authenticate reads
// neither the body nor anything that would stop it from streaming: when
// the signature covers a hex payload hash or the body is aws-chunked,
// wrap the body with VerifyBody.
func (s *Store) Authenticate(r *http.Request) (Principal, error) {
	authz := r.Header["Authorization"]
	presigned, err := hasPresignParams(r.URL.RawQuery)
	if err != nil {
		return Principal{}, err
	}
	switch {
	case len(authz) > 1:
		return Principal{}, fmt.Errorf("%w: more than one Authorization header", ErrMalformed)
	case len(authz) == 1 && presigned:
		return Principal{}, fmt.Errorf("%w: both an Authorization header and presigned query parameters", ErrMalformed)
	case len(authz) == 1:
		scheme, rest, _ := strings.Cut(authz[0], " ")
		switch {
		case scheme == sigV4Algorithm:
			return s.authHeader(r, rest)
		case strings.EqualFold(scheme, "Basic"):
			return s.authBasic(r)
		case scheme == "AWS":
			return Principal{}, fmt.Errorf("%w: AWS signature version 2 is not supported; use version 4", ErrMalformed)
		}
		return Principal{}, fmt.Errorf("%w: unsupported authorization scheme", ErrMalformed)
	case presigned:
		return s.authPresigned(r)
	}
	return Principal{}, ErrNoCredentials
}

// authBasic checks HTTP Basic credentials.
func (s *Store) authBasic(r *http.Request) (Principal, error) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		return Principal{}, fmt.Errorf("%w: bad Basic credentials encoding", ErrMalformed)
	}
	cred, ok := s.Lookup(id)
	if !ok {
		return Principal{}, ErrUnknownKey
	}
	// Compare digests so that neither the content nor the length of the
	// secret shows in the comparison's timing.
	got, want := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(cred.secret))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return Principal{}, fmt.Errorf("%w: wrong secret for Basic authentication", ErrSignature)
	}
	return Principal{AccessKeyID: cred.ID, Scopes: cred.Scopes, Method: MethodBasic}, nil
}
