package auditdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mattn/go-sqlite3"
)

// Redacted replaces the value of a redacted query parameter.
const Redacted = "REDACTED"

// pending is one event on its way through the writer. done is buffered so
// the writer never blocks on a submitter that gave up.
type pending struct {
	r    row
	done chan error
}

// Record appends ev to the chain and returns once it is committed at the
// configured durability. It is safe for concurrent use; concurrent calls
// share a transaction (group commit).
//
// It returns an error, and never drops the event silently, when the event
// is invalid, the database cannot commit it (read-only, locked past the
// busy timeout, disk full…), the DB is closed, or ctx ends first. After a
// ctx error the event may still be committed later; it is never committed
// after any other error.
func (db *DB) Record(ctx context.Context, ev Event) error {
	if db.readOnly {
		return ErrReadOnly
	}
	p := &pending{done: make(chan error, 1)}
	if err := db.toRow(&ev, &p.r); err != nil {
		return err
	}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return ErrClosed
	}
	select {
	case db.queue <- p:
		db.mu.RUnlock()
	case <-ctx.Done():
		db.mu.RUnlock()
		return fmt.Errorf("audit queue full: %w", ctx.Err())
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("audit commit wait: %w", ctx.Err())
	}
}

// toRow validates ev and converts it to its stored form: zero fields become
// NULL, the time is formatted in UTC, the query is redacted and the
// duration rounded to the microsecond the hash encoding keeps.
func (db *DB) toRow(ev *Event, r *row) error {
	switch ev.Kind {
	case KindRequest, KindResponse, KindReject, KindAdmin:
	default:
		return fmt.Errorf("audit event: unknown kind %q", ev.Kind)
	}
	switch ev.Outcome {
	case "", OutcomeForwarded, OutcomeRejected, OutcomeUpstreamError, OutcomeIncomplete, OutcomeClientAborted:
	default:
		return fmt.Errorf("audit event: unknown outcome %q", ev.Outcome)
	}
	if ev.Status < 0 || ev.BytesIn < 0 || ev.BytesOut < 0 || ev.DurationMS < 0 ||
		math.IsNaN(ev.DurationMS) || math.IsInf(ev.DurationMS, 0) {
		return errors.New("audit event: negative or non-finite status, byte count or duration")
	}
	ts := ev.TS
	if ts.IsZero() {
		ts = db.now()
	}
	r.ts = ts.UTC().Format(tsLayout)
	r.kind = ev.Kind
	r.requestID = optText(ev.RequestID)
	r.profile = optText(ev.Profile)
	r.client = optText(ev.Client)
	r.method = optText(ev.Method)
	r.host = optText(ev.Host)
	r.path = optText(ev.Path)
	r.query = optText(db.redactQuery(ev.Query))
	r.status = optInt(int64(ev.Status))
	r.code = optText(ev.Code)
	r.outcome = optText(ev.Outcome)
	r.bytesIn = optInt(ev.BytesIn)
	r.bytesOut = optInt(ev.BytesOut)
	if ev.DurationMS > 0 {
		d := math.Round(ev.DurationMS*1000) / 1000
		r.durationMS = &d
	}
	r.keyFingerprint = optText(ev.KeyFingerprint)
	if len(ev.Detail) > 0 {
		if !json.Valid(ev.Detail) {
			return errors.New("audit event: detail is not valid JSON")
		}
		r.detail = optText(string(ev.Detail))
	}
	return nil
}

