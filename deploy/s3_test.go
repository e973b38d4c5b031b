package deploy_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/oklog/ulid/v2"
)

// originBucket is the MinIO bucket the compose nodes' S3 endpoints serve.
const originBucket = "origin"

// s3Client returns an S3 client of the load balancer's S3 port, signing
// with the access key "app" and secret.
func (c *cluster) s3Client(secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("app", secret, ""),
		BaseEndpoint:     aws.String("http://" + c.lbS3),
		UsePathStyle:     true,
		RetryMaxAttempts: 1,
	})
}

// s3Error returns the S3 error code and HTTP status of err.
func s3Error(err error) (code string, status int) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// mcObject is an object as mc ls --json lists it.
type mcObject struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
	ETag string `json:"etag"`
}

// inMinIO lists the keys under prefix in the origin bucket as MinIO holds
// them, with mc in the compose network.
func (c *cluster) inMinIO(prefix string) map[string]mcObject {
	c.t.Helper()
	out, err := c.do(time.Minute, "run", "--rm", "--no-deps", "-T", "mc", "ls", "--recursive", "--json", "minio/"+originBucket+"/"+prefix)
	if err != nil {
		c.t.Fatal(err)
	}
	objs := map[string]mcObject{}
	for line := range strings.Lines(out) {
		var o mcObject
		if err := json.Unmarshal([]byte(line), &o); err != nil || o.Key == "" {
			c.t.Fatalf("mc ls: %q: %v", line, err)
		}
		objs[prefix+o.Key] = o
	}
	return objs
}

// bytesServed returns the bytes each node has served since it started.
func (c *cluster) bytesServed() map[string]int64 {
	out := map[string]int64{}
	for id, st := range c.stats() {
		out[id] = st.Traffic.BytesLocal + st.Traffic.BytesPeer + st.Traffic.BytesRemote
	}
	return out
}

