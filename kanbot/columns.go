package kanbot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
)

// columnCategories are the categories a column may have.
var columnCategories = []string{"default", "inbox", "in_progress", "waiting", "review", "archive"}

// Column is a column of a space (flat: no boards).
type Column struct {
	ID        string `json:"id"`
	SpaceID   string `json:"space_id"`
	Name      string `json:"name"`
	Category  string `json:"category"`
	Position  int64  `json:"position"`
	CreatedAt string `json:"created_at"`
}

const columnColumns = `id, space_id, name, category, position, created_at`

func scanColumn(s scanner) (*Column, error) {
	var c Column
	err := s.Scan(&c.ID, &c.SpaceID, &c.Name, &c.Category, &c.Position, &c.CreatedAt)
	return &c, err
}

// columnAccess loads a column and checks the caller's access to its space:
// 404 "Column not found" when it does not exist, 403 when the caller is not a
// member of its space, and, when write is set, 403 when the caller's role
// may only read.
func columnAccess(ctx context.Context, q querier, columnID, userID string, write bool) (*Column, error) {
	c, err := scanColumn(q.QueryRowContext(ctx, `SELECT `+columnColumns+` FROM columns WHERE id = ?`, columnID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errStatus(http.StatusNotFound, msgColumnNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read column: %w", err)
	}
	role, _, err := spaceRole(ctx, q, c.SpaceID, userID)
	if err != nil {
		return nil, err
	}
	if write {
		if err := canWrite(role); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (b *Backend) listColumns(w http.ResponseWriter, r *http.Request, u *User) error {
	spaceID, err := queryID(r, "space_id", true)
	if err != nil {
		return err
	}
	if _, _, err := spaceRole(r.Context(), b.db, spaceID, u.ID); err != nil {
		return err
	}
	cols, err := queryAll(r.Context(), b.db, "list columns", scanColumn,
		`SELECT `+columnColumns+` FROM columns WHERE space_id = ? ORDER BY position, rowid`, spaceID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, cols)
}

func (b *Backend) postColumn(w http.ResponseWriter, r *http.Request, u *User) error {
	f, err := readBody(r)
	if err != nil {
		return err
	}
	name, _ := f.str("name", true, 1, 200)
	spaceID, _ := f.id("space_id", true)
	category, ok := f.enum("category", false, columnCategories...)
	if !ok {
		category = "default"
	}
	position, hasPosition := f.position("position")
	if err := f.err(); err != nil {
		return err
	}
	tx, err := b.db.BeginTx(r.Context(), nil)
	if err != nil {
		return fmt.Errorf("create column: %w", err)
	}
	defer tx.Rollback()
	role, _, err := spaceRole(r.Context(), tx, spaceID, u.ID)
	if err != nil {
		return err
	}
	if err := canWrite(role); err != nil {
		return err
	}
	if !hasPosition {
		if err := tx.QueryRowContext(r.Context(), `SELECT coalesce(max(position) + 1, 0) FROM columns WHERE space_id = ?`,
			spaceID).Scan(&position); err != nil {
			return fmt.Errorf("create column: %w", err)
		}
	}
	c := Column{ID: newID(), SpaceID: spaceID, Name: name, Category: category, Position: position, CreatedAt: b.timestamp()}
	if _, err := tx.ExecContext(r.Context(), `INSERT INTO columns (`+columnColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		c.ID, c.SpaceID, c.Name, c.Category, c.Position, c.CreatedAt); err != nil {
		return fmt.Errorf("create column: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create column: %w", err)
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (b *Backend) getColumn(w http.ResponseWriter, r *http.Request, u *User) error {
	id, err := pathID(r, "id", msgColumnNotFound)
	if err != nil {
		return err
	}
	c, err := columnAccess(r.Context(), b.db, id, u.ID, false)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (b *Backend) patchColumn(w http.ResponseWriter, r *http.Request, u *User) error {
	id, err := pathID(r, "id", msgColumnNotFound)
	if err != nil {
		return err
	}
	f, err := readBody(r)
	if err != nil {
		return err
	}
	name, hasName := f.str("name", false, 1, 200)
	category, hasCategory := f.enum("category", false, columnCategories...)
	position, hasPosition := f.position("position")
	if err := f.err(); err != nil {
		return err
	}
	tx, err := b.db.BeginTx(r.Context(), nil)
	if err != nil {
		return fmt.Errorf("update column: %w", err)
	}
	defer tx.Rollback()
	c, err := columnAccess(r.Context(), tx, id, u.ID, true)
	if err != nil {
		return err
	}
	if hasName {
		c.Name = name
	}
	if hasCategory {
		c.Category = category
	}
	if hasPosition {
		c.Position = position
	}
	if _, err := tx.ExecContext(r.Context(), `UPDATE columns SET name = ?, category = ?, position = ? WHERE id = ?`,
		c.Name, c.Category, c.Position, c.ID); err != nil {
		return fmt.Errorf("update column: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update column: %w", err)
	}
	return writeJSON(w, http.StatusOK, c)
}

func (b *Backend) deleteColumn(w http.ResponseWriter, r *http.Request, u *User) error {
	id, err := pathID(r, "id", msgColumnNotFound)
	if err != nil {
		return err
	}
	tx, err := b.db.BeginTx(r.Context(), nil)
	if err != nil {
		return fmt.Errorf("delete column: %w", err)
	}
	defer tx.Rollback()
	if _, err := columnAccess(r.Context(), tx, id, u.ID, true); err != nil {
		return err
	}
	if _, err := tx.ExecContext(r.Context(), `DELETE FROM columns WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete column: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete column: %w", err)
	}
	return noContent(w)
}
