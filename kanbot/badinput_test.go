package kanbot_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestBadInput sends each kind of bad input and asserts the status, the
// error shape, and that the database did not change.
func TestBadInput(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	spaceID, colID, cardID := w.card(t)
	otherSpace := w.b.CreateSpace(t, w.keys["nora"], "Nora's")
	otherCol := w.columns(t, spaceID)[0]
	_ = otherCol
	st, v := call(t, w.b, w.keys["nora"], "GET", "/api/v1/columns?space_id="+otherSpace, nil)
	if st != http.StatusOK {
		t.Fatalf("nora's columns = %d", st)
	}
	noraCol := str(obj(t, arr(t, v)[0])["id"])
	task := w.create(t, "/api/v1/cards/"+cardID+"/tasks", map[string]any{"text": "t"})
	comment := w.create(t, "/api/v1/cards/"+cardID+"/comments", map[string]any{"content": "c"})
	missing := "00000000-0000-4000-8000-000000000000"
	long := func(n int) string { return strings.Repeat("x", n) }

	cases := []struct {
		name         string
		method, path string
		body         any
		status       int
		// detail is the expected message of a {"detail": "..."} error; for
		// a 422, the expected type of the first item (if not empty).
		detail string
	}{
		{"malformed json", "POST", "/api/v1/spaces", `{"name":`, 422, "json_invalid"},
		{"trailing garbage", "POST", "/api/v1/spaces", `{"name":"a"} x`, 422, "json_invalid"},
		{"empty body", "POST", "/api/v1/spaces", ``, 422, "missing"},
		{"array body", "POST", "/api/v1/spaces", `[]`, 422, "model_attributes_type"},
		{"null body", "POST", "/api/v1/spaces", `null`, 422, "model_attributes_type"},
		{"missing name", "POST", "/api/v1/spaces", map[string]any{"type": "personal"}, 422, "missing"},
		{"empty name", "POST", "/api/v1/spaces", map[string]any{"name": ""}, 422, "string_too_short"},
		{"blank name", "POST", "/api/v1/spaces", map[string]any{"name": "   "}, 422, "string_too_short"},
		{"long name", "POST", "/api/v1/spaces", map[string]any{"name": long(201)}, 422, "string_too_long"},
		{"number name", "POST", "/api/v1/spaces", map[string]any{"name": 7}, 422, "string_type"},
		{"bad type", "POST", "/api/v1/spaces", map[string]any{"name": "a", "type": "team"}, 422, "literal_error"},
		{"bad settings", "POST", "/api/v1/spaces", map[string]any{"name": "a", "settings": "x"}, 422, "dict_type"},
		{"body over 1 MiB", "POST", "/api/v1/spaces", `{"name":"` + long(1<<20) + `"}`, 413, "Request body too large"},
		{"space id not uuid", "GET", "/api/v1/spaces/not-a-uuid", nil, 404, "Space not found"},
		{"space id sql", "GET", "/api/v1/spaces/1'%20OR%20'1'='1", nil, 404, "Space not found"},
		{"patch space bad type", "PATCH", "/api/v1/spaces/" + spaceID, map[string]any{"type": 1}, 422, "string_type"},
		{"patch missing space", "PATCH", "/api/v1/spaces/" + missing, map[string]any{"name": "x"}, 404, "Space not found"},
		{"invite unknown email", "POST", "/api/v1/spaces/" + spaceID + "/invite", map[string]any{"email": "nobody@example.com"}, 404, "User not found"},
		{"invite member again", "POST", "/api/v1/spaces/" + spaceID + "/invite", map[string]any{"email": "mia@example.com"}, 400, "User already a member"},
		{"invite bad role", "POST", "/api/v1/spaces/" + spaceID + "/invite", map[string]any{"email": "nora@example.com", "role": "king"}, 422, "literal_error"},
		{"remove owner", "DELETE", "/api/v1/spaces/" + spaceID + "/members/" + w.ids["alice"], nil, 400, "Cannot remove space owner"},
		{"remove non-member", "DELETE", "/api/v1/spaces/" + spaceID + "/members/" + w.ids["nora"], nil, 404, "Member not found"},
		{"remove bad id", "DELETE", "/api/v1/spaces/" + spaceID + "/members/xyz", nil, 404, "Member not found"},
		{"columns without space", "GET", "/api/v1/columns", nil, 422, "missing"},
		{"columns bad space", "GET", "/api/v1/columns?space_id=abc", nil, 422, "uuid_parsing"},
		{"column bad space id", "POST", "/api/v1/columns", map[string]any{"name": "c", "space_id": "abc"}, 422, "uuid_parsing"},
		{"column unknown space", "POST", "/api/v1/columns", map[string]any{"name": "c", "space_id": missing}, 404, "Space not found"},
		{"column bad category", "POST", "/api/v1/columns", map[string]any{"name": "c", "space_id": spaceID, "category": "later"}, 422, "literal_error"},
		{"column negative position", "POST", "/api/v1/columns", map[string]any{"name": "c", "space_id": spaceID, "position": -1}, 422, "less_than_equal"},
		{"column fractional position", "POST", "/api/v1/columns", map[string]any{"name": "c", "space_id": spaceID, "position": 1.5}, 422, "int_type"},
		{"column huge position", "POST", "/api/v1/columns", map[string]any{"name": "c", "space_id": spaceID, "position": 1e300}, 422, "less_than_equal"},
		{"column id not uuid", "GET", "/api/v1/columns/zzz", nil, 404, "Column not found"},
		{"missing column", "DELETE", "/api/v1/columns/" + missing, nil, 404, "Column not found"},
		{"card unknown column", "POST", "/api/v1/cards", map[string]any{"name": "c", "column_id": missing}, 404, "Column not found"},
		{"card bad column id", "POST", "/api/v1/cards", map[string]any{"name": "c", "column_id": 5}, 422, "string_type"},
		{"card missing name", "POST", "/api/v1/cards", map[string]any{"column_id": colID}, 422, "missing"},
		{"card long name", "POST", "/api/v1/cards", map[string]any{"column_id": colID, "name": long(501)}, 422, "string_too_long"},
		{"card unknown assignee", "POST", "/api/v1/cards", map[string]any{"column_id": colID, "name": "c", "assignee_ids": []string{missing}}, 422, "value_error"},
		{"card non-member assignee", "POST", "/api/v1/cards", map[string]any{"column_id": colID, "name": "c", "assignee_ids": []string{w.ids["nora"]}}, 422, "value_error"},
		{"card bad assignee id", "POST", "/api/v1/cards", map[string]any{"column_id": colID, "name": "c", "assignee_ids": []string{"x"}}, 422, "uuid_parsing"},
		{"card assignees not list", "POST", "/api/v1/cards", map[string]any{"column_id": colID, "name": "c", "assignee_ids": "x"}, 422, "list_type"},
		{"card bad date", "POST", "/api/v1/cards", map[string]any{"column_id": colID, "name": "c", "start_date": "yesterday"}, 422, "datetime_parsing"},
		{"card end before start", "POST", "/api/v1/cards", map[string]any{"column_id": colID, "name": "c", "start_date": "2026-02-01", "end_date": "2026-01-01"}, 422, "value_error"},
		{"card empty tag", "POST", "/api/v1/cards", map[string]any{"column_id": colID, "name": "c", "tag_names": []string{""}}, 422, "string_too_long"},
		{"card in other's column", "POST", "/api/v1/cards", map[string]any{"column_id": noraCol, "name": "c"}, 403, "Not a member of this space"},
		{"card id not uuid", "GET", "/api/v1/cards/123", nil, 404, "Card not found"},
		{"missing card", "PATCH", "/api/v1/cards/" + missing, map[string]any{"name": "x"}, 404, "Card not found"},
		{"patch card column", "PATCH", "/api/v1/cards/" + cardID, map[string]any{"column_id": colID}, 422, "value_error"},
		{"patch card unknown assignee", "PATCH", "/api/v1/cards/" + cardID, map[string]any{"assignee_ids": []string{missing}}, 422, "value_error"},
		{"cards bad space filter", "GET", "/api/v1/cards?space_id=1", nil, 422, "uuid_parsing"},
		{"cards bad column filter", "GET", "/api/v1/cards?column_id=1", nil, 422, "uuid_parsing"},
		{"cards other's space", "GET", "/api/v1/cards?space_id=" + otherSpace, nil, 403, "Not a member of this space"},
		{"move to unknown column", "POST", "/api/v1/cards/" + cardID + "/move", map[string]any{"column_id": missing}, 404, "Column not found"},
		{"move to other's column", "POST", "/api/v1/cards/" + cardID + "/move", map[string]any{"column_id": noraCol}, 403, "Not a member of this space"},
		{"move without column", "POST", "/api/v1/cards/" + cardID + "/move", map[string]any{}, 422, "missing"},
		{"task missing text", "POST", "/api/v1/cards/" + cardID + "/tasks", map[string]any{}, 422, "missing"},
		{"task bad completed", "PATCH", "/api/v1/cards/" + cardID + "/tasks/" + task, map[string]any{"completed": "yes"}, 422, "bool_type"},
		{"task id not uuid", "PATCH", "/api/v1/cards/" + cardID + "/tasks/t1", map[string]any{"completed": true}, 404, "Task not found"},
		{"missing task", "DELETE", "/api/v1/cards/" + cardID + "/tasks/" + missing, nil, 404, "Task not found"},
		{"comment empty", "POST", "/api/v1/cards/" + cardID + "/comments", map[string]any{"content": ""}, 422, "string_too_short"},
		{"comment too long", "POST", "/api/v1/cards/" + cardID + "/comments", map[string]any{"content": long(10001)}, 422, "string_too_long"},
		{"comment id not uuid", "PATCH", "/api/v1/cards/" + cardID + "/comments/c1", map[string]any{"content": "x"}, 404, "Comment not found"},
		{"missing comment", "DELETE", "/api/v1/cards/" + cardID + "/comments/" + missing, nil, 404, "Comment not found"},
		{"comment edit empty", "PATCH", "/api/v1/cards/" + cardID + "/comments/" + comment, map[string]any{"content": ""}, 422, "string_too_short"},
		{"comment edit missing content", "PATCH", "/api/v1/cards/" + cardID + "/comments/" + comment, map[string]any{}, 422, "missing"},
		{"comment edit too long", "PATCH", "/api/v1/cards/" + cardID + "/comments/" + comment, map[string]any{"content": long(10001)}, 422, "string_too_long"},
		{"key name missing", "POST", "/api/v1/auth/api-keys", map[string]any{}, 422, "missing"},
		{"key name too long", "POST", "/api/v1/auth/api-keys", map[string]any{"name": long(101)}, 422, "string_too_long"},
		{"key id not uuid", "DELETE", "/api/v1/auth/api-keys/abc", nil, 404, "API key not found"},
		{"missing key", "DELETE", "/api/v1/auth/api-keys/" + missing, nil, 404, "API key not found"},
		{"admin bad page", "GET", "/api/v1/admin/users?page=x", nil, 403, "Admin access required"},
		{"unknown route", "GET", "/api/v1/nothing", nil, 404, "Not Found"},
		{"wrong method", "PUT", "/api/v1/spaces", nil, 405, "Method Not Allowed"},
	}
	for _, tc := range cases {
		before := dump(t, w.b)
		st, v := call(t, w.b, w.keys["alice"], tc.method, tc.path, tc.body)
		if st != tc.status {
			t.Errorf("%s: %s %s = %d %v, want %d", tc.name, tc.method, tc.path, st, v, tc.status)
			continue
		}
		if st == 422 {
			items := validation(t, tc.name, v)
			if tc.detail != "" && items[0]["type"] != tc.detail {
				t.Errorf("%s: 422 type = %v, want %s (%v)", tc.name, items[0]["type"], tc.detail, items)
			}
		} else {
			detail(t, tc.name, v, tc.detail)
		}
		if after := dump(t, w.b); after != before {
			t.Errorf("%s: refused with %d but the database changed", tc.name, st)
		}
	}
	// An admin's bad page number is a 422, not a 500.
	st, v = call(t, w.b, w.keys["ada"], "GET", "/api/v1/admin/users?page=x", nil)
	if st != 422 {
		t.Errorf("admin bad page = %d %v, want 422", st, v)
	}
	st, v = call(t, w.b, w.keys["ada"], "GET", "/api/v1/admin/users?page_size=1000", nil)
	if st != 422 {
		t.Errorf("admin page_size 1000 = %d %v, want 422", st, v)
	}
}

// TestBadKeys: every malformed or unknown credential is a 401, never a 500.
func TestBadKeys(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, key := range []string{"x", "kb_", "kb_" + strings.Repeat("A", 43), "Bearer " + w.keys["alice"], w.keys["alice"][:45],
		strings.Repeat("k", 5000), "kb_" + strings.Repeat("é", 22)} {
		st, v := call(t, w.b, key, "GET", "/api/v1/users/me", nil)
		if st != http.StatusUnauthorized {
			t.Errorf("key %.20q: status %d, want 401", key, st)
			continue
		}
		detail(t, "bad key", v, "Invalid API key")
	}
	// Two X-API-Key headers are refused even if one is valid.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", w.b.URL+"/api/v1/users/me", nil)
	req.Header.Add("X-API-Key", w.keys["alice"])
	req.Header.Add("X-API-Key", w.keys["mia"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("two keys: status %d, want 401", resp.StatusCode)
	}
}
