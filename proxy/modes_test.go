package proxy_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
	"github.com/kanbot/kanbot-sidecar/proxy"
)

// tool returns the path of a program the tests drive; a missing one is a
// broken test machine, not a reason to skip.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required by this test and is not installed (apt-get install %s): %v", name, name, err)
	}
	return p
}

// run runs a command with no proxy settings from the environment.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool(t, name), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "NO_PROXY=", "no_proxy="}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func TestModesWithRealClients(t *testing.T) {
	t.Parallel()
	b := testutil.StartBackend(t)
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: b.URL, Profiles: people(t, b, "alice", "bob")})

	t.Run("base-URL curl", func(t *testing.T) {
		out := run(t, "curl", "-sS", "--noproxy", "*", "-H", "X-Kanbot-Profile: alice", sc.URL+"/api/v1/users/me")
		sc.Remember([]byte(out))
		if got := meEmail(t, []byte(out)); got != "alice@example.com" {
			t.Errorf("curl base-URL: email %q", got)
		}
	})
	t.Run("forward curl -x", func(t *testing.T) {
		out := run(t, "curl", "-sS", "-x", sc.URL, "-H", "X-Kanbot-Profile: bob", b.URL+"/api/v1/users/me")
		sc.Remember([]byte(out))
		if got := meEmail(t, []byte(out)); got != "bob@example.com" {
			t.Errorf("curl -x: email %q", got)
		}
	})
	t.Run("forward curl -x refusal", func(t *testing.T) {
		out := run(t, "curl", "-sS", "-x", sc.URL, "-o", "/dev/null", "-w", "%{http_code} %header{x-kanbot-sidecar-error}", b.URL+"/api/v1/users/me")
		if out != "400 missing_profile" {
			t.Errorf("curl -x untagged: %q, want 400 missing_profile", out)
		}
	})
	t.Run("base-URL python urllib", func(t *testing.T) {
		script := `import sys, urllib.request, json
req = urllib.request.Request(sys.argv[1] + "/api/v1/users/me", headers={"X-Kanbot-Profile": "bob"})
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
print(json.load(opener.open(req))["email"])`
		out := strings.TrimSpace(run(t, "python3", "-c", script, sc.URL))
		if out != "bob@example.com" {
			t.Errorf("python urllib: %q", out)
		}
	})
	t.Run("forward python urllib", func(t *testing.T) {
		script := `import sys, urllib.request, json
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": sys.argv[1]}))
req = urllib.request.Request(sys.argv[2] + "/api/v1/users/me", headers={"X-Kanbot-Profile": "alice"})
print(json.load(opener.open(req))["email"])`
		out := strings.TrimSpace(run(t, "python3", "-c", script, sc.URL, b.URL))
		if out != "alice@example.com" {
			t.Errorf("python urllib via proxy: %q", out)
		}
	})
	t.Run("forward Go Transport.Proxy", func(t *testing.T) {
		req, err := http.NewRequestWithContext(context.Background(), "GET", b.URL+"/api/v1/users/me", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(proxy.HeaderProfile, "alice")
		resp, body := sc.Do(t, forwardClient(sc), req)
		if resp.StatusCode != 200 || meEmail(t, body) != "alice@example.com" {
			t.Errorf("Go proxy client: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("forward Go https target is refused (CONNECT)", func(t *testing.T) {
		req, err := http.NewRequestWithContext(context.Background(), "GET", "https://kanbot.example.com/api/v1/users/me", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = forwardClient(sc).Do(req)
		if err == nil || !strings.Contains(err.Error(), "Method Not Allowed") {
			t.Errorf("https through the proxy: err = %v, want the 405 CONNECT refusal", err)
		}
	})
	sc.AssertKeysAbsent(t)
}

// The unix: listener is created 0600 and serves the same pipeline.
func TestUnixSocketListener(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	home := testutil.NewHome(t, testutil.ProfileSpec{Name: "alice"})
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: up.URL, Home: home, Profiles: []testutil.ProfileSpec{{Name: "alice"}}})
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := proxy.Listen("unix:"+sock, false)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want 0600", fi.Mode().Perm())
	}
	srv := sc.Proxy.Server()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	out := run(t, "curl", "-sS", "--unix-socket", sock, "-H", "X-Kanbot-Profile: alice", "http://localhost/api/v1/spaces")
	if !strings.Contains(out, `"path":"/api/v1/spaces"`) {
		t.Errorf("curl over unix socket: %s", out)
	}
	// A second Listen on a live socket is refused; a stale one is replaced.
	if _, err := proxy.Listen("unix:"+sock, false); err == nil {
		t.Error("Listen on a live socket succeeded")
	}
	sc.AssertKeysAbsent(t)
}

func TestListenRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:0"} {
		if l, err := proxy.Listen(addr, false); err == nil {
			l.Close()
			t.Errorf("Listen(%q, false) succeeded, want refusal", addr)
		} else if !strings.Contains(err.Error(), "allow_non_loopback") {
			t.Errorf("Listen(%q) error %q does not say how to allow it", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		l, err := proxy.Listen(addr, false)
		if err != nil {
			if addr == "[::1]:0" && strings.Contains(err.Error(), "assign") { // no IPv6 on this machine
				continue
			}
			t.Errorf("Listen(%q) = %v", addr, err)
			continue
		}
		l.Close()
	}
	l, err := proxy.Listen("0.0.0.0:0", true)
	if err != nil {
		t.Fatalf("Listen(0.0.0.0:0, allow) = %v", err)
	}
	l.Close()
}

func TestStreamingRedirectsAndEcho(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: up.URL, Profiles: []testutil.ProfileSpec{{Name: "alice"}}})
	key := testutil.DefaultKey("alice")

	t.Run("SSE events arrive one by one", func(t *testing.T) {
		req := newRequest(t, sc, "GET", "/api/v1/sse", nil)
		req.Header.Set(proxy.HeaderProfile, "alice")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("Content-Type = %q", ct)
		}
		br := bufio.NewReader(resp.Body)
		for i := range 3 {
			// The upstream sends event i only now; the agent must get it
			// before event i+1 exists.
			select {
			case up.sseStep <- struct{}{}:
			case <-time.After(5 * time.Second):
				t.Fatal("upstream did not ask for the next event")
			}
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			if want := "data: event " + string(rune('0'+i)) + "\n"; line != want {
				t.Errorf("event %d: %q, want %q", i, line, want)
			}
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
		}
		if rest, _ := io.ReadAll(br); len(rest) != 0 {
			t.Errorf("trailing data %q", rest)
		}
	})

	t.Run("redirect to another host is returned, not followed", func(t *testing.T) {
		before := up.count()
		resp, body := sc.Get(t, "alice", "/api/v1/redirect-away")
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://elsewhere.invalid/steal?x=1" {
			t.Errorf("redirect: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if up.count() != before+1 {
			t.Errorf("upstream saw %d requests, want 1 (the redirect is not followed)", up.count()-before)
		}
		if strings.Contains(string(body), key) || strings.Contains(resp.Header.Get("Location"), key) {
			t.Error("redirect carries the key")
		}
	})

	t.Run("redirect to the upstream is rewritten to the sidecar", func(t *testing.T) {
		resp, _ := sc.Get(t, "alice", "/api/v1/redirect-home")
		want := sc.URL + "/api/v1/landing?a=b"
		if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != want {
			t.Errorf("Location = %q (%d), want %q", got, resp.StatusCode, want)
		}
	})

	t.Run("forward mode leaves the upstream Location alone", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", up.URL+"/api/v1/redirect-home", nil)
		req.Header.Set(proxy.HeaderProfile, "alice")
		resp, _ := sc.Do(t, forwardClient(sc), req)
		if got := resp.Header.Get("Location"); !strings.HasPrefix(got, up.URL+"/api/v1/landing") {
			t.Errorf("forward Location = %q", got)
		}
	})

	t.Run("response header echoing the key is removed", func(t *testing.T) {
		resp, _ := sc.Get(t, "alice", "/api/v1/echo-key")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		for k, vs := range resp.Header {
			for _, v := range vs {
				if strings.Contains(v, key) {
					t.Errorf("response header %s carries the key", k)
				}
			}
		}
		if resp.Header.Get("X-Echo") != "" {
			t.Error("X-Echo not removed")
		}
		for _, h := range []string{"X-Echo-Lower", "X-Echo-Upper"} {
			if resp.Header.Get(h) != "" {
				t.Errorf("%s (the key in another letter case) not removed", h)
			}
		}
		if got := resp.Header.Values("X-Debug"); len(got) != 1 || got[0] != "harmless" {
			t.Errorf("X-Debug = %q, want only the harmless value", got)
		}
		if resp.Header.Get(proxy.HeaderError) != "" {
			t.Error("upstream forged X-Kanbot-Sidecar-Error passed through")
		}
	})

	t.Run("large upload streams without buffering", func(t *testing.T) {
		pr, pw := io.Pipe()
		const chunk = 1 << 20
		go func() {
			buf := make([]byte, chunk)
			_, _ = pw.Write(buf)
			// The second MiB is written only once the upstream has the
			// first: a buffering proxy would deadlock here.
			deadline := time.Now().Add(10 * time.Second)
			for up.uploaded.Load() < chunk/2 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			_, _ = pw.Write(buf)
			_ = pw.Close()
		}()
		req := newRequest(t, sc, "POST", "/api/v1/upload", pr)
		req.Header.Set(proxy.HeaderProfile, "alice")
		resp, body := sc.Do(t, nil, req)
		if resp.StatusCode != 200 || string(body) != `{"bytes":2097152}` {
			t.Fatalf("upload: %d %s", resp.StatusCode, body)
		}
		evs := sc.WaitEvents(t, resp.Header.Get(proxy.HeaderRequestID), "request", "response")
		if last := evs[len(evs)-1]; last.BytesIn != 2*chunk {
			t.Errorf("bytes_in = %d, want %d", last.BytesIn, 2*chunk)
		}
	})
	sc.AssertKeysAbsent(t)
}

