package vault_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/kanbot/kanbot-sidecar/vault"
)

// identities returns our X25519 identity for id and age's own, failing
// the test if Decrypt would not use ours.
func identities(t testing.TB, id *vault.Identity) (ours, ref age.Identity) {
	t.Helper()
	ours, ref, err := vault.DecryptingIdentity(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, isAge := ours.(*age.X25519Identity); isAge {
		t.Fatal("Decrypt uses age's X25519Identity, not ours")
	}
	return ours, ref
}

// ageDecrypt is age.Decrypt of a binary or armored file, read to the end:
// what vault.Decrypt did before it had its own X25519 identity.
func ageDecrypt(data []byte, id age.Identity) ([]byte, error) {
	var src io.Reader = bytes.NewReader(data)
	if t := bytes.TrimLeft(data, " \t\r\n"); bytes.HasPrefix(t, []byte(armor.Header)) {
		src = armor.NewReader(bytes.NewReader(t)) // as vault.Decrypt detects armor
	}
	r, err := age.Decrypt(src, id)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// sameOutcome fails unless both results are the same plaintext, or both
// are errors of the same kind with the same text.
func sameOutcome(t testing.TB, what string, got []byte, gotErr error, want []byte, wantErr error) {
	t.Helper()
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("%s: ours: %v; age's: %v", what, gotErr, wantErr)
	case gotErr != nil:
		if errors.Is(gotErr, age.ErrIncorrectIdentity) != errors.Is(wantErr, age.ErrIncorrectIdentity) ||
			gotErr.Error() != wantErr.Error() {
			t.Fatalf("%s: ours fails with %q, age's with %q", what, gotErr, wantErr)
		}
	case !bytes.Equal(got, want):
		t.Fatalf("%s: plaintexts differ", what)
	}
}

// TestX25519IdentityMatchesAge: files made by age.Encrypt (through
// vault.Encrypt), by the age command (binary and armored), to several
// recipients in every position, or to others only, decrypt the same with
// our identity and with age's X25519Identity.
func TestX25519IdentityMatchesAge(t *testing.T) {
	t.Parallel()
	id := mustIdentity(t)
	ours, ref := identities(t, id)
	other1, other2 := mustIdentity(t).Recipient(), mustIdentity(t).Recipient()
	files := map[string][]byte{}
	var err error
	if files["vault.Encrypt"], err = vault.Encrypt([]byte(canary), nil, id); err != nil {
		t.Fatal(err)
	}
	if files["vault.Encrypt, 3 recipients"], err = vault.Encrypt([]byte(canary), []string{other1, other2}, id); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 5000) // several 64 KiB chunks
	for name, args := range map[string][]string{
		"age -r":                  {"-r", id.Recipient()},
		"age -a -r":               {"-a", "-r", id.Recipient()},
		"age, ours last of 3":     {"-r", other1, "-r", other2, "-r", id.Recipient()},
		"age, ours in the middle": {"-r", other1, "-r", id.Recipient(), "-r", other2},
		"age, not for us":         {"-r", other1, "-r", other2},
	} {
		files[name] = runAge(t, ageBin, []byte(canary), args...)
	}
	files["age, 80 KB"] = runAge(t, ageBin, big, "-r", other1, "-r", id.Recipient())
	for name, data := range files {
		got, gotErr := ageDecrypt(data, ours)
		want, wantErr := ageDecrypt(data, ref)
		sameOutcome(t, name, got, gotErr, want, wantErr)
		if name == "age, not for us" {
			var noMatch *age.NoIdentityMatchError
			if !errors.As(gotErr, &noMatch) {
				t.Errorf("%s: err = %v, want age.NoIdentityMatchError", name, gotErr)
			}
			if _, err := vault.Decrypt(data, id); !errors.Is(err, vault.ErrWrongIdentity) {
				t.Errorf("%s: vault.Decrypt = %v, want ErrWrongIdentity", name, err)
			}
			continue
		}
		if gotErr != nil {
			t.Fatalf("%s: %v", name, gotErr)
		}
		if name != "age, 80 KB" {
			if string(got) != canary {
				t.Errorf("%s: wrong plaintext", name)
			}
			if s, err := vault.Decrypt(data, id); err != nil || s.Reveal() != canary {
				t.Errorf("%s: vault.Decrypt = %v", name, err)
			}
		}
	}
}

// x25519Stanza returns the (first) X25519 stanza of a binary age file.
func x25519Stanza(t testing.TB, data []byte) *age.Stanza {
	t.Helper()
	for line := range strings.Lines(string(data)) {
		if arg, ok := strings.CutPrefix(line, "-> X25519 "); ok {
			rest := string(data[strings.Index(string(data), line)+len(line):])
			body, _, _ := strings.Cut(rest, "\n")
			b, err := base64.RawStdEncoding.DecodeString(body)
			if err != nil {
				t.Fatal(err)
			}
			return &age.Stanza{Type: "X25519", Args: []string{strings.TrimSpace(arg)}, Body: b}
		}
	}
	t.Fatal("no X25519 stanza")
	return nil
}

