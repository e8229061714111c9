package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildSidecar builds cmd/kanbot-sidecar into a temp dir: `make test` does
// not build bin/, and the harness drives the binary as a user would.
func buildSidecar(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kanbot-sidecar")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../cmd/kanbot-sidecar")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build kanbot-sidecar: %v\n%s", err, out)
	}
	return bin
}

// TestSmokeRun runs the whole harness with tiny counts, so that `make bench`
// cannot rot: every phase runs against the real binary, and every field of
// latest.json must be present and sane.
func TestSmokeRun(t *testing.T) {
	bin := buildSidecar(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "latest.json")
	md := filepath.Join(dir, "latest.md")
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{
		"-requests", "40", "-warmup", "5", "-rounds", "2", "-concurrency", "1,4",
		"-startup-profiles", "3,7", "-startup-repeats", "1",
		"-audit-events", "200", "-audit-writers", "4",
		"-sidecar-bin", bin, "-out", out, "-markdown", md, "-workdir", filepath.Join(dir, "work"),
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}

	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// The shape issue 7 asks for, read back as a user's script would.
	var got struct {
		Targets []struct {
			Name        *string  `json:"name"`
			Concurrency *int     `json:"concurrency"`
			RPS         *float64 `json:"rps"`
			P50US       *float64 `json:"p50_us"`
			P90US       *float64 `json:"p90_us"`
			P99US       *float64 `json:"p99_us"`
			CommitsPer  float64  `json:"audit_commits_per_req"`
			EventsPer   float64  `json:"audit_events_per_commit"`
		} `json:"targets"`
		RSSIdle       *int64             `json:"sidecar_rss_idle_kib"`
		RSSLoad       *int64             `json:"sidecar_rss_load_kib"`
		AuditEPS      *float64           `json:"audit_events_per_sec"`
		AuditBytes    *float64           `json:"audit_bytes_per_event"`
		StartupMS     map[string]float64 `json:"startup_ms"`
		StartupRSSKiB map[string]int64   `json:"startup_rss_kib"`
		Overhead      []struct {
			Name        string  `json:"name"`
			Concurrency int     `json:"concurrency"`
			RPSRatio    float64 `json:"rps_ratio"`
		} `json:"overhead"`
		Audit struct {
			LoadEvents   int64 `json:"load_events"`
			WriterEvents int   `json:"writer_events"`
		} `json:"audit"`
		Goals []struct {
			Name string `json:"name"`
		} `json:"goals"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("latest.json: %v", err)
	}

	names := map[string]bool{}
	for i, tg := range got.Targets {
		if tg.Name == nil || tg.Concurrency == nil || tg.RPS == nil || tg.P50US == nil || tg.P90US == nil || tg.P99US == nil {
			t.Fatalf("targets[%d] misses a field: %s", i, raw)
		}
		names[*tg.Name] = true
		if *tg.Name == "sidecar" && (tg.CommitsPer <= 0 || tg.EventsPer < 1) {
			t.Errorf("targets[%d] sidecar: audit_commits_per_req %v, audit_events_per_commit %v: want > 0 and >= 1 (scraped from /metrics)",
				i, tg.CommitsPer, tg.EventsPer)
		}
		if *tg.Concurrency != 1 && *tg.Concurrency != 4 {
			t.Errorf("targets[%d].concurrency = %d, want 1 or 4", i, *tg.Concurrency)
		}
		if *tg.RPS <= 0 || *tg.P50US <= 0 || *tg.P90US < *tg.P50US || *tg.P99US < *tg.P90US {
			t.Errorf("targets[%d] = %s c=%d rps %v p50 %v p90 %v p99 %v: want rps > 0 and 0 < p50 <= p90 <= p99",
				i, *tg.Name, *tg.Concurrency, *tg.RPS, *tg.P50US, *tg.P90US, *tg.P99US)
		}
	}
	for _, want := range []string{"direct", "sidecar", "sidecar-noaudit"} {
		if !names[want] {
			t.Errorf("no %s rows in targets", want)
		}
	}
	if len(got.Targets) != 2*len(names) {
		t.Errorf("%d target rows for %d targets, want one per concurrency", len(got.Targets), len(names))
	}
	if _, err := exec.LookPath("nginx"); err != nil {
		if names["nginx"] {
			t.Error("nginx row present although nginx is not installed")
		}
		if !strings.Contains(stderr.String(), "nginx is not installed") {
			t.Error("no note that the nginx row was left out")
		}
	} else if !names["nginx"] {
		t.Error("nginx is installed but has no row")
	}

	if got.RSSIdle == nil || *got.RSSIdle <= 0 || got.RSSLoad == nil || *got.RSSLoad <= 0 {
		t.Errorf("sidecar RSS idle %v, load %v: want both > 0", got.RSSIdle, got.RSSLoad)
	}
	if got.AuditEPS == nil || *got.AuditEPS <= 0 {
		t.Errorf("audit_events_per_sec = %v, want > 0", got.AuditEPS)
	}
	if got.AuditBytes == nil || *got.AuditBytes <= 0 {
		t.Errorf("audit_bytes_per_event = %v, want > 0", got.AuditBytes)
	}
	if got.Audit.WriterEvents != 200 {
		t.Errorf("audit.writer_events = %d, want 200", got.Audit.WriterEvents)
	}
	// Two events per proxied request (request + response), at least.
	sent := int64(2 * 2 * (40 + 5) * 2)
	if got.Audit.LoadEvents < sent {
		t.Errorf("audit.load_events = %d, want >= %d (request and response per sidecar request)", got.Audit.LoadEvents, sent)
	}
	for _, k := range []string{"3", "7"} {
		if got.StartupMS[k] <= 0 || got.StartupRSSKiB[k] <= 0 {
			t.Errorf("startup_ms[%s] = %v, startup_rss_kib[%s] = %v: want > 0", k, got.StartupMS[k], k, got.StartupRSSKiB[k])
		}
	}
	if len(got.StartupMS) != 2 {
		t.Errorf("startup_ms has %d entries, want 2: %v", len(got.StartupMS), got.StartupMS)
	}
	if len(got.Overhead) != 2*(len(names)-1) {
		t.Errorf("%d overhead rows, want one per proxy and concurrency", len(got.Overhead))
	}
	for _, o := range got.Overhead {
		if o.RPSRatio <= 0 {
			t.Errorf("overhead %s c=%d: rps_ratio %v, want > 0", o.Name, o.Concurrency, o.RPSRatio)
		}
	}
	if len(got.Goals) == 0 {
		t.Error("no goals judged")
	}

	table := stdout.String()
	for _, want := range []string{"| target |", "| sidecar | 4 |", "| direct | 1 |", "| goal |"} {
		if !strings.Contains(table, want) {
			t.Errorf("printed table lacks %q:\n%s", want, table)
		}
	}
	if b, err := os.ReadFile(md); err != nil || string(b) != table {
		t.Errorf("latest.md differs from the printed table (err %v)", err)
	}
	// The keys the harness generated (all "kb_bench_…") reach neither its
	// output nor the sidecars' logs.
	if strings.Contains(table+stderr.String()+string(raw), "kb_bench_") {
		t.Error("a benchmark key appears in the harness output")
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "work", "*.log"))
	if len(logs) == 0 {
		t.Error("no logs kept in the work dir")
	}
	for _, l := range logs {
		if b, err := os.ReadFile(l); err != nil || bytes.Contains(b, []byte("kb_bench_")) {
			t.Errorf("%s: a benchmark key is in the log (or it is unreadable: %v)", filepath.Base(l), err)
		}
	}
}
