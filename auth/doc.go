// Package auth authenticates clients of objstore's public APIs (the REST
// API under /api/v1 and the S3-compatible endpoint) with access keys from
// a credentials file. It knows nothing of routes: the caller maps each
// route to the Scope it needs and checks Principal.Scopes.Has.
//
// # Credentials file
//
// The file named by --credentials-file is UTF-8 text, one access key per
// line:
//
//	# comment lines start with '#'; blank lines are ignored
//	ACCESS_KEY_ID  SECRET_ACCESS_KEY  SCOPE[,SCOPE...]  [# comment]
//
// for example:
//
//	backup-job   wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY  read,write
//	dashboard    9f1c2a7e55d04b1c                          read
//	ops.alice    Ze7-hJ2#q9!xLm4v                          admin
//
// Fields are separated by spaces or tabs. An access key ID is 3 to 128
// characters of A-Z a-z 0-9 _ . - (so it can never contain the '/' of a
// SigV4 credential scope or the ':' of Basic authentication). A secret is
// 8 to 256 printable ASCII characters other than space; it may contain
// '#', since only a field that starts a line or follows the scopes begins
// a comment. Scopes are "read", "write" and "admin", comma-separated
// without spaces. Each scope is explicit, except that admin implies all
// others: a key with only "write" cannot read. CRLF line ends and a UTF-8
// byte order mark are tolerated.
//
// A bad line (wrong field count, invalid ID or secret, unknown or empty
// scope, duplicate ID) makes the whole file fail to load with a
// *ParseError that names the line number and the problem but never quotes
// the line, since a garbled line may hold a secret. A file that group or
// others can access, or one with no keys, loads with a warning, available
// from Store.Warnings for the caller to log; this package logs nothing.
// Store.Reload, which the caller runs on SIGHUP, swaps in a new set
// atomically, or keeps the old one and returns the error.
//
// # Authenticating a request
//
// Store.Authenticate accepts:
//
//   - AWS Signature Version 4 in the Authorization header, as sent by the
//     AWS SDKs, the aws CLI and curl --aws-sigv4 "aws:amz:REGION:s3"
//     --user KEY:SECRET;
//   - SigV4 presigned URLs (X-Amz-Algorithm, X-Amz-Credential,
//     X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature
//     in the query), valid from X-Amz-Date (less MaxClockSkew) for
//     X-Amz-Expires seconds, at most 7 days;
//   - HTTP Basic with the access key ID as user name and the secret as
//     password, for curl --user KEY:SECRET. Basic sends the secret itself
//     with every request: use it over TLS only. Secrets are compared in
//     constant time.
//
// A request with none of these gets ErrNoCredentials, and the caller
// decides whether anonymous access is allowed. Failures wrap the sentinel
// errors ErrUnknownKey, ErrSignature, ErrSkewed, ErrExpired and
// ErrMalformed, and those of the VerifyBody reader ErrBodyHash,
// ErrChunkSignature, ErrChecksum, ErrIncompleteBody, ErrChunkEncoding and
// ErrStreamingPayload; S3ErrorCode maps them to S3 error codes and HTTP
// statuses.
// No error text contains a secret, a signing key or the expected
// signature.
//
// SigV4 credentials may name any region (reported in Principal.Region);
// the service must be "s3", since that is what every S3 client signs
// for, and the algorithm AWS4-HMAC-SHA256. The request time (X-Amz-Date,
// or the Date header in its absence) must be within MaxClockSkew (15
// minutes) of the server's clock, and the credential scope's date must be
// the request's day. The signed headers must include host, and every
// x-amz-* and X-Meta-* header in the request must be signed (x-amz-date and
// x-amz-content-sha256 excepted, which the signature covers anyway), so
// that no one can add, say, x-amz-copy-source to a signed request; other
// headers may be added freely, as proxies do.
//
// # How signatures are verified
//
// The canonical request is built here, following AWS's specification
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
// and, for S3's rules, sig-v4-header-based-auth.html), not by re-signing
// a copy of the request with the signer in aws-sdk-go-v2. That signer
// decides by itself which headers to sign, and a verifier has to sign
// exactly the headers the client listed in SignedHeaders: the SDK signer
// signs content-length only from http.Request.ContentLength and only when
// it is above zero, so it cannot reproduce "content-length:0", which
// clients that sign every header they send (the AWS SDK for Java, for
// one) produce for an empty PUT; it skips User-Agent, Expect,
// Transfer-Encoding and X-Amzn-Trace-Id, which some clients sign; and it
// derives the host and query in its own way (dropping a default port,
// re-parsing the query). The
// canonicalization is about a hundred lines; the tests check it against
// requests signed by the SDK's signer (headers and presigned), by the
// SDK's own S3 client and presign client, and by curl.
//
// Clients disagree on two details, so the signature is checked against a
// few candidate canonical requests and accepted if any matches. The
// canonical URI is tried as the path was received and as the S3
// per-segment re-encoding of it, for a client that sends a path in one
// form and signs the canonical one; for header signatures, the canonical query
// is tried both in its spec form (decoded as Go's url.ParseQuery decodes
// it, '+' being a space, then re-encoded and sorted) and exactly as sent,
// because curl 7.88 signs the query as written, unsorted and with "acl"
// for "acl=". Every candidate is a function of the same decoded path and
// parameters, so a signature over one request can never match a
// different one.
//
// Authenticate must be given the request as the server received it: it
// reads r.Host and r.RequestURI. A reverse proxy in front must preserve
// the Host header and the request target, or every signature fails.
//
// # Payloads
//
// Authenticate never reads the body. The payload hash the signature covers
// (x-amz-content-sha256, or UNSIGNED-PAYLOAD for presigned URLs) is
// returned in Principal.PayloadHash, and VerifyBody wraps the body so that
// a hex hash is checked as the body streams, failing at the end with
// ErrBodyHash on a mismatch, and an aws-chunked body is decoded and
// verified (below). A SigV4 request without x-amz-content-sha256
// is accepted only when it has no body (its payload hash is then the
// empty body's): with a body, the signature covers a hash that cannot be
// known before reading all of it, so such requests get ErrMalformed.
// Older curl (7.88, Debian 12's) sends no x-amz-content-sha256; add
// -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" (or the body's hex SHA-256,
// which makes curl sign it and this package check it).
//
// # aws-chunked bodies
//
// S3 clients upload in aws-chunked encoding
// (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html
// and sigv4-streaming-trailers.html), telling it by x-amz-content-sha256
// (Principal.Streaming); VerifyBody decodes three variants:
//
//   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD: every chunk carries a signature
//     chained on the previous one, the first on the Authorization
//     header's. The reader holds a chunk (at most MaxChunkSize) until its
//     signature verifies, so no byte of a forged, reordered or dropped
//     chunk reaches the caller.
//   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: the same, followed by
//     a trailing checksum header and a signature over it.
//   - STREAMING-UNSIGNED-PAYLOAD-TRAILER, which the AWS SDK for Go sends
//     over HTTPS: chunks without signatures, the trailing checksum being
//     the only integrity check, so the bytes stream through unverified
//     until the end.
//
// The trailing checksum is the one the request's x-amz-trailer header
// names: CRC32, CRC32C, CRC64NVME, SHA1, SHA256 or SHA512, as the AWS
// SDK for Go computes them (others get ErrStreamingPayload). The decoded
// length must equal x-amz-decoded-content-length when present. The
// signed variants need the signing key, which only a request signed in
// the Authorization header provides. The tests check the decoder against
// the examples of AWS's documentation, bodies signed with the SDK's
// chunk signer, and the SDK's S3 client over TLS with each checksum.
//
// # Limitations
//
//   - An x-amz-checksum-* request header (sent instead of a trailer) is
//     not checked; only the trailing checksum of an aws-chunked body is.
//   - Not supported: Signature Version 2, SigV4A (ECDSA, aws-chunked
//     variants included), browser POST policy uploads, and temporary
//     credentials (an X-Amz-Security-Token is not checked; the keys are
//     the long-term ones of the file).
//   - ErrUnknownKey tells a client that an access key ID does not exist,
//     as S3's InvalidAccessKeyId does.
package auth
