package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kanbot/kanbot-sidecar/auditdb"
)

// Log keys of the per-request line (STYLE.md §6).
const (
	logKeyRequestID = "request_id"
	logKeyProfile   = "profile"
	logKeyClient    = "client"
	logKeyMethod    = "method"
	logKeyPath      = "path"
	logKeyStatus    = "status"
	logKeyCode      = "code"
	logKeyDurMS     = "dur_ms"
	logKeyOutcome   = "outcome"
)

// forward runs steps 9-11 for an admitted request.
func (p *Proxy) forward(r *http.Request, st *reqState) *http.Response {
	t := st.target
	st.host = t.hostPort
	key := st.prof.Key.Reveal()

	// 9. Write-ahead audit: the request event is durable before a byte goes
	// upstream. WithoutCancel: an agent hanging up mid-write must not leave
	// us unsure whether the row exists.
	p.claimRequestID(st)
	ev := p.event(st, auditdb.KindRequest)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), p.auditTimeout)
	err := p.rec.Record(ctx, ev)
	cancel()
	if err != nil {
		if !p.failOpen {
			p.inflight.Delete(st.requestID) // no request row: nothing to pair
			ref := &Refusal{Code: CodeAuditUnavailable, Status: http.StatusServiceUnavailable,
				Message: "the audit log cannot be written; the request was not forwarded", Err: err}
			return p.reject(r, st, ref)
		}
		p.log.Error().Err(err).Str(logKeyRequestID, st.requestID).Msg("record request event failed; forwarding anyway (audit.fail_open)")
	}

	// 10. Inject and forward.
	out := p.outbound(r, st, key)
	sent := p.now()
	resp, err := p.tr.RoundTrip(out)
	if p.metrics != nil {
		p.metrics.upstreamLatency.Observe(p.now().Sub(sent).Seconds())
	}
	if err != nil {
		outcome := auditdb.OutcomeUpstreamError
		if r.Context().Err() != nil {
			outcome = auditdb.OutcomeClientAborted
		}
		ref := asRefusal(err)
		if outcome == auditdb.OutcomeClientAborted {
			// The agent hung up before the upstream answered: it was told
			// nothing, so the row carries no status and no error code
			// rather than a 502 the agent never saw.
			p.finish(st, 0, "", outcome, 0, err)
			return refusalResponse(r, ref, st.requestID, st.forward)
		}
		if st.bodyBroken.Load() {
			// The agent's body was malformed: its fault, not the upstream's.
			ref = &Refusal{Code: CodeAmbiguousFraming, Status: http.StatusBadRequest,
				Message: "the request body is not validly framed", Err: err}
			outcome = auditdb.OutcomeClientAborted
		}
		p.finish(st, ref.Status, ref.Code, outcome, 0, ref.Err)
		return refusalResponse(r, ref, st.requestID, st.forward)
	}

	// 11. Response: scrub, rewrite Location (base-URL mode), tag, stream.
	scrubResponseHeader(resp.Header, key)
	if !st.forward {
		rewriteLocation(resp.Header, t, r.Host)
	}
	resp.Header[HeaderRequestID] = []string{st.requestID}
	resp.Body = &responseBody{
		rc:     resp.Body,
		p:      p,
		st:     st,
		resp:   resp,
		key:    key,
		stream: resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"),
		ctx:    r.Context(),
	}
	return resp
}

// outbound builds the upstream request. Headers are copied into a fresh
// map, leaving out hop-by-hop headers, every header the agent named in
// Connection, the sidecar's own headers (profile tag, client token) and
// credentials; the key is set last, so no later step can remove it (the
// ReverseProxy.Director trap) and exactly one key header goes upstream.
func (p *Proxy) outbound(r *http.Request, st *reqState, key string) *http.Request {
	h := make(http.Header, len(r.Header)+2)
	conn := connectionValues(r.Header)
	for k, vs := range r.Header {
		if p.hc.classify(k) != hdrOther || isFramingHeader(k) {
			continue
		}
		if len(conn) > 0 && connectionNamed(conn, k) {
			continue
		}
		h[k] = vs
	}
	h[HeaderRequestID] = []string{st.requestID}
	h[p.injectKey] = []string{key}

	t := st.target
	u := &url.URL{Scheme: t.scheme, Host: t.hostPort, RawQuery: st.query}
	escaped := t.basePath + st.path
	decoded, _ := normalizePath(st.path) // already checked in step 7
	u.Path = t.basePathDecoded() + decoded
	if escaped != u.Path {
		u.RawPath = escaped
	}
	out := &http.Request{
		Method:     r.Method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       t.hostPort,
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		// Streamed, never buffered: the transport reads the agent's body as
		// it sends it.
		out.Body = &countingReader{rc: r.Body, st: st}
		out.ContentLength = r.ContentLength
	} else {
		out.Body = http.NoBody
	}
	return out.WithContext(r.Context())
}

