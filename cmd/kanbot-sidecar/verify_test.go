package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
	"github.com/kanbot/kanbot-sidecar/proxy"
)

func TestDecodeSpaces(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in      string
		want    int
		wantErr bool
	}{
		{`[{"id":"a","owner_id":"u1"}]`, 1, false}, // Kanbot: a bare list
		{`[]`, 0, false},
		{`{"spaces":[{"id":"a"},{"id":"b"}]}`, 2, false}, // wrapped
		{`{"spaces":[]}`, 0, false},
		{`{"items":[]}`, 0, true},
		{`{"spaces":null}`, 0, true},
		{`{"detail":"Invalid API key"}`, 0, true},
		{`"nope"`, 0, true},
		{`<html>`, 0, true},
	} {
		got, err := decodeSpaces([]byte(c.in))
		if (err != nil) != c.wantErr || len(got) != c.want {
			t.Errorf("decodeSpaces(%s) = %d spaces, %v; want %d, error %v", c.in, len(got), err, c.want, c.wantErr)
		}
	}
}

func TestSpaceMember(t *testing.T) {
	t.Parallel()
	alice := verifyUser{ID: "u-alice", Email: "alice@example.com"}
	type member = struct {
		UserID string `json:"user_id"`
		Email  string `json:"email"`
	}
	for _, c := range []struct {
		name          string
		s             verifySpace
		member, known bool
	}{
		{"owner by id", verifySpace{OwnerID: "u-alice"}, true, true},
		{"owner by email, any case", verifySpace{OwnerEmail: "Alice@Example.com"}, true, true},
		{"member", verifySpace{OwnerID: "u-bob", Members: []member{{UserID: "u-bob"}, {UserID: "u-alice"}}}, true, true},
		{"member by email", verifySpace{OwnerID: "u-bob", Members: []member{{Email: "alice@example.com"}}}, true, true},
		{"someone else's", verifySpace{OwnerID: "u-bob", OwnerEmail: "bob@example.com", Members: []member{{UserID: "u-bob"}}}, false, true},
		{"empty member list is still an answer", verifySpace{Members: []member{}}, false, true},
		{"nothing to tell", verifySpace{ID: "s1", Name: "x"}, false, false},
	} {
		m, k := spaceMember(c.s, alice)
		if m != c.member || k != c.known {
			t.Errorf("%s: spaceMember = (%v, %v), want (%v, %v)", c.name, m, k, c.member, c.known)
		}
	}
}

func TestVerifyDialAddr(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"127.0.0.1:8787": "127.0.0.1:8787",
		"0.0.0.0:8787":   "127.0.0.1:8787",
		":8787":          "127.0.0.1:8787",
		"[::]:8787":      "[::1]:8787",
		"[::1]:8787":     "[::1]:8787",
		"localhost:1":    "localhost:1",
	} {
		if got := verifyDialAddr(in); got != want {
			t.Errorf("verifyDialAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVerifyBaseURL(t *testing.T) {
	t.Parallel()
	for in, ok := range map[string]bool{
		"http://127.0.0.1:8787":  true,
		"https://kanbot.example": true,
		"ftp://x":                false,
		"127.0.0.1:8787":         false,
		"http://x/?q=1":          false,
		"http://x/#f":            false,
		"not a url":              false,
	} {
		if err := verifyBaseURL(in); (err == nil) != ok {
			t.Errorf("verifyBaseURL(%q) = %v, want ok=%v", in, err, ok)
		}
	}
}

// TestVerifyClientToken runs verify against a real backend and a sidecar
// that requires client tokens: without one, the failures say what to pass;
// with --client-token-file, every check passes and the token is never
// printed.
func TestVerifyClientToken(t *testing.T) {
	t.Parallel()
	const token = "verify-test-client-token-0123456789"
	b := testutil.StartBackend(t)
	_, key := b.CreateUser(t, "alice@example.com", "alice")
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{
		Upstream: b.URL,
		Profiles: []testutil.ProfileSpec{{Name: "alice", Key: key}},
		Clients:  []proxy.Client{{Name: "agent", TokenSHA256: sha256.Sum256([]byte(token)), Profiles: []string{"*"}}},
	})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	verify := func(extra ...string) (int, verifyReport, string) {
		var stdout, stderr bytes.Buffer
		args := append([]string{"verify", "--json", "--home", sc.Home, "--sidecar", sc.URL, "--backend", b.URL}, extra...)
		code := run(t.Context(), args, strings.NewReader(""), &stdout, &stderr)
		var rep verifyReport
		if stdout.Len() > 0 {
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatalf("verify %v: not JSON: %v\n%s\n%s", extra, err, stdout.String(), stderr.String())
			}
		}
		return code, rep, stdout.String() + stderr.String()
	}
	status := func(rep verifyReport, name string) checkResult {
		for _, c := range rep.Checks {
			if c.Name == name {
				return c
			}
		}
		return checkResult{Status: "(missing)"}
	}

	code, rep, out := verify()
	if c := status(rep, "identity alice"); code != 1 || c.Status != checkFail || !strings.Contains(c.Detail, "--client-token-file") {
		t.Errorf("verify without a token: exit %d, identity = %+v; want exit 1 and a FAIL naming --client-token-file", code, c)
	}
	code, rep, out2 := verify("--client-token-file", tokenFile)
	if code != 0 || !rep.OK {
		t.Errorf("verify with the token: exit %d, report %+v", code, rep)
	}
	for _, o := range []string{out, out2} {
		if strings.Contains(o, token) {
			t.Error("verify printed the client token")
		}
	}
	for _, bad := range []string{filepath.Join(t.TempDir(), "missing"), writeTemp(t, ""), writeTemp(t, "a\nb\n")} {
		code, _, o := verify("--client-token-file", bad)
		if code == 0 || strings.Contains(o, "a\nb") {
			t.Errorf("verify --client-token-file %s: exit %d, want a failure that does not quote the file", bad, code)
		}
	}
	sc.AssertKeysAbsent(t)
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// --sidecar accepts the unix:/path form that listen uses.
func TestVerifySidecarUnixFlag(t *testing.T) {
	t.Parallel()
	fc, err := loadConfig(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := newVerifier(t.TempDir(), fc, "unix:/run/kanbot-sidecar.sock", "")
	if err != nil {
		t.Fatalf("newVerifier(--sidecar unix:…) = %v", err)
	}
	if v.sidecar != "http://localhost" {
		t.Errorf("sidecar base = %q, want http://localhost (dialled over the socket)", v.sidecar)
	}
	if _, err := newVerifier(t.TempDir(), fc, "ftp://x", ""); err == nil {
		t.Error("newVerifier(--sidecar ftp://x) accepted")
	}
}
