package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
	"github.com/rs/zerolog"

	"github.com/kanbot/kanbot-sidecar/auditdb"
	"github.com/kanbot/kanbot-sidecar/profiles"
)

// Defaults for the zero values of Config (DESIGN.md, "The sidecar home").
const (
	DefaultInjectHeader    = "X-API-Key"
	DefaultUpstreamTimeout = 30 * time.Second
	DefaultRate            = 10.0
	DefaultBurst           = 20
	// DefaultAuditTimeout bounds one audit write on the request path.
	DefaultAuditTimeout = 5 * time.Second
)

// Recorder commits audit events. Record returns once ev is durable (or
// failed); the proxy calls it before forwarding (write-ahead), after the
// response, for every refusal and for reloads. *auditdb.DB implements it.
// It must be safe for concurrent use.
type Recorder interface {
	Record(ctx context.Context, ev auditdb.Event) error
}

// Client is an agent process allowed to use the sidecar when client tokens
// are configured (DESIGN.md step 3).
type Client struct {
	Name string
	// TokenSHA256 is the SHA-256 of the client's token; the token itself is
	// never stored.
	TokenSHA256 [32]byte
	// Profiles the client may use; "*" allows every profile.
	Profiles []string
}

func (c *Client) allows(profile string) bool {
	for _, p := range c.Profiles {
		if p == "*" || p == profile {
			return true
		}
	}
	return false
}

// Config configures a Proxy. Zero values are documented per field.
type Config struct {
	// Snapshot is the initial set of profiles. Required.
	Snapshot *profiles.Snapshot
	// Load builds a fresh snapshot for Reload (from profiles.yaml and the
	// vault). If nil, Reload fails.
	Load func(ctx context.Context) (*profiles.Snapshot, error)
	// Recorder is the audit log. Required.
	Recorder Recorder
	// Upstream is the Kanbot base URL for profiles that set none. Required.
	Upstream string
	// AllowedHosts are extra Host names accepted in base-URL mode; loopback
	// names and addresses always are.
	AllowedHosts []string
	// InjectHeader carries the injected key; "" means X-API-Key.
	InjectHeader string
	// UpstreamTimeout bounds the wait for upstream response headers; zero
	// means DefaultUpstreamTimeout.
	UpstreamTimeout time.Duration
	// Rate (requests/s) and Burst are the default token bucket of profiles
	// that set none; zero means DefaultRate / DefaultBurst.
	Rate  float64
	Burst int
	// FailOpen forwards a request whose write-ahead audit event could not be
	// committed (audit.fail_open; not recommended).
	FailOpen bool
	// Clients, when non-empty, makes client tokens mandatory.
	Clients []Client
	// TLSClientConfig is used for https upstreams; nil means the system
	// roots. Verification is never turned off.
	TLSClientConfig *tls.Config
	// Log receives one line per request and the proxy's faults. Use
	// zerolog.Nop() to discard.
	Log zerolog.Logger
	// Metrics, if non-nil, is updated per request (see NewMetrics).
	Metrics *Metrics
	// Now is the clock (rate limiting, durations, request ids); nil means
	// time.Now.
	Now func() time.Time
	// AuditTimeout bounds each audit write; zero means DefaultAuditTimeout.
	AuditTimeout time.Duration
}

// Proxy is the sidecar's request pipeline (DESIGN.md, "The request
// pipeline"). It is an http.Handler serving both base-URL and forward-proxy
// requests on one listener. Safe for concurrent use; Close it after the
// HTTP server has shut down.
type Proxy struct {
	gp           *goproxy.ProxyHttpServer
	tr           *http.Transport
	rec          Recorder
	log          zerolog.Logger
	metrics      *Metrics
	now          func() time.Time
	load         func(context.Context) (*profiles.Snapshot, error)
	hc           headerClassifier
	injectKey    string // canonical form of the inject header
	defTarget    *target
	allowedHosts []string
	clients      []Client
	failOpen     bool
	auditTimeout time.Duration
	defRate      float64
	defBurst     int

	state    atomic.Pointer[state]
	limiters *limiters
	pending  tracker
	// inflight holds the request ids of forwarded calls whose response
	// event is not yet committed. The calls view pairs a request with the
	// first later response of the same id, so two overlapping calls that
	// share an agent-chosen id would swap outcomes; the second one gets a
	// fresh id instead (see claimRequestID).
	inflight sync.Map
	reloadMu sync.Mutex
	closed   atomic.Bool
}

