package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// keyPath is the API path of key in bucket, each path element escaped so
// that any key S3 takes (spaces, '+', '%', '?', '#') reaches the server
// as written.
func keyPath(bucket, key string) string {
	p := "/api/v1/b/" + url.PathEscape(bucket)
	if key == "" {
		return p
	}
	parts := strings.Split(key, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return p + "/" + strings.Join(parts, "/")
}

// PutKeyOptions describe an object written under a key of an origin
// bucket.
type PutKeyOptions struct {
	// ContentType is the object's media type in the bucket.
	ContentType string
	// Level is 1 (default: the node and the bucket) or 2 (every live node
	// too); a key-addressed write always reaches its bucket.
	Level Level
	// UserMeta is stored with the object.
	UserMeta map[string]string
	// Size is the body's length; see PutOptions.Size.
	Size int64
}

// PutKey writes body under key in an origin bucket (and in the bucket
// itself) and returns the object's metadata once it is there.
func (c *Client) PutKey(ctx context.Context, bucket, key string, body io.Reader, opts PutKeyOptions) (Meta, error) {
	if opts.Size == 0 {
		opts.Size = Length(body)
	}
	h := http.Header{}
	if opts.Level != 0 {
		h.Set("X-Meta-ConsistencyLevel", strconv.Itoa(int(opts.Level)))
	}
	if opts.ContentType != "" {
		h.Set("Content-Type", opts.ContentType)
	}
	if err := setUserMeta(h, opts.UserMeta); err != nil {
		return Meta{}, err
	}
	var m Meta
	err := c.call(ctx, request{op: "put " + bucket + "/" + key, method: "PUT", path: keyPath(bucket, key),
		header: h, body: nonNil(body), size: opts.Size}, &m)
	return m, err
}

// GetKey reads key of an origin bucket through the cluster's cache.
func (c *Client) GetKey(ctx context.Context, bucket, key string, opts GetOptions) (*Object, error) {
	o, err := c.get(ctx, "get "+bucket+"/"+key, keyPath(bucket, key), http.Header{}, opts)
	if err == nil {
		o.Bucket, o.Key = bucket, key
	}
	return o, err
}

// StatKey returns the metadata of key in an origin bucket, reading it
// through (from the bucket) when the cluster does not know it yet.
func (c *Client) StatKey(ctx context.Context, bucket, key string) (Meta, error) {
	var m Meta
	err := c.call(ctx, request{op: "stat " + bucket + "/" + key, method: "GET", path: keyPath(bucket, key),
		query: url.Values{"meta": {""}}}, &m)
	return m, err
}

// DeleteKey deletes key from its origin bucket and the cluster.
func (c *Client) DeleteKey(ctx context.Context, bucket, key string) (Meta, error) {
	var m Meta
	err := c.call(ctx, request{op: "delete " + bucket + "/" + key, method: "DELETE", path: keyPath(bucket, key)}, &m)
	return m, err
}

// PrefixResult reports an operation on the keys under a prefix.
type PrefixResult struct {
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix"`
	// Deleted counts the keys a delete removed.
	Deleted int `json:"deleted,omitempty"`
	// Dropped counts, per node ID, the copies an invalidation dropped.
	Dropped map[string]int `json:"dropped,omitempty"`
	// Failed counts the keys the operation failed on; Errors gives the
	// first reasons (key or node ID: reason).
	Failed int               `json:"failed,omitempty"`
	Errors map[string]string `json:"errors,omitempty"`
	// More says the prefix holds more keys than one call handles: call
	// again for the rest.
	More bool `json:"more,omitempty"`
}

// DeletePrefix deletes the keys of an origin bucket that start with
// prefix (not empty), from the bucket and the cluster.
func (c *Client) DeletePrefix(ctx context.Context, bucket, prefix string) (PrefixResult, error) {
	var res PrefixResult
	err := c.call(ctx, request{op: "delete " + bucket + "/" + prefix + "*", method: "DELETE", path: keyPath(bucket, ""),
		query: url.Values{"prefix": {prefix}}}, &res)
	return res, err
}

// InvalidateKeys drops the cached copies of key (or, with an empty key,
// of every key under prefix) on every node (on the node answering alone
// with localOnly); the bucket is not touched, and the next read fetches
// each key afresh.
func (c *Client) InvalidateKeys(ctx context.Context, bucket, key, prefix string, localOnly bool) (PrefixResult, error) {
	h := http.Header{}
	if localOnly {
		h.Set("X-Meta-Local", "true")
	}
	path := "/api/v1/invalidate/b/" + strings.TrimPrefix(keyPath(bucket, key), "/api/v1/b/")
	var q url.Values
	if prefix != "" {
		q = url.Values{"prefix": {prefix}}
	}
	var res PrefixResult
	err := c.call(ctx, request{op: "invalidate " + bucket + "/" + key + prefix, method: "POST", path: path, query: q, header: h}, &res)
	return res, err
}

// ListOptions select a page of a bucket's listing.
type ListOptions struct {
	// Prefix selects the keys that start with it.
	Prefix string
	// Delimiter rolls the keys up into common prefixes at its first
	// occurrence after Prefix ("/" lists one folder level).
	Delimiter string
	// After starts the page after this key (the previous page's Next).
	After string
	// Max bounds the page (0: the server's maximum, 1000).
	Max int
}

// KeyInfo describes one listed key.
type KeyInfo struct {
	Key          string    `json:"key"`
	Size         int64     `json:"size"`
	ETag         string    `json:"etag,omitempty"`
	LastModified time.Time `json:"last_modified"`
	// Cached is set when the cluster knows the key.
	Cached bool `json:"cached"`
}

// KeyList is a page of a bucket's listing.
type KeyList struct {
	Bucket   string    `json:"bucket"`
	Prefix   string    `json:"prefix,omitempty"`
	Keys     []KeyInfo `json:"keys"`
	Prefixes []string  `json:"prefixes,omitempty"`
	// Next, when set, is the After of the next page.
	Next string `json:"next,omitempty"`
}

// List returns a page of an origin bucket's listing, from the bucket's
// own listing (keys never read through objstore included).
func (c *Client) List(ctx context.Context, bucket string, opts ListOptions) (KeyList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"prefix": opts.Prefix, "delimiter": opts.Delimiter, "after": opts.After} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if opts.Max > 0 {
		q.Set("max", strconv.Itoa(opts.Max))
	}
	var l KeyList
	err := c.call(ctx, request{op: "list " + bucket, method: "GET", path: keyPath(bucket, ""), query: q}, &l)
	return l, err
}

