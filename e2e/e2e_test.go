package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// verifyDoc is `kanbot-sidecar verify --json`.
type verifyDoc struct {
	OK     bool `json:"ok"`
	Checks []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Detail string `json:"detail"`
	} `json:"checks"`
}

func (d verifyDoc) status(name string) string {
	for _, c := range d.Checks {
		if c.Name == name {
			return c.Status
		}
	}
	return "(missing)"
}

func (d verifyDoc) detail(name string) string {
	for _, c := range d.Checks {
		if c.Name == name {
			return c.Detail
		}
	}
	return ""
}

func decodeVerify(t *testing.T, r result) verifyDoc {
	t.Helper()
	var d verifyDoc
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("verify --json: not JSON (%v): %v", err, r)
	}
	return d
}

// wantChecks are the names verify must report for the demo's three profiles.
func wantChecks() []string {
	names := []string{"backend_health", "unique_keys_emails", "security_headers",
		"refuses_untagged", "refuses_unknown", "refuses_foreign_key", "file_modes", "audit_chain"}
	for _, p := range profileNames {
		names = append(names, "identity "+p, "isolation "+p)
	}
	return names
}

// TestEndToEnd runs the demo's flow as separate processes and checks every
// promise the README makes about it.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	s := newStack(t)

	t.Run("agent", func(t *testing.T) {
		r := s.run(t, runOpts{}, bins.agent, "--sidecar", s.sidecarURL, "--profiles", strings.Join(profileNames, ","))
		if r.code != 0 {
			t.Fatalf("agent: %v", r)
		}
		out := r.stdout
		for _, want := range []string{
			"== morning briefing",
			"tries to read bob's space",
			"tries to add a card to bob's Inbox",
			"GET /api/v1/spaces without X-Kanbot-Profile: REFUSED — 400 missing_profile from sidecar",
			`GET /api/v1/spaces as "mallory": REFUSED — 403 unknown_profile from sidecar`,
			"result: OK, all ",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("agent output lacks %q:\n%s", want, out)
			}
		}
		if n := strings.Count(out, ": BLOCKED — 403 from backend"); n != 2 {
			t.Errorf("agent output has %d BLOCKED cross-profile attempts, want 2:\n%s", n, out)
		}
		for _, p := range profileNames {
			if !strings.Contains(out, "acting as "+p+"@example.com") {
				t.Errorf("agent output lacks %s's identity:\n%s", p, out)
			}
			briefing := regexp.MustCompile(`(?m)^\s+` + p + `\s+3 open cards in 1 space: `)
			if !briefing.MatchString(out) {
				t.Errorf("agent output lacks %s's briefing line (3 open cards in 1 space):\n%s", p, out)
			}
			// profile requests spaces cards moved tasks comments open failures
			row := regexp.MustCompile(`(?m)^\s+` + p + `\s+\d+\s+1\s+3\s+1\s+1\s+1\s+3\s+0\s*$`)
			if !row.MatchString(out) {
				t.Errorf("agent summary lacks the row for %s (1 space, 3 cards, 1 move, 1 task, 1 comment, 3 open, 0 failures):\n%s", p, out)
			}
		}

		// The backend, not the agent's word, is the record: each user owns
		// exactly the one space the agent made for them.
		list := s.mustRun(t, "", bins.kanbot, "space", "list", "--db", s.dbPath, "--json")
		var spaces struct {
			Data struct {
				Spaces []struct {
					Name       string `json:"name"`
					OwnerEmail string `json:"owner_email"`
				} `json:"spaces"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(list.stdout), &spaces); err != nil {
			t.Fatalf("kanbot space list --json: %v\n%s", err, list.stdout)
		}
		var owners []string
		for _, sp := range spaces.Data.Spaces {
			owners = append(owners, sp.OwnerEmail)
		}
		slices.Sort(owners)
		if want := []string{"alice@example.com", "bob@example.com", "charlie@example.com"}; !slices.Equal(owners, want) {
			t.Errorf("space owners in the backend = %v, want %v", owners, want)
		}
		// alice's attempt to write into bob's space left nothing behind.
		resp, body := s.sidecarGet(t, "/api/v1/cards", map[string]string{"X-Kanbot-Profile": "bob"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/v1/cards as bob: %d %s", resp.StatusCode, body)
		}
		if strings.Contains(string(body), "Injected by alice") {
			t.Errorf("bob's cards include the card alice tried to inject: %s", body)
		}
	})

	t.Run("clients", func(t *testing.T) {
		clientsDir := filepath.Join(repoRoot, "examples", "clients")
		type client struct {
			name string
			argv []string
		}
		var clients []client
		for _, c := range []struct{ name, tool, file string }{
			{"curl", "curl", "curl.sh"}, {"python", "python3", "client.py"}, {"node", "node", "client.mjs"},
		} {
			if _, err := exec.LookPath(c.tool); err != nil {
				t.Errorf("the %s client snippet needs %s on PATH, and it is missing: install it to run this test", c.name, c.tool)
				continue
			}
			interp := c.tool
			if c.name == "curl" {
				interp = "sh"
			}
			clients = append(clients, client{c.name, []string{interp, filepath.Join(clientsDir, c.file)}})
		}
		clients = append(clients, client{"go", []string{bins.goclient}})
		env := []string{"SIDECAR_URL=" + s.sidecarURL}
		for _, c := range clients {
			for _, p := range profileNames {
				r := s.run(t, runOpts{env: env}, c.argv[0], append(c.argv[1:], p)...)
				want := fmt.Sprintf("profile=%s email=%s@example.com spaces=1\n", p, p)
				if r.code != 0 || r.stdout != want {
					t.Errorf("%s client as %s: want exit 0 and %q, got %v", c.name, p, want, r)
				}
			}
			// A refusal is reported as the sidecar's, with its code, exit 1.
			r := s.run(t, runOpts{env: env}, c.argv[0], append(c.argv[1:], "mallory")...)
			if r.code != 1 || !strings.Contains(r.stderr, "refused by the sidecar: 403 unknown_profile") {
				t.Errorf("%s client as an unknown profile: want exit 1 and the sidecar's unknown_profile, got %v", c.name, r)
			}
		}
	})

	t.Run("forward_proxy_mode", func(t *testing.T) {
		// HTTP_PROXY-style use: the agent names the backend, the sidecar is
		// its proxy. (Set explicitly: Go skips HTTP_PROXY for loopback.)
		proxyURL, err := url.Parse(s.sidecarURL)
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
		resp, body := doRequest(t, hc, "GET", s.backendURL+"/api/v1/users/me", nil, map[string]string{"X-Kanbot-Profile": "charlie"})
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"charlie@example.com"`) {
			t.Errorf("forward-proxy GET /api/v1/users/me as charlie: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		cases := []struct {
			name   string
			hdr    map[string]string
			status int
			code   string
		}{
			{"untagged", nil, 400, "missing_profile"},
			{"unknown profile", map[string]string{"X-Kanbot-Profile": "mallory"}, 403, "unknown_profile"},
			{"invalid profile name", map[string]string{"X-Kanbot-Profile": "Alice!"}, 400, "bad_profile_header"},
			{"own X-API-Key", map[string]string{"X-Kanbot-Profile": "alice", "X-API-Key": "kb_mine"}, 403, "foreign_credential"},
			{"own Authorization", map[string]string{"X-Kanbot-Profile": "alice", "Authorization": "Bearer x"}, 403, "foreign_credential"},
			{"browser", map[string]string{"X-Kanbot-Profile": "alice", "Origin": "http://evil.example"}, 403, "browser_request"},
		}
		for _, c := range cases {
			resp, body := s.sidecarGet(t, "/api/v1/users/me", c.hdr)
			if resp.StatusCode != c.status || resp.Header.Get("X-Kanbot-Sidecar-Error") != c.code {
				t.Errorf("%s: got %d %q, want %d %s (body %s)", c.name, resp.StatusCode, resp.Header.Get("X-Kanbot-Sidecar-Error"), c.status, c.code, body)
			}
		}
	})

	t.Run("verify", func(t *testing.T) {
		r := s.run(t, runOpts{}, bins.sidecar, "verify", "--json")
		if r.code != 0 {
			t.Fatalf("verify --json: %v", r)
		}
		d := decodeVerify(t, r)
		if !d.OK {
			t.Errorf("verify --json: ok = false: %s", r.stdout)
		}
		for _, name := range wantChecks() {
			if got := d.status(name); got != "PASS" {
				t.Errorf("verify check %q = %s (%s), want PASS", name, got, d.detail(name))
			}
		}
		if len(d.Checks) != len(wantChecks()) {
			t.Errorf("verify reported %d checks, want %d: %s", len(d.Checks), len(wantChecks()), r.stdout)
		}
		// The text form: one line per check, then the verdict.
		r = s.run(t, runOpts{}, bins.sidecar, "verify")
		if r.code != 0 {
			t.Fatalf("verify: %v", r)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != len(wantChecks())+1 || !strings.HasPrefix(lines[len(lines)-1], "verify: OK") {
			t.Errorf("verify text output: want %d check lines and a final \"verify: OK\", got:\n%s", len(wantChecks()), r.stdout)
		}
		for _, l := range lines[:len(lines)-1] {
			if !strings.HasPrefix(l, "PASS ") {
				t.Errorf("verify line %q does not start with PASS", l)
			}
		}
	})

	t.Run("agent_expectation_failures", func(t *testing.T) {
		// A profile the sidecar does not know: the agent must say so and exit 1.
		r := s.run(t, runOpts{}, bins.agent, "--sidecar", s.sidecarURL, "--profiles", "alice,ghost")
		if r.code != 1 {
			t.Fatalf("agent with an unknown profile: exit %d, want 1\n%v", r.code, r)
		}
		if !strings.Contains(r.stdout, "FAIL") || !strings.Contains(r.stdout, "unknown_profile") || !strings.Contains(r.stdout, "result: FAILED") {
			t.Errorf("agent output does not report the unknown profile's failures:\n%s", r.stdout)
		}
		// Nothing listening: a clear message, exit 1.
		closed := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		r = s.run(t, runOpts{}, bins.agent, "--sidecar", closed)
		if r.code != 1 || !strings.Contains(r.stderr, "is `kanbot-sidecar serve` running") {
			t.Errorf("agent against a closed port: want exit 1 and a hint, got %v", r)
		}
		// Bad usage: exit 2.
		for _, args := range [][]string{
			{"--sidecar", "ftp://127.0.0.1:1"},
			{"--profiles", ","},
			{"--profiles", "alice,alice"},
			{"--no-such-flag"},
			{"extra-arg"},
		} {
			if r := s.run(t, runOpts{}, bins.agent, args...); r.code != 2 {
				t.Errorf("agent %v: exit %d, want 2\n%v", args, r.code, r)
			}
		}
	})

	t.Run("verify_failures", func(t *testing.T) {
		// A backend that is down fails the connectivity and header checks.
		closed := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		r := s.run(t, runOpts{}, bins.sidecar, "verify", "--json", "--backend", closed)
		d := decodeVerify(t, r)
		if r.code != 1 || d.OK || d.status("backend_health") != "FAIL" || d.status("security_headers") != "FAIL" {
			t.Errorf("verify with the backend down: want exit 1 with backend_health and security_headers FAIL, got %v", r)
		}
		if d.status("identity alice") != "PASS" {
			t.Errorf("verify with --backend down: identity goes through the sidecar and should still pass, got %s", d.status("identity alice"))
		}
		// A sidecar that is not there fails identity and refusal checks.
		r = s.run(t, runOpts{}, bins.sidecar, "verify", "--json", "--sidecar", closed)
		d = decodeVerify(t, r)
		if r.code != 1 || d.status("identity bob") != "FAIL" || d.status("refuses_untagged") != "FAIL" {
			t.Errorf("verify with no sidecar: want exit 1 with identity and refusal checks FAIL, got %v", r)
		}
		// A vault file others can read fails file_modes.
		vf := filepath.Join(s.home, "vault", "bob.age")
		if err := os.Chmod(vf, 0o644); err != nil {
			t.Fatal(err)
		}
		r = s.run(t, runOpts{}, bins.sidecar, "verify", "--json")
		if err := os.Chmod(vf, 0o600); err != nil {
			t.Fatal(err)
		}
		d = decodeVerify(t, r)
		if r.code != 1 || d.status("file_modes") != "FAIL" || !strings.Contains(d.detail("file_modes"), "vault/bob.age is 0644") {
			t.Errorf("verify with vault/bob.age 0644: want exit 1 and file_modes FAIL naming it, got %v", r)
		}
		// Bad usage exits 2.
		for _, args := range [][]string{{"--sidecar", "not a url"}, {"--backend", "ftp://x"}, {"extra"}} {
			if r := s.run(t, runOpts{}, bins.sidecar, append([]string{"verify"}, args...)...); r.code != 2 {
				t.Errorf("verify %v: exit %d, want 2\n%v", args, r.code, r)
			}
		}
		// A space alice shares with bob is reported, not failed.
		resp, body := s.sidecarGet(t, "/api/v1/spaces", map[string]string{"X-Kanbot-Profile": "alice"})
		var spaces []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &spaces); err != nil || resp.StatusCode != 200 || len(spaces) == 0 {
			t.Fatalf("GET /api/v1/spaces as alice: %d %s", resp.StatusCode, body)
		}
		hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
		resp, body = doRequest(t, hc, "POST", s.sidecarURL+"/api/v1/spaces/"+spaces[0].ID+"/invite",
			[]byte(`{"email":"bob@example.com","role":"member"}`),
			map[string]string{"X-Kanbot-Profile": "alice", "Content-Type": "application/json"})
		if resp.StatusCode != 200 {
			t.Fatalf("alice invites bob: %d %s", resp.StatusCode, body)
		}
		r = s.run(t, runOpts{}, bins.sidecar, "verify", "--json")
		d = decodeVerify(t, r)
		if r.code != 0 || !d.OK {
			t.Errorf("verify with a shared space: want exit 0, got %v", r)
		}
		for _, p := range []string{"alice", "bob"} {
			if d.status("isolation "+p) != "WARN" || !strings.Contains(d.detail("isolation "+p), "shared") {
				t.Errorf("isolation %s with a shared space = %s (%s), want WARN mentioning it", p, d.status("isolation "+p), d.detail("isolation "+p))
			}
		}
		if d.status("isolation charlie") != "PASS" {
			t.Errorf("isolation charlie = %s, want PASS", d.status("isolation charlie"))
		}
	})

	t.Run("audit", func(t *testing.T) {
		r := s.mustRun(t, "", bins.sidecar, "audit", "verify")
		if !strings.Contains(r.stdout, "OK") {
			t.Errorf("audit verify: want OK, got %v", r)
		}
		r = s.mustRun(t, "", bins.sidecar, "audit", "stats", "--json")
		if !json.Valid([]byte(r.stdout)) {
			t.Fatalf("audit stats --json: not JSON: %v", r)
		}
		for _, p := range profileNames {
			if !strings.Contains(r.stdout, `"`+p+`"`) {
				t.Errorf("audit stats --json does not mention %s: %s", p, r.stdout)
			}
		}
		r = s.mustRun(t, "", bins.sidecar, "audit", "query", "--reason", "missing_profile", "--format", "json")
		if !strings.Contains(r.stdout, "missing_profile") {
			t.Errorf("audit query --reason missing_profile finds no refusal: %v", r)
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		if err := s.sidecar.stop(); err != nil {
			t.Errorf("sidecar after SIGTERM: %v, want exit 0", err)
		}
		r := s.mustRun(t, "", bins.sidecar, "audit", "verify")
		if !strings.Contains(r.stdout, "OK") {
			t.Errorf("audit verify after shutdown: %v", r)
		}
		if err := s.backend.stop(); err != nil {
			t.Errorf("backend after SIGTERM: %v, want exit 0", err)
		}
	})

	t.Run("no_key_anywhere", func(t *testing.T) {
		log, err := os.ReadFile(filepath.Join(s.dir, "logs", "kanbot-sidecar.log"))
		if err != nil || !strings.Contains(string(log), "alice") {
			t.Errorf("the sidecar log is empty or never names a profile (err %v): the canary scan would prove nothing", err)
		}
		s.mu.Lock()
		outputs := slices.Clone(s.outputs)
		s.mu.Unlock()
		assertNoKeys(t, s.keys, outputs, s.dir)
	})
}
