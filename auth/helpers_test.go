package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Test keys. The secrets contain characters ('/', '+') that real AWS
// secrets contain.
const (
	testID       = "AKIDTEST0001"
	testSecret   = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	readerID     = "reader.key-1"
	readerSecret = "r3ad-only_secret!#"
	adminID      = "admin_key"
	adminSecret  = "adm1n$ecret~~~~~"
)

const testCredentials = `# objstore credentials
` + testID + ` ` + testSecret + ` read,write
` + readerID + `	` + readerSecret + `	read   # tab separated, trailing comment

` + adminID + ` ` + adminSecret + ` admin
`

// testNow is the fixed time the tests' clock reports.
var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// writeFile writes content to a new file in a temporary directory with
// mode 0600 and returns its path.
func writeFile(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newTestStore returns a Store over testCredentials whose clock is testNow.
func newTestStore(t testing.TB) *Store {
	t.Helper()
	s, err := NewStore(writeFile(t, testCredentials), WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// sdkSign signs req in place with the AWS SDK's SigV4 signer the way the
// S3 client does: x-amz-content-sha256 set and signed, no extra path
// escaping.
func sdkSign(t testing.TB, req *http.Request, id, secret, payloadHash string, at time.Time) {
	t.Helper()
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
	if err := signer.SignHTTP(context.Background(), creds, req, payloadHash, "s3", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
}

// result is what the test server's handler saw.
type result struct {
	p       Principal
	err     error
	body    []byte
	bodyErr error
	req     *http.Request
}

// authServer starts an HTTP server whose handler authenticates each
// request against s, reads its body through VerifyBody and reports the
// outcome on the returned channel.
func authServer(t testing.TB, s *Store) (*httptest.Server, <-chan result) {
	t.Helper()
	ch := make(chan result, 16)
	srv := httptest.NewServer(authHandler(s, ch))
	t.Cleanup(srv.Close)
	return srv, ch
}

// authTLSServer is authServer over TLS; clients must use srv.Client().
func authTLSServer(t testing.TB, s *Store) (*httptest.Server, <-chan result) {
	t.Helper()
	ch := make(chan result, 16)
	srv := httptest.NewTLSServer(authHandler(s, ch))
	t.Cleanup(srv.Close)
	return srv, ch
}

// authHandler is the handler of authServer and authTLSServer.
func authHandler(s *Store, ch chan<- result) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := result{req: r}
		res.p, res.err = s.Authenticate(r)
		if res.err == nil {
			res.body, res.bodyErr = io.ReadAll(VerifyBody(r, res.p))
		}
		ch <- res
		failed := res.err
		if failed == nil {
			failed = res.bodyErr
		}
		switch {
		case failed != nil:
			code, status := S3ErrorCode(failed)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(status)
			io.WriteString(w, "<Error><Code>"+code+"</Code></Error>")
		case r.Method == http.MethodGet && r.URL.Query().Has("list-type"):
			w.Header().Set("Content-Type", "application/xml")
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>bucket</Name><KeyCount>0</KeyCount></ListBucketResult>`)
		case r.Method == http.MethodGet:
			io.WriteString(w, "object body")
		}
	})
}

// do sends req (to srv) and returns what the handler saw.
func do(t testing.TB, req *http.Request, ch <-chan result) result {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("handler not called")
	}
	return result{}
}

// wantErr fails t unless err matches target (nil meaning success).
func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if target == nil {
		if err != nil {
			t.Fatalf("got error %v, want success", err)
		}
		return
	}
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}