// ListAll calls fn with every key of a bucket's listing under opts,
// page after page, until the listing ends or fn returns an error (which
// ListAll returns).
func (c *Client) ListAll(ctx context.Context, bucket string, opts ListOptions, fn func(KeyInfo) error) error {
	for {
		page, err := c.List(ctx, bucket, opts)
		if err != nil {
			return err
		}
		for _, k := range page.Keys {
			if err := fn(k); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		opts.After = page.Next
	}
}

// PrewarmSpec selects the objects a pre-warm job loads: IDs, or every
// object whose ID is within From and To (inclusive), or the keys of an
// origin bucket under Prefix.
type PrewarmSpec struct {
	IDs    []string `json:"ids,omitempty"`
	From   string   `json:"from,omitempty"`
	To     string   `json:"to,omitempty"`
	Bucket string   `json:"bucket,omitempty"`
	Prefix string   `json:"prefix,omitempty"`
	// AllNodes runs the job on every live node.
	AllNodes bool `json:"all_nodes,omitempty"`
}

// PrewarmJob is a pre-warm job's progress.
type PrewarmJob struct {
	ID       string `json:"id"`
	Node     string `json:"node"`
	State    string `json:"state"` // running, done or canceled
	AllNodes bool   `json:"all_nodes"`
	Total    int    `json:"total"`
	// Done counts the objects handled: Loaded, Skipped (already there,
	// or deleted) and Failed.
	Done     int               `json:"done"`
	Loaded   int               `json:"loaded"`
	Skipped  int               `json:"skipped"`
	Failed   int               `json:"failed"`
	Bytes    int64             `json:"bytes"`
	Errors   []string          `json:"errors,omitempty"`
	Started  time.Time         `json:"started"`
	Finished *time.Time        `json:"finished,omitempty"`
	Nodes    map[string]string `json:"nodes,omitempty"` // peers that could not start or report it
	// Peers holds each peer's progress of a job on every node.
	Peers []PrewarmJob `json:"peers,omitempty"`
}

// Running reports whether the job, or any peer's part of it, is still
// running.
func (j PrewarmJob) Running() bool {
	if j.State == "running" {
		return true
	}
	for _, p := range j.Peers {
		if p.Running() {
			return true
		}
	}
	return false
}

// Progress sums the job's figures over the node that took it and its
// peers: objects done of total, and bytes loaded.
func (j PrewarmJob) Progress() (done, total int, bytes int64) {
	done, total, bytes = j.Done, j.Total, j.Bytes
	for _, p := range j.Peers {
		d, t, b := p.Progress()
		done, total, bytes = done+d, total+t, bytes+b
	}
	return done, total, bytes
}

// Prewarm starts a pre-warm job and returns its first progress.
func (c *Client) Prewarm(ctx context.Context, spec PrewarmSpec) (PrewarmJob, error) {
	var job PrewarmJob
	err := c.callJSON(ctx, request{op: "prewarm", method: "POST", path: "/api/v1/prewarm"}, spec, &job)
	return job, err
}

// PrewarmStatus returns a job's progress from the node that took it.
func (c *Client) PrewarmStatus(ctx context.Context, job string) (PrewarmJob, error) {
	var j PrewarmJob
	err := c.call(ctx, request{op: "prewarm " + job, method: "GET", path: "/api/v1/prewarm/" + url.PathEscape(job)}, &j)
	return j, err
}

// WaitPrewarm polls job every interval until it and its peers' parts are
// no longer running, calling progress (when not nil) with each report,
// and returns the last.
func (c *Client) WaitPrewarm(ctx context.Context, job string, interval time.Duration, progress func(PrewarmJob)) (PrewarmJob, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		j, err := c.PrewarmStatus(ctx, job)
		if err != nil {
			return j, err
		}
		if progress != nil {
			progress(j)
		}
		if !j.Running() {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, fmt.Errorf("objstore: prewarm %s: %w", job, ctx.Err())
		case <-t.C:
		}
	}
}
