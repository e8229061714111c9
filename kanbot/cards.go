package kanbot

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Field limits of cards.
const (
	maxCardName     = 500
	maxDescription  = 100_000
	maxTagName      = 50
	defaultTagColor = "#6b7280"
)

// Card is a card as lists and writes return it.
type Card struct {
	ID                   string     `json:"id"`
	ColumnID             string     `json:"column_id"`
	Name                 string     `json:"name"`
	Description          *string    `json:"description"`
	StartDate            *string    `json:"start_date"`
	EndDate              *string    `json:"end_date"`
	Position             int64      `json:"position"`
	TaskCounter          int        `json:"task_counter"`
	TaskCompletedCounter int        `json:"task_completed_counter"`
	CreatedBy            *string    `json:"created_by"`
	CreatedAt            string     `json:"created_at"`
	UpdatedAt            string     `json:"updated_at"`
	ColumnEnteredAt      string     `json:"column_entered_at"`
	Tags                 []Tag      `json:"tags"`
	Assignees            []Assignee `json:"assignees"`
}

// CardDetail is GET /cards/{id}: the card with its tasks and (not deleted)
// comments.
type CardDetail struct {
	Card
	Tasks    []Task    `json:"tasks"`
	Comments []Comment `json:"comments"`
}

// Tag is a label of a space, attached to cards by name.
type Tag struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Color string `json:"color"`
}

// Assignee is a user assigned to a card.
type Assignee struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
}

// cardRef is where a card lives, for access checks.
type cardRef struct {
	ID, ColumnID, SpaceID string
}

// cardAccess finds a card and the caller's role in its space: 404 "Card not
// found" when it does not exist, 403 when the caller is not a member.
func cardAccess(ctx context.Context, q querier, cardID, userID string) (*cardRef, string, error) {
	ref := cardRef{ID: cardID}
	err := q.QueryRowContext(ctx, `SELECT c.column_id, k.space_id FROM cards c JOIN columns k ON k.id = c.column_id WHERE c.id = ?`,
		cardID).Scan(&ref.ColumnID, &ref.SpaceID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", errStatus(http.StatusNotFound, msgCardNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("read card: %w", err)
	}
	role, _, err := spaceRole(ctx, q, ref.SpaceID, userID)
	if err != nil {
		return nil, "", err
	}
	return &ref, role, nil
}

// cardRoute reads {id}, checks access (write access when write is set) and
// returns the card's place.
func cardRoute(ctx context.Context, q querier, r *http.Request, u *User, write bool) (*cardRef, error) {
	id, err := pathID(r, "id", msgCardNotFound)
	if err != nil {
		return nil, err
	}
	ref, role, err := cardAccess(ctx, q, id, u.ID)
	if err != nil {
		return nil, err
	}
	if write {
		if err := canWrite(role); err != nil {
			return nil, err
		}
	}
	return ref, nil
}

