package kanbot

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// KeyPrefix starts every API key.
const KeyPrefix = "kb_"

// KeyLen is the length of an API key: "kb_" and 43 characters of unpadded
// base64url (32 random bytes).
const KeyLen = len(KeyPrefix) + 43

// lastUsedEvery bounds how often a key's last_used is written: a busy agent
// must not turn every read into a write.
const lastUsedEvery = time.Minute

// APIKey is an API key's metadata as GET /api/v1/auth/api-keys shows it; the
// key itself is never stored.
type APIKey struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Permissions json.RawMessage `json:"permissions"`
	IsAgent     bool            `json:"is_agent"`
	CreatedAt   string          `json:"created_at"`
	LastUsed    *string         `json:"last_used"`
	// UserID owns the key (CLI listings only).
	UserID string `json:"-"`
	// KeyHashPrefix is the first 12 hex digits of the key's SHA-256 (CLI
	// listings only): enough to tell keys apart, useless to an attacker.
	KeyHashPrefix string `json:"-"`
}

// NewAPIKey is a key just created: its metadata plus the key, which is
// returned this once and never again.
type NewAPIKey struct {
	APIKey
	Key string `json:"key"`
}

// generateKey returns a fresh key and the SHA-256 hex that is stored.
func generateKey() (key, hash string) {
	var raw [32]byte
	rand.Read(raw[:]) // never returns an error
	key = KeyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	return key, hashKey(key)
}

func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

const keyColumns = `id, name, permissions, is_agent, created_at, last_used, user_id, key_hash`

func scanKey(s scanner) (*APIKey, error) {
	var k APIKey
	var perms, hash string
	var lastUsed sql.NullString
	if err := s.Scan(&k.ID, &k.Name, &perms, &k.IsAgent, &k.CreatedAt, &lastUsed, &k.UserID, &hash); err != nil {
		return nil, err
	}
	k.Permissions = json.RawMessage(perms)
	if lastUsed.Valid {
		k.LastUsed = &lastUsed.String
	}
	k.KeyHashPrefix = hash[:min(12, len(hash))]
	return &k, nil
}

// CreateAPIKey creates a key for the user. The key is in the result only;
// the database keeps its SHA-256. It returns ErrUserNotFound, or a
// *ValidationError for a name outside 1..100 characters.
func (b *Backend) CreateAPIKey(ctx context.Context, userID, name string) (*NewAPIKey, error) {
	if n := len([]rune(name)); n < 1 || n > 100 {
		return nil, invalid([]any{"body", "name"}, "String should have 1 to 100 characters", "string_too_long")
	}
	key, hash := generateKey()
	id := newID()
	now := b.timestamp()
	_, err := b.db.ExecContext(ctx, `INSERT INTO api_keys (id, user_id, name, key_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		id, userID, name, hash, now)
	if isForeignKeyViolation(err) {
		return nil, ErrUserNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("insert api key: %w", err)
	}
	return &NewAPIKey{APIKey: APIKey{ID: id, Name: name, Permissions: json.RawMessage("{}"), IsAgent: true,
		CreatedAt: now, UserID: userID, KeyHashPrefix: hash[:12]}, Key: key}, nil
}

// ListAPIKeys lists the keys of one user, or of everyone when userID is "",
// oldest first.
func (b *Backend) ListAPIKeys(ctx context.Context, userID string) ([]APIKey, error) {
	q := `SELECT ` + keyColumns + ` FROM api_keys`
	var args []any
	if userID != "" {
		q += ` WHERE user_id = ?`
		args = append(args, userID)
	}
	return queryAll(ctx, b.db, "list api keys", scanKey, q+` ORDER BY created_at, rowid`, args...)
}

// RevokeAPIKey deletes a key by id and returns what it was. With a non-empty
// ownerID only that user's key matches (another user's key is
// ErrAPIKeyNotFound, indistinguishable from a missing one).
func (b *Backend) RevokeAPIKey(ctx context.Context, keyID, ownerID string) (*APIKey, error) {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("revoke api key: %w", err)
	}
	defer tx.Rollback()
	k, err := scanKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, keyID))
	if errors.Is(err, sql.ErrNoRows) || err == nil && ownerID != "" && k.UserID != ownerID {
		return nil, ErrAPIKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("revoke api key: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM api_keys WHERE id = ?`, keyID); err != nil {
		return nil, fmt.Errorf("revoke api key: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("revoke api key: %w", err)
	}
	return k, nil
}

// authenticate resolves the X-API-Key header values to a user: 401 when
// missing or unknown, 403 when the user is banned or inactive. Only the hash
// of the presented key is ever compared or stored; a lookup by an indexed
// hash leaks nothing useful through timing.
func (b *Backend) authenticate(ctx context.Context, values []string) (*User, error) {
	if len(values) == 0 || values[0] == "" {
		return nil, errStatus(http.StatusUnauthorized, msgNotAuthenticated)
	}
	if len(values) > 1 || len(values[0]) != KeyLen {
		return nil, errStatus(http.StatusUnauthorized, msgInvalidKey)
	}
	var keyID string
	var lastUsed sql.NullString
	row := b.db.QueryRowContext(ctx, `SELECT k.id, k.last_used, `+prefixed("u", userColumns)+`
		FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?`, hashKey(values[0]))
	var u User
	var settings string
	var bannedAt sql.NullString
	err := row.Scan(&keyID, &lastUsed, &u.ID, &u.Email, &u.Username, &u.Language, &settings, &u.IsActive, &u.IsAdmin,
		&u.IsBanned, &bannedAt, &u.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errStatus(http.StatusUnauthorized, msgInvalidKey)
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	u.Settings = json.RawMessage(settings)
	if bannedAt.Valid {
		u.BannedAt = &bannedAt.String
	}
	if u.IsBanned {
		return nil, errStatus(http.StatusForbidden, msgSuspended)
	}
	if !u.IsActive {
		return nil, errStatus(http.StatusForbidden, msgInactive)
	}
	if now := b.now(); !lastUsed.Valid || since(lastUsed.String, now, lastUsedEvery) {
		// The WHERE repeats the staleness test so that concurrent requests
		// write at most once; a failure here must not fail the request.
		if _, err := b.db.ExecContext(ctx, `UPDATE api_keys SET last_used = ? WHERE id = ? AND (last_used IS NULL OR last_used <= ?)`,
			now.UTC().Format(timeFormat), keyID, now.Add(-lastUsedEvery).UTC().Format(timeFormat)); err != nil {
			b.log.Warn().Err(err).Str("key_id", keyID).Msg("update api key last_used")
		}
	}
	return &u, nil
}

func (b *Backend) postAPIKey(w http.ResponseWriter, r *http.Request, u *User) error {
	f, err := readBody(r)
	if err != nil {
		return err
	}
	name, _ := f.str("name", true, 1, 100)
	if err := f.err(); err != nil {
		return err
	}
	k, err := b.CreateAPIKey(r.Context(), u.ID, name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, k)
}

func (b *Backend) listAPIKeys(w http.ResponseWriter, r *http.Request, u *User) error {
	keys, err := b.ListAPIKeys(r.Context(), u.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, keys)
}

func (b *Backend) deleteAPIKey(w http.ResponseWriter, r *http.Request, u *User) error {
	id, err := pathID(r, "id", msgKeyNotFound)
	if err != nil {
		return err
	}
	if _, err := b.RevokeAPIKey(r.Context(), id, u.ID); errors.Is(err, ErrAPIKeyNotFound) {
		return errStatus(http.StatusNotFound, msgKeyNotFound)
	} else if err != nil {
		return err
	}
	return noContent(w)
}
