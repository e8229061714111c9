package vault_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/vault"
)

// FuzzDecrypt feeds arbitrary vault file contents to Decrypt: it must never
// panic, and an error must never quote the input (a key written by mistake
// where a vault file belongs must not reach a log).
func FuzzDecrypt(f *testing.F) {
	id, err := vault.GenerateIdentity()
	if err != nil {
		f.Fatal(err)
	}
	good, err := vault.Encrypt([]byte("kb_seed_key"), nil, id)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("age-encryption.org/v1\n-> X25519 abc\nxyz\n--- mac\n"))
	f.Add([]byte("-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n"))
	f.Add([]byte("kb_plain_key_zzzzzzzzzzzz\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := vault.Decrypt(data, id)
		if err != nil {
			if len(data) >= 12 && strings.Contains(withoutOurWording(err), string(data)) {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		if s.Len() == 0 {
			t.Fatal("Decrypt returned an empty key without an error")
		}
	})
}

// FuzzParseIdentity: identity files never panic the parser and errors never
// quote the input. The passphrase source fails: a mutated scrypt stanza may
// ask for work factor 2^22 (4 GiB, seconds per try), which is the file
// owner's own choice in real use but would stall the fuzzer.
func FuzzParseIdentity(f *testing.F) {
	id, err := vault.GenerateIdentity()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(id.Marshal(time.Unix(0, 0)))
	enc, err := id.MarshalEncrypted(time.Unix(0, 0), []byte("pw"), 2)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add([]byte("# comment\nAGE-SECRET-KEY-1QQQQ\n"))
	f.Add([]byte("AGE-SECRET-KEY-PQ-1ZZZ\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := vault.ParseIdentity(data, func() ([]byte, error) { return nil, errors.New("no passphrase while fuzzing") })
		if err != nil {
			if in := strings.TrimSpace(string(data)); len(in) >= 16 && strings.Contains(withoutOurWording(err), in) {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		if !strings.HasPrefix(got.Recipient(), "age1") {
			t.Fatalf("Recipient() = %q", got.Recipient())
		}
	})
}

// withoutOurWording removes the package's fixed error texts from err's
// message: a fuzz input that merely repeats our own wording (ErrNotIdentity
// names the AGE-SECRET-KEY-1 prefix, for one) is not quoted input.
func withoutOurWording(err error) string {
	msg := err.Error()
	for _, s := range []error{vault.ErrNotIdentity, vault.ErrWrongPassphrase, vault.ErrNoPassphrase,
		vault.ErrWrongIdentity, vault.ErrCorrupt, vault.ErrEmptyKey} {
		msg = strings.ReplaceAll(msg, s.Error(), "")
	}
	return msg
}
