package main_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/objstore/objstore/internal/testnode"
)

// scrape reads a node's metrics from url as Prometheus would, failing
// the test when they are not valid exposition text.
func scrape(t *testing.T, url string, hdr map[string]string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return fams
}

// metric returns the value of the series of family name whose labels
// include want ("k=v" pairs): a counter's or gauge's value, a histogram's
// count. -1 when there is no such series.
func metric(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// The metrics count a node's traffic by route, status and source, the S3
// requests it makes and the bytes it reads back, and agree with
// /api/v1/stats, whose figures come from the same counters.
func TestMetricsCountTrafficAndS3Requests(t *testing.T) {
	n, _, _ := s3Node(t)
	body := strings.Repeat("metered ", 4096) // 32 KiB
	id := ulid.Make().String()
	mustPut(t, n, id, 1, "m.txt", body)
	for range 2 {
		if resp, got := get(t, n, id, nil); resp.StatusCode != 200 || got != body {
			t.Fatalf("local GET: %d", resp.StatusCode)
		}
	}
	// Dropping the local copy makes the next read a fetch from S3.
	if resp, b, _ := n.Do(testnode.Request{Method: "POST", Path: "/api/v1/invalidate/" + id}); resp.StatusCode != 200 {
		t.Fatalf("invalidate: %d %s", resp.StatusCode, b)
	}
	if resp, got := get(t, n, id, nil); resp.StatusCode != 200 || got != body || resp.Header.Get("X-Meta-Source") != "remote" {
		t.Fatalf("GET after invalidate: %d from %q", resp.StatusCode, resp.Header.Get("X-Meta-Source"))
	}
	if resp, _ := get(t, n, ulid.Make().String(), nil); resp.StatusCode != 404 {
		t.Fatalf("GET of an unknown ID: %d", resp.StatusCode)
	}

	fams := scrape(t, n.URL+"/metrics", nil)
	checks := []struct {
		name   string
		labels []string
		min    float64
	}{
		{"objstore_http_requests_total", []string{"api=public", "route=/api/v1/get/{id}", "method=GET", "code=200"}, 3},
		{"objstore_http_requests_total", []string{"api=public", "route=/api/v1/get/{id}", "code=404"}, 1},
		{"objstore_http_requests_total", []string{"api=public", "route=/api/v1/put", "method=POST", "code=200"}, 1},
		{"objstore_http_request_duration_seconds", []string{"route=/api/v1/get/{id}"}, 4},
		{"objstore_first_byte_seconds", []string{"source=remote"}, 1},
		{"objstore_hits_total", []string{"source=local"}, 2},
		{"objstore_hits_total", []string{"source=remote"}, 1},
		{"objstore_misses_total", nil, 1},
		{"objstore_s3_requests_total", []string{"operation=PutObject", "outcome=ok"}, 1},
		{"objstore_s3_requests_total", []string{"operation=GetObject", "outcome=ok"}, 1},
		{"objstore_s3_request_duration_seconds", []string{"operation=GetObject"}, 1},
		{"objstore_s3_read_bytes_total", nil, float64(len(body))},
		{"objstore_served_bytes_total", []string{"source=remote"}, float64(len(body))},
		{"objstore_cluster_members", []string{"state=alive"}, 1},
		{"objstore_objects", nil, 1},
		{"objstore_build_info", nil, 1},
		{"go_goroutines", nil, 1},
		{"process_resident_memory_bytes", nil, 1},
	}
	for _, c := range checks {
		if v := metric(fams, c.name, c.labels...); v < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, v, c.min)
		}
	}
	if v := metric(fams, "objstore_first_byte_seconds", "source=memory") + metric(fams, "objstore_first_byte_seconds", "source=local"); v < 1 {
		t.Errorf("no first-byte time of a local read (memory or disk): %v", v)
	}

	// The same counters as /api/v1/stats: read both with no traffic
	// between them.
	resp, b, err := n.Do(testnode.Request{Path: "/api/v1/stats"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stats: %v %d", err, resp.StatusCode)
	}
	var st struct {
		Traffic map[string]float64 `json:"traffic"`
		Journal map[string]float64 `json:"journal"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, n.URL+"/metrics", nil)
	same := map[string]float64{
		"hits_local":     metric(fams, "objstore_hits_total", "source=local"),
		"hits_remote":    metric(fams, "objstore_hits_total", "source=remote"),
		"hits_memory":    metric(fams, "objstore_memory_hits_total"),
		"misses":         metric(fams, "objstore_misses_total"),
		"bytes_local":    metric(fams, "objstore_served_bytes_total", "source=local"),
		"bytes_remote":   metric(fams, "objstore_served_bytes_total", "source=remote"),
		"puts":           metric(fams, "objstore_puts_total"),
		"fetches":        metric(fams, "objstore_fetches_total"),
		"remote_gets":    metric(fams, "objstore_remote_gets_total"),
		"remote_uploads": metric(fams, "objstore_remote_uploads_total"),
	}
	for k, v := range same {
		if st.Traffic[k] != v {
			t.Errorf("stats traffic.%s = %v, metrics %v", k, st.Traffic[k], v)
		}
	}
	if st.Journal["objects"] != metric(fams, "objstore_objects") {
		t.Errorf("stats journal.objects = %v, metrics %v", st.Journal["objects"], metric(fams, "objstore_objects"))
	}
}

// With --metrics-addr the metrics leave the public port for a listener of
// their own; without it they are on the public port, behind the read scope
// when access keys are configured.
func TestMetricsListener(t *testing.T) {
	addr := testnode.FreeAddr(t)
	n := testnode.Start(t, testnode.Options{Args: []string{"--metrics-addr", addr}})
	if resp, _, err := n.Do(testnode.Request{Path: "/metrics"}); err != nil || resp.StatusCode != 404 {
		t.Errorf("/metrics on the public port with --metrics-addr: %v %v, want 404", err, resp.StatusCode)
	}
	if v := metric(scrape(t, "http://"+addr+"/metrics", nil), "objstore_build_info"); v != 1 {
		t.Errorf("objstore_build_info on --metrics-addr = %v", v)
	}

	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(creds, []byte("reader reader-secret-0123456789 read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k := testnode.Start(t, testnode.Options{Args: []string{"--credentials-file", creds}})
	if resp, _, err := k.Do(testnode.Request{Path: "/metrics"}); err != nil || resp.StatusCode != 401 {
		t.Errorf("/metrics without a key: %v %v, want 401", err, resp.StatusCode)
	}
	basic := map[string]string{"Authorization": "Basic " + basicAuth("reader", "reader-secret-0123456789")}
	if v := metric(scrape(t, k.URL+"/metrics", basic), "objstore_http_requests_total", "route=/metrics", "code=401"); v != 1 {
		t.Errorf("the refused scrape counted %v times, want 1", v)
	}
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}
