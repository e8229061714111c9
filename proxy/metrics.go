package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's Prometheus metrics (DESIGN.md, "Admin
// listener"). The caller owns the registry: cmd makes one with
// prometheus.NewRegistry and passes it to NewMetrics. Safe for concurrent
// use.
type Metrics struct {
	requests        *prometheus.CounterVec
	refusals        *prometheus.CounterVec
	rateLimited     *prometheus.CounterVec
	upstreamLatency prometheus.Histogram
	reloads         *prometheus.CounterVec
}

// NewMetrics creates the proxy's metrics and registers them with reg.
// Profile labels only ever hold configured profile names (unknown names an
// agent sends are reported as ""), so an agent cannot grow the label set.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kanbot_sidecar_requests_total",
			Help: "Requests by profile and outcome (forwarded, rejected, upstream_error, client_aborted).",
		}, []string{"profile", "outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kanbot_sidecar_refusals_total",
			Help: "Requests refused by the sidecar, by refusal code.",
		}, []string{"code"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kanbot_sidecar_rate_limited_total",
			Help: "Requests refused by a profile's token bucket.",
		}, []string{"profile"}),
		upstreamLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kanbot_sidecar_upstream_latency_seconds",
			Help:    "Time from sending a request upstream to its response headers.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kanbot_sidecar_reloads_total",
			Help: "Profile reloads by result (ok, failed).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.refusals, m.rateLimited, m.upstreamLatency, m.reloads} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observeRefusal(profile, code string) {
	m.refusals.WithLabelValues(code).Inc()
	m.requests.WithLabelValues(profile, "rejected").Inc()
}