// loadCards reads the cards matching where (over cards c JOIN columns k),
// with counters, tags and assignees.
func loadCards(ctx context.Context, q querier, where string, args ...any) ([]Card, error) {
	from := ` FROM cards c JOIN columns k ON k.id = c.column_id WHERE ` + where
	rows, err := q.QueryContext(ctx, `SELECT c.id, c.column_id, c.name, c.description, c.start_date, c.end_date, c.position,
		(SELECT count(*) FROM tasks t WHERE t.card_id = c.id),
		(SELECT count(*) FROM tasks t WHERE t.card_id = c.id AND t.completed),
		c.created_by, c.created_at, c.updated_at, c.column_entered_at`+from+` ORDER BY c.position, c.rowid`, args...)
	if err != nil {
		return nil, fmt.Errorf("read cards: %w", err)
	}
	defer rows.Close()
	cards := []Card{}
	index := map[string]int{}
	for rows.Next() {
		var c Card
		var desc, start, end, by sql.NullString
		if err := rows.Scan(&c.ID, &c.ColumnID, &c.Name, &desc, &start, &end, &c.Position, &c.TaskCounter,
			&c.TaskCompletedCounter, &by, &c.CreatedAt, &c.UpdatedAt, &c.ColumnEnteredAt); err != nil {
			return nil, fmt.Errorf("read cards: %w", err)
		}
		c.Description, c.StartDate, c.EndDate, c.CreatedBy = nullable(desc), nullable(start), nullable(end), nullable(by)
		c.Tags, c.Assignees = []Tag{}, []Assignee{}
		index[c.ID] = len(cards)
		cards = append(cards, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read cards: %w", err)
	}
	rows.Close()
	if len(cards) == 0 {
		return cards, nil
	}
	in := ` IN (SELECT c.id` + from + `)`
	trows, err := q.QueryContext(ctx, `SELECT ct.card_id, t.id, t.name, t.color FROM card_tags ct JOIN tags t ON t.id = ct.tag_id
		WHERE ct.card_id`+in+` ORDER BY t.name`, args...)
	if err != nil {
		return nil, fmt.Errorf("read card tags: %w", err)
	}
	defer trows.Close()
	for trows.Next() {
		var cardID string
		var t Tag
		if err := trows.Scan(&cardID, &t.ID, &t.Name, &t.Color); err != nil {
			return nil, fmt.Errorf("read card tags: %w", err)
		}
		// The three queries are separate reads: a card created between
		// them is not in index and must not lend its tags to cards[0].
		if i, ok := index[cardID]; ok {
			cards[i].Tags = append(cards[i].Tags, t)
		}
	}
	if err := trows.Err(); err != nil {
		return nil, fmt.Errorf("read card tags: %w", err)
	}
	trows.Close()
	arows, err := q.QueryContext(ctx, `SELECT a.card_id, u.id, u.username, u.email FROM card_assignees a JOIN users u ON u.id = a.user_id
		WHERE a.card_id`+in+` ORDER BY u.username`, args...)
	if err != nil {
		return nil, fmt.Errorf("read card assignees: %w", err)
	}
	defer arows.Close()
	for arows.Next() {
		var cardID string
		var a Assignee
		if err := arows.Scan(&cardID, &a.ID, &a.Username, &a.Email); err != nil {
			return nil, fmt.Errorf("read card assignees: %w", err)
		}
		if i, ok := index[cardID]; ok {
			cards[i].Assignees = append(cards[i].Assignees, a)
		}
	}
	if err := arows.Err(); err != nil {
		return nil, fmt.Errorf("read card assignees: %w", err)
	}
	return cards, nil
}

func loadCard(ctx context.Context, q querier, id string) (*Card, error) {
	cards, err := loadCards(ctx, q, `c.id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(cards) == 0 {
		return nil, errStatus(http.StatusNotFound, msgCardNotFound)
	}
	return &cards[0], nil
}

func nullable(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

// likeEscape escapes s for a LIKE pattern with ESCAPE '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func (b *Backend) listCards(w http.ResponseWriter, r *http.Request, u *User) error {
	spaceID, err := queryID(r, "space_id", false)
	if err != nil {
		return err
	}
	columnID, err := queryID(r, "column_id", false)
	if err != nil {
		return err
	}
	where := `k.space_id IN (SELECT space_id FROM space_members WHERE user_id = ?)`
	args := []any{u.ID}
	if spaceID != "" {
		if _, _, err := spaceRole(r.Context(), b.db, spaceID, u.ID); err != nil {
			return err
		}
		where += ` AND k.space_id = ?`
		args = append(args, spaceID)
	}
	if columnID != "" {
		if _, err := columnAccess(r.Context(), b.db, columnID, u.ID, false); err != nil {
			return err
		}
		where += ` AND c.column_id = ?`
		args = append(args, columnID)
	}
	if search := r.URL.Query().Get("search"); search != "" {
		pat := "%" + likeEscape(search) + "%"
		where += ` AND (c.name LIKE ? ESCAPE '\' OR c.description LIKE ? ESCAPE '\')`
		args = append(args, pat, pat)
	}
	cards, err := loadCards(r.Context(), b.db, where, args...)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, cards)
}

// cardInput is the card fields of POST and PATCH, each with whether it was
// given.
type cardInput struct {
	name                    string
	hasName                 bool
	description             string
	hasDescription, clrDesc bool
	start, end              string
	hasStart, clrStart      bool
	hasEnd, clrEnd          bool
	position                int64
	hasPosition             bool
	assignees               []string
	hasAssignees            bool
	tags                    []string
	hasTags                 bool
}

func readCardInput(f *fields, create bool) cardInput {
	var in cardInput
	in.name, in.hasName = f.str("name", create, 1, maxCardName)
	if _, present := f.raw["description"]; present && !f.has("description") {
		in.hasDescription, in.clrDesc = true, true
	} else {
		in.description, in.hasDescription = f.str("description", false, 0, maxDescription)
	}
	in.start, in.hasStart, in.clrStart = f.datetime("start_date")
	in.end, in.hasEnd, in.clrEnd = f.datetime("end_date")
	in.position, in.hasPosition = f.position("position")
	in.assignees, in.hasAssignees = f.ids("assignee_ids")
	in.tags, in.hasTags = f.strs("tag_names", maxTagName)
	if in.hasStart && in.hasEnd && !in.clrStart && !in.clrEnd && in.end < in.start {
		f.fail("end_date", "end_date must not be before start_date", "value_error")
	}
	return in
}

// checkAssignees returns a 422 unless every id is a member of the space.
func checkAssignees(ctx context.Context, tx *sql.Tx, spaceID string, ids []string) error {
	for _, id := range ids {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM space_members WHERE space_id = ? AND user_id = ?`,
			spaceID, id).Scan(&n); err != nil {
			return fmt.Errorf("check assignee: %w", err)
		}
		if n == 0 {
			return invalid([]any{"body", "assignee_ids"}, "Unknown assignee "+id+": not a member of this space", "value_error")
		}
	}
	return nil
}

// setAssignees replaces a card's assignees.
func setAssignees(ctx context.Context, tx *sql.Tx, cardID string, ids []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM card_assignees WHERE card_id = ?`, cardID); err != nil {
		return fmt.Errorf("set assignees: %w", err)
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `INSERT INTO card_assignees (card_id, user_id) VALUES (?, ?)`, cardID, id); err != nil {
			return fmt.Errorf("set assignees: %w", err)
		}
	}
	return nil
}

