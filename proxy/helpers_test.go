package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
	"github.com/kanbot/kanbot-sidecar/proxy"
)

// seen is one request as the recording upstream received it.
type seen struct {
	Method string
	URI    string
	Host   string
	Header http.Header
	Body   []byte
	// BodyErr: reading the body failed (the request never arrived whole).
	BodyErr bool
}

// upstream is a recording upstream: it keeps every request it receives
// and answers a few special paths used by the tests.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
	// sseStep releases the next SSE event (one value per event).
	sseStep chan struct{}
	// uploaded counts body bytes read so far on /api/v1/upload.
	uploaded atomic.Int64
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{sseStep: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/v1/upload" {
		// Reads as the bytes arrive, so a test can see streaming.
		buf := make([]byte, 64<<10)
		var n int64
		for {
			m, err := r.Body.Read(buf)
			n += int64(m)
			u.uploaded.Add(int64(m))
			if err != nil {
				break
			}
		}
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header.Clone()})
		u.mu.Unlock()
		fmt.Fprintf(w, `{"bytes":%d}`, n)
		return
	}
	body, err := io.ReadAll(r.Body)
	u.mu.Lock()
	u.reqs = append(u.reqs, seen{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), Body: body, BodyErr: err != nil})
	u.mu.Unlock()
	switch r.URL.Path {
	case "/api/v1/echo-key":
		// A careless upstream that reflects the key in response headers.
		k := r.Header.Get("X-API-Key")
		w.Header().Set("X-Echo", k)
		w.Header().Add("X-Debug", "seen key="+k)
		w.Header().Add("X-Debug", "harmless")
		w.Header().Set("X-Echo-Lower", "token="+strings.ToLower(k))
		w.Header().Set("X-Echo-Upper", strings.ToUpper(k)+";x")
		w.Header().Set("X-Kanbot-Sidecar-Error", "forged")
	case "/api/v1/redirect-away":
		http.Redirect(w, r, "http://elsewhere.invalid/steal?x=1", http.StatusFound)
		return
	case "/api/v1/redirect-home":
		http.Redirect(w, r, "http://"+r.Host+"/api/v1/landing?a=b", http.StatusSeeOther)
		return
	case "/api/v1/sse":
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for i := range 3 {
			select {
			case <-u.sseStep:
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Second):
				return
			}
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
		}
		return
	case "/api/v1/slow":
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "bytes": len(body)})
}

func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// newRequest builds a request to the sidecar in base-URL mode.
func newRequest(t testing.TB, sc *testutil.Sidecar, method, path string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, sc.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// refusalBody is the JSON body of a refusal.
type refusalBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// checkRefusal asserts a refusal's status, header, body and reject row.
func checkRefusal(t *testing.T, sc *testutil.Sidecar, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if got := resp.Header.Get(proxy.HeaderError); got != code {
		t.Errorf("%s = %q, want %q", proxy.HeaderError, got, code)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	id := resp.Header.Get(proxy.HeaderRequestID)
	if id == "" {
		t.Fatalf("no %s on refusal", proxy.HeaderRequestID)
	}
	var rb refusalBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rb); err != nil {
		t.Fatalf("refusal body %q: %v", body, err)
	}
	if rb.Error.Code != code || rb.Error.RequestID != id || rb.Error.Message == "" {
		t.Errorf("refusal body = %+v, want code %q and request_id %q", rb.Error, code, id)
	}
	evs := sc.EventsFor(t, id)
	if len(evs) != 1 || evs[0].Kind != "reject" || evs[0].Code != code || evs[0].Status != status || evs[0].Outcome != "rejected" {
		t.Errorf("audit events for %s = %+v, want one reject row with code %s, status %d", id, evs, code, status)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

const testutilStopTimeout = 10 * time.Second

func testingProcs() int { return runtime.GOMAXPROCS(0) }
