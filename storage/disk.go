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
// Bodies are written in package seal's segmented format, bound to the
// object's ID, so that every read checks the bytes it returns: with a
// keyring they are encrypted at rest (AES-256-GCM in authenticated 64 KiB
// segments) and their names end in ".s"; without one they are kept in the
// clear with a CRC-32C per segment (seal.Unencrypted) and their names end
// in ".c":
//
//	<dir>/<shard>/<ID>.<sum prefix>.s    sealed
//	<dir>/<shard>/<ID>.<sum prefix>.c    checksummed, in the clear
//	<dir>/<shard>/<ID>.<sum prefix>      raw bytes (written by older releases)
//
// so the name says how to read a file, whatever the configuration: a node
// that turns encryption on or off still reads the bodies it wrote before
// until the scrub rewrites them (Reseal), except that one without a key
// refuses to serve sealed bodies rather than serve ciphertext. Raw bodies
// are read as they are, unchecked, until the scrub rewrites them.
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

// form is how a body file is stored, which its name's suffix tells.
type form int

const (
	formRaw    form = iota // the bytes as they are, no suffix
	formSummed             // checksummed in the clear, ".c"
	formSealed             // encrypted, ".s"
)

// Suffixes of the body names by form.
const (
	sealedSuffix = ".s"
	summedSuffix = ".c"
)

func (f form) suffix() string {
	switch f {
	case formSealed:
		return sealedSuffix
	case formSummed:
		return summedSuffix
	}
	return ""
}

// forms lists every form, for removing a body under any name.
var forms = [...]form{formSummed, formSealed, formRaw}

// ErrFormat is matched by the error of opening a body stored in a format
// this build cannot read: one written by a newer release, or whose
// version byte rotted (the two cannot be told apart). It does not match
// ErrNotFound or ErrCorrupt, so that a caller can fetch another copy
// without discarding one a newer release could still read.
var ErrFormat = errors.New("storage: body in a format this build cannot read")

// ErrCorrupt is matched by the errors of reading a body whose bytes do
// not match the checksums stored with them: bit rot, a torn write, a
// file that is not the object's. No damaged byte is returned; the bytes
// before the damaged segment are.
var ErrCorrupt = errors.New("storage: body damaged on disk")

// ErrNoKey is returned, wrapped, when a sealed body is opened by a Disk
// without the key it was sealed with.
var ErrNoKey = errors.New("storage: body is encrypted with a key this node does not have")

// Body is a stored body opened for reading: its plaintext, from any
// offset. The caller closes it. Reads of a sealed or checksummed body
// check each segment they touch and fail with an error matching
// ErrCorrupt rather than return damaged bytes; a raw body (written by an
// older release) is an *os.File, read unchecked.
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

// Path returns where a raw body of id with checksum sum lives; a sealed or
// checksummed one has its suffix added (".s", ".c").
func (d *Disk) Path(id ulid.ULID, sum Sum) string {
	s := id.String()
	return filepath.Join(d.dir, s[24:], s+"."+hex.EncodeToString(sum[:8]))
}

// SetKeyring replaces the keyring (nil: write bodies in the clear from now
// on), as when the key file is reloaded. Bodies being written keep the
// key they started with.
func (d *Disk) SetKeyring(kr *seal.Keyring) { d.kr.Store(kr) }

