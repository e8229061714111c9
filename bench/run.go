package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// run is the whole harness; main and the smoke test call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	bin, err := sidecarBinary(o.sidecarBin)
	if err != nil {
		return err
	}
	dir := o.workDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "kanbot-bench-"); err != nil {
			return err
		}
		defer func() {
			if err == nil {
				os.RemoveAll(dir)
			} else {
				fmt.Fprintf(stderr, "bench: logs and databases kept in %s\n", dir)
			}
		}()
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }

	began := time.Now()
	r := &report{StartupMS: map[string]float64{}, StartupRSSKiB: map[string]int64{}}
	r.Machine = describeMachine()
	r.Settings = settings{
		Requests: o.requests, Warmup: o.warmup, Rounds: o.rounds, Concurrency: o.concurrency,
		StartupSizes: o.startupSizes, StartupRepeats: o.startupRepeats, BodyBytes: upstreamBodySize,
	}
	if v, err := sidecarCLI(ctx, bin, dir, "", "version"); err == nil {
		r.Settings.SidecarVersion = strings.TrimSpace(v)
	}

	key := "kb_bench_" + randomHex(16)
	up, upAddr, err := startUpstream(ctx, key, filepath.Join(dir, "upstream.log"))
	if err != nil {
		return err
	}
	defer up.stop()
	upURL := "http://" + upAddr

	// The sidecar, set up as a user would.
	home := filepath.Join(dir, "home")
	if err := makeSidecarHome(ctx, bin, home, upURL, key); err != nil {
		return err
	}
	sc, err := startSidecar(ctx, bin, home, upURL, filepath.Join(dir, "sidecar.log"))
	if err != nil {
		return err
	}
	defer func() {
		if sc.running() {
			sc.stop()
		}
	}()
	idle, err := readMem(sc.pid())
	if err != nil {
		return err
	}
	r.SidecarRSSIdleKiB = idle.RSSKiB
	r.SidecarRSSIdleAnonKiB, r.SidecarRSSIdleFileKiB = idle.RSSAnonKiB, idle.RSSFileKiB
	logf("upstream %s, sidecar %s (ready in %v, RSS %s)", upURL, sc.url, sc.startup.Round(time.Millisecond), kib(idle.RSSKiB))

	const path = "/api/v1/bench"
	targets := []target{
		{name: "direct", url: upURL + path, header: map[string][]string{injectHeader: {key}}},
		{name: "sidecar", url: sc.url + path, header: map[string][]string{"X-Kanbot-Profile": {benchProfile}}, pid: sc.pid(), adminURL: sc.adminURL},
	}
	na, naURL, err := startNoAudit(ctx, home, upURL, filepath.Join(dir, "sidecar-noaudit.log"), o.cpuProfile)
	if err != nil {
		return err
	}
	defer na.stop()
	targets = append(targets, target{name: roleNoAudit, url: naURL + path, header: map[string][]string{"X-Kanbot-Profile": {benchProfile}}, pid: na.pid()})
	r.Notes = append(r.Notes, "sidecar-noaudit is the same proxy package wired as serve wires it, with an audit Recorder that discards events, run by the harness in its own process: the product has no switch to turn the audit off.")
	maxConc := 0
	for _, c := range o.concurrency {
		maxConc = max(maxConc, c)
	}
	ng, ngURL, err := startNginx(ctx, dir, upAddr, key, maxConc)
	switch {
	case err != nil:
		return err
	case ng == nil:
		r.Machine.NginxStatus = "not installed"
		logf("nginx is not installed: the nginx baseline row is left out (the harness never installs it)")
		r.Notes = append(r.Notes, "nginx is not installed on this machine, so the nginx baseline row is left out (the harness never installs it).")
	default:
		defer ng.stop()
		r.Machine.NginxStatus = "measured"
		targets = append(targets, target{name: "nginx", url: ngURL + path})
	}

	// Load phase.
	sampler := startRSSSampler(sc.pid(), 50*time.Millisecond)
	lp, err := loadPhase(ctx, o, targets, up.pid(), logf)
	peak, serr := sampler.Stop()
	if err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	r.SidecarRSSLoadKiB = peak
	if m, err := readMem(sc.pid()); err == nil {
		r.SidecarRSSLoadHWMKiB = m.HWMKiB
	}
	r.Targets, r.Overhead = summarize(o, targets, lp)

	// What the sidecar's audit wrote while serving, once it has shut down
	// and flushed.
	if err := sc.stop(); err != nil {
		return err
	}
	if err := measureAuditDisk(ctx, filepath.Join(home, "audit.db"), &r.Audit); err != nil {
		return err
	}
	r.AuditBytesPerEvent = round2(float64(r.Audit.LoadBytes) / float64(r.Audit.LoadEvents))
	if s := lp.serveTime["sidecar"]; s > 0 {
		r.Audit.LoadEventsPerSecServe = round2(float64(r.Audit.LoadEvents) / s.Seconds())
	}
	logf("audit: %d events, %d bytes on disk: %.0f bytes/event", r.Audit.LoadEvents, r.Audit.LoadBytes, r.AuditBytesPerEvent)

	// The audit writer's own capacity.
	eps, err := measureAuditWriter(ctx, filepath.Join(dir, "writer"), o.auditEvents, o.auditWriters, &r.Audit)
	if err != nil {
		return err
	}
	r.AuditEventsPerSec = round2(eps)
	r.Audit.Method = fmt.Sprintf("events/s: auditdb's group-commit writer in-process (sidecar defaults), %d goroutines calling Record (which returns once committed) for %d events; "+
		"bytes/event: size of the sidecar's audit.db (+ -wal, -shm) after the load phase, once it stopped and the WAL was checkpointed, divided by count(*) of events",
		o.auditWriters, o.auditEvents)
	logf("audit writer: %.0f events/s (%d events, %d concurrent recorders)", eps, o.auditEvents, o.auditWriters)

	// Start-up with many profiles.
	for _, n := range o.startupSizes {
		ms, rss, err := measureStartup(ctx, bin, filepath.Join(dir, "startup-"+strconv.Itoa(n)), n, o.startupRepeats, upURL)
		if err != nil {
			return err
		}
		r.StartupMS[strconv.Itoa(n)] = round2(ms)
		r.StartupRSSKiB[strconv.Itoa(n)] = rss
		logf("start-up with %d profiles: %.0f ms, RSS %s", n, ms, kib(rss))
	}

	r.Goals = judgeGoals(r)
	r.Machine.LoadAvg = append(r.Machine.LoadAvg, loadAvg())
	r.Settings.DurationSec = round2(time.Since(began).Seconds())

	markdown(stdout, r)
	if o.out != "" {
		if err := writeReportJSON(o.out, r); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	if o.markdown != "" {
		f, err := os.Create(o.markdown)
		if err != nil {
			return err
		}
		markdown(f, r)
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// loadResults holds every measured run of the load phase.
type loadResults struct {
	// runs[name][conc] has one result per round, in round order.
	runs map[string]map[int][]loadResult
	// cpu[name][conc][process] is CPU time summed over the rounds, and
	// sent[name][conc] the requests (warm-up included) it was spent on.
	cpu  map[string]map[int]map[string]time.Duration
	sent map[string]map[int]int
	// audit[name][conc] sums the sidecar's audit counters over the rounds
	// (targets with an admin URL only).
	audit map[string]map[int]auditCounters
	// serveTime is the wall time each target spent serving (warm-up included).
	serveTime map[string]time.Duration
}

// loadPhase runs every target at every concurrency in every round. Inside a
// round, all targets run back to back at one concurrency before the next
// concurrency, and the order of targets rotates from round to round, so
// drift (other processes, thermal, caches) hits all targets alike and the
// per-round ratios compare like with like.
func loadPhase(ctx context.Context, o options, targets []target, upstreamPID int, logf func(string, ...any)) (loadResults, error) {
	lr := loadResults{
		runs:      map[string]map[int][]loadResult{},
		cpu:       map[string]map[int]map[string]time.Duration{},
		sent:      map[string]map[int]int{},
		audit:     map[string]map[int]auditCounters{},
		serveTime: map[string]time.Duration{},
	}
	for _, t := range targets {
		lr.runs[t.name] = map[int][]loadResult{}
		lr.cpu[t.name] = map[int]map[string]time.Duration{}
		lr.sent[t.name] = map[int]int{}
		lr.audit[t.name] = map[int]auditCounters{}
		for _, c := range o.concurrency {
			lr.cpu[t.name][c] = map[string]time.Duration{}
		}
	}
	for round := range o.rounds {
		for _, c := range o.concurrency {
			for i := range targets {
				t := targets[(i+round)%len(targets)]
				procs := map[string]int{"upstream": upstreamPID}
				if t.pid != 0 {
					procs[t.name] = t.pid
				}
				var auditBefore auditCounters
				if t.adminURL != "" {
					a, err := scrapeAudit(ctx, t.adminURL)
					if err != nil {
						return lr, err
					}
					auditBefore = a
				}
				before, err := cpuTimes(procs)
				if err != nil {
					return lr, err
				}
				res, err := drive(ctx, t, c, o.warmup, o.requests)
				if err != nil {
					return lr, fmt.Errorf("round %d: %w", round+1, err)
				}
				after, err := cpuTimes(procs)
				if err != nil {
					return lr, err
				}
				if t.adminURL != "" {
					// The last response events are committed just after the
					// last response; they belong to this run all the same.
					auditAfter, err := settledAudit(ctx, t.adminURL, auditBefore.events+2*float64(o.warmup+o.requests))
					if err != nil {
						return lr, err
					}
					lr.audit[t.name][c] = lr.audit[t.name][c].add(auditAfter.sub(auditBefore))
				}
				for p := range after {
					lr.cpu[t.name][c][p] += after[p] - before[p]
				}
				lr.sent[t.name][c] += o.warmup + o.requests
				lr.runs[t.name][c] = append(lr.runs[t.name][c], res)
				lr.serveTime[t.name] += res.total
				logf("round %d/%d c=%-3d %-15s %8.0f req/s  p50 %6.0f µs  p99 %6.0f µs",
					round+1, o.rounds, c, t.name, res.rps(), us(percentile(res.sorted, .5)), us(percentile(res.sorted, .99)))
			}
		}
	}
	return lr, nil
}

// cpuTimes reads the CPU time of each named process, and of the load
// generator itself under "loadgen".
func cpuTimes(procs map[string]int) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for name, pid := range procs {
		d, err := readCPU(pid)
		if err != nil {
			return nil, err
		}
		out[name] = d
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return nil, fmt.Errorf("getrusage: %w", err)
	}
	out["loadgen"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return out, nil
}

// summarize turns the runs into the table rows (medians over rounds) and the
// overhead rows (per-round differences and ratios to direct, then medians).
func summarize(o options, targets []target, lr loadResults) ([]targetRow, []overheadRow) {
	var rows []targetRow
	var over []overheadRow
	for _, t := range targets {
		for _, c := range o.concurrency {
			runs := lr.runs[t.name][c]
			var rps, p50, p90, p99 []float64
			for _, res := range runs {
				rps = append(rps, res.rps())
				p50 = append(p50, us(percentile(res.sorted, .50)))
				p90 = append(p90, us(percentile(res.sorted, .90)))
				p99 = append(p99, us(percentile(res.sorted, .99)))
			}
			cpu := map[string]float64{}
			for p, d := range lr.cpu[t.name][c] {
				cpu[p] = round2(us(d) / float64(lr.sent[t.name][c]))
			}
			row := targetRow{
				Name: t.name, Concurrency: c, Rounds: len(runs),
				RPS: round2(median(rps)), P50US: round2(median(p50)), P90US: round2(median(p90)), P99US: round2(median(p99)),
				CPUUSPerReq: cpu,
			}
			if a := lr.audit[t.name][c]; a.commits > 0 {
				row.AuditCommitsPerReq = round2(a.commits / float64(lr.sent[t.name][c]))
				row.AuditEventsPerCommit = round2(a.events / a.commits)
				row.AuditCommitMeanUS = round2(a.commitSeconds / a.commits * 1e6)
			}
			rows = append(rows, row)
			if t.name == "direct" {
				continue
			}
			direct := lr.runs["direct"][c]
			var a50, a90, a99, ratio []float64
			for i, res := range runs {
				d := direct[i]
				a50 = append(a50, us(percentile(res.sorted, .50)-percentile(d.sorted, .50)))
				a90 = append(a90, us(percentile(res.sorted, .90)-percentile(d.sorted, .90)))
				a99 = append(a99, us(percentile(res.sorted, .99)-percentile(d.sorted, .99)))
				ratio = append(ratio, res.rps()/d.rps())
			}
			over = append(over, overheadRow{
				Name: t.name, Concurrency: c,
				AddedP50US: round2(median(a50)), AddedP90US: round2(median(a90)), AddedP99US: round2(median(a99)),
				RPSRatio: round2(median(ratio)*100) / 100,
			})
		}
	}
	return rows, over
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// settledAudit scrapes the audit counters until at least wantEvents events
// are counted (the response events of a run's last requests are committed
// just after their responses) or the count has not moved for 50 ms, for at
// most 5 s.
func settledAudit(ctx context.Context, adminURL string, wantEvents float64) (auditCounters, error) {
	deadline := time.Now().Add(5 * time.Second)
	var last auditCounters
	still := 0
	for {
		c, err := scrapeAudit(ctx, adminURL)
		if err != nil || c.events >= wantEvents || time.Now().After(deadline) {
			return c, err
		}
		if c.events == last.events {
			if still++; still >= 5 {
				return c, nil
			}
		} else {
			still = 0
		}
		last = c
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
