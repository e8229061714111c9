package auditdb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkCallsProfileDay measures the calls view for one profile and one
// day over 1,000,000 events (500,000 calls: a request and a response each,
// 8 profiles, 30 days), read through Calls as `audit query` does. The
// database is bulk-loaded once in one transaction with a valid chain.
func BenchmarkCallsProfileDay(b *testing.B) {
	const calls = 500_000
	day0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(b.TempDir(), "audit.db")
	bulkLoad(b, path, calls, day0, 30*24*time.Hour)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	db, err := OpenReadOnly(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	f := Filter{Profile: "user3", Since: day0.Add(10 * 24 * time.Hour), Until: day0.Add(11 * 24 * time.Hour)}
	var n int
	for b.Loop() {
		n = 0
		if err := db.Calls(context.Background(), f, func(Call) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	if n == 0 {
		b.Fatal("no calls matched")
	}
	b.ReportMetric(float64(n), "calls/op")
	b.ReportMetric(float64(fi.Size())/(2*calls), "bytes/event(bulk)")
}

// bulkLoad writes calls request/response pairs spread evenly over span in
// one transaction, chained exactly as the writer does.
func bulkLoad(b *testing.B, path string, calls int, start time.Time, span time.Duration) {
	b.Helper()
	db, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.wdb.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	step := span / time.Duration(calls)
	batch := make([]*row, 0, 128)
	for i := 0; i < calls; i++ {
		ts := start.Add(time.Duration(i) * step)
		id := fmt.Sprintf("01JBULK%019d", i)
		profile := fmt.Sprintf("user%d", i%8)
		req := Event{TS: ts, Kind: KindRequest, RequestID: id, Profile: profile, Method: "GET",
			Host: "127.0.0.1:8000", Path: "/api/v1/spaces/42/cards", KeyFingerprint: "sha256:0123456789ab"}
		resp := Event{TS: ts.Add(2 * time.Millisecond), Kind: KindResponse, RequestID: id, Profile: profile,
			Status: 200, Outcome: OutcomeForwarded, BytesOut: 1024, DurationMS: 1.5}
		for _, ev := range []Event{req, resp} {
			r := new(row)
			if err := db.toRow(&ev, r); err != nil {
				b.Fatal(err)
			}
			batch = append(batch, r)
		}
		if len(batch) == cap(batch) || i == calls-1 {
			if err := appendRowsTx(ctx, tx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCheckFile measures the per-commit check that the database file
// and its -wal file are still the ones Open opened (two stats): the cost
// ErrReplaced detection adds to every batch.
func BenchmarkCheckFile(b *testing.B) {
	db, err := Open(context.Background(), Config{Path: filepath.Join(b.TempDir(), "audit.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if db.wal == (fileID{}) {
		b.Fatal("no -wal file identity captured at Open")
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := db.checkFile(); err != nil {
			b.Fatal(err)
		}
	}
}
