package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	sigV4Terminal  = "aws4_request"
	sigV4Service   = "s3"
	amzDateFormat  = "20060102T150405Z"
	scopeDateFmt   = "20060102"

	unsignedPayload = "UNSIGNED-PAYLOAD"
	// emptySHA256 is the hex SHA-256 of an empty body.
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// The presigned URL query parameters.
const (
	qAlgorithm     = "X-Amz-Algorithm"
	qCredential    = "X-Amz-Credential"
	qDate          = "X-Amz-Date"
	qExpires       = "X-Amz-Expires"
	qSignedHeaders = "X-Amz-SignedHeaders"
	qSignature     = "X-Amz-Signature"
	qContentSHA256 = "X-Amz-Content-Sha256"
)

// sigV4 is what a SigV4 request claims, from its header or its query.
type sigV4 struct {
	accessKeyID   string
	scopeDate     string // YYYYMMDD from the credential scope
	region        string
	amzDate       string // the request time as signed, 20060102T150405Z
	signedAt      time.Time
	signedHeaders []string // lower case, in the client's order
	signedRaw     string   // the SignedHeaders value as sent
	signature     []byte   // 32 bytes
	payloadHash   string
	query         []queryParam // presigned: decoded, X-Amz-Signature left out
}

// authHeader verifies "Authorization: AWS4-HMAC-SHA256 <params>"; params
// is the text after the algorithm name.
func (s *Store) authHeader(r *http.Request, params string) (Principal, error) {
	var v sigV4
	var credential, signature string
	var haveCred, haveSigned, haveSig bool
	for _, part := range strings.Split(params, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Principal{}, fmt.Errorf("%w: Authorization parameter without '='", ErrMalformed)
		}
		var seen *bool
		switch k {
		case "Credential":
			credential, seen = val, &haveCred
		case "SignedHeaders":
			v.signedRaw, seen = val, &haveSigned
		case "Signature":
			signature, seen = val, &haveSig
		default:
			return Principal{}, fmt.Errorf("%w: unknown Authorization parameter", ErrMalformed)
		}
		if *seen {
			return Principal{}, fmt.Errorf("%w: repeated Authorization parameter %s", ErrMalformed, k)
		}
		*seen = true
	}
	if !haveCred || !haveSigned || !haveSig {
		return Principal{}, fmt.Errorf("%w: Authorization needs Credential, SignedHeaders and Signature", ErrMalformed)
	}
	if err := v.parseCommon(credential, v.signedRaw, signature); err != nil {
		return Principal{}, err
	}
	cred, ok := s.Lookup(v.accessKeyID)
	if !ok {
		return Principal{}, ErrUnknownKey
	}

	// The request time: X-Amz-Date, or the Date header in its absence.
	if d := r.Header.Get("X-Amz-Date"); d != "" {
		t, err := time.Parse(amzDateFormat, d)
		if err != nil {
			return Principal{}, fmt.Errorf("%w: bad X-Amz-Date", ErrMalformed)
		}
		v.amzDate, v.signedAt = d, t
	} else if d := r.Header.Get("Date"); d != "" {
		t, err := http.ParseTime(d)
		if err != nil {
			return Principal{}, fmt.Errorf("%w: bad Date header", ErrMalformed)
		}
		v.signedAt = t.UTC()
		v.amzDate = v.signedAt.Format(amzDateFormat)
	} else {
		return Principal{}, fmt.Errorf("%w: no X-Amz-Date or Date header", ErrMalformed)
	}
	if err := v.checkScopeDate(); err != nil {
		return Principal{}, err
	}
	if d := s.now().Sub(v.signedAt); d > MaxClockSkew || d < -MaxClockSkew {
		return Principal{}, fmt.Errorf("%w: request time differs from the server's by %s, more than %s",
			ErrSkewed, d.Abs().Round(time.Second), MaxClockSkew)
	}

	// S3 always signs x-amz-content-sha256. A client that leaves it out
	// (curl 7.88, for one) signed the body's hash, which is
	// known without reading the body only when there is no body.
	switch v.payloadHash = r.Header.Get("X-Amz-Content-Sha256"); {
	case v.payloadHash != "":
		if !validPayloadHash(v.payloadHash) {
			return Principal{}, fmt.Errorf("%w: bad x-amz-content-sha256 value", ErrMalformed)
		}
	case bodyEmpty(r):
		v.payloadHash = emptySHA256
	default:
		return Principal{}, fmt.Errorf("%w: x-amz-content-sha256 header required for a request with a body "+
			"(its hex SHA-256, or UNSIGNED-PAYLOAD)", ErrMalformed)
	}

	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return Principal{}, err
	}
	// Also try the query exactly as sent: curl 7.88 signs it without
	// sorting or re-encoding it. Like the path forms in verify, this is a
	// function of the same parameters, so it cannot cover another request.
	queries := []string{canonicalQuery(q)}
	if raw := r.URL.RawQuery; raw != queries[0] {
		queries = append(queries, raw)
	}
	if err := v.verify(r, cred, queries, "X-Amz-Date", "X-Amz-Content-Sha256"); err != nil {
		return Principal{}, err
	}
	p := Principal{AccessKeyID: cred.ID, Scopes: cred.Scopes, Method: MethodSigV4,
		Region: v.region, PayloadHash: v.payloadHash}
	if v.payloadHash == streamingSigned || v.payloadHash == streamingSignedTrailer {
		// Each chunk signature chains on this request's signature.
		p.stream = &streamKey{key: cred.signingKey(v.scopeDate, v.region),
			amzDate: v.amzDate, scope: v.scope(), seed: v.signature}
	}
	return p, nil
}

