package s3remote_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/objstore/objstore/internal/testminio"
	"github.com/objstore/objstore/storage"
	"github.com/objstore/objstore/storage/remotetest"
	"github.com/objstore/objstore/storage/s3remote"
)

// growingFile is a file written by one goroutine while PutFile reads it:
// ready waits for the bytes, or for the writer's failure.
type growingFile struct {
	f    *os.File
	mu   sync.Mutex
	cond *sync.Cond
	n    int64
	err  error
}

func newGrowingFile(t *testing.T) *growingFile {
	f, err := os.Create(filepath.Join(t.TempDir(), "body"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	g := &growingFile{f: f}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// fill writes src in 1 MiB writes, then ends with err (nil: success).
func (g *growingFile) fill(src io.Reader, err error) {
	buf := make([]byte, 1<<20)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			g.f.Write(buf[:n])
			g.mu.Lock()
			g.n += int64(n)
			g.cond.Broadcast()
			g.mu.Unlock()
		}
		if rerr != nil {
			break
		}
	}
	g.mu.Lock()
	g.err = err
	if g.err == nil {
		g.err = io.EOF // the end: no more bytes come
	}
	g.cond.Broadcast()
	g.mu.Unlock()
}

func (g *growingFile) ready(ctx context.Context, n int64) error {
	stop := context.AfterFunc(ctx, func() { g.mu.Lock(); g.cond.Broadcast(); g.mu.Unlock() })
	defer stop()
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.n < n {
		if g.err != nil && g.err != io.EOF {
			return g.err
		}
		if g.err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		g.cond.Wait()
	}
	return nil
}

// PutFile uploads a body as it is written, in parts when it is large,
// with its content type and metadata; a body whose writer fails leaves no
// object and no upload behind.
func TestPutFile(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	r, _ := newRemote(t, s3remote.Config{Bucket: bucket, PartSize: s3remote.MinPartSize, Concurrency: 2})
	ctx := t.Context()
	for _, size := range []int64{0, 1 << 10, 2*s3remote.MinPartSize + 3<<20} {
		g := newGrowingFile(t)
		go g.fill(remotetest.Data(7, size), nil)
		key := "file-" + strings.Repeat("x", int(size%7))
		etag, err := r.PutFile(ctx, key, g.f, size, g.ready, "text/plain", map[string]string{"k": "v"})
		if err != nil {
			t.Fatalf("PutFile of %d bytes: %v", size, err)
		}
		info, err := r.Stat(ctx, key)
		if err != nil || info.Size != size || info.ETag != etag || info.ContentType != "text/plain" || info.Meta["k"] != "v" {
			t.Fatalf("PutFile of %d bytes: stat %+v, %v; etag %q", size, info, err, etag)
		}
		rc, _, err := r.Get(ctx, key, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		want, _ := io.ReadAll(remotetest.Data(7, size))
		if !bytes.Equal(got, want) {
			t.Fatalf("PutFile of %d bytes: read back %d bytes that differ", size, len(got))
		}
	}

	boom := errors.New("the client went away")
	for _, size := range []int64{1 << 10, 3 * s3remote.MinPartSize} {
		g := newGrowingFile(t)
		go g.fill(io.LimitReader(remotetest.Data(8, size), size*2/3), boom)
		_, err := r.PutFile(ctx, "failed", g.f, size, g.ready, "", nil)
		if !errors.Is(err, boom) {
			t.Fatalf("PutFile of %d bytes whose writer failed: %v, want its error", size, err)
		}
		if _, err := r.Stat(ctx, "failed"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("after a failed PutFile of %d bytes: stat %v, want ErrNotFound", size, err)
		}
		noUploads(t, srv, bucket)
	}
}

// failingAt is a body whose reads fail.
type failingAt struct{ err error }

func (f failingAt) ReadAt([]byte, int64) (int, error) { return 0, f.err }

// When a part fails while PutFile waits for the body's next bytes, the
// part's error is the one reported, not the cancellation it causes.
func TestPutFileReportsThePartsError(t *testing.T) {
	srv := testminio.Start(t)
	bucket := srv.NewBucket(t)
	r, _ := newRemote(t, s3remote.Config{Bucket: bucket, PartSize: s3remote.MinPartSize, Concurrency: 2})
	injected := errors.New("the disk failed under the upload")
	// The first part is ready at once; the rest never arrive.
	ready := func(ctx context.Context, n int64) error {
		if n <= s3remote.MinPartSize {
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	}
	_, err := r.PutFile(t.Context(), "part-fails", failingAt{injected}, 3*s3remote.MinPartSize, ready, "", nil)
	if !errors.Is(err, injected) {
		t.Fatalf("PutFile = %v, want the part's error", err)
	}
	noUploads(t, srv, bucket)
}
