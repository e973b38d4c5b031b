// Package s3remote implements storage.Remote, storage.Origin and
// storage.Multipart on an Amazon S3 bucket, or on any S3-compatible server
// such as MinIO.
//
// Errors: a missing object matches storage.ErrNotFound, an unchanged object
// asked about with Revalidate storage.ErrNotModified, and invalid keys or
// metadata storage.ErrInvalidKey and storage.ErrInvalidMeta. The multipart
// methods match S3's NoSuchUpload, InvalidPart, InvalidPartOrder,
// EntityTooSmall, EntityTooLarge and BadDigest to storage.ErrNoSuchUpload,
// ErrInvalidPart, ErrInvalidPartOrder, ErrEntityTooSmall, ErrEntityTooLarge
// and ErrBadDigest, and refuse malformed upload IDs, part numbers, sizes and
// ranges with storage.ErrInvalidArgument before asking S3. Every other
// failure wraps the SDK's error as "s3 <op> <key>: <cause>", so errors.As and
// errors.Is reach the cause: a *smithy.OperationError, inside it a
// smithy.APIError (with an HTTP status via *awshttp.ResponseError) when the
// server answered, or the transport's error (*net.OpError, syscall errno such
// as ECONNREFUSED, *url.Error) when it could not be reached; a done context
// yields context.Canceled or context.DeadlineExceeded. A Put whose reader
// fails wraps the reader's error.
package s3remote

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"

	"github.com/objstore/objstore/storage"
)

const (
	// DefaultPartSize is the multipart upload part size used when
	// Config.PartSize is zero.
	DefaultPartSize = 8 << 20
	// MinPartSize is S3's smallest part size (but for the last part).
	MinPartSize = storage.MinPartSize
	// DefaultConcurrency is the number of parts uploaded in parallel when
	// Config.Concurrency is zero; with DefaultPartSize an upload holds
	// about 40 MiB.
	DefaultConcurrency = 3
	// DefaultRegion is used when neither Config.Region nor the AWS
	// configuration chain names one.
	DefaultRegion = "us-east-1"

	// abortTimeout bounds aborting a failed multipart upload.
	abortTimeout = 30 * time.Second
)

// Config configures a Remote.
type Config struct {
	// Bucket is the bucket's name. Required.
	Bucket string
	// Region is the bucket's region. Empty means the AWS configuration chain
	// (AWS_REGION, the shared config file), then DefaultRegion.
	Region string
	// Endpoint, when set, is the base URL of an S3-compatible server such as
	// MinIO ("http://127.0.0.1:9000"); requests then use path-style
	// addressing. Empty means AWS S3.
	Endpoint string
	// Prefix is prepended to every key to form the object's name in the
	// bucket; include a trailing "/" to make it a folder. May be empty.
	Prefix string
	// PartSize is the size of multipart upload parts, at least MinPartSize;
	// zero means DefaultPartSize. Objects of PartSize bytes or more are
	// uploaded in parts. With parts of PartSize, an object of unknown size
	// may be up to 10,000 × PartSize bytes.
	PartSize int64
	// Concurrency is how many parts of one Put are uploaded in parallel;
	// zero means DefaultConcurrency. A Put holds at most about
	// PartSize × (Concurrency + 2) bytes of buffers.
	Concurrency int
	// Logger receives the SDK's warnings and the Remote's own; nil means
	// slog.Default().
	Logger *slog.Logger
	// Credentials, when set, replaces the standard AWS credential chain
	// (environment, shared config and credentials files, SSO, container and
	// instance roles).
	Credentials aws.CredentialsProvider
	// IOTimeout bounds every wait on an S3 connection: for the answer to
	// begin, and for each read and write of a body. An S3 that stalls,
	// or black-holes requests, fails them as unavailable (after the SDK's
	// retries) instead of holding them forever. Zero means
	// DefaultIOTimeout; negative means no bound.
	IOTimeout time.Duration
	// AnyKey makes every method check keys with storage.CheckOriginKey
	// instead of storage.CheckRemoteKey, for origin buckets holding keys
	// objstore did not choose: leading slashes, empty path elements,
	// backslashes, spaces, '+', '%' or any other UTF-8 but NUL. Keys with
	// a "." or ".." path element are refused either way. Off, the Remote
	// accepts exactly the keys every storage.Remote accepts.
	AnyKey bool
	// Observer, when set, is told of every request sent to S3 and of
	// the bytes read back (metrics).
	Observer Observer
}

