package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/oklog/ulid/v2"
)

// ErrNoSpace is returned, wrapped with the cause, when the local disk is
// full.
var ErrNoSpace = errors.New("storage: no space left on device")

// Sum is the SHA-256 of a body.
type Sum = [32]byte

// tmpDir is where bodies are written before they are whole; it sits inside
// the files directory so that the final rename never crosses a filesystem.
const tmpDir = ".tmp"

// Disk keeps bodies as files under one directory. A body's path is derived
// from its validated ULID and the first bytes of its checksum only, never
// from a client's string:
//
//	<dir>/<last two characters of the ID>/<ID>.<first 8 bytes of SHA-256 in hex>
//
// The last characters of a ULID are random, so the 1024 shard folders fill
// evenly. Putting the checksum in the name lets a new body of an ID be
// written beside the old one and switched to by a journal commit, so a
// crash never leaves a record pointing at the wrong bytes.
//
// A Disk is safe for concurrent use.
type Disk struct {
	dir string
}

// OpenDisk opens the files directory dir, creating it if needed, and removes
// the temporary files a crash may have left behind.
func OpenDisk(dir string) (*Disk, error) {
	d := &Disk{dir: filepath.Clean(dir)}
	if err := os.MkdirAll(filepath.Join(d.dir, tmpDir), 0o750); err != nil {
		return nil, fmt.Errorf("storage: open disk: %w", err)
	}
	if err := os.RemoveAll(filepath.Join(d.dir, tmpDir)); err != nil {
		return nil, fmt.Errorf("storage: clear temporary files: %w", err)
	}
	if err := os.Mkdir(filepath.Join(d.dir, tmpDir), 0o750); err != nil {
		return nil, fmt.Errorf("storage: open disk: %w", err)
	}
	return d, nil
}

// Dir returns the files directory.
func (d *Disk) Dir() string { return d.dir }

// Path returns where the body of id with checksum sum lives.
func (d *Disk) Path(id ulid.ULID, sum Sum) string {
	s := id.String()
	return filepath.Join(d.dir, s[24:], s+"."+hex.EncodeToString(sum[:8]))
}

// Open opens the body of id with checksum sum for reading. A missing file
// yields an error matching ErrNotFound. The caller closes the file.
func (d *Disk) Open(id ulid.ULID, sum Sum) (*os.File, error) {
	f, err := os.Open(d.Path(id, sum))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("storage: body %s: %w", id, ErrNotFound)
	}
	return f, err
}

// Remove deletes the body of id with checksum sum. Removing a missing body
// is not an error.
func (d *Disk) Remove(id ulid.ULID, sum Sum) error {
	err := os.Remove(d.Path(id, sum))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: remove %s: %w", id, err)
	}
	return nil
}

// Create starts a new body. Bytes written to the returned Writer go to a
// temporary file and are hashed as they stream; Commit makes the body
// durable under its final path and Abort discards it.
func (d *Disk) Create() (*Writer, error) {
	f, err := os.CreateTemp(filepath.Join(d.dir, tmpDir), "body-*")
	if err != nil {
		return nil, fmt.Errorf("storage: create body: %w", noSpace(err))
	}
	return &Writer{d: d, f: f, h: sha256.New()}, nil
}

// Walk calls fn for every body file under the files directory, with the ID
// and checksum prefix parsed from its name, until fn returns an error. Files
// whose names objstore would not have made are passed with ok false, so the
// caller can tell leftovers from foreign files.
func (d *Disk) Walk(ctx context.Context, fn func(path string, id ulid.ULID, sumPrefix string, ok bool) error) error {
	shards, err := os.ReadDir(d.dir)
	if err != nil {
		return fmt.Errorf("storage: walk: %w", err)
	}
	for _, shard := range shards {
		if !shard.IsDir() || shard.Name() == tmpDir {
			continue
		}
		files, err := os.ReadDir(filepath.Join(d.dir, shard.Name()))
		if err != nil {
			return fmt.Errorf("storage: walk: %w", err)
		}
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return err
			}
			path := filepath.Join(d.dir, shard.Name(), f.Name())
			id, prefix, ok := parseBodyName(shard.Name(), f.Name())
			if err := fn(path, id, prefix, ok && f.Type().IsRegular()); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseBodyName(shard, name string) (ulid.ULID, string, bool) {
	idPart, prefix, found := strings.Cut(name, ".")
	if !found || len(prefix) != 16 {
		return ulid.ULID{}, "", false
	}
	if _, err := hex.DecodeString(prefix); err != nil {
		return ulid.ULID{}, "", false
	}
	id, err := ulid.ParseStrict(idPart)
	if err != nil || id.String() != idPart || idPart[24:] != shard {
		return ulid.ULID{}, "", false
	}
	return id, prefix, true
}

// SumPrefix returns the part of sum that appears in a body's file name.
func SumPrefix(sum Sum) string { return hex.EncodeToString(sum[:8]) }

// Usage describes the filesystem holding the files directory.
type Usage struct {
	Total uint64 `json:"total"`
	Free  uint64 `json:"free"`
	Used  uint64 `json:"used"`
}

// Usage reports the size and free space of the files directory's
// filesystem. Free counts the blocks available to an unprivileged user.
func (d *Disk) Usage() (Usage, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		return Usage{}, fmt.Errorf("storage: statfs %s: %w", d.dir, err)
	}
	bs := uint64(st.Bsize)
	u := Usage{Total: st.Blocks * bs, Free: st.Bavail * bs}
	u.Used = (st.Blocks - st.Bfree) * bs
	return u, nil
}

