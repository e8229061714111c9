package kanbot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
)

// maxComment bounds a comment's content.
const maxComment = 10_000

// deletedContent replaces the content of a soft-deleted comment.
const deletedContent = "[deleted]"

// Comment is a comment on a card. Comments made with an API key are by an
// agent: actor_type "agent", actor_name "<username>-bot".
type Comment struct {
	ID        string `json:"id"`
	CardID    string `json:"card_id"`
	UserID    string `json:"user_id"`
	Content   string `json:"content"`
	ActorType string `json:"actor_type"`
	ActorName string `json:"actor_name"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
	IsEdited  bool   `json:"is_edited"`
	IsDeleted bool   `json:"is_deleted"`
}

const commentColumns = `id, card_id, user_id, content, actor_type, actor_name, created_at, updated_at, is_edited, is_deleted`

func scanComment(s scanner) (*Comment, error) {
	var c Comment
	err := s.Scan(&c.ID, &c.CardID, &c.UserID, &c.Content, &c.ActorType, &c.ActorName, &c.CreatedAt, &c.UpdatedAt,
		&c.IsEdited, &c.IsDeleted)
	return &c, err
}

// loadComments returns a card's comments that are not deleted, oldest first.
func loadComments(ctx context.Context, q querier, cardID string) ([]Comment, error) {
	return queryAll(ctx, q, "read comments", scanComment,
		`SELECT `+commentColumns+` FROM comments WHERE card_id = ? AND NOT is_deleted ORDER BY created_at, rowid`, cardID)
}

func (b *Backend) listComments(w http.ResponseWriter, r *http.Request, u *User) error {
	ref, err := cardRoute(r.Context(), b.db, r, u, false)
	if err != nil {
		return err
	}
	cs, err := loadComments(r.Context(), b.db, ref.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, cs)
}

// readCommentContent reads the body of POST and PATCH: {"content": "…"},
// required, 1 to maxComment characters.
func readCommentContent(r *http.Request) (string, error) {
	f, err := readBody(r)
	if err != nil {
		return "", err
	}
	content, _ := f.str("content", true, 1, maxComment)
	return content, f.err()
}

func (b *Backend) postComment(w http.ResponseWriter, r *http.Request, u *User) error {
	ctx := r.Context()
	content, err := readCommentContent(r)
	if err != nil {
		return err
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create comment: %w", err)
	}
	defer tx.Rollback()
	ref, err := cardRoute(ctx, tx, r, u, true)
	if err != nil {
		return err
	}
	now := b.timestamp()
	c := Comment{ID: newID(), CardID: ref.ID, UserID: u.ID, Content: content, ActorType: "agent", ActorName: u.agentName(),
		CreatedAt: now, UpdatedAt: now}
	if _, err := tx.ExecContext(ctx, `INSERT INTO comments (`+commentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0)`,
		c.ID, c.CardID, c.UserID, c.Content, c.ActorType, c.ActorName, c.CreatedAt, c.UpdatedAt); err != nil {
		return fmt.Errorf("create comment: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create comment: %w", err)
	}
	return writeJSON(w, http.StatusCreated, c)
}

// commentRoute checks read access to the card, finds {comment_id} on it and
// requires the caller to be its author. Editing needs no write role: a guest
// could not have written the comment in the first place, and a demoted
// author may still fix or withdraw their own words.
func commentRoute(ctx context.Context, tx *sql.Tx, r *http.Request, u *User) (*Comment, error) {
	ref, err := cardRoute(ctx, tx, r, u, false)
	if err != nil {
		return nil, err
	}
	id, err := pathID(r, "comment_id", msgCommentNotFound)
	if err != nil {
		return nil, err
	}
	c, err := scanComment(tx.QueryRowContext(ctx, `SELECT `+commentColumns+` FROM comments WHERE id = ? AND card_id = ?`, id, ref.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errStatus(http.StatusNotFound, msgCommentNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read comment: %w", err)
	}
	if c.UserID != u.ID {
		return nil, errStatus(http.StatusForbidden, msgOwnComments)
	}
	return c, nil
}

func (b *Backend) patchComment(w http.ResponseWriter, r *http.Request, u *User) error {
	ctx := r.Context()
	content, err := readCommentContent(r)
	if err != nil {
		return err
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update comment: %w", err)
	}
	defer tx.Rollback()
	c, err := commentRoute(ctx, tx, r, u)
	if err != nil {
		return err
	}
	if c.IsDeleted {
		return errStatus(http.StatusBadRequest, "Cannot edit a deleted comment")
	}
	c.Content, c.IsEdited, c.UpdatedAt = content, true, b.timestamp()
	if _, err := tx.ExecContext(ctx, `UPDATE comments SET content = ?, is_edited = 1, updated_at = ? WHERE id = ?`,
		c.Content, c.UpdatedAt, c.ID); err != nil {
		return fmt.Errorf("update comment: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update comment: %w", err)
	}
	return writeJSON(w, http.StatusOK, c)
}

// deleteComment is a soft delete: the row stays, its content is replaced.
func (b *Backend) deleteComment(w http.ResponseWriter, r *http.Request, u *User) error {
	ctx := r.Context()
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete comment: %w", err)
	}
	defer tx.Rollback()
	c, err := commentRoute(ctx, tx, r, u)
	if err != nil {
		return err
	}
	if !c.IsDeleted {
		c.Content, c.IsDeleted, c.UpdatedAt = deletedContent, true, b.timestamp()
		if _, err := tx.ExecContext(ctx, `UPDATE comments SET content = ?, is_deleted = 1, updated_at = ? WHERE id = ?`,
			c.Content, c.UpdatedAt, c.ID); err != nil {
			return fmt.Errorf("delete comment: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete comment: %w", err)
	}
	return writeJSON(w, http.StatusOK, c)
}
