package kanbot

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Space roles.
const (
	RoleOwner  = "owner"
	RoleMember = "member"
	RoleGuest  = "guest"
)

// spaceTypes are the types a space may have.
var spaceTypes = []string{"personal", "company", "agent"}

// defaultColumns are created with every space, in this order.
var defaultColumns = []struct{ name, category string }{
	{"Inbox", "inbox"},
	{"In Progress", "in_progress"},
	{"Review", "review"},
	{"Archive", "archive"},
}

// Space is a space as the API shows it.
type Space struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	OwnerID    string          `json:"owner_id"`
	OwnerEmail string          `json:"owner_email"`
	Settings   json.RawMessage `json:"settings"`
	CreatedAt  string          `json:"created_at"`
	Members    []Member        `json:"members"`
}

// Member is one membership of a space.
type Member struct {
	UserID   string `json:"user_id"`
	Username string `json:"username"`
	Email    string `json:"email"`
	Role     string `json:"role"`
	JoinedAt string `json:"joined_at"`
}

// SpaceSummary is a space in `kanbot space list`.
type SpaceSummary struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Type        string `json:"type"`
	OwnerEmail  string `json:"owner_email"`
	MemberCount int    `json:"member_count"`
	CreatedAt   string `json:"created_at"`
}

// spaceRole returns the caller's role in a space and the space's owner: 404
// when the space does not exist, 403 when the caller is not a member.
func spaceRole(ctx context.Context, q querier, spaceID, userID string) (role, ownerID string, err error) {
	var r sql.NullString
	err = q.QueryRowContext(ctx, `SELECT s.owner_id, m.role FROM spaces s
		LEFT JOIN space_members m ON m.space_id = s.id AND m.user_id = ? WHERE s.id = ?`, userID, spaceID).Scan(&ownerID, &r)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", errStatus(http.StatusNotFound, msgSpaceNotFound)
	}
	if err != nil {
		return "", "", fmt.Errorf("read membership: %w", err)
	}
	if !r.Valid {
		return "", ownerID, errStatus(http.StatusForbidden, msgNotMember)
	}
	return r.String, ownerID, nil
}

// requireOwnerRole returns spaceRole's 404 or 403, or a 403 "Only space
// owners can do this" unless the caller has the owner role in the space.
func requireOwnerRole(ctx context.Context, q querier, spaceID, userID string) error {
	role, _, err := spaceRole(ctx, q, spaceID, userID)
	if err != nil {
		return err
	}
	if role != RoleOwner {
		return errStatus(http.StatusForbidden, msgOwnerOnly)
	}
	return nil
}

// canWrite returns the 403 for roles that may only read.
func canWrite(role string) error {
	if role == RoleGuest {
		return errStatus(http.StatusForbidden, msgGuestReadOnly)
	}
	return nil
}

