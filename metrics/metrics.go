// Package metrics exposes objstore's figures to Prometheus: the HTTP
// requests of every API, the time to a GET's first byte by where its body
// came from, the requests sent to S3 and the bytes read back, and, read
// from the node's own counters at each scrape, everything /api/v1/stats
// shows. The names follow Prometheus's conventions (objstore_ prefix, base
// units, _total for counters); docs/metrics.md lists them.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/objstore/objstore/node"
)

// latencyBuckets span a hit from memory (tens of microseconds) to a
// large transfer (a minute).
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Registry holds a node's metrics and serves them. A nil *Registry is
// valid and records nothing, so callers need not check for one.
type Registry struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	firstByte  *prometheus.HistogramVec
	s3Requests *prometheus.CounterVec
	s3Duration *prometheus.HistogramVec
	s3Read     prometheus.Counter
}

// New returns a Registry with the Go runtime's and the process's metrics
// and objstore_build_info for version.
func New(version string) *Registry {
	r := &Registry{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "objstore_http_requests_total",
			Help: "HTTP requests answered, by API (public, s3, private), route, method and status code.",
		}, []string{"api", "route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "objstore_http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its answer, by API, route and method.",
			Buckets: latencyBuckets,
		}, []string{"api", "route", "method"}),
		firstByte: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "objstore_first_byte_seconds",
			Help:    "Time from a GET's arrival to its first body byte, by where the body came from (memory, local, peer, remote).",
			Buckets: latencyBuckets,
		}, []string{"source"}),
		s3Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "objstore_s3_requests_total",
			Help: "Requests sent to S3 (the remote tier and origin buckets), retries included, by operation and outcome.",
		}, []string{"operation", "outcome"}),
		s3Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "objstore_s3_request_duration_seconds",
			Help:    "Time from sending an S3 request to its answer's headers, retries included, by operation.",
			Buckets: latencyBuckets,
		}, []string{"operation"}),
		s3Read: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "objstore_s3_read_bytes_total",
			Help: "Bytes of answer bodies read from S3: the egress the cache did not save.",
		}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "objstore_build_info",
		Help:        "Always 1; its version label is the running build's.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	r.reg.MustRegister(r.requests, r.duration, r.firstByte, r.s3Requests, r.s3Duration, r.s3Read, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves the metrics in Prometheus's text and protobuf formats.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		// A scrape that fails shows as a failed scrape, not as a page of
		// partial figures.
		ErrorHandling:       promhttp.HTTPErrorOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// Request records one answered HTTP request. route is the pattern that
// served it (a bounded set), never the path itself.
func (r *Registry) Request(api, route, method string, code int, elapsed time.Duration) {
	if r == nil {
		return
	}
	r.requests.WithLabelValues(api, route, method, codeLabel(code)).Inc()
	r.duration.WithLabelValues(api, route, method).Observe(elapsed.Seconds())
}

// codeLabel spells a status code without allocating for the usual ones.
func codeLabel(code int) string {
	switch code {
	case 200:
		return "200"
	case 204:
		return "204"
	case 206:
		return "206"
	case 304:
		return "304"
	case 404:
		return "404"
	}
	return strconv.Itoa(code)
}

// FirstByte records the time from a GET's arrival to its first body byte,
// by the body's source.
func (r *Registry) FirstByte(source string, elapsed time.Duration) {
	if r == nil {
		return
	}
	r.firstByte.WithLabelValues(source).Observe(elapsed.Seconds())
}

// S3 returns the observer of the requests sent to S3, for
// s3remote.Config.Observer (whose interface it implements; this package
// does not import storage). A nil Registry's records nothing.
func (r *Registry) S3() *S3Observer { return &S3Observer{r} }

// S3Observer records the requests sent to S3 and the bytes read back.
type S3Observer struct{ r *Registry }

// Request records one S3 operation, retries included, by its outcome.
func (o *S3Observer) Request(operation, outcome string, elapsed time.Duration) {
	if o.r == nil {
		return
	}
	o.r.s3Requests.WithLabelValues(operation, outcome).Inc()
	o.r.s3Duration.WithLabelValues(operation).Observe(elapsed.Seconds())
}

// BodyRead records n bytes of answer bodies read from S3.
func (o *S3Observer) BodyRead(n int) {
	if o.r == nil {
		return
	}
	o.r.s3Read.Add(float64(n))
}

// WatchNode makes every scrape read the node's figures from stats, the
// same counters /api/v1/stats shows.
func (r *Registry) WatchNode(stats func(context.Context) (node.Stats, error)) {
	r.reg.MustRegister(&nodeCollector{stats: stats})
}
