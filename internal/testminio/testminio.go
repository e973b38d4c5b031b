// Package testminio gives tests a real MinIO server.
//
// The server binary is MinIO at the pinned Version. It is taken from
// $OBJSTORE_MINIO when that is set, else from
// <user cache dir>/objstore/minio-<Version>/minio, which the harness builds
// with "go install" on first use (several minutes) under a file lock shared
// by parallel test processes. When no binary can be had the calling test is
// skipped, or failed when $CI is set.
//
// One server is started per test process, on loopback ports, with its data
// in a temp dir. Packages using it should call Main from TestMain so the
// server is stopped and its data removed when the tests end; the server is
// also killed if the test process dies.
package testminio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/objstore/objstore/internal/gobin"
)

// Version is the pinned MinIO module version.
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

const (
	modulePath = "github.com/minio/minio"

	// EnvBinary names the environment variable holding the path of a MinIO
	// binary to use instead of the cached build.
	EnvBinary = "OBJSTORE_MINIO"

	accessKey = "objstore-test"
	secretKey = "objstore-test-secret"
	region    = "us-east-1"

	readyTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
)

// errNoBinary marks failures to obtain the MinIO binary, which skip tests
// outside CI.
var errNoBinary = errors.New("MinIO binary not available")

// Server is a running MinIO server. Its methods are safe for concurrent use.
type Server struct {
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
	// Region is the region the server reports, "us-east-1".
	Region string

	bin      string
	baseDir  string // holds data/, certs/ and minio.log
	addr     string // 127.0.0.1:port, kept across restarts
	console  string
	logPath  string
	client   *s3.Client
	bucketNo atomic.Int64

	mu      sync.Mutex
	cmd     *exec.Cmd     // nil while stopped
	exited  chan struct{} // closed when cmd has exited
	logFile *os.File
}

var (
	once      sync.Once
	shared    *Server
	sharedErr error
)

// Start returns the process's shared server, starting it (and building the
// binary) on first use, and restarting it if a test stopped it. When the
// binary cannot be had it skips t, or fails it when $CI is set. If t fails,
// the tail of the server's log is logged.
func Start(t testing.TB) *Server {
	t.Helper()
	once.Do(func() { shared, sharedErr = startShared(t) })
	if sharedErr != nil {
		if errors.Is(sharedErr, errNoBinary) && os.Getenv("CI") == "" {
			t.Skipf("testminio: %v\n%s", sharedErr, installHint())
		}
		t.Fatalf("testminio: %v\n%s", sharedErr, installHint())
	}
	if err := shared.Start(); err != nil {
		t.Fatalf("testminio: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testminio: tail of %s:\n%s", shared.logPath, shared.logTail())
		}
	})
	return shared
}

// Main runs the tests of m, then stops the shared server, if it was started,
// and removes its data, and exits with the tests' status. Call it from
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Stop()
		if err := os.RemoveAll(shared.baseDir); err != nil {
			fmt.Fprintf(os.Stderr, "testminio: remove %s: %v\n", shared.baseDir, err)
		}
	}
	os.Exit(code)
}

func installHint() string { return minioTool.InstallHint() }

// minioTool is the pinned MinIO server.
var minioTool = gobin.Tool{
	Name: "MinIO", Module: modulePath, Version: Version, Binary: "minio",
	Env: EnvBinary, Check: checkBinary, BuildTime: "several minutes",
}

func startShared(t testing.TB) (*Server, error) {
	bin, err := binary(t)
	if err != nil {
		return nil, err
	}
	base, err := os.MkdirTemp("", "objstore-minio-")
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"data", "certs"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			return nil, err
		}
	}
	s := &Server{
		AccessKey: accessKey,
		SecretKey: secretKey,
		Region:    region,
		bin:       bin,
		baseDir:   base,
		logPath:   filepath.Join(base, "minio.log"),
	}
	// The free ports may be taken before MinIO binds them; try fresh ones.
	for attempt := 1; ; attempt++ {
		if s.addr, err = freeAddr(); err != nil {
			return nil, err
		}
		if s.console, err = freeAddr(); err != nil {
			return nil, err
		}
		s.client = s3.New(s3.Options{
			Region:       region,
			Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
			BaseEndpoint: aws.String("http://" + s.addr),
			UsePathStyle: true,
			// Multipart objects' composite checksums cannot be checked.
			DisableLogOutputChecksumValidationSkipped: true,
		})
		err = s.Start()
		if err == nil || attempt == 3 {
			break
		}
		t.Logf("testminio: start on %s failed, retrying on other ports: %v", s.addr, err)
	}
	if err != nil {
		_ = os.RemoveAll(base) // nothing of value in it
		return nil, err
	}
	return s, nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// binary returns the path of a working MinIO binary, building it if needed.
func binary(t testing.TB) (string, error) {
	bin, err := minioTool.Path(t)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errNoBinary, err)
	}
	return bin, nil
}

// checkBinary runs "minio --version", which also catches a truncated file.
func checkBinary(bin string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	if err != nil {
		if msg := strings.TrimSpace(string(out)); msg != "" {
			return fmt.Errorf("%s --version: %w: %s", bin, err, msg)
		}
		return fmt.Errorf("%s --version: %w", bin, err)
	}
	return nil
}

