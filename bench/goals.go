package main

import "fmt"

// judgeGoals sets each goal of issue 7 (and the stricter targets of
// PERFORMANCE.md) against this run's figures. The goals are reported, not
// enforced: a missed goal is a finding, not a failed run.
func judgeGoals(r *report) []goal {
	find := func(name string, conc int) (overheadRow, bool) {
		for _, o := range r.Overhead {
			if o.Name == name && o.Concurrency == conc {
				return o, true
			}
		}
		return overheadRow{}, false
	}
	yes := func(b bool) *bool { return &b }
	var gs []goal
	if o, ok := find("sidecar", 1); ok {
		gs = append(gs,
			goal{"added p50, concurrency 1", "≤ 100 µs (PERFORMANCE.md: ≤ 150 µs)", fmt.Sprintf("%.0f µs", o.AddedP50US), yes(o.AddedP50US <= 100)},
			goal{"added p99, concurrency 1", "≤ 500 µs (PERFORMANCE.md: ≤ 1 ms)", fmt.Sprintf("%.0f µs", o.AddedP99US), yes(o.AddedP99US <= 500)},
		)
	}
	maxConc := 0
	for _, o := range r.Overhead {
		maxConc = max(maxConc, o.Concurrency)
	}
	if o, ok := find("sidecar", maxConc); ok {
		want := fmt.Sprintf("≥ nginx/direct at concurrency %d", maxConc)
		g := goal{"sidecar/direct req/s", want, fmt.Sprintf("%.2f", o.RPSRatio), nil}
		if n, ok := find("nginx", maxConc); ok {
			g.Measured += fmt.Sprintf(" (nginx %.2f)", n.RPSRatio)
			g.Met = yes(o.RPSRatio >= n.RPSRatio)
		} else {
			g.Measured += " (nginx not measured)"
		}
		gs = append(gs, g,
			goal{"sidecar/direct req/s (PERFORMANCE.md)", fmt.Sprintf("≥ 0.25 at concurrency %d", maxConc), fmt.Sprintf("%.2f", o.RPSRatio), yes(o.RPSRatio >= 0.25)})
	}
	gs = append(gs,
		goal{"audit writer", "≥ 100,000 events/s", fmt.Sprintf("%.0f events/s", r.AuditEventsPerSec), yes(r.AuditEventsPerSec >= 100000)},
		goal{"audit size", "≤ 200 bytes/event", fmt.Sprintf("%.0f bytes/event", r.AuditBytesPerEvent), yes(r.AuditBytesPerEvent <= 200)},
		goal{"RSS idle", "≤ 25 MiB (PERFORMANCE.md: ≤ 15 MiB)", kib(r.SidecarRSSIdleKiB), yes(r.SidecarRSSIdleKiB <= 25*1024)},
	)
	if ms, ok := r.StartupMS["10000"]; ok {
		gs = append(gs, goal{"start-up, 10,000 profiles", "< 1 s", fmt.Sprintf("%.0f ms", ms), yes(ms < 1000)})
	}
	return gs
}
