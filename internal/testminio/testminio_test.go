package testminio_test

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/objstore/objstore/internal/testminio"
)

func TestMain(m *testing.M) { testminio.Main(m) }

func TestServer(t *testing.T) {
	srv := testminio.Start(t)
	if again := testminio.Start(t); again != srv {
		t.Errorf("Start returned a second server")
	}
	if !strings.HasPrefix(srv.Endpoint(), "http://127.0.0.1:") {
		t.Errorf("Endpoint() = %q", srv.Endpoint())
	}
	env := strings.Join(srv.Env(), "\n")
	for _, want := range []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey, "AWS_REGION=us-east-1"} {
		if !strings.Contains(env, want) {
			t.Errorf("Env() lacks %q", want)
		}
	}
	b1, b2 := srv.NewBucket(t), srv.NewBucket(t)
	if b1 == b2 {
		t.Errorf("NewBucket returned %q twice", b1)
	}
	if _, err := srv.Client().HeadBucket(t.Context(), &s3.HeadBucketInput{Bucket: aws.String(b1)}); err != nil {
		t.Errorf("HeadBucket(%s): %v", b1, err)
	}
}

func TestStopStart(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	ctx := t.Context()
	if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("survives")}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	srv.Stop() // idempotent
	_, err := srv.Client().HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	var opErr *net.OpError
	if !errors.As(err, &opErr) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("request to a stopped server = %v, want a *net.OpError with ECONNREFUSED", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	out, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if aws.ToInt64(out.ContentLength) != int64(len("survives")) {
		t.Errorf("after restart, object has %d bytes", aws.ToInt64(out.ContentLength))
	}
}
