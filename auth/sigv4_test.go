package auth

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// TestSigV4 signs requests with the AWS SDK's signer and sends them to a
// server that authenticates them.
func TestSigV4(t *testing.T) {
	s := newTestStore(t)
	srv, ch := authServer(t, s)

	get := func(t *testing.T, path string) *http.Request {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	put := func(t *testing.T, path string, body []byte) *http.Request {
		req, err := http.NewRequest(http.MethodPut, srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return req
	}

	t.Run("GETQueryEncoding", func(t *testing.T) {
		for _, path := range []string{
			"/",
			"/bucket",
			"/bucket/dir/sub%20dir/a%2Bb%25c%E2%9C%93.txt",
			"/bucket/a%2Fb/c", // an encoded slash stays one segment
			"/bucket/✓/ü~x!$&'()*,;=:@",
			"/bucket/k?prefix=a%20b&delimiter=%2F&start-after=x%2By%25z%E2%9C%93",
			"/bucket?list-type=2&prefix=a+b&prefix=c/d&empty=&flag",
			"/bucket?x-id=GetObject&versionId=3%2F4%3D%3D",
		} {
			req := get(t, path)
			req.Header.Set("Range", "bytes=0-9")
			sdkSign(t, req, testID, testSecret, emptySHA256, testNow)
			res := do(t, req, ch)
			if res.err != nil {
				t.Errorf("%s: %v (sent %s)", path, res.err, res.req.RequestURI)
				continue
			}
			want := Principal{AccessKeyID: testID, Scopes: Scopes(ScopeRead | ScopeWrite), Method: MethodSigV4,
				Region: "us-east-1", PayloadHash: emptySHA256}
			if res.p != want {
				t.Errorf("%s: principal %+v, want %+v", path, res.p, want)
			}
		}
	})
	t.Run("PUTPayloadHash", func(t *testing.T) {
		body := bytes.Repeat([]byte("objstore "), 10000)
		req := put(t, "/bucket/big.bin", body)
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("X-Amz-Meta-Color", "  blue   and  green ")
		sdkSign(t, req, testID, testSecret, hexSHA256(body), testNow)
		res := do(t, req, ch)
		wantErr(t, res.err, nil)
		wantErr(t, res.bodyErr, nil)
		if !bytes.Equal(res.body, body) {
			t.Error("body changed")
		}
		if res.p.PayloadHash != hexSHA256(body) || res.p.Streaming() {
			t.Errorf("principal %+v", res.p)
		}
	})
	t.Run("PUTBodyMismatch", func(t *testing.T) {
		req := put(t, "/bucket/k", []byte("what was sent"))
		sdkSign(t, req, testID, testSecret, hexSHA256([]byte("what was signed")), testNow)
		res := do(t, req, ch)
		wantErr(t, res.err, nil) // the headers are authentic ...
		wantErr(t, res.bodyErr, ErrBodyHash)
	})
	t.Run("PUTUnsignedPayload", func(t *testing.T) {
		req := put(t, "/bucket/k", []byte("anything"))
		sdkSign(t, req, testID, testSecret, unsignedPayload, testNow)
		res := do(t, req, ch)
		wantErr(t, res.err, nil)
		wantErr(t, res.bodyErr, nil)
		if res.p.PayloadHash != unsignedPayload || string(res.body) != "anything" {
			t.Errorf("principal %+v body %q", res.p, res.body)
		}
	})
	t.Run("PUTStreaming", func(t *testing.T) {
		// An aws-chunked upload over HTTP: the seed signature verifies,
		// and VerifyBody decodes the body, checking each chunk's
		// signature; a bad chunk signature fails the body.
		payload := []byte("hello, chunked world")
		for _, tamper := range []bool{false, true} {
			req := put(t, "/bucket/k", nil)
			req.Header.Set("Content-Encoding", "aws-chunked")
			req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(payload)))
			sdkSign(t, req, testID, testSecret, streamingSigned, testNow)
			_, sig, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
			seed, _ := hex.DecodeString(sig)
			c := streamSigner{secret: testSecret, region: "us-east-1", at: testNow, seed: seed}.encode(t, streamingSigned, payload, []int{8}, "", "")
			if tamper {
				c.frames[1].data[0] ^= 1
			}
			body := c.bytes()
			req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			res := do(t, req, ch)
			wantErr(t, res.err, nil)
			if !res.p.Streaming() {
				t.Errorf("principal %+v", res.p)
			}
			if tamper {
				wantErr(t, res.bodyErr, ErrChunkSignature)
				if string(res.body) != "hello, c" {
					t.Errorf("handed out %q", res.body)
				}
				continue
			}
			wantErr(t, res.bodyErr, nil)
			if !bytes.Equal(res.body, payload) {
				t.Errorf("body %q", res.body)
			}
		}
	})
	t.Run("PUTEmptyBody", func(t *testing.T) {
		// Java SDKs sign "content-length:0", which the SDK's own signer
		// never does; set it by hand.
		req := put(t, "/bucket/marker/", nil)
		req.ContentLength = 0
		req.Body = http.NoBody
		req.Header.Set("Content-Length", "0")
		req.Header.Set("X-Amz-Date", testNow.Format(amzDateFormat))
		req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		req.Header.Set("Authorization", handSign(req, testID, testSecret,
			[]string{"content-length", "host", "x-amz-content-sha256", "x-amz-date"}, emptySHA256))
		wantErr(t, do(t, req, ch).err, nil)
	})
	t.Run("ExtraUnsignedHeaders", func(t *testing.T) {
		req := get(t, "/bucket/k")
		sdkSign(t, req, testID, testSecret, emptySHA256, testNow)
		req.Header.Set("X-Forwarded-For", "10.1.2.3")
		req.Header.Set("User-Agent", "changed/1.0")
		req.Header.Set("Accept", "*/*")
		req.Header.Set("X-Amzn-Trace-Id", "Root=1-abc")
		wantErr(t, do(t, req, ch).err, nil)
	})
	for _, tc := range []struct {
		name   string
		tamper func(*http.Request)
	}{
		{"SignedHeaderChanged", func(r *http.Request) { r.Header.Set("Range", "bytes=0-99999") }},
		{"SignedHeaderAdded", func(r *http.Request) { r.Header.Add("Range", "bytes=5-6") }},
		{"SignedHeaderRemoved", func(r *http.Request) { r.Header.Del("Range") }},
		{"UnsignedAmzHeaderAdded", func(r *http.Request) { r.Header.Set("X-Amz-Copy-Source", "/other/key") }},
		{"QueryChanged", func(r *http.Request) { r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "1", "2", 1) }},
		{"QueryAdded", func(r *http.Request) { r.URL.RawQuery += "&versionId=7" }},
		{"PathChanged", func(r *http.Request) { r.URL.Path = "/bucket/other" }},
		{"SlashEncoded", func(r *http.Request) { r.URL.RawPath = "/bucket%2Fk" }},
		{"MethodChanged", func(r *http.Request) { r.Method = http.MethodDelete }},
		{"PayloadHashChanged", func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", unsignedPayload) }},
		{"DateChanged", func(r *http.Request) {
			r.Header.Set("X-Amz-Date", testNow.Add(time.Second).Format(amzDateFormat))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := get(t, "/bucket/k?partNumber=1")
			req.Header.Set("Range", "bytes=0-9")
			sdkSign(t, req, testID, testSecret, emptySHA256, testNow)
			tc.tamper(req)
			wantErr(t, do(t, req, ch).err, ErrSignature)
		})
	}
	t.Run("HostChanged", func(t *testing.T) {
		// Sign for another host, send to this one.
		req := get(t, "/bucket/k")
		req.Host = "other.example:9000"
		sdkSign(t, req, testID, testSecret, emptySHA256, testNow)
		req.Host = ""
		wantErr(t, do(t, req, ch).err, ErrSignature)
	})
	t.Run("WrongSecret", func(t *testing.T) {
		req := get(t, "/bucket/k")
		sdkSign(t, req, testID, readerSecret, emptySHA256, testNow)
		wantErr(t, do(t, req, ch).err, ErrSignature)
	})
	t.Run("UnknownKey", func(t *testing.T) {
		req := get(t, "/bucket/k")
		sdkSign(t, req, "AKIDNOSUCHKEY", testSecret, emptySHA256, testNow)
		wantErr(t, do(t, req, ch).err, ErrUnknownKey)
	})
	t.Run("Skewed", func(t *testing.T) {
		for _, off := range []time.Duration{-20 * time.Minute, 20 * time.Minute} {
			req := get(t, "/bucket/k")
			sdkSign(t, req, testID, testSecret, emptySHA256, testNow.Add(off))
			wantErr(t, do(t, req, ch).err, ErrSkewed)
		}
		for _, off := range []time.Duration{-14 * time.Minute, 14 * time.Minute} {
			req := get(t, "/bucket/k")
			sdkSign(t, req, testID, testSecret, emptySHA256, testNow.Add(off))
			wantErr(t, do(t, req, ch).err, nil)
		}
	})
	t.Run("DateHeader", func(t *testing.T) {
		// SigV4 allows the Date header in place of X-Amz-Date.
		req := get(t, "/bucket/k")
		req.Header.Set("Date", testNow.Format(http.TimeFormat))
		req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		req.Header.Set("Authorization", handSignAt(req, testID, testSecret,
			[]string{"date", "host", "x-amz-content-sha256"}, emptySHA256, testNow))
		wantErr(t, do(t, req, ch).err, nil)
	})
	t.Run("OtherRegion", func(t *testing.T) {
		req := get(t, "/bucket/k")
		req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testID, SecretAccessKey: testSecret},
			req, emptySHA256, "s3", "objstore-dc1", testNow); err != nil {
			t.Fatal(err)
		}
		res := do(t, req, ch)
		wantErr(t, res.err, nil)
		if res.p.Region != "objstore-dc1" {
			t.Errorf("region %q", res.p.Region)
		}
	})
	t.Run("OtherService", func(t *testing.T) {
		req := get(t, "/bucket/k")
		req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		signer := v4.NewSigner()
		if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testID, SecretAccessKey: testSecret},
			req, emptySHA256, "execute-api", "us-east-1", testNow); err != nil {
			t.Fatal(err)
		}
		wantErr(t, do(t, req, ch).err, ErrMalformed)
	})
	t.Run("MissingContentSHA256WithBody", func(t *testing.T) {
		body := []byte("body")
		req := put(t, "/bucket/k", body)
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testID, SecretAccessKey: testSecret},
			req, hexSHA256(body), "s3", "us-east-1", testNow); err != nil {
			t.Fatal(err)
		}
		wantErr(t, do(t, req, ch).err, ErrMalformed)
	})
}

