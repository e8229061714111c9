package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/kanbot"
)

var keyRE = regexp.MustCompile(`^kb_[A-Za-z0-9_-]{43}$`)

// cli runs the CLI in-process against db (via --db when db is not empty).
func cli(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code = run(t.Context(), args, strings.NewReader(""), &out, &errb, getenv)
	return code, out.String(), errb.String()
}

// ok runs a --json command that must succeed and returns its data.
func ok(t *testing.T, db string, args ...string) map[string]any {
	t.Helper()
	code, out, errOut := cli(t, nil, append(args, "--db", db, "--json")...)
	if code != 0 {
		t.Fatalf("kanbot %v = exit %d, stdout %s stderr %s", args, code, out, errOut)
	}
	var env struct {
		Success bool           `json:"success"`
		Data    map[string]any `json:"data"`
		Message string         `json:"message"`
	}
	if err := json.Unmarshal([]byte(out), &env); err != nil {
		t.Fatalf("kanbot %v: stdout is not one JSON envelope: %v\n%s", args, err, out)
	}
	if !env.Success || env.Message == "" || env.Data == nil {
		t.Fatalf("kanbot %v: envelope = %s", args, out)
	}
	return env.Data
}

// failsWith runs a --json command that must exit with code and envelope code.
func failsWith(t *testing.T, db string, exit int, code string, args ...string) {
	t.Helper()
	got, out, errOut := cli(t, nil, append(args, "--db", db, "--json")...)
	if got != exit {
		t.Fatalf("kanbot %v = exit %d, want %d (stdout %s stderr %s)", args, got, exit, out, errOut)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(out), &env); err != nil {
		t.Fatalf("kanbot %v: stdout is not JSON: %q", args, out)
	}
	if env["success"] != false || env["code"] != code || env["error"] == "" || len(env) != 3 {
		t.Errorf("kanbot %v: envelope = %v, want code %s", args, env, code)
	}
	if !strings.HasPrefix(errOut, "kanbot: ") {
		t.Errorf("kanbot %v: stderr = %q, want the error", args, errOut)
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func wantKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	if len(m) != len(want) {
		t.Errorf("%s: fields %v, want %v", what, keys(m), want)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: missing %q in %v", what, k, m)
		}
	}
}

func TestUserCommands(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "k.db")
	u := ok(t, db, "user", "create", "--email", "alice@example.com", "--username", "alice")
	wantKeys(t, "user create", u, "id", "email", "username", "is_admin", "created_at")
	if u["email"] != "alice@example.com" || u["is_admin"] != false {
		t.Errorf("user create = %v", u)
	}
	failsWith(t, db, 1, "EMAIL_EXISTS", "user", "create", "--email", "alice@example.com", "--username", "alice2")
	failsWith(t, db, 1, "USERNAME_EXISTS", "user", "create", "--email", "a2@example.com", "--username", "ALICE")
	failsWith(t, db, 1, "VALIDATION_ERROR", "user", "create", "--email", "not-an-email", "--username", "x")
	failsWith(t, db, 2, "USAGE_ERROR", "user", "create", "--username", "x")
	adm := ok(t, db, "user", "create", "--email", "root@example.com", "--username", "root", "--admin")
	if adm["is_admin"] != true {
		t.Errorf("--admin: %v", adm)
	}
	list := ok(t, db, "user", "list")
	wantKeys(t, "user list", list, "users", "page", "limit", "total")
	if list["total"] != float64(2) || len(list["users"].([]any)) != 2 {
		t.Errorf("user list = %v", list)
	}
	for _, id := range []string{u["id"].(string), "alice@example.com", "alice", strings.ToUpper(u["id"].(string))} {
		g := ok(t, db, "user", "get", id)
		if g["id"] != u["id"] {
			t.Errorf("user get %s = %v", id, g)
		}
	}
	failsWith(t, db, 1, "USER_NOT_FOUND", "user", "get", "ghost")
	failsWith(t, db, 2, "USAGE_ERROR", "user", "get")
	for _, cmd := range []string{"delete", "ban", "unban", "set-admin"} {
		failsWith(t, db, 1, "USER_NOT_FOUND", "user", cmd, "ghost@example.com")
	}
	b := ok(t, db, "user", "ban", "alice")
	if b["is_banned"] != true || b["banned_at"] == nil {
		t.Errorf("ban = %v", b)
	}
	if g := ok(t, db, "user", "get", "alice"); g["is_banned"] != true {
		t.Errorf("after ban: %v", g)
	}
	if b := ok(t, db, "user", "unban", "alice"); b["is_banned"] != false || b["banned_at"] != nil {
		t.Errorf("unban = %v", b)
	}
	if a := ok(t, db, "user", "set-admin", "alice"); a["is_admin"] != true {
		t.Errorf("set-admin = %v", a)
	}
	if a := ok(t, db, "user", "set-admin", "alice", "--revoke"); a["is_admin"] != false {
		t.Errorf("set-admin --revoke = %v", a)
	}
	ok(t, db, "user", "delete", "root")
	failsWith(t, db, 1, "USER_NOT_FOUND", "user", "get", "root")
}

