package auth

import (
	"errors"
	"fmt"
	"net/http"
)

// The errors Authenticate and the body reader return, matched with
// errors.Is. Returned errors wrap one of them with a short detail; no
// error text ever contains a secret, a signing key or the signature the
// server expected.
var (
	// ErrNoCredentials means the request carries no credentials at all;
	// the caller decides whether anonymous access is allowed.
	ErrNoCredentials = errors.New("auth: no credentials in the request")
	// ErrUnknownKey means the access key ID is not in the credentials file
	// (S3: InvalidAccessKeyId, 403).
	ErrUnknownKey = errors.New("auth: unknown access key ID")
	// ErrSignature means the signature or the Basic secret does not match,
	// or the signature leaves out a header it must cover (S3:
	// SignatureDoesNotMatch, 403).
	ErrSignature = errors.New("auth: signature does not match")
	// ErrSkewed means the request's time is more than MaxClockSkew from
	// the server's clock (S3: RequestTimeTooSkewed, 403).
	ErrSkewed = errors.New("auth: request time too skewed")
	// ErrExpired means a presigned URL is past its expiry (S3:
	// AccessDenied, 403).
	ErrExpired = errors.New("auth: presigned request has expired")
	// ErrMalformed means the credentials cannot be parsed or use an
	// unsupported scheme, algorithm or service (S3:
	// AuthorizationHeaderMalformed, 400).
	ErrMalformed = errors.New("auth: malformed authorization")
	// ErrBodyHash means the body read through VerifyBody does not hash to
	// the signed x-amz-content-sha256 (S3: XAmzContentSHA256Mismatch, 400).
	ErrBodyHash = errors.New("auth: body does not match x-amz-content-sha256")
	// ErrStreamingPayload is what the VerifyBody reader returns for an
	// aws-chunked body it cannot decode: a STREAMING-* variant other than
	// the three supported (the SigV4A ones, for instance), a signed one
	// whose request was not signed in the Authorization header, or a
	// trailing checksum algorithm it does not know (S3: NotImplemented,
	// 501).
	ErrStreamingPayload = errors.New("auth: unsupported aws-chunked (STREAMING-*) payload")
	// ErrChunkSignature means a chunk or the trailing headers of a signed
	// aws-chunked body do not match their signature, or the trailer
	// signature is missing. It wraps ErrSignature (S3:
	// SignatureDoesNotMatch, 403).
	ErrChunkSignature = fmt.Errorf("%w: aws-chunked chunk signature", ErrSignature)
	// ErrChecksum means the decoded body does not match the trailing
	// x-amz-checksum-* value (S3: BadDigest, 400).
	ErrChecksum = errors.New("auth: body does not match its trailing checksum")
	// ErrIncompleteBody means an aws-chunked body ended before its final
	// chunk and trailing headers, or its decoded length differs from
	// x-amz-decoded-content-length (S3: IncompleteBody, 400).
	ErrIncompleteBody = errors.New("auth: incomplete aws-chunked body")
	// ErrChunkEncoding means an aws-chunked body's framing is malformed
	// (a bad chunk header, a signed chunk larger than MaxChunkSize, a
	// trailing header that x-amz-trailer does not name, data after the
	// end), or its x-amz-trailer or x-amz-decoded-content-length header
	// is invalid (S3: InvalidArgument, 400).
	ErrChunkEncoding = errors.New("auth: malformed aws-chunked body")
)

// S3ErrorCode maps an error from this package to the S3 error code and
// HTTP status a server should answer with. Errors not from this package
// map to ("InternalError", 500).
func S3ErrorCode(err error) (code string, status int) {
	switch {
	case errors.Is(err, ErrNoCredentials):
		return "AccessDenied", http.StatusForbidden
	case errors.Is(err, ErrUnknownKey):
		return "InvalidAccessKeyId", http.StatusForbidden
	case errors.Is(err, ErrSignature):
		return "SignatureDoesNotMatch", http.StatusForbidden
	case errors.Is(err, ErrSkewed):
		return "RequestTimeTooSkewed", http.StatusForbidden
	case errors.Is(err, ErrExpired):
		return "AccessDenied", http.StatusForbidden
	case errors.Is(err, ErrMalformed):
		return "AuthorizationHeaderMalformed", http.StatusBadRequest
	case errors.Is(err, ErrBodyHash):
		return "XAmzContentSHA256Mismatch", http.StatusBadRequest
	case errors.Is(err, ErrStreamingPayload):
		return "NotImplemented", http.StatusNotImplemented
	case errors.Is(err, ErrChecksum):
		return "BadDigest", http.StatusBadRequest
	case errors.Is(err, ErrIncompleteBody):
		return "IncompleteBody", http.StatusBadRequest
	case errors.Is(err, ErrChunkEncoding):
		return "InvalidArgument", http.StatusBadRequest
	}
	return "InternalError", http.StatusInternalServerError
}
