package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/objstore/objstore/internal/s3clients"
)

// Sizes of the CLI client test: one file each client uploads in parts (20
// MiB), and a folder of small files to sync.
const (
	cliBigSize    = s3clients.MultipartAbove + 4<<20
	cliSmallFiles = 500
)

// cliClient is how one command-line client does each step of the test:
// each function returns the client's arguments.
type cliClient struct {
	name   string
	client func(testing.TB, s3clients.Endpoint) *s3clients.Client
	put    func(c *s3clients.Client, local, bucket, key string) []string
	get    func(c *s3clients.Client, bucket, key, local string) []string
	// list lists prefix; its output names the key and its size in bytes.
	list func(c *s3clients.Client, bucket, prefix string) []string
	// stat's output has the object's size in bytes.
	stat func(c *s3clients.Client, bucket, key string) []string
	// ranged reads part of the object into out with a Range request, and
	// says which part of the object out then holds; with rangedToStdout,
	// the client writes the part to its standard output, which goes to out.
	ranged         func(t *testing.T, c *s3clients.Client, bucket, key, src, out string) (args []string, off, n int64)
	rangedToStdout bool
	remove         func(c *s3clients.Client, bucket, key string) []string
	syncUp         func(c *s3clients.Client, dir, bucket, prefix string) []string
	syncDown       func(c *s3clients.Client, bucket, prefix, dir string) []string
}

// rangeOff and rangeLen are a range across the 8 and 16 MiB part
// boundaries of the clients' multipart uploads.
const rangeOff, rangeLen = 16<<20 - 3000, 10_000

