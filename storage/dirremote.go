package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// MaxRemoteKeyLen is the longest key, in bytes, a Remote accepts; it is S3's
// limit, applied to every backend so that they accept the same keys.
const MaxRemoteKeyLen = 1024

// CheckRemoteKey reports whether key can name an object in a Remote. It
// returns nil, or an error matching ErrInvalidKey when key is empty, longer
// than MaxRemoteKeyLen, not UTF-8, absolute, contains a backslash or a NUL
// byte, or has an empty, "." or ".." slash-separated element. Every Remote
// applies it so that all backends accept exactly the same keys.
func CheckRemoteKey(key string) error {
	if err := CheckOriginKey(key); err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("%w %q: absolute", ErrInvalidKey, key)
	case strings.ContainsRune(key, '\\'):
		return fmt.Errorf("%w %q: contains a backslash", ErrInvalidKey, key)
	case strings.Contains(key, "//") || strings.HasSuffix(key, "/"):
		return fmt.Errorf("%w %q: empty path element", ErrInvalidKey, key)
	}
	return nil
}

// CheckOriginKey reports whether key can name an object of an origin
// bucket: a key S3 accepts (non-empty UTF-8 of at most MaxRemoteKeyLen
// bytes) with neither a NUL byte nor a "." or ".." slash-separated element,
// which paths would resolve away. It returns nil, or an error matching
// ErrInvalidKey. Unlike CheckRemoteKey it allows leading slashes, empty
// elements and backslashes, which buckets written by other programs hold.
func CheckOriginKey(key string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why)
	}
	switch {
	case key == "":
		return bad("empty")
	case len(key) > MaxRemoteKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxRemoteKeyLen))
	case !utf8.ValidString(key):
		return bad("not UTF-8")
	case strings.ContainsRune(key, 0):
		return bad("contains a NUL")
	}
	for elem := range strings.SplitSeq(key, "/") {
		if elem == "." || elem == ".." {
			return bad("dot path element")
		}
	}
	return nil
}

// CheckListOptions reports whether opts can select a listing: its Prefix,
// Delimiter and After must be UTF-8 without a NUL byte, as every key is. It
// returns nil, or an error matching ErrInvalidKey.
func CheckListOptions(opts ListOptions) error {
	for _, f := range []struct{ name, v string }{{"prefix", opts.Prefix}, {"delimiter", opts.Delimiter}, {"after", opts.After}} {
		if !utf8.ValidString(f.v) || strings.ContainsRune(f.v, 0) {
			return fmt.Errorf("%w: list %s %q is not UTF-8 without NUL", ErrInvalidKey, f.name, f.v)
		}
	}
	return nil
}

// MaxContentTypeLen is the longest media type, in bytes, PutTyped stores.
const MaxContentTypeLen = 1024

// CheckContentType reports whether contentType can be stored by
// Origin.PutTyped and read back unchanged: empty, or at most
// MaxContentTypeLen bytes of printable ASCII (space included) neither
// beginning nor ending with a space, which an HTTP header carries as it is.
// It returns nil, or an error matching ErrInvalidMeta.
func CheckContentType(contentType string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: content type %q: %s", ErrInvalidMeta, contentType, why)
	}
	switch {
	case contentType == "":
		return nil
	case len(contentType) > MaxContentTypeLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxContentTypeLen))
	case contentType[0] == ' ' || contentType[len(contentType)-1] == ' ':
		return bad("leading or trailing space")
	}
	for i := 0; i < len(contentType); i++ {
		if c := contentType[i]; c < 0x20 || c > 0x7e {
			return bad("not printable ASCII")
		}
	}
	return nil
}

// CheckRemoteMeta reports whether meta can be stored by a Remote. It returns
// nil, or an error matching ErrInvalidMeta when a key is not made of
// lower-case ASCII letters, digits and hyphens, or a value is not valid UTF-8
// (values must round-trip exactly, and invalid UTF-8 cannot). A nil map is
// valid.
func CheckRemoteMeta(meta map[string]string) error {
	for k, v := range meta {
		if !remoteMetaKeyOK(k) {
			return fmt.Errorf("%w: %q", ErrInvalidMeta, k)
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("%w: value of %q is not UTF-8", ErrInvalidMeta, k)
		}
	}
	return nil
}

