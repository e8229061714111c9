package auditdb

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	lazy bool // a response event: may wait for the next eager commit
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
	p := &pending{lazy: ev.Kind == KindResponse, done: make(chan error, 1)}
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
// REDACTED, keeping the rest of the raw query as it was (order, escaping,
// separators).
//
// Servers disagree on how a query splits into names, so a name is matched
// the way the most lenient of them would read it: both '&' and ';'
// separate parameters; a name is compared after %- and '+'-decoding, with
// surrounding spaces trimmed and a trailing "[]" or "[index]" removed, and
// case-insensitively. So "%74oken", "TOKEN", "key+", "password[]" and
// "secret[0]" all match. It fails closed: the value of a parameter whose
// name cannot be decoded, or is empty (as in "secret;=v", which a server
// may read as the name "secret;"), is redacted too.
func (db *DB) redactQuery(q string) string {
	if q == "" || len(db.redact) == 0 {
		return q
	}
	var b *strings.Builder // nil until something is redacted
	start := 0             // start of the current parameter in q
	for i := 0; i <= len(q); i++ {
		if i < len(q) && q[i] != '&' && q[i] != ';' {
			continue
		}
		param := q[start:i]
		k, _, hasValue := strings.Cut(param, "=")
		if hasValue && db.redactName(k) {
			if b == nil {
				b = new(strings.Builder)
				b.Grow(len(q) + len(Redacted))
				b.WriteString(q[:start])
			}
			b.WriteString(k)
			b.WriteString("=")
			b.WriteString(Redacted)
		} else if b != nil {
			b.WriteString(param)
		}
		if b != nil && i < len(q) {
			b.WriteByte(q[i])
		}
		start = i + 1
	}
	if b == nil {
		return q
	}
	return b.String()
}

// redactName reports whether the value of the parameter with raw name k
// is to be redacted (see redactQuery).
func (db *DB) redactName(k string) bool {
	name, err := url.QueryUnescape(k)
	if err != nil {
		return true
	}
	name = strings.TrimSpace(name)
	if strings.HasSuffix(name, "]") {
		if j := strings.IndexByte(name, '['); j >= 0 {
			name = strings.TrimSpace(name[:j])
		}
	}
	if name == "" {
		return true
	}
	if db.redact[strings.ToLower(name)] {
		return true
	}
	// A name that decodes to something holding a separator ("secret%3Bx")
	// is read by some servers as several names.
	if strings.ContainsAny(name, "&;") {
		for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '&' || r == ';' }) {
			if db.redactName(url.QueryEscape(part)) {
				return true
			}
		}
	}
	return false
}

// writer is the only goroutine that appends through conn. It takes every
// event waiting (up to maxBatch), writes them in one transaction and then
// releases their submitters: group commit.
//
// A batch holding only lazy events (responses) is not committed at once:
// it is held for up to lazyDelay, until an eager event arrives (it then
// rides along with that event's commit), the batch is full, or Close.
func (db *DB) writer(conn *sqlite3.SQLiteConn) {
	defer close(db.ckpt)
	w := &chainWriter{conn: conn, busyTimeout: db.busyTimeout, check: db.checkFile}
	defer w.close()
	batch := make([]*pending, 0, db.maxBatch)
	eager := false   // batch holds an event whose submitter must not wait
	holding := false // hold is armed for the lazy events in batch
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	defer hold.Stop()
	sinceCkpt := 0
	add := func(p *pending) {
		batch = append(batch, p)
		eager = eager || !p.lazy
	}
	for {
		due := false
		select {
		case p := <-db.queue:
			add(p)
		case <-hold.C:
			holding, due = false, true
		case <-db.stop:
			// Close set closed before stop, so nothing more can be queued:
			// commit what is held and queued, then leave.
			for {
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
				db.commitBatch(w, batch)
				batch = batch[:0]
			}
		}
		if db.lastBatch > 1 && len(batch) == 1 {
			// Several submitters are active: let the ones released by the
			// previous commit queue their next event before this batch is
			// cut, so that one commit carries more events.
			runtime.Gosched()
		}
	gather:
		for len(batch) < db.maxBatch {
			select {
			case p := <-db.queue:
				add(p)
			default:
				break gather
			}
		}
		if !eager && !due && len(batch) < db.maxBatch && db.lazyDelay > 0 {
			if !holding {
				hold.Reset(db.lazyDelay)
				holding = true
			}
			db.held.Store(int64(len(batch)))
			continue
		}
		if holding {
			hold.Stop()
			holding = false
		}
		db.held.Store(0)
		db.lastBatch = len(batch)
		if db.commitBatch(w, batch) == nil {
			sinceCkpt += len(batch)
			if sinceCkpt >= db.ckptGap {
				sinceCkpt = 0
				select {
				case db.ckpt <- struct{}{}:
				default:
				}
			}
		}
		batch, eager = batch[:0], false
	}
}

