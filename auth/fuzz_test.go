package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// FuzzParseCredentials checks that parsing never panics and that an error
// never carries text from the file: its message must be exactly
// "NAME:LINE: REASON" with one of the fixed reasons.
func FuzzParseCredentials(f *testing.F) {
	f.Add([]byte(testCredentials))
	f.Add([]byte("key1 Sup3rS3cretValue read\nkey1 Sup3rS3cretValue write\n"))
	f.Add([]byte("key1 Sup3rS3cretValue read,bogus\n"))
	f.Add([]byte("Sup3rS3cretValue\n"))
	f.Add([]byte("key1 read,write Sup3rS3cretValue\n"))
	f.Add([]byte("\xef\xbb\xbf# c\r\nabc 12345678 admin # note\r\n"))
	f.Add([]byte("a/b Sup3rS3cretValue read\n"))
	f.Add([]byte("key1 Sup3rS3cretValue read trailing-secret-text\n"))
	f.Add([]byte("key1 Sup3r\x00S3cret read\n"))

	const name = "F"
	fixed := []string{reasonFields, reasonTrailing, reasonID, reasonSecret, reasonEmptyScope, reasonScope}
	dup := regexp.MustCompile(`^duplicate access key ID \(first defined on line [0-9]+\)$`)
	f.Fuzz(func(t *testing.T, data []byte) {
		creds, err := parseCredentials(name, data)
		if err == nil {
			for id, c := range creds {
				if id != c.ID || !validAccessKeyID(c.ID) || !validSecret(c.secret) || c.Scopes == 0 {
					t.Fatalf("invalid credential accepted: %q", c.ID)
				}
			}
			return
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("error %v is not a *ParseError", err)
		}
		known := dup.MatchString(pe.Reason)
		for _, r := range fixed {
			known = known || pe.Reason == r
		}
		if !known || err.Error() != fmt.Sprintf("%s:%d: %s", name, pe.Line, pe.Reason) {
			t.Fatalf("error text %q is not a fixed template", err)
		}
		// And, directly: no secret-looking field of the input appears in
		// it, unless the template itself holds that text.
		template := strings.Join(fixed, "\n") + "\nduplicate access key ID (first defined on line"
		for _, line := range strings.Split(string(data), "\n") {
			for _, field := range strings.FieldsFunc(line, isBlank) {
				if len(field) >= MinSecretLen && strings.Contains(err.Error(), field) && !strings.Contains(template, field) {
					t.Fatalf("error %q contains input field %q", err, field)
				}
			}
		}
	})
}

// FuzzAuthorizationHeader feeds arbitrary Authorization headers and query
// strings to Authenticate: it must not panic, must authenticate only the
// one validly signed pair, and its errors must not contain a secret.
func FuzzAuthorizationHeader(f *testing.F) {
	s := newTestStore(f)
	signed := httptest.NewRequest(http.MethodGet, "http://objstore.test/bucket/k?a=b", nil)
	sdkSign(f, signed, testID, testSecret, emptySHA256, testNow)
	f.Add(signed.Header.Get("Authorization"), "")
	f.Add(signed.Header.Get("Authorization"), "a=b")
	f.Add("AWS4-HMAC-SHA256 Credential="+testID+"/20260314/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-date,Signature="+strings.Repeat("0", 64), "")
	f.Add("AWS4-HMAC-SHA256 Credential=,SignedHeaders=,Signature=", "")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, Credential=x", "")
	f.Add("AWS4-HMAC-SHA256 ,,,===", "")
	f.Add("AWS4-HMAC-SHA256 Credential="+testID+"/2026031/us-east-1/s3/aws4_request, SignedHeaders=host;;, Signature=zz", "")
	f.Add("Basic "+"QUtJRFRFU1QwMDAxOndyb25n", "")
	f.Add("Basic", "")
	f.Add("AWS AKID:sig", "")
	f.Add("", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="+testID+"%2F20260314%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260314T150926Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature="+strings.Repeat("a", 64))
	f.Add("", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%&X-Amz-Expires=-1")
	f.Add("", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="+testID+"%2F20260314%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260314T150926Z&X-Amz-Expires=99999999999999999999&X-Amz-SignedHeaders=host&X-Amz-Signature=x")
	f.Fuzz(func(t *testing.T, authz, rawQuery string) {
		r := httptest.NewRequest(http.MethodGet, "http://objstore.test/bucket/k", nil)
		r.URL.RawQuery = rawQuery
		r.Header.Set("X-Amz-Date", testNow.Format(amzDateFormat))
		r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		p, err := s.Authenticate(r)
		if err == nil {
			if authz != signed.Header.Get("Authorization") || rawQuery != signed.URL.RawQuery {
				t.Fatalf("authenticated %+v", p)
			}
			return
		}
		if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), readerSecret) || strings.Contains(err.Error(), adminSecret) {
			t.Fatalf("error %q contains a secret", err)
		}
	})
}
