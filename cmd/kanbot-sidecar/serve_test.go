package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
)

// serve, run in-process as a user would: it serves both modes and the
// admin endpoints, refuses untagged calls, and on cancellation (SIGTERM in
// main) stops cleanly with start/stop admin events in the audit DB.
func TestServeLifecycle(t *testing.T) {
	t.Parallel()
	b := testutil.StartBackend(t)
	_, key := b.CreateUser(t, "alice@example.com", "alice")
	home := testutil.NewHome(t, testutil.ProfileSpec{Name: "alice", Email: "alice@example.com", Key: key})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &testutil.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--home", home, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
			"--upstream", b.URL, "--log-format", "json"}, strings.NewReader(""), io.Discard, stderr)
	}()
	var listen, admin string
	deadline := time.Now().Add(10 * time.Second)
	for listen == "" {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["message"] == "kanbot-sidecar serving" {
				listen, _ = m["listen"].(string)
				admin, _ = m["admin_listen"].(string)
			}
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	get := func(url, profile string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		if profile != "" {
			req.Header.Set("X-Kanbot-Profile", profile)
		}
		resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("http://"+listen+"/api/v1/users/me", "alice"); code != 200 || !strings.Contains(body, "alice@example.com") {
		t.Errorf("users/me as alice: %d %s", code, body)
	}
	if code, body := get("http://"+listen+"/api/v1/users/me", ""); code != 400 || !strings.Contains(body, "missing_profile") {
		t.Errorf("untagged: %d %s", code, body)
	}
	if code, _ := get("http://"+admin+"/healthz", ""); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := get("http://"+admin+"/readyz", ""); code != 200 || !strings.Contains(body, `"profiles":1`) {
		t.Errorf("/readyz: %d %s", code, body)
	}
	code, metrics := get("http://"+admin+"/metrics", "")
	for _, m := range []string{"kanbot_sidecar_requests_total", "kanbot_sidecar_refusals_total", "kanbot_sidecar_upstream_latency_seconds", "kanbot_sidecar_audit_queue_depth", "kanbot_sidecar_audit_commit_seconds"} {
		if code != 200 || !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exit %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	var start, stop bool
	for _, e := range testutil.ReadEvents(t, home+"/audit.db") {
		start = start || (e.Kind == "admin" && e.Code == "start")
		stop = stop || (e.Kind == "admin" && e.Code == "stop")
	}
	if !start || !stop {
		t.Errorf("audit start=%v stop=%v, want both", start, stop)
	}
	for _, s := range []string{stderr.String(), metrics} {
		if strings.Contains(s, key) {
			t.Error("canary: the key appears in serve's log or metrics")
		}
	}
}

// serve refuses a non-loopback listen address unless allowed.
func TestServeRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	home := testutil.NewHome(t, testutil.ProfileSpec{Name: "alice"})
	var stderr strings.Builder
	code := run(context.Background(), []string{"serve", "--home", home, "--listen", "0.0.0.0:0", "--admin-listen", ""}, strings.NewReader(""), io.Discard, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "allow_non_loopback") {
		t.Errorf("serve --listen 0.0.0.0:0 = %d, %q", code, stderr.String())
	}
}

// The admin listener refuses what the proxy refuses in steps 1-2: a Host
// that is not loopback (DNS rebinding) and anything a browser sends.
func TestGuardAdmin(t *testing.T) {
	t.Parallel()
	h := guardAdmin(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "metrics") }), []string{"sidecar.internal"})
	for _, c := range []struct {
		name, host string
		header     [2]string
		want       int
	}{
		{"loopback ip", "127.0.0.1:8788", [2]string{}, 200},
		{"localhost", "localhost:8788", [2]string{}, 200},
		{"localhost with root dot", "localhost.:8788", [2]string{}, 200},
		{"ipv6 loopback", "[::1]:8788", [2]string{}, 200},
		{"allowed host", "sidecar.internal:8788", [2]string{}, 200},
		{"rebinding name", "evil.example:8788", [2]string{}, 403},
		{"suffix trick", "127.0.0.1.evil.example", [2]string{}, 403},
		{"origin", "127.0.0.1:8788", [2]string{"Origin", "http://evil.example"}, 403},
		{"fetch metadata", "127.0.0.1:8788", [2]string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"fetch metadata look-alike", "127.0.0.1:8788", [2]string{"Sec_Fetch_Dest", "document"}, 403},
		{"bracketed ipv6 without port", "[::1]", [2]string{}, 200},
	} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Host = c.host
		if c.header[0] != "" {
			req.Header.Set(c.header[0], c.header[1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: GET /metrics with Host %q = %d, want %d", c.name, c.host, rec.Code, c.want)
		}
		if c.want == 403 && strings.Contains(rec.Body.String(), "metrics") {
			t.Errorf("%s: refused request still got the metrics", c.name)
		}
	}
}

// net/http's own log lines may quote bytes from a peer (a response body):
// they are cut at the first quote before they reach the log.
func TestHTTPErrorLogDropsQuotedBytes(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	w := httpErrorLog{zerolog.New(&buf)}
	fmt.Fprintf(w, "Unsolicited response received on idle HTTP channel starting with %q; err=<nil>\n", `{"secret":"kb_body_bytes"}`)
	if strings.Contains(buf.String(), "kb_body_bytes") || !strings.Contains(buf.String(), "Unsolicited response") {
		t.Errorf("log line = %s", buf.String())
	}
}
