package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

func TestBasic(t *testing.T) {
	s := newTestStore(t)
	for _, tc := range []struct {
		name, header string
		want         error
	}{
		{"Good", "Basic " + base64.StdEncoding.EncodeToString([]byte(adminID+":"+adminSecret)), nil},
		{"LowerCaseScheme", "basic " + base64.StdEncoding.EncodeToString([]byte(adminID+":"+adminSecret)), nil},
		{"WrongSecret", "Basic " + base64.StdEncoding.EncodeToString([]byte(adminID+":"+readerSecret)), ErrSignature},
		{"SecretPrefix", "Basic " + base64.StdEncoding.EncodeToString([]byte(adminID+":"+adminSecret[:8])), ErrSignature},
		{"EmptySecret", "Basic " + base64.StdEncoding.EncodeToString([]byte(adminID+":")), ErrSignature},
		{"UnknownKey", "Basic " + base64.StdEncoding.EncodeToString([]byte("nobody:"+adminSecret)), ErrUnknownKey},
		{"NoColon", "Basic " + base64.StdEncoding.EncodeToString([]byte(adminID)), ErrMalformed},
		{"BadBase64", "Basic !!!", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/files/x", nil)
			r.Header.Set("Authorization", tc.header)
			p, err := s.Authenticate(r)
			wantErr(t, err, tc.want)
			if err == nil && (p.AccessKeyID != adminID || p.Method != MethodBasic || !p.Scopes.Has(ScopeWrite) || p.PayloadHash != "") {
				t.Errorf("principal %+v", p)
			}
			if err != nil && strings.Contains(err.Error(), adminSecret) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

func TestAuthenticateMisc(t *testing.T) {
	s := newTestStore(t)
	for _, tc := range []struct {
		name    string
		target  string
		headers []string // alternating Authorization values
		want    error
	}{
		{"None", "/bucket/k?prefix=a", nil, ErrNoCredentials},
		{"AmzParamsButNotPresigned", "/bucket/k?X-Amz-Foo=1", nil, ErrNoCredentials},
		{"TwoHeaders", "/", []string{"Basic a", "Basic b"}, ErrMalformed},
		{"Bearer", "/", []string{"Bearer abc"}, ErrMalformed},
		{"Empty", "/", []string{""}, ErrMalformed},
		{"SigV2", "/", []string{"AWS " + testID + ":c2lnbmF0dXJl"}, ErrMalformed},
		{"SigV2Query", "/b/k?AWSAccessKeyId=" + testID + "&Expires=1&Signature=abc", nil, ErrMalformed},
		{"SigV4NoParams", "/", []string{"AWS4-HMAC-SHA256"}, ErrMalformed},
		{"SigV4MissingSignature", "/", []string{"AWS4-HMAC-SHA256 Credential=" + testID + "/20260314/us-east-1/s3/aws4_request, SignedHeaders=host"}, ErrMalformed},
		{"SigV4ShortSignature", "/", []string{"AWS4-HMAC-SHA256 Credential=" + testID + "/20260314/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abcd"}, ErrMalformed},
		{"SigV4NoHost", "/", []string{"AWS4-HMAC-SHA256 Credential=" + testID + "/20260314/us-east-1/s3/aws4_request, SignedHeaders=x-amz-date, Signature=" + strings.Repeat("a", 64)}, ErrMalformed},
		{"SigV4UpperHeader", "/", []string{"AWS4-HMAC-SHA256 Credential=" + testID + "/20260314/us-east-1/s3/aws4_request, SignedHeaders=Host, Signature=" + strings.Repeat("a", 64)}, ErrMalformed},
		{"SigV4BadScope", "/", []string{"AWS4-HMAC-SHA256 Credential=" + testID + "/20260314/us-east-1/s3, SignedHeaders=host, Signature=" + strings.Repeat("a", 64)}, ErrMalformed},
		{"SigV4NoDate", "/", []string{"AWS4-HMAC-SHA256 Credential=" + testID + "/20260314/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("a", 64)}, ErrMalformed},
		{"SigV4Unknown", "/", []string{"AWS4-HMAC-SHA256 Credential=NOSUCH/20260314/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("a", 64)}, ErrUnknownKey},
		{"SigV4A", "/", []string{"AWS4-ECDSA-P256-SHA256 Credential=" + testID + "/20260314/s3/aws4_request, SignedHeaders=host, Signature=ab"}, ErrMalformed},
		{"PresignBadEscape", "/b/k?X-Amz-Signature=%zz", nil, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.target, nil)
			for _, h := range tc.headers {
				r.Header.Add("Authorization", h)
			}
			_, err := s.Authenticate(r)
			wantErr(t, err, tc.want)
		})
	}
}

// TestScopeDateMismatch: the credential scope's day must be the
// request's day.
func TestScopeDateMismatch(t *testing.T) {
	s := newTestStore(t)
	r := httptest.NewRequest(http.MethodGet, "/b/k", nil)
	r.Header.Set("X-Amz-Date", testNow.Format(amzDateFormat))
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testID+"/20260313/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("a", 64))
	_, err := s.Authenticate(r)
	wantErr(t, err, ErrMalformed)
}

// TestDirectCall authenticates a client-side request without a server in
// between, as a caller's unit test might.
func TestDirectCall(t *testing.T) {
	s := newTestStore(t)
	body := []byte("direct")
	r, _ := http.NewRequest(http.MethodPut, "http://objstore.example:10999/bucket/a%20b?tagging", bytes.NewReader(body))
	sdkSign(t, r, testID, testSecret, hexSHA256(body), testNow)
	p, err := s.Authenticate(r)
	wantErr(t, err, nil)
	got, err := io.ReadAll(VerifyBody(r, p))
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("body %q %v", got, err)
	}
}

func TestS3ErrorCode(t *testing.T) {
	for err, want := range map[error]string{
		ErrNoCredentials: "AccessDenied", ErrUnknownKey: "InvalidAccessKeyId", ErrSignature: "SignatureDoesNotMatch",
		ErrSkewed: "RequestTimeTooSkewed", ErrExpired: "AccessDenied", ErrMalformed: "AuthorizationHeaderMalformed",
		ErrBodyHash: "XAmzContentSHA256Mismatch", ErrStreamingPayload: "NotImplemented", errors.New("other"): "InternalError",
		ErrChunkSignature: "SignatureDoesNotMatch", ErrChecksum: "BadDigest", ErrIncompleteBody: "IncompleteBody",
		ErrChunkEncoding: "InvalidArgument",
	} {
		if code, _ := S3ErrorCode(err); code != want {
			t.Errorf("%v: %s, want %s", err, code, want)
		}
	}
	if code, status := S3ErrorCode(errors.Join(errors.New("x"), ErrSkewed)); code != "RequestTimeTooSkewed" || status != 403 {
		t.Errorf("wrapped: %s %d", code, status)
	}
}

func TestVerifyBody(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 100000)
	newReq := func(b []byte) *http.Request {
		return httptest.NewRequest(http.MethodPut, "/b/k", bytes.NewReader(b))
	}
	p := Principal{PayloadHash: hexSHA256(body)}

	// Matching body: streams through unchanged, in small reads.
	if err := iotest.TestReader(VerifyBody(newReq(body), p), body); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(iotest.HalfReader(VerifyBody(newReq(body), p)))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("matching body: %d bytes, %v", len(got), err)
	}
	// Upper-case hex is the same hash.
	if _, err := io.ReadAll(VerifyBody(newReq(body), Principal{PayloadHash: strings.ToUpper(p.PayloadHash)})); err != nil {
		t.Errorf("upper-case hash: %v", err)
	}

	// Mismatching bodies: one byte changed, truncated, extended, empty.
	changed := bytes.Clone(body)
	changed[len(changed)/2] ^= 1
	for name, b := range map[string][]byte{"changed": changed, "truncated": body[:len(body)-1], "extended": append(bytes.Clone(body), 'x'), "empty": nil} {
		rc := VerifyBody(newReq(b), p)
		_, err := io.Copy(io.Discard, rc)
		if !errors.Is(err, ErrBodyHash) {
			t.Errorf("%s: %v, want ErrBodyHash", name, err)
		}
		// The error is sticky.
		if _, err := rc.Read(make([]byte, 1)); !errors.Is(err, ErrBodyHash) {
			t.Errorf("%s: second read %v", name, err)
		}
		if err := rc.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}

	// A read error passes through rather than turning into a hash error.
	req := newReq(nil)
	req.Body = io.NopCloser(iotest.ErrReader(io.ErrUnexpectedEOF))
	if _, err := io.ReadAll(VerifyBody(req, p)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read error: %v", err)
	}

	// Nothing to verify: the body itself comes back.
	req = newReq([]byte("free"))
	for _, h := range []string{"", unsignedPayload} {
		if rc := VerifyBody(req, Principal{PayloadHash: h}); rc != req.Body {
			t.Errorf("%q: body wrapped", h)
		}
	}
	// aws-chunked bodies are decoded (chunked_test.go has the rest), never
	// passed on with their framing.
	for h, want := range map[string]error{
		"STREAMING-UNSIGNED-PAYLOAD-TRAILER": ErrIncompleteBody,   // "free" is no chunk header
		"STREAMING-AWS4-HMAC-SHA256-PAYLOAD": ErrStreamingPayload, // no key without SigV4 in the header
	} {
		p := Principal{PayloadHash: h}
		if !p.Streaming() {
			t.Errorf("%q: not streaming", h)
		}
		req.Body = io.NopCloser(strings.NewReader("free"))
		if _, err := io.ReadAll(VerifyBody(req, p)); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", h, err, want)
		}
	}
	// A nil body is an empty one.
	req.Body = nil
	if _, err := io.ReadAll(VerifyBody(req, Principal{PayloadHash: emptySHA256})); err != nil {
		t.Errorf("nil body: %v", err)
	}
}
