package proxy_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/auditdb"
	"github.com/kanbot/kanbot-sidecar/internal/testutil"
	"github.com/kanbot/kanbot-sidecar/proxy"
)

const clientToken = "client-token-for-tests-0123456789"

func testClients() []proxy.Client {
	return []proxy.Client{{Name: "agent-a", TokenSHA256: sha256.Sum256([]byte(clientToken)), Profiles: []string{"alice"}}}
}

// rawExchange writes raw bytes to addr and reads one HTTP response: for
// requests Go's client will not send (bad framing, dot segments, CONNECT).
func rawExchange(t *testing.T, sc *testutil.Sidecar, raw string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", sc.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", raw, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sc.Remember(body)
	return resp, body
}

// forwardClient sends requests through the sidecar as an HTTP proxy.
func forwardClient(sc *testutil.Sidecar) *http.Client {
	pu, _ := url.Parse(sc.URL)
	return &http.Client{
		Transport:     &http.Transport{Proxy: http.ProxyURL(pu)},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

// failingRecorder fails every event of kind (the fault behind
// audit_unavailable, which a healthy SQLite file cannot produce on demand).
type failingRecorder struct {
	next proxy.Recorder
	kind string
}

func (f failingRecorder) Record(ctx context.Context, ev auditdb.Event) error {
	if ev.Kind == f.kind {
		return errors.New("disk full (injected)")
	}
	return f.next.Record(ctx, ev)
}

type refusalCase struct {
	name   string
	cfg    func(c *testutil.SidecarConfig)
	send   func(t *testing.T, sc *testutil.Sidecar, up *upstream) (*http.Response, []byte)
	status int
	code   string
}

// get sends a base-URL GET with the given headers (pairs of name, value;
// names are set verbatim, so look-alikes stay look-alikes).
func get(path string, headers ...string) func(*testing.T, *testutil.Sidecar, *upstream) (*http.Response, []byte) {
	return do(http.MethodGet, path, headers...)
}

func do(method, path string, headers ...string) func(*testing.T, *testutil.Sidecar, *upstream) (*http.Response, []byte) {
	return func(t *testing.T, sc *testutil.Sidecar, _ *upstream) (*http.Response, []byte) {
		req := newRequest(t, sc, method, path, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			if strings.EqualFold(headers[i], "Host") {
				req.Host = headers[i+1]
				continue
			}
			req.Header[headers[i]] = append(req.Header[headers[i]], headers[i+1])
		}
		return sc.Do(t, nil, req)
	}
}

// fwd sends a forward-proxy request for target with headers.
func fwd(method, target string, headers ...string) func(*testing.T, *testutil.Sidecar, *upstream) (*http.Response, []byte) {
	return func(t *testing.T, sc *testutil.Sidecar, up *upstream) (*http.Response, []byte) {
		target := strings.ReplaceAll(target, "UPSTREAM", strings.TrimPrefix(up.URL, "http://"))
		req, err := http.NewRequestWithContext(context.Background(), method, target, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header[headers[i]] = append(req.Header[headers[i]], headers[i+1])
		}
		return sc.Do(t, forwardClient(sc), req)
	}
}

// raw sends a raw request; "HOST" in it is replaced by the sidecar's address.
func raw(s string) func(*testing.T, *testutil.Sidecar, *upstream) (*http.Response, []byte) {
	return func(t *testing.T, sc *testutil.Sidecar, up *upstream) (*http.Response, []byte) {
		s := strings.ReplaceAll(s, "UPSTREAM", strings.TrimPrefix(up.URL, "http://"))
		return rawExchange(t, sc, strings.ReplaceAll(s, "HOST", sc.Addr))
	}
}

const P = "X-Kanbot-Profile"

func withClients(c *testutil.SidecarConfig) { c.Clients = testClients() }

func TestRefusals(t *testing.T) {
	t.Parallel()
	cases := []refusalCase{
		{name: "bad_host/other name", send: get("/api/v1/spaces", P, "alice", "Host", "evil.example.com"), status: 403, code: proxy.CodeBadHost},
		{name: "bad_host/rebinding suffix", send: get("/api/v1/spaces", P, "alice", "Host", "127.0.0.1.nip.io:8787"), status: 403, code: proxy.CodeBadHost},
		{name: "bad_host/localhost suffix", send: get("/api/v1/spaces", P, "alice", "Host", "localhost.evil.com"), status: 403, code: proxy.CodeBadHost},
		{name: "bad_host/private ip", send: get("/api/v1/spaces", P, "alice", "Host", "192.168.1.10:8787"), status: 403, code: proxy.CodeBadHost},
		{name: "bad_host/not in allowed_hosts", cfg: func(c *testutil.SidecarConfig) { c.AllowedHosts = []string{"sidecar.internal"} },
			send: get("/api/v1/spaces", P, "alice", "Host", "sidecar.internal.evil"), status: 403, code: proxy.CodeBadHost},
		{name: "bad_host/http1.0 without Host", send: raw("GET /api/v1/spaces HTTP/1.0\r\nX-Kanbot-Profile: alice\r\n\r\n"), status: 403, code: proxy.CodeBadHost},

		{name: "browser_request/origin", send: get("/api/v1/spaces", P, "alice", "Origin", "http://evil.example"), status: 403, code: proxy.CodeBrowserRequest},
		{name: "browser_request/null origin", send: get("/api/v1/spaces", P, "alice", "Origin", "null"), status: 403, code: proxy.CodeBrowserRequest},
		{name: "browser_request/sec-fetch-site", send: get("/api/v1/spaces", P, "alice", "Sec-Fetch-Site", "cross-site"), status: 403, code: proxy.CodeBrowserRequest},
		{name: "browser_request/sec-fetch-dest look-alike", send: get("/api/v1/spaces", P, "alice", "sec_fetch_dest", "empty"), status: 403, code: proxy.CodeBrowserRequest},
		{name: "browser_request/browser fetch metadata", send: get("/api/v1/spaces", P, "alice", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Dest", "empty"), status: 403, code: proxy.CodeBrowserRequest},
		{name: "browser_request/cors preflight", send: do(http.MethodOptions, "/api/v1/spaces", "Origin", "http://evil.example", "Access-Control-Request-Method", "DELETE"), status: 403, code: proxy.CodeBrowserRequest},

		{name: "client_unauthorized/no token", cfg: withClients, send: get("/api/v1/spaces", P, "alice"), status: 401, code: proxy.CodeClientUnauthorized},
		{name: "client_unauthorized/wrong token", cfg: withClients, send: get("/api/v1/spaces", P, "alice", proxy.HeaderClientToken, "nope"), status: 401, code: proxy.CodeClientUnauthorized},
		{name: "client_unauthorized/two tokens", cfg: withClients, send: get("/api/v1/spaces", P, "alice", proxy.HeaderClientToken, clientToken, "X_Kanbot_Client_Token", clientToken), status: 401, code: proxy.CodeClientUnauthorized},
		{name: "client_unauthorized/forward 407", cfg: withClients, send: fwd("GET", "http://UPSTREAM/api/v1/spaces", P, "alice"), status: 407, code: proxy.CodeClientUnauthorized},
		{name: "client_unauthorized/forward wrong basic", cfg: withClients, send: fwd("GET", "http://agent:wrong@UPSTREAM/api/v1/spaces", P, "alice"), status: 407, code: proxy.CodeClientUnauthorized},
		{name: "profile_not_allowed/token", cfg: withClients, send: get("/api/v1/spaces", P, "bob", proxy.HeaderClientToken, clientToken), status: 403, code: proxy.CodeProfileNotAllowed},

		{name: "missing_profile/none", send: get("/api/v1/spaces"), status: 400, code: proxy.CodeMissingProfile},
		{name: "missing_profile/other header", send: get("/api/v1/spaces", "X-Kanbot-Profiles", "alice"), status: 400, code: proxy.CodeMissingProfile},
		{name: "bad_profile_header/repeated", send: get("/api/v1/spaces", P, "alice", P, "alice"), status: 400, code: proxy.CodeBadProfileHeader},
		{name: "bad_profile_header/list", send: get("/api/v1/spaces", P, "alice, bob"), status: 400, code: proxy.CodeBadProfileHeader},
		{name: "bad_profile_header/upper case", send: get("/api/v1/spaces", P, "Alice"), status: 400, code: proxy.CodeBadProfileHeader},
		{name: "bad_profile_header/path", send: get("/api/v1/spaces", P, "../alice"), status: 400, code: proxy.CodeBadProfileHeader},
		{name: "bad_profile_header/empty", send: get("/api/v1/spaces", P, ""), status: 400, code: proxy.CodeBadProfileHeader},
		{name: "bad_profile_header/look-alike twin", send: get("/api/v1/spaces", P, "alice", "x-kanbot_profile", "bob"), status: 400, code: proxy.CodeBadProfileHeader},
		{name: "unknown_profile/mallory", send: get("/api/v1/spaces", P, "mallory"), status: 403, code: proxy.CodeUnknownProfile},
		{name: "unknown_profile/via look-alike", send: get("/api/v1/spaces", "X_Kanbot_Profile", "mallory"), status: 403, code: proxy.CodeUnknownProfile},

		{name: "foreign_credential/x-api-key", send: get("/api/v1/spaces", P, "alice", "X-API-Key", "kb_agent_own"), status: 403, code: proxy.CodeForeignCredential},
		{name: "foreign_credential/x_api_key look-alike", send: get("/api/v1/spaces", P, "alice", "X_API_Key", "kb_agent_own"), status: 403, code: proxy.CodeForeignCredential},
		{name: "foreign_credential/lower case", send: get("/api/v1/spaces", P, "alice", "x-api-key", "kb_agent_own"), status: 403, code: proxy.CodeForeignCredential},
		{name: "foreign_credential/authorization", send: get("/api/v1/spaces", P, "alice", "Authorization", "Bearer abc"), status: 403, code: proxy.CodeForeignCredential},
		{name: "foreign_credential/cookie", send: get("/api/v1/spaces", P, "alice", "Cookie", "session=abc"), status: 403, code: proxy.CodeForeignCredential},
		{name: "foreign_credential/proxy-authorization in base mode", send: get("/api/v1/spaces", P, "alice", "Proxy-Authorization", "Basic YTpi"), status: 403, code: proxy.CodeForeignCredential},
		{name: "foreign_credential/proxy_authorization look-alike", send: get("/api/v1/spaces", P, "alice", "Proxy_Authorization", "Basic YTpi"), status: 403, code: proxy.CodeForeignCredential},
		{name: "foreign_credential/inject header look-alike", cfg: func(c *testutil.SidecarConfig) { c.InjectHeader = "X-Kanbot-Token" },
			send: get("/api/v1/spaces", P, "alice", "x_kanbot_token", "abc"), status: 403, code: proxy.CodeForeignCredential},
		{name: "foreign_credential/userinfo in forward URL", send: raw("GET http://user:pw@UPSTREAM/api/v1/spaces HTTP/1.1\r\nHost: UPSTREAM\r\nX-Kanbot-Profile: alice\r\n\r\n"), status: 403, code: proxy.CodeForeignCredential},

		{name: "upstream_mismatch/other host", send: fwd("GET", "http://evil.invalid/api/v1/spaces", P, "alice"), status: 403, code: proxy.CodeUpstreamMismatch},
		{name: "upstream_mismatch/other port", send: fwd("GET", "http://127.0.0.1:1/api/v1/spaces", P, "alice"), status: 403, code: proxy.CodeUpstreamMismatch},
		{name: "upstream_mismatch/host suffix", send: raw("GET http://127.0.0.1.evil.invalid/api/v1/spaces HTTP/1.1\r\nHost: 127.0.0.1.evil.invalid\r\nX-Kanbot-Profile: alice\r\n\r\n"), status: 403, code: proxy.CodeUpstreamMismatch},
		{name: "upstream_mismatch/localhost alias", send: fwd("GET", "http://localhost:PORT/api/v1/spaces", P, "alice"), status: 403, code: proxy.CodeUpstreamMismatch},

		{name: "method_not_allowed/trace", send: do("TRACE", "/api/v1/spaces", P, "alice"), status: 403, code: proxy.CodeMethodNotAllowed},
		{name: "method_not_allowed/options", send: do(http.MethodOptions, "/api/v1/spaces", P, "alice"), status: 403, code: proxy.CodeMethodNotAllowed},
		{name: "method_not_allowed/profile GET only", cfg: func(c *testutil.SidecarConfig) { c.Profiles[0].AllowMethods = []string{"GET"} },
			send: do(http.MethodDelete, "/api/v1/spaces/1", P, "alice"), status: 403, code: proxy.CodeMethodNotAllowed},

		{name: "path_not_allowed/outside", send: get("/admin", P, "alice"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/other version", send: get("/api/v2/spaces", P, "alice"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/unanchored prefix", send: get("/healthz", P, "alice"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/dot-dot", send: raw("GET /api/v1/../../admin HTTP/1.1\r\nHost: HOST\r\nX-Kanbot-Profile: alice\r\n\r\n"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/encoded dot-dot", send: raw("GET /api/v1/%2e%2e/%2E%2E/admin HTTP/1.1\r\nHost: HOST\r\nX-Kanbot-Profile: alice\r\n\r\n"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/encoded slash", send: raw("GET /api/v1%2f..%2fadmin HTTP/1.1\r\nHost: HOST\r\nX-Kanbot-Profile: alice\r\n\r\n"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/backslash", send: raw("GET /api/v1/..%5c..%5cadmin HTTP/1.1\r\nHost: HOST\r\nX-Kanbot-Profile: alice\r\n\r\n"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/double encoding", send: raw("GET /api/v1/%252e%252e/admin HTTP/1.1\r\nHost: HOST\r\nX-Kanbot-Profile: alice\r\n\r\n"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/double slash", send: raw("GET //api/v1/spaces HTTP/1.1\r\nHost: HOST\r\nX-Kanbot-Profile: alice\r\n\r\n"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/nul", send: raw("GET /api/v1/spaces%00.json HTTP/1.1\r\nHost: HOST\r\nX-Kanbot-Profile: alice\r\n\r\n"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/forward mode dot-dot", send: raw("GET http://UPSTREAM/api/v1/../admin HTTP/1.1\r\nHost: UPSTREAM\r\nX-Kanbot-Profile: alice\r\n\r\n"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/mint a key", send: do("POST", "/api/v1/auth/api-keys", P, "alice"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/list keys", send: get("/api/v1/auth/api-keys", P, "alice"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/revoke a key", send: do(http.MethodDelete, "/api/v1/auth/api-keys/0b6c1f0e-1111-4222-8333-444455556666", P, "alice"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/auth root", send: get("/api/v1/auth", P, "alice"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/auth via encoded dot-dot", send: raw("GET /api/v1/spaces/%2e%2e/auth/api-keys HTTP/1.1\r\nHost: HOST\r\nX-Kanbot-Profile: alice\r\n\r\n"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "path_not_allowed/auth in forward mode", send: fwd("GET", "http://UPSTREAM/api/v1/auth/api-keys", P, "alice"), status: 403, code: proxy.CodePathNotAllowed},
		{name: "upstream_mismatch/https scheme in forward URL", send: raw("GET https://UPSTREAM/api/v1/spaces HTTP/1.1\r\nHost: UPSTREAM\r\nX-Kanbot-Profile: alice\r\n\r\n"), status: 403, code: proxy.CodeUpstreamMismatch},
		{name: "upstream_mismatch/ftp scheme in forward URL", send: raw("GET ftp://UPSTREAM/api/v1/spaces HTTP/1.1\r\nHost: UPSTREAM\r\nX-Kanbot-Profile: alice\r\n\r\n"), status: 403, code: proxy.CodeUpstreamMismatch},
		{name: "path_not_allowed/profile prefix", cfg: func(c *testutil.SidecarConfig) { c.Profiles[0].AllowPaths = []string{"/api/v1/spaces"} },
			send: get("/api/v1/spaces-admin", P, "alice"), status: 403, code: proxy.CodePathNotAllowed},

		{name: "audit_unavailable/request event", cfg: func(c *testutil.SidecarConfig) {
			c.WrapRecorder = func(r proxy.Recorder) proxy.Recorder { return failingRecorder{r, auditdb.KindRequest} }
		}, send: get("/api/v1/spaces", P, "alice"), status: 503, code: proxy.CodeAuditUnavailable},

		{name: "connect_not_supported/https", send: raw("CONNECT UPSTREAM HTTP/1.1\r\nHost: UPSTREAM\r\nX-Kanbot-Profile: alice\r\n\r\n"), status: 405, code: proxy.CodeConnectNotSupported},
		{name: "connect_not_supported/443", send: raw("CONNECT kanbot.example.com:443 HTTP/1.1\r\nHost: kanbot.example.com:443\r\n\r\n"), status: 405, code: proxy.CodeConnectNotSupported},

		{name: "ambiguous_framing/cl and te", send: raw("POST /api/v1/cards HTTP/1.1\r\nHost: HOST\r\nX-Kanbot-Profile: alice\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), status: 400, code: proxy.CodeAmbiguousFraming},
		{name: "ambiguous_framing/two equal cl", send: raw("POST /api/v1/cards HTTP/1.1\r\nHost: HOST\r\nX-Kanbot-Profile: alice\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"), status: 400, code: proxy.CodeAmbiguousFraming},
		{name: "ambiguous_framing/cl look-alike", send: raw("POST /api/v1/cards HTTP/1.1\r\nHost: HOST\r\nX-Kanbot-Profile: alice\r\nContent-Length: 2\r\nContent_Length: 40\r\n\r\n{}"), status: 400, code: proxy.CodeAmbiguousFraming},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := startUpstream(t)
			cfg := testutil.SidecarConfig{Upstream: up.URL, Profiles: []testutil.ProfileSpec{{Name: "alice"}, {Name: "bob"}}}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			sc := testutil.StartSidecar(t, cfg)
			send := tc.send
			if strings.Contains(tc.name, "localhost alias") {
				_, port, _ := net.SplitHostPort(strings.TrimPrefix(up.URL, "http://"))
				send = fwd("GET", "http://localhost:"+port+"/api/v1/spaces", P, "alice")
			}
			resp, body := send(t, sc, up)
			checkRefusal(t, sc, resp, body, tc.status, tc.code)
			if tc.code == proxy.CodeRateLimited && resp.Header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
			if tc.status == 407 && resp.Header.Get("Proxy-Authenticate") == "" {
				t.Error("407 without Proxy-Authenticate")
			}
			if n := up.count(); n != 0 {
				t.Errorf("upstream received %d requests, want 0: %+v", n, up.requests())
			}
			sc.AssertKeysAbsent(t)
		})
	}
}

// Go's own server answers some framing attacks before the pipeline runs
// (differing Content-Length values, bare LF in chunks): the upstream still
// receives nothing, and the agent gets a 400.
func TestFramingRefusedByServer(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: up.URL, Profiles: []testutil.ProfileSpec{{Name: "alice"}}})
	for _, raw := range []string{
		"POST /api/v1/cards HTTP/1.1\r\nHost: HOST\r\nX-Kanbot-Profile: alice\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
		"POST /api/v1/cards HTTP/1.1\r\nHost: HOST\r\nX-Kanbot-Profile: alice\r\nContent-Length: 2, 2\r\n\r\n{}",
		"POST /api/v1/cards HTTP/1.1\r\nHost: HOST\r\nX-Kanbot-Profile: alice\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	} {
		resp, body := rawExchange(t, sc, strings.ReplaceAll(raw, "HOST", sc.Addr))
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotImplemented {
			t.Errorf("%q: status %d (%s), want 400", raw, resp.StatusCode, body)
		}
	}
	if n := up.count(); n != 0 {
		t.Errorf("upstream received %d requests, want 0", n)
	}
	sc.AssertKeysAbsent(t)
}

// A chunk line ending in a bare LF (Go CVE-2025-22871) is only detected
// while the body streams upstream: the agent gets ambiguous_framing and the
// upstream never receives a complete body.
func TestBareLFChunkRefused(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: up.URL, Profiles: []testutil.ProfileSpec{{Name: "alice"}}})
	for _, body := range []string{"2\n{}\n0\n\n", "2\r\n{}\n0\r\n\r\n", "2;ext\n{}\r\n0\r\n\r\n"} {
		raw := "POST /api/v1/cards HTTP/1.1\r\nHost: " + sc.Addr + "\r\nX-Kanbot-Profile: alice\r\nTransfer-Encoding: chunked\r\n\r\n" + body
		resp, rb := rawExchange(t, sc, raw)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get(proxy.HeaderError) != proxy.CodeAmbiguousFraming {
			t.Errorf("%q: %d %s, want 400 ambiguous_framing", body, resp.StatusCode, rb)
		}
	}
	for _, r := range up.requests() {
		if !r.BodyErr {
			t.Errorf("upstream received a complete request: %+v", r)
		}
	}
	sc.AssertKeysAbsent(t)
}

func TestRateLimited(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now } // frozen: no refill during the test
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: up.URL, Now: clock,
		Profiles: []testutil.ProfileSpec{{Name: "alice", Rate: 0.5, Burst: 2}, {Name: "bob"}}})
	for i := range 2 {
		if resp, body := sc.Get(t, "alice", "/api/v1/spaces"); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := sc.Get(t, "alice", "/api/v1/spaces")
	checkRefusal(t, sc, resp, body, http.StatusTooManyRequests, proxy.CodeRateLimited)
	if got := resp.Header.Get("Retry-After"); got != "2" { // one token at 0.5/s
		t.Errorf("Retry-After = %q, want 2", got)
	}
	if n := up.count(); n != 2 {
		t.Errorf("upstream received %d requests, want 2", n)
	}
	// Buckets are per profile: bob is unaffected.
	if resp, _ := sc.Get(t, "bob", "/api/v1/spaces"); resp.StatusCode != 200 {
		t.Errorf("bob: %d, want 200", resp.StatusCode)
	}
	if !strings.Contains(sc.MetricsText(t), `kanbot_sidecar_rate_limited_total{profile="alice"} 1`) {
		t.Error("metrics: no rate-limit hit for alice")
	}
	sc.AssertKeysAbsent(t)
}

// Under concurrency the bucket is never overdrawn (LiteLLM-style races).
func TestRateLimitConcurrent(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: up.URL, Now: func() time.Time { return now },
		Profiles: []testutil.ProfileSpec{{Name: "alice", Rate: 1, Burst: 10}}})
	const n = 40
	codes := make(chan int, n)
	for range n {
		go func() {
			req := newRequest(t, sc, "GET", "/api/v1/spaces", nil)
			req.Header.Set(P, "alice")
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				codes <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	got := map[int]int{}
	for range n {
		got[<-codes]++
	}
	if got[200] != 10 || got[429] != n-10 {
		t.Errorf("statuses = %v, want 10×200 and %d×429", got, n-10)
	}
	if c := up.count(); c != 10 {
		t.Errorf("upstream received %d, want 10", c)
	}
}

func TestUpstreamErrors(t *testing.T) {
	t.Parallel()
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + l.Addr().String()
		l.Close() // nothing listens there any more
		sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: dead, Profiles: []testutil.ProfileSpec{{Name: "alice"}}})
		resp, body := sc.Get(t, "alice", "/api/v1/spaces")
		checkUpstreamError(t, sc, resp, body, http.StatusBadGateway, proxy.CodeUpstreamUnreachable)
		if strings.Contains(string(body), "refused") || strings.Contains(string(body), l.Addr().String()) {
			t.Errorf("refusal leaks the transport error: %s", body)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		up := startUpstream(t)
		sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: up.URL, UpstreamTimeout: 200 * time.Millisecond,
			Profiles: []testutil.ProfileSpec{{Name: "alice"}}})
		resp, body := sc.Get(t, "alice", "/api/v1/slow")
		checkUpstreamError(t, sc, resp, body, http.StatusGatewayTimeout, proxy.CodeUpstreamTimeout)
	})
}

// checkUpstreamError: the refusal shape, plus request and response events
// (the request was admitted and forwarded) with outcome upstream_error.
func checkUpstreamError(t *testing.T, sc *testutil.Sidecar, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get(proxy.HeaderError) != code {
		t.Fatalf("got %d %q (%s), want %d %s", resp.StatusCode, resp.Header.Get(proxy.HeaderError), body, status, code)
	}
	var rb refusalBody
	if err := jsonUnmarshal(body, &rb); err != nil || rb.Error.Code != code {
		t.Errorf("body %s: %v", body, err)
	}
	id := resp.Header.Get(proxy.HeaderRequestID)
	evs := sc.WaitEvents(t, id, "request", "response")
	last := evs[len(evs)-1]
	if last.Kind != "response" || last.Outcome != "upstream_error" || last.Code != code || last.Status != status {
		t.Errorf("response event = %+v, want upstream_error %s %d", last, code, status)
	}
	sc.AssertKeysAbsent(t)
}

var _ = strconv.Itoa

// A real fault behind audit_unavailable: the audit DB is deleted while the
// sidecar runs. Nothing may be forwarded once the trail cannot be written.
func TestAuditDatabaseRemovedRefusesForwarding(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: up.URL, Profiles: []testutil.ProfileSpec{{Name: "alice"}}})
	if resp, body := sc.Get(t, "alice", "/api/v1/spaces"); resp.StatusCode != 200 {
		t.Fatalf("before removal: %d %s", resp.StatusCode, body)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(sc.AuditPath + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		resp, body := sc.Get(t, "alice", "/api/v1/spaces")
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(proxy.HeaderError) != proxy.CodeAuditUnavailable {
			t.Errorf("request %d after removal: %d %q %s, want 503 audit_unavailable", i, resp.StatusCode, resp.Header.Get(proxy.HeaderError), body)
		}
	}
	if n := len(up.requests()); n != 1 {
		t.Errorf("upstream saw %d requests, want only the one made before the removal", n)
	}
	if _, err := os.Stat(sc.AuditPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("audit DB reappeared at %s (err %v); it must not be silently recreated", sc.AuditPath, err)
	}
	sc.AssertKeysAbsent(t)
}
