package auditdb_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/auditdb"
)

var day0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// callsFixture records one call of each outcome and returns the DB.
func callsFixture(t *testing.T) *auditdb.DB {
	t.Helper()
	db := openDB(t, auditdb.Config{RedactQuery: []string{"token", "API_KEY"}, Now: fixedClock(day0, time.Second)})
	evs := []auditdb.Event{
		{Kind: auditdb.KindRequest, RequestID: "r1", Profile: "alice", Method: "GET", Host: "127.0.0.1:8000", Path: "/api/v1/spaces", Query: "page=2&token=kb_live_SECRET", KeyFingerprint: "sha256:aaaaaaaaaaaa"},
		{Kind: auditdb.KindResponse, RequestID: "r1", Profile: "alice", Status: 200, Outcome: auditdb.OutcomeForwarded, BytesOut: 512, DurationMS: 3.25},
		{Kind: auditdb.KindReject, RequestID: "r2", Profile: "mallory", Method: "GET", Path: "/api/v1/spaces", Status: 403, Code: "unknown_profile", DurationMS: 0.1},
		{Kind: auditdb.KindRequest, RequestID: "r3", Profile: "bob", Method: "POST", Host: "127.0.0.1:8000", Path: "/api/v1/cards", BytesIn: 100, KeyFingerprint: "sha256:bbbbbbbbbbbb"},
		{Kind: auditdb.KindRequest, RequestID: "r4", Profile: "bob", Method: "GET", Host: "127.0.0.1:8000", Path: "/api/v1/users/me", KeyFingerprint: "sha256:bbbbbbbbbbbb"},
		{Kind: auditdb.KindResponse, RequestID: "r4", Profile: "bob", Status: 502, Code: "upstream_unreachable", Outcome: auditdb.OutcomeUpstreamError, DurationMS: 7},
		{Kind: auditdb.KindRequest, RequestID: "r5", Profile: "alice", Method: "GET", Host: "127.0.0.1:8000", Path: "/api/v1/events", KeyFingerprint: "sha256:aaaaaaaaaaaa"},
		{Kind: auditdb.KindResponse, RequestID: "r5", Profile: "alice", Status: 200, Outcome: auditdb.OutcomeClientAborted, BytesOut: 10, DurationMS: 50},
		{Kind: auditdb.KindReject, RequestID: "r6", Profile: "alice", Method: "GET", Path: "/api/v1/spaces", Status: 429, Code: "rate_limited"},
		{Kind: auditdb.KindRequest, RequestID: "r7", Profile: "alice", Method: "GET", Host: "127.0.0.1:8000", Path: "/api/v1/spaces/1", KeyFingerprint: "sha256:aaaaaaaaaaaa"},
		{Kind: auditdb.KindResponse, RequestID: "r7", Profile: "alice", Status: 401, Outcome: auditdb.OutcomeForwarded, DurationMS: 1},
		{Kind: auditdb.KindAdmin, Code: "profile_added", Profile: "carol", KeyFingerprint: "sha256:cccccccccccc", Detail: json.RawMessage(`{"who":"root"}`)},
	}
	for _, ev := range evs {
		record(t, db, ev)
	}
	return db
}

func allCalls(t *testing.T, db *auditdb.DB, f auditdb.Filter) []auditdb.Call {
	t.Helper()
	var out []auditdb.Call
	if err := db.Calls(context.Background(), f, func(c auditdb.Call) error {
		out = append(out, c)
		return nil
	}); err != nil {
		t.Fatalf("Calls(%+v) = %v", f, err)
	}
	return out
}

