package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	cli "github.com/jawher/mow.cli"
	"github.com/oklog/ulid/v2"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/objstore/objstore/client"
)

// Exit codes of the client commands, for scripts.
const (
	exitOK          = 0
	exitFailed      = 1 // anything else: a server fault, a network error, a local file
	exitUsage       = 2 // bad arguments (also mow.cli's own)
	exitNotFound    = 3 // no such object, key or job (deleted included)
	exitDenied      = 4 // no, wrong or insufficient credentials
	exitConflict    = 5 // the object's state forbids it (409), or it is too large (413)
	exitUnavailable = 6 // retry later: a holder, S3 or the node is unavailable (503, 429, 507)
)

// exitCode maps a client error to the exit code scripts rely on.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage), errors.Is(err, client.ErrBadRequest), errors.Is(err, client.ErrRangeInvalid):
		return exitUsage
	case errors.Is(err, client.ErrNotFound):
		return exitNotFound
	case errors.Is(err, client.ErrUnauthorized), errors.Is(err, client.ErrForbidden):
		return exitDenied
	case errors.Is(err, client.ErrConflict), errors.Is(err, client.ErrTooLarge):
		return exitConflict
	case errors.Is(err, client.ErrUnavailable), errors.Is(err, client.ErrBusy), errors.Is(err, client.ErrNoSpace):
		return exitUnavailable
	}
	return exitFailed
}

// errUsage marks a mistake in a command's arguments.
var errUsage = errors.New("usage")

func usage(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// Environment of the client commands. The secret is read from the
// environment or a file, never from the command line, where other users
// of the machine could see it.
const (
	envURL       = "OBJSTORE_URL"
	envAccessKey = "OBJSTORE_ACCESS_KEY"
	envSecretKey = "OBJSTORE_SECRET_KEY"
	envKeyFile   = "OBJSTORE_KEY_FILE"
)

// clientFlags are the options every client command takes.
type clientFlags struct {
	url     *string
	keyFile *string
	json    *bool
	quiet   *bool
	timeout *string
}

func addClientFlags(cmd *cli.Cmd) *clientFlags {
	return &clientFlags{
		url: cmd.String(cli.StringOpt{Name: "url", Value: "http://127.0.0.1:10999", EnvVar: envURL,
			Desc: "Any node of the cluster, or the load balancer in front of them."}),
		keyFile: cmd.String(cli.StringOpt{Name: "key-file", Value: "", EnvVar: envKeyFile,
			Desc: "File whose first line is \"ACCESS_KEY SECRET\" (as in --credentials-file); or set $" + envAccessKey + " and $" + envSecretKey + "."}),
		json:  cmd.Bool(cli.BoolOpt{Name: "json", Desc: "Print results as JSON, for scripts."}),
		quiet: cmd.Bool(cli.BoolOpt{Name: "q quiet", Desc: "No progress bars (there are none when standard error is not a terminal)."}),
		timeout: cmd.String(cli.StringOpt{Name: "timeout", Value: "0", EnvVar: "OBJSTORE_TIMEOUT",
			Desc: "Give up after this long (30s, 5m); 0: never."}),
	}
}

// session is one client command's run: its client, context and output.
type session struct {
	c      *client.Client
	ctx    context.Context
	flags  *clientFlags
	out    io.Writer
	stderr io.Writer
}

// run runs a client command's action: it builds the session, calls fn,
// reports an error on standard error and exits with its code.
func (f *clientFlags) run(fn func(s *session) error) {
	s, cancel, err := f.session()
	if err == nil {
		defer cancel()
		err = fn(s)
	}
	if err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "objstore: ") {
			msg = "objstore: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		cancel()
		cli.Exit(exitCode(err))
	}
}

