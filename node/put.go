package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/journal"
	"github.com/objstore/objstore/storage"
)

// PutRequest is one object to store: named by ID, or by Bucket and Key
// for a key-addressed object (the ID is then derived).
type PutRequest struct {
	ID   ulid.ULID
	Name string
	// Bucket and Key name a key-addressed object in an origin bucket,
	// which is written through to the bucket under Key (level 1 or 2).
	// ContentType is stored with it there.
	Bucket, Key string
	ContentType string
	Level       journal.Level
	UserMeta    map[string]string
	// Body is read to EOF. Size is its exact length, or -1 when unknown.
	Body io.Reader
	Size int64
}

// validate checks what can be checked before the body streams, and
// returns where a body of the level asked for goes besides the disk: the
// origin bucket for a key, the remote tier for a ULID of level 1 or 2.
func (n *Node) validate(req *PutRequest) (storage.Putter, error) {
	var to storage.Putter
	if req.Bucket != "" || req.Key != "" {
		o, err := n.origin(req.Bucket, req.Key)
		if err != nil {
			return nil, err
		}
		if req.Level == journal.LevelLocal {
			return nil, fmt.Errorf("%w: a key is written through to its bucket: level 1 or 2, not 0", ErrInvalid)
		}
		if err := storage.CheckContentType(req.ContentType); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		req.ID = journal.KeyID(req.Bucket, req.Key)
		if req.Name == "" {
			req.Name = path.Base(req.Key)
		}
		to = &typedPut{o: o, contentType: req.ContentType}
	} else if req.ContentType != "" {
		return nil, fmt.Errorf("%w: a content type is kept for key-addressed objects only", ErrInvalid)
	} else if req.Level.InRemote() {
		to = n.remote
	}
	if req.ID == (ulid.ULID{}) {
		return nil, fmt.Errorf("%w: missing object ID", ErrInvalid)
	}
	if !req.Level.Valid() {
		return nil, fmt.Errorf("%w: consistency level %d is not 0, 1 or 2", ErrInvalid, req.Level)
	}
	if err := validName(req.Name); err != nil {
		return nil, err
	}
	if err := validUserMeta(req.UserMeta); err != nil {
		return nil, err
	}
	if n.cfg.MaxObjectSize > 0 && req.Size > n.cfg.MaxObjectSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, req.Size, n.cfg.MaxObjectSize)
	}
	return to, nil
}

// typedPut puts into an origin with a content type, and keeps the ETag
// the origin gave the upload.
type typedPut struct {
	o           storage.Origin
	contentType string
	etag        string
}

func (t *typedPut) Put(ctx context.Context, key string, r io.Reader, size int64, meta map[string]string) (err error) {
	t.etag, err = t.o.PutTyped(ctx, key, r, size, t.contentType, meta)
	return err
}

// describeUpload returns what revalidation compares for the object a
// write just uploaded to its origin: the ETag the upload answered, and the
// bucket's Last-Modified, read by a HEAD and believed only when that HEAD
// describes this upload. When another writer replaced the object at once
// (or the HEAD failed), this node's clock stands in for the time, and the
// next revalidation finds the other object by its ETag.
func (n *Node) describeUpload(ctx context.Context, t *typedPut, key string) (string, time.Time) {
	info, err := t.o.Stat(ctx, key)
	switch {
	case err == nil && (t.etag == "" || info.ETag == t.etag):
		return info.ETag, info.ModTime.UTC()
	case err != nil:
		n.log.Warn("describe an upload to its origin", "key", key, "err", err)
	}
	return t.etag, n.physicalNow().UTC()
}

// validUserMeta checks user metadata against what the remote tier's
// metadata can carry.
func validUserMeta(meta map[string]string) error {
	if len(meta) == 0 {
		return nil
	}
	if len(meta) > maxUserMetaBytes/4 {
		return fmt.Errorf("%w: %d user metadata pairs", ErrInvalid, len(meta))
	}
	for k, v := range meta {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("%w: user metadata must be UTF-8", ErrInvalid)
		}
		if len(k)+len(v) > maxUserMetaBytes {
			return fmt.Errorf("%w: user metadata is over %d bytes", ErrInvalid, maxUserMetaBytes)
		}
	}
	b, _ := json.Marshal(meta)
	if len(b) > maxUserMetaBytes {
		return fmt.Errorf("%w: user metadata is %d bytes of JSON, the limit is %d", ErrInvalid, len(b), maxUserMetaBytes)
	}
	return nil
}

func validName(name string) error {
	if len(name) > maxNameBytes {
		return fmt.Errorf("%w: name is %d bytes, the limit is %d", ErrInvalid, len(name), maxNameBytes)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: name must be UTF-8", ErrInvalid)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: name contains a control character", ErrInvalid)
		}
	}
	return nil
}

