package auditdb

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
)

// VerifyResult is the outcome of walking the chain.
type VerifyResult struct {
	// OK is true when every remaining event chains correctly.
	OK bool `json:"ok"`
	// Events is the number of events checked (up to the first bad one).
	Events int64 `json:"events"`
	// FirstSeq and LastSeq bound the events checked (0 when none).
	FirstSeq int64 `json:"first_seq"`
	LastSeq  int64 `json:"last_seq"`
	// CheckpointSeq is the last pruned seq the chain starts from (0: never pruned).
	CheckpointSeq int64 `json:"checkpoint_seq"`
	// HeadHash is the hex hash of the last event checked. Keeping a copy of
	// it elsewhere also detects truncation of the newest events, which no
	// hash chain can detect on its own.
	HeadHash string `json:"head_hash,omitempty"`
	// BadSeq is the first sequence number where the chain breaks (0 when OK);
	// Reason says how.
	BadSeq int64  `json:"bad_seq,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Verify walks the whole chain in one read transaction, starting from the
// newest prune checkpoint (or 32 zero bytes), and reports the first event
// that is missing, out of order, altered or inserted. A broken chain is a
// result (OK false), not an error; the error is for I/O failures.
func (db *DB) Verify(ctx context.Context) (VerifyResult, error) {
	var res VerifyResult
	tx, err := db.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return res, fmt.Errorf("verify: %w", err)
	}
	defer tx.Rollback()

	prev := make([]byte, HashSize)
	err = tx.QueryRowContext(ctx, "SELECT seq, hash FROM checkpoints ORDER BY seq DESC LIMIT 1").Scan(&res.CheckpointSeq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return res, fmt.Errorf("verify: read checkpoint: %w", err)
	}
	if len(prev) != HashSize {
		res.BadSeq = res.CheckpointSeq + 1
		res.Reason = fmt.Sprintf("checkpoint at seq %d has a %d-byte hash", res.CheckpointSeq, len(prev))
		return res, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+rowColumns+` FROM events ORDER BY seq`)
	if err != nil {
		return res, fmt.Errorf("verify: %w", err)
	}
	defer rows.Close()
	want := res.CheckpointSeq + 1
	var buf []byte
	var r row
	for rows.Next() {
		if err := scanRow(rows, &r); err != nil {
			// A value of the wrong type (e.g. text in status) was written
			// behind our back: that row is bad.
			res.BadSeq, res.Reason = r.seq, "unreadable row: "+err.Error()
			if r.seq == 0 {
				res.BadSeq = want
			}
			return res, nil
		}
		switch {
		case r.seq < want:
			res.BadSeq, res.Reason = r.seq, fmt.Sprintf("seq %d is at or before the prune checkpoint %d", r.seq, res.CheckpointSeq)
		case r.seq > want:
			res.BadSeq, res.Reason = want, fmt.Sprintf("seq %d is missing (next present is %d)", want, r.seq)
		case !bytes.Equal(r.prevHash, prev):
			res.BadSeq, res.Reason = r.seq, "prev_hash does not match the previous event's hash"
		}
		if res.BadSeq != 0 {
			return res, nil
		}
		var h [HashSize]byte
		h, buf = chainHash(prev, &r, buf)
		if !bytes.Equal(h[:], r.hash) {
			res.BadSeq, res.Reason = r.seq, "hash does not match the event's content"
			return res, nil
		}
		if res.FirstSeq == 0 {
			res.FirstSeq = r.seq
		}
		res.LastSeq = r.seq
		res.Events++
		prev = append(prev[:0], r.hash...)
		want++
	}
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("verify: %w", err)
	}
	res.OK = true
	if res.Events > 0 {
		res.HeadHash = hex.EncodeToString(prev)
	}
	return res, nil
}

// rowColumns lists the events columns in row order, for scanRow.
const rowColumns = `seq, ts, kind, request_id, profile, client, method, host, path, query, status, code, outcome,
	bytes_in, bytes_out, duration_ms, key_fingerprint, detail, prev_hash, hash`

func scanRow(rows *sql.Rows, r *row) error {
	*r = row{}
	return rows.Scan(&r.seq, &r.ts, &r.kind, &r.requestID, &r.profile, &r.client, &r.method, &r.host,
		&r.path, &r.query, &r.status, &r.code, &r.outcome, &r.bytesIn, &r.bytesOut, &r.durationMS,
		&r.keyFingerprint, &r.detail, &r.prevHash, &r.hash)
}