// remoteMetaKeyOK implements ^[a-z0-9-]+$ without a regexp.
func remoteMetaKeyOK(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// The on-disk object format: drMagic, one version byte, a big-endian uint32
// length, that many bytes of JSON (drHeader), then the data. One file per
// object makes a replace a single atomic rename.
const (
	drMagic        = "OSDR"
	drVersion      = 1
	drFixedLen     = len(drMagic) + 1 + 4
	drMaxHeaderLen = 1 << 20 // guards against allocating for a corrupt length
	drTmpName      = ".tmp"
	// drStaleTmp is how old a temp file must be before NewDirRemote removes
	// it; younger ones may belong to a Put still running in another process
	// sharing the directory.
	drStaleTmp = 24 * time.Hour
)

// errDRCorrupt is wrapped by the errors for object files that cannot be
// decoded.
var errDRCorrupt = errors.New("corrupt object file")

// drHeader is the JSON part of an object file's header. Files written
// before ContentType existed lack it, and read as having none.
type drHeader struct {
	Meta        map[string]string `json:"meta"`
	ContentType string            `json:"content_type,omitempty"`
}

// DirRemote is a Remote and an Origin kept in a local directory, for running
// objstore without an S3 bucket. Each object is one file at dir/key holding
// a small header (the metadata and media type) followed by the data; Put
// writes a temp file under
// dir/.tmp and renames it into place, so readers see the old object or the
// new one, never a mix. Keys are checked with CheckRemoteKey; in addition the
// first element ".tmp" is reserved. Because keys are paths, a key cannot name
// an object when it is also a "directory" of other keys ("a" next to "a/b"):
// such a Put fails with ErrInvalidKey. Directories left empty by Remove are
// kept. Several processes may share one directory. DirRemote is safe for
// concurrent use.
//
// As an Origin, DirRemote still takes only the keys CheckRemoteKey accepts
// (they are paths), so it refuses with ErrInvalidKey some keys that S3
// buckets hold. An object's ETag is derived from its file: see
// DirRemote.Stat. A listing reads the directory tree under the listed
// prefix on every call: see DirRemote.List.
type DirRemote struct {
	dir string // absolute
	tmp string
}

var (
	_ Remote = (*DirRemote)(nil)
	_ Origin = (*DirRemote)(nil)
)

// NewDirRemote returns a DirRemote storing objects under dir, creating dir
// (and its .tmp subfolder) if needed. It removes temp files older than a day
// that crashed Puts left behind.
func NewDirRemote(dir string) (*DirRemote, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("dir remote %s: %w", dir, err)
	}
	d := &DirRemote{dir: abs, tmp: filepath.Join(abs, drTmpName)}
	if err := os.MkdirAll(d.tmp, 0o755); err != nil {
		return nil, fmt.Errorf("dir remote %s: %w", abs, err)
	}
	if err := d.sweepTmp(time.Now().Add(-drStaleTmp)); err != nil {
		return nil, fmt.Errorf("dir remote %s: %w", abs, err)
	}
	return d, nil
}

