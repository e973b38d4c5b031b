package node

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/objstore/objstore/cluster"
)

// Status is what a node shows of itself on the status page: its stats,
// the recent history of its traffic, its pre-warm jobs, and its recent
// warnings and errors.
type Status struct {
	Stats   Stats        `json:"stats"`
	History []Sample     `json:"history"`
	Jobs    []PrewarmJob `json:"jobs"`
	Errors  []LogEntry   `json:"errors"`
}

// Sample is the node's traffic counters at Time; the differences between
// samples are the traffic between them.
type Sample struct {
	Time        time.Time `json:"time"`
	HitsLocal   int64     `json:"hits_local"`
	HitsPeer    int64     `json:"hits_peer"`
	HitsRemote  int64     `json:"hits_remote"`
	Misses      int64     `json:"misses"`
	BytesLocal  int64     `json:"bytes_local"`
	BytesPeer   int64     `json:"bytes_peer"`
	BytesRemote int64     `json:"bytes_remote"`
}

// Bounds of a Status, and of one a peer sends: the history of the last
// half hour, the jobs a node keeps, the last errors.
const (
	sampleInterval = 10 * time.Second
	maxSamples     = 180
	maxStatusJobs  = 20
	maxLogEntries  = 50
)

// history keeps the last maxSamples samples of the node's traffic.
type history struct {
	mu      sync.Mutex
	samples []Sample
}

func (h *history) add(s Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, s)
	if len(h.samples) > maxSamples {
		h.samples = slices.Delete(h.samples, 0, len(h.samples)-maxSamples)
	}
}

func (h *history) list() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.samples)
}

// sample takes the traffic counters now.
func (n *Node) sample() Sample {
	c := &n.counters
	return Sample{Time: n.physicalNow().UTC(), HitsLocal: c.hitsLocal.Load(), HitsPeer: c.hitsPeer.Load(),
		HitsRemote: c.hitsRemote.Load(), Misses: c.misses.Load(), BytesLocal: c.bytesLocal.Load(),
		BytesPeer: c.bytesPeer.Load(), BytesRemote: c.bytesRemote.Load()}
}

// sampleLoop records the traffic counters every sampleInterval until the
// node closes.
func (n *Node) sampleLoop() {
	defer n.wg.Done()
	n.history.add(n.sample())
	t := time.NewTicker(sampleInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			n.history.add(n.sample())
		}
	}
}

// Status returns this node's status; its history ends with a sample
// taken now.
func (n *Node) Status(ctx context.Context) (Status, error) {
	st, err := n.Stats(ctx)
	if err != nil {
		return Status{}, err
	}
	s := Status{Stats: st, History: append(n.history.list(), n.sample()), Jobs: n.jobs.recent(maxStatusJobs), Errors: []LogEntry{}}
	if n.cfg.LogRing != nil {
		s.Errors = n.cfg.LogRing.Entries()
	}
	return s, nil
}