// DefaultIOTimeout is Config.IOTimeout's default.
const DefaultIOTimeout = 30 * time.Second

// Remote is a storage.Remote, a storage.Origin and a storage.Multipart on
// an S3 bucket. It is safe for concurrent use.
type Remote struct {
	client   *s3.Client
	uploader *transfermanager.Client
	// partSize and concurrency shape PutFile's multipart uploads.
	partSize    int64
	concurrency int
	bucket      string
	prefix      string
	endpoint    string
	region      string
	anyKey      bool
	log         *slog.Logger
}

var (
	_ storage.Remote     = (*Remote)(nil)
	_ storage.Origin     = (*Remote)(nil)
	_ storage.FilePutter = (*Remote)(nil)
)

// New returns a Remote for cfg. It loads the AWS configuration but makes no
// request, so a missing bucket or bad credentials show on first use (or in
// EnsureBucket).
func New(ctx context.Context, cfg Config) (*Remote, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3remote: no bucket")
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < MinPartSize {
		return nil, fmt.Errorf("s3remote: part size %d is below S3's minimum %d", cfg.PartSize, MinPartSize)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Concurrency < 0 {
		return nil, fmt.Errorf("s3remote: negative concurrency %d", cfg.Concurrency)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}

	if cfg.IOTimeout == 0 {
		cfg.IOTimeout = DefaultIOTimeout
	}
	opts := []func(*config.LoadOptions) error{
		config.WithLogger(sdkLogger(log)),
	}
	if cfg.IOTimeout > 0 {
		opts = append(opts, config.WithHTTPClient(timeoutClient(cfg.IOTimeout)))
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3remote: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultRegion
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
		// Multipart objects carry composite checksums the SDK cannot check
		// on download; it would log that on every such Get.
		o.DisableLogOutputChecksumValidationSkipped = true
		o.APIOptions = append(o.APIOptions, unsignedPayload)
		if cfg.Observer != nil {
			o.APIOptions = append(o.APIOptions, observe(cfg.Observer))
		}
	})

	// transfermanager streams an io.Reader of unknown length in parts from
	// a pool of Concurrency+1 part buffers. Its first part is read whole
	// before it decides between PutObject and a multipart upload, so the
	// threshold is set to PartSize to bound that buffer too.
	uploader := transfermanager.New(noAbortClient{client}, func(o *transfermanager.Options) {
		o.PartSizeBytes = cfg.PartSize
		o.MultipartUploadThreshold = cfg.PartSize
		o.Concurrency = cfg.Concurrency
	})
	return &Remote{
		client:      client,
		uploader:    uploader,
		partSize:    cfg.PartSize,
		concurrency: max(cfg.Concurrency, 1),
		bucket:      cfg.Bucket,
		prefix:      cfg.Prefix,
		endpoint:    cfg.Endpoint,
		region:      awsCfg.Region,
		anyKey:      cfg.AnyKey,
		log:         log.With("remote", "s3://"+cfg.Bucket+"/"+cfg.Prefix),
	}, nil
}

// unsignedPayload signs requests without hashing their bodies
// (UNSIGNED-PAYLOAD, as the SDK does by itself over TLS): the upload's
// CRC-32 checksum, which the SDK still computes and the store checks,
// covers every byte, and a SHA-256 of each part besides cost a level-1 PUT
// about a fifth of its time on a busy core. It must come first: the
// checksum step computes the SHA-256 alongside its own unless a payload
// hash is already set.
func unsignedPayload(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("objstoreUnsignedPayload",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			return next.HandleFinalize(v4.SetPayloadHash(ctx, "UNSIGNED-PAYLOAD"), in)
		}), middleware.Before)
}

// sdkLogger forwards the SDK's log output to log.
func sdkLogger(log *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		level := slog.LevelDebug
		if c == logging.Warn {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, fmt.Sprintf(format, v...), "source", "aws-sdk")
	})
}