// authPresigned verifies a presigned URL: SigV4 in the query string.
func (s *Store) authPresigned(r *http.Request) (Principal, error) {
	all, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return Principal{}, err
	}
	var v sigV4
	params := map[string]string{}
	for _, p := range all {
		switch p.key {
		case qAlgorithm, qCredential, qDate, qExpires, qSignedHeaders, qSignature, qContentSHA256:
			if _, dup := params[p.key]; dup {
				return Principal{}, fmt.Errorf("%w: repeated query parameter %s", ErrMalformed, p.key)
			}
			params[p.key] = p.value
		}
		if p.key != qSignature {
			v.query = append(v.query, p)
		}
	}
	for _, k := range []string{qAlgorithm, qCredential, qDate, qExpires, qSignedHeaders, qSignature} {
		if _, ok := params[k]; !ok {
			return Principal{}, fmt.Errorf("%w: presigned URL lacks %s", ErrMalformed, k)
		}
	}
	if params[qAlgorithm] != sigV4Algorithm {
		return Principal{}, fmt.Errorf("%w: unsupported X-Amz-Algorithm (want %s)", ErrMalformed, sigV4Algorithm)
	}
	if err := v.parseCommon(params[qCredential], params[qSignedHeaders], params[qSignature]); err != nil {
		return Principal{}, err
	}
	cred, ok := s.Lookup(v.accessKeyID)
	if !ok {
		return Principal{}, ErrUnknownKey
	}
	t, err := time.Parse(amzDateFormat, params[qDate])
	if err != nil {
		return Principal{}, fmt.Errorf("%w: bad X-Amz-Date", ErrMalformed)
	}
	v.amzDate, v.signedAt = params[qDate], t
	if err := v.checkScopeDate(); err != nil {
		return Principal{}, err
	}
	exp, err := strconv.ParseInt(params[qExpires], 10, 64)
	if err != nil || exp < 1 || exp > int64(MaxPresignExpiry/time.Second) {
		return Principal{}, fmt.Errorf("%w: X-Amz-Expires must be 1 to %d seconds", ErrMalformed, int64(MaxPresignExpiry/time.Second))
	}
	now := s.now()
	if v.signedAt.Sub(now) > MaxClockSkew {
		return Principal{}, fmt.Errorf("%w: presigned URL is not valid yet", ErrSkewed)
	}
	if now.After(v.signedAt.Add(time.Duration(exp) * time.Second)) {
		return Principal{}, ErrExpired
	}
	// S3 presigned URLs sign UNSIGNED-PAYLOAD unless the client put a
	// payload hash in the query.
	v.payloadHash = unsignedPayload
	if h, ok := params[qContentSHA256]; ok {
		if !validPayloadHash(h) {
			return Principal{}, fmt.Errorf("%w: bad X-Amz-Content-Sha256 value", ErrMalformed)
		}
		v.payloadHash = h
	}
	if err := v.verify(r, cred, []string{canonicalQuery(v.query)}); err != nil {
		return Principal{}, err
	}
	return Principal{AccessKeyID: cred.ID, Scopes: cred.Scopes, Method: MethodPresigned,
		Region: v.region, PayloadHash: v.payloadHash}, nil
}

