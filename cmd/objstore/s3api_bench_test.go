package main_test

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/internal/testnode"
)

// BenchmarkS3Get is BenchmarkKeyGet with the node's S3 endpoint beside its
// REST API, all measured in one run against one MinIO and one node
// process (--credentials-file, --s3-api-addr): for each size, path=minio
// (a presigned GET straight from MinIO), path=first and path=repeat
// through the REST API (Basic authentication, which the API then
// requires), and path=s3-first and path=s3-repeat through the S3
// endpoint, every request signed as the AWS SDK signs a GetObject (SigV4
// in the Authorization header, by the SDK's v4 signer, at the time it is
// sent), so that the endpoint's signature check is in every figure:
//
//	go test -run '^$' -bench 'BenchmarkS3Get/size=(1KiB|1MiB)' -benchtime 200x ./cmd/objstore
//	go test -run '^$' -bench 'BenchmarkS3Get/size=256MiB' -benchtime 5x -timeout 30m ./cmd/objstore
func BenchmarkS3Get(b *testing.B) {
	srv := testminio.Start(b)
	bucket := srv.NewBucket(b)
	creds := filepath.Join(b.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte(s3Reader+" "+s3ReaderSecret+" read\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	s3Addr := testnode.FreeAddr(b)
	n := testnode.Start(b, testnode.Options{Env: srv.Env(), Args: []string{"--s3-endpoint", srv.Endpoint(),
		"--origin-buckets", bucket, "--cache-ttl", "1h", "--credentials-file", creds, "--s3-api-addr", s3Addr}})
	// The S3 endpoint listens just after the REST API, which Start waited
	// for.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("tcp", s3Addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the S3 endpoint %s does not answer: %v", s3Addr, err)
		}
	}

	hc := benchClient(b)
	basic := &http.Client{Transport: withCredentials{hc.Transport, func(r *http.Request) error {
		r.SetBasicAuth(s3Reader, s3ReaderSecret)
		return nil
	}}}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }) // as the SDK's S3 client
	key := aws.Credentials{AccessKeyID: s3Reader, SecretAccessKey: s3ReaderSecret}
	sigV4 := &http.Client{Transport: withCredentials{hc.Transport, func(r *http.Request) error {
		// A GET's payload is empty; S3 clients send its hash.
		const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		return signer.SignHTTP(r.Context(), key, r, emptySHA256, "s3", "us-east-1", time.Now())
	}}}
	s3Base := "http://" + s3Addr + "/" + bucket
	benchKeyGets(b, srv, bucket, hc,
		readPath{hc: basic, ping: n.URL + "/api/v1/ping", url: func(key string) string { return keyURL(n, bucket, key) }},
		readPath{name: "s3-", hc: sigV4, ping: s3Base + "?location", url: func(key string) string { return s3Base + "/" + escapePath(key) }})
}

// withCredentials is an http.RoundTripper that adds credentials to a copy
// of each request (sign sets its headers) before base sends it.
type withCredentials struct {
	base http.RoundTripper
	sign func(*http.Request) error
}

func (w withCredentials) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if err := w.sign(r); err != nil {
		return nil, err
	}
	return w.base.RoundTrip(r)
}