// checkWrite checks what a write stores with the object: its key, content
// type and metadata; op names the write in the error.
func (r *Remote) checkWrite(op, key, contentType string, meta map[string]string) error {
	if err := r.checkKey(key); err != nil {
		return err
	}
	if err := storage.CheckRemoteMeta(meta); err != nil {
		return fmt.Errorf("s3 %s %s: %w", op, key, err)
	}
	if err := storage.CheckContentType(contentType); err != nil {
		return fmt.Errorf("s3 %s %s: %w", op, key, err)
	}
	return nil
}

// checkKey checks key with storage.CheckOriginKey when Config.AnyKey is
// set, else with storage.CheckRemoteKey.
func (r *Remote) checkKey(key string) error {
	if r.anyKey {
		return storage.CheckOriginKey(key)
	}
	return storage.CheckRemoteKey(key)
}

// WithBucket returns a Remote on bucket with r's endpoint, credentials,
// client and part settings, no prefix, and every key CheckOriginKey
// accepts (Config.AnyKey): an origin bucket's. It makes no request and
// shares r's connections.
func (r *Remote) WithBucket(bucket string) *Remote {
	o := *r
	o.bucket, o.prefix, o.anyKey = bucket, "", true
	return &o
}

// Bucket is a bucket the credentials own, as ListBuckets names it.
type Bucket struct {
	Name    string
	Created time.Time // zero when the store does not say
}

// ListBuckets lists the buckets the Remote's credentials own, in the
// store's order (by name on S3 and MinIO). It pages through the listing;
// the number of buckets an account holds is bounded by the store.
func (r *Remote) ListBuckets(ctx context.Context) ([]Bucket, error) {
	var out []Bucket
	p := s3.NewListBucketsPaginator(r.client, &s3.ListBucketsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap("list buckets", "", err, false)
		}
		for _, b := range page.Buckets {
			out = append(out, Bucket{Name: aws.ToString(b.Name), Created: aws.ToTime(b.CreationDate)})
		}
	}
	return out, nil
}

// String returns "s3://bucket/prefix", followed by " (endpoint)" when an
// endpoint is set.
func (r *Remote) String() string {
	s := "s3://" + r.bucket + "/" + r.prefix
	if r.endpoint != "" {
		s += " (" + r.endpoint + ")"
	}
	return s
}

// EnsureBucket creates the bucket if it does not exist. It returns nil when
// the bucket exists and is reachable with the Remote's credentials, including
// when it was already created by them.
func (r *Remote) EnsureBucket(ctx context.Context) error {
	_, err := r.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(r.bucket)})
	if err == nil {
		return nil
	}
	var nf *types.NotFound
	if !errors.As(err, &nf) && httpStatus(err) != 404 {
		return wrap("head bucket", r.bucket, err, false)
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(r.bucket)}
	// us-east-1 is the default location and must not be named.
	if r.region != "" && r.region != DefaultRegion {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(r.region),
		}
	}
	_, err = r.client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return wrap("create bucket", r.bucket, err, false)
	}
	r.log.Info("bucket ready", "bucket", r.bucket, "created", err == nil)
	return nil
}

