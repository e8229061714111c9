package auditdb_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/auditdb"
)

// The test binary doubles as the "other process" of the multi-process and
// crash tests: with childEnv set it runs one of these modes instead of the
// tests. Mode and arguments come from the environment.
const childEnv = "AUDITDB_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "admin":
		os.Exit(childAdmin(os.Getenv("AUDITDB_TEST_PATH")))
	case "crash":
		os.Exit(childCrash(os.Getenv("AUDITDB_TEST_PATH")))
	default:
		fmt.Fprintln(os.Stderr, "unknown child mode")
		os.Exit(3)
	}
}

// childAdmin appends admin events one process-open at a time, as
// `profiles add` does, and prints "done N" at the end.
func childAdmin(path string) int {
	ctx := context.Background()
	const n = 100
	for i := 0; i < n; i++ {
		db, err := auditdb.Open(ctx, auditdb.Config{Path: path})
		if err != nil {
			fmt.Fprintln(os.Stderr, "open:", err)
			return 1
		}
		err = db.Record(ctx, auditdb.Event{Kind: auditdb.KindAdmin, Code: "profile_added", Profile: "admin-child",
			Detail: []byte(fmt.Sprintf(`{"who":"child","i":%d}`, i))})
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "record:", err)
			return 1
		}
	}
	fmt.Println("done", n)
	return 0
}

// childCrash records calls (a request event, then its response event)
// from 8 goroutines forever and prints the request id of each request
// event, and "response ID" for each response event, as soon as Record has
// returned for it. The
// parent kills it with SIGKILL.
func childCrash(path string) int {
	ctx := context.Background()
	db, err := auditdb.Open(ctx, auditdb.Config{Path: path})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	acks := make(chan string, 1024)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("crash-%d-%d", g, i)
				if err := db.Record(ctx, auditdb.Event{Kind: auditdb.KindRequest, RequestID: id, Profile: "alice",
					Method: "GET", Path: "/api/v1/spaces"}); err != nil {
					fmt.Fprintln(os.Stderr, "record:", err)
					os.Exit(1)
				}
				acks <- id
				// Its response is a lazy event (held for the next
				// request's commit): acknowledged only once committed too.
				if err := db.Record(ctx, auditdb.Event{Kind: auditdb.KindResponse, RequestID: id, Profile: "alice",
					Status: 200, Outcome: auditdb.OutcomeForwarded}); err != nil {
					fmt.Fprintln(os.Stderr, "record:", err)
					os.Exit(1)
				}
				acks <- "response " + id
			}
		}()
	}
	w := bufio.NewWriter(os.Stdout)
	for id := range acks {
		fmt.Fprintln(w, id)
		if len(acks) == 0 {
			w.Flush()
		}
	}
	return 0
}

// openDB opens a fresh audit DB in a temp dir and closes it at cleanup.
func openDB(t testing.TB, cfg auditdb.Config) *auditdb.DB {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = t.TempDir() + "/audit.db"
	}
	db, err := auditdb.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open(%s) = %v", cfg.Path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return db
}

// rawDB opens the file with plain database/sql, as an attacker (or a user
// with sqlite3) would.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func record(t testing.TB, db *auditdb.DB, ev auditdb.Event) {
	t.Helper()
	if err := db.Record(context.Background(), ev); err != nil {
		t.Fatalf("Record(%+v) = %v", ev, err)
	}
}

func mustVerify(t testing.TB, db *auditdb.DB) auditdb.VerifyResult {
	t.Helper()
	res, err := db.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
	if !res.OK {
		t.Fatalf("Verify() = %+v, want OK", res)
	}
	return res
}

// fixedClock returns a clock that starts at start and advances by step on
// every call.
func fixedClock(start time.Time, step time.Duration) func() time.Time {
	var n atomic.Int64
	return func() time.Time {
		return start.Add(time.Duration(n.Add(1)) * step)
	}
}