// TestX25519IdentityTamperedStanzas: every malformed or altered stanza
// fails with ours exactly as with age's identity (same error text, same
// ErrIncorrectIdentity-ness), and a tampered file never decrypts.
func TestX25519IdentityTamperedStanzas(t *testing.T) {
	t.Parallel()
	id := mustIdentity(t)
	ours, ref := identities(t, id)
	data, err := vault.Encrypt([]byte(canary), nil, id)
	if err != nil {
		t.Fatal(err)
	}
	good := x25519Stanza(t, data)
	share := good.Args[0]
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }
	shareBytes, _ := base64.RawStdEncoding.DecodeString(share)
	zero := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	cases := map[string]*age.Stanza{
		"good":               good,
		"other type":         {Type: "x25519", Args: good.Args, Body: good.Body},
		"scrypt type":        {Type: "scrypt", Args: []string{"c2FsdA", "10"}, Body: good.Body},
		"no argument":        {Type: "X25519", Body: good.Body},
		"two arguments":      {Type: "X25519", Args: []string{share, share}, Body: good.Body},
		"padded share":       {Type: "X25519", Args: []string{share + "="}, Body: good.Body},
		"newline in share":   {Type: "X25519", Args: []string{share[:10] + "\n" + share[10:]}, Body: good.Body},
		"non-base64 share":   {Type: "X25519", Args: []string{"!" + share[1:]}, Body: good.Body},
		"short share":        {Type: "X25519", Args: []string{base64.RawStdEncoding.EncodeToString(shareBytes[:31])}, Body: good.Body},
		"long share":         {Type: "X25519", Args: []string{base64.RawStdEncoding.EncodeToString(append(bytes.Clone(shareBytes), 0))}, Body: good.Body},
		"all-zero share":     {Type: "X25519", Args: []string{zero}, Body: good.Body},
		"flipped share":      {Type: "X25519", Args: []string{base64.RawStdEncoding.EncodeToString(flip(shareBytes, 3))}, Body: good.Body},
		"flipped body":       {Type: "X25519", Args: good.Args, Body: flip(good.Body, 7)},
		"short body":         {Type: "X25519", Args: good.Args, Body: good.Body[:31]},
		"long body":          {Type: "X25519", Args: good.Args, Body: append(bytes.Clone(good.Body), 0)},
		"empty body":         {Type: "X25519", Args: good.Args},
		"non-canonical tail": {Type: "X25519", Args: []string{share[:42] + string(share[42]+1)}, Body: good.Body},
	}
	for name, s := range cases {
		for _, stanzas := range [][]*age.Stanza{{s}, {s, good}, {good, s}} {
			got, gotErr := ours.Unwrap(stanzas)
			want, wantErr := ref.Unwrap(stanzas)
			sameOutcome(t, fmt.Sprintf("%s (%d stanzas)", name, len(stanzas)), got, gotErr, want, wantErr)
		}
	}
	if k, err := ours.Unwrap([]*age.Stanza{good}); err != nil || len(k) != 16 {
		t.Fatalf("good stanza: %d-byte key, %v", len(k), err)
	}
	if _, err := ours.Unwrap([]*age.Stanza{cases["all-zero share"]}); err == nil || errors.Is(err, age.ErrIncorrectIdentity) {
		t.Errorf("all-zero share: err = %v, want a hard error (all-zero shared secret)", err)
	}

	// Whole files: flip each byte of the header and the payload.
	for i := range data {
		bad := flip(data, i)
		got, gotErr := ageDecrypt(bad, ours)
		want, wantErr := ageDecrypt(bad, ref)
		sameOutcome(t, fmt.Sprintf("file with byte %d flipped", i), got, gotErr, want, wantErr)
		if _, err := vault.Decrypt(bad, id); err == nil {
			t.Fatalf("byte %d flipped: vault.Decrypt accepted a tampered file", i)
		}
	}
}