// writeForm returns the form this Disk writes new bodies in, and the
// keyring that writes it.
func (d *Disk) writeForm() (form, *seal.Keyring) {
	if kr := d.kr.Load(); kr != nil {
		return formSealed, kr
	}
	return formSummed, seal.Unencrypted
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
	fm, err := d.find(id, sum, func(name string) (err error) {
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
	if fm == formRaw {
		return f, st.Size(), nil
	}
	b, err := d.openSegmented(f, fm, st.Size(), id, id[:])
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return b, b.Size(), nil
}

// find calls try with the body's names, the one this Disk writes first,
// until one exists, and reports that one's form. A body under no name is
// ErrNotFound.
func (d *Disk) find(id ulid.ULID, sum Sum, try func(name string) error) (form, error) {
	first, _ := d.writeForm()
	other := formSealed + formSummed - first
	// The names are tried twice: a body moving from one name to another
	// (Reseal, or a commit in another form) is renamed into place before
	// its old name is removed, so a look between the two would miss it.
	order := [...]form{first, other, formRaw, first, other}
	base := d.Path(id, sum)
	for _, fm := range order {
		if err := try(base + fm.suffix()); !errors.Is(err, fs.ErrNotExist) {
			return fm, err
		}
	}
	return 0, fmt.Errorf("storage: body %s: %w", id, ErrNotFound)
}

// segBody is the plaintext of a sealed or checksummed body, whose reads
// check every segment; Close closes its file.
type segBody struct {
	*seal.Reader
	f  *os.File
	id ulid.ULID
}

func (b *segBody) Close() error {
	b.Reader.Close() // returns its buffers to the pool
	return b.f.Close()
}

func (b *segBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	return n, b.damaged(err)
}

func (b *segBody) ReadAt(p []byte, off int64) (int, error) {
	n, err := b.Reader.ReadAt(p, off)
	return n, b.damaged(err)
}

// damaged marks a failed segment check as ErrCorrupt.
func (b *segBody) damaged(err error) error {
	if err != nil && errors.Is(err, seal.ErrCorrupt) {
		return fmt.Errorf("storage: body %s: %w: %w", b.id, ErrCorrupt, err)
	}
	return err
}

// openSegmented opens the sealed or checksummed body in f, bound to
// binding (the object's ID for a whole body; see partBinding for a part).
func (d *Disk) openSegmented(f *os.File, fm form, size int64, id ulid.ULID, binding []byte) (*segBody, error) {
	kr := seal.Unencrypted
	if fm == formSealed {
		if kr = d.kr.Load(); kr == nil {
			return nil, fmt.Errorf("storage: body %s: %w (no --encryption-key-file)", id, ErrNoKey)
		}
	}
	r, err := seal.Open(f, size, kr, binding)
	switch {
	case errors.Is(err, seal.ErrUnknownKey):
		return nil, fmt.Errorf("storage: body %s: %w: %w", id, ErrNoKey, err)
	case errors.Is(err, seal.ErrCorrupt):
		return nil, fmt.Errorf("storage: body %s: %w: %w: %w", id, ErrNotFound, ErrCorrupt, err)
	case errors.Is(err, seal.ErrUnsupportedVersion):
		return nil, fmt.Errorf("storage: body %s: %w: %w", id, ErrFormat, err)
	case err != nil:
		return nil, fmt.Errorf("storage: body %s: %w", id, err)
	}
	return &segBody{Reader: r, f: f, id: id}, nil
}

// File returns the path of the file holding the body of id with checksum
// sum, whatever its form, or an error matching ErrNotFound. It is for
// tools that inspect bodies on disk; reads go through Open.
func (d *Disk) File(id ulid.ULID, sum Sum) (string, error) {
	var path string
	_, err := d.find(id, sum, func(name string) error {
		_, err := os.Stat(name)
		if err == nil {
			path = name
		}
		return err
	})
	return path, err
}

// Stat returns the size of the body of id with checksum sum from its
// file's length alone, without reading it; a missing file yields an error
// matching ErrNotFound.
func (d *Disk) Stat(id ulid.ULID, sum Sum) (int64, error) {
	var st os.FileInfo
	fm, err := d.find(id, sum, func(name string) (err error) {
		st, err = os.Stat(name)
		return err
	})
	if err != nil {
		return 0, err
	}
	if fm == formRaw {
		return st.Size(), nil
	}
	size, err := seal.PlainSize(st.Size(), seal.DefaultSegmentSize)
	if err != nil {
		return 0, fmt.Errorf("storage: body %s: %w: %w", id, ErrNotFound, err)
	}
	return size, nil
}

// Remove deletes the body of id with checksum sum, under any name.
// Removing a missing body is not an error.
func (d *Disk) Remove(id ulid.ULID, sum Sum) error {
	for _, fm := range forms {
		if err := os.Remove(d.Path(id, sum) + fm.suffix()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("storage: remove %s: %w", id, err)
		}
	}
	return nil
}

// Create starts a new body of object id, of size bytes (-1 when unknown).
// Bytes written to the returned Writer go to a temporary file (sealed
// with a keyring, checksummed without) and are hashed as they stream;
// Commit makes the body durable under its final path and Abort discards
// it. WriteAt and Follow need the size.
func (d *Disk) Create(id ulid.ULID, size int64) (*Writer, error) {
	return d.create(id, id[:], size)
}

// create starts a body sealed to binding; see Create.
func (d *Disk) create(id ulid.ULID, binding []byte, size int64) (*Writer, error) {
	f, err := os.CreateTemp(filepath.Join(d.dir, tmpDir), "body-*")
	if err != nil {
		return nil, fmt.Errorf("storage: create body: %w", noSpace(err))
	}
	w := &Writer{d: d, f: f, h: sha256.New(), id: id, binding: binding, size: size, part: -1}
	w.form, w.kr = d.writeForm()
	if size >= 0 {
		w.sw, err = seal.NewWriterSize(f, w.kr, binding, size)
	} else {
		w.sw, err = seal.NewWriter(f, w.kr, binding)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("storage: create body: %w", noSpace(err))
	}
	return w, nil
}

// SegmentSize is the unit bodies are written and checked in: parts of a
// body written with WriteAt must start at multiples of it.
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
		if !shard.IsDir() || shard.Name() == tmpDir || shard.Name() == partsDir {
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
	for _, fm := range forms {
		if s := fm.suffix(); s != "" && strings.HasSuffix(name, s) {
			name = strings.TrimSuffix(name, s)
			break
		}
	}
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
	d  *Disk
	f  *os.File
	h  hash.Hash
	n  int64 // bytes hashed
	id ulid.ULID
	// binding is what the body is sealed to: the ID for a whole body,
	// the ID and the part's index for a part of a sparse copy.
	binding []byte
	part    int           // the part's index for a part (CreatePart), or -1
	size    int64         // declared size, or -1
	form    form          // formSealed or formSummed
	kr      *seal.Keyring // the keyring it is written with (seal.Unencrypted in the clear)
	sw      *seal.Writer
	// readable counts the bytes of a body written in order that a
	// follower can read back: those of its whole segments.
	readable atomic.Int64
	synced   bool // Sync succeeded: the file is sealed, durable and closed
	done     bool
}

// Write appends p to the body. A full disk yields an error matching
// ErrNoSpace.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.d.faultPoint("write"); err != nil {
		return 0, fmt.Errorf("storage: write body: %w", noSpace(err))
	}
	n, err := w.sw.Write(p)
	w.readable.Store(w.sw.Sealed())
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
	n, err := w.sw.WriteAt(p, off)
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
	r, err := seal.OpenPartial(f, w.kr, w.binding, w.size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("storage: follow body: %w", err)
	}
	return &segBody{Reader: r, f: f, id: w.id}, nil
}

