package auditdb_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kanbot/kanbot-sidecar/auditdb"
)

// BenchmarkRecord measures events/s through the group-commit writer with 1,
// 16 and 64 goroutines each calling Record in a loop (each call waits for
// its commit, as the proxy's write-ahead step does).
func BenchmarkRecord(b *testing.B) {
	for _, submitters := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("submitters=%d", submitters), func(b *testing.B) {
			db := openBench(b, filepath.Join(b.TempDir(), "audit.db"))
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

func openBench(b *testing.B, path string) *auditdb.DB {
	b.Helper()
	db, err := auditdb.Open(context.Background(), auditdb.Config{Path: path, RedactQuery: []string{"token"}})
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
