package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Refusal codes: the public table of DESIGN.md ("Refusals"). An agent reads
// the code from the X-Kanbot-Sidecar-Error header or the JSON body.
const (
	CodeBadHost             = "bad_host"
	CodeBrowserRequest      = "browser_request"
	CodeAmbiguousFraming    = "ambiguous_framing"
	CodeClientUnauthorized  = "client_unauthorized"
	CodeProfileNotAllowed   = "profile_not_allowed"
	CodeMissingProfile      = "missing_profile"
	CodeBadProfileHeader    = "bad_profile_header"
	CodeUnknownProfile      = "unknown_profile"
	CodeForeignCredential   = "foreign_credential"
	CodeUpstreamMismatch    = "upstream_mismatch"
	CodeMethodNotAllowed    = "method_not_allowed"
	CodePathNotAllowed      = "path_not_allowed"
	CodeRateLimited         = "rate_limited"
	CodeAuditUnavailable    = "audit_unavailable"
	CodeConnectNotSupported = "connect_not_supported"
	CodeUpstreamUnreachable = "upstream_unreachable"
	CodeUpstreamTimeout     = "upstream_timeout"
)

// Header names the sidecar reads or writes.
const (
	HeaderProfile     = "X-Kanbot-Profile"
	HeaderClientToken = "X-Kanbot-Client-Token"
	HeaderError       = "X-Kanbot-Sidecar-Error"
	HeaderRequestID   = "X-Request-Id"
)

// Refusal ends a request with one of the codes in DESIGN.md. Code, Status
// and Message go to the agent; Err is the internal cause and is only logged.
// Message never holds a key, a header value or an upstream error string.
type Refusal struct {
	Code    string
	Status  int
	Message string
	Err     error
	// RetryAfter, in whole seconds, is sent as Retry-After when positive
	// (rate_limited).
	RetryAfter int
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Message }
func (r *Refusal) Unwrap() error { return r.Err }

func refuse(code string, status int, msg string) *Refusal {
	return &Refusal{Code: code, Status: status, Message: msg}
}

// asRefusal is the only place that decides what an agent is told about a
// failure. Transport errors are classified here and their text never reaches
// the agent: it can carry upstream addresses or, worse, a URL query.
func asRefusal(err error) *Refusal {
	var r *Refusal
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.As(err, &r):
		return r
	case errors.As(err, &opErr) && opErr.Op == "dial":
		// A dial timeout is unreachability, not a slow upstream.
		return &Refusal{Code: CodeUpstreamUnreachable, Status: http.StatusBadGateway, Message: "upstream unreachable", Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return &Refusal{Code: CodeUpstreamTimeout, Status: http.StatusGatewayTimeout, Message: "upstream did not answer in time", Err: err}
	default: // dial, TLS, reset: never echo the transport's error text
		return &Refusal{Code: CodeUpstreamUnreachable, Status: http.StatusBadGateway, Message: "upstream unreachable", Err: err}
	}
}

// refusalBody renders the JSON body by hand: the three strings are escaped
// with appendJSONString, and avoiding encoding/json keeps refusals cheap
// under a flood of bad requests.
func refusalBody(ref *Refusal, requestID string) []byte {
	b := make([]byte, 0, 96+len(ref.Message)+len(requestID))
	b = append(b, `{"error":{"code":`...)
	b = appendJSONString(b, ref.Code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, ref.Message)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, requestID)
	b = append(b, "}}\n"...)
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal, escaping quotes,
// backslashes, control characters and the HTML-sensitive <, >, &.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// refusalHeader fills h with the headers every refusal carries.
func refusalHeader(h http.Header, ref *Refusal, requestID string, bodyLen int, forward bool) {
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(bodyLen)}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Cache-Control"] = []string{"no-store"}
	h[HeaderError] = []string{ref.Code}
	h[HeaderRequestID] = []string{requestID}
	if ref.RetryAfter > 0 {
		h["Retry-After"] = []string{strconv.Itoa(ref.RetryAfter)}
	}
	if ref.Status == http.StatusProxyAuthRequired && forward {
		h["Proxy-Authenticate"] = []string{`Basic realm="kanbot-sidecar"`}
	}
}

// quoteName quotes an agent-supplied name for a refusal message, cutting it
// short and replacing bytes outside printable ASCII so that a message stays
// one readable line.
func quoteName(s string) string {
	const max = 64
	cut := len(s) > max
	if cut {
		s = s[:max]
	}
	var sb strings.Builder
	sb.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			sb.WriteByte('?')
			continue
		}
		sb.WriteByte(c)
	}
	if cut {
		sb.WriteString("...")
	}
	sb.WriteByte('"')
	return sb.String()
}