func (f *clientFlags) session() (*session, func(), error) {
	nop := func() {}
	var opts []client.Option
	key, secret := os.Getenv(envAccessKey), os.Getenv(envSecretKey)
	if *f.keyFile != "" {
		b, err := os.ReadFile(*f.keyFile)
		if err != nil {
			return nil, nop, usage("--key-file: %v", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			return nil, nop, usage("--key-file %s: want \"ACCESS_KEY SECRET\" on its first line", *f.keyFile)
		}
		key, secret = fields[0], fields[1]
	}
	if key != "" {
		opts = append(opts, client.WithCredentials(key, secret))
	}
	opts = append(opts, client.WithUserAgent("objstore-cli/"+version))
	c, err := client.New(*f.url, opts...)
	if err != nil {
		return nil, nop, usage("--url: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	cancel := stop
	if *f.timeout != "0" && *f.timeout != "" {
		d, err := time.ParseDuration(*f.timeout)
		if err != nil || d < 0 {
			stop()
			return nil, nop, usage("--timeout %q: want a duration such as 30s", *f.timeout)
		}
		var tc context.CancelFunc
		ctx, tc = context.WithTimeout(ctx, d)
		cancel = func() { tc(); stop() }
	}
	return &session{c: c, ctx: ctx, flags: f, out: os.Stdout, stderr: os.Stderr}, cancel, nil
}

// printJSON writes v as indented JSON.
func (s *session) printJSON(v any) error {
	enc := json.NewEncoder(s.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// bar returns a progress bar for a transfer of size bytes (-1: unknown)
// on standard error, or nil when it is not a terminal or --quiet is set.
func (s *session) bar(size int64, what string) *progressbar.ProgressBar {
	if *s.flags.quiet || !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// through passes r through bar, when there is one.
func through(r io.Reader, bar *progressbar.ProgressBar) io.Reader {
	if bar == nil {
		return r
	}
	return io.TeeReader(r, bar)
}

// target is what a command names: an object ID, or a key of an origin
// bucket ("bucket/key").
type target struct {
	id          ulid.ULID
	bucket, key string
}

func (t target) String() string {
	if t.bucket != "" {
		return t.bucket + "/" + t.key
	}
	return t.id.String()
}

// parseTarget reads a command's argument: a ULID, or bucket/key.
func parseTarget(arg string) (target, error) {
	if bucket, key, ok := strings.Cut(arg, "/"); ok {
		if bucket == "" {
			return target{}, usage("%q: want BUCKET/KEY", arg)
		}
		return target{bucket: bucket, key: key}, nil
	}
	id, err := ulid.ParseStrict(arg)
	if err != nil {
		return target{}, usage("%q is neither an object ID (a ULID) nor BUCKET/KEY", arg)
	}
	return target{id: id}, nil
}

// registerClientCommands adds the commands that talk to a node.
func registerClientCommands(app *cli.Cli) {
	app.Command("put", "Store files (or standard input) as objects, or under keys of an origin bucket.", cmdPut)
	app.Command("get", "Read an object (an ID or BUCKET/KEY) to standard output or a file.", cmdGet)
	app.Command("stat", "Show an object's metadata.", cmdStat)
	app.Command("rm", "Delete objects (IDs or BUCKET/KEY), or the keys under a prefix.", cmdRm)
	app.Command("ls", "List the keys of an origin bucket (BUCKET or BUCKET/PREFIX).", cmdLs)
	app.Command("nodes", "List the cluster's members.", cmdNodes)
	app.Command("stats", "Show a node's stats.", cmdStats)
	app.Command("invalidate", "Drop the cached copies of objects (IDs or BUCKET/KEY) or of the keys under a prefix, on every node.", cmdInvalidate)
	app.Command("prewarm", "Load objects into the cache ahead of reads, and wait for the job showing its progress.", cmdPrewarm)
}

func cmdPut(cmd *cli.Cmd) {
	cmd.Spec = "[OPTIONS] [FILE...]"
	f := addClientFlags(cmd)
	level := cmd.IntOpt("l level", 0, "Consistency level: 0 (this node), 1 (and S3), 2 (every node and S3). Writes to a bucket are at least 1.")
	name := cmd.StringOpt("name", "", "Object name (default: the file's base name); one file only.")
	id := cmd.StringOpt("id", "", "Object ID to write (a ULID; default: a new one); one file only.")
	bucket := cmd.StringOpt("b bucket", "", "Write under keys of this origin bucket instead of as objects by ID.")
	key := cmd.StringOpt("k key", "", "The key, with --bucket (default: --prefix and the file's base name); one file only.")
	prefix := cmd.StringOpt("prefix", "", "With --bucket: prepended to each file's base name to make its key.")
	ctype := cmd.StringOpt("content-type", "", "Content-Type of keys written to a bucket.")
	meta := cmd.StringsOpt("m meta", nil, "User metadata, KEY=VALUE; repeat for more.")
	files := cmd.StringsArg("FILE", nil, "Files to store; - or none reads standard input.")
	cmd.Action = func() {
		f.run(func(s *session) error {
			if len(*files) == 0 {
				*files = []string{"-"}
			}
			if len(*files) > 1 && (*name != "" || *id != "" || *key != "") {
				return usage("--name, --id and --key name one object: give one file")
			}
			um := map[string]string{}
			for _, kv := range *meta {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usage("--meta %q: want KEY=VALUE", kv)
				}
				um[k] = v
			}
			var results []client.Meta
			for _, path := range *files {
				m, err := s.putOne(path, putArgs{level: *level, name: *name, id: *id, bucket: *bucket, key: *key,
					prefix: *prefix, contentType: *ctype, meta: um})
				if err != nil {
					return err
				}
				results = append(results, m)
				if !*f.json {
					where := m.ID
					if m.Key != "" {
						where = m.Bucket + "/" + m.Key
					}
					fmt.Fprintf(s.out, "%s\t%d\t%s\n", where, m.Size, m.Name)
				}
			}
			if *f.json {
				return s.printJSON(results)
			}
			return nil
		})
	}
}

type putArgs struct {
	level                         int
	name, id, bucket, key, prefix string
	contentType                   string
	meta                          map[string]string
}

// putOne stores one file ("-": standard input).
func (s *session) putOne(path string, a putArgs) (client.Meta, error) {
	if a.level < 0 || a.level > 2 {
		return client.Meta{}, usage("--level %d: want 0, 1 or 2", a.level)
	}
	var body io.Reader = os.Stdin
	size := int64(-1)
	base := ""
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return client.Meta{}, err
		}
		defer file.Close()
		st, err := file.Stat()
		if err != nil {
			return client.Meta{}, err
		}
		if st.IsDir() {
			return client.Meta{}, usage("%s is a directory", path)
		}
		body, size, base = file, st.Size(), filepath.Base(path)
	} else if n := client.Length(os.Stdin); n > 0 {
		size = n // standard input redirected from a file
	}
	bar := s.bar(size, "put "+path)
	body = through(body, bar)
	defer finish(bar)
	if a.bucket != "" {
		key := a.key
		if key == "" {
			if base == "" {
				return client.Meta{}, usage("--key is needed to write standard input to a bucket")
			}
			key = a.prefix + base
		}
		return s.c.PutKey(s.ctx, a.bucket, key, body, client.PutKeyOptions{ContentType: a.contentType,
			Level: client.Level(a.level), UserMeta: a.meta, Size: size})
	}
	opts := client.PutOptions{Name: a.name, Level: client.Level(a.level), UserMeta: a.meta, Size: size}
	if opts.Name == "" {
		opts.Name = base
	}
	if a.id != "" {
		id, err := ulid.ParseStrict(a.id)
		if err != nil {
			return client.Meta{}, usage("--id %q is not a ULID", a.id)
		}
		opts.ID = id
	}
	return s.c.Put(s.ctx, body, opts)
}

// finish ends a progress bar, if there is one.
func finish(bar *progressbar.ProgressBar) {
	if bar != nil {
		bar.Finish()
	}
}

func cmdGet(cmd *cli.Cmd) {
	cmd.Spec = "[OPTIONS] TARGET"
	f := addClientFlags(cmd)
	out := cmd.StringOpt("o output", "-", "Write to this file instead of standard output; it is replaced only once the whole body has arrived.")
	rng := cmd.StringOpt("r range", "", "Bytes to read: FIRST-LAST, FIRST- (to the end), or the last N as --range=-N.")
	arg := cmd.StringArg("TARGET", "", "An object ID, or BUCKET/KEY.")
	cmd.Action = func() {
		f.run(func(s *session) error {
			t, err := parseTarget(*arg)
			if err != nil {
				return err
			}
			var opts client.GetOptions
			if *rng != "" {
				r, err := parseRange(*rng)
				if err != nil {
					return err
				}
				opts.Range = &r
			}
			var obj *client.Object
			if t.bucket != "" {
				obj, err = s.c.GetKey(s.ctx, t.bucket, t.key, opts)
			} else {
				obj, err = s.c.Get(s.ctx, t.id, opts)
			}
			if err != nil {
				return err
			}
			defer obj.Close()
			return s.save(obj, *out)
		})
	}
}

// parseRange reads --range.
func parseRange(v string) (client.Range, error) {
	bad := usage("--range %q: want FIRST-LAST, FIRST- or -N", v)
	first, last, ok := strings.Cut(v, "-")
	if !ok {
		return client.Range{}, bad
	}
	if first == "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n <= 0 {
			return client.Range{}, bad
		}
		return client.Range{Offset: -n, Length: -1}, nil
	}
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a < 0 {
		return client.Range{}, bad
	}
	if last == "" {
		return client.Range{Offset: a, Length: -1}, nil
	}
	b, err := strconv.ParseInt(last, 10, 64)
	if err != nil || b < a {
		return client.Range{}, bad
	}
	return client.Range{Offset: a, Length: b - a + 1}, nil
}

// save writes obj's body to path ("-": standard output). A file is
// written beside its final name and renamed into place only once every
// byte arrived, so a transfer that breaks off leaves no partial file
// under the name asked for.
func (s *session) save(obj *client.Object, path string) error {
	bar := s.bar(obj.Length, "get")
	defer finish(bar)
	if path == "-" {
		w := bufio.NewWriterSize(s.out, 256<<10)
		if _, err := io.Copy(w, through(obj.Body, bar)); err != nil {
			return err
		}
		return w.Flush()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := io.Copy(tmp, through(obj.Body, bar)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func cmdStat(cmd *cli.Cmd) {
	cmd.Spec = "[OPTIONS] TARGET..."
	f := addClientFlags(cmd)
	args := cmd.StringsArg("TARGET", nil, "Object IDs, or BUCKET/KEY.")
	cmd.Action = func() {
		f.forEachTarget(*args, func(s *session, t target, i int) (any, error) {
			var m client.Meta
			var err error
			if t.bucket != "" {
				m, err = s.c.StatKey(s.ctx, t.bucket, t.key)
			} else {
				m, err = s.c.Stat(s.ctx, t.id)
			}
			if err == nil && !*f.json {
				if i > 0 {
					fmt.Fprintln(s.out)
				}
				printMeta(s.out, m)
			}
			return m, err
		})
	}
}

// forEachTarget runs fn on each argument read as a target (its index
// with it), stopping at the first error, and with --json prints what fn
// returned as a JSON array once all are done (fn prints its own lines
// otherwise).
func (f *clientFlags) forEachTarget(args []string, fn func(s *session, t target, i int) (any, error)) {
	f.run(func(s *session) error {
		results := []any{}
		for i, a := range args {
			t, err := parseTarget(a)
			if err != nil {
				return err
			}
			res, err := fn(s, t, i)
			if err != nil {
				return err
			}
			results = append(results, res)
		}
		if *f.json {
			return s.printJSON(results)
		}
		return nil
	})
}

// printMeta writes an object's metadata, a field a line.
func printMeta(w io.Writer, m client.Meta) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("id", m.ID)
	if m.Key != "" {
		row("bucket", m.Bucket)
		row("key", m.Key)
		row("etag", m.ETag)
		row("content-type", m.ContentType)
	}
	if m.Name != "" {
		row("name", m.Name)
	}
	row("size", m.Size)
	row("modified", m.Modified.Format(time.RFC3339))
	row("level", m.Consistency)
	row("on this node", m.IsLocal)
	if m.SHA256 != "" {
		row("sha256", m.SHA256)
	}
	for k, v := range m.UserMeta {
		row("meta "+k, v)
	}
	if m.IsDeleted {
		row("deleted", true)
	}
	tw.Flush()
}

func cmdRm(cmd *cli.Cmd) {
	cmd.Spec = "[OPTIONS] TARGET..."
	f := addClientFlags(cmd)
	purge := cmd.BoolOpt("purge", false, "Also remove the copy in the remote store (objects by ID; keys always leave their bucket).")
	prefix := cmd.BoolOpt("prefix", false, "Each TARGET is BUCKET/PREFIX: delete every key under it.")
	args := cmd.StringsArg("TARGET", nil, "Object IDs, or BUCKET/KEY.")
	cmd.Action = func() {
		f.forEachTarget(*args, func(s *session, t target, _ int) (any, error) {
			switch {
			case *prefix:
				return s.deletePrefix(t)
			case t.bucket != "":
				m, err := s.c.DeleteKey(s.ctx, t.bucket, t.key)
				s.done(err, "%s\tdeleted\n", t)
				return m, err
			}
			m, err := s.c.Delete(s.ctx, t.id, *purge)
			s.done(err, "%s\tdeleted\n", t)
			return m, err
		})
	}
}

// done prints a line of a command's progress, unless it failed or the
// output is JSON.
func (s *session) done(err error, format string, args ...any) {
	if err == nil && !*s.flags.json {
		fmt.Fprintf(s.out, format, args...)
	}
}

// deletePrefix deletes every key under t (BUCKET/PREFIX), call after call
// while the node says more remain.
func (s *session) deletePrefix(t target) ([]client.PrefixResult, error) {
	if t.bucket == "" || t.key == "" {
		return nil, usage("--prefix: %q: want BUCKET/PREFIX with a prefix (deleting a whole bucket is refused)", t.String())
	}
	var all []client.PrefixResult
	for {
		res, err := s.c.DeletePrefix(s.ctx, t.bucket, t.key)
		if err != nil {
			return all, err
		}
		all = append(all, res)
		s.done(nil, "%s*\tdeleted %d, failed %d\n", t, res.Deleted, res.Failed)
		if res.Failed > 0 {
			return all, fmt.Errorf("%d keys under %s could not be deleted: %v", res.Failed, t, res.Errors)
		}
		if !res.More {
			return all, nil
		}
	}
}

func cmdLs(cmd *cli.Cmd) {
	cmd.Spec = "[OPTIONS] BUCKET_OR_PREFIX"
	f := addClientFlags(cmd)
	recursive := cmd.BoolOpt("R recursive", false, "List every key under the prefix, not one folder level.")
	long := cmd.BoolOpt("l long", false, "Show size, last modification and whether the cluster caches each key.")
	arg := cmd.StringArg("BUCKET_OR_PREFIX", "", "BUCKET, or BUCKET/PREFIX.")
	cmd.Action = func() {
		f.run(func(s *session) error {
			bucket, prefix, _ := strings.Cut(*arg, "/")
			if bucket == "" {
				return usage("want BUCKET or BUCKET/PREFIX")
			}
			opts := client.ListOptions{Prefix: prefix}
			if !*recursive {
				opts.Delimiter = "/"
			}
			tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			defer tw.Flush()
			var keys []client.KeyInfo
			var prefixes []string
			for {
				page, err := s.c.List(s.ctx, bucket, opts)
				if err != nil {
					return err
				}
				if *f.json {
					keys, prefixes = append(keys, page.Keys...), append(prefixes, page.Prefixes...)
				} else {
					for _, p := range page.Prefixes {
						fmt.Fprintf(tw, "%s\n", p)
					}
					for _, k := range page.Keys {
						if *long {
							cached := ""
							if k.Cached {
								cached = "cached"
							}
							fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", k.Size, k.LastModified.Format(time.RFC3339), cached, k.Key)
						} else {
							fmt.Fprintln(tw, k.Key)
						}
					}
				}
				if page.Next == "" {
					break
				}
				opts.After = page.Next
			}
			if *f.json {
				if keys == nil {
					keys = []client.KeyInfo{}
				}
				return s.printJSON(struct {
					Keys     []client.KeyInfo `json:"keys"`
					Prefixes []string         `json:"prefixes,omitempty"`
				}{keys, prefixes})
			}
			return nil
		})
	}
}

func cmdNodes(cmd *cli.Cmd) {
	f := addClientFlags(cmd)
	cmd.Action = func() {
		f.run(func(s *session) error {
			ms, err := s.c.Nodes(s.ctx)
			if err != nil {
				return err
			}
			if *f.json {
				return s.printJSON(ms)
			}
			tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tPUBLIC\tPRIVATE\tGOSSIP\t")
			for _, m := range ms {
				state := m.State
				if m.Untrusted {
					state += " (untrusted)"
				}
				self := ""
				if m.Self {
					self = "(answered)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, state, m.PublicAddr, m.PrivateAddr, m.GossipAddr, self)
			}
			return tw.Flush()
		})
	}
}

func cmdStats(cmd *cli.Cmd) {
	f := addClientFlags(cmd)
	cmd.Action = func() {
		f.run(func(s *session) error {
			st, err := s.c.Stats(s.ctx)
			if err != nil {
				return err
			}
			if *f.json {
				return s.printJSON(st)
			}
			t := st.Traffic
			reads := t.HitsLocal + t.HitsPeer + t.HitsRemote
			ratio := "-"
			if reads > 0 {
				ratio = fmt.Sprintf("%.1f%%", 100*float64(t.HitsLocal+t.HitsPeer)/float64(reads))
			}
			quota := "none"
			if st.Quota > 0 {
				quota = fmt.Sprintf("%s (%.0f%% used)", bytesHuman(st.Quota), 100*float64(st.Journal.LocalBytes)/float64(st.Quota))
			}
			tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			row := func(k, format string, args ...any) {
				fmt.Fprintf(tw, "%s:\t"+format+"\n", append([]any{k}, args...)...)
			}
			row("node", "%s", st.NodeID)
			row("remote", "%s", st.Remote)
			row("objects", "%d (%s), %d tombstones", st.Journal.Objects, bytesHuman(st.Journal.Bytes), st.Journal.Tombstones)
			row("on this node", "%d bodies, %s; quota %s", st.Journal.LocalObjects, bytesHuman(st.Journal.LocalBytes), quota)
			row("disk", "%s free of %s", bytesHuman(int64(st.Disk.BytesFree)), bytesHuman(int64(st.Disk.BytesAll)))
			row("reads", "%d local (%d from memory), %d peer, %d remote, %d misses; served without S3: %s",
				t.HitsLocal, t.HitsMemory, t.HitsPeer, t.HitsRemote, t.Misses, ratio)
			row("bytes served", "%s local, %s peer, %s remote", bytesHuman(t.BytesLocal), bytesHuman(t.BytesPeer), bytesHuman(t.BytesRemote))
			row("writes", "%d puts (%d failed), %d deletes", t.Puts, t.PutErrors, t.Deletes)
			row("fetches", "%d (%d failed, %d joined one under way), %d in flight", t.Fetches, t.FetchErrors, t.Coalesced, st.Fills.InFlight)
			row("evictions", "%d", t.Evictions)
			row("scrub", "%d checked, %d damaged", t.Scrubbed, t.ScrubDamaged)
			row("repair backlog", "%d", st.RepairBacklog)
			row("anti-entropy", "%d rounds (%d failed), %d entries pulled, %d pushed", st.Sync.Rounds, st.Sync.Failures, st.Sync.Pulled, st.Sync.Pushed)
			var members []string
			for _, state := range []string{"alive", "suspect", "dead", "left", "untrusted"} {
				if n := st.Members[state]; n > 0 {
					members = append(members, fmt.Sprintf("%d %s", n, state))
				}
			}
			row("members", "%s", strings.Join(members, ", "))
			return tw.Flush()
		})
	}
}

// bytesHuman spells n bytes in binary units.
func bytesHuman(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func cmdInvalidate(cmd *cli.Cmd) {
	cmd.Spec = "[OPTIONS] TARGET..."
	f := addClientFlags(cmd)
	local := cmd.BoolOpt("local", false, "Only on the node answering.")
	prefix := cmd.BoolOpt("prefix", false, "Each TARGET is BUCKET/PREFIX (or BUCKET/ for every key of the bucket).")
	args := cmd.StringsArg("TARGET", nil, "Object IDs, or BUCKET/KEY.")
	cmd.Action = func() {
		f.forEachTarget(*args, func(s *session, t target, _ int) (any, error) {
			if t.bucket == "" {
				if *prefix {
					return nil, usage("--prefix: %q: want BUCKET/PREFIX", t.String())
				}
				res, err := s.c.Invalidate(s.ctx, t.id, *local)
				s.done(err, "%s\t%d copies dropped\n", t, len(res.Dropped))
				return res, err
			}
			key, pfx := t.key, ""
			if *prefix {
				key, pfx = "", t.key
			}
			res, err := s.c.InvalidateKeys(s.ctx, t.bucket, key, pfx, *local)
			dropped := 0
			for _, n := range res.Dropped {
				dropped += n
			}
			s.done(err, "%s\t%d copies dropped\n", t, dropped)
			return res, err
		})
	}
}

func cmdPrewarm(cmd *cli.Cmd) {
	cmd.Spec = "[OPTIONS] [ID...]"
	f := addClientFlags(cmd)
	all := cmd.BoolOpt("a all-nodes", false, "Load on every live node, not only the one answering.")
	from := cmd.StringOpt("from", "", "Load every object whose ID is at or after this ULID (with --to).")
	to := cmd.StringOpt("to", "", "... and at or before this ULID.")
	bucket := cmd.StringOpt("b bucket", "", "Load the keys of this origin bucket (under --prefix).")
	prefix := cmd.StringOpt("prefix", "", "With --bucket: the keys that start with it.")
	noWait := cmd.BoolOpt("no-wait", false, "Start the job and print its ID without waiting for it.")
	ids := cmd.StringsArg("ID", nil, "Object IDs to load.")
	cmd.Action = func() {
		f.run(func(s *session) error {
			spec := client.PrewarmSpec{IDs: *ids, From: *from, To: *to, Bucket: *bucket, Prefix: *prefix, AllNodes: *all}
			if len(spec.IDs) == 0 && spec.From == "" && spec.Bucket == "" {
				return usage("name objects to load: IDs, --from and --to, or --bucket")
			}
			job, err := s.c.Prewarm(s.ctx, spec)
			if err != nil {
				return err
			}
			if !*noWait {
				var bar *progressbar.ProgressBar
				job, err = s.c.WaitPrewarm(s.ctx, job.ID, 250*time.Millisecond, func(j client.PrewarmJob) {
					done, total, _ := j.Progress()
					if bar == nil {
						bar = s.bar(int64(total), "prewarm "+j.ID)
						if bar == nil {
							return
						}
					}
					bar.ChangeMax64(int64(total))
					bar.Set64(int64(done))
				})
				finish(bar)
				if err != nil {
					return err
				}
			}
			if *f.json {
				return s.printJSON(job)
			}
			done, total, bytes := job.Progress()
			fmt.Fprintf(s.out, "%s\t%s\t%d of %d done: %d loaded, %d skipped, %d failed, %s\n",
				job.ID, job.State, done, total, job.Loaded, job.Skipped, job.Failed, bytesHuman(bytes))
			for _, e := range job.Errors {
				fmt.Fprintf(s.stderr, "  %s\n", e)
			}
			if job.Failed > 0 && !*noWait {
				return fmt.Errorf("prewarm %s: %d objects failed to load", job.ID, job.Failed)
			}
			return nil
		})
	}
}
