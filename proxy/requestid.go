package proxy

import (
	"crypto/rand"
	"time"
)

// saneRequestID reports whether an agent's X-Request-Id may be kept:
// 1 to 64 characters from [A-Za-z0-9._-]. Anything else (spaces, quotes,
// newlines, a very long value) is replaced, so the id is safe to log, to
// store and to echo in a header.
func saneRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newRequestID returns a ULID-shaped id: 48 bits of Unix milliseconds and
// 80 random bits in Crockford base32 (26 characters). Ids sort by time, so
// audit rows and logs line up, and they need nothing beyond the standard
// library.
func newRequestID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	b[0] = byte(ms >> 40)
	b[1] = byte(ms >> 32)
	b[2] = byte(ms >> 24)
	b[3] = byte(ms >> 16)
	b[4] = byte(ms >> 8)
	b[5] = byte(ms)
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails (Go 1.24+)
	var out [26]byte
	// 128 bits → 26 base32 digits, most significant first (the first digit
	// carries 3 bits).
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
		uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