// isFramingHeader reports Content-Length, Transfer-Encoding and Host in any
// spelling: the transport writes framing itself from the request, and a
// look-alike must not reach a server that might honour it.
func isFramingHeader(k string) bool {
	return sameHeaderName(k, "Content-Length") || sameHeaderName(k, "Transfer-Encoding") || sameHeaderName(k, "Host")
}

func (t *target) basePathDecoded() string {
	if !strings.Contains(t.basePath, "%") {
		return t.basePath
	}
	if s, err := url.PathUnescape(t.basePath); err == nil {
		return s
	}
	return t.basePath
}

// rewriteLocation points a redirect to the upstream's own origin back at
// the sidecar (the address the agent used, which passed the Host check),
// so an agent in base-URL mode follows it through the sidecar and never
// talks to the upstream without it. Redirects elsewhere are left alone:
// the sidecar never follows them and they carry no key.
func rewriteLocation(h http.Header, t *target, agentHost string) {
	loc := h.Get("Location")
	if loc == "" {
		return
	}
	u, err := url.Parse(loc)
	if err != nil || !u.IsAbs() {
		return
	}
	if !strings.EqualFold(u.Scheme, t.scheme) || !sameHostPort(u, t) {
		return
	}
	path := u.EscapedPath()
	if t.basePath != "" {
		rest, ok := strings.CutPrefix(path, t.basePath)
		if !ok || (rest != "" && rest[0] != '/') {
			return
		}
		path = rest
	}
	if path == "" {
		path = "/"
	}
	nu := url.URL{Scheme: "http", Host: agentHost, RawQuery: u.RawQuery, Fragment: u.Fragment}
	nu.Path, _ = url.PathUnescape(path)
	nu.RawPath = path
	h.Set("Location", nu.String())
}

func sameHostPort(u *url.URL, t *target) bool {
	if !strings.EqualFold(strings.TrimSuffix(u.Hostname(), "."), t.host) {
		return false
	}
	port := u.Port()
	if port == "" {
		port = defaultPort(strings.ToLower(u.Scheme))
	}
	return port == t.port
}

// event fills the fields every event of an admitted request shares.
func (p *Proxy) event(st *reqState, kind string) auditdb.Event {
	return auditdb.Event{
		Kind:           kind,
		RequestID:      st.requestID,
		Profile:        st.profile,
		Client:         st.client,
		Method:         st.method,
		Host:           st.host,
		Path:           st.path,
		Query:          st.query,
		KeyFingerprint: st.prof.Fingerprint,
	}
}

// finish records the response event and writes the request's log line.
// It runs in its own goroutine, tracked so Close waits for it: the agent
// already has its response and need not wait for the commit (it is
// batched with the next request events by the group-commit writer). The
// request event was committed before forwarding, so a crash here leaves
// the call visible as "incomplete", never missing.
func (p *Proxy) finish(st *reqState, status int, code, outcome string, bytesOut int64, cause error) {
	dur := p.now().Sub(st.start)
	// The response event carries only what the request event does not:
	// the calls view takes method, host, path, client and key fingerprint
	// from the request row (smaller rows, fewer pages per commit).
	ev := auditdb.Event{Kind: auditdb.KindResponse, RequestID: st.requestID, Profile: st.profile}
	ev.Status = status
	ev.Code = code
	ev.Outcome = outcome
	ev.BytesIn = atomic.LoadInt64(&st.bytesIn)
	ev.BytesOut = bytesOut
	ev.DurationMS = durMS(dur)
	p.pending.add()
	go func() {
		defer p.pending.done()
		ctx, cancel := context.WithTimeout(context.Background(), p.auditTimeout)
		err := p.rec.Record(ctx, ev)
		cancel()
		// Only now may another call reuse the id: its request row must
		// come after this response row (see Proxy.inflight).
		p.inflight.Delete(ev.RequestID)
		if err != nil {
			p.log.Error().Err(err).Str(logKeyRequestID, ev.RequestID).Msg("record response event")
		}
		lvl := p.log.Info()
		if outcome != auditdb.OutcomeForwarded {
			lvl = p.log.Warn().AnErr("cause", cause)
		}
		lvl.Str(logKeyRequestID, ev.RequestID).
			Str(logKeyProfile, ev.Profile).
			Str(logKeyMethod, st.method).
			Str(logKeyPath, st.path).
			Int(logKeyStatus, status).
			Str(logKeyCode, code).
			Str(logKeyOutcome, outcome).
			Float64(logKeyDurMS, ev.DurationMS).
			Msg("request")
		if p.metrics != nil {
			p.metrics.requests.WithLabelValues(ev.Profile, outcome).Inc()
		}
	}()
}