// MemberStatus is one member of the cluster and its status, or why it
// could not be had.
type MemberStatus struct {
	cluster.Member
	Status *Status `json:"status,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// statusTTL is how long a gathered cluster status is given again:
// however often clients ask, a node asks its peers at most once a period.
const statusTTL = time.Second

// statusCache holds the last cluster status gathered. mu is held while
// gathering, so that callers arriving meanwhile wait for that one.
type statusCache struct {
	mu  sync.Mutex
	at  time.Time
	out []MemberStatus
}

// ClusterStatus returns every member with its status: this node's own,
// and each live peer's, asked for at once (up to peerFanOut) and each
// bounded by timeout. The answer is shared for statusTTL by every caller,
// who must not modify it; no one caller's cancellation ends the gathering
// the others wait on.
func (n *Node) ClusterStatus(ctx context.Context, timeout time.Duration) ([]MemberStatus, error) {
	c := &n.statusCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out != nil && time.Since(c.at) < statusTTL {
		return c.out, nil
	}
	ctx = context.WithoutCancel(ctx)
	members := n.Members()
	out := make([]MemberStatus, len(members))
	var peers []cluster.Member
	var at []int // at[j] is the index in out of peers[j]
	for i, m := range members {
		out[i].Member = m
		switch {
		case m.Self:
			st, err := n.Status(ctx)
			if err != nil {
				return nil, err
			}
			out[i].Status = &st
		case m.State != cluster.StateAlive && m.State != cluster.StateSuspect:
		case m.Untrusted:
			out[i].Error = "not trusted: it failed to authenticate"
		default:
			peers, at = append(peers, m), append(at, i)
		}
	}
	eachPeer(peers, func(j int, p cluster.Member) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var st Status
		if err := n.cl.client.Peer(p.PrivateAddr).CallJSON(ctx, "GET", cluster.PathStatus, nil, &st); err != nil {
			// Its address is no secret (/api/v1/nodes shows it).
			out[at[j]].Error = trimString(err.Error())
			return
		}
		st.bound()
		out[at[j]].Status = &st
	})
	c.out, c.at = out, time.Now()
	return out, nil
}

// bound trims a peer's status to what a node would send, so a peer cannot
// make the page's answer grow without end.
func (s *Status) bound() {
	if len(s.History) > maxSamples+1 {
		s.History = s.History[len(s.History)-maxSamples-1:]
	}
	if len(s.Jobs) > maxStatusJobs {
		s.Jobs = s.Jobs[:maxStatusJobs]
	}
	for i := range s.Jobs {
		s.Jobs[i].Peers, s.Jobs[i].Errors = nil, trimStrings(s.Jobs[i].Errors, 10)
	}
	if len(s.Errors) > maxLogEntries {
		s.Errors = s.Errors[len(s.Errors)-maxLogEntries:]
	}
	for i := range s.Errors {
		e := &s.Errors[i]
		e.Level, e.Message, e.Attrs = trimString(e.Level), trimString(e.Message), trimString(e.Attrs)
	}
	if s.Errors == nil {
		s.Errors = []LogEntry{}
	}
}

// maxText bounds one text of a status: an error, a log message, its
// attributes.
const maxText = 1024

// trimStrings keeps the first n of s, each cut to maxText bytes.
func trimStrings(s []string, n int) []string {
	if len(s) > n {
		s = s[:n]
	}
	for i := range s {
		s[i] = trimString(s[i])
	}
	return s
}

// trimString cuts s to maxText bytes.
func trimString(s string) string {
	if len(s) > maxText {
		return s[:maxText]
	}
	return s
}

// recent returns up to n of the jobs kept, the newest first.
func (ps *prewarms) recent(n int) []PrewarmJob {
	ps.mu.Lock()
	var recent []*prewarm
	for i := len(ps.order) - 1; i >= 0 && len(recent) < n; i-- {
		recent = append(recent, ps.jobs[ps.order[i]])
	}
	ps.mu.Unlock()
	jobs := make([]PrewarmJob, 0, len(recent))
	for _, p := range recent {
		jobs = append(jobs, p.snapshot())
	}
	return jobs
}

// LogEntry is a warning or error the node logged.
type LogEntry struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	// Attrs are the record's attributes, key=value, as the text log
	// writes them.
	Attrs string `json:"attrs,omitempty"`
}

// LogRing is a slog.Handler that passes every record on to another and
// keeps the last warnings and errors in memory, for the status page.
// Records carry no secrets: nothing secret is ever logged.
type LogRing struct {
	next   slog.Handler
	prefix string // attributes added with WithAttrs, rendered
	ring   *logEntries
}

type logEntries struct {
	mu      sync.Mutex
	entries []LogEntry
}

// NewLogRing returns a LogRing in front of next.
func NewLogRing(next slog.Handler) *LogRing {
	return &LogRing{next: next, ring: &logEntries{}}
}

// Enabled reports whether next handles level.
func (l *LogRing) Enabled(ctx context.Context, level slog.Level) bool {
	return l.next.Enabled(ctx, level)
}

// Handle keeps r when it is a warning or worse, and passes it on.
func (l *LogRing) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		var b strings.Builder
		b.WriteString(l.prefix)
		r.Attrs(func(a slog.Attr) bool {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(a.Key + "=" + a.Value.String())
			return b.Len() < maxText
		})
		e := LogEntry{Time: r.Time.UTC(), Level: r.Level.String(), Message: trimString(r.Message), Attrs: trimString(b.String())}
		l.ring.mu.Lock()
		l.ring.entries = append(l.ring.entries, e)
		if len(l.ring.entries) > maxLogEntries {
			l.ring.entries = slices.Delete(l.ring.entries, 0, len(l.ring.entries)-maxLogEntries)
		}
		l.ring.mu.Unlock()
	}
	return l.next.Handle(ctx, r)
}

// WithAttrs returns a LogRing whose records carry attrs too.
func (l *LogRing) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(l.prefix)
	for _, a := range attrs {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.Key + "=" + a.Value.String())
	}
	return &LogRing{next: l.next.WithAttrs(attrs), prefix: b.String(), ring: l.ring}
}

// WithGroup returns a LogRing whose records' attributes are in group.
func (l *LogRing) WithGroup(name string) slog.Handler {
	return &LogRing{next: l.next.WithGroup(name), prefix: l.prefix, ring: l.ring}
}

// Entries returns the warnings and errors kept, the oldest first.
func (l *LogRing) Entries() []LogEntry {
	l.ring.mu.Lock()
	defer l.ring.mu.Unlock()
	return slices.Clone(l.ring.entries)
}