// An agent that hangs up mid-response is recorded as client_aborted.
func TestClientAbortIsAudited(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: up.URL, Profiles: []testutil.ProfileSpec{{Name: "alice"}}})
	c := openCall(t, sc, "/api/v1/sse", "abort-1")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp
	c.Close() // hang up while the stream is open
	evs := sc.WaitEvents(t, "abort-1", "request", "response")
	if last := evs[len(evs)-1]; last.Outcome != "client_aborted" {
		t.Errorf("response event outcome = %q, want client_aborted", last.Outcome)
	}
	sc.AssertKeysAbsent(t)
}

// An agent that hangs up before the upstream answers is client_aborted too,
// and the row carries no status or error code: the agent was told nothing
// (not the 502 upstream_unreachable it would otherwise look like).
func TestClientAbortBeforeResponseIsAudited(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: up.URL, Profiles: []testutil.ProfileSpec{{Name: "alice"}}})
	c := openCall(t, sc, "/api/v1/slow", "abort-early")
	// Hang up once the request event is committed, i.e. once the request
	// is on its way upstream.
	sc.WaitEvents(t, "abort-early", "request")
	c.Close()
	evs := sc.WaitEvents(t, "abort-early", "request", "response")
	last := evs[len(evs)-1]
	if last.Outcome != "client_aborted" || last.Status != 0 || last.Code != "" {
		t.Errorf("response event = outcome %q status %d code %q, want client_aborted, 0 (NULL), \"\"", last.Outcome, last.Status, last.Code)
	}
	sc.AssertKeysAbsent(t)
}

// An agent that reuses its X-Request-Id while the first call is still open
// gets a fresh id for the second call, so the calls view cannot pair one
// call's request with the other's response. Once the first call is over,
// the id may be used again.
func TestReusedRequestIDInFlightGetsFreshID(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: up.URL, Profiles: []testutil.ProfileSpec{{Name: "alice"}}})
	c := openCall(t, sc, "/api/v1/slow", "dup-1")
	sc.WaitEvents(t, "dup-1", "request")

	req := newRequest(t, sc, "GET", "/api/v1/spaces", nil)
	req.Header.Set(proxy.HeaderProfile, "alice")
	req.Header.Set(proxy.HeaderRequestID, "dup-1")
	resp, body := sc.Do(t, nil, req)
	second := resp.Header.Get(proxy.HeaderRequestID)
	if resp.StatusCode != 200 || second == "dup-1" || second == "" {
		t.Fatalf("second call with dup-1 in flight: %d, X-Request-Id %q (%s); want 200 and a fresh id", resp.StatusCode, second, body)
	}
	if got := up.requests(); got[len(got)-1].Header.Get(proxy.HeaderRequestID) != second {
		t.Errorf("upstream saw X-Request-Id %q, want %q", got[len(got)-1].Header.Get(proxy.HeaderRequestID), second)
	}
	sc.WaitEvents(t, second, "request", "response")

	c.Close() // end the first call
	first := sc.WaitEvents(t, "dup-1", "request", "response")
	if last := first[len(first)-1]; last.Outcome != "client_aborted" {
		t.Errorf("first call's response outcome = %q, want client_aborted", last.Outcome)
	}
	// Sequential reuse is fine: the calls view pairs each request with the
	// first later response.
	req = newRequest(t, sc, "GET", "/api/v1/spaces", nil)
	req.Header.Set(proxy.HeaderProfile, "alice")
	req.Header.Set(proxy.HeaderRequestID, "dup-1")
	if resp, _ := sc.Do(t, nil, req); resp.Header.Get(proxy.HeaderRequestID) != "dup-1" {
		t.Errorf("reuse after the first call ended: X-Request-Id %q, want dup-1", resp.Header.Get(proxy.HeaderRequestID))
	}
	sc.AssertKeysAbsent(t)
}

// openCall sends GET path as alice with the given request id over a raw
// connection and returns it unread, so a test can hang up at will.
func openCall(t *testing.T, sc *testutil.Sidecar, path, requestID string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", sc.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_, _ = io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: "+sc.Addr+"\r\nX-Kanbot-Profile: alice\r\nX-Request-Id: "+requestID+"\r\n\r\n")
	return c
}

var _ = url.Parse
