package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// report is bench/results/latest.json. The first fields are the shape issue
// 7 asks for; the rest add what a reader needs to trust and explain them.
type report struct {
	Targets            []targetRow        `json:"targets"`
	SidecarRSSIdleKiB  int64              `json:"sidecar_rss_idle_kib"`
	SidecarRSSLoadKiB  int64              `json:"sidecar_rss_load_kib"`
	AuditEventsPerSec  float64            `json:"audit_events_per_sec"`
	AuditBytesPerEvent float64            `json:"audit_bytes_per_event"`
	StartupMS          map[string]float64 `json:"startup_ms"`

	// StartupRSSKiB is the sidecar's VmRSS once ready, per profile count.
	StartupRSSKiB map[string]int64 `json:"startup_rss_kib"`
	// Overhead compares each proxy with the direct connection: values are
	// computed per round, then the median is taken.
	Overhead []overheadRow `json:"overhead"`
	// SidecarRSSLoadHWMKiB is VmHWM at the end of the load phase (peak since
	// start), next to the sampled peak in SidecarRSSLoadKiB.
	SidecarRSSLoadHWMKiB int64 `json:"sidecar_rss_load_hwm_kib"`
	// SidecarRSSIdleAnonKiB and SidecarRSSIdleFileKiB split the idle RSS
	// into anonymous memory and mapped files (the binary's code).
	SidecarRSSIdleAnonKiB int64       `json:"sidecar_rss_idle_anon_kib"`
	SidecarRSSIdleFileKiB int64       `json:"sidecar_rss_idle_file_kib"`
	Audit                 auditDetail `json:"audit"`
	Goals                 []goal      `json:"goals"`
	Settings              settings    `json:"settings"`
	Machine               machineInfo `json:"machine"`
	Notes                 []string    `json:"notes"`
}

// targetRow is one target at one concurrency: medians over the rounds.
type targetRow struct {
	Name        string  `json:"name"`
	Concurrency int     `json:"concurrency"`
	RPS         float64 `json:"rps"`
	P50US       float64 `json:"p50_us"`
	P90US       float64 `json:"p90_us"`
	P99US       float64 `json:"p99_us"`
	Rounds      int     `json:"rounds"`
	// CPU time per request (all rounds, warm-up included) of each process
	// involved, in microseconds: where the machine's two cores went.
	CPUUSPerReq map[string]float64 `json:"cpu_us_per_req"`
	// The sidecar's audit writer during these runs, from its /metrics:
	// group commits per request, events per commit and the mean time of
	// one commit (BEGIN to COMMIT). Zero for targets without an audit.
	AuditCommitsPerReq   float64 `json:"audit_commits_per_req,omitempty"`
	AuditEventsPerCommit float64 `json:"audit_events_per_commit,omitempty"`
	AuditCommitMeanUS    float64 `json:"audit_commit_mean_us,omitempty"`
}

// overheadRow is a proxy's cost over direct at one concurrency.
type overheadRow struct {
	Name        string  `json:"name"`
	Concurrency int     `json:"concurrency"`
	AddedP50US  float64 `json:"added_p50_us"`
	AddedP90US  float64 `json:"added_p90_us"`
	AddedP99US  float64 `json:"added_p99_us"`
	RPSRatio    float64 `json:"rps_ratio"` // target rps ÷ direct rps
}

// auditDetail explains the two audit figures.
type auditDetail struct {
	// Writer phase: auditdb's group-commit writer driven in-process.
	WriterEvents    int     `json:"writer_events"`
	WriterRecorders int     `json:"writer_concurrency"`
	WriterSeconds   float64 `json:"writer_seconds"`
	WriterCommits   int64   `json:"writer_commits"`
	// Load phase: what the sidecar wrote while serving the benchmark.
	LoadEvents            int64   `json:"load_events"`
	LoadBytes             int64   `json:"load_db_bytes"`
	LoadBytesBeforeCkpt   int64   `json:"load_db_bytes_before_checkpoint"`
	LoadEventsPerSecServe float64 `json:"load_events_per_sec_while_serving"`
	Method                string  `json:"method"`
}

// goal is one goal of issue 7 (or PERFORMANCE.md) against its measurement.
type goal struct {
	Name     string `json:"name"`
	Want     string `json:"want"`
	Measured string `json:"measured"`
	Met      *bool  `json:"met"` // nil: could not be judged in this run
}