// Put stores an object. The body streams to a temporary file on local disk
// and, for levels 1 and 2, to the remote tier at the same time. Put returns
// only once the body is durable on disk (fsynced and renamed) and, for
// levels 1 and 2, in the remote, and its journal entry is committed. On any
// error nothing is committed: no entry claims a level the object does not
// have, and any earlier version of the object stays as it was.
//
// An existing object may be replaced by a newer body at the same or a higher
// level; lowering its level or reusing a deleted ID fails with ErrConflict.
// A key-addressed object is written through to its origin bucket (with
// its user metadata and content type, and nothing of objstore's), may
// change level either way, and may be written again after a delete.
func (n *Node) Put(ctx context.Context, req PutRequest) (Meta, error) {
	if n.closed.Load() {
		return Meta{}, ErrClosed
	}
	// A write stamped by a clock the cluster would refuse, or taken by a
	// stale node, is not taken.
	if err := n.writable(); err != nil {
		return Meta{}, err
	}
	to, err := n.validate(&req)
	if err != nil {
		return Meta{}, err
	}
	keyed := req.Bucket != ""
	unlock, err := n.locks.lock(ctx, req.ID)
	if err != nil {
		return Meta{}, err
	}
	defer unlock()

	prev, err := n.journal.Entry(req.ID)
	switch {
	case errors.Is(err, journal.ErrNotFound):
	case err != nil:
		return Meta{}, fmt.Errorf("node: put %s: %w", req.ID, err)
	case keyed:
	case prev.Deleted:
		return Meta{}, fmt.Errorf("%w: object %s was deleted; IDs are never reused, ask /api/v1/id for a new one", ErrConflict, req.ID)
	case req.Level < prev.Level:
		return Meta{}, fmt.Errorf("%w: object %s has consistency level %d; a PUT may not lower it", ErrConflict, req.ID, prev.Level)
	}

	e := journal.Entry{
		ID:       req.ID,
		Version:  journal.Version{Time: n.clock.Now(), Node: n.id},
		Origin:   n.id,
		Name:     req.Name,
		Level:    req.Level,
		UserMeta: req.UserMeta,
	}
	remoteKey, meta := n.remoteKey(req.ID), remoteMeta(e, false)
	if keyed {
		e.Bucket, e.Key, e.ContentType = req.Bucket, req.Key, req.ContentType
		remoteKey, meta = req.Key, req.UserMeta
	}
	// A body that cannot fit at all is refused before it streams; quota
	// is then reserved as its bytes arrive, so a slow client holds only
	// what it sent. A body the quota refuses midway fails before anything
	// is committed: the remote's upload is aborted with it.
	if n.cfg.MaxDisk > 0 && req.Size > n.cfg.MaxDisk {
		return Meta{}, safeErrorf(ErrNoSpace, "%d bytes do not fit in the disk quota of %d bytes", req.Size, n.cfg.MaxDisk)
	}
	res := n.newReservation(req.Size)
	defer res.release()
	w, err := n.disk.Create(req.ID, req.Size)
	if err != nil {
		return Meta{}, diskErr(err)
	}
	defer w.Abort()

	body := &limitedBody{r: req.Body, max: n.cfg.MaxObjectSize}
	dst := &quotaWriter{w: w, r: res}
	if to != nil {
		err = n.streamBoth(ctx, to, remoteKey, meta, req.Size, body, w, dst)
	} else {
		err = copyBody(dst, body)
	}
	if err == nil && keyed {
		e.ETag, e.LastModified = n.describeUpload(ctx, to.(*typedPut), req.Key)
	}
	if err == nil && req.Size >= 0 && w.Size() != req.Size {
		err = fmt.Errorf("%w: body is %d bytes, expected %d", ErrInvalid, w.Size(), req.Size)
	}
	if err != nil {
		n.counters.putErrors.Add(1)
		return Meta{}, err
	}
	if req.Level.InRemote() {
		n.fault("after-upload")
	}
	size, sum, err := w.Commit(req.ID)
	if err != nil {
		n.counters.putErrors.Add(1)
		return Meta{}, diskErr(err)
	}
	n.fault("before-commit")
	e.Size, e.Sum = size, sum
	blob := journal.Blob{Size: size, Sum: sum, Stored: n.physicalNow().UTC()}
	old, applied, err := n.commit(e, &blob)
	if err == nil && applied {
		n.fault("after-commit")
	}
	if err != nil || !applied {
		if old == nil || old.Sum != sum {
			n.disk.Remove(req.ID, sum)
		}
		if err == nil {
			err = fmt.Errorf("%w: a newer version of %s was written meanwhile", ErrConflict, req.ID)
		}
		n.counters.putErrors.Add(1)
		return Meta{}, err
	}
	if old != nil && old.Sum != sum {
		if err := n.disk.Remove(req.ID, old.Sum); err != nil {
			n.log.Warn("remove replaced body", "id", req.ID, "err", err)
		}
	}
	n.counters.puts.Add(1)
	if n.evictable(e) {
		n.policy.Add(req.ID, size)
	}
	n.tell(ctx, e)
	n.log.Debug("put", "id", req.ID, "size", size, "level", req.Level)
	return metaOf(e, &blob), nil
}

