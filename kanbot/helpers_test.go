package kanbot_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
)

// call sends a request and decodes the JSON answer (nil for an empty body).
// A 500 fails the test whatever the caller expects: no client mistake may
// cause one.
func call(t *testing.T, b *testutil.Backend, key, method, path string, body any) (int, any) {
	t.Helper()
	status, data := b.Call(t, key, method, path, body)
	if status >= 500 {
		t.Fatalf("%s %s = %d %s: a server error", method, path, status, data)
	}
	if len(data) == 0 {
		return status, nil
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s %s = %d, body is not JSON: %q", method, path, status, data)
	}
	return status, v
}

// obj asserts v is a JSON object.
func obj(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("got %T %v, want a JSON object", v, v)
	}
	return m
}

// arr asserts v is a JSON array.
func arr(t *testing.T, v any) []any {
	t.Helper()
	a, ok := v.([]any)
	if !ok {
		t.Fatalf("got %T %v, want a JSON array", v, v)
	}
	return a
}

// hasKeys asserts the object has exactly the given keys.
func hasKeys(t *testing.T, what string, v any, keys ...string) map[string]any {
	t.Helper()
	m := obj(t, v)
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
		if _, ok := m[k]; !ok {
			t.Errorf("%s: missing field %q in %v", what, k, m)
		}
	}
	for k := range m {
		if !want[k] {
			t.Errorf("%s: unexpected field %q", what, k)
		}
	}
	return m
}

// detail asserts an error body {"detail": msg}.
func detail(t *testing.T, what string, v any, msg string) {
	t.Helper()
	m := obj(t, v)
	if got := m["detail"]; got != msg {
		t.Errorf("%s: detail = %v, want %q", what, got, msg)
	}
}

// validation asserts a 422 body in FastAPI's shape and returns its items.
func validation(t *testing.T, what string, v any) []map[string]any {
	t.Helper()
	items := arr(t, obj(t, v)["detail"])
	if len(items) == 0 {
		t.Fatalf("%s: empty validation detail", what)
	}
	out := make([]map[string]any, len(items))
	for i, it := range items {
		out[i] = hasKeys(t, what+" validation item", it, "loc", "msg", "type")
		if len(arr(t, out[i]["loc"])) == 0 {
			t.Errorf("%s: empty loc", what)
		}
	}
	return out
}

func str(v any) string { s, _ := v.(string); return s }

// dump returns the whole database as text (every table, every row, in rowid
// order), except api_keys.last_used, which authentication may legitimately
// touch. Comparing dumps proves a refused request wrote nothing.
func dump(t *testing.T, b *testutil.Backend) string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: b.DBPath}).EscapedPath()+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var sb strings.Builder
	for _, tbl := range tables {
		q := `SELECT * FROM ` + tbl + ` ORDER BY rowid`
		if tbl == "api_keys" {
			q = `SELECT id, user_id, name, key_hash, permissions, is_agent, created_at FROM api_keys ORDER BY rowid`
		}
		if tbl == "space_members" || tbl == "card_tags" || tbl == "card_assignees" {
			q = `SELECT * FROM ` + tbl + ` ORDER BY 1, 2`
		}
		r, err := db.Query(q)
		if err != nil {
			t.Fatalf("dump %s: %v", tbl, err)
		}
		cols, _ := r.Columns()
		for r.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&sb, "%s %v\n", tbl, vals)
		}
		r.Close()
	}
	return sb.String()
}

// world is one backend with a user per role around one space of alice's:
// alice (owner), mia (member), gus (guest), nora (not a member), ben (member,
// banned), ada (global admin, not a member).
type world struct {
	b    *testutil.Backend
	keys map[string]string
	ids  map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{b: testutil.StartBackend(t), keys: map[string]string{}, ids: map[string]string{}}
	for _, n := range []string{"alice", "mia", "gus", "nora", "ben"} {
		w.ids[n], w.keys[n] = w.b.CreateUser(t, n+"@example.com", n)
	}
	w.ids["ada"], w.keys["ada"] = w.b.CreateUserAdmin(t, "ada@example.com", "ada")
	w.b.BanUser(t, "ben")
	return w
}

// space creates a space of alice's with mia (member), gus (guest) and ben
// (member) in it.
func (w *world) space(t *testing.T) string {
	t.Helper()
	id := w.b.CreateSpace(t, w.keys["alice"], "Space")
	w.b.Invite(t, w.keys["alice"], id, "mia@example.com", "member")
	w.b.Invite(t, w.keys["alice"], id, "gus@example.com", "guest")
	w.b.Invite(t, w.keys["alice"], id, "ben@example.com", "member")
	return id
}

// columns returns the ids of a space's columns in order.
func (w *world) columns(t *testing.T, spaceID string) []string {
	t.Helper()
	st, v := call(t, w.b, w.keys["alice"], "GET", "/api/v1/columns?space_id="+spaceID, nil)
	if st != http.StatusOK {
		t.Fatalf("list columns = %d %v", st, v)
	}
	var ids []string
	for _, c := range arr(t, v) {
		ids = append(ids, str(obj(t, c)["id"]))
	}
	return ids
}

// card creates a card (by alice) in the first column of a new space and
// returns the space, the column and the card.
func (w *world) card(t *testing.T) (spaceID, columnID, cardID string) {
	t.Helper()
	spaceID = w.space(t)
	columnID = w.columns(t, spaceID)[0]
	st, v := call(t, w.b, w.keys["alice"], "POST", "/api/v1/cards", map[string]any{"column_id": columnID, "name": "Card"})
	if st != http.StatusCreated {
		t.Fatalf("create card = %d %v", st, v)
	}
	return spaceID, columnID, str(obj(t, v)["id"])
}

// create POSTs as alice and returns the new object's id.
func (w *world) create(t *testing.T, path string, body any) string {
	t.Helper()
	st, v := call(t, w.b, w.keys["alice"], "POST", path, body)
	if st != http.StatusCreated {
		t.Fatalf("POST %s = %d %v", path, st, v)
	}
	return str(obj(t, v)["id"])
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