// loadSpaces reads spaces (with members) by id, in the order given.
func loadSpaces(ctx context.Context, q querier, where string, args ...any) ([]Space, error) {
	rows, err := q.QueryContext(ctx, `SELECT s.id, s.name, s.type, s.owner_id, u.email, s.settings, s.created_at
		FROM spaces s JOIN users u ON u.id = s.owner_id WHERE `+where+` ORDER BY s.created_at, s.rowid`, args...)
	if err != nil {
		return nil, fmt.Errorf("read spaces: %w", err)
	}
	defer rows.Close()
	spaces := []Space{}
	index := map[string]int{}
	for rows.Next() {
		var s Space
		var settings string
		if err := rows.Scan(&s.ID, &s.Name, &s.Type, &s.OwnerID, &s.OwnerEmail, &settings, &s.CreatedAt); err != nil {
			return nil, fmt.Errorf("read spaces: %w", err)
		}
		s.Settings = json.RawMessage(settings)
		s.Members = []Member{}
		index[s.ID] = len(spaces)
		spaces = append(spaces, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read spaces: %w", err)
	}
	rows.Close()
	if len(spaces) == 0 {
		return spaces, nil
	}
	mrows, err := q.QueryContext(ctx, `SELECT m.space_id, m.user_id, u.username, u.email, m.role, m.joined_at
		FROM space_members m JOIN users u ON u.id = m.user_id
		WHERE m.space_id IN (SELECT s.id FROM spaces s WHERE `+where+`) ORDER BY m.joined_at, m.rowid`, args...)
	if err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	defer mrows.Close()
	for mrows.Next() {
		var spaceID string
		var m Member
		if err := mrows.Scan(&spaceID, &m.UserID, &m.Username, &m.Email, &m.Role, &m.JoinedAt); err != nil {
			return nil, fmt.Errorf("read members: %w", err)
		}
		if i, ok := index[spaceID]; ok {
			spaces[i].Members = append(spaces[i].Members, m)
		}
	}
	if err := mrows.Err(); err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	return spaces, nil
}

func loadSpace(ctx context.Context, q querier, id string) (*Space, error) {
	spaces, err := loadSpaces(ctx, q, `s.id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(spaces) == 0 {
		return nil, ErrSpaceNotFound
	}
	return &spaces[0], nil
}

// GetSpace returns a space with its members, with no access check (CLI).
// It returns ErrSpaceNotFound.
func (b *Backend) GetSpace(ctx context.Context, id string) (*Space, error) {
	id, ok := parseUUID(id)
	if !ok {
		return nil, ErrSpaceNotFound
	}
	return loadSpace(ctx, b.db, id)
}

// ListSpaces lists every space, or those owned by ownerID when it is not "",
// oldest first.
func (b *Backend) ListSpaces(ctx context.Context, ownerID string) ([]SpaceSummary, error) {
	q := `SELECT s.id, s.name, s.type, u.email, (SELECT count(*) FROM space_members m WHERE m.space_id = s.id), s.created_at
		FROM spaces s JOIN users u ON u.id = s.owner_id`
	var args []any
	if ownerID != "" {
		q += ` WHERE s.owner_id = ?`
		args = append(args, ownerID)
	}
	rows, err := b.db.QueryContext(ctx, q+` ORDER BY s.created_at, s.rowid`, args...)
	if err != nil {
		return nil, fmt.Errorf("list spaces: %w", err)
	}
	defer rows.Close()
	out := []SpaceSummary{}
	for rows.Next() {
		var s SpaceSummary
		if err := rows.Scan(&s.ID, &s.Name, &s.Type, &s.OwnerEmail, &s.MemberCount, &s.CreatedAt); err != nil {
			return nil, fmt.Errorf("list spaces: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list spaces: %w", err)
	}
	return out, nil
}

// NewSpace is the input of [Backend.CreateSpace].
type NewSpace struct {
	Name string
	// Type is personal, company or agent; empty means personal.
	Type string
	// Settings is a JSON object; empty means {}.
	Settings string
}

// CreateSpace creates a space owned by ownerID with the owner membership and
// the four default columns, in one transaction.
func (b *Backend) CreateSpace(ctx context.Context, ownerID string, ns NewSpace) (*Space, error) {
	if ns.Type == "" {
		ns.Type = "personal"
	}
	if ns.Settings == "" {
		ns.Settings = "{}"
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("create space: %w", err)
	}
	defer tx.Rollback()
	id, err := b.createSpace(ctx, tx, ownerID, ns)
	if err != nil {
		return nil, err
	}
	s, err := loadSpace(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("create space: %w", err)
	}
	return s, nil
}

// createSpace inserts the space, its owner membership and default columns.
func (b *Backend) createSpace(ctx context.Context, tx *sql.Tx, ownerID string, ns NewSpace) (string, error) {
	id, now := newID(), b.timestamp()
	if _, err := tx.ExecContext(ctx, `INSERT INTO spaces (id, name, type, owner_id, settings, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		id, ns.Name, ns.Type, ownerID, ns.Settings, now); err != nil {
		if isForeignKeyViolation(err) {
			return "", ErrUserNotFound
		}
		return "", fmt.Errorf("create space: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO space_members (space_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)`,
		id, ownerID, RoleOwner, now); err != nil {
		return "", fmt.Errorf("create space owner: %w", err)
	}
	for i, c := range defaultColumns {
		if _, err := tx.ExecContext(ctx, `INSERT INTO columns (id, space_id, name, category, position, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			newID(), id, c.name, c.category, i, now); err != nil {
			return "", fmt.Errorf("create space columns: %w", err)
		}
	}
	return id, nil
}

func (b *Backend) listSpaces(w http.ResponseWriter, r *http.Request, u *User) error {
	spaces, err := loadSpaces(r.Context(), b.db, `s.id IN (SELECT space_id FROM space_members WHERE user_id = ?)`, u.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, spaces)
}

func (b *Backend) postSpace(w http.ResponseWriter, r *http.Request, u *User) error {
	f, err := readBody(r)
	if err != nil {
		return err
	}
	var ns NewSpace
	ns.Name, _ = f.str("name", true, 1, 200)
	ns.Type, _ = f.enum("type", false, spaceTypes...)
	ns.Settings, _ = f.object("settings")
	if err := f.err(); err != nil {
		return err
	}
	s, err := b.CreateSpace(r.Context(), u.ID, ns)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, s)
}

func (b *Backend) getSpace(w http.ResponseWriter, r *http.Request, u *User) error {
	id, err := pathID(r, "id", msgSpaceNotFound)
	if err != nil {
		return err
	}
	if _, _, err := spaceRole(r.Context(), b.db, id, u.ID); err != nil {
		return err
	}
	s, err := loadSpace(r.Context(), b.db, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s)
}

// patchSpace changes name, type or settings. Only owners may (stricter than
// the real Kanbot, which lets any member).
func (b *Backend) patchSpace(w http.ResponseWriter, r *http.Request, u *User) error {
	id, err := pathID(r, "id", msgSpaceNotFound)
	if err != nil {
		return err
	}
	f, err := readBody(r)
	if err != nil {
		return err
	}
	name, hasName := f.str("name", false, 1, 200)
	typ, hasType := f.enum("type", false, spaceTypes...)
	settings, hasSettings := f.object("settings")
	if err := f.err(); err != nil {
		return err
	}
	tx, err := b.db.BeginTx(r.Context(), nil)
	if err != nil {
		return fmt.Errorf("update space: %w", err)
	}
	defer tx.Rollback()
	if err := requireOwnerRole(r.Context(), tx, id, u.ID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(r.Context(), `UPDATE spaces SET
		name = CASE WHEN ? THEN ? ELSE name END,
		type = CASE WHEN ? THEN ? ELSE type END,
		settings = CASE WHEN ? THEN ? ELSE settings END WHERE id = ?`,
		hasName, name, hasType, typ, hasSettings, settings, id); err != nil {
		return fmt.Errorf("update space: %w", err)
	}
	s, err := loadSpace(r.Context(), tx, id)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update space: %w", err)
	}
	return writeJSON(w, http.StatusOK, s)
}

func (b *Backend) deleteSpace(w http.ResponseWriter, r *http.Request, u *User) error {
	id, err := pathID(r, "id", msgSpaceNotFound)
	if err != nil {
		return err
	}
	tx, err := b.db.BeginTx(r.Context(), nil)
	if err != nil {
		return fmt.Errorf("delete space: %w", err)
	}
	defer tx.Rollback()
	var ownerID string
	err = tx.QueryRowContext(r.Context(), `SELECT owner_id FROM spaces WHERE id = ?`, id).Scan(&ownerID)
	if errors.Is(err, sql.ErrNoRows) {
		return errStatus(http.StatusNotFound, msgSpaceNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete space: %w", err)
	}
	if ownerID != u.ID {
		return errStatus(http.StatusForbidden, msgOnlyOwnerDelete)
	}
	if _, err := tx.ExecContext(r.Context(), `DELETE FROM spaces WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete space: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete space: %w", err)
	}
	return noContent(w)
}

// inviteMember adds a user by email. Only owners may invite (stricter than
// the real Kanbot, which lets any member).
func (b *Backend) inviteMember(w http.ResponseWriter, r *http.Request, u *User) error {
	id, err := pathID(r, "id", msgSpaceNotFound)
	if err != nil {
		return err
	}
	f, err := readBody(r)
	if err != nil {
		return err
	}
	email, _ := f.str("email", true, 1, 254)
	role, ok := f.enum("role", false, RoleOwner, RoleMember, RoleGuest)
	if !ok {
		role = RoleMember
	}
	if err := f.err(); err != nil {
		return err
	}
	tx, err := b.db.BeginTx(r.Context(), nil)
	if err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	defer tx.Rollback()
	if err := requireOwnerRole(r.Context(), tx, id, u.ID); err != nil {
		return err
	}
	var m Member
	err = tx.QueryRowContext(r.Context(), `SELECT id, username, email FROM users WHERE email = ?`, email).Scan(&m.UserID, &m.Username, &m.Email)
	if errors.Is(err, sql.ErrNoRows) {
		return errStatus(http.StatusNotFound, msgUserNotFound)
	}
	if err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	m.Role, m.JoinedAt = role, b.timestamp()
	_, err = tx.ExecContext(r.Context(), `INSERT INTO space_members (space_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)`,
		id, m.UserID, m.Role, m.JoinedAt)
	if isUniqueViolation(err, "") {
		return errStatus(http.StatusBadRequest, "User already a member")
	}
	if err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	return writeJSON(w, http.StatusOK, m)
}

// removeMember removes a membership. Anyone may leave; removing someone else
// takes the space's owner or a global admin; the owner cannot be removed.
func (b *Backend) removeMember(w http.ResponseWriter, r *http.Request, u *User) error {
	id, err := pathID(r, "id", msgSpaceNotFound)
	if err != nil {
		return err
	}
	tx, err := b.db.BeginTx(r.Context(), nil)
	if err != nil {
		return fmt.Errorf("remove member: %w", err)
	}
	defer tx.Rollback()
	_, ownerID, err := spaceRole(r.Context(), tx, id, u.ID)
	var he *httpError
	if errors.As(err, &he) && he.status == http.StatusForbidden && u.IsAdmin {
		err = nil // a global admin may manage any space's members
	}
	if err != nil {
		return err
	}
	target, ok := parseUUID(r.PathValue("user_id"))
	if !ok {
		return errStatus(http.StatusNotFound, "Member not found")
	}
	if target == ownerID {
		return errStatus(http.StatusBadRequest, "Cannot remove space owner")
	}
	if target != u.ID && ownerID != u.ID && !u.IsAdmin {
		return errStatus(http.StatusForbidden, "Only owner can remove other members")
	}
	res, err := tx.ExecContext(r.Context(), `DELETE FROM space_members WHERE space_id = ? AND user_id = ?`, id, target)
	if err != nil {
		return fmt.Errorf("remove member: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errStatus(http.StatusNotFound, "Member not found")
	}
	// A removed member no longer assigns or is assigned in this space.
	if _, err := tx.ExecContext(r.Context(), `DELETE FROM card_assignees WHERE user_id = ? AND card_id IN
		(SELECT c.id FROM cards c JOIN columns k ON k.id = c.column_id WHERE k.space_id = ?)`, target, id); err != nil {
		return fmt.Errorf("remove member: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("remove member: %w", err)
	}
	return noContent(w)
}