// sweepTmp removes temp files last modified before cutoff.
func (d *DirRemote) sweepTmp(cutoff time.Time) error {
	entries, err := os.ReadDir(d.tmp)
	if err != nil {
		return err
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile by its Put
		}
		if fi.ModTime().Before(cutoff) {
			if err := os.Remove(filepath.Join(d.tmp, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// String returns "dir:" followed by the directory's absolute path.
func (d *DirRemote) String() string { return "dir:" + d.dir }

// path checks key and returns its file's path.
func (d *DirRemote) path(key string) (string, error) {
	if err := CheckRemoteKey(key); err != nil {
		return "", err
	}
	if drReserved(key) {
		return "", fmt.Errorf("%w %q: %s is reserved", ErrInvalidKey, key, drTmpName)
	}
	return filepath.Join(d.dir, filepath.FromSlash(key)), nil
}

// drReserved reports whether key is in the reserved .tmp folder.
func drReserved(key string) bool {
	return key == drTmpName || strings.HasPrefix(key, drTmpName+"/")
}

// Put stores r's bytes under key as described by Putter. When size >= 0 and
// r yields a different number of bytes, Put fails (a short reader yields an
// error matching io.ErrUnexpectedEOF). An error from r or ctx is wrapped so
// errors.Is finds it. On error the previous object, if any, is left as it
// was, with one exception: if syncing the parent directory fails after the
// rename, the new, complete object may be visible. Put is PutTyped with no
// media type.
func (d *DirRemote) Put(ctx context.Context, key string, r io.Reader, size int64, meta map[string]string) error {
	_, err := d.PutTyped(ctx, key, r, size, "", meta)
	return err
}

// PutTyped is Put that also stores contentType in the object file's header,
// as described by Origin; Get and Stat return it. A contentType that
// CheckContentType refuses fails with ErrInvalidMeta and stores nothing.
func (d *DirRemote) PutTyped(ctx context.Context, key string, r io.Reader, size int64, contentType string, meta map[string]string) (string, error) {
	p, err := d.path(key)
	if err != nil {
		return "", err
	}
	if err := CheckRemoteMeta(meta); err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}
	if err := CheckContentType(contentType); err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}
	hdr, err := drEncodeHeader(drHeader{Meta: meta, ContentType: contentType})
	if err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}

	f, err := os.CreateTemp(d.tmp, "put-*")
	if err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}
	tmpName := f.Name()
	renamed := false
	defer func() {
		if f != nil {
			_ = f.Close() // the write error, if any, is the one reported
		}
		if !renamed {
			_ = os.Remove(tmpName)
		}
	}()

	if _, err := f.Write(hdr); err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}
	src := io.Reader(drCtxReader{ctx: ctx, r: r})
	if size >= 0 {
		// One byte past size is enough to detect a reader longer than
		// promised.
		src = io.LimitReader(src, size+1)
	}
	n, err := io.CopyBuffer(f, src, make([]byte, 256<<10))
	if err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}
	if size >= 0 && n < size {
		return "", fmt.Errorf("dir put %s: got %d bytes, want %d: %w", key, n, size, io.ErrUnexpectedEOF)
	}
	if size >= 0 && n > size {
		return "", fmt.Errorf("dir put %s: reader is longer than the declared %d bytes", key, size)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}

	// The renamed file keeps its inode and time: its ETag is known now.
	fi, err := os.Stat(tmpName)
	if err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}
	parent := filepath.Dir(p)
	if err := d.mkdirAll(parent); err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, drPathErr(err))
	}
	// Last chance to honor a cancel: after the rename the object is stored.
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, err)
	}
	if err := os.Rename(tmpName, p); err != nil {
		return "", fmt.Errorf("dir put %s: %w", key, drPathErr(err))
	}
	renamed = true
	if err := syncDir(parent); err != nil {
		return "", fmt.Errorf("dir put %s: sync parent: %w", key, err)
	}
	return drETag(fi), nil
}

// drPathErr marks errors that mean the key's path collides with another
// key's (a file where a directory is needed or the reverse) or is too long for
// the file system as ErrInvalidKey: this backend cannot name such an object.
func drPathErr(err error) error {
	for _, e := range []error{syscall.ENOTDIR, syscall.EISDIR, syscall.EEXIST, syscall.ENOTEMPTY, syscall.ENAMETOOLONG} {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
	}
	return err
}

// mkdirAll creates dir and its missing parents below d.dir, syncing each new
// directory's parent so that the directories survive a crash along with the
// object renamed into them.
func (d *DirRemote) mkdirAll(dir string) error {
	var missing []string
	for p := dir; p != d.dir; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR}
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, p)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		// EEXIST: a concurrent Put made it; a file there fails the rename.
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := syncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}

