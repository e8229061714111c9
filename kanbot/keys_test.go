package kanbot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
	"github.com/kanbot/kanbot-sidecar/kanbot"
)

// TestKeysNeverStoredInPlainText creates keys both ways, uses them, and scans
// the database file and its WAL: the hash is there, the key is not.
func TestKeysNeverStoredInPlainText(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	keys := []string{}
	for _, k := range w.keys {
		keys = append(keys, k)
	}
	st, v := call(t, w.b, w.keys["alice"], "POST", "/api/v1/auth/api-keys", map[string]any{"name": "http"})
	if st != http.StatusOK {
		t.Fatalf("create key = %d", st)
	}
	keys = append(keys, str(obj(t, v)["key"]))
	for _, k := range keys {
		if !keyRE.MatchString(k) {
			t.Errorf("key %q does not match kb_ + 43 base64url", k)
		}
		call(t, w.b, k, "GET", "/api/v1/spaces", nil)
	}
	var files [][]byte
	for _, suffix := range []string{"", "-wal", "-shm"} {
		data, err := os.ReadFile(w.b.DBPath + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		files = append(files, data)
	}
	all := bytes.Join(files, nil)
	for _, k := range keys {
		if bytes.Contains(all, []byte(k)) || bytes.Contains(all, []byte(k[3:])) {
			t.Errorf("database files contain an API key in plain text")
		}
		sum := sha256.Sum256([]byte(k))
		if !bytes.Contains(all, []byte(hex.EncodeToString(sum[:]))) {
			t.Errorf("database files lack the SHA-256 of a key: the scan looks at the wrong bytes")
		}
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openDirect opens a backend with our own clock and log sink.
func openDirect(t *testing.T, clock *fakeClock, log io.Writer) (*kanbot.Backend, *httptest.Server) {
	t.Helper()
	kb, err := kanbot.Open(context.Background(), kanbot.Config{
		DBPath: filepath.Join(t.TempDir(), "k.db"), Now: clock.Now, Logger: zerolog.New(log).Level(zerolog.DebugLevel)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(kb.Handler())
	t.Cleanup(func() { srv.Close(); kb.Close() })
	return kb, srv
}

func get(t *testing.T, srv *httptest.Server, key, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+path, nil)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestKeyCanary: keys appear in no log line, no error body, no listing.
func TestKeyCanary(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	kb, srv := openDirect(t, &fakeClock{t: time.Now()}, &logs)
	ctx := context.Background()
	u, err := kb.CreateUser(ctx, kanbot.NewUser{Email: "c@example.com", Username: "canary"})
	if err != nil {
		t.Fatal(err)
	}
	k, err := kb.CreateAPIKey(ctx, u.ID, "canary")
	if err != nil {
		t.Fatal(err)
	}
	wrong := "kb_" + strings.Repeat("Z", 43)
	var bodies []string
	for _, p := range []string{"/api/v1/users/me", "/api/v1/auth/api-keys", "/api/v1/spaces/nope", "/api/v1/nothing"} {
		_, b := get(t, srv, k.Key, p)
		bodies = append(bodies, b)
		_, b = get(t, srv, wrong, p)
		bodies = append(bodies, b)
	}
	if _, err := kb.SetBanned(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	_, b := get(t, srv, k.Key, "/api/v1/users/me")
	bodies = append(bodies, b)
	listed, err := kb.ListAPIKeys(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(bodies, logs.String(), listed[0].Name, listed[0].KeyHashPrefix) {
		for _, key := range []string{k.Key, wrong} {
			if strings.Contains(s, key) || strings.Contains(s, key[3:20]) {
				t.Errorf("a key leaked into %.80q", s)
			}
		}
	}
	if !strings.Contains(logs.String(), `"path":"/api/v1/users/me"`) {
		t.Errorf("request log missing; the canary looked at nothing: %s", logs.String())
	}
}

// TestLastUsedAtMostOncePerMinute uses a fake clock.
func TestLastUsedAtMostOncePerMinute(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	kb, srv := openDirect(t, clock, io.Discard)
	ctx := context.Background()
	u, _ := kb.CreateUser(ctx, kanbot.NewUser{Email: "l@example.com", Username: "lu"})
	k, _ := kb.CreateAPIKey(ctx, u.ID, "k")
	lastUsed := func() string {
		t.Helper()
		keys, err := kb.ListAPIKeys(ctx, u.ID)
		if err != nil || len(keys) != 1 {
			t.Fatalf("ListAPIKeys = %v, %v", keys, err)
		}
		if keys[0].LastUsed == nil {
			return ""
		}
		return *keys[0].LastUsed
	}
	if got := lastUsed(); got != "" {
		t.Fatalf("last_used before use = %q", got)
	}
	get(t, srv, k.Key, "/api/v1/users/me")
	first := lastUsed()
	if first != "2026-01-01T12:00:00.000000Z" {
		t.Fatalf("last_used after first use = %q", first)
	}
	clock.Add(59 * time.Second)
	get(t, srv, k.Key, "/api/v1/users/me")
	if got := lastUsed(); got != first {
		t.Errorf("last_used after 59s = %q, want unchanged %q", got, first)
	}
	clock.Add(2 * time.Second)
	get(t, srv, k.Key, "/api/v1/users/me")
	if got := lastUsed(); got != "2026-01-01T12:01:01.000000Z" {
		t.Errorf("last_used after 61s = %q", got)
	}
}

// TestSecurityHeadersEverywhere checks success, auth errors, validation
// errors, 413 and the mux's own 404/405.
func TestSecurityHeadersEverywhere(t *testing.T) {
	t.Parallel()
	b := testutil.StartBackend(t)
	_, key := b.CreateUser(t, "h@example.com", "h")
	big := `{"name":"` + strings.Repeat("x", 2<<20) + `"}`
	reqs := []struct {
		method, path, key, body string
		status                  int
	}{
		{"GET", "/health", "", "", 200},
		{"GET", "/api/v1/users/me", key, "", 200},
		{"POST", "/api/v1/spaces", key, `{"name":"s"}`, 201},
		{"GET", "/api/v1/users/me", "", "", 401},
		{"POST", "/api/v1/spaces", key, `{`, 422},
		{"POST", "/api/v1/spaces", key, big, 413},
		{"GET", "/nope", "", "", 404},
		{"DELETE", "/health", "", "", 405},
		{"GET", "/api/v1/spaces/x", key, "", 404},
	}
	for _, r := range reqs {
		req, _ := http.NewRequestWithContext(t.Context(), r.method, b.URL+r.path, strings.NewReader(r.body))
		if r.key != "" {
			req.Header.Set("X-API-Key", r.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != r.status {
			t.Errorf("%s %s = %d, want %d", r.method, r.path, resp.StatusCode, r.status)
		}
		for h, v := range map[string]string{
			"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
			"Referrer-Policy": "strict-origin-when-cross-origin", "Cache-Control": "no-store",
			"Content-Type": "application/json",
		} {
			if got := resp.Header.Get(h); got != v {
				t.Errorf("%s %s (%d): %s = %q, want %q", r.method, r.path, resp.StatusCode, h, got, v)
			}
		}
	}
}

// TestStoreErrors: the CLI-facing store methods report the documented
// sentinels.
func TestStoreErrors(t *testing.T) {
	t.Parallel()
	b := testutil.StartBackend(t)
	ctx := context.Background()
	kb := b.Kanbot
	if _, err := kb.CreateUser(ctx, kanbot.NewUser{Email: "a@example.com", Username: "a"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		nu   kanbot.NewUser
		want error
	}{
		{kanbot.NewUser{Email: "A@Example.com", Username: "b"}, kanbot.ErrEmailExists},
		{kanbot.NewUser{Email: "b@example.com", Username: "A"}, kanbot.ErrUsernameExists},
	} {
		if _, err := kb.CreateUser(ctx, tc.nu); err != tc.want {
			t.Errorf("CreateUser(%v) = %v, want %v", tc.nu, err, tc.want)
		}
	}
	for _, nu := range []kanbot.NewUser{{Email: "nope", Username: "c"}, {Email: "c@example.com", Username: "has space"},
		{Email: "c@example.com", Username: "x@y"}, {Email: "Name <c@example.com>", Username: "c"}} {
		var ve *kanbot.ValidationError
		_, err := kb.CreateUser(ctx, nu)
		if !errorsAs(err, &ve) {
			t.Errorf("CreateUser(%v) = %v, want a ValidationError", nu, err)
		}
	}
	if _, err := kb.FindUser(ctx, "ghost"); err != kanbot.ErrUserNotFound {
		t.Errorf("FindUser(ghost) = %v", err)
	}
	if u, err := kb.FindUser(ctx, "A@EXAMPLE.COM"); err != nil || u.Username != "a" {
		t.Errorf("FindUser by email, other case = %v, %v", u, err)
	}
	if _, err := kb.CreateAPIKey(ctx, "00000000-0000-4000-8000-000000000000", "k"); err != kanbot.ErrUserNotFound {
		t.Errorf("CreateAPIKey(unknown user) = %v", err)
	}
	if _, err := kb.RevokeAPIKey(ctx, "00000000-0000-4000-8000-000000000000", ""); err != kanbot.ErrAPIKeyNotFound {
		t.Errorf("RevokeAPIKey(unknown) = %v", err)
	}
	if _, err := kb.GetSpace(ctx, "x"); err != kanbot.ErrSpaceNotFound {
		t.Errorf("GetSpace(x) = %v", err)
	}
	if err := kb.DeleteUser(ctx, "00000000-0000-4000-8000-000000000000"); err != kanbot.ErrUserNotFound {
		t.Errorf("DeleteUser(unknown) = %v", err)
	}
	res, err := kb.Seed(ctx)
	if err != nil || !res.Created || res.Cards != 2 {
		t.Fatalf("Seed = %+v, %v", res, err)
	}
	again, err := kb.Seed(ctx)
	if err != nil || again.Created || again.SpaceID != res.SpaceID || again.Cards != 2 {
		t.Errorf("Seed again = %+v, %v; want the same, not created", again, err)
	}
	if applied, err := kb.Migrate(ctx); err != nil || len(applied) != 0 {
		t.Errorf("Migrate on a current schema = %v, %v", applied, err)
	}
}