// setTags replaces a card's tags, creating tags of the space as needed.
func setTags(ctx context.Context, tx *sql.Tx, spaceID, cardID string, names []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM card_tags WHERE card_id = ?`, cardID); err != nil {
		return fmt.Errorf("set tags: %w", err)
	}
	for _, name := range names {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tags (id, space_id, name, color) VALUES (?, ?, ?, ?)
			ON CONFLICT (space_id, name) DO NOTHING`, newID(), spaceID, name, defaultTagColor); err != nil {
			return fmt.Errorf("set tags: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO card_tags (card_id, tag_id)
			SELECT ?, id FROM tags WHERE space_id = ? AND name = ?`, cardID, spaceID, name); err != nil {
			return fmt.Errorf("set tags: %w", err)
		}
	}
	return nil
}

// addHistory records an action on a card by an API-key actor.
func (b *Backend) addHistory(ctx context.Context, tx *sql.Tx, cardID, action string, u *User, changes any) error {
	body, err := json.Marshal(changes)
	if err != nil {
		return fmt.Errorf("encode history: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO card_history (id, card_id, action, changes, actor_type, actor_name, created_at)
		VALUES (?, ?, ?, ?, 'agent', ?, ?)`, newID(), cardID, action, string(body), u.agentName(), b.timestamp()); err != nil {
		return fmt.Errorf("record history: %w", err)
	}
	return nil
}

func nextPosition(ctx context.Context, tx *sql.Tx, table, parentCol, parentID string) (int64, error) {
	var p int64
	err := tx.QueryRowContext(ctx, `SELECT coalesce(max(position) + 1, 0) FROM `+table+` WHERE `+parentCol+` = ?`, parentID).Scan(&p)
	if err != nil {
		return 0, fmt.Errorf("next position: %w", err)
	}
	return p, nil
}