// Sync seals the body's last segment and makes the temporary file durable,
// the part of Commit that takes the longest, so that a caller can do it
// without holding up others; Commit then only names the body. After an
// error the body is discarded, and Commit fails.
func (w *Writer) Sync() error {
	if w.done || w.synced {
		return errors.New("storage: body already synced, committed or aborted")
	}
	err := w.sw.Close() // seals the last segment
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
		w.done = true
		os.Remove(w.f.Name())
		return fmt.Errorf("storage: sync body %s: %w", w.id, noSpace(err))
	}
	w.synced = true
	return nil
}

// Commit makes the body durable as the body of id: the file is fsynced
// (unless Sync did it), renamed to its final path, and the folder holding
// it is fsynced. It returns the body's size and checksum. After an fsync
// error the body is discarded and the error returned: data whose sync
// failed is never taken as safe.
func (w *Writer) Commit(id ulid.ULID) (int64, Sum, error) {
	if w.done {
		return 0, Sum{}, errors.New("storage: body already committed or aborted")
	}
	sum := w.Sum()
	if err := w.commitAt(w.d.Path(id, sum), w.d.dir); err != nil {
		return 0, Sum{}, err
	}
	return w.n, sum, nil
}

// commitAt makes the body durable under base plus its form's suffix,
// creating base's folder (an entry of parent) if needed, and removes the
// same body under its other forms' names.
func (w *Writer) commitAt(base, parent string) error {
	if w.done {
		return errors.New("storage: body already committed or aborted")
	}
	if !w.synced {
		if err := w.Sync(); err != nil {
			return err
		}
	}
	w.done = true
	id := w.id
	final := base + w.form.suffix()
	if err := w.d.ensureFolder(filepath.Dir(final), parent); err != nil {
		os.Remove(w.f.Name())
		return err
	}
	// The same bytes may already be in place (the body PUT again): then
	// the file must survive a failure below, since a record points at it.
	_, statErr := os.Stat(final)
	existed := statErr == nil
	if err := os.Rename(w.f.Name(), final); err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("storage: rename body %s: %w", id, err)
	}
	if err := w.d.faultPoint("after-rename"); err != nil {
		if !existed {
			os.Remove(final)
		}
		return fmt.Errorf("storage: sync folder of %s: %w", id, noSpace(err))
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		if !existed {
			os.Remove(final)
		}
		return fmt.Errorf("storage: sync folder of %s: %w", id, noSpace(err))
	}
	// The same body under another name (another form) is now stale.
	removed := false
	for _, fm := range forms {
		if fm != w.form && os.Remove(base+fm.suffix()) == nil {
			removed = true
		}
	}
	if removed {
		syncDir(filepath.Dir(final))
	}
	return nil
}

