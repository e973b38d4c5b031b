package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/storage/seal"
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
// With a keyring, bodies are encrypted at rest (package seal: AES-256-GCM
// in authenticated 64 KiB segments, bound to the object's ID) and their
// names end in ".s":
//
//	<dir>/<shard>/<ID>.<sum prefix>.s
//
// so the name says how to read a file, whatever the configuration: a
// node that turns encryption on still reads its plain bodies until the
// scrub reseals them (Reseal), and one that turns it off refuses to serve
// sealed bodies rather than serve ciphertext.
//
// A Disk is safe for concurrent use.
type Disk struct {
	dir   string
	kr    atomic.Pointer[seal.Keyring] // nil: bodies are written in the clear
	fault func(step string) error      // see SetFaultHook; nil in production
}

// SetFaultHook is the seam for fault tests under the disk: hook is called
// at each step of writing and reading bodies, and an error it returns is
// taken for the operation's own. Steps: "write" (each write of a body's
// bytes), "before-sync", "sync" (the body's fsync; an error is a failed
// fsync), "after-sync", "after-rename", "open" (opening a body to read).
// Crash tests stop the process at a step instead. Set it before the Disk
// is used.
func (d *Disk) SetFaultHook(hook func(step string) error) { d.fault = hook }

func (d *Disk) faultPoint(step string) error {
	if d.fault != nil {
		return d.fault(step)
	}
	return nil
}

// sealedSuffix marks the name of a sealed body.
const sealedSuffix = ".s"

// ErrNoKey is returned, wrapped, when a sealed body is opened by a Disk
// without the key it was sealed with.
var ErrNoKey = errors.New("storage: body is encrypted with a key this node does not have")

// Body is a stored body opened for reading: its plaintext, from any
// offset. The caller closes it. A plain body is an *os.File, so it can be
// served with sendfile.
type Body interface {
	io.ReadSeeker
	io.ReaderAt
	io.Closer
}

