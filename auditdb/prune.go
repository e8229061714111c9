package auditdb

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// CodeAuditPruned is the Code of the admin event Prune appends.
const CodeAuditPruned = "audit_pruned"

// PruneResult says what Prune did.
type PruneResult struct {
	// Deleted is the number of events removed (0: nothing was old enough).
	Deleted int64 `json:"deleted"`
	// CheckpointSeq and CheckpointHash are the last pruned event and its
	// hash (hex); the first remaining event chains from them.
	CheckpointSeq  int64  `json:"checkpoint_seq"`
	CheckpointHash string `json:"checkpoint_hash,omitempty"`
}

// Prune deletes the oldest events, those before before, and records a
// checkpoint (the last deleted event's seq and hash) so that Verify still
// passes on what remains. Only a prefix of the chain is removed: it stops
// at the first event stamped at or after before, so the chain never gets a
// hole. In the same transaction it appends an admin event (code
// audit_pruned) saying what was pruned, with who in its detail if not empty.
//
// Freed pages are reused by new events; the file does not shrink unless
// someone runs VACUUM.
func (db *DB) Prune(ctx context.Context, before time.Time, who string) (PruneResult, error) {
	var res PruneResult
	if db.readOnly {
		return res, ErrReadOnly
	}
	cut := before.UTC().Format(tsLayout)
	tx, err := db.wdb.BeginTx(ctx, nil) // BEGIN IMMEDIATE: serialised with every writer
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	defer tx.Rollback()

	var firstKept sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT min(seq) FROM events WHERE ts >= ?", cut).Scan(&firstKept); err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	q := "SELECT seq, hash FROM events WHERE seq < ? ORDER BY seq DESC LIMIT 1"
	args := []any{firstKept.Int64}
	if !firstKept.Valid { // every event is older than before
		q = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
		args = nil
	}
	var last int64
	var hash []byte
	switch err := tx.QueryRowContext(ctx, q, args...).Scan(&last, &hash); {
	case errors.Is(err, sql.ErrNoRows):
		return res, nil // nothing old enough
	case err != nil:
		return res, fmt.Errorf("prune: %w", err)
	}
	var first int64
	if err := tx.QueryRowContext(ctx, "SELECT min(seq) FROM events").Scan(&first); err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	res.Deleted = last - first + 1
	res.CheckpointSeq = last
	res.CheckpointHash = hex.EncodeToString(hash)
	now := db.now().UTC()
	if _, err := tx.ExecContext(ctx, "INSERT INTO checkpoints (seq, hash, pruned_at, deleted) VALUES (?, ?, ?, ?)",
		last, hash, now.Format(tsLayout), res.Deleted); err != nil {
		return res, fmt.Errorf("prune: record checkpoint: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM events WHERE seq <= ?", last); err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	detail := map[string]any{
		"through_seq": last, "checkpoint_hash": res.CheckpointHash,
		"deleted": res.Deleted, "before": cut,
	}
	if who != "" {
		detail["who"] = who
	}
	d, err := json.Marshal(detail)
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	var r row
	if err := db.toRow(&Event{TS: now, Kind: KindAdmin, Code: CodeAuditPruned, Detail: d}, &r); err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	if err := appendRowsTx(ctx, tx, []*row{&r}); err != nil {
		return res, fmt.Errorf("prune: record event: %w", err)
	}
	if err := db.checkFile(); err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	return res, nil
}