// Writer streams one new body to disk. It is not safe for concurrent use,
// except that Written and TempPath may be called from other goroutines
// through the caller's own synchronization.
type Writer struct {
	d    *Disk
	f    *os.File
	h    hash.Hash
	n    int64
	done bool
}

// Write appends p to the body. A full disk yields an error matching
// ErrNoSpace.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("storage: write body: %w", noSpace(err))
	}
	return n, nil
}

// WriteAt writes p at offset off without hashing it, for a body that
// arrives in parts out of order. A caller using it must then pass every
// byte of the body, in order, to Hash, so that Size and Sum describe it.
func (w *Writer) WriteAt(p []byte, off int64) (int, error) {
	n, err := w.f.WriteAt(p, off)
	if err != nil {
		return n, fmt.Errorf("storage: write body: %w", noSpace(err))
	}
	return n, nil
}

// Hash accounts p, the next bytes of a body written with WriteAt, in the
// body's size and checksum.
func (w *Writer) Hash(p []byte) {
	w.h.Write(p)
	w.n += int64(len(p))
}

// Size returns the number of bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Sum returns the SHA-256 of the bytes written so far.
func (w *Writer) Sum() Sum {
	var s Sum
	w.h.Sum(s[:0])
	return s
}

// TempPath returns the temporary file the body is being written to, so that
// readers can follow a body while it streams in. The file disappears when
// the Writer commits or aborts; readers that opened it keep their handle.
func (w *Writer) TempPath() string { return w.f.Name() }

// Commit makes the body durable as the body of id: the file is fsynced,
// renamed to its final path, and the folder holding it is fsynced. It
// returns the body's size and checksum. After an fsync error the body is
// discarded and the error returned: data whose sync failed is never taken
// as safe.
func (w *Writer) Commit(id ulid.ULID) (int64, Sum, error) {
	if w.done {
		return 0, Sum{}, errors.New("storage: body already committed or aborted")
	}
	w.done = true
	sum := w.Sum()
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(w.f.Name())
		return 0, Sum{}, fmt.Errorf("storage: sync body %s: %w", id, noSpace(err))
	}
	final := w.d.Path(id, sum)
	if err := w.d.ensureShard(filepath.Dir(final)); err != nil {
		os.Remove(w.f.Name())
		return 0, Sum{}, err
	}
	// The same bytes may already be in place (the body PUT again): then
	// the file must survive a failure below, since a record points at it.
	_, statErr := os.Stat(final)
	existed := statErr == nil
	if err := os.Rename(w.f.Name(), final); err != nil {
		os.Remove(w.f.Name())
		return 0, Sum{}, fmt.Errorf("storage: rename body %s: %w", id, err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		if !existed {
			os.Remove(final)
		}
		return 0, Sum{}, fmt.Errorf("storage: sync folder of %s: %w", id, noSpace(err))
	}
	return w.n, sum, nil
}

// Abort discards the body. It is safe to call after Commit, when it does
// nothing, so callers can defer it.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.f.Name())
}

// ensureShard creates a shard folder and makes its entry in the files
// directory durable, so a body renamed into it survives a crash.
func (d *Disk) ensureShard(shard string) error {
	if _, err := os.Stat(shard); err == nil {
		return nil
	}
	if err := os.Mkdir(shard, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("storage: create %s: %w", shard, noSpace(err))
	}
	if err := syncDir(d.dir); err != nil {
		return fmt.Errorf("storage: sync %s: %w", d.dir, noSpace(err))
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// noSpace marks a full-disk error so callers can match ErrNoSpace.
func noSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}
