package auditdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Filter selects calls for Calls, Export and Stats. Zero fields do not
// filter.
type Filter struct {
	Profile   string
	Since     time.Time // started_at >= Since
	Until     time.Time // started_at < Until
	Outcome   string    // one of the Outcome* constants
	Code      string    // refusal or error code (reason)
	Status    int       // exact status, e.g. 200
	StatusMin int       // with StatusMax: a class, e.g. 400..499 for "4xx"
	StatusMax int
	Method    string // compared upper-cased
	// PathPrefix matches paths that start with it, byte for byte (no
	// wildcards, case-sensitive).
	PathPrefix string
	RequestID  string
	// Limit caps the rows returned (0: no limit).
	Limit int
	// Newest returns the newest calls first (and Limit keeps the newest);
	// otherwise calls come oldest first.
	Newest bool
}

// Call is one row of the calls view: a request and its outcome. Numeric
// fields are 0 where the view has NULL (no response yet, or not applicable).
type Call struct {
	Seq            int64     `json:"seq"`
	RequestID      string    `json:"request_id"`
	StartedAt      time.Time `json:"started_at"`
	Profile        string    `json:"profile"`
	Client         string    `json:"client"`
	Method         string    `json:"method"`
	Host           string    `json:"host"`
	Path           string    `json:"path"`
	Status         int       `json:"status"`
	Outcome        string    `json:"outcome"`
	Code           string    `json:"code"`
	DurationMS     float64   `json:"duration_ms"`
	BytesIn        int64     `json:"bytes_in"`
	BytesOut       int64     `json:"bytes_out"`
	KeyFingerprint string    `json:"key_fingerprint"`
}

// CallColumns names Call's fields in the order Export writes CSV columns.
var CallColumns = []string{"seq", "request_id", "started_at", "profile", "client", "method", "host", "path",
	"status", "outcome", "code", "duration_ms", "bytes_in", "bytes_out", "key_fingerprint"}

// Validate reports a filter value that can never match (an unknown
// outcome, an impossible status) as an error, so the CLI can say so.
func (f Filter) Validate() error {
	switch f.Outcome {
	case "", OutcomeForwarded, OutcomeRejected, OutcomeUpstreamError, OutcomeIncomplete, OutcomeClientAborted:
	default:
		return fmt.Errorf("outcome %q: want %s, %s, %s, %s or %s", f.Outcome,
			OutcomeForwarded, OutcomeRejected, OutcomeUpstreamError, OutcomeIncomplete, OutcomeClientAborted)
	}
	if f.Status < 0 || f.StatusMin < 0 || f.StatusMax < f.StatusMin || f.Limit < 0 {
		return errors.New("status and limit must not be negative")
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return fmt.Errorf("until (%s) must be after since (%s)", f.Until.UTC().Format(time.RFC3339), f.Since.UTC().Format(time.RFC3339))
	}
	return nil
}