// drEncodeHeader returns the header of an object file holding h.
func drEncodeHeader(h drHeader) ([]byte, error) {
	js, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if len(js) > drMaxHeaderLen {
		return nil, fmt.Errorf("%w: metadata longer than %d bytes", ErrInvalidMeta, drMaxHeaderLen)
	}
	b := make([]byte, drFixedLen, drFixedLen+len(js))
	copy(b, drMagic)
	b[len(drMagic)] = drVersion
	binary.BigEndian.PutUint32(b[len(drMagic)+1:], uint32(len(js)))
	return append(b, js...), nil
}

// open opens key's file and decodes its header. It returns the open file, the
// object's description and the data's offset in the file. A missing object
// (or a path that is a directory of other keys) yields ErrNotFound.
func (d *DirRemote) open(op, key string) (*os.File, ObjectInfo, int64, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, ObjectInfo{}, 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, ObjectInfo{}, 0, fmt.Errorf("dir %s %s: %w: %w", op, key, ErrNotFound, err)
		}
		return nil, ObjectInfo{}, 0, fmt.Errorf("dir %s %s: %w", op, key, err)
	}
	info, dataOff, err := drReadHeader(f, key)
	if err != nil {
		_ = f.Close() // read-only: nothing to lose
		return nil, ObjectInfo{}, 0, fmt.Errorf("dir %s %s: %w", op, key, err)
	}
	return f, info, dataOff, nil
}

// drReadHeader decodes the header of the object file f.
func drReadHeader(f *os.File, key string) (ObjectInfo, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return ObjectInfo{}, 0, err
	}
	if fi.IsDir() {
		return ObjectInfo{}, 0, fmt.Errorf("%w: %s is a directory of other keys", ErrNotFound, f.Name())
	}
	var fixed [drFixedLen]byte
	if _, err := f.ReadAt(fixed[:], 0); err != nil {
		return ObjectInfo{}, 0, fmt.Errorf("%w: %s: header: %w", errDRCorrupt, f.Name(), err)
	}
	if string(fixed[:len(drMagic)]) != drMagic {
		return ObjectInfo{}, 0, fmt.Errorf("%w: %s: bad magic", errDRCorrupt, f.Name())
	}
	if v := fixed[len(drMagic)]; v != drVersion {
		return ObjectInfo{}, 0, fmt.Errorf("%w: %s: unknown format version %d", errDRCorrupt, f.Name(), v)
	}
	n := int64(binary.BigEndian.Uint32(fixed[len(drMagic)+1:]))
	dataOff := int64(drFixedLen) + n
	if n > drMaxHeaderLen || dataOff > fi.Size() {
		return ObjectInfo{}, 0, fmt.Errorf("%w: %s: bad header length %d", errDRCorrupt, f.Name(), n)
	}
	js := make([]byte, n)
	if _, err := f.ReadAt(js, int64(drFixedLen)); err != nil {
		return ObjectInfo{}, 0, fmt.Errorf("%w: %s: header: %w", errDRCorrupt, f.Name(), err)
	}
	var h drHeader
	if err := json.Unmarshal(js, &h); err != nil {
		return ObjectInfo{}, 0, fmt.Errorf("%w: %s: header: %w", errDRCorrupt, f.Name(), err)
	}
	if h.Meta == nil {
		h.Meta = map[string]string{}
	}
	return ObjectInfo{
		Key:         key,
		Size:        fi.Size() - dataOff,
		ModTime:     fi.ModTime(),
		Meta:        h.Meta,
		ETag:        drETag(fi),
		ContentType: h.ContentType,
	}, dataOff, nil
}

// drETag derives an object's ETag from its file's size, modification time
// and, where the file system reports one, inode number: `"` + those in hex,
// joined by "-", + `"`. Put renames a new file into place, so a replaced
// object has another inode (and, but within the clock's resolution, another
// time) and another ETag, even when the replacement has the same size.
// Copying or restoring the directory changes the ETags.
func drETag(fi fs.FileInfo) string {
	tag := strconv.FormatInt(fi.Size(), 16) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 16)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		tag += "-" + strconv.FormatUint(uint64(st.Ino), 16)
	}
	return `"` + tag + `"`
}

