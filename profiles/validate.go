package profiles

import (
	"errors"
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"strconv"
	"strings"

	"github.com/kanbot/kanbot-sidecar/vault"
)

// Limits on profile metadata, so that profiles.yaml stays small and every
// value is safe to use in a request or a log line.
const (
	MaxRate        = 1e6
	MaxBurst       = 1 << 20
	maxEmailLen    = 254
	maxPathLen     = 1024
	maxListLen     = 256
	fingerprintLen = len("sha256:") + 12
)

// AllowedMethods are the methods a profile may list in allow_methods.
// CONNECT is refused by the proxy anyway and TRACE has no use here.
var AllowedMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// Validate checks every field of m, including the name, and returns the
// first problem found.
func (m *Meta) Validate() error {
	if err := CheckName(m.Name); err != nil {
		return err
	}
	if err := CheckEmail(m.Email); err != nil {
		return err
	}
	if m.Upstream != "" {
		if err := CheckUpstream(m.Upstream); err != nil {
			return err
		}
	}
	if math.IsNaN(m.Rate) || m.Rate < 0 || m.Rate > MaxRate {
		return fmt.Errorf("rate %v: must be between 0 (the default) and %g requests/s", m.Rate, float64(MaxRate))
	}
	if m.Burst < 0 || m.Burst > MaxBurst {
		return fmt.Errorf("burst %d: must be between 0 (the default) and %d", m.Burst, MaxBurst)
	}
	if len(m.AllowPaths) > maxListLen || len(m.AllowMethods) > maxListLen {
		return fmt.Errorf("allow_paths and allow_methods hold at most %d entries each", maxListLen)
	}
	for _, p := range m.AllowPaths {
		if err := CheckPathPrefix(p); err != nil {
			return err
		}
	}
	for _, meth := range m.AllowMethods {
		if err := CheckMethod(meth); err != nil {
			return err
		}
	}
	if err := checkFingerprint(m.KeyFingerprint); err != nil {
		return err
	}
	if m.CreatedAt.IsZero() {
		return errors.New("created_at is missing")
	}
	return nil
}

// CheckEmail accepts a bare address ("alice@example.com"): no display name,
// no angle brackets, no spaces.
func CheckEmail(s string) error {
	if s == "" {
		return errors.New("email is required")
	}
	if len(s) > maxEmailLen {
		return fmt.Errorf("email is longer than %d bytes", maxEmailLen)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s, "@") {
		return fmt.Errorf("email %s: want a bare address like alice@example.com", quoteValue(s))
	}
	return nil
}

// CheckUpstream accepts an absolute http or https URL with a host, a port
// (if any) from 1 to 65535, a clean path (see checkUpstreamPath) and no
// credentials, query, fragment, space or control character: the Kanbot base
// URL of a profile.
func CheckUpstream(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("upstream %s: not a URL", quoteValue(s))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("upstream %s: scheme must be http or https", quoteValue(s))
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("upstream %s: no host", quoteValue(s))
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("upstream %s: must not contain credentials, a query or a fragment", quoteValue(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return fmt.Errorf("upstream %s: must be printable ASCII without spaces or backslashes", quoteValue(s))
		}
	}
	if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("upstream %s: empty port", quoteValue(s))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("upstream %s: port must be between 1 and 65535", quoteValue(s))
		}
	}
	if err := checkUpstreamPath(u); err != nil {
		return fmt.Errorf("upstream %s: %v", quoteValue(s), err)
	}
	return nil
}

// checkUpstreamPath accepts an upstream's base path if it is empty, "/" or
// a clean absolute path: no empty, "." or ".." segment, decoded or not, so
// that what the proxy joins a request path onto is what the profile says.
func checkUpstreamPath(u *url.URL) error {
	for _, p := range []string{u.Path, u.EscapedPath()} {
		if p == "" || p == "/" {
			continue
		}
		if p[0] != '/' {
			return errors.New("path must start with /")
		}
		segs := strings.Split(strings.TrimSuffix(p[1:], "/"), "/")
		for _, seg := range segs {
			switch seg {
			case "":
				return errors.New("path must not contain an empty segment (//)")
			case ".", "..":
				return errors.New("path must not contain . or .. segments")
			}
		}
		for i := 0; i < len(p); i++ {
			if c := p[i]; c <= ' ' || c >= 0x7f {
				return errors.New("path must be printable ASCII without spaces, even %-encoded")
			}
		}
		if strings.ContainsAny(p, "\\;") {
			return errors.New(`path must not contain \ or ;`)
		}
	}
	return nil
}

// CheckMethod accepts an upper-case method from AllowedMethods.
func CheckMethod(s string) error {
	for _, m := range AllowedMethods {
		if s == m {
			return nil
		}
	}
	return fmt.Errorf("method %s: want one of %s (upper case)", quoteValue(s), strings.Join(AllowedMethods, " "))
}

// CheckPathPrefix accepts a normalised absolute path prefix ("/api/v1/"):
// printable ASCII, no query, fragment, percent-encoding, backslash, empty
// segment or dot segment, so that prefix matching after the proxy's path
// normalisation means what it says.
func CheckPathPrefix(p string) error {
	bad := func(why string) error { return fmt.Errorf("allow path %s: %s", quoteValue(p), why) }
	if !strings.HasPrefix(p, "/") {
		return bad("must start with /")
	}
	if len(p) > maxPathLen {
		return bad(fmt.Sprintf("longer than %d bytes", maxPathLen))
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f {
			return bad("must be printable ASCII without spaces")
		}
	}
	if strings.ContainsAny(p, `?#%\`) {
		return bad(`must not contain ?, #, % or \`)
	}
	if strings.Contains(p, "//") {
		return bad("must not contain an empty segment (//)")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return bad("must not contain . or .. segments")
		}
	}
	return nil
}

// CheckKey accepts a key for a vault file: non-empty, at most
// vault.MaxKeySize bytes, printable ASCII without spaces (it travels in an
// HTTP header). Errors never quote the key.
func CheckKey(key []byte) error {
	if len(key) == 0 {
		return errors.New("key is empty")
	}
	if len(key) > vault.MaxKeySize {
		return fmt.Errorf("key is longer than %d bytes", vault.MaxKeySize)
	}
	for _, c := range key {
		if c <= ' ' || c >= 0x7f {
			return errors.New("key must be printable ASCII without spaces or control characters (was more than one line given?)")
		}
	}
	return nil
}

func checkFingerprint(fp string) error {
	if len(fp) != fingerprintLen || !strings.HasPrefix(fp, "sha256:") ||
		strings.Trim(fp[len("sha256:"):], "0123456789abcdef") != "" {
		return fmt.Errorf("key_fingerprint %s: want sha256: and 12 lower-case hex digits", quoteValue(fp))
	}
	return nil
}