// OpenDisk opens the files directory dir, creating it if needed, and removes
// the temporary files a crash may have left behind. With a keyring, new
// bodies are sealed with its primary key, and sealed bodies are read with
// any of its keys; nil writes bodies in the clear.
func OpenDisk(dir string, kr *seal.Keyring) (*Disk, error) {
	d := &Disk{dir: filepath.Clean(dir)}
	d.kr.Store(kr)
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

// Path returns where a plain body of id with checksum sum lives; a sealed
// one has sealedSuffix added.
func (d *Disk) Path(id ulid.ULID, sum Sum) string {
	s := id.String()
	return filepath.Join(d.dir, s[24:], s+"."+hex.EncodeToString(sum[:8]))
}

// SetKeyring replaces the keyring (nil: write bodies in the clear from now
// on), as when the key file is reloaded. Bodies being written keep the
// key they started with.
func (d *Disk) SetKeyring(kr *seal.Keyring) { d.kr.Store(kr) }

// names returns the two names a body may have, the one this Disk writes
// first.
func (d *Disk) names(id ulid.ULID, sum Sum) (first, second string, firstSealed bool) {
	plain := d.Path(id, sum)
	if d.kr.Load() != nil {
		return plain + sealedSuffix, plain, true
	}
	return plain, plain + sealedSuffix, false
}

// Open opens the body of id with checksum sum for reading and returns it
// with its size. A missing file yields an error matching ErrNotFound; a
// sealed body that does not authenticate (damaged, truncated, or another
// object's) an error matching ErrNotFound too, since it holds no body;
// one sealed with a key this Disk lacks, ErrNoKey.
func (d *Disk) Open(id ulid.ULID, sum Sum) (Body, int64, error) {
	if err := d.faultPoint("open"); err != nil {
		return nil, 0, fmt.Errorf("storage: open body %s: %w", id, err)
	}
	var f *os.File
	sealed, err := d.find(id, sum, func(name string) (err error) {
		f, err = os.Open(name)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !sealed {
		return f, st.Size(), nil
	}
	b, err := d.openSealed(f, st.Size(), id)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return b, b.Size(), nil
}

// find calls try with the body's names, the one this Disk writes first,
// until one exists, and reports whether that one is sealed. A body under
// neither name is ErrNotFound.
func (d *Disk) find(id ulid.ULID, sum Sum, try func(name string) error) (sealed bool, err error) {
	first, second, firstSealed := d.names(id, sum)
	err, sealed = try(first), firstSealed
	if errors.Is(err, fs.ErrNotExist) {
		err, sealed = try(second), !firstSealed
	}
	if errors.Is(err, fs.ErrNotExist) {
		// A body moving from one name to the other (Reseal, or a commit
		// under the other name) is renamed into place before its old
		// name is removed: a look between the two would miss it.
		err, sealed = try(first), firstSealed
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("storage: body %s: %w", id, ErrNotFound)
	}
	return sealed, err
}

// sealedBody is a sealed body's plaintext; Close closes its file.
type sealedBody struct {
	*seal.Reader
	f *os.File
}

func (b *sealedBody) Close() error {
	b.Reader.Close() // returns its buffers to the pool
	return b.f.Close()
}

// KeyID returns the key a sealed body was sealed with.
func (b *sealedBody) KeyID() uint32 { return b.Reader.KeyID() }

func (d *Disk) openSealed(f *os.File, size int64, id ulid.ULID) (*sealedBody, error) {
	kr := d.kr.Load()
	if kr == nil {
		return nil, fmt.Errorf("storage: body %s: %w (no --encryption-key-file)", id, ErrNoKey)
	}
	r, err := seal.Open(f, size, kr, id[:])
	switch {
	case errors.Is(err, seal.ErrUnknownKey):
		return nil, fmt.Errorf("storage: body %s: %w: %w", id, ErrNoKey, err)
	case errors.Is(err, seal.ErrCorrupt):
		return nil, fmt.Errorf("storage: body %s: %w: %w", id, ErrNotFound, err)
	case err != nil:
		return nil, fmt.Errorf("storage: body %s: %w", id, err)
	}
	return &sealedBody{Reader: r, f: f}, nil
}

// Stat returns the size of the body of id with checksum sum from its
// file's length alone, without reading it; a missing file yields an error
// matching ErrNotFound.
func (d *Disk) Stat(id ulid.ULID, sum Sum) (int64, error) {
	var st os.FileInfo
	sealed, err := d.find(id, sum, func(name string) (err error) {
		st, err = os.Stat(name)
		return err
	})
	if err != nil {
		return 0, err
	}
	if !sealed {
		return st.Size(), nil
	}
	size, err := seal.PlainSize(st.Size(), seal.DefaultSegmentSize)
	if err != nil {
		return 0, fmt.Errorf("storage: body %s: %w: %w", id, ErrNotFound, err)
	}
	return size, nil
}

// Remove deletes the body of id with checksum sum, under either name.
// Removing a missing body is not an error.
func (d *Disk) Remove(id ulid.ULID, sum Sum) error {
	for _, name := range []string{d.Path(id, sum), d.Path(id, sum) + sealedSuffix} {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("storage: remove %s: %w", id, err)
		}
	}
	return nil
}

// Create starts a new body of object id, of size bytes (-1 when unknown).
// Bytes written to the returned Writer go to a temporary file (sealed,
// with a keyring) and are hashed as they stream; Commit makes the body
// durable under its final path and Abort discards it. WriteAt and Follow
// need the size.
func (d *Disk) Create(id ulid.ULID, size int64) (*Writer, error) {
	f, err := os.CreateTemp(filepath.Join(d.dir, tmpDir), "body-*")
	if err != nil {
		return nil, fmt.Errorf("storage: create body: %w", noSpace(err))
	}
	w := &Writer{d: d, f: f, h: sha256.New(), id: id, size: size, kr: d.kr.Load()}
	if w.kr != nil {
		if size >= 0 {
			w.sw, err = seal.NewWriterSize(f, w.kr, id[:], size)
		} else {
			w.sw, err = seal.NewWriter(f, w.kr, id[:])
		}
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, fmt.Errorf("storage: create body: %w", noSpace(err))
		}
	}
	return w, nil
}

// SegmentSize is the unit sealed bodies are written in: parts of a body
// written with WriteAt must start at multiples of it.
const SegmentSize = seal.DefaultSegmentSize

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
	name = strings.TrimSuffix(name, sealedSuffix)
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
// except that WriteAt may be called for distinct parts at once, and
// Readable and Follow from other goroutines.
type Writer struct {
	d    *Disk
	f    *os.File
	h    hash.Hash
	n    int64 // bytes hashed
	id   ulid.ULID
	size int64         // declared size, or -1
	kr   *seal.Keyring // the keyring it is sealed with, nil in the clear
	sw   *seal.Writer  // nil: the body is written in the clear
	// readable counts the bytes of a body written in order that a
	// follower can read back (all of them in the clear; whole segments
	// when sealed).
	readable atomic.Int64
	done     bool
}

// Write appends p to the body. A full disk yields an error matching
// ErrNoSpace.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.d.faultPoint("write"); err != nil {
		return 0, fmt.Errorf("storage: write body: %w", noSpace(err))
	}
	var n int
	var err error
	if w.sw != nil {
		n, err = w.sw.Write(p)
		w.readable.Store(w.sw.Sealed())
	} else {
		n, err = w.f.Write(p)
		w.readable.Add(int64(n))
	}
	w.h.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("storage: write body: %w", noSpace(err))
	}
	return n, nil
}

