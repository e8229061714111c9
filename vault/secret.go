package vault

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/rs/zerolog"
)

// Secret holds a decrypted API key. Every way of printing or marshalling it
// yields [REDACTED]; Reveal is the only way to the bytes, and only the code
// that injects the key into an upstream request calls it.
//
// The zero Secret is empty. A Secret is immutable and safe for concurrent use.
type Secret struct{ b []byte }

const redacted = "[REDACTED]"

// NewSecret returns a Secret holding a copy of key, so that later changes
// to the caller's slice (or zeroing it) do not affect the Secret.
func NewSecret(key []byte) Secret {
	return Secret{b: append([]byte(nil), key...)}
}

// String implements fmt.Stringer and never reveals the key.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer (%#v) and never reveals the key.
func (Secret) GoString() string { return redacted }

// Format makes every fmt verb (%d, %x, %q, %+v too) print [REDACTED].
func (Secret) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// MarshalText implements encoding.TextMarshaler and never reveals the key.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON implements json.Marshaler and never reveals the key.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalZerologObject implements zerolog.LogObjectMarshaler.
func (Secret) MarshalZerologObject(e *zerolog.Event) { e.Str("secret", redacted) }

// Reveal returns the key. It is for injecting the key into an upstream
// request and nothing else.
func (s Secret) Reveal() string { return string(s.b) }

// Len reports the key's length in bytes; zero means no key.
func (s Secret) Len() int { return len(s.b) }

// Equal reports whether two secrets hold the same key.
func (s Secret) Equal(o Secret) bool { return string(s.b) == string(o.b) }

// Fingerprint identifies the key version without revealing it:
// "sha256:" + the first 12 hex digits of SHA-256 of the key (DESIGN.md).
func (s Secret) Fingerprint() string { return Fingerprint(s.b) }

// Fingerprint returns "sha256:" + the first 12 hex digits of SHA-256(key).
func Fingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return "sha256:" + hex.EncodeToString(sum[:6])
}
