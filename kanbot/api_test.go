package kanbot_test

import (
	"net/http"
	"regexp"
	"sync"
	"testing"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
)

var (
	spaceFields   = []string{"id", "name", "type", "owner_id", "owner_email", "settings", "created_at", "members"}
	memberFields  = []string{"user_id", "username", "email", "role", "joined_at"}
	columnFields  = []string{"id", "space_id", "name", "category", "position", "created_at"}
	cardFields    = []string{"id", "column_id", "name", "description", "start_date", "end_date", "position", "task_counter", "task_completed_counter", "created_by", "created_at", "updated_at", "column_entered_at", "tags", "assignees"}
	taskFields    = []string{"id", "text", "completed", "position", "created_at"}
	commentFields = []string{"id", "card_id", "user_id", "content", "actor_type", "actor_name", "created_at", "updated_at", "is_edited", "is_deleted"}
	historyFields = []string{"id", "card_id", "action", "changes", "actor_type", "actor_name", "created_at"}
	userFields    = []string{"id", "email", "username", "language", "settings", "is_active", "is_admin", "is_banned", "banned_at", "created_at"}
	keyFields     = []string{"id", "name", "permissions", "is_agent", "created_at", "last_used"}
)

var (
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`)
	keyRE  = regexp.MustCompile(`^kb_[A-Za-z0-9_-]{43}$`)
)

func want(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %d, want %d", what, got, want)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	b := testutil.StartBackend(t)
	st, v := call(t, b, "", "GET", "/health", nil)
	want(t, "GET /health", st, http.StatusOK)
	m := hasKeys(t, "health", v, "status", "version")
	if m["status"] != "healthy" || m["version"] != "test" {
		t.Errorf("health = %v", m)
	}
}

// TestHappyPath walks every route once as the owner and checks each shape.
func TestHappyPath(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	b, alice, mia := w.b, w.keys["alice"], w.keys["mia"]

	st, v := call(t, b, alice, "GET", "/api/v1/users/me", nil)
	want(t, "users/me", st, http.StatusOK)
	me := hasKeys(t, "user", v, userFields...)
	if me["email"] != "alice@example.com" || me["username"] != "alice" || me["is_banned"] != false || me["banned_at"] != nil {
		t.Errorf("users/me = %v", me)
	}
	if !uuidRE.MatchString(str(me["id"])) || !timeRE.MatchString(str(me["created_at"])) {
		t.Errorf("users/me id/created_at = %v / %v", me["id"], me["created_at"])
	}
	st, v = call(t, b, alice, "GET", "/api/v1/agents/me", nil)
	want(t, "agents/me", st, http.StatusOK)
	ag := hasKeys(t, "agent", v, "user_id", "username", "agent_name", "is_agent")
	if ag["agent_name"] != "alice-bot" || ag["is_agent"] != true || ag["user_id"] != me["id"] {
		t.Errorf("agents/me = %v", ag)
	}

	// Spaces.
	st, v = call(t, b, alice, "POST", "/api/v1/spaces", map[string]any{"name": "Work", "type": "company", "settings": map[string]any{"color": "red"}})
	want(t, "create space", st, http.StatusCreated)
	sp := hasKeys(t, "space", v, spaceFields...)
	spaceID := str(sp["id"])
	if sp["type"] != "company" || sp["owner_email"] != "alice@example.com" || sp["owner_id"] != me["id"] || obj(t, sp["settings"])["color"] != "red" {
		t.Errorf("space = %v", sp)
	}
	members := arr(t, sp["members"])
	if len(members) != 1 || hasKeys(t, "member", members[0], memberFields...)["role"] != "owner" {
		t.Errorf("members = %v", members)
	}
	st, v = call(t, b, alice, "POST", "/api/v1/spaces", map[string]any{"name": "Default type"})
	want(t, "create space", st, http.StatusCreated)
	if obj(t, v)["type"] != "personal" {
		t.Errorf("default type = %v", obj(t, v)["type"])
	}
	st, v = call(t, b, alice, "GET", "/api/v1/spaces", nil)
	want(t, "list spaces", st, http.StatusOK)
	if l := arr(t, v); len(l) != 2 {
		t.Errorf("list spaces = %d spaces, want 2", len(l))
	}
	st, v = call(t, b, alice, "PATCH", "/api/v1/spaces/"+spaceID, map[string]any{"name": "Work 2"})
	want(t, "patch space", st, http.StatusOK)
	if sp := hasKeys(t, "space", v, spaceFields...); sp["name"] != "Work 2" || sp["type"] != "company" {
		t.Errorf("patched space = %v", sp)
	}
	st, v = call(t, b, alice, "POST", "/api/v1/spaces/"+spaceID+"/invite", map[string]any{"email": "mia@example.com"})
	want(t, "invite", st, http.StatusOK)
	if m := hasKeys(t, "member", v, memberFields...); m["role"] != "member" || m["username"] != "mia" {
		t.Errorf("invite = %v", m)
	}
	st, v = call(t, b, alice, "GET", "/api/v1/spaces/"+spaceID, nil)
	want(t, "get space", st, http.StatusOK)
	if l := arr(t, obj(t, v)["members"]); len(l) != 2 {
		t.Errorf("members after invite = %v", l)
	}

	// Columns: the four defaults, then one more.
	st, v = call(t, b, alice, "GET", "/api/v1/columns?space_id="+spaceID, nil)
	want(t, "list columns", st, http.StatusOK)
	cols := arr(t, v)
	wantCols := [][2]string{{"Inbox", "inbox"}, {"In Progress", "in_progress"}, {"Review", "review"}, {"Archive", "archive"}}
	if len(cols) != 4 {
		t.Fatalf("default columns = %v", cols)
	}
	for i, c := range cols {
		m := hasKeys(t, "column", c, columnFields...)
		if m["name"] != wantCols[i][0] || m["category"] != wantCols[i][1] || m["position"] != float64(i) || m["space_id"] != spaceID {
			t.Errorf("column %d = %v, want %v at %d", i, m, wantCols[i], i)
		}
	}
	inbox, progress := str(obj(t, cols[0])["id"]), str(obj(t, cols[1])["id"])
	st, v = call(t, b, alice, "POST", "/api/v1/columns", map[string]any{"name": "Waiting", "space_id": spaceID, "category": "waiting"})
	want(t, "create column", st, http.StatusCreated)
	col := hasKeys(t, "column", v, columnFields...)
	if col["position"] != float64(4) || col["category"] != "waiting" {
		t.Errorf("new column = %v", col)
	}
	colID := str(col["id"])
	st, v = call(t, b, alice, "GET", "/api/v1/columns/"+colID, nil)
	want(t, "get column", st, http.StatusOK)
	st, v = call(t, b, alice, "PATCH", "/api/v1/columns/"+colID, map[string]any{"name": "Blocked", "position": 9})
	want(t, "patch column", st, http.StatusOK)
	if m := obj(t, v); m["name"] != "Blocked" || m["position"] != float64(9) || m["category"] != "waiting" {
		t.Errorf("patched column = %v", m)
	}

	// Cards.
	st, v = call(t, b, alice, "POST", "/api/v1/cards", map[string]any{
		"column_id": inbox, "name": "Write docs", "description": "the README",
		"start_date": "2026-01-02T03:04:05Z", "end_date": "2026-02-01",
		"assignee_ids": []string{str(me["id"]), w.ids["mia"]}, "tag_names": []string{"docs", "urgent"},
	})
	want(t, "create card", st, http.StatusCreated)
	card := hasKeys(t, "card", v, cardFields...)
	cardID := str(card["id"])
	if card["name"] != "Write docs" || card["description"] != "the README" || card["column_id"] != inbox ||
		card["created_by"] != me["id"] || card["position"] != float64(0) || card["task_counter"] != float64(0) {
		t.Errorf("card = %v", card)
	}
	if !timeRE.MatchString(str(card["start_date"])) || !timeRE.MatchString(str(card["end_date"])) {
		t.Errorf("card dates = %v %v", card["start_date"], card["end_date"])
	}
	if a := arr(t, card["assignees"]); len(a) != 2 {
		t.Errorf("assignees = %v", a)
	} else {
		hasKeys(t, "assignee", a[0], "id", "username", "email")
	}
	if tags := arr(t, card["tags"]); len(tags) != 2 || obj(t, tags[0])["name"] != "docs" {
		t.Errorf("tags = %v", tags)
	} else {
		hasKeys(t, "tag", tags[0], "id", "name", "color")
	}
	second := w.create(t, "/api/v1/cards", map[string]any{"column_id": inbox, "name": "Second"})
	st, v = call(t, b, alice, "GET", "/api/v1/cards?space_id="+spaceID, nil)
	want(t, "list cards", st, http.StatusOK)
	if l := arr(t, v); len(l) != 2 || obj(t, l[0])["id"] != cardID || obj(t, l[1])["id"] != second {
		t.Errorf("list cards = %v", l)
	}
	st, v = call(t, b, alice, "GET", "/api/v1/cards?column_id="+inbox+"&search=DOCS", nil)
	if l := arr(t, v); st != http.StatusOK || len(l) != 1 || obj(t, l[0])["id"] != cardID {
		t.Errorf("search cards = %d %v", st, l)
	}
	st, v = call(t, b, alice, "GET", "/api/v1/cards?search=%25", nil)
	if l := arr(t, v); st != http.StatusOK || len(l) != 0 {
		t.Errorf("search %% = %d %v, want none (LIKE wildcards are literal)", st, l)
	}
	st, v = call(t, b, alice, "PATCH", "/api/v1/cards/"+cardID, map[string]any{"name": "Write more docs", "description": nil, "tag_names": []string{"docs"}})
	want(t, "patch card", st, http.StatusOK)
	if m := hasKeys(t, "card", v, cardFields...); m["name"] != "Write more docs" || m["description"] != nil || len(arr(t, m["tags"])) != 1 {
		t.Errorf("patched card = %v", m)
	}

	// Tasks and their counters.
	st, v = call(t, b, mia, "POST", "/api/v1/cards/"+cardID+"/tasks", map[string]any{"text": "outline"})
	want(t, "create task", st, http.StatusCreated)
	task := hasKeys(t, "task", v, taskFields...)
	if task["completed"] != false || task["position"] != float64(0) {
		t.Errorf("task = %v", task)
	}
	task2 := w.create(t, "/api/v1/cards/"+cardID+"/tasks", map[string]any{"text": "draft"})
	st, v = call(t, b, alice, "PATCH", "/api/v1/cards/"+cardID+"/tasks/"+str(task["id"]), map[string]any{"completed": true})
	want(t, "patch task", st, http.StatusOK)
	if m := hasKeys(t, "task", v, taskFields...); m["completed"] != true || m["text"] != "outline" {
		t.Errorf("patched task = %v", m)
	}
	st, _ = call(t, b, alice, "DELETE", "/api/v1/cards/"+cardID+"/tasks/"+task2, nil)
	want(t, "delete task", st, http.StatusNoContent)

	// Comments.
	st, v = call(t, b, mia, "POST", "/api/v1/cards/"+cardID+"/comments", map[string]any{"content": "looks good"})
	want(t, "create comment", st, http.StatusCreated)
	cm := hasKeys(t, "comment", v, commentFields...)
	if cm["actor_type"] != "agent" || cm["actor_name"] != "mia-bot" || cm["is_edited"] != false || cm["card_id"] != cardID {
		t.Errorf("comment = %v", cm)
	}
	cmID := str(cm["id"])
	gone := w.create(t, "/api/v1/cards/"+cardID+"/comments", map[string]any{"content": "to delete"})
	st, v = call(t, b, mia, "PATCH", "/api/v1/cards/"+cardID+"/comments/"+cmID, map[string]any{"content": "looks great"})
	want(t, "edit comment", st, http.StatusOK)
	if m := obj(t, v); m["content"] != "looks great" || m["is_edited"] != true {
		t.Errorf("edited comment = %v", m)
	}
	st, v = call(t, b, alice, "DELETE", "/api/v1/cards/"+cardID+"/comments/"+gone, nil)
	want(t, "delete comment", st, http.StatusOK)
	if m := hasKeys(t, "deleted comment", v, commentFields...); m["content"] != "[deleted]" || m["is_deleted"] != true {
		t.Errorf("deleted comment = %v", m)
	}
	st, v = call(t, b, alice, "GET", "/api/v1/cards/"+cardID+"/comments", nil)
	if l := arr(t, v); st != http.StatusOK || len(l) != 1 || obj(t, l[0])["id"] != cmID {
		t.Errorf("comments = %d %v, want only %s", st, l, cmID)
	}

	// Card detail: counters follow the tasks.
	st, v = call(t, b, alice, "GET", "/api/v1/cards/"+cardID, nil)
	want(t, "get card", st, http.StatusOK)
	detailCard := hasKeys(t, "card detail", v, append(append([]string{}, cardFields...), "tasks", "comments")...)
	if detailCard["task_counter"] != float64(1) || detailCard["task_completed_counter"] != float64(1) ||
		len(arr(t, detailCard["tasks"])) != 1 || len(arr(t, detailCard["comments"])) != 1 {
		t.Errorf("card detail = %v", detailCard)
	}
	hasKeys(t, "detail task", arr(t, detailCard["tasks"])[0], taskFields...)

	// Move, then history newest first.
	st, v = call(t, b, alice, "POST", "/api/v1/cards/"+cardID+"/move", map[string]any{"column_id": progress})
	want(t, "move card", st, http.StatusOK)
	if m := hasKeys(t, "moved card", v, cardFields...); m["column_id"] != progress || m["position"] != float64(0) {
		t.Errorf("moved card = %v", m)
	}
	st, v = call(t, b, alice, "GET", "/api/v1/cards/"+cardID+"/history", nil)
	want(t, "history", st, http.StatusOK)
	hist := arr(t, v)
	if len(hist) != 3 {
		t.Fatalf("history = %v, want 3 entries", hist)
	}
	for i, action := range []string{"moved", "updated", "created"} {
		h := hasKeys(t, "history", hist[i], historyFields...)
		if h["action"] != action || h["actor_type"] != "agent" || h["actor_name"] != "alice-bot" {
			t.Errorf("history[%d] = %v, want %s", i, h, action)
		}
	}

	// Deletes and cascades.
	st, _ = call(t, b, alice, "DELETE", "/api/v1/cards/"+second, nil)
	want(t, "delete card", st, http.StatusNoContent)
	st, _ = call(t, b, alice, "GET", "/api/v1/cards/"+second, nil)
	want(t, "get deleted card", st, http.StatusNotFound)
	st, _ = call(t, b, alice, "DELETE", "/api/v1/columns/"+colID, nil)
	want(t, "delete column", st, http.StatusNoContent)
	st, _ = call(t, b, mia, "DELETE", "/api/v1/spaces/"+spaceID+"/members/"+w.ids["mia"], nil)
	want(t, "leave space", st, http.StatusNoContent)
	st, _ = call(t, b, mia, "GET", "/api/v1/spaces/"+spaceID, nil)
	want(t, "get space after leaving", st, http.StatusForbidden)
	st, _ = call(t, b, alice, "DELETE", "/api/v1/spaces/"+spaceID, nil)
	want(t, "delete space", st, http.StatusNoContent)
	st, _ = call(t, b, alice, "GET", "/api/v1/cards/"+cardID, nil)
	want(t, "card of deleted space", st, http.StatusNotFound)
	st, _ = call(t, b, alice, "GET", "/api/v1/columns/"+inbox, nil)
	want(t, "column of deleted space", st, http.StatusNotFound)

	// Admin.
	st, v = call(t, b, w.keys["ada"], "GET", "/api/v1/admin/users?page=1&page_size=2", nil)
	want(t, "admin users", st, http.StatusOK)
	au := hasKeys(t, "admin users", v, "users", "total", "page", "page_size")
	if au["total"] != float64(6) || len(arr(t, au["users"])) != 2 || au["page_size"] != float64(2) {
		t.Errorf("admin users = %v", au)
	}
	hasKeys(t, "admin user", arr(t, au["users"])[0], userFields...)
	st, v = call(t, b, w.keys["ada"], "GET", "/api/v1/admin/stats", nil)
	want(t, "admin stats", st, http.StatusOK)
	as := hasKeys(t, "admin stats", v, "total_users", "total_spaces", "total_cards", "total_comments", "total_api_keys")
	if as["total_users"] != float64(6) || as["total_spaces"] != float64(1) || as["total_api_keys"] != float64(6) {
		t.Errorf("admin stats = %v", as)
	}
}

// TestAPIKeysOverHTTP: create (key shown once), list (never the key), use,
// delete (own only).
func TestAPIKeysOverHTTP(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	b, alice := w.b, w.keys["alice"]
	st, v := call(t, b, alice, "POST", "/api/v1/auth/api-keys", map[string]any{"name": "second"})
	want(t, "create key", st, http.StatusOK)
	k := hasKeys(t, "new key", v, append(append([]string{}, keyFields...), "key")...)
	key := str(k["key"])
	if !keyRE.MatchString(key) || len(key) != 46 || k["is_agent"] != true || k["last_used"] != nil || len(obj(t, k["permissions"])) != 0 {
		t.Errorf("new key = %v", k)
	}
	st, v = call(t, b, key, "GET", "/api/v1/users/me", nil)
	want(t, "use new key", st, http.StatusOK)
	st, v = call(t, b, alice, "GET", "/api/v1/auth/api-keys", nil)
	want(t, "list keys", st, http.StatusOK)
	keys := arr(t, v)
	if len(keys) != 2 {
		t.Fatalf("keys = %v", keys)
	}
	for _, kk := range keys {
		m := hasKeys(t, "listed key", kk, keyFields...)
		if m["last_used"] == nil {
			t.Errorf("used key %v has no last_used", m["name"])
		}
	}
	st, v = call(t, b, w.keys["mia"], "DELETE", "/api/v1/auth/api-keys/"+str(k["id"]), nil)
	want(t, "delete other's key", st, http.StatusNotFound)
	detail(t, "delete other's key", v, "API key not found")
	st, _ = call(t, b, key, "GET", "/api/v1/users/me", nil)
	want(t, "key after failed delete", st, http.StatusOK)
	st, _ = call(t, b, alice, "DELETE", "/api/v1/auth/api-keys/"+str(k["id"]), nil)
	want(t, "delete own key", st, http.StatusNoContent)
	st, v = call(t, b, key, "GET", "/api/v1/users/me", nil)
	want(t, "revoked key", st, http.StatusUnauthorized)
	detail(t, "revoked key", v, "Invalid API key")
}

// TestConcurrentWrites: parallel writers all succeed (BEGIN IMMEDIATE and
// the busy timeout serialise them) and positions stay distinct.
func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	spaceID := w.space(t)
	col := w.columns(t, spaceID)[0]
	const n = 16
	errs := make(chan string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, data, err := w.b.TryCall(w.keys["mia"], "POST", "/api/v1/cards", map[string]any{"column_id": col, "name": "c"})
			if err != nil {
				errs <- err.Error()
			} else if st != http.StatusCreated {
				errs <- string(data)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent create failed: %s", e)
	}
	st, v := call(t, w.b, w.keys["alice"], "GET", "/api/v1/cards?column_id="+col, nil)
	seen := map[float64]bool{}
	for _, c := range arr(t, v) {
		seen[obj(t, c)["position"].(float64)] = true
	}
	if st != http.StatusOK || len(seen) != n {
		t.Errorf("cards = %d, distinct positions %d, want %d", st, len(seen), n)
	}
}
