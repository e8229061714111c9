package vault_test

import (
	"testing"

	"github.com/kanbot/kanbot-sidecar/vault"
)

// benchFile is a vault file as `profiles add` writes it (one X25519
// stanza, a short key) and its identity.
func benchFile(b *testing.B) ([]byte, *vault.Identity) {
	id, err := vault.GenerateIdentity()
	if err != nil {
		b.Fatal(err)
	}
	data, err := vault.Encrypt([]byte("kb_bench_key_0123456789abcdef"), nil, id)
	if err != nil {
		b.Fatal(err)
	}
	return data, id
}

// BenchmarkDecrypt is the cost of one vault file at load time.
func BenchmarkDecrypt(b *testing.B) {
	data, id := benchFile(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := vault.Decrypt(data, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecryptAgeIdentity is the same file through age.Decrypt with
// age's own X25519Identity, read to the end: what Decrypt did before it had
// its own X25519 identity.
func BenchmarkDecryptAgeIdentity(b *testing.B) {
	data, id := benchFile(b)
	_, ref := identities(b, id)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ageDecrypt(data, ref); err != nil {
			b.Fatal(err)
		}
	}
}
