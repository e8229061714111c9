package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/auditdb"
)

// runCLI runs the sidecar CLI in-process with home as --home.
func runCLI(t *testing.T, home string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"--home", home}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// auditHome makes a home whose audit.db holds a few calls of each kind.
func auditHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	db, err := auditdb.Open(context.Background(), auditdb.Config{Path: filepath.Join(home, "audit.db")})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	old := now.Add(-100 * 24 * time.Hour)
	evs := []auditdb.Event{
		{TS: old, Kind: auditdb.KindRequest, RequestID: "old1", Profile: "alice", Method: "GET", Path: "/api/v1/spaces"},
		{TS: old, Kind: auditdb.KindResponse, RequestID: "old1", Profile: "alice", Status: 200, Outcome: auditdb.OutcomeForwarded, DurationMS: 2},
		{TS: now, Kind: auditdb.KindRequest, RequestID: "a1", Profile: "alice", Method: "GET", Host: "127.0.0.1:8000", Path: "/api/v1/spaces", KeyFingerprint: "sha256:aaaaaaaaaaaa"},
		{TS: now, Kind: auditdb.KindResponse, RequestID: "a1", Profile: "alice", Status: 200, Outcome: auditdb.OutcomeForwarded, DurationMS: 4, BytesOut: 10},
		{TS: now, Kind: auditdb.KindReject, RequestID: "m1", Profile: "mallory", Method: "GET", Path: "/api/v1/spaces", Status: 403, Code: "unknown_profile"},
		{TS: now, Kind: auditdb.KindRequest, RequestID: "b1", Profile: "bob", Method: "POST", Path: "/api/v1/cards"},
		{TS: now, Kind: auditdb.KindResponse, RequestID: "b1", Profile: "bob", Status: 403, Outcome: auditdb.OutcomeForwarded, DurationMS: 1},
	}
	for _, ev := range evs {
		if err := db.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return home
}

func TestAuditMissingDatabase(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	for _, args := range [][]string{
		{"audit", "query"}, {"audit", "verify"}, {"audit", "stats"},
		{"audit", "export", "--format", "jsonl"}, {"audit", "prune", "--before", "90d"},
	} {
		code, _, stderr := runCLI(t, home, args...)
		if code != 1 || !strings.Contains(stderr, "no audit database at") {
			t.Errorf("%v on a home without audit.db = exit %d, stderr %q; want 1 and a clear message", args, code, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "audit.db")); !os.IsNotExist(err) {
		t.Errorf("audit commands created audit.db (stat err %v)", err)
	}
}

func TestAuditBadFlagsExit2(t *testing.T) {
	t.Parallel()
	home := auditHome(t)
	for _, args := range [][]string{
		{"audit", "query", "--status", "4x"},
		{"audit", "query", "--status", "999"},
		{"audit", "query", "--since", "3q"},
		{"audit", "query", "--since", "-1h"},
		{"audit", "query", "--until", "yesterday"},
		{"audit", "query", "--outcome", "exploded"},
		{"audit", "query", "--format", "xml"},
		{"audit", "query", "--limit", "-1"},
		{"audit", "query", "--limit", "many"},
		{"audit", "query", "--since", "1h", "--until", "2h"},
		{"audit", "export"},
		{"audit", "export", "--format", "table"},
		{"audit", "stats", "--since", "forever"},
		{"audit", "prune"},
		{"audit", "prune", "--before", "soon"},
		{"audit", "prune", "--before", "2999-01-01T00:00:00Z"},
		{"audit", "verify", "extra"},
		{"audit", "bogus"},
	} {
		code, _, stderr := runCLI(t, home, args...)
		if code != 2 || stderr == "" {
			t.Errorf("%v = exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
}

func TestAuditQueryFormats(t *testing.T) {
	t.Parallel()
	home := auditHome(t)
	code, out, stderr := runCLI(t, home, "audit", "query", "--profile", "alice", "--since", "24h", "--json")
	if code != 0 {
		t.Fatalf("query --json = %d: %s", code, stderr)
	}
	var calls []auditdb.Call
	if err := json.Unmarshal([]byte(out), &calls); err != nil {
		t.Fatalf("query --json output is not a JSON array: %v\n%s", err, out)
	}
	if len(calls) != 1 || calls[0].RequestID != "a1" || calls[0].Outcome != auditdb.OutcomeForwarded {
		t.Errorf("query --profile alice --since 24h = %+v, want only a1", calls)
	}
	cases := []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"--status", "4xx"}, []string{"m1", "b1"}, []string{"a1", "old1"}},
		{[]string{"--reason", "unknown_profile", "--format", "jsonl"}, []string{`"request_id":"m1"`}, []string{"b1"}},
		{[]string{"--outcome", "rejected", "--format", "csv"}, []string{"seq,request_id", "m1"}, []string{"a1"}},
		{[]string{"--method", "post"}, []string{"b1"}, []string{"a1"}},
		{[]string{"--path-prefix", "/api/v1/cards"}, []string{"b1"}, []string{"a1"}},
		{[]string{"--request-id", "old1"}, []string{"old1"}, []string{"a1"}},
		{[]string{"--until", "90d"}, []string{"old1"}, []string{"a1"}},
		{[]string{"--limit", "1"}, []string{"b1"}, []string{"a1", "m1"}}, // newest first
		{[]string{"--profile", "nobody"}, []string{"no calls match"}, nil},
	}
	for _, c := range cases {
		code, out, stderr := runCLI(t, home, append([]string{"audit", "query"}, c.args...)...)
		if code != 0 {
			t.Errorf("query %v = %d: %s", c.args, code, stderr)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("query %v output lacks %q:\n%s", c.args, w, out)
			}
		}
		for _, n := range c.not {
			if strings.Contains(out, n) {
				t.Errorf("query %v output has %q:\n%s", c.args, n, out)
			}
		}
	}
}