// optText maps "" to NULL and makes text valid UTF-8, so that any script
// reading the row back gets the exact bytes the hash covers.
func optText(s string) *string {
	if s == "" {
		return nil
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return &s
}

func optInt(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

// redactQuery replaces the values of the configured parameters with
// REDACTED, keeping the rest of the raw query as it was (order, escaping).
// Keys are compared unescaped and case-insensitively, so "%74oken" and
// "TOKEN" are caught too.
func (db *DB) redactQuery(q string) string {
	if q == "" || len(db.redact) == 0 {
		return q
	}
	parts := strings.Split(q, "&")
	changed := false
	for i, p := range parts {
		k, _, hasValue := strings.Cut(p, "=")
		if !hasValue {
			continue
		}
		key := k
		if uk, err := url.QueryUnescape(k); err == nil {
			key = uk
		}
		if db.redact[strings.ToLower(key)] {
			parts[i] = k + "=" + Redacted
			changed = true
		}
	}
	if !changed {
		return q
	}
	return strings.Join(parts, "&")
}

// writer is the only goroutine that appends through conn. It takes every
// event waiting (up to maxBatch), writes them in one transaction and then
// releases their submitters: group commit.
func (db *DB) writer(conn *sql.Conn) {
	defer close(db.done)
	defer conn.Close()
	defer close(db.ckpt)
	w := &chainWriter{busyTimeout: db.busyTimeout}
	batch := make([]*pending, 0, db.maxBatch)
	sinceCkpt := 0
	for {
		var first *pending
		select {
		case first = <-db.queue:
		case <-db.stop:
			// Close set closed before stop, so nothing more can be queued:
			// commit what is there and leave.
			for {
				batch = batch[:0]
			drain:
				for len(batch) < db.maxBatch {
					select {
					case p := <-db.queue:
						batch = append(batch, p)
					default:
						break drain
					}
				}
				if len(batch) == 0 {
					return
				}
				db.commitBatch(conn, w, batch)
			}
		}
		if db.lastBatch > 1 {
			// Several submitters are active: let the ones released by the
			// previous commit queue their next event before this batch is
			// cut, so that one commit carries more events.
			runtime.Gosched()
		}
		batch = append(batch[:0], first)
	gather:
		for len(batch) < db.maxBatch {
			select {
			case p := <-db.queue:
				batch = append(batch, p)
			default:
				break gather
			}
		}
		db.lastBatch = len(batch)
		if db.commitBatch(conn, w, batch) == nil {
			sinceCkpt += len(batch)
			if sinceCkpt >= db.ckptGap {
				sinceCkpt = 0
				select {
				case db.ckpt <- struct{}{}:
				default:
				}
			}
		}
	}
}

func (db *DB) commitBatch(conn *sql.Conn, w *chainWriter, batch []*pending) error {
	start := time.Now()
	err := w.write(context.Background(), conn, batch)
	if err == nil && db.onCommit != nil {
		db.onCommit(len(batch), time.Since(start))
	}
	if err != nil {
		err = fmt.Errorf("audit write to %s: %w", db.path, err)
	}
	for i, p := range batch {
		p.done <- err
		batch[i] = nil
	}
	return err
}

// chainWriter appends rows in one BEGIN IMMEDIATE transaction, reading the
// chain tail inside it, so that several processes appending at once keep a
// single valid chain.
type chainWriter struct {
	busyTimeout time.Duration
	buf         []byte
	rows        []*row
	args        []any
}

// insertColumns are the events columns the writer fills, in args order.
const insertColumns = `seq, ts, kind, request_id, profile, client, method, host, path, query, status, code,
	outcome, bytes_in, bytes_out, duration_ms, key_fingerprint, detail, prev_hash, hash`

const insertArgs = 20

// insertChunks are the row counts of the multi-row INSERT statements the
// writer uses (largest first): fewer statements per batch means fewer cgo
// and database/sql round trips per event. go-sqlite3's statement cache
// (_stmt_cache_size) keeps them prepared.
var insertChunks = []int{64, 16, 4, 1}

var insertSQL = func() map[int]string {
	m := make(map[int]string, len(insertChunks))
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", insertArgs), ",") + ")"
	for _, n := range insertChunks {
		m[n] = "INSERT INTO events (" + insertColumns + ") VALUES " +
			strings.TrimSuffix(strings.Repeat(one+",", n), ",")
	}
	return m
}()

func (w *chainWriter) write(ctx context.Context, conn *sql.Conn, batch []*pending) error {
	tx, err := w.begin(ctx, conn)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows := w.rows[:0]
	for _, p := range batch {
		rows = append(rows, &p.r)
	}
	w.rows = rows
	if err := w.appendRows(ctx, tx, rows); err != nil {
		return err
	}
	return tx.Commit()
}

// begin starts the write transaction (BEGIN IMMEDIATE). The writer's
// connection has SQLite's busy timeout off: SQLite's own busy handler sleeps
// 1, 2, 5, 10… ms between tries, which would stall every submitter whenever
// another process (a CLI recording an admin event) holds the lock for a few
// microseconds. This loop retries with short sleeps until busyTimeout.
func (w *chainWriter) begin(ctx context.Context, conn *sql.Conn) (*sql.Tx, error) {
	deadline := time.Now().Add(w.busyTimeout)
	pause := 20 * time.Microsecond
	for {
		tx, err := conn.BeginTx(ctx, nil)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return tx, err
		}
		time.Sleep(pause)
		pause = min(2*pause, time.Millisecond)
	}
}

func isBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// appendRows chains rows onto the current tail inside tx.
func (w *chainWriter) appendRows(ctx context.Context, tx *sql.Tx, rows []*row) error {
	seq, prev, err := tail(ctx, tx)
	if err != nil {
		return fmt.Errorf("read chain tail: %w", err)
	}
	for _, r := range rows {
		seq++
		r.seq = seq
		r.prevHash = prev
		var h [HashSize]byte
		h, w.buf = chainHash(prev, r, w.buf)
		r.hash = h[:]
		prev = r.hash
	}
	for len(rows) > 0 {
		n := insertChunks[len(insertChunks)-1]
		for _, c := range insertChunks {
			if c <= len(rows) {
				n = c
				break
			}
		}
		args := w.args[:0]
		for _, r := range rows[:n] {
			args = append(args, r.seq, r.ts, r.kind, textArg(r.requestID), textArg(r.profile), textArg(r.client),
				textArg(r.method), textArg(r.host), textArg(r.path), textArg(r.query), intArg(r.status),
				textArg(r.code), textArg(r.outcome), intArg(r.bytesIn), intArg(r.bytesOut), floatArg(r.durationMS),
				textArg(r.keyFingerprint), textArg(r.detail), r.prevHash, r.hash)
		}
		w.args = args
		if _, err := tx.ExecContext(ctx, insertSQL[n], args...); err != nil {
			return err
		}
		clear(args)
		rows = rows[n:]
	}
	return nil
}

// textArg, intArg and floatArg pass NULL or a plain value, sparing
// database/sql the reflection it needs for pointer arguments.
func textArg(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func intArg(v *int64) any {
	if v == nil {
		return nil
	}
	return *v
}

func floatArg(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

// tail returns the last seq and hash of the chain: the newest event, or the
// newest prune checkpoint when no event remains, or (0, 32 zero bytes) for
// an empty database.
func tail(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) (int64, []byte, error) {
	var seq int64
	var h []byte
	err := q.QueryRowContext(ctx, "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").Scan(&seq, &h)
	if errors.Is(err, sql.ErrNoRows) {
		err = q.QueryRowContext(ctx, "SELECT seq, hash FROM checkpoints ORDER BY seq DESC LIMIT 1").Scan(&seq, &h)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, make([]byte, HashSize), nil
		}
	}
	if err != nil {
		return 0, nil, err
	}
	if len(h) != HashSize {
		return 0, nil, fmt.Errorf("chain tail seq %d: hash is %d bytes, want %d", seq, len(h), HashSize)
	}
	return seq, h, nil
}

// checkpointer runs passive WAL checkpoints on its own connection when the
// writer nudges it, and a final one at Close.
func (db *DB) checkpointer(conn *sql.Conn) {
	defer close(db.ckptDone)
	defer conn.Close()
	for range db.ckpt {
		// Errors are not fatal: the next checkpoint (or SQLite at the last
		// close) catches up, and the WAL stays correct meanwhile.
		_, _ = conn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
	}
	_, _ = conn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
}