func TestCallsViewOutcomes(t *testing.T) {
	t.Parallel()
	db := callsFixture(t)
	got := map[string]auditdb.Call{}
	for _, c := range allCalls(t, db, auditdb.Filter{}) {
		got[c.RequestID] = c
	}
	want := map[string]struct {
		outcome, code string
		status        int
	}{
		"r1": {auditdb.OutcomeForwarded, "", 200},
		"r2": {auditdb.OutcomeRejected, "unknown_profile", 403},
		"r3": {auditdb.OutcomeIncomplete, "", 0},
		"r4": {auditdb.OutcomeUpstreamError, "upstream_unreachable", 502},
		"r5": {auditdb.OutcomeClientAborted, "", 200},
		"r6": {auditdb.OutcomeRejected, "rate_limited", 429},
		"r7": {auditdb.OutcomeForwarded, "", 401},
	}
	if len(got) != len(want) {
		t.Fatalf("calls = %d rows, want %d (admin events are not calls): %+v", len(got), len(want), got)
	}
	for id, w := range want {
		c := got[id]
		if c.Outcome != w.outcome || c.Code != w.code || c.Status != w.status {
			t.Errorf("call %s = outcome %q code %q status %d, want %q %q %d", id, c.Outcome, c.Code, c.Status, w.outcome, w.code, w.status)
		}
	}
	if c := got["r1"]; c.BytesOut != 512 || c.DurationMS != 3.25 || c.Host != "127.0.0.1:8000" || c.KeyFingerprint != "sha256:aaaaaaaaaaaa" {
		t.Errorf("call r1 = %+v, want bytes_out 512, duration 3.25, host and fingerprint from the request", c)
	}
	if c := got["r1"]; !c.StartedAt.Equal(day0.Add(time.Second)) {
		t.Errorf("call r1 started_at = %v, want %v", c.StartedAt, day0.Add(time.Second))
	}
	mustVerify(t, db)
}

func TestQueryRedaction(t *testing.T) {
	t.Parallel()
	assertRedacted(t, []string{"token", "API_KEY", "secret"}, []redactCase{
		{"page=2&token=kb_SECRET1", "page=2&token=REDACTED"},
		{"Token=kb_SECRET2&TOKEN=kb_SECRET3", "Token=REDACTED&TOKEN=REDACTED"},
		{"api_key=kb_SECRET4", "api_key=REDACTED"},
		{"%74oken=kb_SECRET5", "%74oken=REDACTED"},
		{"api%5Fkey=kb_SECRET6&x=1", "api%5Fkey=REDACTED&x=1"},
		{"secret=&a=b", "secret=REDACTED&a=b"},
		{"tokens=keep&a=token", "tokens=keep&a=token"},
		{"q=%zz&token=kb_SECRET7", "q=%zz&token=REDACTED"},
	})
}

type redactCase struct{ in, want string }

// assertRedacted records one request event per case with redact as
// Config.RedactQuery, checks each stored query, and then checks that no
// "kb_SECRET" value is anywhere in the database files (db, wal).
func assertRedacted(t *testing.T, redact []string, cases []redactCase) {
	t.Helper()
	db := openDB(t, auditdb.Config{RedactQuery: redact})
	for i, c := range cases {
		record(t, db, auditdb.Event{Kind: auditdb.KindRequest, RequestID: fmt.Sprint("q", i), Profile: "p", Method: "GET", Path: "/api/v1/x", Query: c.in})
	}
	rows, err := rawDB(t, db.Path()).Query("SELECT query FROM events ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			t.Fatal(err)
		}
		if q != cases[i].want {
			t.Errorf("stored query for %q =\n%q, want\n%q", cases[i].in, q, cases[i].want)
		}
		i++
	}
	if err := rows.Err(); err != nil || i != len(cases) {
		t.Fatalf("read %d rows, %v", i, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(db.Path() + suffix)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("kb_SECRET")) {
			t.Errorf("%s contains a redacted query value", filepath.Base(db.Path()+suffix))
		}
	}
}

func TestFileModes(t *testing.T) {
	t.Parallel()
	db := openDB(t, auditdb.Config{})
	record(t, db, auditdb.Event{Kind: auditdb.KindAdmin, Code: "start"})
	for _, suffix := range []string{"", "-wal", "-shm"} {
		fi, err := os.Stat(db.Path() + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("mode of %s = %o, want 600", filepath.Base(db.Path()+suffix), got)
		}
	}
}

func TestInvalidEventsAreRefused(t *testing.T) {
	t.Parallel()
	db := openDB(t, auditdb.Config{})
	bad := []auditdb.Event{
		{Kind: "bogus"},
		{},
		{Kind: auditdb.KindResponse, Outcome: "exploded"},
		{Kind: auditdb.KindAdmin, Detail: json.RawMessage(`{not json`)},
		{Kind: auditdb.KindResponse, Status: -1},
		{Kind: auditdb.KindResponse, DurationMS: -3},
	}
	for _, ev := range bad {
		if err := db.Record(context.Background(), ev); err == nil {
			t.Errorf("Record(%+v) = nil, want an error", ev)
		}
	}
	if res := mustVerify(t, db); res.Events != 0 {
		t.Errorf("Verify().Events = %d after only invalid events, want 0", res.Events)
	}
}