// httpStatus returns the HTTP status code of the response behind err, or 0.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// wrap adds the operation and key to err, and classifies it: ErrNotFound
// when it reports a missing object, ErrUnavailable when S3 could not be
// reached or asked to back off. NoSuchKey and NotFound are S3's codes for
// a missing object; a bare 404 counts only for HEAD requests, whose
// responses carry no code (so a missing bucket looks the same there),
// because elsewhere a 404 may be NoSuchBucket.
func wrap(op, key string, err error, head bool) error {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	switch {
	case errors.As(err, &nsk) || errors.As(err, &nf) || head && httpStatus(err) == 404:
		return fmt.Errorf("s3 %s %s: %w: %w", op, key, storage.ErrNotFound, err)
	case unavailable(err):
		return fmt.Errorf("s3 %s %s: %w: %w", op, key, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("s3 %s %s: %w", op, key, err)
}

// unavailable reports whether err means S3 could not be reached, timed
// out, or asked to back off, as opposed to refusing the request.
func unavailable(err error) bool {
	var netErr net.Error
	var opErr *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.As(err, &opErr),
		errors.As(err, &netErr) && netErr.Timeout():
		return true
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		code := re.HTTPStatusCode()
		return code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests || code == 0
	}
	return false
}

// classifiedBody marks a failed read of an object's body as unavailable
// when the connection failed, so callers need not inspect network errors.
type classifiedBody struct{ io.ReadCloser }

func (b classifiedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && unavailable(err) {
		err = fmt.Errorf("s3 read body: %w: %w", storage.ErrUnavailable, err)
	}
	return n, err
}

// Put stores r's bytes under key as described by storage.Putter, streaming
// them in parts when there are PartSize bytes or more. When size >= 0 and r
// yields a different number of bytes, Put fails (a short reader yields an
// error matching io.ErrUnexpectedEOF) and stores nothing. An error from r or
// ctx is wrapped so errors.Is finds it. A failed multipart upload is
// aborted, so it leaves no parts behind; if the abort fails too (the server
// is down), a warning with the upload ID is logged. Put is PutTyped with no
// media type, for which S3 then reports its default type (MinIO:
// application/octet-stream).
func (r *Remote) Put(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) error {
	_, err := r.PutTyped(ctx, key, body, size, "", meta)
	return err
}

// PutTyped is Put that also stores contentType as the object's
// Content-Type, as described by storage.Origin. An empty contentType
// stores none, and S3 reports its default; one that
// storage.CheckContentType refuses fails with storage.ErrInvalidMeta and
// stores nothing.
func (r *Remote) PutTyped(ctx context.Context, key string, body io.Reader, size int64, contentType string, meta map[string]string) (string, error) {
	if err := r.checkWrite("put", key, contentType, meta); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("s3 put %s: %w", key, err)
	}
	// The wrapper also hides io.Seeker from the uploader, which would
	// otherwise measure the body from its current offset and trust that.
	src := &putReader{ctx: ctx, r: body, remain: size}
	in := &transfermanager.UploadObjectInput{
		Bucket:   aws.String(r.bucket),
		Key:      aws.String(r.prefix + key),
		Body:     src,
		Metadata: encodeMeta(meta),
	}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	if size > 0 {
		// Lets the uploader grow parts for objects above 10,000 parts.
		in.ContentLength = aws.Int64(size)
	}
	out, err := r.uploader.UploadObject(ctx, in)
	if err != nil {
		var mpe transfermanager.MultipartUploadError
		if errors.As(err, &mpe) {
			r.abort(key, mpe.UploadID())
		}
		return "", wrap("put", key, err, false)
	}
	return aws.ToString(out.ETag), nil
}

// noAbortClient hands transfermanager a no-op AbortMultipartUpload, so that
// Put aborts failed uploads itself: when transfermanager's own abort fails
// (as it does when the server went away) it flattens the upload's error into
// a string, and callers could no longer find the cause with errors.As.
type noAbortClient struct{ *s3.Client }

// AbortMultipartUpload does nothing; Remote.abort does the real one.
func (noAbortClient) AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	return &s3.AbortMultipartUploadOutput{}, nil
}

// abort aborts a failed multipart upload, on a fresh context because the
// Put's own may be what failed. Parts left behind would cost storage until a
// lifecycle rule removes them, so a failure is logged with the upload ID.
func (r *Remote) abort(key, uploadID string) {
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	_, err := r.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(r.bucket),
		Key:      aws.String(r.prefix + key),
		UploadId: aws.String(uploadID),
	})
	var nsu *types.NoSuchUpload
	if err != nil && !errors.As(err, &nsu) {
		r.log.Warn("could not abort failed multipart upload; its parts remain until a lifecycle rule removes them",
			"key", r.prefix+key, "upload_id", uploadID, "err", err)
	}
}

// putReader feeds a Put: it stops once ctx is done and, when remain >= 0,
// checks that the body has exactly that many bytes left.
type putReader struct {
	ctx    context.Context
	r      io.Reader
	remain int64 // -1: unknown size
}

// errTooLong reports a body longer than the size given to Put.
var errTooLong = errors.New("reader is longer than the declared size")