// settings records how the run was made, so it can be reproduced.
type settings struct {
	Requests       int     `json:"requests"`
	Warmup         int     `json:"warmup"`
	Rounds         int     `json:"rounds"`
	Concurrency    []int   `json:"concurrency"`
	StartupSizes   []int   `json:"startup_profiles"`
	StartupRepeats int     `json:"startup_repeats"`
	BodyBytes      int     `json:"upstream_body_bytes"`
	SidecarVersion string  `json:"sidecar_version"`
	DurationSec    float64 `json:"duration_sec"`
}

// machineInfo identifies the machine and its load.
type machineInfo struct {
	Date        string   `json:"date"`
	GoVersion   string   `json:"go_version"`
	OS          string   `json:"os"`
	Kernel      string   `json:"kernel"`
	CPU         string   `json:"cpu"`
	NumCPU      int      `json:"num_cpu"`
	LoadAvg     []string `json:"loadavg_start_end"`
	NginxStatus string   `json:"nginx"`
}

// writeReportJSON writes r to path (creating its directory).
func writeReportJSON(path string, r *report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// markdown renders the report as the tables printed at the end of a run and
// pasted into README.md.
func markdown(w io.Writer, r *report) {
	over := map[string]overheadRow{}
	for _, o := range r.Overhead {
		over[o.Name+"/"+strconv.Itoa(o.Concurrency)] = o
	}
	fmt.Fprintf(w, "| target | conc. | req/s | p50 µs | p90 µs | p99 µs | added p50 µs | added p99 µs | req/s ÷ direct |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range r.Targets {
		added50, added99, ratio := "", "", ""
		if o, ok := over[t.Name+"/"+strconv.Itoa(t.Concurrency)]; ok {
			added50 = fmt.Sprintf("%+.0f", o.AddedP50US)
			added99 = fmt.Sprintf("%+.0f", o.AddedP99US)
			ratio = fmt.Sprintf("%.2f", o.RPSRatio)
		}
		fmt.Fprintf(w, "| %s | %d | %.0f | %.0f | %.0f | %.0f | %s | %s | %s |\n",
			t.Name, t.Concurrency, t.RPS, t.P50US, t.P90US, t.P99US, added50, added99, ratio)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| target | conc. | CPU µs/request: load generator | upstream | proxy | audit commits/request | events/commit | mean commit µs |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range r.Targets {
		proxyCPU, commits, perCommit, commitUS := "", "", "", ""
		if v, ok := t.CPUUSPerReq[t.Name]; ok {
			proxyCPU = fmt.Sprintf("%.0f", v)
		}
		if t.AuditCommitsPerReq > 0 {
			commits = fmt.Sprintf("%.2f", t.AuditCommitsPerReq)
			perCommit = fmt.Sprintf("%.1f", t.AuditEventsPerCommit)
			commitUS = fmt.Sprintf("%.0f", t.AuditCommitMeanUS)
		}
		fmt.Fprintf(w, "| %s | %d | %.0f | %.0f | %s | %s | %s | %s |\n",
			t.Name, t.Concurrency, t.CPUUSPerReq["loadgen"], t.CPUUSPerReq["upstream"], proxyCPU, commits, perCommit, commitUS)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| sidecar figure | value |\n|---|---:|\n")
	fmt.Fprintf(w, "| RSS idle (1 profile) | %s (%s anonymous, %s mapped files) |\n", kib(r.SidecarRSSIdleKiB), kib(r.SidecarRSSIdleAnonKiB), kib(r.SidecarRSSIdleFileKiB))
	fmt.Fprintf(w, "| RSS under load (peak VmRSS) | %s |\n", kib(r.SidecarRSSLoadKiB))
	fmt.Fprintf(w, "| audit writer events/s | %.0f |\n", r.AuditEventsPerSec)
	fmt.Fprintf(w, "| audit bytes/event on disk | %.0f |\n", r.AuditBytesPerEvent)
	for _, k := range sortedKeys(r.StartupMS) {
		fmt.Fprintf(w, "| start-up to ready, %s profiles | %.0f ms, RSS %s |\n", k, r.StartupMS[k], kib(r.StartupRSSKiB[k]))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| goal | want | measured | met |\n|---|---|---|---|\n")
	for _, g := range r.Goals {
		met := "n/a"
		if g.Met != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[*g.Met]
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", g.Name, g.Want, g.Measured, met)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

func kib(k int64) string { return fmt.Sprintf("%.1f MiB", float64(k)/1024) }

// sortedKeys returns the keys of a map keyed by profile count, in numeric
// order.
func sortedKeys[V any](m map[string]V) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return cmp.Or(cmp.Compare(x, y), strings.Compare(a, b))
	})
	return keys
}