// TestTampering changes the file behind the package's back, as someone with
// sqlite3 would (dropping the guard triggers first), and expects Verify to
// point at the right seq.
func TestTampering(t *testing.T) {
	t.Parallel()
	const n = 10
	cases := []struct {
		name    string
		sql     []string
		wantBad int64
	}{
		{"change a field", []string{"UPDATE events SET status = 201 WHERE seq = 4"}, 4},
		{"change the time", []string{"UPDATE events SET ts = '2020-01-01T00:00:00.000Z' WHERE seq = 7"}, 7},
		{"change a field and its hash", []string{"UPDATE events SET path = '/x', hash = zeroblob(32) WHERE seq = 5"}, 5},
		{"delete a row", []string{"DELETE FROM events WHERE seq = 6"}, 6},
		{"delete the first row", []string{"DELETE FROM events WHERE seq = 1"}, 1},
		{"insert a row in the middle", []string{
			"UPDATE events SET seq = seq + 100 WHERE seq >= 3",
			"UPDATE events SET seq = seq - 99 WHERE seq >= 103",
			"INSERT INTO events (seq, ts, kind, prev_hash, hash) SELECT 3, ts, 'admin', hash, hash FROM events WHERE seq = 2",
		}, 3},
		{"append a forged row", []string{
			fmt.Sprintf("INSERT INTO events (seq, ts, kind, prev_hash, hash) SELECT %d, ts, 'admin', hash, hash FROM events WHERE seq = %d", n+1, n),
		}, n + 1},
		{"swap two rows", []string{
			"UPDATE events SET seq = 100 WHERE seq = 3",
			"UPDATE events SET seq = 3 WHERE seq = 8",
			"UPDATE events SET seq = 8 WHERE seq = 100",
		}, 3},
		{"text in an integer column", []string{"UPDATE events SET status = 'two hundred' WHERE seq = 2"}, 2},
		{"forge a prune checkpoint", []string{
			"INSERT INTO checkpoints (seq, hash, pruned_at, deleted) VALUES (2, zeroblob(32), '2026-01-01T00:00:00.000Z', 2)",
			"DELETE FROM events WHERE seq <= 2",
		}, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := openDB(t, auditdb.Config{})
			for i := 1; i <= n; i++ {
				record(t, db, auditdb.Event{Kind: auditdb.KindResponse, RequestID: fmt.Sprint("r", i), Profile: "alice", Path: "/api/v1/x", Status: 200, Outcome: auditdb.OutcomeForwarded})
			}
			mustVerify(t, db)
			raw := rawDB(t, db.Path())
			for _, q := range append([]string{"DROP TRIGGER events_no_update", "DROP TRIGGER events_no_delete"}, c.sql...) {
				if _, err := raw.Exec(q); err != nil {
					t.Fatalf("tamper %q: %v", q, err)
				}
			}
			res, err := db.Verify(context.Background())
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			if res.OK || res.BadSeq != c.wantBad {
				t.Errorf("Verify() after %s = %+v, want bad seq %d", c.name, res, c.wantBad)
			}
		})
	}
}

func TestTriggersGuardAgainstAccidents(t *testing.T) {
	t.Parallel()
	db := openDB(t, auditdb.Config{})
	record(t, db, auditdb.Event{Kind: auditdb.KindAdmin, Code: "start"})
	raw := rawDB(t, db.Path())
	for _, q := range []string{"UPDATE events SET code = 'x'", "DELETE FROM events"} {
		if _, err := raw.Exec(q); err == nil {
			t.Errorf("Exec(%q) = nil, want the append-only trigger to refuse", q)
		}
	}
	mustVerify(t, db)
}

