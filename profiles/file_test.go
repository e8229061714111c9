package profiles_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/profiles"
)

const goodEntry = `
    email: alice@example.com
    key_fingerprint: sha256:0123456789ab
    created_at: 2026-01-02T03:04:05Z`

func TestParseAcceptsFullEntry(t *testing.T) {
	t.Parallel()
	data := `# comment
profiles:
  alice:
    email: alice@example.com
    upstream: https://kanbot.example.com:8443
    rate: 2.5
    burst: 5
    allow_paths: [/api/v1/spaces, /health]
    allow_methods: [GET, POST]
    key_fingerprint: sha256:0123456789ab
    created_at: 2026-01-02T03:04:05Z
    rotated_at: 2026-02-03T04:05:06Z
  bob:` + goodEntry + `
`
	ps, err := profiles.Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []profiles.Meta{{
		Name: "alice", Email: "alice@example.com", Upstream: "https://kanbot.example.com:8443",
		Rate: 2.5, Burst: 5, AllowPaths: []string{"/api/v1/spaces", "/health"}, AllowMethods: []string{"GET", "POST"},
		KeyFingerprint: "sha256:0123456789ab",
		CreatedAt:      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), RotatedAt: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC),
	}, {
		Name: "bob", Email: "alice@example.com", KeyFingerprint: "sha256:0123456789ab",
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}}
	if !reflect.DeepEqual(ps, want) {
		t.Fatalf("Parse = %+v\nwant    %+v", ps, want)
	}
	out, err := profiles.Marshal(ps)
	if err != nil {
		t.Fatal(err)
	}
	again, err := profiles.Parse(out)
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("Parse(Marshal(x)) = %+v, %v; want %+v\n%s", again, err, want, out)
	}
	for _, empty := range []string{"", "# nothing\n", "profiles: {}\n", "profiles:\n"} {
		if ps, err := profiles.Parse([]byte(empty)); err != nil || len(ps) != 0 {
			t.Errorf("Parse(%q) = %v, %v; want no profiles", empty, ps, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	entry := func(extra string) string { return "profiles:\n  alice:" + goodEntry + "\n" + extra }
	swap := func(old, new string) string {
		return "profiles:\n  alice:" + strings.Replace(goodEntry, old, new, 1) + "\n"
	}
	for name, tc := range map[string]struct{ data, want string }{
		"unknown top-level field": {"profiles: {}\nversion: 2\n", "version"},
		"unknown profile field":   {entry("    api_key: kb_secret\n"), "api_key"},
		"misspelled field":        {swap("email:", "e-mail:"), "e-mail"},
		"duplicate name":          {"profiles:\n  alice:" + goodEntry + "\n  alice:" + goodEntry + "\n", "alice"},
		"second document":         {entry("---\nprofiles: {}\n"), "more than one"},
		"empty entry":             {"profiles:\n  alice:\n", `profile "alice": empty entry`},
		"invalid name":            {"profiles:\n  Alice:" + goodEntry + "\n", `"Alice"`},
		"name with slash":         {"profiles:\n  ../etc:" + goodEntry + "\n", `"../etc"`},
		"missing email":           {swap("email: alice@example.com", "upstream: http://h"), "email is required"},
		"bad email":               {swap("alice@example.com", "Alice <alice@example.com>"), "email"},
		"bad upstream":            {entry("    upstream: ftp://h\n"), "scheme"},
		"upstream with creds":     {entry("    upstream: http://u:p@h\n"), "credentials"},
		"bad method":              {entry("    allow_methods: [get]\n"), `method "get"`},
		"CONNECT":                 {entry("    allow_methods: [CONNECT]\n"), `method "CONNECT"`},
		"relative path":           {entry("    allow_paths: [api/v1]\n"), "must start with /"},
		"dotdot path":             {entry("    allow_paths: [/api/../admin]\n"), ".."},
		"encoded path":            {entry("    allow_paths: [/api%2fv1]\n"), "%"},
		"negative rate":           {entry("    rate: -1\n"), "rate"},
		"NaN rate":                {entry("    rate: .nan\n"), "rate"},
		"negative burst":          {entry("    burst: -3\n"), "burst"},
		"rate as text":            {entry("    rate: fast\n"), "fast"},
		"bad fingerprint":         {swap("sha256:0123456789ab", "sha256:XYZ"), "key_fingerprint"},
		"missing created_at":      {swap("created_at: 2026-01-02T03:04:05Z", "rotated_at: 2026-01-02T03:04:05Z"), "created_at"},
		"list instead of map":     {"profiles:\n  - alice\n", "cannot unmarshal"},
		"not yaml":                {"profiles: [\n", "parse"},
	} {
		_, err := profiles.Parse([]byte(tc.data))
		if err == nil {
			t.Errorf("%s: Parse accepted\n%s", name, tc.data)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Parse error %q does not mention %q", name, err, tc.want)
		}
	}
}

func TestValidators(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a@b.c", "alice.smith+kanbot@example.co.uk"} {
		if err := profiles.CheckEmail(ok); err != nil {
			t.Errorf("CheckEmail(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "alice", "alice@", "Alice <a@b.c>", "a@b.c ", " a@b.c", "a b@c.d", "a@b.c\n", strings.Repeat("a", 250) + "@b.cd"} {
		if profiles.CheckEmail(bad) == nil {
			t.Errorf("CheckEmail(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"http://127.0.0.1:8000", "https://kanbot.example.com", "http://[::1]:8000/", "http://h/base"} {
		if err := profiles.CheckUpstream(ok); err != nil {
			t.Errorf("CheckUpstream(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:8000", "ftp://h", "http://", "http://:80", "http://u@h", "http://h?x=1", "http://h/#f", "http://h/?", "http://h:port"} {
		if profiles.CheckUpstream(bad) == nil {
			t.Errorf("CheckUpstream(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"/", "/api/v1/", "/health", "/api/v1/spaces/x_y-z.json"} {
		if err := profiles.CheckPathPrefix(ok); err != nil {
			t.Errorf("CheckPathPrefix(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "api", "//x", "/a//b", "/a/./b", "/a/..", "/a b", "/a?b", "/a#b", "/a%2e", `/a\b`, "/a\x00", "/é"} {
		if profiles.CheckPathPrefix(bad) == nil {
			t.Errorf("CheckPathPrefix(%q) accepted", bad)
		}
	}
	for _, bad := range [][]byte{nil, []byte(""), []byte("kb key"), []byte("kb\nkey"), []byte("kb\tkey"), []byte("kb\x7fkey"), []byte("clé"), make([]byte, 20000)} {
		err := profiles.CheckKey(bad)
		if err == nil {
			t.Errorf("CheckKey(%q) accepted", bad)
		} else if len(bad) > 2 && len(bad) < 100 && strings.Contains(err.Error(), string(bad)) {
			t.Errorf("CheckKey error %q quotes the key", err)
		}
	}
	if err := profiles.CheckKey([]byte("kb_live_AbC123-_.~!")); err != nil {
		t.Errorf("CheckKey(good) = %v", err)
	}
}