// where renders f as SQL over the calls view.
func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, a ...any) {
		conds = append(conds, cond)
		args = append(args, a...)
	}
	if f.Profile != "" {
		add("profile = ?", f.Profile)
	}
	if !f.Since.IsZero() {
		add("started_at >= ?", f.Since.UTC().Format(tsLayout))
	}
	if !f.Until.IsZero() {
		add("started_at < ?", f.Until.UTC().Format(tsLayout))
	}
	if f.Outcome != "" {
		add("outcome = ?", f.Outcome)
	}
	if f.Code != "" {
		add("code = ?", f.Code)
	}
	if f.Status != 0 {
		add("status = ?", f.Status)
	}
	if f.StatusMax != 0 {
		add("status BETWEEN ? AND ?", f.StatusMin, f.StatusMax)
	}
	if f.Method != "" {
		add("method = ?", strings.ToUpper(f.Method))
	}
	if f.PathPrefix != "" {
		add("substr(path, 1, ?) = ?", len(f.PathPrefix), f.PathPrefix)
	}
	if f.RequestID != "" {
		add("request_id = ?", f.RequestID)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

const callSelect = `SELECT seq, request_id, started_at, profile, client, method, host, path, status, outcome, code,
	duration_ms, bytes_in, bytes_out, key_fingerprint FROM calls`

// Calls streams the calls matching f to fn, one at a time, inside one read
// transaction (memory stays flat however many rows match). An error from fn
// stops the iteration and is returned.
func (db *DB) Calls(ctx context.Context, f Filter, fn func(Call) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	where, args := f.where()
	q := callSelect + where + " ORDER BY seq"
	if f.Newest {
		q += " DESC"
	}
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := db.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("query calls: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c Call
		var rid, profile, client, method, host, path, code, fp sql.NullString
		var ts string
		var status, bin, bout sql.NullInt64
		var dur sql.NullFloat64
		if err := rows.Scan(&c.Seq, &rid, &ts, &profile, &client, &method, &host, &path, &status, &c.Outcome,
			&code, &dur, &bin, &bout, &fp); err != nil {
			return fmt.Errorf("query calls: %w", err)
		}
		c.StartedAt, err = time.Parse(tsLayout, ts)
		if err != nil {
			// Not written by us (ts is always tsLayout); keep going with
			// the best parse rather than hide the row.
			c.StartedAt, _ = time.Parse(time.RFC3339Nano, ts)
		}
		c.RequestID, c.Profile, c.Client, c.Method = rid.String, profile.String, client.String, method.String
		c.Host, c.Path, c.Code, c.KeyFingerprint = host.String, path.String, code.String, fp.String
		c.Status, c.DurationMS, c.BytesIn, c.BytesOut = int(status.Int64), dur.Float64, bin.Int64, bout.Int64
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("query calls: %w", err)
	}
	return nil
}

// ProfileStats summarises one profile's calls (DESIGN.md, `audit stats`).
type ProfileStats struct {
	Profile       string `json:"profile"` // "" for calls refused before a profile was known
	Calls         int64  `json:"calls"`
	Forwarded     int64  `json:"forwarded"`
	Rejected      int64  `json:"rejected"`
	UpstreamError int64  `json:"upstream_error"`
	Incomplete    int64  `json:"incomplete"`
	ClientAborted int64  `json:"client_aborted"`
	// RejectedBy counts refusals by code.
	RejectedBy  map[string]int64 `json:"rejected_by"`
	RateLimited int64            `json:"rate_limited"`
	Upstream401 int64            `json:"upstream_401"`
	Upstream403 int64            `json:"upstream_403"`
	// Mismatch counts the sidecar's cross-profile refusals
	// (upstream_mismatch and profile_not_allowed).
	Mismatch int64 `json:"mismatch"`
	// P50MS and P95MS are nearest-rank percentiles of the duration of
	// forwarded calls (0 when there are none).
	P50MS float64 `json:"p50_ms"`
	P95MS float64 `json:"p95_ms"`
}

// Stats summarises the calls matching f per profile, ordered by profile.
// Upstream 401/403 count forwarded calls the backend answered with that
// status.
func (db *DB) Stats(ctx context.Context, f Filter) ([]ProfileStats, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	f.Limit, f.Newest = 0, false
	where, args := f.where()
	tx, err := db.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT ifnull(profile, ''), count(*),
		count(CASE WHEN outcome = 'forwarded' THEN 1 END), count(CASE WHEN outcome = 'rejected' THEN 1 END), count(CASE WHEN outcome = 'upstream_error' THEN 1 END),
		count(CASE WHEN outcome = 'incomplete' THEN 1 END), count(CASE WHEN outcome = 'client_aborted' THEN 1 END),
		count(CASE WHEN code = 'rate_limited' THEN 1 END),
		count(CASE WHEN outcome = 'forwarded' AND status = 401 THEN 1 END), count(CASE WHEN outcome = 'forwarded' AND status = 403 THEN 1 END),
		count(CASE WHEN code IN ('upstream_mismatch', 'profile_not_allowed') THEN 1 END)
		FROM calls`+where+` GROUP BY 1 ORDER BY 1`, args...)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	var out []ProfileStats
	idx := map[string]int{}
	for rows.Next() {
		var s ProfileStats
		if err := rows.Scan(&s.Profile, &s.Calls, &s.Forwarded, &s.Rejected, &s.UpstreamError, &s.Incomplete,
			&s.ClientAborted, &s.RateLimited, &s.Upstream401, &s.Upstream403, &s.Mismatch); err != nil {
			rows.Close()
			return nil, fmt.Errorf("stats: %w", err)
		}
		s.RejectedBy = map[string]int64{}
		idx[s.Profile] = len(out)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	rows.Close()

	and := " WHERE "
	if where != "" {
		and = where + " AND "
	}
	rows, err = tx.QueryContext(ctx, `SELECT ifnull(profile, ''), ifnull(code, ''), count(*) FROM calls`+and+
		`outcome = 'rejected' GROUP BY 1, 2`, args...)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	for rows.Next() {
		var p, code string
		var n int64
		if err := rows.Scan(&p, &code, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("stats: %w", err)
		}
		if i, ok := idx[p]; ok {
			out[i].RejectedBy[code] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	rows.Close()

	rows, err = tx.QueryContext(ctx, `SELECT ifnull(profile, ''), duration_ms FROM calls`+and+
		`outcome = 'forwarded' AND duration_ms IS NOT NULL ORDER BY 1, 2`, args...)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	var cur string
	var durs []float64
	flush := func() {
		if i, ok := idx[cur]; ok && len(durs) > 0 {
			out[i].P50MS, out[i].P95MS = percentile(durs, 50), percentile(durs, 95)
		}
		durs = durs[:0]
	}
	for rows.Next() {
		var p string
		var d float64
		if err := rows.Scan(&p, &d); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		if p != cur {
			flush()
			cur = p
		}
		durs = append(durs, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	flush()
	return out, nil
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if !sort.Float64sAreSorted(sorted) {
		sort.Float64s(sorted)
	}
	rank := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}