func (db *DB) commitBatch(w *chainWriter, batch []*pending) error {
	start := time.Now()
	err := w.write(batch)
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

// chainWriter appends the writer's batches in one BEGIN IMMEDIATE
// transaction each, on the go-sqlite3 connection itself: database/sql
// would add a goroutine, a context and several allocations per
// transaction, and statements here stay prepared for the writer's life.
//
// It reads the chain tail inside each transaction, so that several
// processes appending at once keep a single valid chain. The tail query is
// skipped when nothing else can have committed since this writer's last
// transaction: PRAGMA data_version, read inside the transaction (after the
// write lock is taken), changes whenever another connection (another
// process, a prune, a CLI) has committed, and never for our own commits.
type chainWriter struct {
	conn        *sqlite3.SQLiteConn
	busyTimeout time.Duration
	// check runs just before each COMMIT (DB.checkFile): a commit to a
	// database file that was removed or replaced would be lost, so the
	// batch fails instead.
	check       func() error
	inserts     map[int]driver.Stmt
	versionStmt driver.Stmt
	tailStmt    driver.Stmt

	// The chain tail after our last commit, valid while known and the
	// data_version read in the next transaction equals version.
	known   bool
	version int64
	seq     int64
	hash    [HashSize]byte

	buf  []byte
	rows []*row
	args []driver.NamedValue
	dest []driver.Value
}

// insertColumns are the events columns the writer fills, in args order.
const insertColumns = `seq, ts, kind, request_id, profile, client, method, host, path, query, status, code,
	outcome, bytes_in, bytes_out, duration_ms, key_fingerprint, detail, prev_hash, hash`

const insertArgs = 20

// insertChunks are the row counts of the multi-row INSERT statements the
// writer uses (largest first): fewer statements per batch means fewer cgo
// round trips per event.
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

const (
	tailSQL        = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
	checkpointSQL  = "SELECT seq, hash FROM checkpoints ORDER BY seq DESC LIMIT 1"
	dataVersionSQL = "PRAGMA data_version"
	beginSQL       = "BEGIN IMMEDIATE"
	commitSQL      = "COMMIT"
	rollbackSQL    = "ROLLBACK"
)

// bg is the context of the writer's driver calls: one without a Done
// channel keeps go-sqlite3 on its synchronous path (no goroutine per
// statement). The busy loop in begin is the writer's only wait.
var bg = context.Background()

func (w *chainWriter) close() {
	for _, s := range w.inserts {
		s.Close()
	}
	if w.versionStmt != nil {
		w.versionStmt.Close()
	}
	if w.tailStmt != nil {
		w.tailStmt.Close()
	}
}

func (w *chainWriter) write(batch []*pending) error {
	if err := w.begin(); err != nil {
		w.known = false
		return err
	}
	rows := w.rows[:0]
	for _, p := range batch {
		rows = append(rows, &p.r)
	}
	w.rows = rows
	err := w.appendRows(rows)
	if err == nil && w.check != nil {
		err = w.check()
	}
	if err == nil {
		_, err = w.conn.ExecContext(bg, commitSQL, nil)
	}
	if err != nil {
		w.known = false
		// Rolls back what the failed statement left; harmless if COMMIT
		// itself already ended the transaction.
		_, _ = w.conn.ExecContext(bg, rollbackSQL, nil)
		return err
	}
	last := rows[len(rows)-1]
	w.seq = last.seq
	copy(w.hash[:], last.hash)
	return nil
}

// begin starts the write transaction (BEGIN IMMEDIATE). The writer's
// connection has SQLite's busy timeout off: SQLite's own busy handler sleeps
// 1, 2, 5, 10… ms between tries, which would stall every submitter whenever
// another process (a CLI recording an admin event) holds the lock for a few
// microseconds. This loop retries with short sleeps until busyTimeout.
func (w *chainWriter) begin() error {
	deadline := time.Now().Add(w.busyTimeout)
	pause := 20 * time.Microsecond
	for {
		_, err := w.conn.ExecContext(bg, beginSQL, nil)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(pause)
		pause = min(2*pause, time.Millisecond)
	}
}

func isBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// tail returns the chain tail inside the current transaction: the cached
// one if data_version says no other connection has committed since our
// last transaction, else read from the database.
func (w *chainWriter) tail() (int64, []byte, error) {
	var err error
	if w.versionStmt == nil {
		if w.versionStmt, err = w.conn.Prepare(dataVersionSQL); err != nil {
			return 0, nil, err
		}
	}
	v, _, err := w.queryRow(w.versionStmt, false)
	if err != nil {
		return 0, nil, err
	}
	if w.known && v == w.version {
		return w.seq, w.hash[:], nil
	}
	if w.tailStmt == nil {
		if w.tailStmt, err = w.conn.Prepare(tailSQL); err != nil {
			return 0, nil, err
		}
	}
	seq, h, err := w.queryRow(w.tailStmt, true)
	if errors.Is(err, io.EOF) {
		var cs driver.Stmt
		if cs, err = w.conn.Prepare(checkpointSQL); err != nil {
			return 0, nil, err
		}
		seq, h, err = w.queryRow(cs, true)
		cs.Close()
		if errors.Is(err, io.EOF) {
			seq, h, err = 0, make([]byte, HashSize), nil
		}
	}
	if err != nil {
		return 0, nil, err
	}
	if len(h) != HashSize {
		return 0, nil, fmt.Errorf("chain tail seq %d: hash is %d bytes, want %d", seq, len(h), HashSize)
	}
	w.version, w.known = v, true
	return seq, h, nil
}

// queryRow runs a prepared one-row query and returns its first column (an
// integer) and, with blob, its second (a copy). io.EOF means no row.
func (w *chainWriter) queryRow(s driver.Stmt, blob bool) (int64, []byte, error) {
	rows, err := s.(driver.StmtQueryContext).QueryContext(bg, nil)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	if cap(w.dest) < 2 {
		w.dest = make([]driver.Value, 2)
	}
	dest := w.dest[:len(rows.Columns())]
	if err := rows.Next(dest); err != nil {
		return 0, nil, err
	}
	n, ok := dest[0].(int64)
	if !ok {
		return 0, nil, fmt.Errorf("chain tail: unexpected %T", dest[0])
	}
	var h []byte
	if blob {
		b, _ := dest[1].([]byte)
		h = bytes.Clone(b)
	}
	clear(dest)
	return n, h, nil
}

// appendRows chains rows onto the current tail inside the transaction and
// inserts them with as few statements as insertChunks allow.
func (w *chainWriter) appendRows(rows []*row) error {
	seq, prev, err := w.tail()
	if err != nil {
		return fmt.Errorf("read chain tail: %w", err)
	}
	w.buf = chainRows(seq, prev, rows, w.buf)
	if w.inserts == nil {
		w.inserts = make(map[int]driver.Stmt, len(insertChunks))
	}
	for len(rows) > 0 {
		n := chunkFor(len(rows))
		s := w.inserts[n]
		if s == nil {
			if s, err = w.conn.Prepare(insertSQL[n]); err != nil {
				return err
			}
			w.inserts[n] = s
		}
		args := w.args[:0]
		for _, r := range rows[:n] {
			for _, v := range r.values() {
				args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: v})
			}
		}
		w.args = args
		_, err := s.(driver.StmtExecContext).ExecContext(bg, args)
		clear(args)
		if err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// chunkFor is the largest insert chunk that fits n rows.
func chunkFor(n int) int {
	for _, c := range insertChunks {
		if c <= n {
			return c
		}
	}
	return insertChunks[len(insertChunks)-1]
}

// chainRows assigns seq, prev_hash and hash to rows, continuing the chain
// from (seq, prev).
func chainRows(seq int64, prev []byte, rows []*row, buf []byte) []byte {
	for _, r := range rows {
		seq++
		r.seq = seq
		r.prevHash = prev
		var h [HashSize]byte
		h, buf = chainHash(prev, r, buf)
		r.hash = h[:]
		prev = r.hash
	}
	return buf
}

// values returns r's insertColumns values: NULL or a plain value, sparing
// the driver reflection on pointers.
func (r *row) values() [insertArgs]any {
	return [insertArgs]any{r.seq, r.ts, r.kind, textArg(r.requestID), textArg(r.profile), textArg(r.client),
		textArg(r.method), textArg(r.host), textArg(r.path), textArg(r.query), intArg(r.status),
		textArg(r.code), textArg(r.outcome), intArg(r.bytesIn), intArg(r.bytesOut), floatArg(r.durationMS),
		textArg(r.keyFingerprint), textArg(r.detail), r.prevHash, r.hash}
}

// appendRowsTx chains rows onto the current tail inside tx through
// database/sql (prune and tests; the writer uses appendRows).
func appendRowsTx(ctx context.Context, tx *sql.Tx, rows []*row) error {
	seq, prev, err := tail(ctx, tx)
	if err != nil {
		return fmt.Errorf("read chain tail: %w", err)
	}
	chainRows(seq, prev, rows, nil)
	for len(rows) > 0 {
		n := chunkFor(len(rows))
		args := make([]any, 0, n*insertArgs)
		for _, r := range rows[:n] {
			v := r.values()
			args = append(args, v[:]...)
		}
		if _, err := tx.ExecContext(ctx, insertSQL[n], args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// textArg, intArg and floatArg pass NULL or a plain value.
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
	err := q.QueryRowContext(ctx, tailSQL).Scan(&seq, &h)
	if errors.Is(err, sql.ErrNoRows) {
		err = q.QueryRowContext(ctx, checkpointSQL).Scan(&seq, &h)
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
