package kanbot_test

import (
	"net/http"
	"testing"
)

// actors of the authorization matrix, in the order of matrixCase.want.
var actors = []string{"owner", "member", "guest", "nonmember", "banned", "admin", "nokey", "wrongkey"}

// keyOf maps an actor to the key it sends.
func (w *world) keyOf(actor string) string {
	switch actor {
	case "owner":
		return w.keys["alice"]
	case "member":
		return w.keys["mia"]
	case "guest":
		return w.keys["gus"]
	case "nonmember":
		return w.keys["nora"]
	case "banned":
		return w.keys["ben"]
	case "admin":
		return w.keys["ada"]
	case "wrongkey":
		return "kb_0000000000000000000000000000000000000000000"
	}
	return ""
}

type matrixCase struct {
	name string
	// setup makes a fresh target (as alice) and returns method, path, body.
	setup func(t *testing.T, w *world) (method, path string, body any)
	want  [8]int
}

const (
	ok  = http.StatusOK
	cr  = http.StatusCreated
	nc  = http.StatusNoContent
	fb  = http.StatusForbidden
	una = http.StatusUnauthorized
)

// The rows: what each actor gets on each route. Writes need owner or member
// (guests read only); a non-member (even an admin) gets 403 on space data;
// comments are editable by their author only; /admin/* by admins only.
var matrix = []matrixCase{
	{"get space", func(t *testing.T, w *world) (string, string, any) {
		return "GET", "/api/v1/spaces/" + w.space(t), nil
	}, [8]int{ok, ok, ok, fb, fb, fb, una, una}},
	{"patch space", func(t *testing.T, w *world) (string, string, any) {
		return "PATCH", "/api/v1/spaces/" + w.space(t), map[string]any{"name": "Renamed"}
	}, [8]int{ok, fb, fb, fb, fb, fb, una, una}},
	{"delete space", func(t *testing.T, w *world) (string, string, any) {
		return "DELETE", "/api/v1/spaces/" + w.space(t), nil
	}, [8]int{nc, fb, fb, fb, fb, fb, una, una}},
	{"invite", func(t *testing.T, w *world) (string, string, any) {
		return "POST", "/api/v1/spaces/" + w.space(t) + "/invite", map[string]any{"email": "nora@example.com"}
	}, [8]int{ok, fb, fb, fb, fb, fb, una, una}},
	{"remove guest", func(t *testing.T, w *world) (string, string, any) {
		return "DELETE", "/api/v1/spaces/" + w.space(t) + "/members/" + w.ids["gus"], nil
	}, [8]int{nc, fb, nc, fb, fb, nc, una, una}},
	{"list columns", func(t *testing.T, w *world) (string, string, any) {
		return "GET", "/api/v1/columns?space_id=" + w.space(t), nil
	}, [8]int{ok, ok, ok, fb, fb, fb, una, una}},
	{"create column", func(t *testing.T, w *world) (string, string, any) {
		return "POST", "/api/v1/columns", map[string]any{"name": "Col", "space_id": w.space(t)}
	}, [8]int{cr, cr, fb, fb, fb, fb, una, una}},
	{"get column", func(t *testing.T, w *world) (string, string, any) {
		return "GET", "/api/v1/columns/" + w.columns(t, w.space(t))[0], nil
	}, [8]int{ok, ok, ok, fb, fb, fb, una, una}},
	{"patch column", func(t *testing.T, w *world) (string, string, any) {
		return "PATCH", "/api/v1/columns/" + w.columns(t, w.space(t))[0], map[string]any{"name": "X"}
	}, [8]int{ok, ok, fb, fb, fb, fb, una, una}},
	{"delete column", func(t *testing.T, w *world) (string, string, any) {
		return "DELETE", "/api/v1/columns/" + w.columns(t, w.space(t))[0], nil
	}, [8]int{nc, nc, fb, fb, fb, fb, una, una}},
	{"list cards of space", func(t *testing.T, w *world) (string, string, any) {
		return "GET", "/api/v1/cards?space_id=" + w.space(t), nil
	}, [8]int{ok, ok, ok, fb, fb, fb, una, una}},
	{"create card", func(t *testing.T, w *world) (string, string, any) {
		return "POST", "/api/v1/cards", map[string]any{"name": "C", "column_id": w.columns(t, w.space(t))[0]}
	}, [8]int{cr, cr, fb, fb, fb, fb, una, una}},
	{"get card", func(t *testing.T, w *world) (string, string, any) {
		_, _, c := w.card(t)
		return "GET", "/api/v1/cards/" + c, nil
	}, [8]int{ok, ok, ok, fb, fb, fb, una, una}},
	{"patch card", func(t *testing.T, w *world) (string, string, any) {
		_, _, c := w.card(t)
		return "PATCH", "/api/v1/cards/" + c, map[string]any{"name": "New"}
	}, [8]int{ok, ok, fb, fb, fb, fb, una, una}},
	{"move card", func(t *testing.T, w *world) (string, string, any) {
		s, _, c := w.card(t)
		return "POST", "/api/v1/cards/" + c + "/move", map[string]any{"column_id": w.columns(t, s)[1]}
	}, [8]int{ok, ok, fb, fb, fb, fb, una, una}},
	{"delete card", func(t *testing.T, w *world) (string, string, any) {
		_, _, c := w.card(t)
		return "DELETE", "/api/v1/cards/" + c, nil
	}, [8]int{nc, nc, fb, fb, fb, fb, una, una}},
	{"card history", func(t *testing.T, w *world) (string, string, any) {
		_, _, c := w.card(t)
		return "GET", "/api/v1/cards/" + c + "/history", nil
	}, [8]int{ok, ok, ok, fb, fb, fb, una, una}},
	{"create task", func(t *testing.T, w *world) (string, string, any) {
		_, _, c := w.card(t)
		return "POST", "/api/v1/cards/" + c + "/tasks", map[string]any{"text": "do"}
	}, [8]int{cr, cr, fb, fb, fb, fb, una, una}},
	{"patch task", func(t *testing.T, w *world) (string, string, any) {
		_, _, c := w.card(t)
		task := w.create(t, "/api/v1/cards/"+c+"/tasks", map[string]any{"text": "do"})
		return "PATCH", "/api/v1/cards/" + c + "/tasks/" + task, map[string]any{"completed": true}
	}, [8]int{ok, ok, fb, fb, fb, fb, una, una}},
	{"delete task", func(t *testing.T, w *world) (string, string, any) {
		_, _, c := w.card(t)
		task := w.create(t, "/api/v1/cards/"+c+"/tasks", map[string]any{"text": "do"})
		return "DELETE", "/api/v1/cards/" + c + "/tasks/" + task, nil
	}, [8]int{nc, nc, fb, fb, fb, fb, una, una}},
	{"list comments", func(t *testing.T, w *world) (string, string, any) {
		_, _, c := w.card(t)
		return "GET", "/api/v1/cards/" + c + "/comments", nil
	}, [8]int{ok, ok, ok, fb, fb, fb, una, una}},
	{"create comment", func(t *testing.T, w *world) (string, string, any) {
		_, _, c := w.card(t)
		return "POST", "/api/v1/cards/" + c + "/comments", map[string]any{"content": "hi"}
	}, [8]int{cr, cr, fb, fb, fb, fb, una, una}},
	{"edit alice's comment", func(t *testing.T, w *world) (string, string, any) {
		_, _, c := w.card(t)
		cm := w.create(t, "/api/v1/cards/"+c+"/comments", map[string]any{"content": "hi"})
		return "PATCH", "/api/v1/cards/" + c + "/comments/" + cm, map[string]any{"content": "edited"}
	}, [8]int{ok, fb, fb, fb, fb, fb, una, una}},
	{"delete alice's comment", func(t *testing.T, w *world) (string, string, any) {
		_, _, c := w.card(t)
		cm := w.create(t, "/api/v1/cards/"+c+"/comments", map[string]any{"content": "hi"})
		return "DELETE", "/api/v1/cards/" + c + "/comments/" + cm, nil
	}, [8]int{ok, fb, fb, fb, fb, fb, una, una}},
	{"admin users", func(t *testing.T, w *world) (string, string, any) {
		return "GET", "/api/v1/admin/users", nil
	}, [8]int{fb, fb, fb, fb, fb, ok, una, una}},
	{"admin stats", func(t *testing.T, w *world) (string, string, any) {
		return "GET", "/api/v1/admin/stats", nil
	}, [8]int{fb, fb, fb, fb, fb, ok, una, una}},
	{"users me", func(t *testing.T, w *world) (string, string, any) {
		return "GET", "/api/v1/users/me", nil
	}, [8]int{ok, ok, ok, ok, fb, ok, una, una}},
	{"list spaces", func(t *testing.T, w *world) (string, string, any) {
		return "GET", "/api/v1/spaces", nil
	}, [8]int{ok, ok, ok, ok, fb, ok, una, una}},
	{"create space", func(t *testing.T, w *world) (string, string, any) {
		return "POST", "/api/v1/spaces", map[string]any{"name": "Mine"}
	}, [8]int{cr, cr, cr, cr, fb, cr, una, una}},
	{"list own keys", func(t *testing.T, w *world) (string, string, any) {
		return "GET", "/api/v1/auth/api-keys", nil
	}, [8]int{ok, ok, ok, ok, fb, ok, una, una}},
	{"agents me", func(t *testing.T, w *world) (string, string, any) {
		return "GET", "/api/v1/agents/me", nil
	}, [8]int{ok, ok, ok, ok, fb, ok, una, una}},
}

