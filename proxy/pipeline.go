package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/kanbot/kanbot-sidecar/auditdb"
	"github.com/kanbot/kanbot-sidecar/profiles"
)

// reqState is the per-request state, kept in ProxyCtx.UserData (read back
// with stateOf) and handed to the response body that finishes the request.
type reqState struct {
	start     time.Time
	forward   bool
	requestID string
	method    string
	path      string // escaped path as the agent sent it
	query     string // raw; the audit writer redacts it
	host      string // the host the agent addressed (rejects) or the upstream (forwarded)
	profile   string // set once the header holds a valid name
	client    string
	prof      *profiles.Profile
	target    *target
	bytesIn   int64
	ambiguous bool // the raw head had ambiguous framing (framingConn)
	// bodyBroken: reading the agent's body failed (set by countingReader,
	// which the transport may run on another goroutine).
	bodyBroken atomic.Bool
}

// stateOf returns the request's state, or nil if the context holds none
// (the caller then fails closed).
func stateOf(ctx *goproxy.ProxyCtx) *reqState {
	if ctx == nil {
		return nil
	}
	st, _ := ctx.UserData.(*reqState)
	return st
}

// isAbsoluteURI reports whether the request line carried an absolute URI
// (forward-proxy mode) rather than a path (base-URL mode).
func isAbsoluteURI(requestURI string) bool {
	return len(requestURI) > 0 && requestURI[0] != '/' && requestURI != "*"
}

// pipeline is the one function behind both modes (DESIGN.md steps 1-11).
// It always returns a response, so goproxy never forwards on its own.
func (p *Proxy) pipeline(r *http.Request, gctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	st := &reqState{
		start:   p.now(),
		forward: isAbsoluteURI(r.RequestURI),
		method:  r.Method,
		path:    r.URL.EscapedPath(),
		query:   r.URL.RawQuery,
	}
	// Pop this request's framing verdict first, whatever happens next:
	// verdicts are queued per connection and must stay aligned.
	st.ambiguous = ambiguousFraming(r.Context())
	gctx.UserData = st
	if st.forward {
		st.host = r.URL.Host
	} else {
		st.host = r.Host
	}
	var hs headerScan
	p.scanHeaders(r.Header, &hs)
	st.requestID = hs.requestID()
	if st.requestID == "" {
		st.requestID = newRequestID(st.start)
	}
	if ref := p.admit(r, st, &hs); ref != nil {
		return r, p.reject(r, st, ref)
	}
	return r, p.forward(r, st)
}

// headerScan is what one pass over the request headers found. Slices alias
// the request's header map; nothing is copied.
type headerScan struct {
	profile        []string // values of the profile header (or a look-alike)
	profileKeys    int      // how many header names were profile look-alikes
	clientToken    []string
	clientKeys     int
	proxyAuth      []string
	proxyAuthKeys  int
	apiKey         bool
	authorization  bool
	cookie         bool
	browser        bool
	requestIDs     []string
	requestIDKeys  int
	contentLengths int
}

func (hs *headerScan) requestID() string {
	if hs.requestIDKeys == 1 && len(hs.requestIDs) == 1 && saneRequestID(hs.requestIDs[0]) {
		return hs.requestIDs[0]
	}
	return ""
}

// scanHeaders classifies every request header once.
func (p *Proxy) scanHeaders(h http.Header, hs *headerScan) {
	for k, vs := range h {
		switch p.hc.classify(k) {
		case hdrProfile:
			hs.profileKeys++
			hs.profile = vs
		case hdrClientToken:
			hs.clientKeys++
			hs.clientToken = vs
		case hdrProxyAuthorization:
			hs.proxyAuthKeys++
			hs.proxyAuth = vs
		case hdrAPIKey:
			hs.apiKey = true
		case hdrAuthorization:
			hs.authorization = true
		case hdrCookie:
			hs.cookie = true
		case hdrRequestID:
			hs.requestIDKeys++
			hs.requestIDs = vs
		case hdrOther:
			if IsBrowserHeader(k) {
				hs.browser = true
			}
			if k == "Content-Length" {
				hs.contentLengths += len(vs)
			} else if len(k) == len("Content-Length") && sameHeaderName(k, "Content-Length") {
				hs.contentLengths += 2 // a look-alike next to the real one is ambiguous framing
			}
		}
	}
}