// Get returns a reader over length bytes of key's data from offset, as
// described by Getter. A negative offset is an error. The reader also
// implements io.Seeker and io.ReaderAt over the selected range, and fails
// once ctx is done. The returned ObjectInfo's Meta is never nil.
func (d *DirRemote) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, ObjectInfo, error) {
	if offset < 0 {
		return nil, ObjectInfo{}, fmt.Errorf("dir get %s: negative offset %d", key, offset)
	}
	if err := ctx.Err(); err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("dir get %s: %w", key, err)
	}
	f, info, dataOff, err := d.open("get", key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	start := min(offset, info.Size)
	n := info.Size - start
	if length >= 0 && length < n {
		n = length
	}
	return &drReader{SectionReader: io.NewSectionReader(f, dataOff+start, n), ctx: ctx, f: f}, info, nil
}

// Stat describes key's object from its header alone. The returned Meta is
// never nil. The ETag is derived from the object file (see drETag): it is
// the same for as long as the file is not replaced, and different after a
// Put of the key.
func (d *DirRemote) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, fmt.Errorf("dir stat %s: %w", key, err)
	}
	f, info, _, err := d.open("stat", key)
	if err != nil {
		return ObjectInfo{}, err
	}
	_ = f.Close() // read-only: nothing to lose
	return info, nil
}

