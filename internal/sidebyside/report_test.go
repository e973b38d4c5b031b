//go:build sidebyside

package sidebyside_test

import (
	"fmt"
	"image/color"
	"os"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// result is one figure of the run.
type result struct {
	kind   string // hit, cold, peer or put
	system string
	size   size
	rps    float64 // hit: requests per second
	bps    float64 // hit: body bytes per second
	timing timing  // cold, peer, put: the median
}

// mbps is the body throughput of r in MB/s.
func (r result) mbps() float64 {
	if r.kind == "hit" {
		return r.bps / 1e6
	}
	return float64(r.size.n) / 1e6 / r.timing.total.Seconds()
}

// rssOf is a process's peak resident set size.
type rssOf struct {
	what string
	peak int64
}

// report collects a run's results and writes them out.
type report struct {
	machine string
	seconds int
	results []result
	rss     []rssOf
}

func (r *report) add(res result) { r.results = append(r.results, res) }

// find returns the result of kind, system and size, if measured.
func (r *report) find(kind, system string, s size) (result, bool) {
	for _, res := range r.results {
		if res.kind == kind && res.system == system && res.size == s {
			return res, true
		}
	}
	return result{}, false
}

// Markers of the part of docs/benchmarks.md that the harness writes.
const (
	beginMark = "<!-- make bench: begin; written by internal/sidebyside, edits between the marks are lost -->"
	endMark   = "<!-- make bench: end -->"
)

// hitSystems and coldSystems are the columns of the tables, in order.
var (
	hitSystems  = []string{sysULID, sysKey, sysS3, sysNginx, sysCachenator, sysMinIO}
	coldSystems = []string{sysKey, sysS3, sysNginx, sysCachenator, sysMinIO}
)

// markdown renders the report as the docs section's body.
func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("%s\n\nOne run of `make bench` on %s: %s.\n\n", beginMark, time.Now().UTC().Format("2006-01-02"), r.machine)

	w("**Hits**, 16 connections, wrk on one thread, the median of %d runs of %d s each, the systems taking turns; the 1 KiB row in requests per second, the others in MB/s of body. The ratios are objstore's best ULID or key figure, and its S3 endpoint's, over nginx's and cachenator's (– where cachenator was not run).\n\n", hitRounds, r.seconds)
	w("| size |")
	for _, s := range hitSystems {
		w(" %s |", s)
	}
	w(" objstore ÷ nginx | S3 endpoint ÷ nginx | objstore ÷ cachenator |\n|---|")
	w("%s\n", strings.Repeat("--:|", len(hitSystems)+3))
	for _, s := range []size{kib1, kib64, mib1, mib256} {
		val := func(res result) float64 {
			if s == kib1 {
				return res.rps
			}
			return res.mbps()
		}
		w("| %s |", s.name)
		for _, sys := range hitSystems {
			if res, ok := r.find("hit", sys, s); ok {
				w(" %s |", num(val(res)))
			} else {
				w(" – |")
			}
		}
		best := 0.0
		for _, sys := range []string{sysULID, sysKey} {
			if res, ok := r.find("hit", sys, s); ok {
				best = max(best, val(res))
			}
		}
		ngx, _ := r.find("hit", sysNginx, s)
		s3, _ := r.find("hit", sysS3, s)
		w(" %s | %s |", ratio(best, val(ngx)), ratio(val(s3), val(ngx)))
		if cn, ok := r.find("hit", sysCachenator, s); ok {
			w(" %s |\n", ratio(best, val(cn)))
		} else {
			w(" – |\n")
		}
	}

	w("\n**Cold single GETs** of objects no cache holds yet (a fresh copy in MinIO for each GET), one client, the median of several: total time, and time to the first body byte in brackets, in ms. The ratios compare objstore's key reads with nginx's miss (total time) and with MinIO direct (first byte).\n\n")
	w("| size |")
	for _, s := range coldSystems {
		w(" %s |", s)
	}
	w(" objstore ÷ nginx, time | S3 endpoint ÷ nginx, time | objstore ÷ MinIO, first byte |\n|---|%s\n", strings.Repeat("--:|", len(coldSystems)+3))
	for _, s := range []size{kib1, mib1, mib256} {
		w("| %s |", s.name)
		for _, sys := range coldSystems {
			if res, ok := r.find("cold", sys, s); ok {
				w(" %s (%s) |", ms(res.timing.total), ms(res.timing.ttfb))
			} else {
				w(" – |")
			}
		}
		key, _ := r.find("cold", sysKey, s)
		s3, _ := r.find("cold", sysS3, s)
		ngx, _ := r.find("cold", sysNginx, s)
		mio, _ := r.find("cold", sysMinIO, s)
		w(" %s | %s | %s |\n", ratio(key.timing.total.Seconds(), ngx.timing.total.Seconds()),
			ratio(s3.timing.total.Seconds(), ngx.timing.total.Seconds()), ratio(key.timing.ttfb.Seconds(), mio.timing.ttfb.Seconds()))
	}

	peer, _ := r.find("peer", "from a peer", mib256)
	local, _ := r.find("peer", "local hit", mib256)
	w("\n**A read from a peer**, in a three-node cluster whose node measured runs on the server core and whose other two on the load generator's (other machines in a real cluster): 256 MiB that only another node holds (level 0), read through the node measured: %s ms, %s MB/s; the same object read again there, from its own disk: %s ms, %s MB/s; peer ÷ local throughput %s.\n\n",
		ms(peer.timing.total), num(peer.mbps()), ms(local.timing.total), num(local.mbps()), ratio(peer.mbps(), local.mbps()))

	puts := []string{sysMinIO, "objstore level 0", "objstore level 1", "objstore level 2", sysS3 + ", level 1"}
	w("**PUTs**, one client, the median of several: ms (MB/s). Levels 0 and 1 go to the node alone, level 2 to the cluster's node, and waits for the other two nodes' copies. The ratios are speeds over MinIO direct's.\n\n| size |")
	for _, p := range puts {
		w(" %s |", p)
	}
	w(" level 0 ÷ MinIO | level 1 ÷ MinIO | S3 endpoint ÷ MinIO |\n|---|%s\n", strings.Repeat("--:|", len(puts)+3))
	for _, s := range []size{mib1, mib64} {
		w("| %s |", s.name)
		for _, p := range puts {
			res, _ := r.find("put", p, s)
			w(" %s (%s) |", ms(res.timing.total), num(res.mbps()))
		}
		mio, _ := r.find("put", sysMinIO, s)
		l0, _ := r.find("put", "objstore level 0", s)
		l1, _ := r.find("put", "objstore level 1", s)
		s3, _ := r.find("put", sysS3+", level 1", s)
		w(" %s | %s | %s |\n", ratio(l0.mbps(), mio.mbps()), ratio(l1.mbps(), mio.mbps()), ratio(s3.mbps(), mio.mbps()))
	}

	w("\n**Peak memory** (VmHWM) over the whole run:")
	for i, p := range r.rss {
		sep := ","
		if i == len(r.rss)-1 {
			sep = "."
		}
		w(" %s %.0f MiB%s", p.what, float64(p.peak)/(1<<20), sep)
	}
	w("\n\n![objstore beside nginx proxy_cache, cachenator and MinIO direct](bench-sidebyside.png)\n\n%s\n", endMark)
	return b.String()
}

