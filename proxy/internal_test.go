package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/profiles"
)

func TestNormalizePath(t *testing.T) {
	t.Parallel()
	ok := map[string]string{
		"/api/v1/spaces":           "/api/v1/spaces",
		"/api/v1/spaces/":          "/api/v1/spaces/",
		"/health":                  "/health",
		"/api/v1/cards/a%20b":      "/api/v1/cards/a b",
		"/api/v1/%61bc":            "/api/v1/abc",
		"/api/v1/x%3Fy":            "/api/v1/x?y",
		"/api/v1/a.b/c..d/.e/f.":   "/api/v1/a.b/c..d/.e/f.",
		"/api/v1/spaces:search@x~": "/api/v1/spaces:search@x~",
	}
	for in, want := range ok {
		got, err := normalizePath(in)
		if err != nil || got != want {
			t.Errorf("normalizePath(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", "api/v1", "*", "/api/v1/../admin", "/api/v1/..", "/api/v1/./x", "/./api", "/..",
		"/api/v1/%2e%2e/admin", "/api/v1/%2E%2E/admin", "/api/v1/%2e/x", "/api/v1/.%2e/x",
		"/api/v1%2fadmin", "/api/v1%2Fadmin", "/api/v1/%5c..%5cadmin", "/api\\v1", "/api/v1/%252e%252e",
		"//api/v1/x", "/api//v1", "/api/v1/%00", "/api/v1/%0a", "/api/v1/%7f", "/api/v1/%", "/api/v1/%2",
		"/api/v1/%zz", "/api/v1/a b", "/api/v1/\x00", "/api/v1/é", "/api/v1/a#b", "/api/v1/a\"b",
		"/" + strings.Repeat("a", maxPathLen),
		// ';' anywhere: Tomcat-style servers resolve "..;" to the parent.
		"/api/v1/cards/..;/spaces", "/api/v1/cards/..;x/spaces", "/api/v1/spaces;jsessionid=x", "/api/v1/;/x",
		"/api/v1/cards/..%3b/spaces", "/api/v1/a%3Bb",
		// Encoded bytes outside ASCII: overlong UTF-8 dots and slashes,
		// fullwidth dot, and (Kanbot routes being ASCII) valid UTF-8 too.
		"/api/v1/%c0%ae%c0%ae/admin", "/api/v1/%C0%AE/x", "/api/v1/%c0%af", "/api/v1/%e0%80%ae",
		"/api/v1/%ef%bc%8e%ef%bc%8e/admin", "/api/v1/%80", "/api/v1/%ff", "/api/v1/caf%C3%A9",
	}
	for _, in := range bad {
		if got, err := normalizePath(in); err == nil {
			t.Errorf("normalizePath(%q) = %q, want an error", in, got)
		}
	}
}

func TestPathAllowed(t *testing.T) {
	t.Parallel()
	prefixes := []string{"/api/v1/", "/health"}
	for p, want := range map[string]bool{
		"/api/v1/spaces": true, "/api/v1/": true, "/health": true, "/health/db": true,
		"/api/v1": false, "/healthz": false, "/health-admin": false, "/api/v10/x": false, "/admin": false, "/": false,
	} {
		if got := pathAllowed(p, prefixes); got != want {
			t.Errorf("pathAllowed(%q) = %v, want %v", p, got, want)
		}
	}
}

// Key management is reachable only through an allow_paths entry under it.
func TestPathAllowedKeyManagement(t *testing.T) {
	t.Parallel()
	cases := []struct {
		path     string
		prefixes []string
		want     bool
	}{
		{"/api/v1/auth/api-keys", []string{"/api/v1/"}, false},
		{"/api/v1/auth", []string{"/api/v1/"}, false},
		{"/api/v1/auth/api-keys/x", []string{"/"}, false},
		{"/api/v1/auth/api-keys", []string{"/api/v1/auth/api-keys"}, true},
		{"/api/v1/auth/api-keys/x", []string{"/api/v1/auth/"}, true},
		{"/api/v1/auth/other", []string{"/api/v1/auth/api-keys"}, false},
		{"/api/v1/authors", []string{"/api/v1/"}, true}, // a different segment
		{"/api/v1/spaces", []string{"/api/v1/auth/"}, false},
	}
	for _, c := range cases {
		if got := pathAllowed(c.path, c.prefixes); got != c.want {
			t.Errorf("pathAllowed(%q, %q) = %v, want %v", c.path, c.prefixes, got, c.want)
		}
	}
}

// FuzzNormalizePath: whatever an agent sends, an accepted path has no dot
// or empty segment and no encoded separator once decoded, and decoding it
// again changes nothing structural (no double-decoding surprise).
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/api/v1/spaces", "/api/v1/%2e%2e/x", "/api/v1/a%20b", "//x", "/a/./b", "/%252f", "/api/v1/caf%C3%A9/", "/api/v1/..;/x", "/api/v1/%c0%ae"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := normalizePath(in)
		if err != nil {
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("normalizePath(%q) = %q: not absolute", in, out)
		}
		segs := strings.Split(out[1:], "/")
		for i, s := range segs {
			if s == "." || s == ".." || (s == "" && i != len(segs)-1) {
				t.Fatalf("normalizePath(%q) = %q: bad segment %q", in, out, s)
			}
		}
		if strings.ContainsAny(out, "\\\x00") || strings.Count(out, "/") != strings.Count(in, "/") {
			t.Fatalf("normalizePath(%q) = %q: separators changed", in, out)
		}
		if strings.Contains(out, "%") {
			t.Fatalf("normalizePath(%q) = %q: a %% survived decoding", in, out)
		}
		for i := 0; i < len(out); i++ {
			if out[i] == ';' || out[i] >= 0x80 {
				t.Fatalf("normalizePath(%q) = %q: byte %#x at %d (';' and non-ASCII are refused)", in, out, out[i], i)
			}
		}
		// What Go's URL parser makes of it agrees with us.
		u, err := url.Parse(in)
		if err != nil {
			t.Fatalf("normalizePath accepted %q but url.Parse refuses it: %v", in, err)
		}
		if u.Path != out {
			t.Fatalf("normalizePath(%q) = %q, url.Parse path %q", in, out, u.Path)
		}
	})
}