// parseCommon parses the credential scope, the signed header list and the
// signature, which both forms carry.
func (v *sigV4) parseCommon(credential, signedHeaders, signature string) error {
	parts := strings.Split(credential, "/")
	if len(parts) != 5 || parts[0] == "" || parts[2] == "" || parts[4] != sigV4Terminal {
		return fmt.Errorf("%w: credential must be ACCESS_KEY_ID/DATE/REGION/s3/aws4_request", ErrMalformed)
	}
	if _, err := time.Parse(scopeDateFmt, parts[1]); err != nil || len(parts[1]) != len(scopeDateFmt) {
		return fmt.Errorf("%w: bad date in credential scope", ErrMalformed)
	}
	if parts[3] != sigV4Service {
		return fmt.Errorf("%w: credential scope names a service other than s3", ErrMalformed)
	}
	v.accessKeyID, v.scopeDate, v.region = parts[0], parts[1], parts[2]

	v.signedRaw = signedHeaders
	seen := map[string]bool{}
	for _, h := range strings.Split(signedHeaders, ";") {
		if !validSignedHeaderName(h) {
			return fmt.Errorf("%w: SignedHeaders must be lower-case header names separated by ';'", ErrMalformed)
		}
		if seen[h] {
			return fmt.Errorf("%w: SignedHeaders repeats a header", ErrMalformed)
		}
		seen[h] = true
		v.signedHeaders = append(v.signedHeaders, h)
	}
	// Without host, a signature could be replayed against another server
	// or virtual-hosted bucket; SigV4 requires it.
	if !seen["host"] {
		return fmt.Errorf("%w: SignedHeaders must include host", ErrMalformed)
	}

	sig, err := hex.DecodeString(signature)
	if err != nil || len(sig) != sha256.Size {
		return fmt.Errorf("%w: signature must be 64 hex digits", ErrMalformed)
	}
	v.signature = sig
	return nil
}

// scope returns the credential scope: DATE/REGION/s3/aws4_request.
func (v *sigV4) scope() string {
	return v.scopeDate + "/" + v.region + "/" + sigV4Service + "/" + sigV4Terminal
}

// checkScopeDate requires the credential scope's date to be the day of the
// request time, as SigV4 does.
func (v *sigV4) checkScopeDate() error {
	if v.amzDate[:len(scopeDateFmt)] != v.scopeDate {
		return fmt.Errorf("%w: credential scope date is not the request's date", ErrMalformed)
	}
	return nil
}

// verify recomputes the signature over each candidate canonical request
// (path forms times the query forms in queries) and compares it with the
// client's in constant time.
//
// Every x-amz-* and X-Meta-* header present must be signed, except those named in
// exempt, whose values the signature covers by other means; otherwise a
// third party could add one (x-amz-copy-source, x-amz-meta-*) that
// changes what the request does.
//
// The canonical URI is tried in two forms, the path exactly as received
// and the path re-encoded per segment the S3 way, because clients differ
// in which of the two they sign; both are functions of the same decoded
// path segments, so neither lets a signature cover a different request.
func (v *sigV4) verify(r *http.Request, cred Credential, queries []string, exempt ...string) error {
	signed := map[string]bool{}
	for _, h := range v.signedHeaders {
		signed[h] = true
	}
	for name := range r.Header {
		lower := strings.ToLower(name)
		if !mustSign(lower) || signed[lower] {
			continue
		}
		isExempt := false
		for _, e := range exempt {
			isExempt = isExempt || strings.EqualFold(e, name)
		}
		if !isExempt {
			return fmt.Errorf("%w: header %s is present but not signed", ErrSignature, name)
		}
	}

	var hdrs strings.Builder
	for _, h := range v.signedHeaders {
		hdrs.WriteString(h)
		hdrs.WriteByte(':')
		hdrs.WriteString(canonicalHeaderValue(r, h))
		hdrs.WriteByte('\n')
	}
	scope := v.scope()
	key := cred.signingKey(v.scopeDate, v.region)

	for _, uri := range canonicalURIs(r) {
		for _, query := range queries {
			canonical := strings.Join([]string{r.Method, uri, query, hdrs.String(), v.signedRaw, v.payloadHash}, "\n")
			sum := sha256.Sum256([]byte(canonical))
			toSign := sigV4Algorithm + "\n" + v.amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
			if hmac.Equal(hmacSHA256(key, toSign), v.signature) {
				return nil
			}
		}
	}
	return ErrSignature
}