func (p *putReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	if p.remain < 0 {
		return p.r.Read(b)
	}
	if p.remain == 0 {
		// Probe for a byte past the declared size.
		var one [1]byte
		n, err := p.r.Read(one[:])
		if n > 0 {
			return 0, errTooLong
		}
		if err == nil {
			return 0, nil
		}
		return 0, err
	}
	if int64(len(b)) > p.remain {
		b = b[:p.remain]
	}
	n, err := p.r.Read(b)
	p.remain -= int64(n)
	if err == io.EOF && p.remain > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Get returns a reader over length bytes of key's object from offset, as
// described by storage.Getter, using an HTTP Range request. A negative offset
// is an error. The reader stops with an error once ctx is done. The
// ObjectInfo's Size is the whole object's, its ETag and ContentType are
// those S3 reports for the object, and its Meta is never nil.
func (r *Remote) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, storage.ObjectInfo, error) {
	if err := r.checkKey(key); err != nil {
		return nil, storage.ObjectInfo{}, err
	}
	if offset < 0 {
		return nil, storage.ObjectInfo{}, fmt.Errorf("s3 get %s: negative offset %d", key, offset)
	}
	if length == 0 {
		// HTTP cannot ask for zero bytes.
		info, err := r.Stat(ctx, key)
		if err != nil {
			return nil, storage.ObjectInfo{}, err
		}
		return io.NopCloser(bytes.NewReader(nil)), info, nil
	}
	in := &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(r.prefix + key)}
	ranged := offset > 0 || length > 0
	if ranged {
		if length > 0 {
			in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
		} else {
			in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
		}
	}
	out, err := r.client.GetObject(ctx, in)
	if err != nil {
		if httpStatus(err) == 416 {
			// The range starts at or past the end (or the object is
			// empty): per the contract that is an empty read.
			info, serr := r.Stat(ctx, key)
			if serr != nil {
				return nil, storage.ObjectInfo{}, serr
			}
			if offset >= info.Size {
				return io.NopCloser(bytes.NewReader(nil)), info, nil
			}
		}
		return nil, storage.ObjectInfo{}, wrap("get", key, err, false)
	}
	info := objectInfo(key, out.ContentLength, out.LastModified, out.Metadata, out.ETag, out.ContentType)
	var body io.ReadCloser = classifiedBody{out.Body}
	switch {
	case ranged && out.ContentRange != nil:
		first, _, total, ok := parseContentRange(*out.ContentRange)
		if !ok || first != offset {
			_ = out.Body.Close() // the response is unusable
			return nil, storage.ObjectInfo{}, fmt.Errorf("s3 get %s: bad Content-Range %q", key, *out.ContentRange)
		}
		info.Size = total
	case ranged:
		// The server ignored the range and sent the whole object: skip
		// and limit here.
		if _, err := io.CopyN(io.Discard, body, min(offset, info.Size)); err != nil {
			_ = out.Body.Close() // the response is unusable
			return nil, storage.ObjectInfo{}, fmt.Errorf("s3 get %s: skip to offset: %w", key, err)
		}
		if length > 0 {
			body = readCloser{Reader: io.LimitReader(body, length), Closer: out.Body}
		}
	}
	return body, info, nil
}

// readCloser pairs a reader with the Closer of what it reads from.
type readCloser struct {
	io.Reader
	io.Closer
}

// parseContentRange parses a Content-Range header of a satisfied range,
// "bytes first-last/total", and reports whether it is well formed.
func parseContentRange(s string) (first, last, total int64, ok bool) {
	spec, ok := strings.CutPrefix(s, "bytes ")
	rng, tot, ok2 := strings.Cut(spec, "/")
	a, b, ok3 := strings.Cut(rng, "-")
	if !ok || !ok2 || !ok3 {
		return 0, 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	total, err3 := strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || first < 0 || last < first || total <= last {
		return 0, 0, 0, false
	}
	return first, last, total, true
}

// Stat describes key's object with a HEAD request. Because HEAD responses
// carry no error code, a missing bucket also yields ErrNotFound here. The
// returned ETag and ContentType are those S3 reports, and Meta is never
// nil.
func (r *Remote) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	if err := r.checkKey(key); err != nil {
		return storage.ObjectInfo{}, err
	}
	return r.head(ctx, "stat", key, "")
}

// Revalidate asks S3 whether key's object still has the ETag etag, as
// described by storage.Origin, with a HEAD request carrying If-None-Match:
// S3 answers 304 Not Modified, and Revalidate an error matching
// storage.ErrNotModified, when it does. Otherwise it returns the object's
// description as Stat does, or an error matching storage.ErrNotFound when
// the object is gone (or, as for Stat, the bucket). An empty etag matches
// no object.
func (r *Remote) Revalidate(ctx context.Context, key, etag string) (storage.ObjectInfo, error) {
	if err := r.checkKey(key); err != nil {
		return storage.ObjectInfo{}, err
	}
	return r.head(ctx, "revalidate", key, etag)
}