func TestAPIKeyCommands(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "k.db")
	u := ok(t, db, "user", "create", "--email", "alice@example.com", "--username", "alice")
	k := ok(t, db, "apikey", "create", "--user", "alice@example.com", "--name", "agent")
	wantKeys(t, "apikey create", k, "id", "name", "key", "user_email", "created_at")
	key := k["key"].(string)
	if !keyRE.MatchString(key) || k["user_email"] != "alice@example.com" {
		t.Errorf("apikey create = %v", k)
	}
	failsWith(t, db, 1, "USER_NOT_FOUND", "apikey", "create", "--user", "ghost", "--name", "x")
	failsWith(t, db, 2, "USAGE_ERROR", "apikey", "create", "--user", "alice")
	failsWith(t, db, 1, "VALIDATION_ERROR", "apikey", "create", "--user", "alice", "--name", strings.Repeat("n", 101))
	for _, args := range [][]string{{"apikey", "list"}, {"apikey", "list", "--user", "alice"}, {"apikey", "list", "--user", u["id"].(string)}} {
		code, out, errOut := cli(t, nil, append(args, "--db", db, "--json")...)
		if code != 0 || strings.Contains(out+errOut, key) || strings.Contains(out, key[3:20]) {
			t.Fatalf("%v = %d; the key must never be listed", args, code)
		}
		l := ok(t, db, args...)
		wantKeys(t, "apikey list", l, "api_keys", "total")
		items := l["api_keys"].([]any)
		if l["total"] != float64(1) || len(items) != 1 {
			t.Fatalf("apikey list = %v", l)
		}
		item := items[0].(map[string]any)
		wantKeys(t, "apikey list item", item, "id", "name", "key_hash_prefix", "user_id", "created_at", "last_used")
		if p := item["key_hash_prefix"].(string); len(p) != 12 || item["user_id"] != u["id"] {
			t.Errorf("apikey list item = %v", item)
		}
	}
	failsWith(t, db, 1, "USER_NOT_FOUND", "apikey", "list", "--user", "ghost")
	failsWith(t, db, 1, "INVALID_ID", "apikey", "revoke", "not-a-uuid")
	failsWith(t, db, 1, "KEY_NOT_FOUND", "apikey", "revoke", "00000000-0000-4000-8000-000000000000")
	r := ok(t, db, "apikey", "revoke", k["id"].(string))
	if r["id"] != k["id"] || r["name"] != "agent" {
		t.Errorf("revoke = %v", r)
	}
	if l := ok(t, db, "apikey", "list"); l["total"] != float64(0) {
		t.Errorf("after revoke: %v", l)
	}
	// Human output prints the key once, with a warning, and nothing on stderr.
	code, out, errOut := cli(t, nil, "apikey", "create", "--user", "alice", "--name", "h", "--db", db)
	if code != 0 || !strings.Contains(out, "key: kb_") || errOut != "" {
		t.Errorf("human apikey create = %d %q %q", code, out, errOut)
	}
}