// Endpoint returns the server's base URL, "http://127.0.0.1:port".
func (s *Server) Endpoint() string { return "http://" + s.addr }

// Pid returns the process ID of the running server, or 0 while it is
// stopped (for pinning it to a CPU in a benchmark).
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Credentials returns a provider of the root credentials.
func (s *Server) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")
}

// Client returns an S3 client for the server with the root credentials.
func (s *Server) Client() *s3.Client { return s.client }

// Env returns the environment entries that give a process the server's
// credentials and region through the standard AWS chain.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
	}
}

// NewBucket creates an empty bucket with a fresh, valid name and returns the
// name. The bucket and its contents are deleted when t ends, if the server
// is running then.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails
	name := fmt.Sprintf("t%d-%s-%s", s.bucketNo.Add(1), bucketSafe(t.Name()), hex.EncodeToString(rnd[:]))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testminio: create bucket %s: %v", name, err)
	}
	t.Cleanup(func() { s.deleteBucket(t, name) })
	return name
}

// bucketSafe turns a test name into bucket-name characters, at most 30.
func bucketSafe(name string) string {
	b := []byte(strings.ToLower(name))
	for i, c := range b {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b[:min(len(b), 30)]), "-")
}

// deleteBucket empties and deletes a test bucket, best effort: the data dir
// goes away with the process anyway.
func (s *Server) deleteBucket(t testing.TB, name string) {
	if !s.running() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fail := func(err error) { t.Logf("testminio: delete bucket %s: %v", name, err) }
	uploads, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(name)})
	if err != nil {
		fail(err)
		return
	}
	for _, u := range uploads.Uploads {
		if _, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(name), Key: u.Key, UploadId: u.UploadId}); err != nil {
			fail(err)
			return
		}
	}
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(name)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			fail(err)
			return
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]s3types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			ids[i] = s3types.ObjectIdentifier{Key: o.Key}
		}
		if _, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(name), Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)}}); err != nil {
			fail(err)
			return
		}
	}
	if _, err := s.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)}); err != nil {
		fail(err)
	}
}

func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Start starts the server if it is stopped, on the same address and data
// dir as before, and waits until it serves requests. It returns nil at once
// if the server is running.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	var err error
	// Just after a Stop, the port may still be held briefly.
	for attempt := 1; attempt <= 3; attempt++ {
		if err = s.startLocked(); err == nil {
			return nil
		}
		time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
	}
	return err
}

func (s *Server) startLocked() error {
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "\n--- testminio: starting %s on %s at %s\n", s.bin, s.addr, time.Now().Format(time.RFC3339))
	cmd := exec.Command(s.bin, "server",
		"--address", s.addr,
		"--console-address", s.console,
		"--certs-dir", filepath.Join(s.baseDir, "certs"), // not ~/.minio
		filepath.Join(s.baseDir, "data"))
	cmd.Env = append(withoutMinioEnv(os.Environ()),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_REGION="+s.Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=on", // no checks meant for production drives
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	// Owned by the Server: it ends when the process exits, which Stop and
	// Main (or, failing those, the death of this process) bring about.
	go func() {
		_ = cmd.Wait() // the exit status is in the log
		close(exited)
	}()
	if err := s.waitReady(exited); err != nil {
		kill(cmd, exited)
		logFile.Close()
		return fmt.Errorf("MinIO on %s: %w\ntail of %s:\n%s", s.addr, err, s.logPath, s.logTail())
	}
	s.cmd, s.exited, s.logFile = cmd, exited, logFile
	return nil
}

// withoutMinioEnv drops the parent's MINIO_ settings so that they cannot
// change the test server.
func withoutMinioEnv(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "MINIO_") {
			out = append(out, e)
		}
	}
	return out
}

// waitReady polls the liveness endpoint, then an S3 request (MinIO answers
// liveness before its object layer is up), until they succeed, the process
// exits, or readyTimeout passes.
func (s *Server) waitReady(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	var last error
	live := false
	for {
		if !live {
			live, last = s.live(ctx, hc)
		}
		if live {
			_, last = s.client.ListBuckets(ctx, &s3.ListBucketsInput{}, func(o *s3.Options) {
				o.RetryMaxAttempts = 1
			})
			if last == nil {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("process exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", readyTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Server) live(ctx context.Context, hc *http.Client) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint()+"/minio/health/live", nil)
	if err != nil {
		return false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	_, _ = io.Copy(io.Discard, resp.Body) // drain to reuse the connection
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("liveness: %s", resp.Status)
	}
	return true, nil
}

// Stop stops the server (SIGTERM, then SIGKILL after a grace period) and
// waits for it to exit; requests then fail with "connection refused" until
// Start. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM) // fails only if it already exited
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		kill(s.cmd, s.exited)
	}
	s.logFile.Close()
	s.cmd, s.exited, s.logFile = nil, nil, nil
}

// kill kills the process and waits for it to be reaped.
func kill(cmd *exec.Cmd, exited <-chan struct{}) {
	_ = cmd.Process.Kill() // fails only if it already exited
	<-exited
}

// logTail returns the end of the server's log.
func (s *Server) logTail() string {
	const tailMax = 8 << 10
	f, err := os.Open(s.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > tailMax {
		if _, err := f.Seek(-tailMax, io.SeekEnd); err != nil {
			return err.Error()
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
