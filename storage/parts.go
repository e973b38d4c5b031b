package storage

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/oklog/ulid/v2"
)

// A sparse copy holds some parts of an object's body, each kept as a body
// of its own, so that a ranged read of a cold object stores what it
// fetched and nothing else:
//
//	<dir>/.parts/<ID>.<tag>/<index>.c    a part, checksummed in the clear
//	<dir>/.parts/<ID>.<tag>/<index>.s    a part, sealed
//
// tag names the version of the object the parts belong to (the caller's
// choice: 16 hex digits), so the parts of two versions never meet in one
// folder. Each part is written to a temporary file, fsynced and renamed
// into place whole, and is sealed to the object's ID and its index (and
// with a salt of its own, so rewriting a part never reuses a nonce): a
// file in a part's place is that part, whole, or the read fails. Which
// parts a copy holds is the caller's record; a file nobody recorded (a
// crash between the rename and the record) is never read and is removed
// by RemovePartsExcept.
const partsDir = ".parts"

// validTag reports whether tag can name a sparse copy's folder.
func validTag(tag string) bool {
	if len(tag) != 16 {
		return false
	}
	_, err := hex.DecodeString(tag)
	return err == nil
}

// partBinding is what part k of object id is sealed to.
func partBinding(id ulid.ULID, k int) []byte {
	b := make([]byte, 0, len(id)+5+4)
	b = append(b, id[:]...)
	b = append(b, "part:"...)
	return binary.BigEndian.AppendUint32(b, uint32(k))
}

// partsFolder returns the folder of the sparse copy of id tagged tag.
func (d *Disk) partsFolder(id ulid.ULID, tag string) string {
	return filepath.Join(d.dir, partsDir, id.String()+"."+tag)
}

// CreatePart starts part k, of size bytes, of a sparse copy of id. The
// Writer is Create's, and the part is committed with CommitPart.
func (d *Disk) CreatePart(id ulid.ULID, k int, size int64) (*Writer, error) {
	if k < 0 || size < 0 {
		return nil, fmt.Errorf("storage: part %d of %d bytes", k, size)
	}
	w, err := d.create(id, partBinding(id, k), size)
	if err != nil {
		return nil, err
	}
	w.part = k
	return w, nil
}

// CommitPart makes a part started by CreatePart durable as part of the
// sparse copy of its object tagged tag: fsynced, renamed into place (over
// any earlier file of the part) and its folder fsynced. It returns the
// part's size and SHA-256.
func (w *Writer) CommitPart(tag string) (int64, Sum, error) {
	if w.part < 0 {
		return 0, Sum{}, errors.New("storage: CommitPart of a body not made by CreatePart")
	}
	if !validTag(tag) {
		w.Abort()
		return 0, Sum{}, fmt.Errorf("storage: invalid sparse copy tag %q", tag)
	}
	root := filepath.Join(w.d.dir, partsDir)
	if err := w.d.ensureFolder(root, w.d.dir); err != nil {
		w.Abort()
		return 0, Sum{}, err
	}
	folder := w.d.partsFolder(w.id, tag)
	if err := w.commitAt(filepath.Join(folder, strconv.Itoa(w.part)), root); err != nil {
		return 0, Sum{}, err
	}
	return w.n, w.Sum(), nil
}

// OpenPart opens part k of the sparse copy of id tagged tag and returns it
// with its size. Errors are Open's: a missing or damaged part matches
// ErrNotFound.
func (d *Disk) OpenPart(id ulid.ULID, tag string, k int) (Body, int64, error) {
	if !validTag(tag) {
		return nil, 0, fmt.Errorf("storage: part %d of %s: invalid tag %q: %w", k, id, tag, ErrNotFound)
	}
	if err := d.faultPoint("open"); err != nil {
		return nil, 0, fmt.Errorf("storage: open part %d of %s: %w", k, id, err)
	}
	base := filepath.Join(d.partsFolder(id, tag), strconv.Itoa(k))
	first, _ := d.writeForm()
	for _, fm := range [...]form{first, formSealed + formSummed - first} {
		f, err := os.Open(base + fm.suffix())
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("storage: open part %d of %s: %w", k, id, err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("storage: open part %d of %s: %w", k, id, err)
		}
		b, err := d.openSegmented(f, fm, st.Size(), id, partBinding(id, k))
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		return b, b.Size(), nil
	}
	return nil, 0, fmt.Errorf("storage: part %d of %s: %w", k, id, ErrNotFound)
}

// RemovePart deletes part k of the sparse copy of id tagged tag; a missing
// part is not an error.
func (d *Disk) RemovePart(id ulid.ULID, tag string, k int) error {
	if !validTag(tag) {
		return nil
	}
	base := filepath.Join(d.partsFolder(id, tag), strconv.Itoa(k))
	for _, fm := range [...]form{formSummed, formSealed} {
		if err := os.Remove(base + fm.suffix()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("storage: remove part %d of %s: %w", k, id, err)
		}
	}
	return nil
}

// RemoveParts deletes the sparse copy of id tagged tag, every part of it.
func (d *Disk) RemoveParts(id ulid.ULID, tag string) error {
	if !validTag(tag) {
		return nil
	}
	if err := os.RemoveAll(d.partsFolder(id, tag)); err != nil {
		return fmt.Errorf("storage: remove sparse copy of %s: %w", id, err)
	}
	return nil
}

// RemovePartsExcept removes, from the sparse copies on disk, every file
// keep does not claim: keep is asked of each copy's ID and tag, and
// returns the parts to keep, or nil to remove the whole copy. Files that
// are not parts are left, and counted in foreign. It returns the number
// of parts removed.
func (d *Disk) RemovePartsExcept(ctx context.Context, keep func(id ulid.ULID, tag string) map[int]bool) (removed, foreign int, err error) {
	root := filepath.Join(d.dir, partsDir)
	copies, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("storage: walk sparse copies: %w", err)
	}
	for _, c := range copies {
		if err := ctx.Err(); err != nil {
			return removed, foreign, err
		}
		idPart, tag, _ := strings.Cut(c.Name(), ".")
		id, perr := ulid.ParseStrict(idPart)
		if !c.IsDir() || perr != nil || id.String() != idPart || !validTag(tag) {
			foreign++
			continue
		}
		kept := keep(id, tag)
		folder := filepath.Join(root, c.Name())
		files, err := os.ReadDir(folder)
		if err != nil {
			return removed, foreign, fmt.Errorf("storage: walk sparse copy: %w", err)
		}
		for _, f := range files {
			name := strings.TrimSuffix(strings.TrimSuffix(f.Name(), summedSuffix), sealedSuffix)
			k, err := strconv.Atoi(name)
			if err != nil || k < 0 || strconv.Itoa(k) != name || name == f.Name() {
				foreign++
				continue
			}
			if kept[k] {
				continue
			}
			if err := os.Remove(filepath.Join(folder, f.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, foreign, fmt.Errorf("storage: remove leftover part: %w", err)
			}
			removed++
		}
		if len(kept) == 0 {
			os.Remove(folder) // only if empty: foreign files stay
		}
	}
	return removed, foreign, nil
}