// IsBrowserHeader reports Origin and Sec-Fetch-* (and their look-alikes):
// only browsers send them, and a browser must never reach the sidecar
// (DNS rebinding, CSRF against a localhost service).
//
// The one exception is Sec-Fetch-Mode on its own: Node's built-in fetch
// (undici) sends "Sec-Fetch-Mode: cors" on every request and offers no way
// to drop it, so refusing it would lock out every Node agent. Browsers that
// send fetch metadata always send Sec-Fetch-Site and Sec-Fetch-Dest with it,
// and those are still refused.
func IsBrowserHeader(k string) bool {
	if len(k) == len("Origin") && sameHeaderName(k, "Origin") {
		return true
	}
	const prefix = "sec-fetch-"
	if len(k) <= len(prefix) {
		return false
	}
	if len(k) == len("Sec-Fetch-Mode") && sameHeaderName(k, "Sec-Fetch-Mode") {
		return false
	}
	return sameHeaderName(k[:len(prefix)], prefix)
}

// admit runs steps 1-8 and returns the refusal of the first that fails.
func (p *Proxy) admit(r *http.Request, st *reqState, hs *headerScan) *Refusal {
	// 1. Host check (DNS-rebinding guard), base-URL mode only: in forward
	// mode the target is checked against the profile in step 7.
	if !st.forward && !p.hostAllowed(r.Host) {
		return refuse(CodeBadHost, http.StatusForbidden,
			"Host "+quoteName(r.Host)+" is not allowed: use 127.0.0.1 or localhost, or list the name in allowed_hosts")
	}
	// 2. Browser guard.
	if hs.browser {
		return refuse(CodeBrowserRequest, http.StatusForbidden,
			"requests from a browser (Origin or Sec-Fetch-* header) are refused")
	}
	// Ambiguous framing (request smuggling): Go's server already refuses
	// differing Content-Length values; this also refuses repeated equal
	// ones and Content-Length next to Transfer-Encoding, which Go accepts
	// after hiding them (see framingConn), and a Content-Length look-alike.
	if hs.contentLengths > 1 || (hs.contentLengths > 0 && len(r.TransferEncoding) > 0) || st.ambiguous {
		return refuse(CodeAmbiguousFraming, http.StatusBadRequest,
			"request has both Content-Length and Transfer-Encoding, or several Content-Length values")
	}
	// The tag, parsed once; steps 3 and 4 use it.
	name, tagErr := profileFromHeader(hs)
	// 3. Client check.
	proxyAuthUsed := false
	if len(p.clients) > 0 {
		c, usedProxyAuth := p.authenticate(hs, st.forward)
		if c == nil {
			status := http.StatusUnauthorized
			msg := "a known client token is required (X-Kanbot-Client-Token)"
			if st.forward {
				status = http.StatusProxyAuthRequired
				msg = "a known client token is required (X-Kanbot-Client-Token or Proxy-Authorization: Basic)"
			}
			return refuse(CodeClientUnauthorized, status, msg)
		}
		st.client = c.Name
		proxyAuthUsed = usedProxyAuth
		if tagErr == nil && !c.allows(name) {
			st.profile = name
			return refuse(CodeProfileNotAllowed, http.StatusForbidden,
				"client "+quoteName(c.Name)+" may not use profile "+quoteName(name))
		}
	}
	// 4. Profile header.
	if tagErr != nil {
		return tagErr
	}
	st.profile = name
	// 5. The profile exists in the current snapshot (loaded once: a reload
	// during this request does not change what it sees).
	s := p.state.Load()
	prof, ok := s.snap.Get(name)
	if !ok {
		return refuse(CodeUnknownProfile, http.StatusForbidden, "profile "+quoteName(name)+" is not configured")
	}
	st.prof = prof
	st.target = s.targets[name]
	// 6. No foreign credential.
	if what := foreignCredential(hs, proxyAuthUsed, r); what != "" {
		return refuse(CodeForeignCredential, http.StatusForbidden,
			"request carries its own credential ("+what+"); remove it: the sidecar injects the profile's key")
	}
	// 7. The target matches the profile.
	if st.forward && r.URL.Scheme != "http" {
		// The agent speaks plain HTTP to the sidecar, which picks the
		// upstream's scheme itself; any other scheme is a request for a
		// target the sidecar does not serve.
		return refuse(CodeUpstreamMismatch, http.StatusForbidden,
			"forward-mode requests must use http:// (the sidecar uses the profile's upstream scheme itself)")
	}
	if st.forward && !st.target.matches(r.URL) {
		return refuse(CodeUpstreamMismatch, http.StatusForbidden,
			"target "+quoteName(r.URL.Host)+" is not the upstream of profile "+quoteName(name))
	}
	if !methodAllowed(r.Method, prof.Methods()) {
		return refuse(CodeMethodNotAllowed, http.StatusForbidden,
			"method "+quoteName(r.Method)+" is not allowed for profile "+quoteName(name))
	}
	decoded, err := normalizePath(st.path)
	if err != nil || !pathAllowed(decoded, prof.Paths()) {
		msg := "path is not allowed for profile " + quoteName(name)
		if err == nil && underKeyManagement(decoded) {
			msg += ": API key management (" + KeyManagementPrefix + "/) is refused unless the profile's allow_paths name it"
		}
		ref := refuse(CodePathNotAllowed, http.StatusForbidden, msg)
		ref.Err = err
		return ref
	}
	// 8. Rate limit.
	rate, burst := prof.Rate, prof.Burst
	if rate <= 0 {
		rate = p.defRate
	}
	if burst <= 0 {
		burst = p.defBurst
	}
	if ok, retry := p.limiters.allow(name, rate, burst, st.start); !ok {
		if p.metrics != nil {
			p.metrics.rateLimited.WithLabelValues(name).Inc()
		}
		ref := refuse(CodeRateLimited, http.StatusTooManyRequests, "rate limit of profile "+quoteName(name)+" exceeded")
		ref.RetryAfter = retry
		return ref
	}
	return nil
}