func TestSpaceCommands(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "k.db")
	u := ok(t, db, "user", "create", "--email", "alice@example.com", "--username", "alice")
	ok(t, db, "user", "create", "--email", "bob@example.com", "--username", "bob")
	kb, err := kanbot.Open(context.Background(), kanbot.Config{DBPath: db})
	if err != nil {
		t.Fatal(err)
	}
	s, err := kb.CreateSpace(context.Background(), u["id"].(string), kanbot.NewSpace{Name: "Alpha"})
	kb.Close()
	if err != nil {
		t.Fatal(err)
	}
	l := ok(t, db, "space", "list")
	wantKeys(t, "space list", l, "spaces", "total")
	items := l["spaces"].([]any)
	if l["total"] != float64(1) || len(items) != 1 {
		t.Fatalf("space list = %v", l)
	}
	wantKeys(t, "space list item", items[0].(map[string]any), "id", "name", "type", "owner_email", "member_count", "created_at")
	if it := items[0].(map[string]any); it["owner_email"] != "alice@example.com" || it["member_count"] != float64(1) {
		t.Errorf("space list item = %v", it)
	}
	if l := ok(t, db, "space", "list", "--owner", "bob"); l["total"] != float64(0) {
		t.Errorf("space list --owner bob = %v", l)
	}
	failsWith(t, db, 1, "USER_NOT_FOUND", "space", "list", "--owner", "ghost")
	g := ok(t, db, "space", "get", s.ID)
	if g["id"] != s.ID || len(g["members"].([]any)) != 1 || g["owner_email"] != "alice@example.com" {
		t.Errorf("space get = %v", g)
	}
	failsWith(t, db, 1, "SPACE_NOT_FOUND", "space", "get", "00000000-0000-4000-8000-000000000000")
	failsWith(t, db, 1, "SPACE_NOT_FOUND", "space", "get", "nope")
}

func TestSystemAndDBCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "k.db")
	m := ok(t, db, "db", "migrate")
	if m["schema_version"] != float64(1) {
		t.Errorf("db migrate = %v", m)
	}
	h := ok(t, db, "system", "health")
	if h["status"] != "healthy" {
		t.Errorf("health = %v", h)
	}
	// A database that cannot be opened is unhealthy: exit 1.
	failsWith(t, dir, 1, "UNHEALTHY", "system", "health")
	failsWith(t, filepath.Join(dir, "missing-dir", "k.db"), 1, "UNHEALTHY", "system", "health")
	s1 := ok(t, db, "db", "seed")
	if s1["created"] != true || s1["cards"] != float64(2) {
		t.Errorf("seed = %v", s1)
	}
	s2 := ok(t, db, "db", "seed")
	if s2["created"] != false || s2["space_id"] != s1["space_id"] {
		t.Errorf("seed again = %v", s2)
	}
	ok(t, db, "user", "create", "--email", "r@example.com", "--username", "r", "--admin")
	st := ok(t, db, "system", "stats")
	wantKeys(t, "stats", st, "users", "spaces", "cards", "api_keys")
	users := st["users"].(map[string]any)
	if users["total"] != float64(2) || users["admins"] != float64(1) || users["banned"] != float64(0) || st["spaces"] != float64(1) || st["cards"] != float64(2) {
		t.Errorf("stats = %v", st)
	}
	if v := ok(t, db, "system", "version"); v["version"] != version {
		t.Errorf("version = %v", v)
	}
}

func TestUsageAndEnv(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "env.db")
	for _, args := range [][]string{{}, {"bogus"}, {"user"}, {"user", "bogus"}, {"user", "list", "--bogus"},
		{"user", "get", "a", "b"}, {"system", "health", "extra"}, {"user", "list", "--page", "0"}} {
		code, _, errOut := cli(t, map[string]string{"KANBOT_DB": db}, args...)
		if code != 2 || errOut == "" {
			t.Errorf("kanbot %v = exit %d stderr %q, want 2 and a message", args, code, errOut)
		}
	}
	// KANBOT_DB is used when --db is absent.
	code, out, _ := cli(t, map[string]string{"KANBOT_DB": db}, "user", "create", "--email", "e@example.com", "--username", "e")
	if code != 0 || !strings.Contains(out, "created") {
		t.Fatalf("user create with KANBOT_DB = %d %q", code, out)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("KANBOT_DB not used: %v", err)
	}
	// --db wins over KANBOT_DB.
	other := filepath.Join(t.TempDir(), "flag.db")
	code, _, _ = cli(t, map[string]string{"KANBOT_DB": db}, "user", "get", "e", "--db", other)
	if code != 1 {
		t.Errorf("user get with --db elsewhere = %d, want 1 (not found there)", code)
	}
}

