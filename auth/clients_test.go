package auth

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// realClockStore is a Store over testCredentials with the real clock, for
// clients that sign with the current time.
func realClockStore(t testing.TB) *Store {
	t.Helper()
	s, err := NewStore(writeFile(t, testCredentials))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func s3Client(endpoint, id, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:       "eu-west-3",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, ""),
		Retryer:      aws.NopRetryer{},
	})
}

// TestS3Client drives the AWS SDK's own S3 client against a server that
// authenticates with a Store.
func TestS3Client(t *testing.T) {
	s := realClockStore(t)
	srv, ch := authServer(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := s3Client(srv.URL, testID, testSecret)

	t.Run("PutObject", func(t *testing.T) {
		body := []byte("hello, objstore\n")
		_, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("bucket"), Key: aws.String("dir/a b+c%d ✓.txt"),
			Body: bytes.NewReader(body), ContentType: aws.String("text/plain"),
			Metadata: map[string]string{"owner": "tests"},
		})
		res := <-ch
		t.Logf("sent %s %s payload %q headers %v", res.req.Method, res.req.RequestURI, res.p.PayloadHash, res.req.Header)
		wantErr(t, res.err, nil)
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		if res.p.AccessKeyID != testID || res.p.Method != MethodSigV4 || res.p.Region != "eu-west-3" {
			t.Errorf("principal %+v", res.p)
		}
		if !res.p.Streaming() {
			wantErr(t, res.bodyErr, nil)
			if !bytes.Equal(res.body, body) {
				t.Errorf("body %q", res.body)
			}
		}
	})
	t.Run("GetObject", func(t *testing.T) {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{
			Bucket: aws.String("bucket"), Key: aws.String("dir/a b+c%d ✓.txt"), Range: aws.String("bytes=0-3"),
		})
		res := <-ch
		t.Logf("sent %s %s payload %q", res.req.Method, res.req.RequestURI, res.p.PayloadHash)
		wantErr(t, res.err, nil)
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		io.Copy(io.Discard, out.Body)
		out.Body.Close()
	})
	t.Run("ListObjectsV2", func(t *testing.T) {
		_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
			Bucket: aws.String("bucket"), Prefix: aws.String("a b+c/%/✓/~!*'()"), Delimiter: aws.String("/"),
			StartAfter: aws.String("x=y&z"),
		})
		res := <-ch
		t.Logf("sent %s %s", res.req.Method, res.req.RequestURI)
		wantErr(t, res.err, nil)
		if err != nil {
			t.Fatalf("client: %v", err)
		}
	})
	t.Run("WrongSecret", func(t *testing.T) {
		bad := s3Client(srv.URL, testID, testSecret+"x")
		_, err := bad.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("k")})
		res := <-ch
		wantErr(t, res.err, ErrSignature)
		if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
			t.Errorf("client error %v", err)
		}
	})
	t.Run("Presigned", func(t *testing.T) {
		pc := s3.NewPresignClient(c, s3.WithPresignExpires(10*time.Minute))
		get, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("a b/c+d.txt")})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(get.Method, get.URL, nil)
		req.Header = get.SignedHeader.Clone()
		res := do(t, req, ch)
		t.Logf("sent %s %s", res.req.Method, res.req.RequestURI)
		wantErr(t, res.err, nil)
		if res.p.Method != MethodPresigned {
			t.Errorf("method %q", res.p.Method)
		}

		put, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String("up.bin")})
		if err != nil {
			t.Fatal(err)
		}
		req, _ = http.NewRequest(put.Method, put.URL, strings.NewReader("uploaded"))
		for k, v := range put.SignedHeader {
			if k != "Host" {
				req.Header[k] = v
			}
		}
		res = do(t, req, ch)
		t.Logf("sent %s %s %v", res.req.Method, res.req.RequestURI, put.SignedHeader)
		wantErr(t, res.err, nil)
		if string(res.body) != "uploaded" {
			t.Errorf("body %q", res.body)
		}
	})
}

