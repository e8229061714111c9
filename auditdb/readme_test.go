package auditdb_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/auditdb"
)

// readmeSection returns the text of README.md's "Audit database" section,
// up to the next second-level heading.
func readmeSection(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	const heading = "\n## Audit database\n"
	i := strings.Index(s, heading)
	if i < 0 {
		t.Fatal("README.md has no \"## Audit database\" section")
	}
	s = s[i+len(heading):]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	return s
}

func fenced(section, lang string) []string {
	re := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```")
	var out []string
	for _, m := range re.FindAllStringSubmatch(section, -1) {
		out = append(out, m[1])
	}
	return out
}

// readmeFixture has at least one row for every README query.
func readmeFixture(t *testing.T) *auditdb.DB {
	t.Helper()
	db := openDB(t, auditdb.Config{Now: fixedClock(time.Now(), time.Millisecond)})
	evs := []auditdb.Event{
		{Kind: auditdb.KindAdmin, Code: "profile_added", Profile: "alice", KeyFingerprint: "sha256:aaaaaaaaaaaa", Detail: []byte(`{"who":"root"}`)},
		{Kind: auditdb.KindRequest, RequestID: "r1", Profile: "alice", Method: "GET", Host: "127.0.0.1:8000", Path: "/api/v1/spaces", KeyFingerprint: "sha256:aaaaaaaaaaaa"},
		{Kind: auditdb.KindResponse, RequestID: "r1", Profile: "alice", Status: 200, Outcome: auditdb.OutcomeForwarded, DurationMS: 2.5, BytesOut: 100},
		{Kind: auditdb.KindReject, RequestID: "r2", Profile: "alice", Method: "GET", Host: "kanbot.example:8000", Path: "/api/v1/spaces", Status: 403, Code: "upstream_mismatch"},
		{Kind: auditdb.KindRequest, RequestID: "r3", Profile: "bob", Method: "GET", Host: "127.0.0.1:8000", Path: "/api/v1/spaces/9", KeyFingerprint: "sha256:bbbbbbbbbbbb"},
		{Kind: auditdb.KindResponse, RequestID: "r3", Profile: "bob", Status: 403, Outcome: auditdb.OutcomeForwarded, DurationMS: 1},
		{Kind: auditdb.KindRequest, RequestID: "r4", Profile: "alice", Method: "POST", Host: "127.0.0.1:8000", Path: "/api/v1/cards", KeyFingerprint: "sha256:aaaaaaaaaaaa"},
	}
	for _, ev := range evs {
		record(t, db, ev)
	}
	return db
}

// TestReadmeQueries runs every ```sql block of the README's audit-schema
// section against a real database; each must succeed and return rows.
func TestReadmeQueries(t *testing.T) {
	t.Parallel()
	queries := fenced(readmeSection(t), "sql")
	if len(queries) < 5 {
		t.Fatalf("README audit-schema section has %d sql examples, want at least 5", len(queries))
	}
	db := readmeFixture(t)
	raw := rawDB(t, db.Path())
	for _, q := range queries {
		rows, err := raw.QueryContext(context.Background(), q)
		if err != nil {
			t.Errorf("README query fails: %v\n%s", err, q)
			continue
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Errorf("README query fails: %v\n%s", err, q)
		}
		rows.Close()
		if n == 0 {
			t.Errorf("README query returns no rows on the fixture:\n%s", q)
		}
	}
}

// TestReadmeVerifierScript runs the README's stand-alone Python verifier:
// it must agree with Verify on an intact chain, a pruned one and a tampered
// one (the outsider's view of the canonical encoding).
func TestReadmeVerifierScript(t *testing.T) {
	t.Parallel()
	scripts := fenced(readmeSection(t), "python")
	if len(scripts) != 1 {
		t.Fatalf("README audit-schema section has %d python blocks, want 1", len(scripts))
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to check the README's verifier script: %v", err)
	}
	script := filepath.Join(t.TempDir(), "verify.py")
	if err := os.WriteFile(script, []byte(scripts[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	db := readmeFixture(t)
	runScript := func() (string, error) {
		out, err := exec.Command(python, script, db.Path()).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := runScript(); err != nil || out != "OK through seq 7" {
		t.Fatalf("verify.py on an intact chain = %q, %v; want OK through seq 7", out, err)
	}
	if _, err := db.Prune(context.Background(), tsOf(t, db, 3), "t"); err != nil {
		t.Fatal(err)
	}
	res := mustVerify(t, db)
	if res.CheckpointSeq != 2 {
		t.Fatalf("Verify after prune = %+v, want checkpoint at seq 2", res)
	}
	if out, err := runScript(); err != nil || out != fmt.Sprintf("OK through seq %d", res.LastSeq) {
		t.Fatalf("verify.py after prune = %q, %v; want OK through seq %d", out, err, res.LastSeq)
	}
	raw := rawDB(t, db.Path())
	for _, q := range []string{"DROP TRIGGER events_no_update", fmt.Sprintf("UPDATE events SET duration_ms = 1.001 WHERE seq = %d", res.LastSeq-2)} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	want := fmt.Sprintf("BROKEN at seq %d", res.LastSeq-2)
	if out, err := runScript(); err == nil || out != want {
		t.Errorf("verify.py after tampering = %q, %v; want %q and a failure exit", out, err, want)
	}
	if v, _ := db.Verify(context.Background()); v.OK || v.BadSeq != res.LastSeq-2 {
		t.Errorf("Verify after tampering = %+v, want bad seq %d", v, res.LastSeq-2)
	}
}

// tsOf returns the ts of event seq.
func tsOf(t *testing.T, db *auditdb.DB, seq int64) time.Time {
	t.Helper()
	var s string
	if err := rawDB(t, db.Path()).QueryRow("SELECT ts FROM events WHERE seq = ?", seq).Scan(&s); err != nil {
		t.Fatal(err)
	}
	ts, err := time.Parse("2006-01-02T15:04:05.000Z", s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}
