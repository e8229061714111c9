package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanbot/kanbot-sidecar/auditdb"
)

// measureAuditWriter measures the audit writer's own capacity: auditdb's
// group-commit writer, opened with the sidecar's defaults (WAL,
// durability "process", the default redact list), driven in-process by
// writers goroutines that each call Record in a loop, as the proxy's
// write-ahead step does (Record returns once its event is committed). The
// sidecar cannot show this figure itself: serving HTTP costs far more per
// request than writing its two events. It returns events/s from the first
// Record until the last one returned.
func measureAuditWriter(ctx context.Context, dir string, events, writers int, d *auditDetail) (float64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	var commits, committed atomic.Int64
	db, err := auditdb.Open(ctx, auditdb.Config{
		Path:        filepath.Join(dir, "audit.db"),
		Durability:  auditdb.DurabilityProcess,
		RedactQuery: []string{"api_key", "key", "token", "password", "secret"},
		OnCommit: func(n int, _ time.Duration) {
			commits.Add(1)
			committed.Add(int64(n))
		},
	})
	if err != nil {
		return 0, err
	}
	defer db.Close()

	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(events) || ctx.Err() != nil {
					return
				}
				if err := db.Record(ctx, callEvent(i)); err != nil {
					errOnce.Do(func() { first = err })
					next.Store(int64(events)) // stop the others
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	errOnce.Do(func() {})
	if first != nil {
		return 0, fmt.Errorf("audit writer phase: %w", first)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := db.Close(); err != nil {
		return 0, fmt.Errorf("audit writer phase: %w", err)
	}
	if got := committed.Load(); got != int64(events) {
		return 0, fmt.Errorf("audit writer phase: %d events committed, want %d", got, events)
	}
	d.WriterEvents = events
	d.WriterRecorders = writers
	d.WriterSeconds = round2(elapsed.Seconds())
	d.WriterCommits = commits.Load()
	return float64(events) / elapsed.Seconds(), nil
}

// callEvent returns event i of a stream of proxied calls, shaped like the
// ones the proxy writes: even i is the write-ahead request event, odd i the
// response to it.
func callEvent(i int64) auditdb.Event {
	call := i / 2
	id := fmt.Sprintf("01JBENCH%018d", call)
	if i%2 == 0 {
		return auditdb.Event{
			Kind: auditdb.KindRequest, RequestID: id, Profile: benchProfile, Method: "GET",
			Host: "127.0.0.1:8000", Path: "/api/v1/bench", KeyFingerprint: "sha256:0123456789ab",
		}
	}
	return auditdb.Event{
		Kind: auditdb.KindResponse, RequestID: id, Profile: benchProfile, Method: "GET",
		Host: "127.0.0.1:8000", Path: "/api/v1/bench", Status: 200, Outcome: auditdb.OutcomeForwarded,
		BytesOut: upstreamBodySize, DurationMS: 0.25, KeyFingerprint: "sha256:0123456789ab",
	}
}
