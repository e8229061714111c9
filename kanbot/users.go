package kanbot

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Errors the CLI and tests branch on (with errors.Is).
var (
	ErrEmailExists    = errors.New("email already registered")
	ErrUsernameExists = errors.New("username already taken")
	ErrUserNotFound   = errors.New("user not found")
	ErrAPIKeyNotFound = errors.New("api key not found")
	ErrSpaceNotFound  = errors.New("space not found")
)

// User is a Kanbot account as GET /api/v1/users/me shows it.
type User struct {
	ID        string          `json:"id"`
	Email     string          `json:"email"`
	Username  string          `json:"username"`
	Language  string          `json:"language"`
	Settings  json.RawMessage `json:"settings"`
	IsActive  bool            `json:"is_active"`
	IsAdmin   bool            `json:"is_admin"`
	IsBanned  bool            `json:"is_banned"`
	BannedAt  *string         `json:"banned_at"`
	CreatedAt string          `json:"created_at"`
}

// agentName is how comments and history name an API-key actor.
func (u *User) agentName() string { return u.Username + "-bot" }

// NewUser is the input of [Backend.CreateUser].
type NewUser struct {
	Email    string
	Username string
	// Password is stored as a PBKDF2-SHA256 hash. If empty, the account has
	// no password (login is out of scope; API keys are the way in).
	Password string
	Admin    bool
}

const userColumns = `id, email, username, language, settings, is_active, is_admin, is_banned, banned_at, created_at`

func scanUser(s scanner) (*User, error) {
	var u User
	var settings string
	var bannedAt sql.NullString
	if err := s.Scan(&u.ID, &u.Email, &u.Username, &u.Language, &settings, &u.IsActive, &u.IsAdmin,
		&u.IsBanned, &bannedAt, &u.CreatedAt); err != nil {
		return nil, err
	}
	u.Settings = json.RawMessage(settings)
	if bannedAt.Valid {
		u.BannedAt = &bannedAt.String
	}
	return &u, nil
}

// CreateUser adds an account. It returns a *ValidationError for a malformed
// email or username, and ErrEmailExists or ErrUsernameExists for a duplicate
// (compared case-insensitively).
func (b *Backend) CreateUser(ctx context.Context, nu NewUser) (*User, error) {
	var items []ValidationItem
	if !validEmail(nu.Email) {
		items = append(items, ValidationItem{Loc: []any{"email"}, Msg: "value is not a valid email address", Type: "value_error"})
	}
	if !usernameRE.MatchString(nu.Username) {
		items = append(items, ValidationItem{Loc: []any{"username"},
			Msg: "username must be 1-50 characters of letters, digits, _ . - and start with a letter or digit", Type: "value_error"})
	}
	if len(items) > 0 {
		return nil, &ValidationError{Items: items}
	}
	var hash sql.NullString
	if nu.Password != "" {
		h, err := hashPassword(nu.Password)
		if err != nil {
			return nil, err
		}
		hash = sql.NullString{String: h, Valid: true}
	}
	id := newID()
	_, err := b.db.ExecContext(ctx, `INSERT INTO users (id, email, username, password_hash, is_admin, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, id, nu.Email, nu.Username, hash, nu.Admin, b.timestamp())
	switch {
	case isUniqueViolation(err, "users.email"):
		return nil, ErrEmailExists
	case isUniqueViolation(err, "users.username"):
		return nil, ErrUsernameExists
	case err != nil:
		return nil, fmt.Errorf("insert user: %w", err)
	}
	return b.userByID(ctx, id)
}

// hashPassword returns "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>".
func hashPassword(pw string) (string, error) {
	const iterations = 600_000 // OWASP 2023 for PBKDF2-HMAC-SHA256
	salt := make([]byte, 16)
	rand.Read(salt)
	key, err := pbkdf2.Key(sha256.New, pw, salt, iterations, 32)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return "pbkdf2-sha256$" + strconv.Itoa(iterations) + "$" + hex.EncodeToString(salt) + "$" + hex.EncodeToString(key), nil
}

func (b *Backend) userByID(ctx context.Context, id string) (*User, error) {
	u, err := scanUser(b.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrUserNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read user: %w", err)
	}
	return u, nil
}

// FindUser looks a user up by identifier: a UUID, an email or a username
// (emails and usernames case-insensitively). It returns ErrUserNotFound.
func (b *Backend) FindUser(ctx context.Context, identifier string) (*User, error) {
	if id, ok := parseUUID(identifier); ok {
		return b.userByID(ctx, id)
	}
	u, err := scanUser(b.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = ? OR username = ?`,
		identifier, identifier))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrUserNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find user: %w", err)
	}
	return u, nil
}