// FuzzX25519IdentityMatchesAge: for any stanza (alone, or before or after
// a good one), our identity and age's agree: same file key, or the same
// error.
func FuzzX25519IdentityMatchesAge(f *testing.F) {
	id, err := vault.GenerateIdentity()
	if err != nil {
		f.Fatal(err)
	}
	ours, ref := identities(f, id)
	data, err := vault.Encrypt([]byte("kb_seed_key"), nil, id)
	if err != nil {
		f.Fatal(err)
	}
	good := x25519Stanza(f, data)
	f.Add("X25519", good.Args[0], "", good.Body, uint8(0))
	f.Add("X25519", good.Args[0], "", good.Body[:20], uint8(1))
	f.Add("X25519", good.Args[0], "x", good.Body, uint8(2))
	f.Add("X25519", base64.RawStdEncoding.EncodeToString(make([]byte, 32)), "", good.Body, uint8(0))
	f.Add("scrypt", "c2FsdA", "18", good.Body, uint8(1))
	f.Fuzz(func(t *testing.T, typ, arg, arg2 string, body []byte, shape uint8) {
		s := &age.Stanza{Type: typ, Args: []string{arg}, Body: body}
		if arg2 != "" {
			s.Args = append(s.Args, arg2)
		} else if arg == "" {
			s.Args = nil
		}
		stanzas := [][]*age.Stanza{{s}, {s, good}, {good, s}}[shape%3]
		got, gotErr := ours.Unwrap(stanzas)
		want, wantErr := ref.Unwrap(stanzas)
		sameOutcome(t, "Unwrap", got, gotErr, want, wantErr)
	})
}

// FuzzDecryptMatchesAge: vault.Decrypt (our X25519 identity, age's
// DecryptReaderAt) accepts exactly the files that age.Decrypt with age's
// X25519Identity, read as a stream (what Decrypt did before), accepts
// within Decrypt's limits, with the same key; and "not encrypted to this
// identity" is decided the same way.
func FuzzDecryptMatchesAge(f *testing.F) {
	id, err := vault.GenerateIdentity()
	if err != nil {
		f.Fatal(err)
	}
	_, ref := identities(f, id)
	other := mustIdentityF(f).Recipient()
	for _, plain := range [][]byte{[]byte("kb_seed_key"), nil, bytes.Repeat([]byte("k"), 70000), bytes.Repeat([]byte("k"), 64<<10)} {
		var b bytes.Buffer
		w, err := age.Encrypt(&b, mustRecipient(f, other), mustRecipient(f, id.Recipient()))
		if err != nil {
			f.Fatal(err)
		}
		w.Write(plain)
		w.Close()
		f.Add(b.Bytes())
	}
	if data, err := vault.Encrypt([]byte("kb_seed_key"), nil, id); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := vault.Decrypt(data, id)
		want, wantErr := ageDecrypt(data, ref)
		refOK := wantErr == nil && len(want) > 0 && len(want) <= vault.MaxKeySize
		if (err == nil) != refOK {
			t.Fatalf("vault.Decrypt: %v; age.Decrypt: %d bytes, %v", err, len(want), wantErr)
		}
		if err == nil && s.Reveal() != string(want) {
			t.Fatal("vault.Decrypt and age.Decrypt return different keys")
		}
		var noMatch *age.NoIdentityMatchError
		if errors.Is(err, vault.ErrWrongIdentity) != errors.As(wantErr, &noMatch) {
			t.Fatalf("vault.Decrypt: %v; age.Decrypt: %v", err, wantErr)
		}
	})
}

func mustIdentityF(f *testing.F) *vault.Identity {
	id, err := vault.GenerateIdentity()
	if err != nil {
		f.Fatal(err)
	}
	return id
}

func mustRecipient(f *testing.F, s string) age.Recipient {
	r, err := age.ParseX25519Recipient(s)
	if err != nil {
		f.Fatal(err)
	}
	return r
}

// TestDecryptPayloadSizes: a key in one chunk decrypts; files of one full
// chunk or several chunks are refused as too long, not as corrupt; a
// payload cut short anywhere is corrupt.
func TestDecryptPayloadSizes(t *testing.T) {
	t.Parallel()
	id := mustIdentity(t)
	for _, n := range []int{1, vault.MaxKeySize, vault.MaxKeySize + 1, 64 << 10, 64<<10 + 1, 200 << 10} {
		data := runAge(t, ageBin, bytes.Repeat([]byte("k"), n), "-r", id.Recipient())
		s, err := vault.Decrypt(data, id)
		switch {
		case n <= vault.MaxKeySize && (err != nil || s.Len() != n):
			t.Errorf("%d-byte key: Decrypt = %d bytes, %v", n, s.Len(), err)
		case n > vault.MaxKeySize && (err == nil || !strings.Contains(err.Error(), "longer than")):
			t.Errorf("%d-byte key: Decrypt = %v, want a too-long error", n, err)
		}
		if n > 1 {
			continue
		}
		for cut := 1; cut <= 40; cut++ {
			if _, err := vault.Decrypt(data[:len(data)-cut], id); !errors.Is(err, vault.ErrCorrupt) {
				t.Errorf("file cut by %d bytes: Decrypt = %v, want ErrCorrupt", cut, err)
			}
		}
	}
}
