package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/internal/testnode"
)

// Access keys of the S3 endpoint tests.
const (
	s3Writer, s3WriterSecret = "s3writer", "writer-secret-for-s3"
	s3Reader, s3ReaderSecret = "s3reader", "reader-secret-for-s3"
)

// s3Cluster is nodes serving bucket through their S3 endpoints.
type s3Cluster struct {
	srv    *testminio.Server
	bucket string
	nodes  []*testnode.Node
	s3     []string // each node's S3 endpoint, http://host:port
}

// startS3Cluster starts n nodes in front of a new bucket of the test
// MinIO, each with an S3 endpoint and the test access keys.
func startS3Cluster(t *testing.T, n int, extra ...string) *s3Cluster {
	t.Helper()
	c := &s3Cluster{srv: testminio.Start(t)}
	c.bucket = c.srv.NewBucket(t)
	creds := filepath.Join(t.TempDir(), "credentials")
	os.WriteFile(creds, []byte(fmt.Sprintf("%s %s read,write\n%s %s read\n", s3Writer, s3WriterSecret, s3Reader, s3ReaderSecret)), 0o600)
	for i := range n {
		addr := testnode.FreeAddr(t)
		args := []string{"--s3-endpoint", c.srv.Endpoint(), "--credentials-file", creds,
			"--s3-api-addr", addr, "--gossip-profile", "local", "--sync-interval", "2s"}
		if !slices.Contains(extra, "--origin-buckets") {
			args = append(args, "--origin-buckets", c.bucket)
		}
		args = append(args, extra...)
		if i > 0 {
			args = append(args, "-N", c.nodes[i-1].GossipAddr)
		}
		c.nodes = append(c.nodes, testnode.Start(t, testnode.Options{Env: c.srv.Env(), Args: args}))
		c.s3 = append(c.s3, "http://"+addr)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(s3Reader+":"+s3ReaderSecret))
	for _, nd := range c.nodes {
		eventually(t, "all members alive", func() bool {
			resp, b, err := nd.Do(testnode.Request{Path: "/api/v1/nodes", Header: map[string]string{"Authorization": basic}})
			return err == nil && resp.StatusCode == 200 && strings.Count(string(b), `"state":"alive"`) == n
		})
	}
	return c
}

// client returns an S3 client of node i's endpoint with an access key.
func (c *s3Cluster) client(i int, id, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(id, secret, ""),
		BaseEndpoint:     aws.String(c.s3[i]),
		UsePathStyle:     true,
		RetryMaxAttempts: 1,
	})
}

// escapePath escapes each element of a key for a URL path.
func escapePath(key string) string {
	elems := strings.Split(key, "/")
	for i, e := range elems {
		elems[i] = url.PathEscape(e)
	}
	return strings.Join(elems, "/")
}

