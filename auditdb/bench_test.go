package auditdb_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/auditdb"
)

// BenchmarkRecord measures events/s through the group-commit writer with 1,
// 16 and 64 goroutines each calling Record in a loop (each call waits for
// its commit, as the proxy's write-ahead step does). Lazy holding is off
// here (LazyDelay -1), so every event's commit is on its submitter's path:
// this is the commit path's own cost. BenchmarkRecordCalls is the proxy's
// pattern.
func BenchmarkRecord(b *testing.B) {
	for _, submitters := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("submitters=%d", submitters), func(b *testing.B) {
			db := openBenchCfg(b, auditdb.Config{Path: filepath.Join(b.TempDir(), "audit.db"), LazyDelay: -1})
			ctx := context.Background()
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for g := 0; g < submitters; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if err := db.Record(ctx, benchEvent(i)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkBytesPerEvent reports the on-disk size per event (database file
// after Close has checkpointed the WAL: table, indexes and free space) for a
// realistic mix written by 16 concurrent submitters: a request and a
// response event per call. The timed loop is empty; the metric is the point.
func BenchmarkBytesPerEvent(b *testing.B) {
	const events = 20000
	path := filepath.Join(b.TempDir(), "audit.db")
	db := openBench(b, path)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < events; i += 16 {
				if err := db.Record(ctx, benchEvent(int64(i))); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
	}
	b.ReportMetric(float64(fi.Size())/events, "bytes/event")
}

// BenchmarkRecordCalls drives the writer as the proxy does, with the
// default config: per call, the request event's Record is waited for
// (write-ahead) and the response event's is made from its own goroutine
// (the agent already has its response), so response events ride along
// with the next request commit. Reports events/s and commits per call.
func BenchmarkRecordCalls(b *testing.B) {
	for _, submitters := range []int{1, 64} {
		b.Run(fmt.Sprintf("submitters=%d", submitters), func(b *testing.B) {
			var commits atomic.Int64
			db := openBenchCfg(b, auditdb.Config{Path: filepath.Join(b.TempDir(), "audit.db"),
				OnCommit: func(int, time.Duration) { commits.Add(1) }})
			ctx := context.Background()
			var next atomic.Int64
			var responses sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for g := 0; g < submitters; g++ {
				wg.Go(func() {
					for {
						call := next.Add(1)
						if call > int64(b.N) {
							return
						}
						if err := db.Record(ctx, benchEvent(2*call)); err != nil {
							b.Error(err)
							return
						}
						responses.Go(func() {
							if err := db.Record(ctx, benchEvent(2*call+1)); err != nil {
								b.Error(err)
							}
						})
					}
				})
			}
			wg.Wait()
			responses.Wait()
			b.StopTimer()
			b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(commits.Load())/float64(b.N), "commits/call")
		})
	}
}

func openBench(b *testing.B, path string) *auditdb.DB {
	return openBenchCfg(b, auditdb.Config{Path: path})
}

func openBenchCfg(b *testing.B, cfg auditdb.Config) *auditdb.DB {
	b.Helper()
	cfg.RedactQuery = []string{"token"}
	db, err := auditdb.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// benchEvent returns event i of a stream of calls: even i is a request,
// odd i the response to it, spread over 8 profiles.
func benchEvent(i int64) auditdb.Event {
	call := i / 2
	id := fmt.Sprintf("01JBENCH%018d", call)
	profile := fmt.Sprintf("user%d", call%8)
	if i%2 == 0 {
		return auditdb.Event{
			Kind: auditdb.KindRequest, RequestID: id, Profile: profile, Method: "GET",
			Host: "127.0.0.1:8000", Path: "/api/v1/spaces/42/cards", KeyFingerprint: "sha256:0123456789ab",
		}
	}
	return auditdb.Event{
		Kind: auditdb.KindResponse, RequestID: id, Profile: profile, Status: 200,
		Outcome: auditdb.OutcomeForwarded, BytesOut: 1024, DurationMS: 1.234,
	}
}