var cliClients = []cliClient{
	{
		name:   "aws",
		client: s3clients.AWS,
		put: func(c *s3clients.Client, local, bucket, key string) []string {
			return []string{"s3", "cp", "--no-progress", local, c.Remote(bucket, key)}
		},
		get: func(c *s3clients.Client, bucket, key, local string) []string {
			return []string{"s3", "cp", "--no-progress", c.Remote(bucket, key), local}
		},
		list: func(c *s3clients.Client, bucket, prefix string) []string {
			return []string{"s3", "ls", "--recursive", c.Remote(bucket, prefix)}
		},
		stat: func(c *s3clients.Client, bucket, key string) []string {
			return []string{"s3api", "head-object", "--bucket", bucket, "--key", key}
		},
		ranged: func(t *testing.T, c *s3clients.Client, bucket, key, src, out string) ([]string, int64, int64) {
			return []string{"s3api", "get-object", "--bucket", bucket, "--key", key,
				"--range", fmt.Sprintf("bytes=%d-%d", rangeOff, rangeOff+rangeLen-1), out}, rangeOff, rangeLen
		},
		remove: func(c *s3clients.Client, bucket, key string) []string {
			return []string{"s3", "rm", c.Remote(bucket, key)}
		},
		syncUp: func(c *s3clients.Client, dir, bucket, prefix string) []string {
			return []string{"s3", "sync", "--no-progress", dir, c.Remote(bucket, prefix)}
		},
		syncDown: func(c *s3clients.Client, bucket, prefix, dir string) []string {
			return []string{"s3", "sync", "--no-progress", c.Remote(bucket, prefix), dir}
		},
	},
	{
		name:   "s3cmd",
		client: s3clients.S3cmd,
		put: func(c *s3clients.Client, local, bucket, key string) []string {
			return []string{"put", local, c.Remote(bucket, key)}
		},
		get: func(c *s3clients.Client, bucket, key, local string) []string {
			return []string{"get", c.Remote(bucket, key), local}
		},
		list: func(c *s3clients.Client, bucket, prefix string) []string {
			return []string{"ls", "--recursive", c.Remote(bucket, prefix)}
		},
		stat: func(c *s3clients.Client, bucket, key string) []string {
			return []string{"info", c.Remote(bucket, key)}
		},
		// s3cmd reads a range only to finish a partial download.
		ranged: func(t *testing.T, c *s3clients.Client, bucket, key, src, out string) ([]string, int64, int64) {
			copyPrefix(t, src, out, rangeOff)
			return []string{"get", "--continue", c.Remote(bucket, key), out}, 0, cliBigSize
		},
		remove: func(c *s3clients.Client, bucket, key string) []string {
			return []string{"del", c.Remote(bucket, key)}
		},
		syncUp: func(c *s3clients.Client, dir, bucket, prefix string) []string {
			return []string{"sync", dir + "/", c.Remote(bucket, prefix)}
		},
		syncDown: func(c *s3clients.Client, bucket, prefix, dir string) []string {
			return []string{"sync", c.Remote(bucket, prefix), dir + "/"}
		},
	},
	{
		name:   "rclone",
		client: s3clients.Rclone,
		put: func(c *s3clients.Client, local, bucket, key string) []string {
			return []string{"copyto", local, c.Remote(bucket, key)}
		},
		get: func(c *s3clients.Client, bucket, key, local string) []string {
			return []string{"copyto", c.Remote(bucket, key), local}
		},
		list: func(c *s3clients.Client, bucket, prefix string) []string {
			return []string{"lsl", c.Remote(bucket, prefix)}
		},
		stat: func(c *s3clients.Client, bucket, key string) []string {
			return []string{"lsjson", "--stat", c.Remote(bucket, key)}
		},
		ranged: func(t *testing.T, c *s3clients.Client, bucket, key, src, out string) ([]string, int64, int64) {
			return []string{"cat", "--offset", strconv.Itoa(rangeOff), "--count", strconv.Itoa(rangeLen), c.Remote(bucket, key)}, rangeOff, rangeLen
		},
		rangedToStdout: true,
		remove: func(c *s3clients.Client, bucket, key string) []string {
			return []string{"deletefile", c.Remote(bucket, key)}
		},
		syncUp: func(c *s3clients.Client, dir, bucket, prefix string) []string {
			return []string{"sync", "--transfers", "4", "--checkers", "4", dir, c.Remote(bucket, prefix)}
		},
		syncDown: func(c *s3clients.Client, bucket, prefix, dir string) []string {
			return []string{"copy", "--transfers", "4", "--checkers", "4", c.Remote(bucket, prefix), dir}
		},
	},
	{
		name:   "mc",
		client: s3clients.MC,
		put: func(c *s3clients.Client, local, bucket, key string) []string {
			return []string{"cp", "--quiet", local, c.Remote(bucket, key)}
		},
		get: func(c *s3clients.Client, bucket, key, local string) []string {
			return []string{"cp", "--quiet", c.Remote(bucket, key), local}
		},
		list: func(c *s3clients.Client, bucket, prefix string) []string {
			return []string{"ls", "--json", "--recursive", c.Remote(bucket, prefix)}
		},
		stat: func(c *s3clients.Client, bucket, key string) []string {
			return []string{"stat", "--json", c.Remote(bucket, key)}
		},
		// mc reads the end of an object (bytes=start-) for --tail.
		ranged: func(t *testing.T, c *s3clients.Client, bucket, key, src, out string) ([]string, int64, int64) {
			return []string{"cat", "--tail", strconv.Itoa(rangeLen), c.Remote(bucket, key)}, cliBigSize - rangeLen, rangeLen
		},
		rangedToStdout: true,
		remove: func(c *s3clients.Client, bucket, key string) []string {
			return []string{"rm", c.Remote(bucket, key)}
		},
		syncUp: func(c *s3clients.Client, dir, bucket, prefix string) []string {
			return []string{"mirror", "--quiet", dir, c.Remote(bucket, prefix)}
		},
		syncDown: func(c *s3clients.Client, bucket, prefix, dir string) []string {
			return []string{"mirror", "--quiet", c.Remote(bucket, prefix), dir}
		},
	},
}

// The aws CLI, s3cmd, rclone and mc against three nodes in front of a real
// MinIO: a file over each one's multipart threshold copied up and down
// (through different nodes), listed, stat'ed, read in part and deleted, and
// a folder of small files synced up and down, every byte compared.
func TestS3EndpointWithCLIClients(t *testing.T) {
	c := startS3Cluster(t, 3)
	src := t.TempDir()
	big := filepath.Join(src, "big.bin")
	bigSum := writeRandomFile(t, big, cliBigSize, 1)
	small := filepath.Join(src, "small")
	smallSums := writeSmallFiles(t, small, cliSmallFiles)
	for i, cl := range cliClients {
		t.Run(cl.name, func(t *testing.T) {
			start := time.Now()
			marks := logMarks(c)
			defer func() {
				if t.Failed() {
					t.Logf("failed requests and warnings on the nodes during %s:\n%s", cl.name, failedRequests(c, marks))
				}
				t.Logf("%s took %v", cl.name, time.Since(start).Round(10*time.Millisecond))
			}()
			// Each step is its own test, so that one failing still lets the
			// others run and show what works.
			t.Run("big file", func(t *testing.T) { cliBigFile(t, c, cl, i, big, bigSum) })
			t.Run("sync", func(t *testing.T) { cliSync(t, c, cl, i, small, smallSums) })
		})
	}
}