// apiCode returns the S3 error code of err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// The AWS SDK for Go v2 against three nodes in front of a real MinIO:
// writes land in the bucket before the answer, reads are served by the
// cache on any node, listings are the bucket's; errors are S3's.
func TestS3EndpointWithTheSDK(t *testing.T) {
	c := startS3Cluster(t, 3)
	ctx := context.Background()
	w0, w1, w2 := c.client(0, s3Writer, s3WriterSecret), c.client(1, s3Writer, s3WriterSecret), c.client(2, s3Writer, s3WriterSecret)
	direct := c.srv.Client()
	b := aws.String(c.bucket)

	body := bytes.Repeat([]byte("objstore speaks S3 "), 60_000) // 1.1 MB
	key := "dir/ünï code+key %20.bin"
	if _, err := w0.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String("application/x-test"), Metadata: map[string]string{"owner": "alice"}}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	// In the bucket before the answer, with type and metadata.
	out, err := direct.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key)})
	if err != nil {
		t.Fatalf("the object is not in the bucket: %v", err)
	}
	inBucket, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(inBucket, body) || aws.ToString(out.ContentType) != "application/x-test" || out.Metadata["owner"] != "alice" {
		t.Errorf("in the bucket: %d bytes, %q, %v", len(inBucket), aws.ToString(out.ContentType), out.Metadata)
	}

	t.Run("get and head on every node", func(t *testing.T) {
		for i, cl := range []*s3.Client{w0, w1, w2} {
			got, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key)})
			if err != nil {
				t.Fatalf("node %d GetObject: %v", i, err)
			}
			data, _ := io.ReadAll(got.Body)
			got.Body.Close()
			if !bytes.Equal(data, body) || got.Metadata["owner"] != "alice" || aws.ToString(got.ETag) != aws.ToString(out.ETag) {
				t.Errorf("node %d: %d bytes, meta %v, ETag %s (bucket's %s)", i, len(data), got.Metadata, aws.ToString(got.ETag), aws.ToString(out.ETag))
			}
			h, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String(key)})
			if err != nil || aws.ToInt64(h.ContentLength) != int64(len(body)) || aws.ToString(h.ContentType) != "application/x-test" {
				t.Errorf("node %d HeadObject: %+v, %v", i, h, err)
			}
		}
	})

	t.Run("range and conditions", func(t *testing.T) {
		got, err := w1.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key), Range: aws.String("bytes=100-199")})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if !bytes.Equal(data, body[100:200]) || aws.ToString(got.ContentRange) != fmt.Sprintf("bytes 100-199/%d", len(body)) {
			t.Errorf("range: %q, %s", data, aws.ToString(got.ContentRange))
		}
		if _, err := w1.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key), Range: aws.String(fmt.Sprintf("bytes=%d-", len(body)+10))}); apiCode(err) != "InvalidRange" {
			t.Errorf("a range past the end: %v, want InvalidRange", err)
		}
		if _, err := w1.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key), IfMatch: aws.String(`"nope"`)}); apiCode(err) != "PreconditionFailed" {
			t.Errorf("If-Match another ETag: %v, want PreconditionFailed", err)
		}
		_, err = w1.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key), IfNoneMatch: out.ETag})
		var re interface{ HTTPStatusCode() int }
		if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusNotModified {
			t.Errorf("If-None-Match its ETag: %v, want 304", err)
		}
		got, err = w2.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key), ResponseContentType: aws.String("text/plain"),
			ResponseContentDisposition: aws.String(`attachment; filename="x.bin"`), PartNumber: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		got.Body.Close()
		if aws.ToString(got.ContentType) != "text/plain" || aws.ToString(got.ContentDisposition) != `attachment; filename="x.bin"` {
			t.Errorf("response overrides: %s, %s", aws.ToString(got.ContentType), aws.ToString(got.ContentDisposition))
		}
		if _, err := w2.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key), PartNumber: aws.Int32(2)}); apiCode(err) != "InvalidPartNumber" {
			t.Errorf("part 2 of a single-part object: %v", err)
		}
	})

	t.Run("objects written by others are read through", func(t *testing.T) {
		if _, err := direct.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("other/writer.txt"), Body: strings.NewReader("from elsewhere")}); err != nil {
			t.Fatal(err)
		}
		got, err := w2.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("other/writer.txt")})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if string(data) != "from elsewhere" {
			t.Errorf("read through: %q", data)
		}
		if _, err := w2.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("no/such/key")}); apiCode(err) != "NoSuchKey" {
			t.Errorf("a missing key: %v, want NoSuchKey", err)
		}
		if _, err := w2.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("no/such/key")}); err == nil {
			t.Error("HEAD of a missing key succeeded")
		}
	})

	t.Run("listings", func(t *testing.T) {
		for i := range 7 {
			if _, err := w0.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String(fmt.Sprintf("list/%d/f%d.txt", i%3, i)), Body: strings.NewReader("x")}); err != nil {
				t.Fatal(err)
			}
		}
		var keys []string
		p := s3.NewListObjectsV2Paginator(w1, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String("list/"), MaxKeys: aws.Int32(2)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range page.Contents {
				keys = append(keys, aws.ToString(o.Key))
			}
		}
		want, err := direct.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String("list/")})
		if err != nil {
			t.Fatal(err)
		}
		var wantKeys []string
		for _, o := range want.Contents {
			wantKeys = append(wantKeys, aws.ToString(o.Key))
		}
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("ListObjectsV2 by pages of 2: %q, the bucket %q", keys, wantKeys)
		}
		page, err := w2.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String("list/"), Delimiter: aws.String("/")})
		if err != nil || len(page.CommonPrefixes) != 3 || aws.ToString(page.CommonPrefixes[0].Prefix) != "list/0/" {
			t.Errorf("with a delimiter: %+v, %v", page.CommonPrefixes, err)
		}
		v1, err := w2.ListObjects(ctx, &s3.ListObjectsInput{Bucket: b, Prefix: aws.String("dir/")})
		if err != nil || len(v1.Contents) != 1 || aws.ToString(v1.Contents[0].Key) != key {
			t.Errorf("ListObjects (v1): %+v, %v", v1.Contents, err)
		}
		enc, err := w2.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String("dir/"), EncodingType: types.EncodingTypeUrl})
		if err != nil || len(enc.Contents) != 1 {
			t.Fatalf("encoding-type=url: %+v, %v", enc, err)
		}
		if got, err := url.QueryUnescape(aws.ToString(enc.Contents[0].Key)); err != nil || got != key {
			t.Errorf("encoding-type=url: key %q decodes to %q, %v", aws.ToString(enc.Contents[0].Key), got, err)
		}
	})

	t.Run("copy and delete", func(t *testing.T) {
		cp, err := w1.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copies/one.bin"),
			CopySource: aws.String(c.bucket + "/" + escapePath(key))})
		if err != nil {
			t.Fatalf("CopyObject: %v", err)
		}
		got, err := direct.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("copies/one.bin")})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if !bytes.Equal(data, body) || got.Metadata["owner"] != "alice" || aws.ToString(cp.CopyObjectResult.ETag) != aws.ToString(got.ETag) {
			t.Errorf("the copy: %d bytes, %v, ETag %s vs %s", len(data), got.Metadata, aws.ToString(cp.CopyObjectResult.ETag), aws.ToString(got.ETag))
		}
		if _, err := w2.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("copies/one.bin")}); err != nil {
			t.Fatal(err)
		}
		if _, err := direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("copies/one.bin")}); err == nil {
			t.Error("deleted, yet in the bucket")
		}
		var objs []types.ObjectIdentifier
		for i := range 7 {
			objs = append(objs, types.ObjectIdentifier{Key: aws.String(fmt.Sprintf("list/%d/f%d.txt", i%3, i))})
		}
		res, err := w0.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: b, Delete: &types.Delete{Objects: objs}})
		if err != nil || len(res.Deleted) != 7 || len(res.Errors) != 0 {
			t.Fatalf("DeleteObjects: %+v, %v", res, err)
		}
		left, _ := direct.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String("list/")})
		if len(left.Contents) != 0 {
			t.Errorf("%d keys left after DeleteObjects", len(left.Contents))
		}
		for i, cl := range []*s3.Client{w0, w1, w2} {
			eventually(t, "the delete everywhere", func() bool {
				_, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("list/0/f0.txt")})
				return apiCode(err) == "NoSuchKey"
			})
			_ = i
		}
	})

	t.Run("multipart upload of 100 MiB over three nodes", func(t *testing.T) {
		const partSize, parts = 5 << 20, 20
		mpKey := aws.String("big/100MiB.bin")
		cr, err := w0.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: mpKey,
			ContentType: aws.String("application/x-big"), Metadata: map[string]string{"size": "100MiB"}})
		if err != nil {
			t.Fatalf("CreateMultipartUpload: %v", err)
		}
		// MinIO lists the uploads of one key: the prefix is the whole key.
		ups, err := w1.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b, Prefix: mpKey})
		if err != nil || len(ups.Uploads) != 1 || aws.ToString(ups.Uploads[0].UploadId) != aws.ToString(cr.UploadId) {
			t.Errorf("ListMultipartUploads: %+v, %v", ups, err)
		}
		whole := sha256.New()
		var done []types.CompletedPart
		for i := range parts {
			// Parts stream from a generator, each to another node.
			data := io.TeeReader(benchData(partSize+int64(i)), whole)
			up, err := []*s3.Client{w0, w1, w2}[i%3].UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: mpKey, UploadId: cr.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: io.LimitReader(data, partSize), ContentLength: aws.Int64(partSize)}, streamed)
			if err != nil {
				t.Fatalf("UploadPart %d: %v", i+1, err)
			}
			done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up.ETag})
		}
		lp, err := w2.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: mpKey, UploadId: cr.UploadId, MaxParts: aws.Int32(7)})
		if err != nil || len(lp.Parts) != 7 || !aws.ToBool(lp.IsTruncated) || aws.ToInt64(lp.Parts[0].Size) != partSize {
			t.Errorf("ListParts: %d parts, truncated %v, %v", len(lp.Parts), aws.ToBool(lp.IsTruncated), err)
		}
		if _, err := w1.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: mpKey, UploadId: cr.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String(`"0123"`)}}}}); apiCode(err) != "InvalidPart" {
			t.Errorf("Complete with a wrong ETag: %v, want InvalidPart", err)
		}
		comp, err := w1.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: mpKey, UploadId: cr.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
		if err != nil {
			t.Fatalf("CompleteMultipartUpload: %v", err)
		}
		head, err := direct.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: mpKey})
		if err != nil || aws.ToInt64(head.ContentLength) != parts*partSize || aws.ToString(head.ETag) != aws.ToString(comp.ETag) {
			t.Errorf("in the bucket: %+v, %v", head, err)
		}
		for i, cl := range []*s3.Client{w2, w0, w2} { // a cold read, a read on another node, then a local one
			got, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: mpKey})
			if err != nil {
				t.Fatalf("read %d: %v", i, err)
			}
			h := sha256.New()
			n, err := io.Copy(h, got.Body)
			got.Body.Close()
			if err != nil || n != parts*partSize || !bytes.Equal(h.Sum(nil), whole.Sum(nil)) || aws.ToString(got.ContentType) != "application/x-big" {
				t.Errorf("read %d: %d bytes, %v, type %s", i, n, err, aws.ToString(got.ContentType))
			}
		}
		// One part read by number, as download managers do: its bytes are
		// the uploaded part's, served from the cache.
		pg, err := w1.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: mpKey, PartNumber: aws.Int32(3)})
		if err != nil {
			t.Fatalf("GetObject part 3: %v", err)
		}
		ph := sha256.New()
		pn, err := io.Copy(ph, pg.Body)
		pg.Body.Close()
		want := sha256.New()
		io.Copy(want, io.LimitReader(benchData(partSize+2), partSize))
		if err != nil || pn != partSize || !bytes.Equal(ph.Sum(nil), want.Sum(nil)) || aws.ToInt32(pg.PartsCount) != parts ||
			aws.ToString(pg.ContentRange) != fmt.Sprintf("bytes %d-%d/%d", 2*partSize, 3*partSize-1, parts*partSize) {
			t.Errorf("GetObject part 3: %d bytes, range %s, %d parts, %v", pn, aws.ToString(pg.ContentRange), aws.ToInt32(pg.PartsCount), err)
		}
		if hp, err := w2.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: mpKey, PartNumber: aws.Int32(parts)}); err != nil ||
			aws.ToInt64(hp.ContentLength) != partSize || aws.ToInt32(hp.PartsCount) != parts {
			t.Errorf("HeadObject of the last part: %+v, %v", hp, err)
		}
		if _, err := w0.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: mpKey, PartNumber: aws.Int32(parts + 1)}); apiCode(err) != "InvalidPartNumber" {
			t.Errorf("a part the object lacks: %v, want InvalidPartNumber", err)
		}
		if _, err := w0.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: mpKey, PartNumber: aws.Int32(1), Range: aws.String("bytes=0-9")}); apiCode(err) != "InvalidRequest" {
			t.Errorf("a part and a range: %v, want InvalidRequest", err)
		}
		// A part copied from a range of another object, then aborted.
		cr2, err := w2.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("big/copy.bin")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w0.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b, Key: aws.String("big/copy.bin"), UploadId: cr2.UploadId,
			PartNumber: aws.Int32(1), CopySource: aws.String(c.bucket + "/big/100MiB.bin"), CopySourceRange: aws.String("bytes=0-1048575")}); err != nil {
			t.Errorf("UploadPartCopy: %v", err)
		}
		if _, err := w1.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String("big/copy.bin"), UploadId: cr2.UploadId}); err != nil {
			t.Errorf("AbortMultipartUpload: %v", err)
		}
		if _, err := w1.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("big/copy.bin"), UploadId: cr2.UploadId}); apiCode(err) != "NoSuchUpload" {
			t.Errorf("ListParts of an aborted upload: %v, want NoSuchUpload", err)
		}
	})

	t.Run("buckets", func(t *testing.T) {
		if _, err := w0.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: b}); err != nil {
			t.Errorf("HeadBucket: %v", err)
		}
		loc, err := w0.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: b})
		if err != nil || loc.LocationConstraint != "" {
			t.Errorf("GetBucketLocation: %+v, %v", loc, err)
		}
		lb, err := w0.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil || len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != c.bucket {
			t.Errorf("ListBuckets: %+v, %v", lb, err)
		} else if created := aws.ToTime(lb.Buckets[0].CreationDate); time.Since(created) > time.Hour {
			t.Errorf("ListBuckets: %s created %v, want the origin's date (within the hour)", c.bucket, created)
		}
		if _, err := w0.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("not-served"), Key: aws.String("k")}); apiCode(err) != "AccessDenied" {
			t.Errorf("a bucket not served: %v, want AccessDenied", err)
		}
	})

	t.Run("authentication", func(t *testing.T) {
		if _, err := c.client(0, s3Writer, "a-wrong-secret-here").GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key)}); apiCode(err) != "SignatureDoesNotMatch" {
			t.Errorf("a wrong secret: %v, want SignatureDoesNotMatch", err)
		}
		if _, err := c.client(0, "nobody", "whatever-secret").GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key)}); apiCode(err) != "InvalidAccessKeyId" {
			t.Errorf("an unknown key: %v, want InvalidAccessKeyId", err)
		}
		if _, err := c.client(0, s3Reader, s3ReaderSecret).PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("ro.txt"), Body: strings.NewReader("x")}); apiCode(err) != "AccessDenied" {
			t.Errorf("a write with a read key: %v, want AccessDenied", err)
		}
		// A request signed an hour ago.
		req, _ := http.NewRequest("GET", c.s3[0]+"/"+c.bucket+"/"+escapePath(key), nil)
		empty := sha256.Sum256(nil)
		req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(empty[:]))
		if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: s3Writer, SecretAccessKey: s3WriterSecret}, req,
			hex.EncodeToString(empty[:]), "s3", "us-east-1", time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(msg), "<Code>RequestTimeTooSkewed</Code>") || resp.Header.Get("X-Amz-Request-Id") == "" {
			t.Errorf("a skewed clock: %d %s", resp.StatusCode, msg)
		}
		// aws-chunked bodies: every chunk's signature is checked before
		// its bytes are stored; a tampered chunk stores nothing.
		payload := bytes.Repeat([]byte("chunked body "), 20_000) // 260 KB in 64 KiB chunks
		for _, tamper := range []bool{false, true} {
			chunkKey := fmt.Sprintf("chunked/tampered-%v.bin", tamper)
			resp := putChunked(t, c.s3[2]+"/"+c.bucket+"/"+chunkKey, payload, 64<<10, tamper)
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case !tamper && resp.StatusCode != 200:
				t.Errorf("a signed aws-chunked PUT: %d %s", resp.StatusCode, msg)
			case tamper && (resp.StatusCode != 403 || !strings.Contains(string(msg), "SignatureDoesNotMatch")):
				t.Errorf("a tampered aws-chunked PUT: %d %s", resp.StatusCode, msg)
			}
			got, err := direct.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(chunkKey)})
			if tamper {
				if err == nil {
					got.Body.Close()
					t.Error("the tampered upload left an object in the bucket")
				}
				continue
			}
			if err != nil {
				t.Fatalf("the aws-chunked upload is not in the bucket: %v", err)
			}
			data, _ := io.ReadAll(got.Body)
			got.Body.Close()
			if !bytes.Equal(data, payload) {
				t.Errorf("the aws-chunked upload stored %d bytes, want %d", len(data), len(payload))
			}
		}

		// A presigned GET, read with a plain HTTP client.
		ps, err := s3.NewPresignClient(c.client(1, s3Reader, s3ReaderSecret)).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		resp, err = http.Get(ps.URL)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(data, body) {
			t.Errorf("presigned GET: %d, %d bytes", resp.StatusCode, len(data))
		}
	})
}