// ListUsers returns one page (1-based) of users, newest first, and the total.
func (b *Backend) ListUsers(ctx context.Context, page, pageSize int) ([]User, int, error) {
	if page < 1 {
		page = 1
	}
	if pageSize < 1 {
		pageSize = 20
	}
	var total int
	if err := b.db.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count users: %w", err)
	}
	users, err := queryAll(ctx, b.db, "list users", scanUser,
		`SELECT `+userColumns+` FROM users ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`, pageSize, (page-1)*pageSize)
	if err != nil {
		return nil, 0, err
	}
	return users, total, nil
}

// DeleteUser deletes a user and, by cascade, their keys, memberships,
// comments and the spaces they own. It returns ErrUserNotFound.
func (b *Backend) DeleteUser(ctx context.Context, id string) error {
	res, err := b.db.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrUserNotFound
	}
	return nil
}

// SetBanned bans (refusing every key of the user with 403 "Account
// suspended") or unbans a user, and returns the updated user.
func (b *Backend) SetBanned(ctx context.Context, id string, banned bool) (*User, error) {
	var bannedAt sql.NullString
	if banned {
		bannedAt = sql.NullString{String: b.timestamp(), Valid: true}
	}
	res, err := b.db.ExecContext(ctx, `UPDATE users SET is_banned = ?, banned_at = ? WHERE id = ?`, banned, bannedAt, id)
	if err != nil {
		return nil, fmt.Errorf("ban user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, ErrUserNotFound
	}
	return b.userByID(ctx, id)
}

// SetAdmin grants or revokes global admin and returns the updated user.
func (b *Backend) SetAdmin(ctx context.Context, id string, admin bool) (*User, error) {
	res, err := b.db.ExecContext(ctx, `UPDATE users SET is_admin = ? WHERE id = ?`, admin, id)
	if err != nil {
		return nil, fmt.Errorf("set admin: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, ErrUserNotFound
	}
	return b.userByID(ctx, id)
}

// Stats are the whole-database counts of `kanbot system stats` and
// GET /api/v1/admin/stats.
type Stats struct {
	Users    int `json:"total_users"`
	Admins   int `json:"-"`
	Banned   int `json:"-"`
	Spaces   int `json:"total_spaces"`
	Cards    int `json:"total_cards"`
	Comments int `json:"total_comments"`
	APIKeys  int `json:"total_api_keys"`
}

// Stats counts users, spaces, cards, comments (not deleted) and API keys.
func (b *Backend) Stats(ctx context.Context) (*Stats, error) {
	var s Stats
	err := b.db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM users),
		(SELECT count(*) FROM users WHERE is_admin),
		(SELECT count(*) FROM users WHERE is_banned),
		(SELECT count(*) FROM spaces),
		(SELECT count(*) FROM cards),
		(SELECT count(*) FROM comments WHERE NOT is_deleted),
		(SELECT count(*) FROM api_keys)`).Scan(&s.Users, &s.Admins, &s.Banned, &s.Spaces, &s.Cards, &s.Comments, &s.APIKeys)
	if err != nil {
		return nil, fmt.Errorf("count: %w", err)
	}
	return &s, nil
}

func (b *Backend) getMe(w http.ResponseWriter, r *http.Request, u *User) error {
	return writeJSON(w, http.StatusOK, u)
}

func (b *Backend) getAgentMe(w http.ResponseWriter, r *http.Request, u *User) error {
	return writeJSON(w, http.StatusOK, map[string]any{
		"user_id": u.ID, "username": u.Username, "agent_name": u.agentName(), "is_agent": true,
	})
}

func requireAdmin(u *User) error {
	if !u.IsAdmin {
		return errStatus(http.StatusForbidden, msgAdminRequired)
	}
	return nil
}

func (b *Backend) adminUsers(w http.ResponseWriter, r *http.Request, u *User) error {
	if err := requireAdmin(u); err != nil {
		return err
	}
	page, err := queryInt(r, "page", 1, 1, 1<<30)
	if err != nil {
		return err
	}
	size, err := queryInt(r, "page_size", 20, 1, 100)
	if err != nil {
		return err
	}
	users, total, err := b.ListUsers(r.Context(), page, size)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"users": users, "total": total, "page": page, "page_size": size})
}

func (b *Backend) adminStats(w http.ResponseWriter, r *http.Request, u *User) error {
	if err := requireAdmin(u); err != nil {
		return err
	}
	s, err := b.Stats(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s)
}

// queryInt reads an integer query parameter in min..max, def when absent.
func queryInt(r *http.Request, name string, def, min, max int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, invalid([]any{"query", name}, "Input should be a valid integer", "int_parsing")
	}
	if n < min || n > max {
		return 0, invalid([]any{"query", name}, fmt.Sprintf("Input should be between %d and %d", min, max), "less_than_equal")
	}
	return n, nil
}