// TestServeBinary builds the real binary and runs the done-when flow:
// users and keys by CLI, serve, a space with four columns, isolation, ban,
// and a clean exit on SIGTERM.
func TestServeBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "kanbot")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	db := filepath.Join(dir, "k.db")
	kanbotJSON := func(args ...string) map[string]any {
		t.Helper()
		out, err := exec.Command(bin, append(args, "--db", db, "--json")...).Output()
		if err != nil {
			t.Fatalf("kanbot %v: %v", args, err)
		}
		var env struct{ Data map[string]any }
		if err := json.Unmarshal(out, &env); err != nil {
			t.Fatalf("kanbot %v: %v %s", args, err, out)
		}
		return env.Data
	}
	kanbotJSON("user", "create", "--email", "alice@example.com", "--username", "alice")
	kanbotJSON("user", "create", "--email", "bob@example.com", "--username", "bob")
	alice := kanbotJSON("apikey", "create", "--user", "alice@example.com", "--name", "agent")["key"].(string)
	bob := kanbotJSON("apikey", "create", "--user", "bob", "--name", "agent")["key"].(string)

	srv := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", db)
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var base string
	deadline := time.After(30 * time.Second)
	for base == "" {
		select {
		case l, open := <-lines:
			if !open {
				t.Fatal("serve exited before listening")
			}
			var entry map[string]any
			if json.Unmarshal([]byte(l), &entry) == nil && entry["message"] == "listening" {
				base = "http://" + entry["addr"].(string)
			}
		case <-deadline:
			t.Fatal("serve did not log its address in 30s")
		}
	}
	do := func(key, method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	if st, body := do("", "GET", "/health", ""); st != 200 || !strings.Contains(body, `"healthy"`) {
		t.Fatalf("GET /health = %d %s", st, body)
	}
	st, body := do(alice, "POST", "/api/v1/spaces", `{"name":"Alpha"}`)
	if st != 201 {
		t.Fatalf("POST /spaces = %d %s", st, body)
	}
	var space struct{ ID string }
	json.Unmarshal([]byte(body), &space)
	st, body = do(alice, "GET", "/api/v1/columns?space_id="+space.ID, "")
	var cols []map[string]any
	json.Unmarshal([]byte(body), &cols)
	if st != 200 || len(cols) != 4 {
		t.Errorf("columns = %d %s, want the 4 defaults", st, body)
	}
	if st, body := do(bob, "GET", "/api/v1/spaces/"+space.ID, ""); st != 403 {
		t.Errorf("bob on alice's space = %d %s, want 403", st, body)
	}
	if out, err := exec.Command(bin, "user", "ban", "bob", "--db", db).CombinedOutput(); err != nil {
		t.Fatalf("user ban bob: %v %s", err, out)
	}
	for _, p := range []string{"/api/v1/users/me", "/api/v1/spaces", "/api/v1/agents/me", "/api/v1/auth/api-keys"} {
		if st, body := do(bob, "GET", p, ""); st != 403 || !strings.Contains(body, "Account suspended") {
			t.Errorf("banned bob GET %s = %d %s, want 403", p, st, body)
		}
	}
	if st, _ := do(bob, "POST", "/api/v1/spaces", `{"name":"x"}`); st != 403 {
		t.Errorf("banned bob POST /spaces = %d, want 403", st)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Read the log to its end (the pipe closes when the process exits),
	// then Wait: os/exec requires reads to finish before Wait.
	var logged []string
	stopDeadline := time.After(30 * time.Second)
	for open := true; open; {
		select {
		case l, more := <-lines:
			if more {
				logged = append(logged, l)
			}
			open = more
		case <-stopDeadline:
			t.Fatal("serve did not stop within 30s of SIGTERM")
		}
	}
	if err := srv.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v, want exit 0", err)
	}
	if len(logged) == 0 || !strings.Contains(logged[len(logged)-1], `"stopped"`) {
		t.Errorf("last log line = %v, want the clean stop", logged)
	}
	for _, k := range []string{alice, bob} {
		for _, l := range logged {
			if strings.Contains(l, k) {
				t.Errorf("a key appears in the server log")
			}
		}
	}
}