// putChunked PUTs payload to url as a signed aws-chunked body
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) of chunks of chunk bytes, signed
// with the writer key by the SDK's own signers; with tamper, one byte of
// the second chunk is changed after signing.
func putChunked(t *testing.T, url string, payload []byte, chunk int, tamper bool) *http.Response {
	t.Helper()
	const streaming = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	creds := aws.Credentials{AccessKeyID: s3Writer, SecretAccessKey: s3WriterSecret}
	now := time.Now().UTC()
	var chunks [][]byte
	for off := 0; off < len(payload); off += chunk {
		chunks = append(chunks, payload[off:min(off+chunk, len(payload))])
	}
	chunks = append(chunks, nil)
	length := 0
	for _, c := range chunks {
		length += len(fmt.Sprintf("%x;chunk-signature=", len(c))) + 64 + 2 + len(c) + 2
	}
	req, err := http.NewRequest("PUT", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(length)
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(len(payload)))
	req.Header.Set("X-Amz-Content-Sha256", streaming)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, streaming, "s3", "us-east-1", now); err != nil {
		t.Fatal(err)
	}
	_, seed, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	seedSig, _ := hex.DecodeString(seed)
	ss := v4.NewStreamSigner(creds, "s3", "us-east-1", seedSig)
	var body bytes.Buffer
	for i, c := range chunks {
		sig, err := ss.GetSignature(context.Background(), nil, c, now)
		if err != nil {
			t.Fatal(err)
		}
		data := c
		if tamper && i == 1 {
			data = bytes.Clone(c)
			data[0] ^= 1
		}
		fmt.Fprintf(&body, "%x;chunk-signature=%x\r\n", len(c), sig)
		body.Write(data)
		body.WriteString("\r\n")
	}
	req.Body = io.NopCloser(&body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// With --origin-buckets "*", ListBuckets names every bucket the node's
// credentials own, and any of them is served.
func TestS3EndpointAnyBucket(t *testing.T) {
	c := startS3Cluster(t, 1, "--origin-buckets", "*")
	ctx := context.Background()
	other := c.srv.NewBucket(t)
	if _, err := c.srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(other), Key: aws.String("k"),
		Body: strings.NewReader("in the other bucket")}); err != nil {
		t.Fatal(err)
	}
	cl := c.client(0, s3Reader, s3ReaderSecret)
	lb, err := cl.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatalf("ListBuckets: %v", err)
	}
	var names []string
	for _, b := range lb.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	if !slices.Contains(names, c.bucket) || !slices.Contains(names, other) {
		t.Errorf("ListBuckets named %v, want %s and %s among them", names, c.bucket, other)
	}
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(other), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("GetObject from %s: %v", other, err)
	}
	defer out.Body.Close()
	if b, err := io.ReadAll(out.Body); err != nil || string(b) != "in the other bucket" {
		t.Errorf("GetObject from %s: %q, %v", other, b, err)
	}
}