func (b *Backend) postCard(w http.ResponseWriter, r *http.Request, u *User) error {
	ctx := r.Context()
	f, err := readBody(r)
	if err != nil {
		return err
	}
	columnID, _ := f.id("column_id", true)
	in := readCardInput(f, true)
	if err := f.err(); err != nil {
		return err
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create card: %w", err)
	}
	defer tx.Rollback()
	col, err := columnAccess(ctx, tx, columnID, u.ID, true)
	if err != nil {
		return err
	}
	if err := checkAssignees(ctx, tx, col.SpaceID, in.assignees); err != nil {
		return err
	}
	if !in.hasPosition {
		if in.position, err = nextPosition(ctx, tx, "cards", "column_id", columnID); err != nil {
			return err
		}
	}
	id, now := newID(), b.timestamp()
	if _, err := tx.ExecContext(ctx, `INSERT INTO cards (id, column_id, name, description, start_date, end_date, position,
		created_by, created_at, updated_at, column_entered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, columnID, in.name, sql.NullString{String: in.description, Valid: in.hasDescription && !in.clrDesc},
		sql.NullString{String: in.start, Valid: in.hasStart && !in.clrStart},
		sql.NullString{String: in.end, Valid: in.hasEnd && !in.clrEnd}, in.position, u.ID, now, now, now); err != nil {
		return fmt.Errorf("create card: %w", err)
	}
	if err := setAssignees(ctx, tx, id, in.assignees); err != nil {
		return err
	}
	if err := setTags(ctx, tx, col.SpaceID, id, in.tags); err != nil {
		return err
	}
	if err := b.addHistory(ctx, tx, id, "created", u, map[string]any{"name": in.name, "column_id": columnID}); err != nil {
		return err
	}
	c, err := loadCard(ctx, tx, id)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create card: %w", err)
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (b *Backend) getCard(w http.ResponseWriter, r *http.Request, u *User) error {
	ctx := r.Context()
	ref, err := cardRoute(ctx, b.db, r, u, false)
	if err != nil {
		return err
	}
	c, err := loadCard(ctx, b.db, ref.ID)
	if err != nil {
		return err
	}
	d := CardDetail{Card: *c}
	if d.Tasks, err = loadTasks(ctx, b.db, ref.ID); err != nil {
		return err
	}
	if d.Comments, err = loadComments(ctx, b.db, ref.ID); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (b *Backend) patchCard(w http.ResponseWriter, r *http.Request, u *User) error {
	ctx := r.Context()
	f, err := readBody(r)
	if err != nil {
		return err
	}
	if f.has("column_id") {
		f.fail("column_id", "column_id cannot be changed by PATCH; use POST /api/v1/cards/{id}/move", "value_error")
	}
	in := readCardInput(f, false)
	if err := f.err(); err != nil {
		return err
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update card: %w", err)
	}
	defer tx.Rollback()
	ref, err := cardRoute(ctx, tx, r, u, true)
	if err != nil {
		return err
	}
	old, err := loadCard(ctx, tx, ref.ID)
	if err != nil {
		return err
	}
	if in.hasAssignees {
		if err := checkAssignees(ctx, tx, ref.SpaceID, in.assignees); err != nil {
			return err
		}
	}
	changes := map[string]any{}
	set := func(field string, oldV, newV any) { changes[field] = map[string]any{"old": oldV, "new": newV} }
	name, desc, start, end, pos := old.Name, old.Description, old.StartDate, old.EndDate, old.Position
	if in.hasName && in.name != name {
		set("name", name, in.name)
		name = in.name
	}
	if in.hasDescription {
		var nd *string
		if !in.clrDesc {
			nd = &in.description
		}
		if !equalPtr(nd, desc) {
			set("description", desc, nd)
			desc = nd
		}
	}
	if in.hasStart {
		var ns *string
		if !in.clrStart {
			ns = &in.start
		}
		if !equalPtr(ns, start) {
			set("start_date", start, ns)
			start = ns
		}
	}
	if in.hasEnd {
		var ne *string
		if !in.clrEnd {
			ne = &in.end
		}
		if !equalPtr(ne, end) {
			set("end_date", end, ne)
			end = ne
		}
	}
	if start != nil && end != nil && *end < *start {
		return invalid([]any{"body", "end_date"}, "end_date must not be before start_date", "value_error")
	}
	if in.hasPosition && in.position != pos {
		set("position", pos, in.position)
		pos = in.position
	}
	if _, err := tx.ExecContext(ctx, `UPDATE cards SET name = ?, description = ?, start_date = ?, end_date = ?, position = ?,
		updated_at = ? WHERE id = ?`, name, desc, start, end, pos, b.timestamp(), ref.ID); err != nil {
		return fmt.Errorf("update card: %w", err)
	}
	if in.hasAssignees {
		if err := setAssignees(ctx, tx, ref.ID, in.assignees); err != nil {
			return err
		}
		changes["assignee_ids"] = in.assignees
	}
	if in.hasTags {
		if err := setTags(ctx, tx, ref.SpaceID, ref.ID, in.tags); err != nil {
			return err
		}
		changes["tag_names"] = in.tags
	}
	if err := b.addHistory(ctx, tx, ref.ID, "updated", u, changes); err != nil {
		return err
	}
	c, err := loadCard(ctx, tx, ref.ID)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update card: %w", err)
	}
	return writeJSON(w, http.StatusOK, c)
}

func equalPtr(a, b *string) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// moveCard moves a card to a column, possibly of another space; the caller
// must be able to write in both.
func (b *Backend) moveCard(w http.ResponseWriter, r *http.Request, u *User) error {
	ctx := r.Context()
	f, err := readBody(r)
	if err != nil {
		return err
	}
	columnID, _ := f.id("column_id", true)
	position, hasPosition := f.position("position")
	if err := f.err(); err != nil {
		return err
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("move card: %w", err)
	}
	defer tx.Rollback()
	ref, err := cardRoute(ctx, tx, r, u, true)
	if err != nil {
		return err
	}
	col, err := columnAccess(ctx, tx, columnID, u.ID, true)
	if err != nil {
		return err
	}
	if col.SpaceID != ref.SpaceID {
		// Assignees and tags belong to the old space.
		if err := checkAssigneesMoved(ctx, tx, ref.ID, col.SpaceID); err != nil {
			return err
		}
	}
	if !hasPosition {
		if position, err = nextPosition(ctx, tx, "cards", "column_id", columnID); err != nil {
			return err
		}
	}
	now := b.timestamp()
	if _, err := tx.ExecContext(ctx, `UPDATE cards SET column_id = ?, position = ?, updated_at = ?,
		column_entered_at = CASE WHEN column_id = ? THEN column_entered_at ELSE ? END WHERE id = ?`,
		columnID, position, now, columnID, now, ref.ID); err != nil {
		return fmt.Errorf("move card: %w", err)
	}
	if col.SpaceID != ref.SpaceID {
		var names []string
		rows, err := tx.QueryContext(ctx, `SELECT t.name FROM card_tags ct JOIN tags t ON t.id = ct.tag_id WHERE ct.card_id = ?`, ref.ID)
		if err != nil {
			return fmt.Errorf("move card tags: %w", err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return fmt.Errorf("move card tags: %w", err)
			}
			names = append(names, n)
		}
		rows.Close()
		if err := setTags(ctx, tx, col.SpaceID, ref.ID, names); err != nil {
			return err
		}
	}
	if err := b.addHistory(ctx, tx, ref.ID, "moved", u, map[string]any{
		"from_column_id": ref.ColumnID, "to_column_id": columnID, "position": position}); err != nil {
		return err
	}
	c, err := loadCard(ctx, tx, ref.ID)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("move card: %w", err)
	}
	return writeJSON(w, http.StatusOK, c)
}

// checkAssigneesMoved drops assignees who are not members of the target
// space: a card must not point at people who cannot see it.
func checkAssigneesMoved(ctx context.Context, tx *sql.Tx, cardID, spaceID string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM card_assignees WHERE card_id = ? AND user_id NOT IN
		(SELECT user_id FROM space_members WHERE space_id = ?)`, cardID, spaceID)
	if err != nil {
		return fmt.Errorf("move card assignees: %w", err)
	}
	return nil
}

