package testutil

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/kanbot"
)

// Backend is a real bundled Kanbot backend (package kanbot) serving on
// 127.0.0.1:0 with its own SQLite file in a test temp dir. StartBackend
// stops it and closes the database with t.Cleanup.
type Backend struct {
	// URL is the base URL, e.g. http://127.0.0.1:40123 (no trailing slash).
	URL string
	// DBPath is the SQLite file; tests may scan it (e.g. for leaked keys).
	DBPath string
	// Kanbot is the backend itself, for store calls the helpers below lack.
	Kanbot *kanbot.Backend

	server *httptest.Server
}

// StartBackend starts a real backend for the test. The backend's clock is the
// real one and its log is discarded.
func StartBackend(t testing.TB) *Backend {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kanbot.db")
	kb, err := kanbot.Open(context.Background(), kanbot.Config{DBPath: path, Version: "test"})
	if err != nil {
		t.Fatalf("kanbot.Open(%s) = %v", path, err)
	}
	srv := httptest.NewServer(kb.Handler())
	b := &Backend{URL: srv.URL, DBPath: path, Kanbot: kb, server: srv}
	t.Cleanup(func() {
		srv.Close() // waits for in-flight requests before the DB closes
		if err := kb.Close(); err != nil {
			t.Errorf("close kanbot backend: %v", err)
		}
	})
	return b
}

// CreateUser creates a user with one API key named "test" and returns the
// user's id and the key.
func (b *Backend) CreateUser(t testing.TB, email, username string) (userID, apiKey string) {
	t.Helper()
	return b.createUser(t, email, username, false)
}

// CreateUserAdmin is CreateUser for a global admin.
func (b *Backend) CreateUserAdmin(t testing.TB, email, username string) (userID, apiKey string) {
	t.Helper()
	return b.createUser(t, email, username, true)
}

func (b *Backend) createUser(t testing.TB, email, username string, admin bool) (string, string) {
	t.Helper()
	u, err := b.Kanbot.CreateUser(context.Background(), kanbot.NewUser{Email: email, Username: username, Admin: admin})
	if err != nil {
		t.Fatalf("CreateUser(%s, %s) = %v", email, username, err)
	}
	return u.ID, b.NewAPIKey(t, u.ID, "test")
}

// NewAPIKey creates another key for a user and returns it.
func (b *Backend) NewAPIKey(t testing.TB, userID, name string) string {
	t.Helper()
	k, err := b.Kanbot.CreateAPIKey(context.Background(), userID, name)
	if err != nil {
		t.Fatalf("CreateAPIKey(%s) = %v", userID, err)
	}
	return k.Key
}

// BanUser bans a user (by id, email or username): every key of theirs then
// gets 403 "Account suspended".
func (b *Backend) BanUser(t testing.TB, identifier string) {
	t.Helper()
	b.setBanned(t, identifier, true)
}

// UnbanUser lifts a ban.
func (b *Backend) UnbanUser(t testing.TB, identifier string) {
	t.Helper()
	b.setBanned(t, identifier, false)
}

func (b *Backend) setBanned(t testing.TB, identifier string, banned bool) {
	t.Helper()
	ctx := context.Background()
	u, err := b.Kanbot.FindUser(ctx, identifier)
	if err != nil {
		t.Fatalf("FindUser(%s) = %v", identifier, err)
	}
	if _, err := b.Kanbot.SetBanned(ctx, u.ID, banned); err != nil {
		t.Fatalf("SetBanned(%s, %v) = %v", identifier, banned, err)
	}
}

// Call sends one request straight to the backend (not through a sidecar) with
// apiKey in X-API-Key (none when empty) and body as JSON (none when nil; a
// string or []byte is sent as is). It returns the status and the body, and
// fails the test on a transport error, so call it from the test goroutine
// only; other goroutines use TryCall.
func (b *Backend) Call(t testing.TB, apiKey, method, path string, body any) (int, []byte) {
	t.Helper()
	status, data, err := b.TryCall(apiKey, method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, data
}

// TryCall is Call that returns transport and encoding errors instead of
// failing the test, so it is safe from any goroutine.
func (b *Backend) TryCall(apiKey, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		data, err := json.Marshal(v)
		if err != nil {
			return 0, nil, fmt.Errorf("encode request body: %v", err)
		}
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.URL+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("new request %s %s: %v", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if apiKey != "" {
		req.Header.Set(kanbot.APIKeyHeader, apiKey)
	}
	resp, err := b.server.Client().Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, data, nil
}

// CreateSpace creates a space over HTTP as the key's user and returns its id.
func (b *Backend) CreateSpace(t testing.TB, apiKey, name string) string {
	t.Helper()
	status, body := b.Call(t, apiKey, http.MethodPost, "/api/v1/spaces", map[string]string{"name": name})
	if status != http.StatusCreated {
		t.Fatalf("POST /api/v1/spaces = %d %s, want 201", status, body)
	}
	var s struct{ ID string }
	if err := json.Unmarshal(body, &s); err != nil || s.ID == "" {
		t.Fatalf("POST /api/v1/spaces: decode %s: %v", body, err)
	}
	return s.ID
}

// Invite adds the user with email to a space as role, acting as the owner
// whose key is ownerKey.
func (b *Backend) Invite(t testing.TB, ownerKey, spaceID, email, role string) {
	t.Helper()
	status, body := b.Call(t, ownerKey, http.MethodPost, "/api/v1/spaces/"+spaceID+"/invite",
		map[string]string{"email": email, "role": role})
	if status != http.StatusOK {
		t.Fatalf("invite %s to %s = %d %s, want 200", email, spaceID, status, body)
	}
}
