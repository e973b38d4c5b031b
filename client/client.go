// Package client is the Go client of objstore's public HTTP API
// (/api/v1): objects by ULID and keys of origin buckets, streamed in both
// directions, plus the cluster's members, a node's stats, invalidation and
// pre-warming. It talks to any node or to the load balancer in front of
// them; every call takes a context, and every failure the server reports
// is an *Error that errors.Is matches against ErrNotFound, ErrConflict and
// the other kinds.
//
// The package imports nothing else of objstore, so that programs using it
// build without the server.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// Client calls one objstore endpoint. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	hc     *http.Client
	key    string // access key ID; empty: no credentials
	secret string
	agent  string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests with hc (timeouts,
// TLS settings, proxies). The default is a client without an overall
// timeout, since bodies may be large: bound calls with their contexts.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithCredentials makes the Client authenticate with an access key of the
// node's --credentials-file (sent as HTTP Basic: use https when the
// network is not trusted).
func WithCredentials(accessKey, secret string) Option {
	return func(c *Client) { c.key, c.secret = accessKey, secret }
}

// WithUserAgent sets the User-Agent of every request.
func WithUserAgent(ua string) Option { return func(c *Client) { c.agent = ua } }

// New returns a Client of the node or load balancer at baseURL
// ("http://127.0.0.1:10999"; a URL without a scheme is taken as http).
func New(baseURL string, opts ...Option) (*Client, error) {
	if !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http://host:port or https://host:port", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, hc: http.DefaultClient, agent: "objstore-client"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// URL returns the base URL the Client calls.
func (c *Client) URL() string { return c.base.String() }

// Error kinds, matched with errors.Is against the errors the Client
// returns for the server's answers.
var (
	ErrBadRequest   = errors.New("bad request")              // 400: the request was malformed
	ErrUnauthorized = errors.New("unauthorized")             // 401: no or wrong credentials
	ErrForbidden    = errors.New("forbidden")                // 403: the key lacks the scope
	ErrNotFound     = errors.New("not found")                // 404: no such object (ErrDeleted too)
	ErrDeleted      = errors.New("deleted")                  // 404 with X-Meta-Deleted: the object was deleted
	ErrConflict     = errors.New("conflict")                 // 409: the object's state forbids it
	ErrTooLarge     = errors.New("too large")                // 413: over --max-object-size
	ErrRangeInvalid = errors.New("range not satisfiable")    // 416
	ErrBusy         = errors.New("too many requests")        // 429
	ErrServer       = errors.New("server error")             // 500 and any other 5xx
	ErrRemote       = errors.New("remote store failed")      // 502: S3 refused or failed
	ErrUnavailable  = errors.New("unavailable")              // 503: a holder or S3 cannot be reached
	ErrNoSpace      = errors.New("insufficient storage")     // 507: the node's disk or quota is full
	ErrUnexpected   = errors.New("unexpected answer status") // anything else
)

// Error is a failure the server reported: its status and message.
type Error struct {
	Op      string // the call, such as "get 01JDQ6..."
	Status  int
	Message string // the server's words
	kind    error
}

// Error says what call failed, with the status and the server's message.
func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("objstore: %s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("objstore: %s: %d %s", e.Op, e.Status, e.Message)
}

// Unwrap returns the error's kind (ErrNotFound, ...).
func (e *Error) Unwrap() []error {
	if e.kind == ErrDeleted {
		return []error{ErrDeleted, ErrNotFound}
	}
	return []error{e.kind}
}

// kindOf maps an answer's status to an error kind.
func kindOf(resp *http.Response) error {
	switch resp.StatusCode {
	case 400:
		return ErrBadRequest
	case 401:
		return ErrUnauthorized
	case 403:
		return ErrForbidden
	case 404:
		if resp.Header.Get("X-Meta-Deleted") == "true" {
			return ErrDeleted
		}
		return ErrNotFound
	case 409:
		return ErrConflict
	case 413:
		return ErrTooLarge
	case 416:
		return ErrRangeInvalid
	case 429:
		return ErrBusy
	case 502:
		return ErrRemote
	case 503:
		return ErrUnavailable
	case 507:
		return ErrNoSpace
	}
	if resp.StatusCode >= 500 {
		return ErrServer
	}
	return ErrUnexpected
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// errorOf reads a failed answer into an *Error and closes its body.
func errorOf(op string, resp *http.Response) error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := strings.TrimSpace(string(b))
	var j struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &j) == nil && j.Error != "" {
		msg = j.Error
	}
	return &Error{Op: op, Status: resp.StatusCode, Message: msg, kind: kindOf(resp)}
}

// request is one call.
type request struct {
	op     string
	method string
	path   string // below the base URL, already escaped
	query  url.Values
	header http.Header
	body   io.Reader
	size   int64 // the body's length; -1 unknown
}

// do sends req and returns the answer when its status is 2xx (or 304),
// else the server's error.
func (c *Client) do(ctx context.Context, req request) (*http.Response, error) {
	u := *c.base
	u.RawPath = c.base.Path + req.path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, fmt.Errorf("objstore: %s: bad path: %w", req.op, err)
	}
	u.Path = p
	if req.query != nil {
		u.RawQuery = req.query.Encode()
	}
	body := req.body
	if body == nil {
		body = http.NoBody
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("objstore: %s: %w", req.op, err)
	}
	if req.body != nil {
		hr.ContentLength = req.size
		if req.size == 0 {
			hr.Body = http.NoBody
		}
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	if c.key != "" {
		hr.SetBasicAuth(c.key, c.secret)
	}
	hr.Header.Set("User-Agent", c.agent)
	resp, err := c.hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("objstore: %s: %w", req.op, err)
	}
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotModified {
		return nil, errorOf(req.op, resp)
	}
	return resp, nil
}

