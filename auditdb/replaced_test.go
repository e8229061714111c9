package auditdb_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/auditdb"
)

// TestRemovedOrReplacedFileFails: once the database file (or its -wal
// file) at Path is not the one Open opened, Record, Ping and Prune fail
// with ErrReplaced instead of committing to the unlinked file, and nothing
// recreates a file at Path.
func TestRemovedOrReplacedFileFails(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// change removes or replaces files under path; it returns how many
		// events the file then at path must hold afterwards (-1: no file).
		change func(t *testing.T, path string) int64
	}{
		{"removed with wal and shm (rm audit.db*)", func(t *testing.T, path string) int64 {
			removeGlob(t, path+"*")
			return -1
		}},
		{"main file removed", func(t *testing.T, path string) int64 {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return -1
		}},
		{"wal removed", func(t *testing.T, path string) int64 {
			if err := os.Remove(path + "-wal"); err != nil {
				t.Fatal(err)
			}
			return -2 // the main file stays; its content is not checked
		}},
		{"renamed over by another audit database", func(t *testing.T, path string) int64 {
			other := filepath.Join(t.TempDir(), "other.db")
			odb := openDB(t, auditdb.Config{Path: other})
			record(t, odb, auditdb.Event{Kind: auditdb.KindAdmin, Code: "other"})
			if err := odb.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
			return 1
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "audit.db")
			db := openDB(t, auditdb.Config{Path: path, LazyDelay: -1})
			record(t, db, auditdb.Event{Kind: auditdb.KindAdmin, Code: "start"})
			ctx := context.Background()
			if err := db.Ping(ctx); err != nil {
				t.Fatalf("Ping before the change = %v", err)
			}
			want := tc.change(t, path)

			err := db.Record(ctx, auditdb.Event{Kind: auditdb.KindRequest, RequestID: "r1", Method: "GET", Path: "/x"})
			if !errors.Is(err, auditdb.ErrReplaced) {
				t.Fatalf("Record after the change = %v, want ErrReplaced", err)
			}
			if !strings.Contains(err.Error(), "removed or replaced") || !strings.Contains(err.Error(), path) {
				t.Errorf("Record error %q does not name the path and the problem", err)
			}
			if err := db.Ping(ctx); !errors.Is(err, auditdb.ErrReplaced) {
				t.Errorf("Ping after the change = %v, want ErrReplaced", err)
			}
			if _, err := db.Prune(ctx, time.Now().Add(time.Hour), "test"); !errors.Is(err, auditdb.ErrReplaced) {
				t.Errorf("Prune after the change = %v, want ErrReplaced", err)
			}
			// Still failing for the next batch: nothing heals silently.
			if err := db.Record(ctx, auditdb.Event{Kind: auditdb.KindAdmin, Code: "again"}); !errors.Is(err, auditdb.ErrReplaced) {
				t.Errorf("second Record after the change = %v, want ErrReplaced", err)
			}
			if err := db.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
			switch want {
			case -1:
				if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a file exists at %s after Record, Ping, Prune and Close (stat: %v); nothing may recreate it", path, err)
				}
			case -2:
			default:
				ro, err := auditdb.OpenReadOnly(ctx, path)
				if err != nil {
					t.Fatal(err)
				}
				defer ro.Close()
				if res := mustVerify(t, ro); res.Events != want {
					t.Errorf("replacement file holds %d events, want %d (none of ours)", res.Events, want)
				}
			}
		})
	}
}

func removeGlob(t *testing.T, pattern string) {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("glob %s = %v, %v", pattern, files, err)
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPingLockedHonoursContext: while another connection holds the write
// lock (BEGIN EXCLUSIVE), Ping fails, and returns when its context ends
// rather than after the (long) busy timeout. Once the lock is released it
// succeeds again.
func TestPingLockedHonoursContext(t *testing.T) {
	t.Parallel()
	db := openDB(t, auditdb.Config{BusyTimeout: time.Minute})
	record(t, db, auditdb.Event{Kind: auditdb.KindAdmin, Code: "start"})
	raw := rawDB(t, db.Path())
	conn, err := raw.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := db.Ping(ctx); err == nil {
		t.Error("Ping while another connection holds BEGIN EXCLUSIVE = nil, want an error")
	}
	// Not a speed assertion: the busy timeout is a minute, so anything
	// near it means ctx was ignored.
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Ping took %v with a 200ms context; it must not wait for the busy timeout", d)
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(context.Background()); err != nil {
		t.Errorf("Ping after the lock is released = %v", err)
	}
	record(t, db, auditdb.Event{Kind: auditdb.KindAdmin, Code: "after"})
	if res := mustVerify(t, db); res.Events != 2 {
		t.Errorf("Verify().Events = %d, want 2", res.Events)
	}
}

// TestPingDuringWrites: Ping takes the write lock on its own connection
// without disturbing the writer: concurrent Records all commit and the
// chain stays valid.
func TestPingDuringWrites(t *testing.T) {
	t.Parallel()
	db := openDB(t, auditdb.Config{})
	ctx := context.Background()
	const writers, each, pings = 4, 100, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers*each+pings)
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				errs <- db.Record(ctx, auditdb.Event{Kind: auditdb.KindRequest, RequestID: "r", Method: "GET"})
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < pings; i++ {
			errs <- db.Ping(ctx)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if res := mustVerify(t, db); res.Events != writers*each {
		t.Errorf("Verify().Events = %d, want %d", res.Events, writers*each)
	}
}

// TestCreated: Created says whether Open started a new chain, so that a
// server can warn when the trail it expected is missing.
func TestCreated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := func(path string) bool {
		t.Helper()
		db, err := auditdb.Open(context.Background(), auditdb.Config{Path: path})
		if err != nil {
			t.Fatalf("Open(%s) = %v", path, err)
		}
		record(t, db, auditdb.Event{Kind: auditdb.KindAdmin, Code: "start"})
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		return db.Created()
	}
	path := filepath.Join(dir, "audit.db")
	if !open(path) {
		t.Error("Created() on a missing file = false, want true")
	}
	if open(path) {
		t.Error("Created() on an existing audit database = true, want false")
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !open(empty) {
		t.Error("Created() on an empty file = false, want true")
	}
	// A SQLite file without the audit schema (what an older Ping left
	// behind after the file was removed) is a new chain too.
	bare := filepath.Join(dir, "bare.db")
	raw := rawDB(t, bare)
	if _, err := raw.Exec("CREATE TABLE other (a)"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if !open(bare) {
		t.Error("Created() on a SQLite file without the audit schema = false, want true")
	}
}