func (b *Backend) deleteCard(w http.ResponseWriter, r *http.Request, u *User) error {
	ctx := r.Context()
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete card: %w", err)
	}
	defer tx.Rollback()
	ref, err := cardRoute(ctx, tx, r, u, true)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM cards WHERE id = ?`, ref.ID); err != nil {
		return fmt.Errorf("delete card: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete card: %w", err)
	}
	return noContent(w)
}

// HistoryEntry is one recorded action on a card.
type HistoryEntry struct {
	ID        string          `json:"id"`
	CardID    string          `json:"card_id"`
	Action    string          `json:"action"`
	Changes   json.RawMessage `json:"changes"`
	ActorType string          `json:"actor_type"`
	ActorName string          `json:"actor_name"`
	CreatedAt string          `json:"created_at"`
}

func (b *Backend) cardHistory(w http.ResponseWriter, r *http.Request, u *User) error {
	ctx := r.Context()
	ref, err := cardRoute(ctx, b.db, r, u, false)
	if err != nil {
		return err
	}
	rows, err := b.db.QueryContext(ctx, `SELECT id, card_id, action, changes, actor_type, actor_name, created_at
		FROM card_history WHERE card_id = ? ORDER BY created_at DESC, rowid DESC`, ref.ID)
	if err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	out := []HistoryEntry{}
	for rows.Next() {
		var h HistoryEntry
		var changes string
		if err := rows.Scan(&h.ID, &h.CardID, &h.Action, &changes, &h.ActorType, &h.ActorName, &h.CreatedAt); err != nil {
			return fmt.Errorf("read history: %w", err)
		}
		h.Changes = json.RawMessage(changes)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	return writeJSON(w, http.StatusOK, out)
}
