package testutil

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // the audit DB, read back by Events
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/kanbot/kanbot-sidecar/auditdb"
	"github.com/kanbot/kanbot-sidecar/profiles"
	"github.com/kanbot/kanbot-sidecar/proxy"
)

// SidecarConfig configures StartSidecar. Zero values give the sidecar's
// defaults.
type SidecarConfig struct {
	// Upstream is the default upstream (usually a Backend's URL). Required.
	Upstream string
	// Profiles are written to a fresh home with NewHome (ignored if Home is set).
	Profiles []ProfileSpec
	// Home is an existing home to serve; "" makes one from Profiles.
	Home string
	// Extra keys the canary must look for (e.g. keys rotated in later).
	Keys []string

	AllowedHosts    []string
	InjectHeader    string
	Rate            float64
	Burst           int
	FailOpen        bool
	Clients         []proxy.Client
	UpstreamTimeout time.Duration
	TLSClientConfig *tls.Config
	Now             func() time.Time
	// WrapRecorder, if set, wraps the real audit DB (to inject faults).
	WrapRecorder func(proxy.Recorder) proxy.Recorder
	// Watch runs proxy.Watch on the home (hot reload on file changes).
	Watch bool
}

// Sidecar is a real proxy serving on 127.0.0.1:0 with a real home (age
// identity, vault files, profiles.yaml) and a real audit DB in a temp dir.
// StartSidecar shuts it down with t.Cleanup in the order serve uses: stop
// the server, wait for response events, close the audit DB.
type Sidecar struct {
	// URL is the proxy's base URL, e.g. http://127.0.0.1:40123.
	URL string
	// Addr is the listener's host:port.
	Addr      string
	Home      string
	AuditPath string
	Audit     *auditdb.DB
	Proxy     *proxy.Proxy
	// Log holds every log line the proxy wrote (JSON).
	Log *SyncBuffer
	// Registry holds the proxy's metrics.
	Registry *prometheus.Registry

	server   *http.Server
	keys     []string
	mu       sync.Mutex
	recorded [][]byte
	stopOnce sync.Once
	stopErr  error
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers (the proxy
// logs from several goroutines).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartSidecar starts a sidecar for the test.
func StartSidecar(t testing.TB, cfg SidecarConfig) *Sidecar {
	t.Helper()
	home := cfg.Home
	if home == "" {
		home = NewHome(t, cfg.Profiles...)
	}
	sc := &Sidecar{Home: home, Log: &SyncBuffer{}, Registry: prometheus.NewRegistry()}
	for _, p := range cfg.Profiles {
		k := p.Key
		if k == "" {
			k = DefaultKey(p.Name)
		}
		sc.keys = append(sc.keys, k)
	}
	sc.keys = append(sc.keys, cfg.Keys...)

	id := IdentityOf(t, home)
	snap, err := profiles.Load(home, id)
	if err != nil {
		t.Fatalf("profiles.Load(%s) = %v", home, err)
	}
	sc.AuditPath = filepath.Join(home, "audit.db")
	db, err := auditdb.Open(context.Background(), auditdb.Config{
		Path:        sc.AuditPath,
		RedactQuery: []string{"api_key", "key", "token", "password", "secret"},
	})
	if err != nil {
		t.Fatalf("auditdb.Open(%s) = %v", sc.AuditPath, err)
	}
	sc.Audit = db
	var rec proxy.Recorder = db
	if cfg.WrapRecorder != nil {
		rec = cfg.WrapRecorder(db)
	}
	metrics, err := proxy.NewMetrics(sc.Registry)
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(sc.Log).With().Timestamp().Logger()
	p, err := proxy.New(proxy.Config{
		Snapshot:        snap,
		Load:            func(context.Context) (*profiles.Snapshot, error) { return profiles.Load(home, id) },
		Recorder:        rec,
		Upstream:        cfg.Upstream,
		AllowedHosts:    cfg.AllowedHosts,
		InjectHeader:    cfg.InjectHeader,
		UpstreamTimeout: cfg.UpstreamTimeout,
		Rate:            cfg.Rate,
		Burst:           cfg.Burst,
		FailOpen:        cfg.FailOpen,
		Clients:         cfg.Clients,
		TLSClientConfig: cfg.TLSClientConfig,
		Log:             log,
		Metrics:         metrics,
		Now:             cfg.Now,
	})
	if err != nil {
		db.Close()
		t.Fatalf("proxy.New = %v", err)
	}
	sc.Proxy = p
	l, err := proxy.Listen("127.0.0.1:0", false)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	sc.Addr = l.Addr().String()
	sc.URL = "http://" + sc.Addr
	sc.server = p.Server()
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = sc.server.Serve(l)
	}()
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	if cfg.Watch {
		go func() {
			defer close(watched)
			if err := p.Watch(watchCtx, home, 50*time.Millisecond); err != nil {
				t.Errorf("Watch = %v", err)
			}
		}()
	} else {
		close(watched)
	}
	t.Cleanup(func() {
		stopWatch()
		<-watched
		if err := sc.Stop(5 * time.Second); err != nil {
			t.Errorf("stop sidecar: %v", err)
		}
		<-served
	})
	return sc
}

// Stop shuts the sidecar down like serve does: stop accepting and drain
// (bounded by timeout), wait for response events, close the audit DB.
// It is idempotent; StartSidecar's cleanup calls it too.
func (sc *Sidecar) Stop(timeout time.Duration) error {
	sc.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err := sc.server.Shutdown(ctx)
		if err != nil {
			_ = sc.server.Close()
		}
		err = errors.Join(err, sc.Proxy.Close(ctx), sc.Audit.Close())
		sc.stopErr = err
	})
	return sc.stopErr
}