// commit applies e to the journal and, if it wins, records blob as this
// node's body of it (or drops the record when blob is nil). It returns the
// blob record it replaced, so the caller can remove that body's file once
// nothing points at it.
func (n *Node) commit(e journal.Entry, blob *journal.Blob) (old *journal.Blob, applied bool, err error) {
	var sparseTag string
	err = n.journal.Update(func(tx *journal.Tx) error {
		if b, err := tx.Blob(e.ID); err == nil {
			old = &b
		} else if !errors.Is(err, journal.ErrNotFound) {
			return err
		}
		var prev *journal.Entry
		if tx.HasSparse(e.ID) {
			if cur, err := tx.Entry(e.ID); err == nil {
				prev = &cur
			}
		}
		if applied, err = tx.Apply(e); err != nil || !applied {
			return err
		}
		// Parts of an older version are no one's now (unless the body
		// is the same).
		if sparseTag, err = staleSparse(tx, prev, e); err != nil {
			return err
		}
		if blob == nil {
			return tx.DeleteBlob(e.ID)
		}
		return tx.PutBlob(e.ID, *blob)
	})
	if err != nil {
		return nil, false, fmt.Errorf("node: commit %s: %w", e.ID, diskErr(err))
	}
	n.removeSparse(e.ID, sparseTag)
	return old, applied, nil
}

// streamBoth copies body to the disk writer and to the store to (the
// remote tier, or an origin bucket) under key at once. Memory stays
// bounded by the store's part buffers whatever the body's size. It
// returns once both sides have finished, with the first error.
func (n *Node) streamBoth(ctx context.Context, to storage.Putter, key string, meta map[string]string, size int64, body io.Reader, file *storage.Writer, w io.Writer) error {
	if fp, contentType, etag, ok := filePutter(to); ok && size >= 0 {
		return n.streamFile(ctx, fp, contentType, etag, key, meta, size, body, file, w)
	}
	release, err := n.uploadSlot(ctx)
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := to.Put(ctx, key, pr, size, meta)
		// Unblock the writer side if the remote gave up early.
		pr.CloseWithError(errRemoteStopped)
		done <- err
	}()
	copyErr := copyBody(io.MultiWriter(w, pw), body)
	if copyErr != nil {
		pw.CloseWithError(copyErr)
		cancel()
	} else {
		pw.Close()
	}
	return uploadOutcome(key, copyErr, <-done)
}

// uploadOutcome is the error of a PUT that copied the client's body
// (copyErr) while uploading it to key (upErr): the client's or the disk's
// failure first, then the remote's; a copy the remote stopped early
// without an error of its own is the remote's fault too.
func uploadOutcome(key string, copyErr, upErr error) error {
	switch {
	case copyErr != nil && !errors.Is(copyErr, errRemoteStopped):
		return copyErr
	case upErr != nil:
		return remoteErr("upload "+key, upErr)
	case copyErr != nil:
		return fmt.Errorf("%w: upload %s stopped early", ErrRemote, key)
	}
	return nil
}

var errRemoteStopped = errors.New("remote upload stopped")

// filePutter returns the FilePutter behind to, the content type to give
// the object and where to keep the ETag the upload answers, when to can
// upload from the local copy as it arrives.
func filePutter(to storage.Putter) (fp storage.FilePutter, contentType string, etag *string, ok bool) {
	switch p := to.(type) {
	case *storage.Counted:
		fp, ok = p.FilePutter()
	case *typedPut:
		fp, ok = p.o.(storage.FilePutter)
		contentType, etag = p.contentType, &p.etag
	}
	return fp, contentType, etag, ok
}

