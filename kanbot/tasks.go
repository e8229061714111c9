package kanbot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
)

// maxTaskText bounds a checklist item.
const maxTaskText = 1000

// Task is a checklist item of a card. The card's task_counter and
// task_completed_counter are computed from these rows, so they cannot drift.
type Task struct {
	ID        string `json:"id"`
	Text      string `json:"text"`
	Completed bool   `json:"completed"`
	Position  int64  `json:"position"`
	CreatedAt string `json:"created_at"`
}

const taskColumns = `id, text, completed, position, created_at`

func scanTask(s scanner) (*Task, error) {
	var t Task
	err := s.Scan(&t.ID, &t.Text, &t.Completed, &t.Position, &t.CreatedAt)
	return &t, err
}

func loadTasks(ctx context.Context, q querier, cardID string) ([]Task, error) {
	return queryAll(ctx, q, "read tasks", scanTask,
		`SELECT `+taskColumns+` FROM tasks WHERE card_id = ? ORDER BY position, rowid`, cardID)
}

// touchCard bumps a card's updated_at when something on it changes.
func (b *Backend) touchCard(ctx context.Context, tx *sql.Tx, cardID string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE cards SET updated_at = ? WHERE id = ?`, b.timestamp(), cardID); err != nil {
		return fmt.Errorf("touch card: %w", err)
	}
	return nil
}

func (b *Backend) postTask(w http.ResponseWriter, r *http.Request, u *User) error {
	ctx := r.Context()
	f, err := readBody(r)
	if err != nil {
		return err
	}
	text, _ := f.str("text", true, 1, maxTaskText)
	completed, _ := f.boolean("completed")
	if err := f.err(); err != nil {
		return err
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	defer tx.Rollback()
	ref, err := cardRoute(ctx, tx, r, u, true)
	if err != nil {
		return err
	}
	pos, err := nextPosition(ctx, tx, "tasks", "card_id", ref.ID)
	if err != nil {
		return err
	}
	t := Task{ID: newID(), Text: text, Completed: completed, Position: pos, CreatedAt: b.timestamp()}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tasks (id, card_id, text, completed, position, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, ref.ID, t.Text, t.Completed, t.Position, t.CreatedAt); err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	if err := b.touchCard(ctx, tx, ref.ID); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	return writeJSON(w, http.StatusCreated, t)
}

// taskRoute checks write access to the card and finds {task_id} on it.
func taskRoute(ctx context.Context, tx *sql.Tx, r *http.Request, u *User) (*cardRef, *Task, error) {
	ref, err := cardRoute(ctx, tx, r, u, true)
	if err != nil {
		return nil, nil, err
	}
	id, err := pathID(r, "task_id", msgTaskNotFound)
	if err != nil {
		return nil, nil, err
	}
	t, err := scanTask(tx.QueryRowContext(ctx, `SELECT `+taskColumns+` FROM tasks WHERE id = ? AND card_id = ?`, id, ref.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, errStatus(http.StatusNotFound, msgTaskNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read task: %w", err)
	}
	return ref, t, nil
}

func (b *Backend) patchTask(w http.ResponseWriter, r *http.Request, u *User) error {
	ctx := r.Context()
	f, err := readBody(r)
	if err != nil {
		return err
	}
	text, hasText := f.str("text", false, 1, maxTaskText)
	completed, hasCompleted := f.boolean("completed")
	if err := f.err(); err != nil {
		return err
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update task: %w", err)
	}
	defer tx.Rollback()
	ref, t, err := taskRoute(ctx, tx, r, u)
	if err != nil {
		return err
	}
	if hasText {
		t.Text = text
	}
	if hasCompleted {
		t.Completed = completed
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tasks SET text = ?, completed = ? WHERE id = ?`, t.Text, t.Completed, t.ID); err != nil {
		return fmt.Errorf("update task: %w", err)
	}
	if err := b.touchCard(ctx, tx, ref.ID); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update task: %w", err)
	}
	return writeJSON(w, http.StatusOK, t)
}

func (b *Backend) deleteTask(w http.ResponseWriter, r *http.Request, u *User) error {
	ctx := r.Context()
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete task: %w", err)
	}
	defer tx.Rollback()
	ref, t, err := taskRoute(ctx, tx, r, u)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tasks WHERE id = ?`, t.ID); err != nil {
		return fmt.Errorf("delete task: %w", err)
	}
	if err := b.touchCard(ctx, tx, ref.ID); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete task: %w", err)
	}
	return noContent(w)
}