// cliEndpoint returns a client of node i%3 with the writer's key, or the
// reader's when write is false.
func cliEndpoint(t *testing.T, c *s3Cluster, cl cliClient, i int, write bool) *s3clients.Client {
	ep := s3clients.Endpoint{URL: c.s3[i%len(c.s3)], AccessKey: s3Reader, SecretKey: s3ReaderSecret}
	if write {
		ep.AccessKey, ep.SecretKey = s3Writer, s3WriterSecret
	}
	return cl.client(t, ep)
}

// runCLI runs a client with args, bounded by timeout, and returns its
// standard output; a failure stops t with the client's standard error.
func runCLI(t *testing.T, c *s3clients.Client, timeout time.Duration, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := c.Run(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func cliBigFile(t *testing.T, c *s3Cluster, cl cliClient, i int, big string, sum [32]byte) {
	ctx := context.Background()
	key := cl.name + "/big/a file+1.bin"
	up, reads, other := cliEndpoint(t, c, cl, i, true), cliEndpoint(t, c, cl, i+1, false), cliEndpoint(t, c, cl, i+2, false)

	runCLI(t, up, 2*time.Minute, cl.put(up, big, c.bucket, key)...)
	if got := minioSum(t, c, key); got != sum {
		t.Fatalf("in the bucket after %s uploaded it: SHA-256 %x, want %x", cl.name, got, sum)
	}

	out := runCLI(t, reads, 30*time.Second, cl.list(reads, c.bucket, cl.name+"/big/")...)
	if !bytes.Contains(out, []byte("a file+1.bin")) || !bytes.Contains(out, []byte(strconv.Itoa(cliBigSize))) {
		t.Errorf("%s's listing lacks the key or its size %d:\n%s", cl.name, cliBigSize, out)
	}
	out = runCLI(t, other, 30*time.Second, cl.stat(other, c.bucket, key)...)
	if !bytes.Contains(out, []byte(strconv.Itoa(cliBigSize))) {
		t.Errorf("%s's stat lacks the size %d:\n%s", cl.name, cliBigSize, out)
	}

	dst := t.TempDir()
	part := filepath.Join(dst, "part.bin")
	args, off, n := cl.ranged(t, other, c.bucket, key, big, part)
	if cl.rangedToStdout {
		runCLIToFile(t, other, 30*time.Second, part, args...)
	} else {
		runCLI(t, other, 30*time.Second, args...)
	}
	if got, want := fileSum(t, part), sectionSum(t, big, off, n); got != want {
		t.Errorf("ranged read of [%d, %d): SHA-256 %x, want %x (%d bytes read)", off, off+n, got, want, fileSize(part))
	}

	down := filepath.Join(dst, "down.bin")
	runCLI(t, reads, 2*time.Minute, cl.get(reads, c.bucket, key, down)...)
	if got := fileSum(t, down); got != sum {
		t.Errorf("downloaded through node %d: SHA-256 %x, want %x (%d bytes)", (i+1)%3, got, sum, fileSize(down))
	}

	runCLI(t, up, 30*time.Second, cl.remove(up, c.bucket, key)...)
	if _, err := c.srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)}); err == nil {
		t.Errorf("%s deleted %q, yet it is in the bucket", cl.name, key)
	}
}

func cliSync(t *testing.T, c *s3Cluster, cl cliClient, i int, dir string, sums map[string][32]byte) {
	prefix := cl.name + "/sync/"
	up, down := cliEndpoint(t, c, cl, i+1, true), cliEndpoint(t, c, cl, i+2, false)
	runCLI(t, up, 3*time.Minute, cl.syncUp(up, dir, c.bucket, prefix)...)
	if n := minioCount(t, c, prefix); n != len(sums) {
		t.Errorf("%d keys under %s in the bucket after the sync up, want %d", n, prefix, len(sums))
	}
	into := t.TempDir()
	runCLI(t, down, 3*time.Minute, cl.syncDown(down, c.bucket, prefix, into)...)
	got := treeSums(t, into)
	for rel, want := range sums {
		if g, ok := got[rel]; !ok {
			t.Errorf("synced down: %s is missing", rel)
		} else if g != want {
			t.Errorf("synced down: %s has SHA-256 %x, want %x", rel, g, want)
		}
	}
	for rel := range got {
		if _, ok := sums[rel]; !ok {
			t.Errorf("synced down: %s was not synced up", rel)
		}
	}
}