// profileFromHeader implements step 4: exactly one X-Kanbot-Profile header
// (look-alikes included) with one valid name.
func profileFromHeader(hs *headerScan) (string, *Refusal) {
	if hs.profileKeys == 0 || len(hs.profile) == 0 {
		return "", refuse(CodeMissingProfile, http.StatusBadRequest, "the X-Kanbot-Profile header is required")
	}
	if hs.profileKeys > 1 || len(hs.profile) > 1 {
		return "", refuse(CodeBadProfileHeader, http.StatusBadRequest, "X-Kanbot-Profile must appear exactly once")
	}
	name := hs.profile[0]
	if !profiles.ValidName(name) {
		// The value is not echoed: it is not a name, so it may be anything.
		return "", refuse(CodeBadProfileHeader, http.StatusBadRequest,
			"X-Kanbot-Profile must be one profile name matching ^[a-z0-9][a-z0-9_.-]{0,62}$")
	}
	return name, nil
}

// authenticate finds the client whose token the request presents: the
// X-Kanbot-Client-Token header, or in forward mode the password of
// Proxy-Authorization: Basic. It compares SHA-256 digests in constant time
// and checks every client, so timing says nothing about which matched.
func (p *Proxy) authenticate(hs *headerScan, forward bool) (c *Client, usedProxyAuth bool) {
	var token string
	switch {
	case hs.clientKeys > 0:
		if hs.clientKeys != 1 || len(hs.clientToken) != 1 {
			return nil, false
		}
		token = hs.clientToken[0]
	case forward && hs.proxyAuthKeys == 1 && len(hs.proxyAuth) == 1:
		t, ok := basicPassword(hs.proxyAuth[0])
		if !ok {
			return nil, false
		}
		token, usedProxyAuth = t, true
	default:
		return nil, false
	}
	if token == "" {
		return nil, false
	}
	sum := sha256.Sum256([]byte(token))
	var found *Client
	for i := range p.clients {
		if subtle.ConstantTimeCompare(sum[:], p.clients[i].TokenSHA256[:]) == 1 && found == nil {
			found = &p.clients[i]
		}
	}
	return found, usedProxyAuth
}

// basicPassword returns the password of a "Basic base64(user:password)"
// credential.
func basicPassword(v string) (string, bool) {
	const prefix = "basic "
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v[len(prefix):]))
	if err != nil {
		return "", false
	}
	_, pw, ok := strings.Cut(string(raw), ":")
	return pw, ok
}

// foreignCredential names the credential the agent sent itself (step 6),
// or returns "".
func foreignCredential(hs *headerScan, proxyAuthUsed bool, r *http.Request) string {
	switch {
	case hs.apiKey:
		return "an API key header"
	case hs.authorization:
		return "Authorization"
	case hs.cookie:
		return "Cookie"
	case hs.proxyAuthKeys > 0 && !proxyAuthUsed:
		return "Proxy-Authorization"
	case r.URL.User != nil:
		return "credentials in the URL"
	}
	return ""
}