// handSign builds a SigV4 Authorization header with this package's own
// canonicalization, for header sets the SDK's signer will not produce.
func handSign(r *http.Request, id, secret string, signed []string, payload string) string {
	return handSignAt(r, id, secret, signed, payload, testNow)
}

func handSignAt(r *http.Request, id, secret string, signed []string, payload string, at time.Time) string {
	v := sigV4{scopeDate: at.Format(scopeDateFmt), region: "us-east-1", amzDate: at.Format(amzDateFormat),
		signedHeaders: signed, signedRaw: strings.Join(signed, ";"), payloadHash: payload}
	q, _ := parseQuery(r.URL.RawQuery)
	var hdrs strings.Builder
	for _, h := range signed {
		hdrs.WriteString(h + ":" + canonicalHeaderValue(r, h) + "\n")
	}
	canonical := strings.Join([]string{r.Method, canonicalURIs(r)[0], canonicalQuery(q), hdrs.String(), v.signedRaw, payload}, "\n")
	scope := v.scopeDate + "/us-east-1/s3/aws4_request"
	toSign := sigV4Algorithm + "\n" + v.amzDate + "\n" + scope + "\n" + hexSHA256([]byte(canonical))
	sig := hmacSHA256(signingKey(secret, v.scopeDate, "us-east-1", "s3"), toSign)
	return sigV4Algorithm + " Credential=" + id + "/" + scope + ", SignedHeaders=" + v.signedRaw + ", Signature=" + hex.EncodeToString(sig)
}

