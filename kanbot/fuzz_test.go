package kanbot_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanbot/kanbot-sidecar/kanbot"
)

// FuzzRequestBodies posts arbitrary bytes to a body-taking route: the
// answer is never a 500 and always JSON with the security headers.
func FuzzRequestBodies(f *testing.F) {
	for _, s := range []string{`{"name":"a"}`, `{"name":`, `[]`, `null`, `{"name":"a","type":"agent","settings":{"x":[1,2]}}`,
		`{"column_id":"00000000-0000-4000-8000-000000000000","name":"c","assignee_ids":["x"],"tag_names":[""]}`,
		`{"position":1e999}`, `{"start_date":"2026-13-40"}`, "\xff\xfe", `{"content":"\u0000"}`, `{"name":"a"}{"name":"b"}`} {
		for r := range 10 {
			f.Add(uint8(r), s)
		}
	}
	kb, err := kanbot.Open(context.Background(), kanbot.Config{DBPath: filepath.Join(f.TempDir(), "fuzz.db")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { kb.Close() })
	ctx := context.Background()
	u, _ := kb.CreateUser(ctx, kanbot.NewUser{Email: "f@example.com", Username: "f"})
	k, _ := kb.CreateAPIKey(ctx, u.ID, "f")
	space, err := kb.CreateSpace(ctx, u.ID, kanbot.NewSpace{Name: "s"})
	if err != nil {
		f.Fatal(err)
	}
	h := kb.Handler()
	serve := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("X-API-Key", k.Key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	// A card to aim task and comment routes at.
	rec := serve("GET", "/api/v1/columns?space_id="+space.ID, "")
	col := string(bytes.SplitN(bytes.SplitN(rec.Body.Bytes(), []byte(`"id":"`), 2)[1], []byte(`"`), 2)[0])
	rec = serve("POST", "/api/v1/cards", `{"name":"c","column_id":"`+col+`"}`)
	card := string(bytes.SplitN(bytes.SplitN(rec.Body.Bytes(), []byte(`"id":"`), 2)[1], []byte(`"`), 2)[0])
	routes := [][2]string{
		{"POST", "/api/v1/spaces"}, {"PATCH", "/api/v1/spaces/" + space.ID}, {"POST", "/api/v1/spaces/" + space.ID + "/invite"},
		{"POST", "/api/v1/columns"}, {"POST", "/api/v1/cards"}, {"PATCH", "/api/v1/cards/" + card},
		{"POST", "/api/v1/cards/" + card + "/move"}, {"POST", "/api/v1/cards/" + card + "/tasks"},
		{"POST", "/api/v1/cards/" + card + "/comments"}, {"POST", "/api/v1/auth/api-keys"},
	}
	// One route per input keeps an iteration to one request: slow
	// iterations make the fuzz coordinator time out on a loaded machine.
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		{
			r := routes[int(route)%len(routes)]
			rec := serve(r[0], r[1], body)
			if rec.Code >= 500 {
				t.Fatalf("%s %s with %q = %d %s", r[0], r[1], body, rec.Code, rec.Body)
			}
			if rec.Header().Get("X-Frame-Options") != "DENY" || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("%s %s: headers %v", r[0], r[1], rec.Header())
			}
			if rec.Code >= 400 && !bytes.HasPrefix(rec.Body.Bytes(), []byte(`{"detail":`)) {
				t.Fatalf("%s %s = %d with body %s", r[0], r[1], rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkAuthenticatedGet measures one authenticated read (key hash
// lookup + user row + response) through the handler.
func BenchmarkAuthenticatedGet(b *testing.B) {
	kb, key, _, _ := benchBackend(b)
	h := kb.Handler()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/api/v1/users/me", nil)
		req.Header.Set("X-API-Key", key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkCreateCard measures one card write (one BEGIN IMMEDIATE
// transaction: card, history, reload).
func BenchmarkCreateCard(b *testing.B) {
	kb, key, col, _ := benchBackend(b)
	h := kb.Handler()
	body := `{"name":"bench","column_id":"` + col + `"}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/api/v1/cards", strings.NewReader(body))
		req.Header.Set("X-API-Key", key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			b.Fatal(rec.Code, rec.Body)
		}
	}
}

func benchBackend(b *testing.B) (*kanbot.Backend, string, string, string) {
	b.Helper()
	ctx := context.Background()
	kb, err := kanbot.Open(ctx, kanbot.Config{DBPath: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { kb.Close() })
	u, _ := kb.CreateUser(ctx, kanbot.NewUser{Email: "b@example.com", Username: "b"})
	k, _ := kb.CreateAPIKey(ctx, u.ID, "b")
	s, err := kb.CreateSpace(ctx, u.ID, kanbot.NewSpace{Name: "s"})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/api/v1/columns?space_id="+s.ID, nil)
	req.Header.Set("X-API-Key", k.Key)
	rec := httptest.NewRecorder()
	kb.Handler().ServeHTTP(rec, req)
	col := string(bytes.SplitN(bytes.SplitN(rec.Body.Bytes(), []byte(`"id":"`), 2)[1], []byte(`"`), 2)[0])
	return kb, k.Key, col, s.ID
}