// WriteAt writes p at offset off without hashing it, for a body of
// declared size that arrives in parts out of order. Each part must start
// at a multiple of SegmentSize and arrive in order; distinct parts may be
// written at once. A caller using it must then pass every byte of the
// body, in order, to Hash, so that Size and Sum describe it.
func (w *Writer) WriteAt(p []byte, off int64) (int, error) {
	if err := w.d.faultPoint("write"); err != nil {
		return 0, fmt.Errorf("storage: write body: %w", noSpace(err))
	}
	var n int
	var err error
	if w.sw != nil {
		n, err = w.sw.WriteAt(p, off)
	} else {
		n, err = w.f.WriteAt(p, off)
	}
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

// Readable returns how many bytes of a body written in order (Write) a
// follower can read back now.
func (w *Writer) Readable() int64 { return w.readable.Load() }

// Follow opens the body being written for reading, so that readers can
// follow it as it streams in: bytes below Readable, and parts whose
// WriteAt calls have returned, read back as written. The body needs a
// declared size. The handle stays valid after Commit or Abort; the caller
// closes it.
func (w *Writer) Follow() (Body, error) {
	f, err := os.Open(w.f.Name())
	if err != nil {
		return nil, fmt.Errorf("storage: follow body: %w", err)
	}
	if w.sw == nil {
		return f, nil
	}
	r, err := seal.OpenPartial(f, w.kr, w.id[:], w.size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("storage: follow body: %w", err)
	}
	return &sealedBody{Reader: r, f: f}, nil
}

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
	var err error
	if w.sw != nil {
		err = w.sw.Close() // seals the last segment
	}
	if err == nil {
		err = w.d.faultPoint("before-sync")
	}
	if err == nil {
		if err = w.d.faultPoint("sync"); err == nil {
			err = w.f.Sync()
		}
	}
	if err == nil {
		err = w.d.faultPoint("after-sync")
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(w.f.Name())
		return 0, Sum{}, fmt.Errorf("storage: sync body %s: %w", id, noSpace(err))
	}
	final := w.d.Path(id, sum)
	if w.sw != nil {
		final += sealedSuffix
	}
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
	if err := w.d.faultPoint("after-rename"); err != nil {
		if !existed {
			os.Remove(final)
		}
		return 0, Sum{}, fmt.Errorf("storage: sync folder of %s: %w", id, noSpace(err))
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		if !existed {
			os.Remove(final)
		}
		return 0, Sum{}, fmt.Errorf("storage: sync folder of %s: %w", id, noSpace(err))
	}
	// The same body under its other name (sealed, or not) is now stale.
	other := w.d.Path(id, sum)
	if w.sw == nil {
		other += sealedSuffix
	}
	if err := os.Remove(other); err == nil {
		syncDir(filepath.Dir(final))
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
	if w.sw != nil {
		w.sw.Abort()
	}
	w.f.Close()
	os.Remove(w.f.Name())
}

// Current reports whether an opened body is stored as this Disk would
// write it now: sealed under the primary key, or in the clear without a
// keyring. A body that is not is what Reseal rewrites.
func (d *Disk) Current(b Body) bool {
	kr := d.kr.Load()
	if kr == nil {
		return true
	}
	sb, ok := b.(*sealedBody)
	return ok && sb.KeyID() == kr.Primary()
}

// Reseal rewrites the body of id with checksum sum sealed with the
// primary key when it is in the clear or sealed with another key, so a
// node that turns encryption on, or rolls in a new key, ends with every
// body under its primary key. It reports whether it rewrote the body. The
// rewrite is atomic (a temporary file, fsync, rename); readers holding the
// old file keep reading it. Without a keyring it does nothing.
func (d *Disk) Reseal(id ulid.ULID, sum Sum) (bool, error) {
	kr := d.kr.Load()
	if kr == nil {
		return false, nil
	}
	b, size, err := d.Open(id, sum)
	if err != nil {
		return false, err
	}
	defer b.Close()
	if d.Current(b) {
		return false, nil
	}
	w, err := d.Create(id, size)
	if err != nil {
		return false, err
	}
	defer w.Abort()
	if _, err := b.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	if _, err := io.Copy(w, b); err != nil {
		return false, fmt.Errorf("storage: reseal %s: %w", id, err)
	}
	if w.Sum() != sum {
		return false, fmt.Errorf("storage: reseal %s: %w: the body does not match its checksum", id, ErrNotFound)
	}
	if _, _, err := w.Commit(id); err != nil {
		return false, err
	}
	return true, nil
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
