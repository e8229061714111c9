package proxy

import (
	"errors"
	"strings"
)

// Path errors; all become path_not_allowed. They are internal: the agent is
// told only that the path is not allowed.
var (
	errPathNotAbsolute    = errors.New("path does not start with /")
	errPathDotSegment     = errors.New("path has a . or .. segment")
	errPathEmptySegment   = errors.New("path has an empty segment (//)")
	errPathBackslash      = errors.New("path has a backslash")
	errPathEncodedSpecial = errors.New("path has an encoded /, \\, ., % or control character")
	errPathBadEscape      = errors.New("path has a malformed %-escape")
	errPathBadByte        = errors.New("path has a byte that must be escaped")
	errPathTooLong        = errors.New("path is too long")
	errPathSemicolon      = errors.New("path has a ; (raw or encoded)")
	errPathNonASCII       = errors.New("path has an encoded byte outside ASCII")
)

// maxPathLen bounds the escaped path; the backend's longest route is far
// shorter and a huge path is only useful to an attacker.
const maxPathLen = 2048

// normalizePath checks an escaped request path and returns it decoded.
//
// It does not rewrite a suspicious path into a harmless one: it refuses it.
// A path the sidecar would clean differently from the backend (or from a
// proxy in between) is how allow-lists are bypassed, so the only paths
// accepted are those whose decoded form has the same segments as the
// escaped form: no "." or ".." segment, no empty segment ("//"), no
// backslash, and no %-escape of '/', '\', '.', '%' or a control character
// (so no %2f, %5c, %2e, %252e double encoding, %00). It also refuses a
// ';', raw or encoded: servers such as Tomcat read "/a/..;/b" as a path
// parameter on a ".." segment and resolve it to the parent, and Kanbot's
// routes never use one. And it refuses an escape that decodes to a byte
// outside ASCII: Kanbot's routes are ASCII (UUIDs and words), while a
// server that decodes overlong UTF-8 (%c0%ae) or normalises Unicode
// (fullwidth dot %ef%bc%8e) can turn such bytes into '.' or '/'. Other
// escapes (%20, %3F) are decoded. The decoded path is what allow_paths is
// matched against.
func normalizePath(escaped string) (string, error) {
	if len(escaped) > maxPathLen {
		return "", errPathTooLong
	}
	if escaped == "" || escaped[0] != '/' {
		return "", errPathNotAbsolute
	}
	hasEscape := false
	segStart := 1
	for i := 1; i <= len(escaped); i++ {
		if i == len(escaped) || escaped[i] == '/' {
			seg := escaped[segStart:i]
			switch seg {
			case ".", "..":
				return "", errPathDotSegment
			case "":
				if i != len(escaped) { // a trailing slash is fine, "//" is not
					return "", errPathEmptySegment
				}
			}
			segStart = i + 1
			continue
		}
		c := escaped[i]
		switch {
		case c == '\\':
			return "", errPathBackslash
		case c == ';':
			return "", errPathSemicolon
		case c == '%':
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return "", errPathBadEscape
			}
			d := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			if d == '/' || d == '\\' || d == '.' || d == '%' || d < 0x20 || d == 0x7f {
				return "", errPathEncodedSpecial
			}
			if d == ';' {
				return "", errPathSemicolon
			}
			if d >= 0x80 {
				return "", errPathNonASCII
			}
			hasEscape = true
			i += 2
		case c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '^' || c == '`' || c == '{' || c == '|' || c == '}' || c == '#' || c == '?':
			return "", errPathBadByte
		}
	}
	if !hasEscape {
		return escaped, nil
	}
	var sb strings.Builder
	sb.Grow(len(escaped))
	for i := 0; i < len(escaped); i++ {
		if escaped[i] == '%' {
			sb.WriteByte(unhex(escaped[i+1])<<4 | unhex(escaped[i+2]))
			i += 2
			continue
		}
		sb.WriteByte(escaped[i])
	}
	return sb.String(), nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// pathAllowed reports whether the decoded path is under one of prefixes. A
// prefix ending in "/" matches everything below it; any other prefix
// matches itself and what lies below it as a whole segment, so "/health"
// allows "/health" and "/health/db" but not "/healthz" or "/health-admin"
// (an unanchored prefix is the classic allow-list bypass).
//
// Paths under KeyManagementPrefix are the exception: a broad prefix such as
// the default "/api/v1/" does not reach them, only an allow_paths entry
// that itself lies under KeyManagementPrefix does.
func pathAllowed(path string, prefixes []string) bool {
	reserved := underKeyManagement(path)
	for _, p := range prefixes {
		if reserved && !underKeyManagement(p) {
			continue
		}
		if strings.HasSuffix(p, "/") {
			if strings.HasPrefix(path, p) {
				return true
			}
			continue
		}
		if path == p || (strings.HasPrefix(path, p) && path[len(p)] == '/') {
			return true
		}
	}
	return false
}

// KeyManagementPrefix is where Kanbot mints, lists and revokes API keys
// (POST /api/v1/auth/api-keys answers with a brand-new key in its body). An
// agent that could reach it would hold a working key of the person it acts
// for, outside the sidecar's audit, rate limit and allow-lists, so it is
// refused unless a profile lists a path under it explicitly.
const KeyManagementPrefix = "/api/v1/auth"

func underKeyManagement(p string) bool {
	return p == KeyManagementPrefix || strings.HasPrefix(p, KeyManagementPrefix+"/")
}