// call sends req and decodes its JSON answer into v (when not nil).
func (c *Client) call(ctx context.Context, req request, v any) error {
	resp, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if v == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("objstore: %s: decode answer: %w", req.op, err)
	}
	return nil
}

// callJSON sends in as req's JSON body and decodes the answer into out.
func (c *Client) callJSON(ctx context.Context, req request, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("objstore: %s: %w", req.op, err)
	}
	req.body, req.size = bytes.NewReader(b), int64(len(b))
	if req.header == nil {
		req.header = http.Header{}
	}
	req.header.Set("Content-Type", "application/json")
	return c.call(ctx, req, out)
}

// text sends req and returns its plain-text answer.
func (c *Client) text(ctx context.Context, req request) (string, error) {
	resp, err := c.do(ctx, req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return "", fmt.Errorf("objstore: %s: %w", req.op, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Level is an object's consistency level: where its body is kept before a
// write is acknowledged.
type Level int

// Consistency levels.
const (
	LevelLocal  Level = 0 // the node that took the write
	LevelRemote Level = 1 // that node and the remote store (S3)
	LevelFull   Level = 2 // every live node and the remote store
)

// Meta describes an object, as the server reports it.
type Meta struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Size        int64             `json:"size"`
	Timestamp   int64             `json:"timestamp"`
	Modified    time.Time         `json:"modified"`
	UserMeta    map[string]string `json:"user_meta,omitempty"`
	IsSymlink   bool              `json:"is_symlink"`
	Consistency Level             `json:"consistency"`
	IsDeleted   bool              `json:"is_deleted"`
	IsFetched   bool              `json:"is_fetched"`
	// IsLocal reports whether the node that answered holds the body.
	IsLocal bool `json:"is_local"`
	// SHA256 is the body's hex checksum, when known.
	SHA256  string `json:"sha256,omitempty"`
	Version string `json:"version"`
	// Bucket and Key name a key-addressed object; ETag, ContentType and
	// LastModified are its origin bucket's.
	Bucket       string     `json:"bucket,omitempty"`
	Key          string     `json:"key,omitempty"`
	ETag         string     `json:"etag,omitempty"`
	ContentType  string     `json:"content_type,omitempty"`
	LastModified *time.Time `json:"last_modified,omitempty"`
	// Stale is set when the copy served could not be checked against its
	// origin (stale-if-error).
	Stale bool `json:"stale,omitempty"`
}

// NewID asks the node for a new object ID. Any ULID made by the caller
// (ulid.Make) serves as well.
func (c *Client) NewID(ctx context.Context) (ulid.ULID, error) {
	s, err := c.text(ctx, request{op: "new id", method: "GET", path: "/api/v1/id"})
	if err != nil {
		return ulid.ULID{}, err
	}
	id, err := ulid.ParseStrict(s)
	if err != nil {
		return ulid.ULID{}, fmt.Errorf("objstore: new id: the node answered %q: %w", s, err)
	}
	return id, nil
}

// PutOptions describe an object to write.
type PutOptions struct {
	// ID names the object; the zero ULID makes a new one (ulid.Make).
	ID ulid.ULID
	// Name is the object's file name; its extension sets the
	// Content-Type of reads.
	Name string
	// Level is the consistency level (default LevelLocal).
	Level Level
	// UserMeta is stored with the object.
	UserMeta map[string]string
	// Size is the body's length, or -1 when unknown (the body is then
	// sent chunked). 0 takes the length from a body that knows it (see
	// Length), else sends it chunked.
	Size int64
}

// Length returns the length of a body that knows it: a *bytes.Reader,
// *bytes.Buffer, *strings.Reader, or a regular *os.File from its current
// offset; else -1. A nil body is empty.
func Length(body io.Reader) int64 {
	switch b := body.(type) {
	case nil:
		return 0
	case interface{ Len() int }:
		return int64(b.Len())
	case *os.File:
		st, err := b.Stat()
		if err != nil || !st.Mode().IsRegular() {
			return -1
		}
		off, err := b.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		return st.Size() - off
	}
	return -1
}

// Put writes an object whose body streams from body, and returns its
// metadata once the node acknowledges the write at the level asked. A
// body of unknown length goes chunked; a --max-object-size limit then
// refuses it only as it arrives.
func (c *Client) Put(ctx context.Context, body io.Reader, opts PutOptions) (Meta, error) {
	if opts.Size == 0 {
		opts.Size = Length(body)
	}
	id := opts.ID
	if id == (ulid.ULID{}) {
		id = ulid.Make()
	}
	h := http.Header{}
	h.Set("X-Meta-ID", id.String())
	h.Set("X-Meta-ConsistencyLevel", strconv.Itoa(int(opts.Level)))
	if opts.Name != "" {
		h.Set("X-Meta-Name", opts.Name)
	}
	if err := setUserMeta(h, opts.UserMeta); err != nil {
		return Meta{}, err
	}
	var m Meta
	err := c.call(ctx, request{op: "put " + id.String(), method: "POST", path: "/api/v1/put", header: h,
		body: nonNil(body), size: opts.Size}, &m)
	return m, err
}

// nonNil stands an empty body in for a nil one.
func nonNil(r io.Reader) io.Reader {
	if r == nil {
		return bytes.NewReader(nil)
	}
	return r
}

func setUserMeta(h http.Header, um map[string]string) error {
	if len(um) == 0 {
		return nil
	}
	b, err := json.Marshal(um)
	if err != nil {
		return fmt.Errorf("objstore: user metadata: %w", err)
	}
	h.Set("X-Meta-UserMeta", string(b))
	return nil
}

// Range selects bytes of a body: Length bytes from Offset; a Length of -1
// reads to the end. A negative Offset with Length -1 reads the last
// -Offset bytes.
type Range struct {
	Offset, Length int64
}

func (r Range) header() string {
	switch {
	case r.Offset < 0:
		return fmt.Sprintf("bytes=%d", r.Offset)
	case r.Length < 0:
		return fmt.Sprintf("bytes=%d-", r.Offset)
	}
	return fmt.Sprintf("bytes=%d-%d", r.Offset, r.Offset+r.Length-1)
}

// GetOptions tune a read.
type GetOptions struct {
	// Range, when set, reads part of the body.
	Range *Range
	// Fetch allows a read of an ID the cluster does not know to fetch it
	// from the remote store (X-Meta-Fetch).
	Fetch bool
	// IfNoneMatch makes the read conditional on the body's ETag (its
	// SHA-256, quoted) being another: a match is ErrNotModified.
	IfNoneMatch string
}

// ErrNotModified is returned by a read whose GetOptions.IfNoneMatch
// matched: the caller's copy is current.
var ErrNotModified = errors.New("objstore: not modified")

// Object is an object being read: its metadata and its body, which the
// caller reads and closes. A body that breaks off fails its Read rather
// than end early: io.EOF means every byte arrived.
type Object struct {
	Meta
	// Body streams the bytes asked for.
	Body io.ReadCloser
	// Length is the number of bytes Body holds (the range's length for a
	// ranged read), or -1 when the server did not say.
	Length int64
	// Source says where the node took the bytes from: local, peer or
	// remote.
	Source string
	// ContentType is the answer's media type.
	ContentType string
}

// Close closes the body.
func (o *Object) Close() error { return o.Body.Close() }

// Get reads object id.
func (c *Client) Get(ctx context.Context, id ulid.ULID, opts GetOptions) (*Object, error) {
	h := http.Header{}
	if opts.Fetch {
		h.Set("X-Meta-Fetch", "true")
	}
	o, err := c.get(ctx, "get "+id.String(), "/api/v1/get/"+id.String(), h, opts)
	if err == nil {
		// A ULID object's ETag is its body's SHA-256.
		o.SHA256 = strings.Trim(o.ETag, `"`)
	}
	return o, err
}

// get reads an object at path and makes its metadata from the answer's
// headers.
func (c *Client) get(ctx context.Context, op, path string, h http.Header, opts GetOptions) (*Object, error) {
	if opts.Range != nil {
		h.Set("Range", opts.Range.header())
	}
	if opts.IfNoneMatch != "" {
		h.Set("If-None-Match", opts.IfNoneMatch)
	}
	resp, err := c.do(ctx, request{op: op, method: "GET", path: path, header: h})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotModified {
		resp.Body.Close()
		return nil, fmt.Errorf("objstore: %s: %w", op, ErrNotModified)
	}
	o := &Object{Meta: metaFromHeader(resp.Header), Body: &strictBody{rc: resp.Body, want: resp.ContentLength},
		Length: resp.ContentLength, Source: resp.Header.Get("X-Meta-Source"), ContentType: resp.Header.Get("Content-Type")}
	if cr := resp.Header.Get("Content-Range"); cr != "" {
		// "bytes a-b/size": the object's size is after the slash.
		if _, total, ok := strings.Cut(cr, "/"); ok {
			if n, err := strconv.ParseInt(total, 10, 64); err == nil {
				o.Size = n
			}
		}
	} else if resp.ContentLength >= 0 {
		o.Size = resp.ContentLength
	}
	return o, nil
}

// strictBody reports a body shorter than its Content-Length as
// io.ErrUnexpectedEOF, never as a clean end.
type strictBody struct {
	rc   io.ReadCloser
	want int64 // -1: unknown
	got  int64
}

func (b *strictBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.got += int64(n)
	if err == io.EOF && b.want >= 0 && b.got < b.want {
		err = fmt.Errorf("objstore: body ended after %d of %d bytes: %w", b.got, b.want, io.ErrUnexpectedEOF)
	}
	return n, err
}

func (b *strictBody) Close() error { return b.rc.Close() }

// metaFromHeader reads an object's metadata from a GET's or HEAD's
// headers.
func metaFromHeader(h http.Header) Meta {
	m := Meta{ID: h.Get("X-Meta-ID"), Name: h.Get("X-Meta-Name"),
		ETag: h.Get("ETag"), ContentType: h.Get("Content-Type"), IsSymlink: h.Get("X-Meta-Symlink") == "true",
		IsFetched: h.Get("X-Meta-Fetched") == "true", Stale: h.Get("X-Meta-Stale") == "true"}
	if v, err := strconv.Atoi(h.Get("X-Meta-ConsistencyLevel")); err == nil {
		m.Consistency = Level(v)
	}
	if v := h.Get("X-Meta-UserMeta"); v != "" {
		json.Unmarshal([]byte(v), &m.UserMeta)
	}
	if t, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
		m.Modified = t
		m.Timestamp = t.Unix()
	}
	return m
}

// Stat returns object id's metadata as the node answering knows it.
func (c *Client) Stat(ctx context.Context, id ulid.ULID) (Meta, error) {
	var m Meta
	err := c.call(ctx, request{op: "stat " + id.String(), method: "GET", path: "/api/v1/meta/" + id.String()}, &m)
	return m, err
}

// Delete deletes object id everywhere (a tombstone); with purge, its copy
// in the remote store too. It returns the tombstone's metadata.
func (c *Client) Delete(ctx context.Context, id ulid.ULID, purge bool) (Meta, error) {
	h := http.Header{}
	if purge {
		h.Set("X-Meta-Purge", "true")
	}
	var m Meta
	err := c.call(ctx, request{op: "delete " + id.String(), method: "POST", path: "/api/v1/delete/" + id.String(), header: h}, &m)
	return m, err
}

// Upgrade raises object id's consistency level without sending its body
// again. A lower level than the object's is ErrConflict.
func (c *Client) Upgrade(ctx context.Context, id ulid.ULID, level Level) (Meta, error) {
	h := http.Header{}
	h.Set("X-Meta-ConsistencyLevel", strconv.Itoa(int(level)))
	var m Meta
	err := c.call(ctx, request{op: "upgrade " + id.String(), method: "POST", path: "/api/v1/upgrade/" + id.String(), header: h}, &m)
	return m, err
}

// InvalidateResult says which nodes dropped their copy of an object.
type InvalidateResult struct {
	ID      string   `json:"id"`
	Dropped []string `json:"dropped"`
	// Kept lists nodes whose copy is the only one (a level-0 body on its
	// origin), which stays.
	Kept []string `json:"kept,omitempty"`
	// Errors maps nodes that could not be reached to the reason.
	Errors map[string]string `json:"errors,omitempty"`
}

// Invalidate drops the cached copies of object id on every node (on the
// node answering alone with localOnly), keeping its metadata and its copy
// in the remote store: the next read fetches it afresh.
func (c *Client) Invalidate(ctx context.Context, id ulid.ULID, localOnly bool) (InvalidateResult, error) {
	h := http.Header{}
	if localOnly {
		h.Set("X-Meta-Local", "true")
	}
	var res InvalidateResult
	err := c.call(ctx, request{op: "invalidate " + id.String(), method: "POST", path: "/api/v1/invalidate/" + id.String(), header: h}, &res)
	return res, err
}

// Version returns the server's version.
func (c *Client) Version(ctx context.Context) (string, error) {
	return c.text(ctx, request{op: "version", method: "GET", path: "/api/v1/version"})
}

// Ready reports nil when the node answering takes traffic, else why not
// (an *Error matching ErrUnavailable).
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.text(ctx, request{op: "ready", method: "GET", path: "/readyz"})
	return err
}

// Member is a node of the cluster as the node answering sees it.
type Member struct {
	ID          string `json:"id"`
	PublicAddr  string `json:"public_addr"`
	PrivateAddr string `json:"private_addr"`
	GossipAddr  string `json:"gossip_addr"`
	// State is alive, suspect, dead or left.
	State string `json:"state"`
	// Self marks the node that answered.
	Self bool `json:"self"`
	// Untrusted marks a member that failed to authenticate.
	Untrusted bool `json:"untrusted,omitempty"`
}

// Nodes lists the cluster's members.
func (c *Client) Nodes(ctx context.Context) ([]Member, error) {
	var ms []Member
	err := c.call(ctx, request{op: "nodes", method: "GET", path: "/api/v1/nodes"}, &ms)
	return ms, err
}