// mustSign reports whether a header, when present, must be covered by
// the signature: S3's x-amz-* headers, and objstore's own X-Meta-*
// headers, which say what a request does (which object, which level, a
// purge) as much as its path does.
func mustSign(lower string) bool {
	return strings.HasPrefix(lower, "x-amz-") || strings.HasPrefix(lower, "x-meta-")
}

// signingKeys remembers the signing keys a secret derived, by day and
// region: deriving one is four HMACs, a sixth of an S3 request's cost on a
// cache hit. It holds a few at most, since a request's day must be within
// the allowed clock skew of today's.
type signingKeys struct {
	mu   sync.Mutex
	keys map[[2]string][]byte // by [date, region]
}

// maxSigningKeys bounds a secret's remembered keys: any region is taken,
// so a client could otherwise make it hold one per region name it sends.
const maxSigningKeys = 16

// signingKey returns c's SigV4 signing key for S3 on date in region. The
// returned slice must not be modified.
func (c Credential) signingKey(date, region string) []byte {
	if c.keys == nil {
		return signingKey(c.secret, date, region, sigV4Service)
	}
	k := [2]string{date, region}
	c.keys.mu.Lock()
	key, ok := c.keys.keys[k]
	c.keys.mu.Unlock()
	if ok {
		return key
	}
	key = signingKey(c.secret, date, region, sigV4Service)
	c.keys.mu.Lock()
	if c.keys.keys == nil || len(c.keys.keys) >= maxSigningKeys {
		c.keys.keys = make(map[[2]string][]byte)
	}
	c.keys.keys[k] = key
	c.keys.mu.Unlock()
	return key
}

// signingKey derives the SigV4 signing key for a day, region and service.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, sigV4Terminal)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalHeaderValue returns the canonical value of the signed header
// name (lower case): its values trimmed, runs of spaces collapsed, and
// joined with commas. Go's server moves Host and Transfer-Encoding out of
// r.Header, so those come from the request's fields.
func canonicalHeaderValue(r *http.Request, name string) string {
	var vals []string
	switch name {
	case "host":
		h := r.Host
		if h == "" {
			h = r.URL.Host
		}
		vals = []string{h}
	case "content-length":
		vals = r.Header.Values("Content-Length")
		if len(vals) == 0 && r.ContentLength >= 0 {
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		vals = r.Header.Values("Transfer-Encoding")
		if len(vals) == 0 {
			vals = []string{strings.Join(r.TransferEncoding, ",")}
		}
	default:
		vals = r.Header.Values(name)
	}
	out := make([]string, len(vals)) // vals may alias r.Header
	for i, s := range vals {
		out[i] = collapseSpaces(strings.TrimSpace(s))
	}
	return strings.Join(out, ",")
}

// collapseSpaces replaces each run of spaces with one space.
func collapseSpaces(s string) string {
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	prevSpace := false
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			if prevSpace {
				continue
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// canonicalURIs returns the candidate canonical URIs: the escaped path as
// received and, if different, its per-segment S3 re-encoding.
func canonicalURIs(r *http.Request) []string {
	var p string
	switch {
	case strings.HasPrefix(r.RequestURI, "/"):
		// The request target as it came off the wire; r.URL.EscapedPath
		// would re-escape characters that Go deems invalid.
		p, _, _ = strings.Cut(r.RequestURI, "?")
	case r.URL.Opaque != "":
		// A client-side request pre-escaped as "//host/path".
		p = strings.TrimPrefix(r.URL.Opaque, "//")
		if i := strings.IndexByte(p, '/'); i >= 0 {
			p = p[i:]
		} else {
			p = ""
		}
	default:
		p = r.URL.EscapedPath()
	}
	if p == "" {
		p = "/"
	}
	out := []string{p}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return out
		}
		segs[i] = uriEncode(dec, true)
	}
	if n := strings.Join(segs, "/"); n != p {
		out = append(out, n)
	}
	return out
}

// queryParam is one decoded query parameter.
type queryParam struct{ key, value string }

// parseQuery decodes a raw query string the way Go's url.ParseQuery does
// ('+' is a space), so that what is verified is what the caller's
// r.URL.Query() will see; unlike ParseQuery it keeps repeated and
// ';'-bearing parameters in order, and fails on bad escapes.
func parseQuery(raw string) ([]queryParam, error) {
	var out []queryParam
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, val, _ := strings.Cut(pair, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(val)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: bad %%-escape in the query string", ErrMalformed)
		}
		out = append(out, queryParam{dk, dv})
	}
	return out, nil
}