// state is what one request reads: the snapshot and the upstream targets
// parsed from it. It is immutable and swapped whole by reloads.
type state struct {
	snap    *profiles.Snapshot
	targets map[string]*target
}

// target is a parsed upstream base URL.
type target struct {
	scheme   string // http or https
	host     string // lower-case host name or IP, no brackets
	port     string // explicit or the scheme's default
	hostPort string // as it goes in URL.Host and the Host header
	basePath string // path prefix without a trailing slash ("" for none)
	origin   string // scheme://hostPort, for Location rewriting
}

func parseTarget(raw string) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("upstream %q is not a URL", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("upstream %q: scheme must be http or https", raw)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("upstream %q: want scheme://host[:port][/path] without credentials, query or fragment", raw)
	}
	t := &target{scheme: u.Scheme, host: strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")), port: u.Port()}
	if t.port == "" {
		t.port = defaultPort(u.Scheme)
	}
	t.hostPort = u.Host
	t.basePath = strings.TrimSuffix(u.EscapedPath(), "/")
	t.origin = u.Scheme + "://" + u.Host
	return t, nil
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// New builds a Proxy from cfg. It opens nothing: the transport dials
// lazily.
func New(cfg Config) (*Proxy, error) {
	if cfg.Snapshot == nil {
		return nil, errors.New("proxy: Config.Snapshot is required")
	}
	if cfg.Recorder == nil {
		return nil, errors.New("proxy: Config.Recorder is required")
	}
	def, err := parseTarget(cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p := &Proxy{
		rec:          cfg.Recorder,
		log:          cfg.Log,
		metrics:      cfg.Metrics,
		now:          cfg.Now,
		load:         cfg.Load,
		defTarget:    def,
		clients:      cfg.Clients,
		failOpen:     cfg.FailOpen,
		auditTimeout: cfg.AuditTimeout,
		defRate:      cfg.Rate,
		defBurst:     cfg.Burst,
		limiters:     newLimiters(),
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.auditTimeout <= 0 {
		p.auditTimeout = DefaultAuditTimeout
	}
	if p.defRate <= 0 {
		p.defRate = DefaultRate
	}
	if p.defBurst <= 0 {
		p.defBurst = DefaultBurst
	}
	inject := cfg.InjectHeader
	if inject == "" {
		inject = DefaultInjectHeader
	}
	if !validHeaderName(inject) {
		return nil, fmt.Errorf("proxy: inject header %q is not a valid header name", inject)
	}
	p.hc.injectHeader = inject
	p.injectKey = http.CanonicalHeaderKey(inject)
	for _, h := range cfg.AllowedHosts {
		p.allowedHosts = append(p.allowedHosts, strings.ToLower(strings.TrimSuffix(h, ".")))
	}
	for i, c := range cfg.Clients {
		if c.Name == "" || len(c.Profiles) == 0 {
			return nil, fmt.Errorf("proxy: client %d needs a name and at least one profile", i)
		}
	}
	timeout := cfg.UpstreamTimeout
	if timeout <= 0 {
		timeout = DefaultUpstreamTimeout
	}
	p.tr = newTransport(timeout, cfg.TLSClientConfig)
	if err := p.SetSnapshot(cfg.Snapshot); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p.gp = p.newGoproxy()
	return p, nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// newTransport is the sidecar's own upstream transport. goproxy's default
// (v1.9.4) takes a proxy from HTTP(S)_PROXY and skips TLS verification; this
// one verifies certificates, never uses an environment proxy, reuses
// connections (enough idle ones per host for 64+ concurrent agents), bounds
// dial, TLS and response-header time, and never asks for compression (it
// would decompress silently and change what the agent receives).
func newTransport(headerTimeout time.Duration, tlsConf *tls.Config) *http.Transport {
	if tlsConf == nil {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		tlsConf = tlsConf.Clone()
		tlsConf.InsecureSkipVerify = false
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  headerTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           512,
		MaxIdleConnsPerHost:    256,
		IdleConnTimeout:        90 * time.Second,
		DisableCompression:     true,
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: 1 << 20,
	}
}

// errConnectDisabled is returned by the CONNECT dialer, which is never
// meant to run: CONNECT is refused before any dial.
var errConnectDisabled = errors.New("CONNECT tunnels are disabled")

// newGoproxy wires the pipeline into goproxy.
//
// Both modes go through one function, p.pipeline, registered with
// OnRequest().DoFunc. goproxy calls DoFunc only for absolute-URI requests
// (forward mode); the NonproxyHandler gets relative ones (base-URL mode),
// marks them absolute and hands them back to goproxy, so both modes share
// the pipeline and goproxy's response writer. The pipeline always returns
// a response (a refusal or the upstream's), so goproxy's own RoundTrip,
// its header stripping and its error page (which would print the transport
// error to the agent) never run. We register no OnResponse handler: goproxy
// may call those twice on an upstream error; the response event is instead
// finished by the response body's Close, which is idempotent.
func (p *Proxy) newGoproxy() *goproxy.ProxyHttpServer {
	gp := goproxy.NewProxyHttpServer()
	gp.Verbose = false
	gp.Logger = &p.log // Printf logs at debug; Warnf lines never carry header values
	gp.Tr = p.tr
	gp.ConnectDial = func(string, string) (net.Conn, error) { return nil, errConnectDisabled }
	gp.ConnectDialWithReq = nil
	gp.KeepAcceptEncoding = true
	gp.NonproxyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// r.URL is relative. Making it absolute sends it through goproxy's
		// proxy path (IsAbs only checks the scheme); r.RequestURI still
		// starts with "/", which is how the pipeline tells the modes apart.
		r.URL.Scheme = "http"
		if r.URL.Host == "" {
			r.URL.Host = r.Host
		}
		p.gp.ServeHTTP(w, r)
	})
	gp.OnRequest().DoFunc(p.pipeline)
	gp.OnRequest().HandleConnectFunc(p.refuseConnect)
	return gp
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.gp.ServeHTTP(w, r) }

// Server returns an http.Server for p with the timeouts the sidecar uses:
// slow-header clients are cut off, idle connections are reaped, and header
// size is bounded. Serve it on a listener from Listen.
func (p *Proxy) Server() *http.Server {
	return &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ConnContext:       connContext,
	}
}

// SetSnapshot validates s (every profile's upstream must parse) and makes
// it the snapshot new requests use. Requests in flight keep theirs.
func (p *Proxy) SetSnapshot(s *profiles.Snapshot) error {
	if s == nil {
		return errors.New("nil snapshot")
	}
	st := &state{snap: s, targets: make(map[string]*target, s.Len())}
	for _, name := range s.Names() {
		prof, _ := s.Get(name)
		if prof.Upstream == "" {
			st.targets[name] = p.defTarget
			continue
		}
		t, err := parseTarget(prof.Upstream)
		if err != nil {
			return fmt.Errorf("profile %q: %w", name, err)
		}
		st.targets[name] = t
	}
	p.state.Store(st)
	p.limiters.forget(func(name string) bool { _, ok := s.Get(name); return ok })
	return nil
}

// Snapshot returns the snapshot new requests use.
func (p *Proxy) Snapshot() *profiles.Snapshot { return p.state.Load().snap }

// Close waits (bounded by ctx) for response events still being recorded
// and closes idle upstream connections. Call it after the HTTP server has
// shut down and before closing the Recorder.
func (p *Proxy) Close(ctx context.Context) error {
	p.closed.Store(true)
	err := p.pending.wait(ctx)
	p.tr.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("wait for audit events: %w", err)
	}
	return nil
}

// tracker counts work that must finish before shutdown (response events).
// Unlike sync.WaitGroup it allows new work to start while someone waits.
type tracker struct {
	mu   sync.Mutex
	n    int
	idle chan struct{}
}

func (t *tracker) add() {
	t.mu.Lock()
	if t.n == 0 {
		t.idle = make(chan struct{})
	}
	t.n++
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	t.n--
	if t.n == 0 {
		close(t.idle)
	}
	t.mu.Unlock()
}

func (t *tracker) wait(ctx context.Context) error {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return nil
	}
	ch := t.idle
	t.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
