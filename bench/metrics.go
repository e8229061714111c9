package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// auditCounters are the sidecar's audit writer counters from its /metrics:
// how many group-commit transactions it ran, how long they took in total,
// and how many events they committed. Differences between two scrapes show
// how the audit behaved during one run (events per commit, commit time).
type auditCounters struct {
	commits       float64
	commitSeconds float64
	events        float64
}

// Metric names serve exports (cmd/kanbot-sidecar/serve.go).
const (
	metricCommitCount = "kanbot_sidecar_audit_commit_seconds_count"
	metricCommitSum   = "kanbot_sidecar_audit_commit_seconds_sum"
	metricEvents      = "kanbot_sidecar_audit_events_total"
)

// scrapeAudit reads the audit counters from adminURL/metrics (Prometheus
// text format). A missing metric is an error: the figures built on them
// would silently be zero.
func scrapeAudit(ctx context.Context, adminURL string) (auditCounters, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, adminURL+"/metrics", nil)
	if err != nil {
		return auditCounters{}, err
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return auditCounters{}, fmt.Errorf("scrape sidecar metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return auditCounters{}, fmt.Errorf("scrape sidecar metrics: status %d", resp.StatusCode)
	}
	found := map[string]*float64{}
	var c auditCounters
	want := map[string]*float64{metricCommitCount: &c.commits, metricCommitSum: &c.commitSeconds, metricEvents: &c.events}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if dst, wanted := want[name]; ok && wanted {
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				return auditCounters{}, fmt.Errorf("scrape sidecar metrics: %s: %q is not a number", name, value)
			}
			*dst = v
			found[name] = dst
		}
	}
	if err := sc.Err(); err != nil {
		return auditCounters{}, fmt.Errorf("scrape sidecar metrics: %w", err)
	}
	for name := range want {
		if found[name] == nil {
			return auditCounters{}, fmt.Errorf("scrape sidecar metrics: no %s", name)
		}
	}
	return c, nil
}

func (c auditCounters) sub(o auditCounters) auditCounters {
	return auditCounters{commits: c.commits - o.commits, commitSeconds: c.commitSeconds - o.commitSeconds, events: c.events - o.events}
}

func (c auditCounters) add(o auditCounters) auditCounters {
	return auditCounters{commits: c.commits + o.commits, commitSeconds: c.commitSeconds + o.commitSeconds, events: c.events + o.events}
}