// Abort discards the body. It is safe to call after Commit, when it does
// nothing, so callers can defer it.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	if !w.synced {
		w.sw.Abort()
		w.f.Close()
	}
	os.Remove(w.f.Name())
}

// Current reports whether an opened body is stored as this Disk would
// write it now: sealed under the primary key with a keyring, checksummed
// in the clear without one. A body that is not is what Reseal rewrites.
func (d *Disk) Current(b Body) bool {
	sb, ok := b.(*segBody)
	if !ok {
		return false // raw
	}
	kr := d.kr.Load()
	if kr == nil {
		return !sb.Encrypted()
	}
	return sb.Encrypted() && sb.KeyID() == kr.Primary()
}

// Reseal rewrites the body of id with checksum sum in the form this Disk
// writes now when it is in another (raw, checksummed, or sealed with
// another key), so a node that turns encryption on, or rolls in a new
// key, ends with every body under its primary key, and bodies written
// raw by an older release become checked. It reports whether it rewrote
// the body. The rewrite is atomic (a temporary file, fsync, rename);
// readers holding the old file keep reading it. A sealed body is left as
// it is by a Disk without a keyring, which cannot read it.
func (d *Disk) Reseal(id ulid.ULID, sum Sum) (bool, error) {
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

// ensureFolder creates folder, an entry of parent, and makes that entry
// durable, so a body renamed into it survives a crash.
func (d *Disk) ensureFolder(folder, parent string) error {
	if _, err := os.Stat(folder); err == nil {
		return nil
	}
	if err := os.Mkdir(folder, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("storage: create %s: %w", folder, noSpace(err))
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("storage: sync %s: %w", parent, noSpace(err))
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