// runCLIToFile is runCLI with the standard output streamed into path.
func runCLIToFile(t *testing.T, c *s3clients.Client, timeout time.Duration, path string, args ...string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := c.Command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = f, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
}

// writeRandomFile writes size pseudo-random bytes from seed to path, a
// buffer at a time, and returns their SHA-256.
func writeRandomFile(t *testing.T, path string, size int64, seed byte) [32]byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.NewChaCha8([32]byte{seed}), size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// writeSmallFiles writes n small files of pseudo-random bytes, some empty,
// some with spaces and non-ASCII letters in their names, in ten folders
// under dir, and returns their SHA-256 by slash-separated path. The empty
// files matter: botocore sends them with "Expect: 100-continue" too, and
// misreads the next response on that connection if the server answered
// without "100 Continue".
func writeSmallFiles(t *testing.T, dir string, n int) map[string][32]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(2, 3))
	sums := make(map[string][32]byte, n)
	for i := range n {
		name := fmt.Sprintf("f%03d.bin", i)
		switch i % 100 {
		case 7:
			name = fmt.Sprintf("with space %03d.txt", i)
		case 8:
			name = fmt.Sprintf("ünï+%03d.txt", i)
		}
		rel := fmt.Sprintf("d%d/%s", i%10, name)
		size := rng.IntN(8 << 10)
		if i%250 == 0 {
			size = 0
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		path := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sums[rel] = sha256.Sum256(data)
	}
	return sums
}

// copyPrefix writes the first n bytes of src to dst, as a download cut
// short would have left it.
func copyPrefix(t *testing.T, src, dst string, n int64) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.CopyN(out, in, n); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// fileSum returns the SHA-256 of a file, read as a stream.
func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	return sectionSum(t, path, 0, -1)
}

// sectionSum returns the SHA-256 of n bytes of a file from off, or of all
// the rest when n < 0.
func sectionSum(t *testing.T, path string, off, n int64) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n >= 0 {
		r = io.LimitReader(f, n)
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// treeSums returns the SHA-256 of every file under dir by slash-separated
// path.
func treeSums(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	sums := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		sums[filepath.ToSlash(rel)] = fileSum(t, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// minioSum returns the SHA-256 of an object as MinIO holds it, read as a
// stream.
func minioSum(t *testing.T, c *s3Cluster, key string) [32]byte {
	t.Helper()
	out, err := c.srv.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("%q is not in the bucket: %v", key, err)
	}
	defer out.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, out.Body); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// minioCount returns how many keys MinIO holds under prefix.
func minioCount(t *testing.T, c *s3Cluster, prefix string) int {
	t.Helper()
	n := 0
	p := s3.NewListObjectsV2Paginator(c.srv.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(c.bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Contents)
	}
	return n
}

// logMarks returns the length of each node's log, so that failedRequests
// can show what was logged after.
func logMarks(c *s3Cluster) []int {
	marks := make([]int, len(c.nodes))
	for i, n := range c.nodes {
		marks[i] = len(n.Log())
	}
	return marks
}

var failedRequestLine = regexp.MustCompile(`msg=request component=s3api .*status=[45]\d\d|level=(WARN|ERROR)|msg="authentication failed"`)

// failedRequests returns the nodes' log lines, since marks, of S3 requests
// answered with an error, and their warnings and errors: the endpoint's
// side of a client's failure.
func failedRequests(c *s3Cluster, marks []int) string {
	const perNode = 40
	var b strings.Builder
	for i, n := range c.nodes {
		log := n.Log()
		if marks[i] <= len(log) {
			log = log[marks[i]:]
		}
		var lines []string
		for l := range strings.Lines(log) {
			if failedRequestLine.MatchString(l) {
				lines = append(lines, l)
			}
		}
		fmt.Fprintf(&b, "node %d (%s), %d lines", i, c.s3[i], len(lines))
		if len(lines) > perNode {
			fmt.Fprintf(&b, ", the last %d", perNode)
			lines = lines[len(lines)-perNode:]
		}
		b.WriteString(":\n")
		for _, l := range lines {
			b.WriteString("  " + l)
		}
	}
	return b.String()
}