// Revalidate asks whether key's object still has the ETag etag, as
// described by Origin: it describes the object as Stat does and returns an
// error matching ErrNotModified when the ETags are equal, the description
// when they differ, and an error matching ErrNotFound when the object is
// gone.
func (d *DirRemote) Revalidate(ctx context.Context, key, etag string) (ObjectInfo, error) {
	info, err := d.Stat(ctx, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if info.ETag == etag {
		return ObjectInfo{}, fmt.Errorf("dir revalidate %s: %w", key, ErrNotModified)
	}
	return info, nil
}

// List returns one page of the listing opts selects, as described by
// Origin. The objects carry Key, Size, ModTime and ETag (no Meta and no
// ContentType, as S3's listing). An opts field that CheckListOptions refuses
// fails with ErrInvalidKey; a page size (Max) of 0, negative or above
// MaxListPage means MaxListPage. An entry (a key, or the common prefix it is
// rolled up into) is listed when it sorts after opts.After, so a common
// prefix given as After skips every key under it.
//
// The keys are the paths of the object files under the directory, in byte
// order of the key strings. A listing has no index to read: every call
// reads the whole directory tree under the folder that the prefix's last
// "/" names (all of it for a prefix without a "/"), and then reads the
// header of each object it returns, so listing a large tree page by page is
// slow. Files whose paths are not valid keys, symbolic links (to files or
// folders) and the .tmp folder are not listed; a file that cannot be
// decoded fails the listing, as it fails Stat. The listing is not a
// snapshot: objects stored or removed meanwhile may or may not show.
func (d *DirRemote) List(ctx context.Context, opts ListOptions) (ListPage, error) {
	if err := CheckListOptions(opts); err != nil {
		return ListPage{}, err
	}
	if err := ctx.Err(); err != nil {
		return ListPage{}, fmt.Errorf("dir list %s: %w", opts.Prefix, err)
	}
	keys, err := d.listKeys(ctx, opts.Prefix, opts.After)
	if err != nil {
		return ListPage{}, fmt.Errorf("dir list %s: %w", opts.Prefix, err)
	}
	slices.Sort(keys)
	limit := MaxListPage
	if opts.Max > 0 && opts.Max < MaxListPage {
		limit = opts.Max
	}
	var page ListPage
	n := 0
	last := "" // the page's last, and greatest, entry
	for _, key := range keys {
		entry, rolled := key, false
		if opts.Delimiter != "" {
			if i := strings.Index(key[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				entry, rolled = key[:len(opts.Prefix)+i+len(opts.Delimiter)], true
			}
		}
		// Keys come in order, so the keys of one common prefix are
		// adjacent, and entries come in order too.
		if entry <= opts.After || entry == last {
			continue
		}
		if n == limit {
			page.Next = last
			break
		}
		if rolled {
			page.CommonPrefixes = append(page.CommonPrefixes, entry)
		} else {
			info, err := d.Stat(ctx, key)
			if errors.Is(err, ErrNotFound) {
				continue // removed since the walk
			}
			if err != nil {
				return ListPage{}, fmt.Errorf("dir list %s: %w", opts.Prefix, err)
			}
			page.Objects = append(page.Objects, ObjectInfo{Key: key, Size: info.Size, ModTime: info.ModTime, ETag: info.ETag})
		}
		last = entry
		n++
	}
	return page, nil
}

// listKeys returns, in no particular order, the keys of the object files
// that start with prefix and sort after after, walking only the folders
// that can hold such keys.
func (d *DirRemote) listKeys(ctx context.Context, prefix, after string) ([]string, error) {
	// The folder the prefix's last "/" names holds every key with the
	// prefix. When that folder cannot be a key's, no key has the prefix.
	base, folder := d.dir, prefix[:strings.LastIndex(prefix, "/")+1]
	if folder != "" {
		if f := strings.TrimSuffix(folder, "/"); CheckRemoteKey(f) != nil || drReserved(f) {
			return nil, nil
		}
		// As in a walk from the top, links are not followed.
		for elem := range strings.SplitSeq(strings.TrimSuffix(folder, "/"), "/") {
			base = filepath.Join(base, elem)
			fi, err := os.Lstat(base)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || err == nil && !fi.IsDir() {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
		}
	}
	// wanted reports whether a folder (rel, ending in "/") may hold keys
	// with the prefix that sort after after. Every key under it starts
	// with rel, so none does when rel sorts before after but is not a
	// prefix of it.
	wanted := func(rel string) bool {
		if !strings.HasPrefix(rel, prefix) && !strings.HasPrefix(prefix, rel) {
			return false
		}
		return rel >= after || strings.HasPrefix(after, rel)
	}
	var keys []string
	var walk func(dir, rel string) error
	walk = func(dir, rel string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		// os.ReadDir follows a symbolic link naming dir, as the remote's
		// own directory may be; links inside it are not followed.
		entries, err := os.ReadDir(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil // removed meanwhile, or a file
			}
			return err
		}
		for _, e := range entries {
			key := rel + e.Name()
			switch {
			case rel == "" && e.Name() == drTmpName:
			case e.IsDir():
				if wanted(key + "/") {
					if err := walk(filepath.Join(dir, e.Name()), key+"/"); err != nil {
						return err
					}
				}
			case e.Type().IsRegular():
				if strings.HasPrefix(key, prefix) && key > after && CheckRemoteKey(key) == nil {
					keys = append(keys, key)
				}
			}
		}
		return nil
	}
	if err := walk(base, folder); err != nil {
		return nil, err
	}
	return keys, nil
}

// Remove deletes key's object; a missing object is not an error. It never
// removes a directory, even when key names one.
func (d *DirRemote) Remove(ctx context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dir remove %s: %w", key, err)
	}
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dir remove %s: %w", key, err)
	}
	if fi.IsDir() {
		return nil // a directory of other keys, not an object
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dir remove %s: %w", key, err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("dir remove %s: sync parent: %w", key, err)
	}
	return nil
}

// drReader is Get's reader: a section of the object file that stops reading
// once ctx is done, and closes the file.
type drReader struct {
	*io.SectionReader
	ctx context.Context
	f   *os.File
}

// Read reads from the section unless ctx is done.
func (r *drReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.SectionReader.Read(p)
}

// ReadAt reads from the section unless ctx is done.
func (r *drReader) ReadAt(p []byte, off int64) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.SectionReader.ReadAt(p, off)
}

// Close closes the object file.
func (r *drReader) Close() error { return r.f.Close() }

// drCtxReader makes a Put's copy loop stop once ctx is done, even when the
// source itself would block or go on.
type drCtxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c drCtxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