// curl runs curl with args and fails the test if it cannot run.
func curl(t *testing.T, args ...string) {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, append([]string{"-sS", "-o", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
}

// TestCurl authenticates requests signed by curl's --aws-sigv4.
func TestCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not on PATH")
	}
	s := realClockStore(t)
	srv, ch := authServer(t, s)
	sigv4 := []string{"--aws-sigv4", "aws:amz:us-east-1:s3", "--user", testID + ":" + testSecret}
	body := []byte("curl upload body\n")
	file := writeFile(t, string(body))

	t.Run("GET", func(t *testing.T) {
		curl(t, append(sigv4, srv.URL+"/bucket/dir/a%20b.txt?list-type=2&prefix=a%2Fb")...)
		res := <-ch
		wantErr(t, res.err, nil)
		if res.p.AccessKeyID != testID || res.p.Method != MethodSigV4 || res.p.Region != "us-east-1" {
			t.Errorf("principal %+v", res.p)
		}
	})
	t.Run("GETQueryAsSent", func(t *testing.T) {
		// curl 7.88 signs the query as written, unsorted and with "acl"
		// for "acl=": accepted as the query-as-sent candidate.
		curl(t, append(sigv4, srv.URL+"/bucket/k?prefix=x&acl&list-type=2")...)
		wantErr(t, (<-ch).err, nil)
	})
	t.Run("PUT", func(t *testing.T) {
		// Older curl (7.88) signs the body's hash without sending it; S3
		// and this package need the x-amz-content-sha256 header, which
		// curl then signs and uses as the payload hash.
		curl(t, append(sigv4, "-X", "PUT", "--data-binary", "@"+file,
			"-H", "x-amz-content-sha256: "+hexSHA256(body), srv.URL+"/bucket/up.txt")...)
		res := <-ch
		wantErr(t, res.err, nil)
		wantErr(t, res.bodyErr, nil)
		if !bytes.Equal(res.body, body) {
			t.Errorf("body %q", res.body)
		}
	})
	t.Run("PUTUnsignedPayload", func(t *testing.T) {
		curl(t, append(sigv4, "-T", file, "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", srv.URL+"/bucket/up2.txt")...)
		res := <-ch
		wantErr(t, res.err, nil)
		if !bytes.Equal(res.body, body) {
			t.Errorf("body %q", res.body)
		}
	})
	t.Run("PUTPlain", func(t *testing.T) {
		// curl -T with nothing else: newer curl sends UNSIGNED-PAYLOAD;
		// older curl sends no x-amz-content-sha256, which is refused.
		curl(t, append(sigv4, "-T", file, srv.URL+"/bucket/up3.txt")...)
		res := <-ch
		if res.req.Header.Get("X-Amz-Content-Sha256") == "" {
			wantErr(t, res.err, ErrMalformed)
		} else {
			wantErr(t, res.err, nil)
		}
	})
	t.Run("WrongSecret", func(t *testing.T) {
		curl(t, "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", testID+":"+testSecret+"x", srv.URL+"/bucket/k")
		wantErr(t, (<-ch).err, ErrSignature)
	})
	t.Run("UnknownKey", func(t *testing.T) {
		curl(t, "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "NOSUCHKEY:"+testSecret, srv.URL+"/bucket/k")
		wantErr(t, (<-ch).err, ErrUnknownKey)
	})
	t.Run("Basic", func(t *testing.T) {
		curl(t, "--user", readerID+":"+readerSecret, srv.URL+"/bucket/k")
		res := <-ch
		wantErr(t, res.err, nil)
		if res.p.Method != MethodBasic || res.p.AccessKeyID != readerID || !res.p.Scopes.Has(ScopeRead) || res.p.Scopes.Has(ScopeWrite) {
			t.Errorf("principal %+v", res.p)
		}
		curl(t, "--user", readerID+":wrong-secret", srv.URL+"/bucket/k")
		wantErr(t, (<-ch).err, ErrSignature)
	})
}

// TestS3ClientTrailingChecksum drives the AWS SDK's S3 client over TLS,
// where it sends PutObject bodies aws-chunked with a trailing checksum
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER): one chunk for a body of known
// length, 64 KiB chunks for a stream; the checksum is each algorithm the
// SDK computes.
func TestS3ClientTrailingChecksum(t *testing.T) {
	s := realClockStore(t)
	srv, ch := authTLSServer(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := s3.New(s3.Options{
		Region: "eu-west-3", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, HTTPClient: srv.Client(),
		Credentials: credentials.NewStaticCredentialsProvider(testID, testSecret, ""), Retryer: aws.NopRetryer{},
	})
	body := testPayload(300000)
	for _, alg := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c,
		types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256, types.ChecksumAlgorithmSha512} {
		for _, seekable := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/seekable=%v", alg, seekable), func(t *testing.T) {
				var r io.Reader = bytes.NewReader(body)
				if !seekable {
					r = io.MultiReader(r) // hides Seek and the length
				}
				_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String("k"),
					Body: r, ChecksumAlgorithm: alg})
				res := <-ch
				t.Logf("sent payload %q trailer %q decoded length %q", res.p.PayloadHash,
					res.req.Header.Get("X-Amz-Trailer"), res.req.Header.Get("X-Amz-Decoded-Content-Length"))
				wantErr(t, res.err, nil)
				wantErr(t, res.bodyErr, nil)
				if err != nil {
					t.Fatalf("client: %v", err)
				}
				if res.p.PayloadHash != streamingUnsignedTrailer || !bytes.Equal(res.body, body) {
					t.Errorf("payload hash %q, %d bytes", res.p.PayloadHash, len(res.body))
				}
			})
		}
	}
}
