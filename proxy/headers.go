package proxy

import (
	"net/http"
	"net/textproto"
	"strings"
)

// headerClass says what a request header means to the sidecar. Header names
// are compared with sameHeaderName, so look-alikes (X_API_Key, x-kanbot_profile)
// fall into the class of the header they imitate (oauth2-proxy
// CVE-2025-64484, Pomerium CVE-2023-33189): some servers and frameworks fold
// '_' into '-' and would read them as the real thing.
type headerClass uint8

const (
	hdrOther headerClass = iota
	hdrProfile
	hdrClientToken
	hdrAPIKey // X-API-Key or the configured inject_header
	hdrAuthorization
	hdrCookie
	hdrProxyAuthorization
	hdrRequestID
	hdrHopByHop // Connection, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Connection, Proxy-Authenticate
	hdrSidecarError
)

// hopByHop lists the hop-by-hop headers of RFC 9110 §7.6.1 plus the
// non-standard Proxy-Connection that curl sends.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// sameHeaderName reports whether a and b name the same header once case is
// ignored and '_' is read as '-'. It allocates nothing: it runs for every
// header of every request.
func sameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if foldHeaderByte(a[i]) != foldHeaderByte(b[i]) {
			return false
		}
	}
	return true
}

func foldHeaderByte(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c + ('a' - 'A')
	case c == '_':
		return '-'
	}
	return c
}

// headerClassifier maps header names to classes. It is built once per
// Proxy; injectHeader is the configured inject_header.
type headerClassifier struct {
	injectHeader string
}

func (hc *headerClassifier) classify(name string) headerClass {
	// Dispatch on length first: nearly every header an agent sends is
	// decided by one length comparison.
	switch len(name) {
	case len("X-Kanbot-Profile"):
		if sameHeaderName(name, HeaderProfile) {
			return hdrProfile
		}
	case len("X-Kanbot-Client-Token"):
		if sameHeaderName(name, HeaderClientToken) {
			return hdrClientToken
		}
	case len("X-API-Key"):
		if sameHeaderName(name, "X-API-Key") {
			return hdrAPIKey
		}
	case len("Authorization"):
		if sameHeaderName(name, "Authorization") {
			return hdrAuthorization
		}
	case len("Cookie"):
		if sameHeaderName(name, "Cookie") {
			return hdrCookie
		}
	case len("Proxy-Authorization"):
		if sameHeaderName(name, "Proxy-Authorization") {
			return hdrProxyAuthorization
		}
	case len("X-Request-Id"):
		if sameHeaderName(name, HeaderRequestID) {
			return hdrRequestID
		}
	case len("X-Kanbot-Sidecar-Error"):
		if sameHeaderName(name, HeaderError) {
			return hdrSidecarError
		}
	}
	if len(name) == len(hc.injectHeader) && sameHeaderName(name, hc.injectHeader) {
		return hdrAPIKey
	}
	for _, h := range hopByHop {
		if sameHeaderName(name, h) {
			return hdrHopByHop
		}
	}
	return hdrOther
}

// connectionNamed reports whether name is listed in one of the Connection
// header values (comma-separated tokens), compared like sameHeaderName.
func connectionNamed(connection []string, name string) bool {
	for _, v := range connection {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if sameHeaderName(textproto.TrimString(tok), name) {
				return true
			}
		}
	}
	return false
}

// connectionValues returns the values of every Connection header and its
// look-alikes.
func connectionValues(h http.Header) []string {
	if len(h) == 0 {
		return nil
	}
	var out []string
	for k, vs := range h {
		if len(k) == len("Connection") && sameHeaderName(k, "Connection") {
			out = append(out, vs...)
		}
	}
	return out
}

// scrubResponseHeader removes from an upstream response what must not reach
// the agent: hop-by-hop headers and those named in Connection, a forged
// X-Kanbot-Sidecar-Error (only the sidecar speaks for the sidecar), and any
// value that contains the injected key (an upstream that echoes it must not
// hand it to the agent).
func scrubResponseHeader(h http.Header, key string) {
	conn := connectionValues(h)
	for k, vs := range h {
		if isHopByHopName(k) || sameHeaderName(k, HeaderError) || (len(conn) > 0 && connectionNamed(conn, k)) {
			delete(h, k)
			continue
		}
		if key == "" {
			continue
		}
		if sameHeaderName(k, key) {
			// A header *named* like the key is absurd but must not leak either.
			delete(h, k)
			continue
		}
		for _, v := range vs {
			if containsFold(v, key) {
				h[k] = withoutKey(vs, key)
				if len(h[k]) == 0 {
					delete(h, k)
				}
				break
			}
		}
	}
}

func withoutKey(vs []string, key string) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if !containsFold(v, key) {
			out = append(out, v)
		}
	}
	return out
}

func isHopByHopName(k string) bool {
	for _, h := range hopByHop {
		if sameHeaderName(k, h) {
			return true
		}
	}
	return false
}

// containsFold reports whether v contains key in any letter case: an
// upstream that echoes the key lower- or upper-cased still leaks most of it.
func containsFold(v, key string) bool {
	for i := 0; i+len(key) <= len(v); i++ {
		if strings.EqualFold(v[i:i+len(key)], key) {
			return true
		}
	}
	return false
}