func scan(h http.Header) (string, *Refusal) {
	p := &Proxy{hc: headerClassifier{injectHeader: "X-API-Key"}}
	var hs headerScan
	p.scanHeaders(h, &hs)
	return profileFromHeader(&hs)
}

func TestProfileHeader(t *testing.T) {
	t.Parallel()
	cases := []struct {
		h    http.Header
		name string
		code string
	}{
		{http.Header{"X-Kanbot-Profile": {"alice"}}, "alice", ""},
		{http.Header{"X-Kanbot_profile": {"alice"}}, "alice", ""},
		{http.Header{"x_kanbot_profile": {"bob.b-2_x"}}, "bob.b-2_x", ""},
		{http.Header{}, "", CodeMissingProfile},
		{http.Header{"X-Kanbot-Profile": {}}, "", CodeMissingProfile},
		{http.Header{"X-Kanbot-Profile": {"alice", "bob"}}, "", CodeBadProfileHeader},
		{http.Header{"X-Kanbot-Profile": {"alice"}, "X-Kanbot_Profile": {"alice"}}, "", CodeBadProfileHeader},
		{http.Header{"X-Kanbot-Profile": {"alice,bob"}}, "", CodeBadProfileHeader},
		{http.Header{"X-Kanbot-Profile": {" alice"}}, "", CodeBadProfileHeader},
		{http.Header{"X-Kanbot-Profile": {""}}, "", CodeBadProfileHeader},
		{http.Header{"X-Kanbot-Profile": {"ALICE"}}, "", CodeBadProfileHeader},
		{http.Header{"X-Kanbot-Profile": {strings.Repeat("a", 64)}}, "", CodeBadProfileHeader},
	}
	for _, tc := range cases {
		name, ref := scan(tc.h)
		code := ""
		if ref != nil {
			code = ref.Code
		}
		if name != tc.name || code != tc.code {
			t.Errorf("profile of %v = %q, %q; want %q, %q", tc.h, name, code, tc.name, tc.code)
		}
	}
}

// FuzzProfileHeader: any header name and values either yield exactly one
// valid profile name, found under a name that folds to X-Kanbot-Profile,
// or a missing/bad-header refusal; a refusal message never echoes an
// invalid value.
func FuzzProfileHeader(f *testing.F) {
	f.Add("X-Kanbot-Profile", "alice", "")
	f.Add("x_kanbot-PROFILE", "bob", "carol")
	f.Add("X-Kanbot-Profil", "alice", "")
	f.Add("X-Kanbot-Profile", "kb_SECRET-key", "")
	f.Fuzz(func(t *testing.T, name, v1, v2 string) {
		vals := []string{v1}
		if v2 != "" {
			vals = append(vals, v2)
		}
		got, ref := scan(http.Header{name: vals})
		folds := sameHeaderName(name, HeaderProfile)
		if ref == nil {
			if !folds || len(vals) != 1 || got != v1 || !profiles.ValidName(got) {
				t.Fatalf("header %q: %q accepted as %q", name, vals, got)
			}
			return
		}
		if ref.Code != CodeMissingProfile && ref.Code != CodeBadProfileHeader {
			t.Fatalf("unexpected code %s", ref.Code)
		}
		if !folds && ref.Code != CodeMissingProfile {
			t.Fatalf("header %q is not the profile header but got %s", name, ref.Code)
		}
		if len(v1) > 3 && strings.Contains(ref.Message, v1) {
			t.Fatalf("refusal message echoes the value: %q", ref.Message)
		}
	})
}