// TestAuthorizationMatrix runs every row for every actor on a fresh target,
// and checks that a refused request changed nothing in the database.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	for _, mc := range matrix {
		t.Run(mc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			for i, actor := range actors {
				method, path, body := mc.setup(t, w)
				var before string
				if mc.want[i] >= 400 {
					before = dump(t, w.b)
				}
				st, v := call(t, w.b, w.keyOf(actor), method, path, body)
				if st != mc.want[i] {
					t.Errorf("%s %s as %s = %d %v, want %d", method, path, actor, st, v, mc.want[i])
					continue
				}
				if st < 400 {
					continue
				}
				if after := dump(t, w.b); after != before {
					t.Errorf("%s %s as %s = %d, but the database changed", method, path, actor, st)
				}
				switch actor {
				case "nokey":
					detail(t, actor, v, "Not authenticated")
				case "wrongkey":
					detail(t, actor, v, "Invalid API key")
				case "banned":
					detail(t, actor, v, "Account suspended")
				case "nonmember":
					if mc.want[i] == fb && mc.name != "admin users" && mc.name != "admin stats" && mc.name != "delete space" {
						detail(t, actor, v, "Not a member of this space")
					}
				}
			}
		})
	}
}

// TestSpaceIsolation: a user lists only spaces they belong to, and a
// missing space is 404 while someone else's is 403.
func TestSpaceIsolation(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	shared := w.space(t)
	_, noraSpace := shared, w.b.CreateSpace(t, w.keys["nora"], "Nora's")
	st, v := call(t, w.b, w.keys["nora"], "GET", "/api/v1/spaces", nil)
	if st != ok {
		t.Fatalf("list = %d", st)
	}
	list := arr(t, v)
	if len(list) != 1 || str(obj(t, list[0])["id"]) != noraSpace {
		t.Errorf("nora's spaces = %v, want only %s", list, noraSpace)
	}
	st, v = call(t, w.b, w.keys["mia"], "GET", "/api/v1/spaces", nil)
	if list := arr(t, v); st != ok || len(list) != 1 || str(obj(t, list[0])["id"]) != shared {
		t.Errorf("mia's spaces = %d %v, want only %s", st, v, shared)
	}
	st, v = call(t, w.b, w.keys["alice"], "GET", "/api/v1/spaces/00000000-0000-4000-8000-000000000000", nil)
	if st != http.StatusNotFound {
		t.Errorf("missing space = %d, want 404", st)
	}
	detail(t, "missing space", v, "Space not found")
	// Cards listed without a filter come only from the caller's spaces.
	_, _, card := w.card(t)
	st, v = call(t, w.b, w.keys["nora"], "GET", "/api/v1/cards", nil)
	for _, c := range arr(t, v) {
		if str(obj(t, c)["id"]) == card {
			t.Errorf("nora sees alice's card %s", card)
		}
	}
	_ = st
	// Deleting a space requires its owner, with the documented message.
	st, v = call(t, w.b, w.keys["mia"], "DELETE", "/api/v1/spaces/"+shared, nil)
	if st != fb {
		t.Errorf("member delete space = %d, want 403", st)
	}
	detail(t, "member delete space", v, "Only owner can delete space")
	// Another user's comment cannot be edited.
	_, _, c := w.card(t)
	cm := w.create(t, "/api/v1/cards/"+c+"/comments", map[string]any{"content": "alice says"})
	st, v = call(t, w.b, w.keys["mia"], "PATCH", "/api/v1/cards/"+c+"/comments/"+cm, map[string]any{"content": "mia says"})
	if st != fb {
		t.Errorf("edit other's comment = %d, want 403", st)
	}
	detail(t, "edit other's comment", v, "Can only edit your own comments")
	st, v = call(t, w.b, w.keys["mia"], "GET", "/api/v1/admin/stats", nil)
	detail(t, "non-admin stats", v, "Admin access required")
}