// streamFile stores a body of known size on disk (through w, which writes
// to file) and uploads it to the remote from file's sealed bytes as they
// land, with fp: the upload reads the local copy, so it holds no part
// buffers and its last part leaves as soon as the body has arrived. A
// failure on either side stops both, as in streamBoth.
func (n *Node) streamFile(ctx context.Context, fp storage.FilePutter, contentType string, etag *string, key string, meta map[string]string, size int64, body io.Reader, file *storage.Writer, w io.Writer) error {
	release, err := n.uploadSlot(ctx)
	if err != nil {
		return err
	}
	defer release()
	src, err := file.Follow()
	if err != nil {
		return diskErr(err)
	}
	defer src.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := newArrival(size)
	type result struct {
		etag string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		tag, err := fp.PutFile(ctx, key, src, size, a.wait, contentType, meta)
		if err != nil {
			a.stop() // the client's body need not be read on
		}
		done <- result{tag, err}
	}()
	copyErr := copyBody(&arrivalWriter{w: w, file: file, a: a}, body)
	if copyErr == nil && file.Readable() != size {
		copyErr = fmt.Errorf("%w: body is %d bytes, expected %d", ErrInvalid, file.Size(), size)
	}
	if copyErr != nil {
		a.fail(copyErr)
		cancel()
	} else {
		// The body ended cleanly, every check of it (its length, its
		// signature's payload hash, its checksums) passed at its end: only
		// now may the upload take its last byte and complete.
		a.complete()
	}
	res := <-done
	if err := uploadOutcome(key, copyErr, res.err); err != nil {
		return err
	}
	if etag != nil {
		*etag = res.etag
	}
	return nil
}

// arrival tells an upload reading the local copy how much of it has
// arrived: its first n bytes, or the failure that ends it. The body's last
// byte is ready only once the body has ended and passed its checks
// (complete), since those come at its end: an upload must not finish
// with a body that then turns out short, long or damaged.
type arrival struct {
	mu       sync.Mutex
	cond     *sync.Cond
	n        int64 // bytes on disk
	size     int64
	finished bool // complete was called
	err      error
	stopped  atomic.Bool // the upload failed: stop taking the body
}

func newArrival(size int64) *arrival {
	a := &arrival{size: size}
	a.cond = sync.NewCond(&a.mu)
	return a
}

// complete records that the whole body arrived and passed its checks.
func (a *arrival) complete() {
	a.mu.Lock()
	a.finished = true
	a.cond.Broadcast()
	a.mu.Unlock()
}

// set records that the first n bytes can be read.
func (a *arrival) set(n int64) {
	a.mu.Lock()
	if n > a.n {
		a.n = n
		a.cond.Broadcast()
	}
	a.mu.Unlock()
}

// fail ends the arrival with err.
func (a *arrival) fail(err error) {
	a.mu.Lock()
	if a.err == nil {
		a.err = err
	}
	a.cond.Broadcast()
	a.mu.Unlock()
}

func (a *arrival) stop() { a.stopped.Store(true) }

// wait blocks until the first n bytes can be read, and fails when the
// body fails or ctx ends first.
func (a *arrival) wait(ctx context.Context, n int64) error {
	stop := context.AfterFunc(ctx, func() { a.fail(ctx.Err()) })
	defer stop()
	a.mu.Lock()
	defer a.mu.Unlock()
	for {
		if a.err != nil {
			return a.err
		}
		if a.n >= n && (n < a.size || a.finished) {
			return nil
		}
		a.cond.Wait()
	}
}

// arrivalWriter writes the body to disk and reports each sealed byte to
// the upload following it.
type arrivalWriter struct {
	w    io.Writer
	file *storage.Writer
	a    *arrival
}

func (aw *arrivalWriter) Write(p []byte) (int, error) {
	if aw.a.stopped.Load() {
		return 0, errRemoteStopped
	}
	n, err := aw.w.Write(p)
	aw.a.set(aw.file.Readable())
	return n, err
}

// uploadSlot waits for one of the MaxUploads slots and returns its release.
func (n *Node) uploadSlot(ctx context.Context) (func(), error) {
	select {
	case n.uploads <- struct{}{}:
		return func() { <-n.uploads }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// copyBody streams body into w, classifying failures: a failed read of the
// client's body is the client's fault (ErrInvalid or ErrTooLarge), a failed
// write is the server's.
func copyBody(w io.Writer, body io.Reader) error {
	buf := make([]byte, copyBufferSize)
	for {
		nr, rerr := body.Read(buf)
		if nr > 0 {
			if _, werr := w.Write(buf[:nr]); werr != nil {
				return diskErr(werr)
			}
		}
		switch {
		case rerr == io.EOF:
			return nil
		case errors.Is(rerr, ErrTooLarge):
			return rerr
		case rerr != nil:
			return fmt.Errorf("%w: reading body: %w", ErrInvalid, rerr)
		}
	}
}

// limitedBody fails with ErrTooLarge once more than max bytes were read;
// max zero means no limit.
type limitedBody struct {
	r   io.Reader
	max int64
	n   int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.r == nil {
		return 0, io.EOF
	}
	if l.max > 0 && int64(len(p)) > l.max-l.n+1 {
		p = p[:l.max-l.n+1]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.max > 0 && l.n > l.max {
		return 0, fmt.Errorf("%w: the limit is %d bytes", ErrTooLarge, l.max)
	}
	return n, err
}
