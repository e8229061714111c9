package kanbot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Seed data: one demo user owning one space with two cards.
const (
	SeedEmail     = "demo@example.com"
	SeedUsername  = "demo"
	seedSpaceName = "Demo Space"
)

// SeedResult says what [Backend.Seed] found or made.
type SeedResult struct {
	Created bool   `json:"created"`
	UserID  string `json:"user_id"`
	Email   string `json:"email"`
	SpaceID string `json:"space_id"`
	Cards   int    `json:"cards"`
}

// Seed creates a small demo dataset (user demo@example.com, a space with the
// default columns and two cards in Inbox) in one transaction. It is
// idempotent: when the demo user exists it changes nothing and reports what
// is there. It creates no API key (keys are shown once; use
// `kanbot apikey create --user demo`).
func (b *Backend) Seed(ctx context.Context) (*SeedResult, error) {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	defer tx.Rollback()
	res := SeedResult{Email: SeedEmail}
	err = tx.QueryRowContext(ctx, `SELECT id FROM users WHERE email = ?`, SeedEmail).Scan(&res.UserID)
	switch {
	case err == nil:
		var spaceID sql.NullString
		if err := tx.QueryRowContext(ctx, `SELECT min(id) FROM spaces WHERE owner_id = ? AND name = ?`,
			res.UserID, seedSpaceName).Scan(&spaceID); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
		res.SpaceID = spaceID.String
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM cards c JOIN columns k ON k.id = c.column_id WHERE k.space_id = ?`,
			res.SpaceID).Scan(&res.Cards); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
		return &res, nil
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("seed: %w", err)
	}
	now := b.timestamp()
	res.UserID, res.Created = newID(), true
	if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, email, username, created_at) VALUES (?, ?, ?, ?)`,
		res.UserID, SeedEmail, SeedUsername, now); err != nil {
		if isUniqueViolation(err, "users.username") {
			return nil, ErrUsernameExists
		}
		return nil, fmt.Errorf("seed user: %w", err)
	}
	if res.SpaceID, err = b.createSpace(ctx, tx, res.UserID, NewSpace{Name: seedSpaceName, Type: "personal", Settings: "{}"}); err != nil {
		return nil, err
	}
	var inbox string
	if err := tx.QueryRowContext(ctx, `SELECT id FROM columns WHERE space_id = ? AND category = 'inbox'`, res.SpaceID).Scan(&inbox); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	for i, name := range []string{"Try the sidecar", "Read the README"} {
		if _, err := tx.ExecContext(ctx, `INSERT INTO cards (id, column_id, name, position, created_by, created_at, updated_at, column_entered_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, newID(), inbox, name, i, res.UserID, now, now, now); err != nil {
			return nil, fmt.Errorf("seed card: %w", err)
		}
		res.Cards++
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	return &res, nil
}