// matches reports whether a forward-mode request URL addresses t: the same
// host (exactly, case-insensitively) and port. An absent port means the
// default of the request's scheme (http: 80), or the upstream's own port
// when the upstream uses its scheme's default (so http://kanbot.example.com/
// reaches an https://kanbot.example.com upstream: the agent speaks plain
// HTTP to the sidecar, which speaks HTTPS upstream).
func (t *target) matches(u *url.URL) bool {
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host != t.host {
		return false
	}
	port := u.Port()
	if port == "" {
		return t.port == defaultPort(t.scheme) || t.port == "80"
	}
	return port == t.port
}

func methodAllowed(m string, allowed []string) bool {
	for _, a := range allowed {
		if a == m {
			return true
		}
	}
	return false
}

// hostAllowed implements step 1 with the configured allowed_hosts.
func (p *Proxy) hostAllowed(hostport string) bool {
	return HostAllowed(hostport, p.allowedHosts)
}

// HostAllowed is the DNS-rebinding guard (DESIGN.md step 1): hostport, a
// Host header value, names a loopback name or address (a trailing root dot
// and IPv6 brackets allowed) or one of allowed (case-insensitively). The
// admin listener uses it too.
func HostAllowed(hostport string, allowed []string) bool {
	if hostport == "" {
		return false
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(host, ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, a := range allowed {
		if strings.EqualFold(host, a) {
			return true
		}
	}
	return false
}

// reject records a refusal as a reject event (synchronously: the agent
// sees the refusal only once it is in the audit DB, and a flood of bad
// requests is slowed by the audit writer instead of piling up), logs it
// and builds the response.
func (p *Proxy) reject(r *http.Request, st *reqState, ref *Refusal) *http.Response {
	dur := p.now().Sub(st.start)
	ev := auditdb.Event{
		Kind:       auditdb.KindReject,
		RequestID:  st.requestID,
		Profile:    st.profile,
		Client:     st.client,
		Method:     st.method,
		Host:       st.host,
		Path:       st.path,
		Query:      st.query,
		Status:     ref.Status,
		Code:       ref.Code,
		Outcome:    auditdb.OutcomeRejected,
		DurationMS: durMS(dur),
	}
	if st.prof != nil {
		ev.KeyFingerprint = st.prof.Fingerprint
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), p.auditTimeout)
	err := p.rec.Record(ctx, ev)
	cancel()
	if err != nil {
		p.log.Error().Err(err).Str(logKeyRequestID, st.requestID).Msg("record reject event")
	}
	p.log.Warn().
		Str(logKeyRequestID, st.requestID).
		Str(logKeyProfile, st.profile).
		Str(logKeyMethod, st.method).
		Str(logKeyPath, st.path).
		Int(logKeyStatus, ref.Status).
		Str(logKeyCode, ref.Code).
		AnErr("cause", ref.Err).
		Float64(logKeyDurMS, durMS(dur)).
		Msg("refused")
	if p.metrics != nil {
		p.metrics.observeRefusal(st.profileLabel(), ref.Code)
	}
	return refusalResponse(r, ref, st.requestID, st.forward)
}

// profileLabel is the metrics label for a request: a configured profile's
// name, else "" (so that agents cannot blow up label cardinality).
func (st *reqState) profileLabel() string {
	if st.prof != nil {
		return st.prof.Name
	}
	return ""
}

func durMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// refuseConnect answers every CONNECT with connect_not_supported: a tunnel
// cannot carry an injected key without interception, and the sidecar never
// intercepts (so goproxy's bundled CA is never used). goproxy writes
// ctx.Resp on the hijacked connection and closes it.
func (p *Proxy) refuseConnect(host string, gctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	r := gctx.Req
	st := &reqState{start: p.now(), forward: true, method: r.Method, host: host}
	_ = ambiguousFraming(r.Context()) // keep the connection's verdicts aligned
	var hs headerScan
	p.scanHeaders(r.Header, &hs)
	st.requestID = hs.requestID()
	if st.requestID == "" {
		st.requestID = newRequestID(st.start)
	}
	gctx.UserData = st
	gctx.Resp = p.reject(r, st, refuse(CodeConnectNotSupported, http.StatusMethodNotAllowed,
		"CONNECT is not supported: send plain HTTP to the sidecar (it uses HTTPS to the upstream)"))
	return &goproxy.ConnectAction{Action: goproxy.ConnectReject}, host
}
