package auditdb_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/auditdb"
)

// commitLog records the writer's commits (events per commit).
type commitLog struct {
	mu      sync.Mutex
	batches []int
}

func (c *commitLog) onCommit(n int, _ time.Duration) {
	c.mu.Lock()
	c.batches = append(c.batches, n)
	c.mu.Unlock()
}

func (c *commitLog) get() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.batches...)
}

// A response event waits for the next request event and shares its commit;
// the request event is not delayed by the wait.
func TestLazyResponseRidesWithNextRequest(t *testing.T) {
	t.Parallel()
	var log commitLog
	db := openDB(t, auditdb.Config{LazyDelay: time.Hour, OnCommit: log.onCommit})
	respDone := make(chan error, 1)
	go func() {
		respDone <- db.Record(context.Background(), auditdb.Event{Kind: auditdb.KindResponse, RequestID: "r1",
			Profile: "alice", Status: 200, Outcome: auditdb.OutcomeForwarded})
	}()
	// Held, not committed: wait until it is queued or held.
	deadline := time.Now().Add(5 * time.Second)
	for db.QueueDepth() < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-respDone:
		t.Fatalf("response Record returned (%v) before any eager event, with LazyDelay 1h", err)
	case <-time.After(20 * time.Millisecond):
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.Record(ctx, auditdb.Event{Kind: auditdb.KindRequest, RequestID: "r2", Profile: "alice", Method: "GET"}); err != nil {
		t.Fatalf("request Record = %v", err)
	}
	select {
	case err := <-respDone:
		if err != nil {
			t.Fatalf("response Record = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("response Record did not return after the request event committed")
	}
	if got := log.get(); len(got) != 1 || got[0] != 2 {
		t.Errorf("commits = %v, want one commit of 2 events", got)
	}
	mustVerify(t, db)
}

// A response event with nothing to ride along with is committed after
// LazyDelay on its own.
func TestLazyResponseCommitsAfterDelay(t *testing.T) {
	t.Parallel()
	db := openDB(t, auditdb.Config{LazyDelay: 5 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		if err := db.Record(ctx, auditdb.Event{Kind: auditdb.KindResponse, RequestID: "r", Status: 200}); err != nil {
			t.Fatalf("Record = %v", err)
		}
	}
	if res := mustVerify(t, db); res.Events != 3 {
		t.Errorf("events = %d, want 3", res.Events)
	}
}

// Close commits held lazy events and releases their submitters.
func TestCloseCommitsHeldLazyEvents(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.db")
	db, err := auditdb.Open(context.Background(), auditdb.Config{Path: path, LazyDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			errs <- db.Record(context.Background(), auditdb.Event{Kind: auditdb.KindResponse, RequestID: "r", Status: 200})
		}()
	}
	// All n queued or held by the writer (QueueDepth counts both).
	deadline := time.Now().Add(5 * time.Second)
	for db.QueueDepth() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	for i := 0; i < n; i++ {
		if err := <-errs; err == nil {
			acked++
		}
	}
	ro, err := auditdb.OpenReadOnly(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if res := mustVerify(t, ro); res.Events != n || acked != n {
		t.Errorf("events after Close = %d, acknowledged = %d; want %d each", res.Events, acked, n)
	}
}