// copyBufPool holds copy buffers for response bodies: a fresh 32 KiB
// buffer per response was a fifth of the CPU in GC (PERFORMANCE.md).
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// responseBody wraps the upstream body. It counts bytes, flushes streamed
// responses (SSE, chunked) after every write, removes the key from
// trailers, and on Close finishes the request: the outcome is forwarded
// (read to EOF), upstream_error (the upstream failed mid-body) or
// client_aborted (the agent went away).
//
// goproxy copies it with io.Copy, which uses WriteTo, and closes it twice
// (explicitly and deferred): Close is idempotent.
type responseBody struct {
	rc     io.ReadCloser
	p      *Proxy
	st     *reqState
	resp   *http.Response
	key    string
	stream bool
	ctx    context.Context

	n        int64
	eof      bool
	readErr  error
	writeErr error
	closed   atomic.Bool
}

func (b *responseBody) Read(buf []byte) (int, error) {
	n, err := b.rc.Read(buf)
	b.n += int64(n)
	b.noteReadErr(err)
	return n, err
}

func (b *responseBody) noteReadErr(err error) {
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		b.eof = true
		if len(b.resp.Trailer) > 0 {
			scrubResponseHeader(b.resp.Trailer, b.key)
		}
	default:
		b.readErr = err
	}
}

// WriteTo copies the body to w with a pooled buffer.
func (b *responseBody) WriteTo(w io.Writer) (int64, error) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	flusher, _ := w.(http.Flusher)
	if b.stream {
		// Send the headers now: an event stream may be silent for a long
		// time before its first event. goproxy hands SSE bodies a writer
		// that flushes after every Write but is no http.Flusher itself; an
		// empty Write makes it flush.
		if flusher != nil {
			flusher.Flush()
		} else if _, err := w.Write(nil); err != nil {
			b.writeErr = err
			return 0, err
		}
	}
	var written int64
	for {
		nr, er := b.rc.Read(buf)
		if nr > 0 {
			nw, ew := w.Write(buf[:nr])
			written += int64(nw)
			b.n += int64(nw)
			if ew == nil && nw < nr {
				ew = io.ErrShortWrite
			}
			if ew != nil {
				b.writeErr = ew
				return written, ew
			}
			if b.stream && flusher != nil {
				flusher.Flush()
			}
		}
		if er != nil {
			b.noteReadErr(er)
			if errors.Is(er, io.EOF) {
				return written, nil
			}
			return written, er
		}
	}
}

// Close closes the upstream body once and finishes the request. It
// reports no error: goproxy would print it with Warnf.
func (b *responseBody) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	_ = b.rc.Close()
	outcome, code := auditdb.OutcomeForwarded, ""
	var cause error
	switch {
	case b.eof:
	case b.writeErr != nil || b.ctx.Err() != nil:
		outcome, cause = auditdb.OutcomeClientAborted, b.writeErr
	case b.readErr != nil:
		outcome, code, cause = auditdb.OutcomeUpstreamError, CodeUpstreamUnreachable, b.readErr
	default:
		// Closed before EOF without an error: goproxy stopped copying,
		// which only happens when the agent is gone.
		outcome = auditdb.OutcomeClientAborted
	}
	b.p.finish(b.st, b.resp.StatusCode, code, outcome, b.n, cause)
	return nil
}

// countingReader counts request body bytes going upstream and notes a
// body the agent sent broken (e.g. a chunk line ending in a bare LF, which
// Go's server only detects while the body is read).
type countingReader struct {
	rc io.ReadCloser
	st *reqState
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	atomic.AddInt64(&c.st.bytesIn, int64(n))
	if err != nil && !errors.Is(err, io.EOF) {
		c.st.bodyBroken.Store(true)
	}
	return n, err
}

func (c *countingReader) Close() error { return c.rc.Close() }

// refusalResponse builds the response for a refusal (DESIGN.md "Refusals").
func refusalResponse(r *http.Request, ref *Refusal, requestID string, forward bool) *http.Response {
	body := refusalBody(ref, requestID)
	h := make(http.Header, 8)
	refusalHeader(h, ref, requestID, len(body), forward)
	return &http.Response{
		StatusCode:    ref.Status,
		Status:        strconv.Itoa(ref.Status) + " " + http.StatusText(ref.Status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
		Close:         r.Method == http.MethodConnect,
	}
}

// claimRequestID makes st's request id unique among calls in flight: an
// agent that reuses its X-Request-Id while the first call is still open
// gets a generated id for the second (returned in X-Request-Id as usual).
func (p *Proxy) claimRequestID(st *reqState) {
	for {
		if _, dup := p.inflight.LoadOrStore(st.requestID, struct{}{}); !dup {
			return
		}
		st.requestID = newRequestID(p.now())
	}
}