// hasPresignParams reports whether the query carries SigV4 presigning
// parameters. A query that does not decode is an error only if it looks
// like it was meant to be presigned.
func hasPresignParams(raw string) (bool, error) {
	if !strings.Contains(raw, "X-Amz-") && !strings.Contains(raw, "Signature=") {
		return false, nil
	}
	q, err := parseQuery(raw)
	if err != nil {
		if strings.Contains(raw, qSignature) || strings.Contains(raw, qAlgorithm) {
			return false, err
		}
		return false, nil
	}
	sigV2 := false
	for _, p := range q {
		switch p.key {
		case qAlgorithm, qCredential, qSignature:
			return true, nil
		case "Signature", "AWSAccessKeyId":
			sigV2 = true
		}
	}
	if sigV2 {
		return false, fmt.Errorf("%w: AWS signature version 2 is not supported; use version 4", ErrMalformed)
	}
	return false, nil
}

// canonicalQuery encodes each name and value, sorts by encoded name then
// value (SigV4 sorts after encoding) and joins them.
func canonicalQuery(q []queryParam) string {
	enc := make([]queryParam, len(q))
	for i, p := range q {
		enc[i] = queryParam{uriEncode(p.key, true), uriEncode(p.value, true)}
	}
	sort.Slice(enc, func(i, j int) bool {
		if enc[i].key != enc[j].key {
			return enc[i].key < enc[j].key
		}
		return enc[i].value < enc[j].value
	})
	var b strings.Builder
	for i, p := range enc {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

// uriEncode percent-encodes every byte outside RFC 3986's unreserved set
// with upper-case hex, as SigV4 requires; '/' too if encodeSlash.
func uriEncode(s string, encodeSlash bool) string {
	const hexUpper = "0123456789ABCDEF"
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || c == '/' && !encodeSlash
	}
	if plain {
		return s // most names and values: nothing to encode, nothing to copy
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~', c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexUpper[c>>4])
			b.WriteByte(hexUpper[c&15])
		}
	}
	return b.String()
}

// validSignedHeaderName reports whether h is a non-empty lower-case HTTP
// header name (an RFC 9110 token without upper-case letters).
func validSignedHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validPayloadHash reports whether h is a payload hash S3 accepts: a hex
// SHA-256, UNSIGNED-PAYLOAD, or one of the STREAMING-* markers.
func validPayloadHash(h string) bool {
	if isHexSHA256(h) {
		return true
	}
	switch h {
	case unsignedPayload, streamingUnsignedTrailer, streamingSigned, streamingSignedTrailer:
		return true
	}
	return false
}

// isHexSHA256 reports whether h is 64 hex digits.
func isHexSHA256(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

// bodyEmpty reports whether the request has no body, without reading it.
func bodyEmpty(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	return r.ContentLength == 0 && len(r.TransferEncoding) == 0
}