// TestConcurrentAppendersAndSecondProcess: 64 goroutines × 1,000 events
// while another process appends admin events to the same file.
func TestConcurrentAppendersAndSecondProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.db")
	db := openDB(t, auditdb.Config{Path: path})
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"=admin", "AUDITDB_TEST_PATH="+path)
	var childOut, childErr bytes.Buffer
	child.Stdout, child.Stderr = &childOut, &childErr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 64, 1000
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := db.Record(context.Background(), auditdb.Event{Kind: auditdb.KindRequest,
					RequestID: fmt.Sprintf("g%d-%d", g, i), Profile: "alice", Method: "GET", Path: "/api/v1/spaces"}); err != nil {
					t.Errorf("Record: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := child.Wait(); err != nil {
		t.Fatalf("admin child: %v\nstderr: %s", err, childErr.String())
	}
	if got := strings.TrimSpace(childOut.String()); got != "done 100" {
		t.Fatalf("admin child output = %q, want done 100", got)
	}
	res := mustVerify(t, db)
	if want := int64(goroutines*each + 100); res.Events != want {
		t.Errorf("Verify().Events = %d, want %d", res.Events, want)
	}
	var dup, distinct, admins int
	raw := rawDB(t, path)
	if err := raw.QueryRow(`SELECT count(*) - count(DISTINCT request_id), count(DISTINCT request_id),
		(SELECT count(*) FROM events WHERE kind = 'admin') FROM events WHERE kind = 'request'`).Scan(&dup, &distinct, &admins); err != nil {
		t.Fatal(err)
	}
	if dup != 0 || distinct != goroutines*each || admins != 100 {
		t.Errorf("events: %d duplicates, %d distinct requests, %d admin; want 0, %d, 100", dup, distinct, admins, goroutines*each)
	}
}

// TestCrashKeepsAcknowledgedEvents kills a writing child with SIGKILL and
// checks that everything it had been told was committed is there.
func TestCrashKeepsAcknowledgedEvents(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.db")
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"=crash", "AUDITDB_TEST_PATH="+path)
	var childErr bytes.Buffer
	child.Stderr = &childErr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var acked []string
	for sc.Scan() {
		acked = append(acked, sc.Text())
		if len(acked) == 3000 {
			if err := child.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := child.Wait(); err == nil || len(acked) < 3000 {
		t.Fatalf("child exited with %v after %d acks (want killed after 3000); stderr: %s", err, len(acked), childErr.String())
	}

	raw := rawDB(t, path)
	var check string
	if err := raw.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v; want ok", check, err)
	}
	db := openDB(t, auditdb.Config{Path: path})
	res := mustVerify(t, db)
	present := map[string]string{} // request id → outcome
	if err := db.Calls(context.Background(), auditdb.Filter{}, func(c auditdb.Call) error {
		present[c.RequestID] = c.Outcome
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	missing, responses := 0, 0
	for _, id := range acked {
		if rid, ok := strings.CutPrefix(id, "response "); ok {
			responses++
			if present[rid] != auditdb.OutcomeForwarded {
				missing++
			}
		} else if present[id] == "" {
			missing++
		}
	}
	if responses == 0 {
		t.Errorf("no response event was acknowledged before the kill")
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged events missing after SIGKILL (%d events in the chain)", missing, len(acked), res.Events)
	}
	// And the chain goes on from where the dead process left it.
	record(t, db, auditdb.Event{Kind: auditdb.KindAdmin, Code: "start"})
	mustVerify(t, db)
}

func TestOpenMissingDirectory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "audit.db")
	db, err := auditdb.Open(context.Background(), auditdb.Config{Path: path})
	if err == nil {
		db.Close()
		t.Fatalf("Open(%s) = nil error, want one", path)
	}
	if !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open error = %q, want it to say the directory does not exist", err)
	}
}

func TestOpenBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []auditdb.Config{
		{},
		{Path: filepath.Join(t.TempDir(), "a.db"), Durability: "paranoid"},
		{Path: filepath.Join(t.TempDir(), "b.db"), QueueSize: -1},
	} {
		if db, err := auditdb.Open(context.Background(), cfg); err == nil {
			db.Close()
			t.Errorf("Open(%+v) = nil error, want one", cfg)
		}
	}
}

// TestReadOnlyFileFailsLoudly: a database file that cannot be written makes
// Open or Record fail, never a silent drop.
func TestReadOnlyFileFailsLoudly(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.db")
	db := openDB(t, auditdb.Config{Path: path})
	record(t, db, auditdb.Event{Kind: auditdb.KindAdmin, Code: "start"})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	makeReadOnly(t, path)

	ro, err := auditdb.Open(context.Background(), auditdb.Config{Path: path})
	if err != nil {
		return // refusing to open is a loud failure too
	}
	defer ro.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ro.Record(ctx, auditdb.Event{Kind: auditdb.KindAdmin, Code: "x"}); err == nil {
		t.Fatal("Record on a read-only file = nil, want an error")
	}
	if err := ro.Ping(ctx); err == nil {
		t.Error("Ping on a read-only file = nil, want an error")
	}
}

