package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/storage"
)

// A node's state written by an earlier release (testdata/release-journal2:
// journal schema 2, bodies stored raw, made by the release before
// checksummed bodies and key-addressed objects) opens with nothing lost:
// every object reads back whole, the deleted one stays deleted, and the
// scrub rewrites the raw bodies checksummed.
//
// The state was made by the program in testdata/release-journal2/README.
func TestUpgradeFromEarlierRelease(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/release-journal2")); err != nil {
		t.Fatal(err)
	}
	lines, err := os.ReadFile(filepath.Join(dir, "objects.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dr, err := storage.NewDirRemote(filepath.Join(dir, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	open := func() *Node {
		n, err := Open(context.Background(), Config{
			StateDir: filepath.Join(dir, "state"), FilesDir: filepath.Join(dir, "files"),
			Remote: storage.WithPrefix(dr, "objects/"), ScrubInterval: -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := open()
	check := func() {
		t.Helper()
		var objects int
		for _, line := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
			fields := strings.SplitN(line, " ", 3)
			id := ulid.MustParseStrict(fields[0])
			obj, err := n.Get(context.Background(), id, GetOptions{})
			if fields[1] == "deleted" {
				if !errors.Is(err, ErrDeleted) {
					t.Errorf("%s: %v, want ErrDeleted", id, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			got, err := io.ReadAll(obj.Content)
			obj.Close()
			if err != nil || string(got) != fields[2] || obj.Source != SourceLocal || fmt.Sprint(int(obj.Consistency)) != fields[1] {
				t.Errorf("%s: %d bytes from %s at level %d, %v", id, len(got), obj.Source, obj.Consistency, err)
			}
			objects++
		}
		if objects != 4 {
			t.Fatalf("%d objects read", objects)
		}
	}
	check()
	// The start-up scrub runs too; either rewrites each raw body.
	rep, err := n.Scrub(context.Background())
	if err != nil || rep.Checked != 4 || rep.Damaged != 0 {
		t.Fatalf("scrub after the upgrade: %+v, %v", rep, err)
	}
	refs, err := n.journal.Blobs(ulid.ULID{}, 100)
	if err != nil || len(refs) != 4 {
		t.Fatalf("%d blob records, %v", len(refs), err)
	}
	for _, ref := range refs {
		if path, err := n.disk.File(ref.ID, ref.Sum); err != nil || !strings.HasSuffix(path, ".c") {
			t.Errorf("%s after the scrub: %s, %v; want a checksummed body", ref.ID, path, err)
		}
	}
	n.Close()
	n = open()
	defer n.Close()
	check()
}
