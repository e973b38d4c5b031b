package storage

import (
	"context"
	"io"
	"sync/atomic"
)

// Decorators that add behaviour to any Remote without touching its
// backend, as thanos objstore's prefixed bucket and metrics wrappers do.

// WithPrefix returns r with prefix prepended to every key: a Remote that
// keeps its objects under one folder of a shared store. The ObjectInfo
// keys it returns are without the prefix. An empty prefix returns r.
func WithPrefix(r Remote, prefix string) Remote {
	if prefix == "" {
		return r
	}
	return &prefixed{r: r, prefix: prefix}
}

type prefixed struct {
	r      Remote
	prefix string
}

func (p *prefixed) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, ObjectInfo, error) {
	if err := CheckRemoteKey(key); err != nil {
		return nil, ObjectInfo{}, err
	}
	rc, info, err := p.r.Get(ctx, p.prefix+key, offset, length)
	info.Key = key
	return rc, info, err
}

func (p *prefixed) Put(ctx context.Context, key string, r io.Reader, size int64, meta map[string]string) error {
	if err := CheckRemoteKey(key); err != nil {
		return err
	}
	return p.r.Put(ctx, p.prefix+key, r, size, meta)
}

func (p *prefixed) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := CheckRemoteKey(key); err != nil {
		return ObjectInfo{}, err
	}
	info, err := p.r.Stat(ctx, p.prefix+key)
	info.Key = key
	return info, err
}

func (p *prefixed) Remove(ctx context.Context, key string) error {
	if err := CheckRemoteKey(key); err != nil {
		return err
	}
	return p.r.Remove(ctx, p.prefix+key)
}

func (p *prefixed) String() string { return p.r.String() + " prefix " + p.prefix }

// RemoteCounts counts the requests a Remote was asked to carry out.
type RemoteCounts struct {
	Gets, Puts, Stats, Removes int64
}

// Counted is a Remote that counts the requests it passes on, for the
// node's statistics. It is safe for concurrent use.
type Counted struct {
	Remote
	gets, puts, stats, removes atomic.Int64
}

// NewCounted returns r counting its requests.
func NewCounted(r Remote) *Counted { return &Counted{Remote: r} }

// Get implements Getter.
func (c *Counted) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, ObjectInfo, error) {
	c.gets.Add(1)
	return c.Remote.Get(ctx, key, offset, length)
}

// Put implements Putter.
func (c *Counted) Put(ctx context.Context, key string, r io.Reader, size int64, meta map[string]string) error {
	c.puts.Add(1)
	return c.Remote.Put(ctx, key, r, size, meta)
}

// Stat implements Statter.
func (c *Counted) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	c.stats.Add(1)
	return c.Remote.Stat(ctx, key)
}

// Remove implements Remover.
func (c *Counted) Remove(ctx context.Context, key string) error {
	c.removes.Add(1)
	return c.Remote.Remove(ctx, key)
}

// FilePutter returns the Remote as a FilePutter whose uploads are counted,
// or false when the Remote cannot put from a file.
func (c *Counted) FilePutter() (FilePutter, bool) {
	fp, ok := c.Remote.(FilePutter)
	if !ok {
		return nil, false
	}
	return countedFiles{c, fp}, true
}

// countedFiles counts the uploads of a FilePutter among its Counted's puts.
type countedFiles struct {
	c  *Counted
	fp FilePutter
}

func (f countedFiles) PutFile(ctx context.Context, key string, body io.ReaderAt, size int64, ready func(context.Context, int64) error,
	contentType string, meta map[string]string) (string, error) {
	f.c.puts.Add(1)
	return f.fp.PutFile(ctx, key, body, size, ready, contentType, meta)
}

// Counts returns the requests counted so far.
func (c *Counted) Counts() RemoteCounts {
	return RemoteCounts{Gets: c.gets.Load(), Puts: c.puts.Load(), Stats: c.stats.Load(), Removes: c.removes.Load()}
}

var (
	_ Remote = (*prefixed)(nil)
	_ Remote = (*Counted)(nil)
)