// presign returns a presigned URL for method and path, signed with the
// SDK's PresignHTTP at the given time.
func presign(t *testing.T, base, method, path, id, secret string, at time.Time, expires time.Duration) string {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := req.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(expires/time.Second)))
	req.URL.RawQuery = q.Encode()
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	u, _, err := signer.PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret},
		req, unsignedPayload, "s3", "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestPresigned verifies URLs presigned by the SDK's signer.
func TestPresigned(t *testing.T) {
	s := newTestStore(t)
	srv, ch := authServer(t, s)
	fetch := func(t *testing.T, method, u string) result {
		req, err := http.NewRequest(method, u, strings.NewReader("presigned body"))
		if err != nil {
			t.Fatal(err)
		}
		return do(t, req, ch)
	}
	const path = "/bucket/dir/a%20b%2Bc%E2%9C%93?response-content-type=text%2Fplain&x=a+b"

	t.Run("Valid", func(t *testing.T) {
		res := fetch(t, http.MethodGet, presign(t, srv.URL, http.MethodGet, path, readerID, readerSecret, testNow.Add(-5*time.Minute), 10*time.Minute))
		wantErr(t, res.err, nil)
		want := Principal{AccessKeyID: readerID, Scopes: Scopes(ScopeRead), Method: MethodPresigned, Region: "us-east-1", PayloadHash: unsignedPayload}
		if res.p != want {
			t.Errorf("principal %+v, want %+v", res.p, want)
		}
	})
	t.Run("PUT", func(t *testing.T) {
		res := fetch(t, http.MethodPut, presign(t, srv.URL, http.MethodPut, "/bucket/up", testID, testSecret, testNow, time.Hour))
		wantErr(t, res.err, nil)
		if string(res.body) != "presigned body" {
			t.Errorf("body %q", res.body)
		}
	})
	t.Run("MethodChanged", func(t *testing.T) {
		u := presign(t, srv.URL, http.MethodGet, "/bucket/k", testID, testSecret, testNow, time.Hour)
		wantErr(t, fetch(t, http.MethodDelete, u).err, ErrSignature)
	})
	t.Run("Expired", func(t *testing.T) {
		u := presign(t, srv.URL, http.MethodGet, path, testID, testSecret, testNow.Add(-11*time.Minute), 10*time.Minute)
		wantErr(t, fetch(t, http.MethodGet, u).err, ErrExpired)
	})
	t.Run("LongExpiry", func(t *testing.T) {
		u := presign(t, srv.URL, http.MethodGet, "/bucket/k", testID, testSecret, testNow.Add(-6*24*time.Hour), 7*24*time.Hour)
		wantErr(t, fetch(t, http.MethodGet, u).err, nil)
		u = presign(t, srv.URL, http.MethodGet, "/bucket/k", testID, testSecret, testNow, 7*24*time.Hour+time.Second)
		wantErr(t, fetch(t, http.MethodGet, u).err, ErrMalformed)
	})
	t.Run("NotYetValid", func(t *testing.T) {
		u := presign(t, srv.URL, http.MethodGet, "/bucket/k", testID, testSecret, testNow.Add(20*time.Minute), time.Hour)
		wantErr(t, fetch(t, http.MethodGet, u).err, ErrSkewed)
	})
	for _, tc := range []struct {
		name   string
		tamper func(url.Values)
		want   error
	}{
		{"QueryParamChanged", func(q url.Values) { q.Set("response-content-type", "text/html") }, ErrSignature},
		{"QueryParamAdded", func(q url.Values) { q.Set("versionId", "1") }, ErrSignature},
		{"ExpiresChanged", func(q url.Values) { q.Set("X-Amz-Expires", "7200") }, ErrSignature},
		{"SignatureChanged", func(q url.Values) { q.Set("X-Amz-Signature", strings.Repeat("0", 64)) }, ErrSignature},
		{"KeyChanged", func(q url.Values) {
			q.Set("X-Amz-Credential", strings.Replace(q.Get("X-Amz-Credential"), testID, readerID, 1))
		}, ErrSignature},
		{"UnknownKey", func(q url.Values) {
			q.Set("X-Amz-Credential", strings.Replace(q.Get("X-Amz-Credential"), testID, "NOSUCHKEY", 1))
		}, ErrUnknownKey},
		{"NoSignature", func(q url.Values) { q.Del("X-Amz-Signature") }, ErrMalformed},
		{"TwoSignatures", func(q url.Values) { q.Add("X-Amz-Signature", q.Get("X-Amz-Signature")) }, ErrMalformed},
		{"BadAlgorithm", func(q url.Values) { q.Set("X-Amz-Algorithm", "AWS4-ECDSA-P256-SHA256") }, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(presign(t, srv.URL, http.MethodGet, path, testID, testSecret, testNow, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			tc.tamper(q)
			u.RawQuery = q.Encode()
			wantErr(t, fetch(t, http.MethodGet, u.String()).err, tc.want)
		})
	}
	t.Run("PathChanged", func(t *testing.T) {
		u := presign(t, srv.URL, http.MethodGet, "/bucket/k", testID, testSecret, testNow, time.Hour)
		wantErr(t, fetch(t, http.MethodGet, strings.Replace(u, "/bucket/k", "/bucket/j", 1)).err, ErrSignature)
	})
	t.Run("AlsoAuthorizationHeader", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, presign(t, srv.URL, http.MethodGet, "/bucket/k", testID, testSecret, testNow, time.Hour), nil)
		req.SetBasicAuth(testID, testSecret)
		wantErr(t, do(t, req, ch).err, ErrMalformed)
	})
}

// A credential's remembered signing keys are the ones derivation gives,
// for every day and region, however many regions are asked for.
func TestSigningKeysRemembered(t *testing.T) {
	c := Credential{ID: "k", secret: "s3cret", keys: &signingKeys{}}
	for round := range 2 {
		for i := range 3 * maxSigningKeys {
			date, region := fmt.Sprintf("202612%02d", 1+i%2), fmt.Sprintf("region-%d", i)
			want := signingKey("s3cret", date, region, sigV4Service)
			if got := c.signingKey(date, region); !bytes.Equal(got, want) {
				t.Fatalf("round %d: key for %s/%s differs from its derivation", round, date, region)
			}
		}
	}
	if n := len(c.keys.keys); n > maxSigningKeys {
		t.Errorf("%d keys remembered, want at most %d", n, maxSigningKeys)
	}
	other := Credential{ID: "k", secret: "another", keys: &signingKeys{}}
	if bytes.Equal(other.signingKey("20261201", "region-0"), c.signingKey("20261201", "region-0")) {
		t.Error("two secrets share a signing key")
	}
}