// makeReadOnly makes path unwritable even for root: chmod alone does not
// stop root, the immutable attribute does.
func makeReadOnly(t *testing.T, path string) {
	t.Helper()
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		return
	}
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i (needed to make a file read-only for root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", path).Run() })
}

// TestLockedDatabaseFailsAfterBusyTimeout: another connection holds the
// write lock past the busy timeout; Record fails, then recovers.
func TestLockedDatabaseFailsAfterBusyTimeout(t *testing.T) {
	t.Parallel()
	db := openDB(t, auditdb.Config{BusyTimeout: 100 * time.Millisecond})
	record(t, db, auditdb.Event{Kind: auditdb.KindAdmin, Code: "start"})
	raw := rawDB(t, db.Path())
	conn, err := raw.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	err = db.Record(context.Background(), auditdb.Event{Kind: auditdb.KindAdmin, Code: "blocked"})
	if err == nil {
		t.Fatal("Record while another process holds the write lock = nil, want an error")
	}
	if err := db.Ping(context.Background()); err == nil {
		t.Error("Ping while locked = nil, want an error")
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	record(t, db, auditdb.Event{Kind: auditdb.KindAdmin, Code: "after"})
	if res := mustVerify(t, db); res.Events != 2 {
		t.Errorf("Verify().Events = %d, want 2 (the blocked event must not appear)", res.Events)
	}
}

func TestRecordAfterClose(t *testing.T) {
	t.Parallel()
	db, err := auditdb.Open(context.Background(), auditdb.Config{Path: filepath.Join(t.TempDir(), "a.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Record(context.Background(), auditdb.Event{Kind: auditdb.KindAdmin}); !errors.Is(err, auditdb.ErrClosed) {
		t.Errorf("Record after Close = %v, want ErrClosed", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

// TestCloseFlushesQueuedEvents: events queued when Close starts are
// committed, and their Record calls return nil.
func TestCloseFlushesQueuedEvents(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.db")
	db, err := auditdb.Open(context.Background(), auditdb.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				err := db.Record(context.Background(), auditdb.Event{Kind: auditdb.KindAdmin, Code: "x"})
				if errors.Is(err, auditdb.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Record = %v", err)
					return
				}
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	ro, err := auditdb.OpenReadOnly(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if res := mustVerify(t, ro); res.Events != int64(ok) {
		t.Errorf("events after Close = %d, want %d (one per nil Record)", res.Events, ok)
	}
}

func TestOpenReadOnly(t *testing.T) {
	t.Parallel()
	if _, err := auditdb.OpenReadOnly(context.Background(), filepath.Join(t.TempDir(), "none.db")); !errors.Is(err, auditdb.ErrNotExist) {
		t.Errorf("OpenReadOnly(missing) = %v, want ErrNotExist", err)
	}
	dir := t.TempDir()
	if _, err := os.Stat(filepath.Join(dir, "none.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly created a file")
	}
	notDB := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(notDB, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if db, err := auditdb.OpenReadOnly(context.Background(), notDB); err == nil {
		db.Close()
		t.Error("OpenReadOnly(not a database) = nil error, want one")
	}
	db := callsFixture(t)
	ro, err := auditdb.OpenReadOnly(context.Background(), db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	mustVerify(t, ro)
	if err := ro.Record(context.Background(), auditdb.Event{Kind: auditdb.KindAdmin}); !errors.Is(err, auditdb.ErrReadOnly) {
		t.Errorf("Record on read-only = %v, want ErrReadOnly", err)
	}
	if _, err := ro.Prune(context.Background(), time.Now(), ""); !errors.Is(err, auditdb.ErrReadOnly) {
		t.Errorf("Prune on read-only = %v, want ErrReadOnly", err)
	}
}

func TestPruneThenVerify(t *testing.T) {
	t.Parallel()
	db := openDB(t, auditdb.Config{Now: fixedClock(day0, time.Hour)})
	for i := 0; i < 48; i++ { // two days, one event an hour
		record(t, db, auditdb.Event{Kind: auditdb.KindRequest, RequestID: fmt.Sprint("r", i), Profile: "alice", Method: "GET", Path: "/api/v1/x"})
	}
	res, err := db.Prune(context.Background(), day0.Add(24*time.Hour), "tester")
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 23 || res.CheckpointSeq != 23 {
		t.Errorf("Prune = %+v, want 23 deleted through seq 23", res)
	}
	v := mustVerify(t, db)
	if v.CheckpointSeq != 23 || v.FirstSeq != 24 || v.LastSeq != 49 {
		t.Errorf("Verify after prune = %+v, want checkpoint 23, seqs 24..49 (48 events + the prune event)", v)
	}
	// Pruning again with the same bound removes nothing; the chain goes on.
	if res, err := db.Prune(context.Background(), day0.Add(24*time.Hour), ""); err != nil || res.Deleted != 0 {
		t.Errorf("second Prune = %+v, %v; want nothing deleted", res, err)
	}
	record(t, db, auditdb.Event{Kind: auditdb.KindAdmin, Code: "after_prune"})
	// Prune everything: the chain continues from the checkpoint.
	if res, err := db.Prune(context.Background(), day0.Add(1000*time.Hour), ""); err != nil || res.Deleted != 27 {
		t.Errorf("Prune(all) = %+v, %v; want 27 deleted", res, err)
	}
	v = mustVerify(t, db)
	if v.Events != 1 {
		t.Errorf("Verify after pruning everything = %+v, want only the prune event", v)
	}
	record(t, db, auditdb.Event{Kind: auditdb.KindAdmin, Code: "later"})
	mustVerify(t, db)
}

func TestQueryFilters(t *testing.T) {
	t.Parallel()
	db := callsFixture(t)
	ids := func(f auditdb.Filter) string {
		var out []string
		for _, c := range allCalls(t, db, f) {
			out = append(out, c.RequestID)
		}
		return strings.Join(out, ",")
	}
	cases := []struct {
		name string
		f    auditdb.Filter
		want string
	}{
		{"all", auditdb.Filter{}, "r1,r2,r3,r4,r5,r6,r7"},
		{"profile", auditdb.Filter{Profile: "alice"}, "r1,r5,r6,r7"},
		{"since", auditdb.Filter{Since: day0.Add(7 * time.Second)}, "r5,r6,r7"},
		{"until", auditdb.Filter{Until: day0.Add(4 * time.Second)}, "r1,r2"},
		{"since and until", auditdb.Filter{Since: day0.Add(3 * time.Second), Until: day0.Add(8 * time.Second)}, "r2,r3,r4,r5"},
		{"outcome rejected", auditdb.Filter{Outcome: auditdb.OutcomeRejected}, "r2,r6"},
		{"outcome incomplete", auditdb.Filter{Outcome: auditdb.OutcomeIncomplete}, "r3"},
		{"reason", auditdb.Filter{Code: "rate_limited"}, "r6"},
		{"status exact", auditdb.Filter{Status: 200}, "r1,r5"},
		{"status 4xx", auditdb.Filter{StatusMin: 400, StatusMax: 499}, "r2,r6,r7"},
		{"method lower-case", auditdb.Filter{Method: "post"}, "r3"},
		{"path prefix", auditdb.Filter{PathPrefix: "/api/v1/spaces"}, "r1,r2,r6,r7"},
		{"path prefix is literal", auditdb.Filter{PathPrefix: "/api/v1/%"}, ""},
		{"request id", auditdb.Filter{RequestID: "r4"}, "r4"},
		{"limit", auditdb.Filter{Limit: 2}, "r1,r2"},
		{"newest with limit", auditdb.Filter{Limit: 2, Newest: true}, "r7,r6"},
		{"combined", auditdb.Filter{Profile: "alice", Outcome: auditdb.OutcomeForwarded, Method: "GET"}, "r1,r7"},
	}
	for _, c := range cases {
		if got := ids(c.f); got != c.want {
			t.Errorf("%s: Calls(%+v) = %q, want %q", c.name, c.f, got, c.want)
		}
	}
	for _, f := range []auditdb.Filter{
		{Outcome: "exploded"},
		{Limit: -1},
		{Since: day0.Add(time.Hour), Until: day0},
	} {
		if err := db.Calls(context.Background(), f, func(auditdb.Call) error { return nil }); err == nil {
			t.Errorf("Calls(%+v) = nil error, want one", f)
		}
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	db := callsFixture(t)
	st, err := db.Stats(context.Background(), auditdb.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]auditdb.ProfileStats{}
	for _, s := range st {
		by[s.Profile] = s
	}
	a := by["alice"]
	if a.Calls != 4 || a.Forwarded != 2 || a.Rejected != 1 || a.ClientAborted != 1 || a.RateLimited != 1 ||
		a.Upstream401 != 1 || a.RejectedBy["rate_limited"] != 1 || a.P50MS != 1 || a.P95MS != 3.25 {
		t.Errorf("stats for alice = %+v", a)
	}
	b := by["bob"]
	if b.Calls != 2 || b.Incomplete != 1 || b.UpstreamError != 1 || b.P50MS != 0 {
		t.Errorf("stats for bob = %+v", b)
	}
	if m := by["mallory"]; m.Rejected != 1 || m.RejectedBy["unknown_profile"] != 1 {
		t.Errorf("stats for mallory = %+v", m)
	}
	st, err = db.Stats(context.Background(), auditdb.Filter{Since: day0.Add(100 * time.Second)})
	if err != nil || len(st) != 0 {
		t.Errorf("Stats(since after everything) = %+v, %v; want none", st, err)
	}
}

func TestExportRoundTrip(t *testing.T) {
	t.Parallel()
	db := callsFixture(t)
	want := allCalls(t, db, auditdb.Filter{})
	for _, format := range []string{auditdb.FormatJSONL, auditdb.FormatJSON, auditdb.FormatCSV} {
		var buf bytes.Buffer
		var lastProgress int64
		n, err := db.Export(context.Background(), &buf, format, auditdb.Filter{}, func(n int64) { lastProgress = n })
		if err != nil {
			t.Fatalf("Export(%s) = %v", format, err)
		}
		if n != int64(len(want)) || lastProgress != n {
			t.Errorf("Export(%s) wrote %d (progress %d), want %d", format, n, lastProgress, len(want))
		}
		var got []auditdb.Call
		switch format {
		case auditdb.FormatJSONL:
			dec := json.NewDecoder(&buf)
			for {
				var c auditdb.Call
				if err := dec.Decode(&c); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				got = append(got, c)
			}
		case auditdb.FormatJSON:
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("json export is not one JSON array: %v\n%s", err, buf.String())
			}
		case auditdb.FormatCSV:
			recs, err := csv.NewReader(&buf).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(recs[0], ",") != strings.Join(auditdb.CallColumns, ",") {
				t.Errorf("csv header = %v", recs[0])
			}
			for _, rec := range recs[1:] {
				c, err := auditdb.ParseCSVCall(rec)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, c)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s round trip: %d calls, want %d", format, len(got), len(want))
		}
		for i := range want {
			if !got[i].StartedAt.Equal(want[i].StartedAt) {
				t.Errorf("%s round trip row %d started_at = %v, want %v", format, i, got[i].StartedAt, want[i].StartedAt)
			}
			got[i].StartedAt = want[i].StartedAt
			if got[i] != want[i] {
				t.Errorf("%s round trip row %d = %+v, want %+v", format, i, got[i], want[i])
			}
		}
	}
	var empty bytes.Buffer
	if _, err := db.Export(context.Background(), &empty, auditdb.FormatJSON, auditdb.Filter{Profile: "nobody"}, nil); err != nil {
		t.Fatal(err)
	}
	var none []auditdb.Call
	if err := json.Unmarshal(empty.Bytes(), &none); err != nil || len(none) != 0 {
		t.Errorf("empty json export = %q (%v), want []", empty.String(), err)
	}
	if _, err := db.Export(context.Background(), io.Discard, "xml", auditdb.Filter{}, nil); err == nil {
		t.Error("Export(xml) = nil error, want one")
	}
}

func TestRecordContextCancelled(t *testing.T) {
	t.Parallel()
	db := openDB(t, auditdb.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := db.Record(ctx, auditdb.Event{Kind: auditdb.KindAdmin, Code: "x"})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Record(cancelled ctx) = %v, want nil or context.Canceled", err)
	}
	mustVerify(t, db)
}