// num formats a figure with thousands separators and at most one decimal.
func num(v float64) string {
	if v >= 100 {
		s := fmt.Sprintf("%.0f", v)
		for i := len(s) - 3; i > 0; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		return s
	}
	return fmt.Sprintf("%.1f", v)
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string {
	v := d.Seconds() * 1e3
	if v >= 100 {
		return num(v)
	}
	return fmt.Sprintf("%.2g", v)
}

// ratio formats a/b, or – when either is missing.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// chart draws each system's speed relative to nginx proxy_cache's (hits
// by throughput, cold GETs by total time) as grouped bars, into a PNG.
// MinIO direct is drawn for hits only: on a cold read it is the origin
// every cache waits for, not a cache.
func (r *report) chart(path string) error {
	scenarios := []struct {
		label string
		kind  string
		s     size
	}{{"hit 1 KiB", "hit", kib1}, {"hit 64 KiB", "hit", kib64}, {"hit 1 MiB", "hit", mib1}, {"hit 256 MiB", "hit", mib256},
		{"cold 1 KiB", "cold", kib1}, {"cold 1 MiB", "cold", mib1}, {"cold 256 MiB", "cold", mib256}}
	systems := []string{sysKey, sysS3, sysCachenator, sysMinIO}
	p := plot.New()
	p.Title.Text = "Speed relative to nginx proxy_cache (1 = as fast; higher is faster)"
	p.Y.Label.Text = "× nginx"
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs = vg.Points(40)
	const width = 11
	var bars int
	for i, sys := range systems {
		vals := make(plotter.Values, len(scenarios))
		some := false
		for j, sc := range scenarios {
			res, ok := r.find(sc.kind, sys, sc.s)
			ngx, okn := r.find(sc.kind, sysNginx, sc.s)
			if !ok || !okn || sys == sysMinIO && sc.kind == "cold" {
				continue
			}
			some = true
			if sc.kind == "hit" {
				vals[j] = res.bps / ngx.bps
			} else {
				vals[j] = ngx.timing.total.Seconds() / res.timing.total.Seconds()
			}
		}
		if !some {
			continue
		}
		bc, err := plotter.NewBarChart(vals, vg.Points(width))
		if err != nil {
			return err
		}
		bc.LineStyle.Width = 0
		bc.Color = plotutil.Color(i)
		bc.Offset = vg.Points(float64(i-len(systems)/2)*width + width/2)
		p.Add(bc)
		p.Legend.Add(sys, bc)
		bars++
	}
	if bars == 0 {
		return fmt.Errorf("chart: nothing measured")
	}
	one := plotter.NewFunction(func(float64) float64 { return 1 })
	one.Color = color.Black
	one.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(one)
	labels := make([]string, len(scenarios))
	for i, sc := range scenarios {
		labels[i] = sc.label
	}
	p.NominalX(labels...)
	p.Y.Min = 0
	return p.Save(26*vg.Centimeter, 13*vg.Centimeter, path)
}

// writeSection puts md (which starts and ends with the marks) into the
// file at path in place of the marked section, or at its end when it has
// none.
func writeSection(path, md string) error { return writeMarked(path, md, beginMark, endMark) }

// writeMarked puts md, which starts with begin and ends with end, into the
// file at path in place of the section between those marks, or at its end
// when it has none.
func writeMarked(path, md, begin, end string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(b)
	if i := strings.Index(doc, begin); i >= 0 {
		j := strings.Index(doc[i:], end)
		if j < 0 {
			return fmt.Errorf("%s: %q without %q", path, begin, end)
		}
		doc = doc[:i] + md + strings.TrimPrefix(doc[i+j+len(end):], "\n")
	} else {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + md
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