// AddKey makes the canary look for key too (e.g. a key rotated in).
func (sc *Sidecar) AddKey(key string) {
	sc.mu.Lock()
	sc.keys = append(sc.keys, key)
	sc.mu.Unlock()
}

// Remember keeps b (a response body or header dump) for AssertKeysAbsent.
func (sc *Sidecar) Remember(b []byte) {
	sc.mu.Lock()
	sc.recorded = append(sc.recorded, append([]byte(nil), b...))
	sc.mu.Unlock()
}

// Do sends req, reads the whole response, remembers its headers and body
// for the canary, and returns both. It fails the test on a transport error.
func (sc *Sidecar) Do(t testing.TB, client *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	if client == nil {
		client = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s %s: %v", req.Method, req.URL, err)
	}
	var hb bytes.Buffer
	_ = resp.Header.Write(&hb)
	sc.Remember(hb.Bytes())
	sc.Remember(body)
	return resp, body
}

// Get is Do for a GET of path in base-URL mode with X-Kanbot-Profile:
// profile (none when empty).
func (sc *Sidecar) Get(t testing.TB, profile, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, sc.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if profile != "" {
		req.Header.Set(proxy.HeaderProfile, profile)
	}
	return sc.Do(t, nil, req)
}

// MetricsText returns the /metrics exposition of the sidecar's registry.
func (sc *Sidecar) MetricsText(t testing.TB) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(sc.Registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// AssertKeysAbsent is the canary: no key of the sidecar's profiles (or
// added with AddKey / SidecarConfig.Keys) appears in the proxy's log, the
// audit DB files (db, -wal), the metrics, or any response remembered by Do.
func (sc *Sidecar) AssertKeysAbsent(t testing.TB) {
	t.Helper()
	sc.mu.Lock()
	keys := append([]string(nil), sc.keys...)
	recorded := append([][]byte(nil), sc.recorded...)
	sc.mu.Unlock()
	if len(keys) == 0 {
		t.Fatal("AssertKeysAbsent: no keys to look for")
	}
	places := map[string][]byte{
		"log":     []byte(sc.Log.String()),
		"metrics": []byte(sc.MetricsText(t)),
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(sc.AuditPath + suffix)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		places["audit DB"+suffix] = b
	}
	for i, b := range recorded {
		places["response #"+itoa(i)] = b
	}
	for where, b := range places {
		for _, k := range keys {
			if bytes.Contains(b, []byte(k)) {
				t.Errorf("canary: a profile key appears in %s", where)
			}
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

// Event is one audit row as tests read it back.
type Event struct {
	Seq            int64
	Kind           string
	RequestID      string
	Profile        string
	Client         string
	Method         string
	Host           string
	Path           string
	Query          string
	Status         int
	Code           string
	Outcome        string
	BytesIn        int64
	BytesOut       int64
	KeyFingerprint string
	Detail         string
}

// Events returns every audit event, oldest first (read with a separate
// read-only connection, so it sees what is committed).
func (sc *Sidecar) Events(t testing.TB) []Event {
	t.Helper()
	return ReadEvents(t, sc.AuditPath)
}

// ReadEvents reads every event of the audit DB at path.
func ReadEvents(t testing.TB, path string) []Event {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT seq, kind, ifnull(request_id,''), ifnull(profile,''), ifnull(client,''),
		ifnull(method,''), ifnull(host,''), ifnull(path,''), ifnull(query,''), ifnull(status,0), ifnull(code,''),
		ifnull(outcome,''), ifnull(bytes_in,0), ifnull(bytes_out,0), ifnull(key_fingerprint,''), ifnull(detail,'')
		FROM events ORDER BY seq`)
	if err != nil {
		t.Fatalf("read audit events: %v", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.Seq, &e.Kind, &e.RequestID, &e.Profile, &e.Client, &e.Method, &e.Host, &e.Path,
			&e.Query, &e.Status, &e.Code, &e.Outcome, &e.BytesIn, &e.BytesOut, &e.KeyFingerprint, &e.Detail); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// EventsFor returns the events with request id id.
func (sc *Sidecar) EventsFor(t testing.TB, id string) []Event {
	t.Helper()
	var out []Event
	for _, e := range sc.Events(t) {
		if e.RequestID == id {
			out = append(out, e)
		}
	}
	return out
}

// WaitEvents polls (up to 5 s) until the events of request id include one
// of each kind in kinds, and returns them; it fails the test on timeout.
// Response events are committed just after the agent gets its response.
func (sc *Sidecar) WaitEvents(t testing.TB, id string, kinds ...string) []Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs := sc.EventsFor(t, id)
		have := map[string]bool{}
		for _, e := range evs {
			have[e.Kind] = true
		}
		all := true
		for _, k := range kinds {
			all = all && have[k]
		}
		if all {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit events for %s: have %v, want kinds %v", id, evs, kinds)
		}
		select {
		case <-time.After(10 * time.Millisecond):
		}
	}
}
