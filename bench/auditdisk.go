package main

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/mattn/go-sqlite3" // the driver the sidecar uses
)

// measureAuditDisk reads what the sidecar's audit wrote during the run, after
// it has shut down: the number of events and the bytes its database files
// take on disk. The WAL is checkpointed into the main file first, so the
// figure is what the events occupy for good (a WAL is recycled, not grown
// for ever); the size before the checkpoint is kept too.
func measureAuditDisk(ctx context.Context, dbPath string, d *auditDetail) error {
	files := auditFiles(dbPath)
	if len(files) == 0 {
		return fmt.Errorf("audit database %s does not exist after the run", dbPath)
	}
	before, err := filesSize(files)
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite3", dbPath+"?_busy_timeout=5000")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&d.LoadEvents); err != nil {
		return fmt.Errorf("count audit events: %w", err)
	}
	if d.LoadEvents == 0 {
		return fmt.Errorf("audit database %s has no events after the run", dbPath)
	}
	var busy, logFrames, ckpt int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &ckpt); err != nil {
		return fmt.Errorf("checkpoint audit database: %w", err)
	}
	if err := db.Close(); err != nil {
		return err
	}
	after, err := filesSize(auditFiles(dbPath))
	if err != nil {
		return err
	}
	d.LoadBytesBeforeCkpt = before
	d.LoadBytes = after
	return nil
}