func TestSameHeaderName(t *testing.T) {
	t.Parallel()
	for _, c := range [][2]string{{"X-API-Key", "x_api_key"}, {"X_Api_KEY", "X-API-Key"}, {"Cookie", "COOKIE"}} {
		if !sameHeaderName(c[0], c[1]) {
			t.Errorf("sameHeaderName(%q, %q) = false", c[0], c[1])
		}
	}
	for _, c := range [][2]string{{"X-API-Keys", "X-API-Key"}, {"X.API.Key", "X-API-Key"}, {"XAPIKey", "X-API-Key"}} {
		if sameHeaderName(c[0], c[1]) {
			t.Errorf("sameHeaderName(%q, %q) = true", c[0], c[1])
		}
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := newRequestID(now), newRequestID(now.Add(time.Millisecond))
	if len(a) != 26 || !saneRequestID(a) || a >= b || a == newRequestID(now) {
		t.Errorf("ids %q, %q: want 26 sane chars, time-ordered, unique", a, b)
	}
	for s, want := range map[string]bool{"abc-1.2_3": true, "": false, "a b": false, "a\nb": false, strings.Repeat("a", 65): false, strings.Repeat("a", 64): true} {
		if saneRequestID(s) != want {
			t.Errorf("saneRequestID(%q) = %v", s, !want)
		}
	}
}

// The framing watcher queues one verdict per head, in order, across
// fixed-length and chunked bodies and pipelined requests.
func TestFramingConnVerdicts(t *testing.T) {
	t.Parallel()
	stream := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nGET /\r\n0\r\nT: v\r\n\r\n" +
		"POST /d HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
		"\r\nPOST /e HTTP/1.1\r\ncontent-length: 2\r\nCONTENT-LENGTH: 2\r\n\r\nab" +
		"GET /f HTTP/1.1\nHost: x\n\n"
	want := []bool{false, false, false, true, true, false}
	for _, step := range []int{1, 3, 7, len(stream)} {
		c := &framingConn{}
		for i := 0; i < len(stream); i += step {
			c.feed([]byte(stream[i:min(i+step, len(stream))]))
		}
		if c.broken {
			t.Fatalf("step %d: watcher lost the stream", step)
		}
		for i, w := range want {
			if got := c.ambiguous(); got != w {
				t.Errorf("step %d: request %d ambiguous = %v, want %v", step, i, got, w)
			}
		}
		if len(c.verdicts) != 0 {
			t.Errorf("step %d: %d extra verdicts", step, len(c.verdicts))
		}
	}
}

func FuzzFramingConn(f *testing.F) {
	f.Add("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n", 3)
	f.Add("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 1)
	f.Fuzz(func(t *testing.T, s string, step int) {
		if step <= 0 || step > 64 {
			step = 7
		}
		c := &framingConn{}
		for i := 0; i < len(s); i += step {
			c.feed([]byte(s[i:min(i+step, len(s))]))
		}
		for c.ambiguous() {
		}
	})
}

func TestScrubResponseHeader(t *testing.T) {
	t.Parallel()
	key := "kb_secret_123"
	h := http.Header{
		"X-Echo":                 {key},
		"X-Multi":                {"fine", "has " + key + " inside"},
		"Connection":             {"X-Hop"},
		"X-Hop":                  {"x"},
		"Keep-Alive":             {"1"},
		"X-Kanbot-Sidecar-Error": {"forged"},
		"Content-Type":           {"application/json"},
	}
	scrubResponseHeader(h, key)
	want := http.Header{"X-Multi": {"fine"}, "Content-Type": {"application/json"}}
	if len(h) != len(want) || h.Get("X-Multi") != "fine" || len(h["X-Multi"]) != 1 || h.Get("Content-Type") == "" {
		t.Errorf("scrubbed = %v, want %v", h, want)
	}
}

func TestRefusalBodyEscapes(t *testing.T) {
	t.Parallel()
	b := string(refusalBody(&Refusal{Code: "c", Message: "a \"q\" \\ <x> \n"}, "id"))
	want := `{"error":{"code":"c","message":"a \"q\" \\ \u003cx\u003e \u000a","request_id":"id"}}` + "\n"
	if b != want {
		t.Errorf("refusalBody = %s, want %s", b, want)
	}
}