func TestAuditExportToFile(t *testing.T) {
	t.Parallel()
	home := auditHome(t)
	out := filepath.Join(t.TempDir(), "calls.jsonl")
	code, stdout, stderr := runCLI(t, home, "audit", "export", "--format", "jsonl", "--out", out)
	if code != 0 || stdout != "" {
		t.Fatalf("export --out = %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 4 {
		t.Errorf("export wrote %d lines, want 4 calls:\n%s", n, b)
	}
	if !strings.HasPrefix(string(b), `{"seq":`) || !strings.Contains(string(b), `"request_id":"old1"`) {
		t.Errorf("export is not oldest-first jsonl:\n%s", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Errorf("export left extra files next to --out: %v", entries)
	}
	// A failing export (directory missing) leaves nothing behind.
	if code, _, _ := runCLI(t, home, "audit", "export", "--format", "csv", "--out", filepath.Join(t.TempDir(), "no", "x.csv")); code != 1 {
		t.Errorf("export to a missing directory = %d, want 1", code)
	}
}

// export --out never replaces a file without --force, and never writes
// into the home or over the audit database, even with --force.
func TestAuditExportRefusesToClobber(t *testing.T) {
	t.Parallel()
	home := auditHome(t)
	dbBefore, err := os.ReadFile(filepath.Join(home, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(t.TempDir(), "keep.csv")
	if err := os.WriteFile(existing, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, home, "audit", "export", "--format", "csv", "--out", existing); code != 1 || !strings.Contains(stderr, "--force") {
		t.Errorf("export over an existing file = %d (%q), want 1 naming --force", code, stderr)
	}
	if b, _ := os.ReadFile(existing); string(b) != "precious" {
		t.Errorf("existing file changed to %q", b)
	}
	if entries, _ := os.ReadDir(filepath.Dir(existing)); len(entries) != 1 {
		t.Errorf("refused export left files behind: %v", entries)
	}
	if code, _, stderr := runCLI(t, home, "audit", "export", "--format", "csv", "--out", existing, "--force"); code != 0 {
		t.Errorf("export --force = %d (%q), want 0", code, stderr)
	}
	if b, _ := os.ReadFile(existing); string(b) == "precious" || !strings.Contains(string(b), "request_id") {
		t.Errorf("export --force did not replace the file: %q", b)
	}
	for _, target := range []string{"audit.db", "audit.db-wal", "identity.txt", "profiles.yaml", "new.csv", "vault/x.age"} {
		for _, extra := range [][]string{nil, {"--force"}} {
			args := append([]string{"audit", "export", "--format", "json", "--out", filepath.Join(home, target)}, extra...)
			if code, _, stderr := runCLI(t, home, args...); code != 1 || !strings.Contains(stderr, "sidecar home") {
				t.Errorf("export --out HOME/%s %v = %d (%q), want 1 refusing the home", target, extra, code, stderr)
			}
		}
	}
	// Not a regular file: a device, a symlink, a directory; never replaced.
	dir := t.TempDir()
	link := filepath.Join(dir, "link.csv")
	if err := os.Symlink(existing, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{fifo, link, dir} {
		if code, _, stderr := runCLI(t, home, "audit", "export", "--format", "csv", "--out", target, "--force"); code != 1 || !strings.Contains(stderr, "not a regular file") {
			t.Errorf("export --out %s --force = %d (%q), want 1: not a regular file", target, code, stderr)
		}
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("fifo %s replaced: %v %v", fifo, fi, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink %s replaced: %v %v", link, fi, err)
	}
	// "-" means stdout.
	if code, stdout, stderr := runCLI(t, home, "audit", "export", "--format", "jsonl", "--out", "-"); code != 0 || !strings.Contains(stdout, `"request_id"`) {
		t.Errorf("export --out - = %d, stdout %q, stderr %q; want the export on stdout", code, stdout, stderr)
	}
	if dbAfter, _ := os.ReadFile(filepath.Join(home, "audit.db")); !bytes.Equal(dbBefore, dbAfter) {
		t.Error("audit.db changed")
	}
}

// When audit.path is a symlink, the file it points to is the audit DB:
// export --force must not replace it either.
func TestAuditExportRefusesSymlinkedAuditDB(t *testing.T) {
	t.Parallel()
	src := auditHome(t)
	dir := t.TempDir()
	real := filepath.Join(dir, "real.db")
	if err := os.Rename(filepath.Join(src, "audit.db"), real); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := os.Symlink(real, filepath.Join(home, "audit.db")); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(real)
	if code, _, stderr := runCLI(t, home, "audit", "export", "--format", "csv", "--out", real, "--force"); code != 1 {
		t.Errorf("export over the symlinked audit DB = %d (%q), want 1", code, stderr)
	}
	if after, _ := os.ReadFile(real); !bytes.Equal(before, after) {
		t.Error("the real audit DB behind the symlink changed")
	}
}

func TestAuditStats(t *testing.T) {
	t.Parallel()
	home := auditHome(t)
	code, out, stderr := runCLI(t, home, "audit", "stats", "--json")
	if code != 0 {
		t.Fatalf("stats --json = %d: %s", code, stderr)
	}
	var got struct {
		Profiles []auditdb.ProfileStats `json:"profiles"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("stats --json: %v\n%s", err, out)
	}
	by := map[string]auditdb.ProfileStats{}
	for _, p := range got.Profiles {
		by[p.Profile] = p
	}
	if a := by["alice"]; a.Calls != 1 || a.Forwarded != 1 || a.P50MS != 4 {
		t.Errorf("stats alice (last 24h) = %+v, want 1 forwarded call, p50 4", a)
	}
	if b := by["bob"]; b.Upstream403 != 1 {
		t.Errorf("stats bob = %+v, want one upstream 403", b)
	}
	if m := by["mallory"]; m.RejectedBy["unknown_profile"] != 1 {
		t.Errorf("stats mallory = %+v", m)
	}
	code, out, _ = runCLI(t, home, "audit", "stats", "--since", "365d")
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "unknown_profile=1") {
		t.Errorf("stats text = %d:\n%s", code, out)
	}
}

func TestAuditVerifyAndPrune(t *testing.T) {
	t.Parallel()
	home := auditHome(t)
	code, out, stderr := runCLI(t, home, "audit", "verify")
	if code != 0 || !strings.HasPrefix(out, "OK: 7 events") {
		t.Fatalf("verify = %d %q %q", code, out, stderr)
	}
	code, out, stderr = runCLI(t, home, "audit", "prune", "--before", "90d", "--json")
	if code != 0 {
		t.Fatalf("prune = %d: %s", code, stderr)
	}
	var pr auditdb.PruneResult
	if err := json.Unmarshal([]byte(out), &pr); err != nil || pr.Deleted != 2 || pr.CheckpointSeq != 2 {
		t.Errorf("prune --before 90d = %s (%v), want 2 deleted through seq 2", out, err)
	}
	code, out, _ = runCLI(t, home, "audit", "verify", "--json")
	var vr auditdb.VerifyResult
	if err := json.Unmarshal([]byte(out), &vr); err != nil || code != 0 || !vr.OK || vr.CheckpointSeq != 2 || vr.Events != 6 {
		t.Errorf("verify after prune = %d %s, want OK from checkpoint 2 with 6 events", code, out)
	}

	raw, err := sql.Open("sqlite3", filepath.Join(home, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{"DROP TRIGGER events_no_update", "UPDATE events SET status = 500 WHERE seq = 5"} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr = runCLI(t, home, "audit", "verify")
	if code != 1 || !strings.Contains(out, "BROKEN at seq 5") || !strings.Contains(stderr, "seq 5") {
		t.Errorf("verify after tampering = %d, stdout %q, stderr %q; want exit 1 at seq 5", code, out, stderr)
	}
	code, out, _ = runCLI(t, home, "audit", "verify", "--json")
	if err := json.Unmarshal([]byte(out), &vr); err != nil || code != 1 || vr.OK || vr.BadSeq != 5 {
		t.Errorf("verify --json after tampering = %d %s, want exit 1 and bad_seq 5", code, out)
	}
}

func TestRecordAdmin(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	fc, err := loadConfig(home, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := adminEvent{Action: "profile_added", Profile: "alice", KeyFingerprint: "sha256:0123456789ab", Detail: map[string]any{"email": "a@example.com"}}
	const dbExisted = false // a fresh home: the first call creates the DB
	for i := 0; i < 2; i++ {
		created, err := recordAdmin(context.Background(), fc, ev)
		if err != nil {
			t.Fatal(err)
		}
		if want := i == 0 && !dbExisted; created != want {
			t.Errorf("recordAdmin #%d created = %v, want %v", i, created, want)
		}
	}
	db, err := auditdb.OpenReadOnly(context.Background(), fc.auditPath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if res, err := db.Verify(context.Background()); err != nil || !res.OK || res.Events != 2 {
		t.Fatalf("Verify after two admin events = %+v, %v", res, err)
	}
	raw, err := sql.Open("sqlite3", fc.auditPath())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var kind, code, profile, fp, detail string
	if err := raw.QueryRow("SELECT kind, code, profile, key_fingerprint, detail FROM events WHERE seq = 1").Scan(&kind, &code, &profile, &fp, &detail); err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(detail), &d); err != nil {
		t.Fatal(err)
	}
	if kind != "admin" || code != "profile_added" || profile != "alice" || fp != "sha256:0123456789ab" ||
		d["who"] != osUser() || d["email"] != "a@example.com" {
		t.Errorf("admin event = %s %s %s %s %s, want admin profile_added alice with who=%s", kind, code, profile, fp, detail, osUser())
	}
	if fi, err := os.Stat(fc.auditPath()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("audit.db mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}

func TestParseAge(t *testing.T) {
	t.Parallel()
	good := map[string]time.Duration{
		"90d": 90 * 24 * time.Hour, "36h": 36 * time.Hour, "1d12h": 36 * time.Hour, "15m": 15 * time.Minute, "0s": 0,
	}
	for in, want := range good {
		if got, err := parseAge(in); err != nil || got != want {
			t.Errorf("parseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1h", "1d-2h", "90", "1y", "99999999d"} {
		if got, err := parseAge(in); err == nil {
			t.Errorf("parseAge(%q) = %v, want an error", in, got)
		}
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-01-02T03:04:05Z": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"2026-01-02":           time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		"1d":                   now.Add(-24 * time.Hour),
	} {
		if got, err := parseTimeFlag(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseTimeFlag(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, want := range map[string][3]int{"200": {200, 0, 0}, "4xx": {0, 400, 499}, "5XX": {0, 500, 599}} {
		e, lo, hi, err := parseStatusFlag(in)
		if err != nil || [3]int{e, lo, hi} != want {
			t.Errorf("parseStatusFlag(%q) = %d %d %d %v, want %v", in, e, lo, hi, err, want)
		}
	}
}
