package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/objstore/objstore/cluster"
	"github.com/objstore/objstore/journal"
)

// Pre-warming loads bodies into nodes' disks ahead of reads: a list of IDs,
// a range of IDs (ULIDs sort by creation time, so a range is a time
// window), or the keys of an origin bucket under a prefix (as the bucket
// lists them), on this node or on every node, as a job whose progress can
// be polled.

// Limits of one pre-warm job.
const (
	maxPrewarmIDs     = 250_000
	maxRunningJobs    = 4 // jobs running on this node at once, clients' and peers' shares together
	prewarmWorkers    = 4
	maxPrewarmErrors  = 10
	maxPrewarmHistory = 100
)

// PrewarmSpec says what a pre-warm job loads.
type PrewarmSpec struct {
	// IDs lists objects to load. Or give From and To (inclusive) to load
	// every live object whose ID falls between them.
	IDs  []string `json:"ids,omitempty"`
	From string   `json:"from,omitempty"`
	To   string   `json:"to,omitempty"`
	// Or give Bucket, an origin bucket, to load its keys that start with
	// Prefix (empty: every key).
	Bucket string `json:"bucket,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	// AllNodes runs the job on every live node, not only this one.
	AllNodes bool `json:"all_nodes,omitempty"`
	// Job names the job; nodes use it to run one job under one ID
	// everywhere. Clients leave it empty.
	Job string `json:"job,omitempty"`
}

// PrewarmJob is a pre-warm job's progress.
type PrewarmJob struct {
	ID       string `json:"id"`
	Node     string `json:"node"`
	State    string `json:"state"` // running, done or canceled
	AllNodes bool   `json:"all_nodes"`
	Total    int    `json:"total"`
	// Done counts the objects handled: Loaded into this node's disk,
	// Skipped (already here, or deleted) and Failed.
	Done     int               `json:"done"`
	Loaded   int               `json:"loaded"`
	Skipped  int               `json:"skipped"`
	Failed   int               `json:"failed"`
	Bytes    int64             `json:"bytes"`
	Errors   []string          `json:"errors,omitempty"`
	Started  time.Time         `json:"started"`
	Finished *time.Time        `json:"finished,omitempty"`
	Nodes    map[string]string `json:"nodes,omitempty"` // peers that could not start or report it
	// Peers holds, for a job on every node, each peer's progress.
	Peers []PrewarmJob `json:"peers,omitempty"`
}

// prewarm is a running or finished job.
type prewarm struct {
	mu  sync.Mutex // guards job
	job PrewarmJob
}

func (p *prewarm) snapshot() PrewarmJob {
	p.mu.Lock()
	defer p.mu.Unlock()
	j := p.job
	j.Errors = append([]string(nil), j.Errors...)
	return j
}

// prewarms keeps the recent jobs.
type prewarms struct {
	mu     sync.Mutex // guards jobs, order and active
	jobs   map[string]*prewarm
	order  []string
	active int // jobs running
}

func (ps *prewarms) add(p *prewarm) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.jobs == nil {
		ps.jobs = make(map[string]*prewarm)
	}
	ps.jobs[p.job.ID] = p
	ps.order = append(ps.order, p.job.ID)
	if len(ps.order) > maxPrewarmHistory {
		delete(ps.jobs, ps.order[0])
		ps.order = ps.order[1:]
	}
}

// begin takes one of the maxRunningJobs slots, or reports that none is
// free; end gives it back.
func (ps *prewarms) begin() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.active >= maxRunningJobs {
		return false
	}
	ps.active++
	return true
}

func (ps *prewarms) end() {
	ps.mu.Lock()
	ps.active--
	ps.mu.Unlock()
}

func (ps *prewarms) get(id string) (*prewarm, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.jobs[id]
	return p, ok
}

// Prewarm starts a pre-warm job and returns its first snapshot. Bad input
// fails with ErrInvalid before anything starts. With AllNodes the same job
// (same ID) is started on every live peer; peers that cannot be reached are
// listed in the job's Nodes.
func (n *Node) Prewarm(ctx context.Context, spec PrewarmSpec) (PrewarmJob, error) {
	if n.closed.Load() {
		return PrewarmJob{}, ErrClosed
	}
	if !n.jobs.begin() {
		return PrewarmJob{}, fmt.Errorf("%w: %d pre-warm jobs are running on this node, the most it runs at once; try again when one is done", ErrBusy, maxRunningJobs)
	}
	started := false
	defer func() {
		if !started {
			n.jobs.end()
		}
	}()
	items, err := n.prewarmItems(ctx, spec)
	if err != nil {
		return PrewarmJob{}, err
	}
	jobID := spec.Job
	if jobID == "" {
		jobID = ulid.Make().String()
	} else if _, err := ulid.ParseStrict(jobID); err != nil {
		return PrewarmJob{}, fmt.Errorf("%w: job %q is not a ULID", ErrInvalid, jobID)
	}
	p := &prewarm{job: PrewarmJob{ID: jobID, Node: n.id.String(), State: "running", AllNodes: spec.AllNodes,
		Total: len(items), Started: time.Now().UTC()}}
	if spec.AllNodes {
		peerSpec := spec
		peerSpec.AllNodes, peerSpec.Job = false, jobID
		for _, peer := range n.peers(ulid.ULID{}) {
			var got PrewarmJob
			if err := n.cl.client.Peer(peer.PrivateAddr).CallJSON(ctx, "POST", cluster.PathPrewarm, peerSpec, &got); err != nil {
				if p.job.Nodes == nil {
					p.job.Nodes = map[string]string{}
				}
				p.job.Nodes[peer.ID.String()] = err.Error()
			}
		}
	}
	n.jobs.add(p)
	n.wg.Add(1)
	started = true
	go func() {
		defer n.wg.Done()
		defer n.jobs.end()
		n.runPrewarm(p, items)
	}()
	return p.snapshot(), nil
}

// prewarmItem is one object a pre-warm job loads: by ID, or by bucket and
// key.
type prewarmItem struct {
	id          ulid.ULID
	bucket, key string
}

func (it prewarmItem) String() string {
	if it.bucket != "" {
		return it.bucket + "/" + it.key
	}
	return it.id.String()
}

// prewarmItems resolves a spec to the objects to load.
func (n *Node) prewarmItems(ctx context.Context, spec PrewarmSpec) ([]prewarmItem, error) {
	byKey := spec.Bucket != "" || spec.Prefix != ""
	if byKey && (len(spec.IDs) > 0 || spec.From != "" || spec.To != "") {
		return nil, fmt.Errorf("%w: give ids, from and to, or bucket and prefix; not several", ErrInvalid)
	}
	if byKey {
		o, err := n.checkPrefix(spec.Bucket, spec.Prefix)
		if err != nil {
			return nil, err
		}
		keys, more, err := listUnder(ctx, o, spec.Bucket, spec.Prefix, maxPrewarmIDs)
		if err != nil {
			return nil, err
		}
		if more {
			return nil, fmt.Errorf("%w: the prefix holds more than %d keys; split it", ErrInvalid, maxPrewarmIDs)
		}
		items := make([]prewarmItem, len(keys))
		for i, k := range keys {
			items[i] = prewarmItem{id: journal.KeyID(spec.Bucket, k), bucket: spec.Bucket, key: k}
		}
		return items, nil
	}
	ids, err := n.prewarmIDs(spec)
	items := make([]prewarmItem, len(ids))
	for i, id := range ids {
		items[i] = prewarmItem{id: id}
	}
	return items, err
}

// prewarmIDs resolves a spec by IDs to the IDs to load.
func (n *Node) prewarmIDs(spec PrewarmSpec) ([]ulid.ULID, error) {
	switch {
	case len(spec.IDs) > 0 && (spec.From != "" || spec.To != ""):
		return nil, fmt.Errorf("%w: give either ids or from and to, not both", ErrInvalid)
	case len(spec.IDs) > maxPrewarmIDs:
		return nil, fmt.Errorf("%w: %d ids, the limit is %d", ErrInvalid, len(spec.IDs), maxPrewarmIDs)
	case len(spec.IDs) > 0:
		ids := make([]ulid.ULID, len(spec.IDs))
		for i, s := range spec.IDs {
			id, err := ulid.ParseStrict(s)
			if err != nil {
				return nil, fmt.Errorf("%w: %q is not a ULID", ErrInvalid, s)
			}
			ids[i] = id
		}
		return ids, nil
	case spec.From == "" || spec.To == "":
		return nil, fmt.Errorf(`%w: give "ids", "from" and "to" (ULIDs, inclusive: the objects created between their times), or "bucket" and "prefix"`, ErrInvalid)
	}
	from, err1 := ulid.ParseStrict(spec.From)
	to, err2 := ulid.ParseStrict(spec.To)
	if err1 != nil || err2 != nil || from.Compare(to) > 0 {
		return nil, fmt.Errorf("%w: from and to must be ULIDs with from <= to", ErrInvalid)
	}
	var ids []ulid.ULID
	errFull := errors.New("full")
	err := n.journal.View(func(tx *journal.Tx) error {
		return tx.ForEachHead(from, func(e journal.Entry) error {
			if e.ID.Compare(to) > 0 {
				return errStopWalk
			}
			if e.Deleted {
				return nil
			}
			if len(ids) == maxPrewarmIDs {
				return errFull
			}
			ids = append(ids, e.ID)
			return nil
		})
	})
	switch {
	case errors.Is(err, errFull):
		return nil, fmt.Errorf("%w: the range holds more than %d objects; split it", ErrInvalid, maxPrewarmIDs)
	case err != nil && !errors.Is(err, errStopWalk):
		return nil, fmt.Errorf("node: prewarm: %w", err)
	}
	return ids, nil
}

var errStopWalk = errors.New("stop")

// runPrewarm loads items with a few workers until done or the node closes.
func (n *Node) runPrewarm(p *prewarm, items []prewarmItem) {
	work := make(chan prewarmItem)
	var wg sync.WaitGroup
	for range prewarmWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				loaded, bytes, err := n.warm(it)
				p.mu.Lock()
				p.job.Done++
				switch {
				case err != nil:
					p.job.Failed++
					if len(p.job.Errors) < maxPrewarmErrors {
						p.job.Errors = append(p.job.Errors, it.String()+": "+err.Error())
					}
				case loaded:
					p.job.Loaded++
					p.job.Bytes += bytes
				default:
					p.job.Skipped++
				}
				p.mu.Unlock()
			}
		}()
	}
	state := "done"
feed:
	for _, it := range items {
		select {
		case work <- it:
		case <-n.ctx.Done():
			state = "canceled"
			break feed
		}
	}
	close(work)
	wg.Wait()
	now := time.Now().UTC()
	p.mu.Lock()
	p.job.State, p.job.Finished = state, &now
	p.mu.Unlock()
	n.log.Info("prewarm finished", "job", p.job.ID, "state", state, "loaded", p.job.Loaded, "skipped", p.job.Skipped, "failed", p.job.Failed)
}

// warm loads the body of it into this node unless it is here already, and
// reports whether it loaded it and how many bytes.
func (n *Node) warm(it prewarmItem) (bool, int64, error) {
	if it.bucket != "" {
		return n.warmKey(n.ctx, it.bucket, it.key)
	}
	id := it.id
	e, b, err := n.lookup(id)
	switch {
	case errors.Is(err, journal.ErrNotFound):
		return false, 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	case err != nil:
		return false, 0, err
	case e.Deleted || b != nil:
		return false, 0, nil
	}
	if n.heldSparse(id) {
		// Some parts are here already: only the others are fetched.
		got, err := n.fillSparse(n.ctx, e)
		return err == nil, got, err
	}
	if err := n.startFill(id, &e, true).wait(); err != nil {
		return false, 0, err
	}
	return true, e.Size, nil
}

// PrewarmStatus returns a job's progress; for a job on every node, with
// each live peer's progress.
func (n *Node) PrewarmStatus(ctx context.Context, job string, withPeers bool) (PrewarmJob, error) {
	p, ok := n.jobs.get(job)
	if !ok {
		return PrewarmJob{}, fmt.Errorf("%w: no pre-warm job %q on this node (jobs are kept in memory, the last %d)", ErrNotFound, job, maxPrewarmHistory)
	}
	j := p.snapshot()
	if !withPeers || !j.AllNodes {
		return j, nil
	}
	for _, peer := range n.peers(ulid.ULID{}) {
		var pj PrewarmJob
		if err := n.cl.client.Peer(peer.PrivateAddr).CallJSON(ctx, "GET", cluster.PathPrewarm+"/"+job, nil, &pj); err != nil {
			if j.Nodes == nil {
				j.Nodes = map[string]string{}
			}
			j.Nodes[peer.ID.String()] = err.Error()
			continue
		}
		j.Peers = append(j.Peers, pj)
	}
	return j, nil
}
