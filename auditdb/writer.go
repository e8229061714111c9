package auditdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
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
	w := &chainWriter{}
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
	buf []byte
}

const insertSQL = `INSERT INTO events (seq, ts, kind, request_id, profile, client, method, host, path, query,
	status, code, outcome, bytes_in, bytes_out, duration_ms, key_fingerprint, detail, prev_hash, hash)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func (w *chainWriter) write(ctx context.Context, conn *sql.Conn, batch []*pending) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows := make([]*row, len(batch))
	for i, p := range batch {
		rows[i] = &p.r
	}
	if err := w.appendRows(ctx, tx, rows); err != nil {
		return err
	}
	return tx.Commit()
}

// appendRows chains rows onto the current tail inside tx.
func (w *chainWriter) appendRows(ctx context.Context, tx *sql.Tx, rows []*row) error {
	seq, prev, err := tail(ctx, tx)
	if err != nil {
		return fmt.Errorf("read chain tail: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, insertSQL)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, r := range rows {
		seq++
		r.seq = seq
		r.prevHash = prev
		var h [HashSize]byte
		h, w.buf = chainHash(prev, r, w.buf)
		r.hash = h[:]
		if _, err := stmt.ExecContext(ctx, r.seq, r.ts, r.kind, r.requestID, r.profile, r.client, r.method,
			r.host, r.path, r.query, r.status, r.code, r.outcome, r.bytesIn, r.bytesOut, r.durationMS,
			r.keyFingerprint, r.detail, r.prevHash, r.hash); err != nil {
			return err
		}
		prev = r.hash
	}
	return nil
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