// head describes key's object with a HEAD request, conditional on the
// object's ETag not being ifNoneMatch when that is not empty.
func (r *Remote) head(ctx context.Context, op, key, ifNoneMatch string) (storage.ObjectInfo, error) {
	in := &s3.HeadObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(r.prefix + key)}
	if ifNoneMatch != "" {
		in.IfNoneMatch = aws.String(ifNoneMatch)
	}
	out, err := r.client.HeadObject(ctx, in)
	if err != nil {
		if ifNoneMatch != "" && httpStatus(err) == http.StatusNotModified {
			return storage.ObjectInfo{}, fmt.Errorf("s3 %s %s: %w", op, key, storage.ErrNotModified)
		}
		return storage.ObjectInfo{}, wrap(op, key, err, true)
	}
	return objectInfo(key, out.ContentLength, out.LastModified, out.Metadata, out.ETag, out.ContentType), nil
}

// objectInfo describes an object from the fields GetObject and HeadObject
// both answer with.
func objectInfo(key string, size *int64, modified *time.Time, meta map[string]string, etag, contentType *string) storage.ObjectInfo {
	return storage.ObjectInfo{
		Key:         key,
		Size:        aws.ToInt64(size),
		ModTime:     aws.ToTime(modified),
		Meta:        decodeMeta(meta),
		ETag:        aws.ToString(etag),
		ContentType: aws.ToString(contentType),
	}
}

// Remove deletes key's object with DeleteObject, which S3 answers with
// success whether or not the object existed.
func (r *Remote) Remove(ctx context.Context, key string) error {
	if err := r.checkKey(key); err != nil {
		return err
	}
	_, err := r.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(r.prefix + key)})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) {
			return nil // some S3-compatible servers report it
		}
		return wrap("remove", key, err, false)
	}
	return nil
}

// List returns one page of the listing opts selects, as described by
// storage.Origin, with one ListObjectsV2 request: its Prefix is the
// Remote's prefix followed by opts.Prefix, its StartAfter the Remote's
// prefix followed by opts.After (when set), its MaxKeys opts.Max (0, a
// negative Max or one above storage.MaxListPage asks for
// storage.MaxListPage). The Remote's prefix is stripped from the keys and
// common prefixes returned. The objects carry Key, Size, ModTime and ETag;
// no Meta and no ContentType, which S3's listing does not carry. Keys are
// returned as the bucket holds them, including any that the Remote's key
// check would refuse to Get. An opts field that is not UTF-8 or holds a
// NUL fails with storage.ErrInvalidKey. Next is the greatest key or common
// prefix of the page when S3 reports more, else empty.
func (r *Remote) List(ctx context.Context, opts storage.ListOptions) (storage.ListPage, error) {
	if err := storage.CheckListOptions(opts); err != nil {
		return storage.ListPage{}, err
	}
	in := &s3.ListObjectsV2Input{
		Bucket:  aws.String(r.bucket),
		Prefix:  aws.String(r.prefix + opts.Prefix),
		MaxKeys: aws.Int32(int32(listMax(opts.Max))),
		// Keys may hold characters XML cannot carry (control characters);
		// URL-encoded, every key survives the response.
		EncodingType: types.EncodingTypeUrl,
	}
	if opts.Delimiter != "" {
		in.Delimiter = aws.String(opts.Delimiter)
	}
	if opts.After != "" {
		in.StartAfter = aws.String(r.prefix + opts.After)
	}
	out, err := r.client.ListObjectsV2(ctx, in)
	if err != nil {
		return storage.ListPage{}, wrap("list", opts.Prefix, err, false)
	}
	// A server may ignore EncodingType; it says so by not echoing it.
	decode := func(s string) (string, error) { return s, nil }
	if out.EncodingType == types.EncodingTypeUrl {
		decode = url.QueryUnescape
	}
	var page storage.ListPage
	var last string
	for _, o := range out.Contents {
		key, err := r.listedKey(decode, aws.ToString(o.Key))
		if err != nil {
			return storage.ListPage{}, fmt.Errorf("s3 list %s: %w", opts.Prefix, err)
		}
		page.Objects = append(page.Objects, storage.ObjectInfo{
			Key:     key,
			Size:    aws.ToInt64(o.Size),
			ModTime: aws.ToTime(o.LastModified),
			ETag:    aws.ToString(o.ETag),
		})
		last = max(last, key)
	}
	for _, p := range out.CommonPrefixes {
		prefix, err := r.listedKey(decode, aws.ToString(p.Prefix))
		if err != nil {
			return storage.ListPage{}, fmt.Errorf("s3 list %s: %w", opts.Prefix, err)
		}
		page.CommonPrefixes = append(page.CommonPrefixes, prefix)
		last = max(last, prefix)
	}
	if aws.ToBool(out.IsTruncated) {
		if last == "" {
			// Nothing to continue after: following the listing would
			// either stop early or loop.
			return storage.ListPage{}, fmt.Errorf("s3 list %s: truncated page without entries", opts.Prefix)
		}
		// S3 returns objects and common prefixes apart, each in order;
		// the next page starts after the greatest of either.
		page.Next = last
	}
	return page, nil
}