// The S3 endpoint behind the load balancer, as an application uses it: the
// AWS SDK for Go v2, pointed at the load balancer's S3 port, writes a small
// object and a 20 MiB one in parts (each part through the next node), reads
// each back through every node, lists, heads, reads a range and deletes;
// mc, the MinIO client, checks in the compose network that the writes
// reached the bucket.
func TestS3ThroughTheLoadBalancer(t *testing.T) {
	c := up(t)
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := c.s3Client(c.secret)
	bucket := aws.String(originBucket)

	// The one-shot service mc creates the bucket once MinIO answers.
	for {
		_, err := cl.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: bucket})
		if err == nil {
			break
		}
		if time.Since(begin) > time.Minute {
			t.Fatalf("the origin bucket is not served within 1m: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}

	prefix := "sdk-" + ulid.Make().String() + "/"
	smallKey, bigKey := prefix+"small.bin", prefix+"dir/big.bin"
	rnd := rand.NewChaCha8([32]byte{'s', '3'})
	small, big := make([]byte, 4<<10+7), make([]byte, 20<<20+12345)
	rnd.Read(small)
	rnd.Read(big)
	smallMD5 := md5.Sum(small)
	smallETag := hex.EncodeToString(smallMD5[:])

	put, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String(smallKey), Body: bytes.NewReader(small),
		ContentType: aws.String("application/x-small"), Metadata: map[string]string{"test": "behind-the-lb"}})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if got := strings.Trim(aws.ToString(put.ETag), `"`); got != smallETag {
		t.Errorf("PutObject ETag %s, want the MD5 %s", got, smallETag)
	}

	// The 20 MiB body in parts of 5 MiB (the last one short); the bucket's
	// ETag of the whole is the MD5 of the parts' MD5s.
	const partSize = 5 << 20
	mp, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String(bigKey),
		ContentType: aws.String("application/x-big")})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	var done []types.CompletedPart
	var partMD5s []byte
	for off := 0; off < len(big); off += partSize {
		part := big[off:min(off+partSize, len(big))]
		n := aws.Int32(int32(len(done) + 1))
		up, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: aws.String(bigKey), UploadId: mp.UploadId,
			PartNumber: n, Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part)))})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", *n, err)
		}
		sum := md5.Sum(part)
		partMD5s = append(partMD5s, sum[:]...)
		done = append(done, types.CompletedPart{PartNumber: n, ETag: up.ETag})
	}
	comp, err := cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: aws.String(bigKey),
		UploadId: mp.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	if err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	whole := md5.Sum(partMD5s)
	bigETag := fmt.Sprintf("%x-%d", whole, len(done))
	if got := strings.Trim(aws.ToString(comp.ETag), `"`); got != bigETag {
		t.Errorf("CompleteMultipartUpload ETag %s, want %s", got, bigETag)
	}

	// In MinIO, byte for byte (their MD5s), before any read.
	want := map[string]mcObject{
		smallKey: {Key: strings.TrimPrefix(smallKey, prefix), Size: int64(len(small)), ETag: smallETag},
		bigKey:   {Key: strings.TrimPrefix(bigKey, prefix), Size: int64(len(big)), ETag: bigETag},
	}
	if got := c.inMinIO(prefix); !maps.Equal(got, want) {
		t.Errorf("in MinIO: %+v, want %+v", got, want)
	}

	t.Run("get through every node", func(t *testing.T) {
		before := c.bytesServed()
		for _, o := range []struct {
			key  string
			body []byte
		}{{smallKey, small}, {bigKey, big}} {
			// Round robin: three reads in a row, one per node.
			var sources []string
			for range 3 {
				got, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String(o.key)})
				if err != nil {
					t.Fatalf("GetObject %s: %v", o.key, err)
				}
				data, err := io.ReadAll(got.Body)
				got.Body.Close()
				if err != nil || !bytes.Equal(data, o.body) {
					t.Fatalf("GetObject %s: %d bytes (%v), not the %d written", o.key, len(data), err, len(o.body))
				}
				if raw, ok := awsmiddleware.GetRawResponse(got.ResultMetadata).(*smithyhttp.Response); ok {
					sources = append(sources, raw.Header.Get("X-Objstore-Source"))
				}
			}
			t.Logf("%s read three times, from %v", o.key, sources)
		}
		after, served := c.bytesServed(), 0
		for id, n := range after {
			if n-before[id] >= int64(len(big)) {
				served++
			}
		}
		if served < 2 {
			t.Errorf("%d node(s) served the big object; before %v, after %v", served, before, after)
		}
	})

	t.Run("list, head and range", func(t *testing.T) {
		list, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: bucket, Prefix: aws.String(prefix)})
		if err != nil {
			t.Fatalf("ListObjectsV2: %v", err)
		}
		var keys []string
		for _, o := range list.Contents {
			keys = append(keys, fmt.Sprintf("%s %d", aws.ToString(o.Key), aws.ToInt64(o.Size)))
		}
		if wantKeys := []string{fmt.Sprintf("%s %d", bigKey, len(big)), fmt.Sprintf("%s %d", smallKey, len(small))}; !slices.Equal(keys, wantKeys) {
			t.Errorf("ListObjectsV2: %q, want %q", keys, wantKeys)
		}
		h, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bucket, Key: aws.String(smallKey)})
		if err != nil || aws.ToInt64(h.ContentLength) != int64(len(small)) || aws.ToString(h.ContentType) != "application/x-small" ||
			h.Metadata["test"] != "behind-the-lb" || strings.Trim(aws.ToString(h.ETag), `"`) != smallETag {
			t.Errorf("HeadObject: %+v, %v", h, err)
		}
		h, err = cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bucket, Key: aws.String(bigKey)})
		if err != nil || aws.ToInt64(h.ContentLength) != int64(len(big)) || aws.ToString(h.ContentType) != "application/x-big" {
			t.Errorf("HeadObject of the big one: %+v, %v", h, err)
		}
		// Across the boundary of the first two parts.
		from, to := partSize-100, partSize+99
		got, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String(bigKey), Range: aws.String(fmt.Sprintf("bytes=%d-%d", from, to))})
		if err != nil {
			t.Fatalf("a Range read: %v", err)
		}
		data, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if !bytes.Equal(data, big[from:to+1]) || aws.ToString(got.ContentRange) != fmt.Sprintf("bytes %d-%d/%d", from, to, len(big)) {
			t.Errorf("a Range read: %d bytes, %s", len(data), aws.ToString(got.ContentRange))
		}
	})

	t.Run("a wrong secret", func(t *testing.T) {
		_, err := c.s3Client("not-the-secret-of-app").GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String(smallKey)})
		if code, status := s3Error(err); code != "SignatureDoesNotMatch" || status != http.StatusForbidden {
			t.Errorf("GetObject with a wrong secret: %v, want 403 SignatureDoesNotMatch", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bucket, Key: aws.String(smallKey)}); err != nil {
			t.Fatalf("DeleteObject: %v", err)
		}
		for range 3 { // every node
			_, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String(smallKey)})
			if code, status := s3Error(err); code != "NoSuchKey" || status != http.StatusNotFound {
				t.Errorf("GetObject after DeleteObject: %v, want 404 NoSuchKey", err)
			}
		}
		if got := c.inMinIO(prefix); !maps.Equal(got, map[string]mcObject{bigKey: want[bigKey]}) {
			t.Errorf("in MinIO after the delete: %+v", got)
		}
	})
	t.Logf("S3 checks took %v", time.Since(begin).Round(time.Millisecond))
}
