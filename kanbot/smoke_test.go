package kanbot_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
)

func TestSmokeSpaces(t *testing.T) {
	t.Parallel()
	b := testutil.StartBackend(t)
	_, alice := b.CreateUser(t, "alice@example.com", "alice")
	_, bob := b.CreateUser(t, "bob@example.com", "bob")
	if st, body := b.Call(t, "", "GET", "/health", nil); st != 200 {
		t.Fatalf("GET /health = %d %s", st, body)
	}
	st, body := b.Call(t, alice, "GET", "/api/v1/users/me", nil)
	if st != 200 {
		t.Fatalf("GET /users/me = %d %s", st, body)
	}
	id := b.CreateSpace(t, alice, "Alpha")
	st, body = b.Call(t, alice, "GET", "/api/v1/columns?space_id="+id, nil)
	var cols []map[string]any
	if err := json.Unmarshal(body, &cols); st != 200 || err != nil || len(cols) != 4 {
		t.Fatalf("GET columns = %d %s", st, body)
	}
	if st, body := b.Call(t, bob, "GET", "/api/v1/spaces/"+id, nil); st != http.StatusForbidden {
		t.Fatalf("bob GET space = %d %s", st, body)
	}
	b.BanUser(t, "bob")
	if st, body := b.Call(t, bob, "GET", "/api/v1/spaces", nil); st != http.StatusForbidden {
		t.Fatalf("banned bob GET spaces = %d %s", st, body)
	}
}
