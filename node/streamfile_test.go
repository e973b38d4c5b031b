package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// fileRemote is a directory remote that also uploads from a file as it
// arrives, as s3remote.PutFile does: part by part, each once ready says
// its bytes are there, and the object stored only after the last. Once
// ready has granted the last byte, the store completes whatever happens to
// ctx, as an S3 Complete already sent would: so a PUT that fails must
// never let ready grant it.
type fileRemote struct {
	*storage.DirRemote
	uploads atomic.Int64
}

func (f *fileRemote) PutFile(ctx context.Context, key string, body io.ReaderAt, size int64, ready func(context.Context, int64) error,
	contentType string, meta map[string]string) (string, error) {
	f.uploads.Add(1)
	const part = 64 << 10
	for off := int64(0); off < size; off += part {
		if err := ready(ctx, min(off+part, size)); err != nil {
			return "", err
		}
	}
	if err := ready(ctx, size); err != nil {
		return "", err
	}
	return "", f.DirRemote.Put(context.Background(), key, io.NewSectionReader(body, 0, size), size, meta)
}

// failingBody gives all of data, then fails instead of ending: a body
// whose check at its end (a digest, a signature) fails.
type failingBody struct {
	r   io.Reader
	err error
}

func (b *failingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, b.err
	}
	return n, err
}

// A level-1 PUT of known length uploads from the local copy; a body that
// fails, is short or is long, even once every byte has arrived, leaves
// nothing in the remote and nothing committed.
func TestPutUploadsFromTheLocalCopy(t *testing.T) {
	dir := t.TempDir()
	dr, err := storage.NewDirRemote(filepath.Join(dir, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	fr := &fileRemote{DirRemote: dr}
	n, err := Open(context.Background(), Config{StateDir: filepath.Join(dir, "state"), FilesDir: filepath.Join(dir, "files"),
		Remote: fr, ScrubInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	body := bytes.Repeat([]byte("uploaded from the file "), 20000) // 460 KB: several parts

	id := ulid.Make()
	if _, err := n.Put(ctx, PutRequest{ID: id, Level: journal.LevelRemote, Body: bytes.NewReader(body), Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	if fr.uploads.Load() != 1 {
		t.Fatalf("%d uploads from the file, want 1", fr.uploads.Load())
	}
	rc, _, err := dr.Get(ctx, id.String(), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("the remote holds %d bytes that differ from the %d put", len(got), len(body))
	}

	bad := errors.New("bad digest at the end")
	for _, c := range []struct {
		name string
		body io.Reader
		size int64
	}{
		{"fails at its end", &failingBody{r: bytes.NewReader(body), err: bad}, int64(len(body))},
		{"empty, fails at its end", &failingBody{r: strings.NewReader(""), err: bad}, 0},
		{"short", bytes.NewReader(body[:1000]), int64(len(body))},
		{"long", bytes.NewReader(body), int64(len(body)) - 1},
	} {
		id := ulid.Make()
		if _, err := n.Put(ctx, PutRequest{ID: id, Level: journal.LevelRemote, Body: c.body, Size: c.size}); err == nil {
			t.Errorf("%s: the PUT succeeded", c.name)
		}
		if _, err := dr.Stat(ctx, id.String()); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: the remote holds the object (%v)", c.name, err)
		}
		if _, err := n.Meta(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: the object is known: %v", c.name, err)
		}
	}
}
