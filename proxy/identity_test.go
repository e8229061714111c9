package proxy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
	"github.com/kanbot/kanbot-sidecar/proxy"
)

// people creates users on a real backend and returns sidecar profiles
// holding their real keys.
func people(t *testing.T, b *testutil.Backend, names ...string) []testutil.ProfileSpec {
	t.Helper()
	var specs []testutil.ProfileSpec
	for _, n := range names {
		email := n + "@example.com"
		_, key := b.CreateUser(t, email, n)
		specs = append(specs, testutil.ProfileSpec{Name: n, Email: email, Key: key, Rate: 10000, Burst: 10000})
	}
	return specs
}

func meEmail(t testing.TB, body []byte) string {
	t.Helper()
	var me struct {
		Email string `json:"email"`
	}
	if err := json.Unmarshal(body, &me); err != nil {
		t.Fatalf("users/me body %q: %v", body, err)
	}
	return me.Email
}

func TestIdentityThroughRealBackend(t *testing.T) {
	t.Parallel()
	b := testutil.StartBackend(t)
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: b.URL, Profiles: people(t, b, "alice", "bob")})
	for _, name := range []string{"alice", "bob"} {
		resp, body := sc.Get(t, name, "/api/v1/users/me")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: users/me = %d %s", name, resp.StatusCode, body)
		}
		if got, want := meEmail(t, body), name+"@example.com"; got != want {
			t.Errorf("%s: users/me email = %q, want %q", name, got, want)
		}
		id := resp.Header.Get(proxy.HeaderRequestID)
		evs := sc.WaitEvents(t, id, "request", "response")
		if len(evs) != 2 || evs[0].Kind != "request" || evs[1].Outcome != "forwarded" || evs[1].Status != 200 || evs[0].Profile != name {
			t.Errorf("%s: audit events %+v, want request then forwarded response", name, evs)
		}
		if evs[1].BytesOut != int64(len(body)) {
			t.Errorf("%s: bytes_out = %d, want %d", name, evs[1].BytesOut, len(body))
		}
	}
	sc.AssertKeysAbsent(t)
}

// 300 concurrent requests over three profiles: each answer is its own
// profile's, never another's (run with -race).
func TestIdentityConcurrentNoCrossContamination(t *testing.T) {
	t.Parallel()
	b := testutil.StartBackend(t)
	names := []string{"alice", "bob", "carol"}
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: b.URL, Profiles: people(t, b, names...)})
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	ids := make(chan [2]string, n)
	sem := make(chan struct{}, 64)
	for i := range n {
		name := names[i%len(names)]
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			req := newRequest(t, sc, "GET", "/api/v1/users/me", nil)
			req.Header.Set(proxy.HeaderProfile, name)
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				errs <- fmt.Errorf("%s: %d %s %v", name, resp.StatusCode, body, err)
				return
			}
			var me struct{ Email string }
			if err := json.Unmarshal(body, &me); err != nil {
				errs <- err
				return
			}
			if me.Email != name+"@example.com" {
				errs <- fmt.Errorf("profile %s got %s's identity", name, me.Email)
			}
			sc.Remember(body)
			ids <- [2]string{resp.Header.Get(proxy.HeaderRequestID), name}
		})
	}
	wg.Wait()
	close(errs)
	close(ids)
	for err := range errs {
		t.Error(err)
	}
	// Every call is audited under the right profile.
	want := map[string]string{}
	for p := range ids {
		want[p[0]] = p[1]
	}
	if len(want) != n {
		t.Fatalf("%d distinct request ids, want %d", len(want), n)
	}
	sc.Stop(testutilStopTimeout) // flushes response events
	got := map[string]int{}
	for _, e := range testutil.ReadEvents(t, sc.AuditPath) {
		if e.Kind == "admin" {
			continue
		}
		if w, ok := want[e.RequestID]; !ok || w != e.Profile {
			t.Errorf("audit row %+v: want profile %q", e, w)
		}
		got[e.Kind]++
	}
	if got["request"] != n || got["response"] != n {
		t.Errorf("audit rows = %v, want %d request and %d response", got, n, n)
	}
	sc.AssertKeysAbsent(t)
}

// What the upstream sees: exactly one key header with the profile's key,
// none of the sidecar's or hop-by-hop headers, whatever the agent sends.
func TestUpstreamSeesExactlyOneKey(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: up.URL, Profiles: []testutil.ProfileSpec{{Name: "alice"}}})
	key := testutil.DefaultKey("alice")
	cases := []struct {
		name    string
		headers [][2]string
	}{
		{"plain", nil},
		{"connection names x-api-key", [][2]string{{"Connection", "X-API-Key"}}},
		{"connection names several", [][2]string{{"Connection", "keep-alive, X-Api-Key, x_api_key, X-Request-Id, X-Custom"}, {"X-Custom", "dropped"}}},
		{"hop-by-hop", [][2]string{{"Keep-Alive", "timeout=5"}, {"Te", "trailers"}, {"Trailer", "X-T"}, {"Upgrade", "websocket"}, {"Proxy-Connection", "keep-alive"}}},
		{"profile look-alike", [][2]string{{"x-kanbot_profile", "alice"}}},
		{"request id kept", [][2]string{{"X-Request-Id", "agent-req-123"}}},
		{"request id insane", [][2]string{{"X-Request-Id", "has space and \"quotes\""}}},
	}
	for _, tc := range cases {
		before := up.count()
		req := newRequest(t, sc, "GET", "/api/v1/spaces?x=1", nil)
		profileSet := false
		for _, h := range tc.headers {
			req.Header[h[0]] = append(req.Header[h[0]], h[1])
			profileSet = profileSet || strings.EqualFold(strings.ReplaceAll(h[0], "_", "-"), proxy.HeaderProfile)
		}
		if !profileSet {
			req.Header.Set(proxy.HeaderProfile, "alice")
		}
		resp, body := sc.Do(t, nil, req)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", tc.name, resp.StatusCode, body)
		}
		reqs := up.requests()
		if len(reqs) != before+1 {
			t.Fatalf("%s: upstream got %d requests, want 1", tc.name, len(reqs)-before)
		}
		got := reqs[len(reqs)-1]
		var keyHeaders []string
		for k, vs := range got.Header {
			lk := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
			switch lk {
			case "x-api-key":
				keyHeaders = append(keyHeaders, vs...)
			case "x-kanbot-profile", "x-kanbot-client-token", "connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection", "x-custom", "authorization", "cookie", "proxy-authorization":
				t.Errorf("%s: upstream received %s", tc.name, k)
			}
		}
		if len(keyHeaders) != 1 || keyHeaders[0] != key {
			t.Errorf("%s: upstream key headers = %d (right value: %v), want exactly one with alice's key",
				tc.name, len(keyHeaders), len(keyHeaders) == 1 && keyHeaders[0] == key)
		}
		if got.URI != "/api/v1/spaces?x=1" {
			t.Errorf("%s: upstream URI = %q", tc.name, got.URI)
		}
		id := resp.Header.Get(proxy.HeaderRequestID)
		if got.Header.Get("X-Request-Id") != id || len(got.Header["X-Request-Id"]) != 1 {
			t.Errorf("%s: upstream X-Request-Id = %v, agent got %q", tc.name, got.Header["X-Request-Id"], id)
		}
		switch tc.name {
		case "request id kept":
			if id != "agent-req-123" {
				t.Errorf("sane agent request id replaced by %q", id)
			}
		case "request id insane":
			if len(id) != 26 {
				t.Errorf("insane request id not replaced: %q", id)
			}
		}
	}
	sc.AssertKeysAbsent(t)
}