// listedKey decodes a key or common prefix from a listing and strips the
// Remote's prefix from it.
func (r *Remote) listedKey(decode func(string) (string, error), raw string) (string, error) {
	s, err := decode(raw)
	if err != nil {
		return "", fmt.Errorf("listed key %q: %w", raw, err)
	}
	key, ok := strings.CutPrefix(s, r.prefix)
	if !ok {
		return "", fmt.Errorf("listed key %q is outside the prefix %q", s, r.prefix)
	}
	return key, nil
}

// listMax returns the page size for ListOptions.Max.
func listMax(n int) int {
	if n <= 0 || n > storage.MaxListPage {
		return storage.MaxListPage
	}
	return n
}

// metaB64 marks a metadata value stored base64-encoded. S3 carries metadata
// in HTTP headers, which only hold printable ASCII safely and lose leading
// and trailing spaces, and the SDK drops empty values; such values, and those
// that begin with the marker, are encoded. Others are stored as they are, so
// the bucket stays readable with other tools.
const metaB64 = "b64:"

func encodeMeta(meta map[string]string) map[string]string {
	if len(meta) == 0 {
		return nil
	}
	out := make(map[string]string, len(meta))
	for k, v := range meta {
		if plainMetaValue(v) {
			out[k] = v
		} else {
			out[k] = metaB64 + base64.StdEncoding.EncodeToString([]byte(v))
		}
	}
	return out
}

// plainMetaValue reports whether v survives an HTTP header unchanged:
// non-empty printable ASCII, no space at either end and no run of spaces
// (SigV4 canonicalization folds those), not starting with the marker.
func plainMetaValue(v string) bool {
	if v == "" || strings.HasPrefix(v, metaB64) || v[0] == ' ' || v[len(v)-1] == ' ' || strings.Contains(v, "  ") {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// decodeMeta reverses encodeMeta. A marked value that does not decode to
// UTF-8 was not written by Put; it is returned as stored.
func decodeMeta(meta map[string]string) map[string]string {
	out := make(map[string]string, len(meta))
	for k, v := range meta {
		if enc, ok := strings.CutPrefix(v, metaB64); ok {
			if b, err := base64.StdEncoding.DecodeString(enc); err == nil && utf8.Valid(b) {
				v = string(b)
			}
		}
		out[strings.ToLower(k)] = v
	}
	return out
}

// timeoutClient returns the SDK's HTTP client with every connection
// operation bounded by d: the answer's headers, and each read and write of
// a body (a deadline set afresh for each, so a slow but moving transfer
// goes on while a stalled one fails).
func timeoutClient(d time.Duration) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		dialer := &net.Dialer{Timeout: min(d, 10*time.Second), KeepAlive: 30 * time.Second}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &deadlineConn{Conn: c, d: d}, nil
		}
		tr.ResponseHeaderTimeout = d
	})
}

// deadlineConn sets a deadline d ahead before every read and write.
type deadlineConn struct {
	net.Conn
	d time.Duration
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.d))
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.d))
	return c.Conn.Write(p)
}
