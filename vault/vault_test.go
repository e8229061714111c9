package vault_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/vault"
)

// testWorkFactor keeps passphrase tests fast; production uses DefaultWorkFactor.
const testWorkFactor = 10

func mustIdentity(t *testing.T) *vault.Identity {
	t.Helper()
	id, err := vault.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// writeIdentity writes id's plain form to dir/identity.txt (0600).
func writeIdentity(t *testing.T, dir string, id *vault.Identity) string {
	t.Helper()
	path := filepath.Join(dir, "identity.txt")
	if err := vault.WriteIdentityFile(path, id.Marshal(time.Now())); err != nil {
		t.Fatal(err)
	}
	return path
}

func privateDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func assertNoCanary(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, canary) {
		t.Errorf("%s reveals the key: %s", what, s)
	}
}

func TestIdentityRoundTrip(t *testing.T) {
	t.Parallel()
	dir := privateDir(t)
	id := mustIdentity(t)
	path := writeIdentity(t, dir, id)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity mode = %v, %v; want 0600", fi.Mode(), err)
	}
	called := false
	got, err := vault.LoadIdentity(path, func() ([]byte, error) { called = true; return nil, errors.New("no") })
	if err != nil {
		t.Fatal(err)
	}
	if called {
		t.Error("plain identity asked for a passphrase")
	}
	if got.Recipient() != id.Recipient() || !strings.HasPrefix(got.Recipient(), "age1") {
		t.Errorf("Recipient() = %q, want %q", got.Recipient(), id.Recipient())
	}
	// An Identity never prints its secret key, whatever the verb.
	secret := string(bytes.TrimSpace(id.Marshal(time.Now())[bytes.LastIndex(bytes.TrimSpace(id.Marshal(time.Now())), []byte("\n"))+1:]))
	if !strings.HasPrefix(secret, "AGE-SECRET-KEY-1") {
		t.Fatalf("Marshal has no secret key line: %q", secret)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		for _, v := range []any{id, *id} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(strings.ToUpper(out), secret) || strings.Contains(out, "SECRET") {
				t.Errorf("Sprintf(%q, identity) = %s: reveals the secret key", verb, out)
			}
		}
	}
}

func TestWriteIdentityFileNeverOverwrites(t *testing.T) {
	t.Parallel()
	dir := privateDir(t)
	path := writeIdentity(t, dir, mustIdentity(t))
	before, _ := os.ReadFile(path)
	err := vault.WriteIdentityFile(path, mustIdentity(t).Marshal(time.Now()))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second WriteIdentityFile = %v, want fs.ErrExist", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("identity changed")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only identity.txt (no temp files left)", len(entries))
	}
}

func TestPassphraseIdentity(t *testing.T) {
	t.Parallel()
	dir := privateDir(t)
	id := mustIdentity(t)
	data, err := id.MarshalEncrypted(time.Now(), []byte("correct horse"), testWorkFactor)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("AGE-SECRET-KEY")) {
		t.Fatal("encrypted identity contains the plain secret key")
	}
	path := filepath.Join(dir, "identity.txt")
	if err := vault.WriteIdentityFile(path, data); err != nil {
		t.Fatal(err)
	}
	pass := func(p string) func() ([]byte, error) { return func() ([]byte, error) { return []byte(p), nil } }

	got, err := vault.LoadIdentity(path, pass("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Recipient() != id.Recipient() {
		t.Errorf("Recipient() = %q, want %q", got.Recipient(), id.Recipient())
	}
	if _, err := vault.LoadIdentity(path, pass("wrong horse")); !errors.Is(err, vault.ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: err = %v, want ErrWrongPassphrase", err)
	}
	if _, err := vault.LoadIdentity(path, nil); !errors.Is(err, vault.ErrNoPassphrase) {
		t.Errorf("no passphrase source: err = %v, want ErrNoPassphrase", err)
	}
	if _, err := vault.LoadIdentity(path, pass("")); err == nil {
		t.Error("empty passphrase accepted")
	}
	if _, err := vault.LoadIdentity(path, func() ([]byte, error) { return nil, errors.New("tty gone") }); err == nil || !strings.Contains(err.Error(), "tty gone") {
		t.Errorf("passphrase source error = %v, want it passed on", err)
	}
	if _, err := id.MarshalEncrypted(time.Now(), nil, testWorkFactor); err == nil {
		t.Error("MarshalEncrypted accepted an empty passphrase")
	}
}

func TestParseIdentityRejects(t *testing.T) {
	t.Parallel()
	id1, id2 := mustIdentity(t), mustIdentity(t)
	two := append(id1.Marshal(time.Now()), id2.Marshal(time.Now())...)
	for name, data := range map[string][]byte{
		"empty":          nil,
		"comments only":  []byte("# nothing here\n\n"),
		"plain key":      []byte(canary + "\n"),
		"two identities": two,
		"malformed":      []byte("AGE-SECRET-KEY-1" + strings.ToUpper(canary) + "\n"),
		"ssh key":        []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n" + canary + "\n"),
		"corrupt age":    []byte("age-encryption.org/v1\n-> X25519 " + canary + "\n"),
	} {
		_, err := vault.ParseIdentity(data, func() ([]byte, error) { return []byte("pw"), nil })
		if err == nil {
			t.Errorf("%s: ParseIdentity accepted it", name)
			continue
		}
		assertNoCanary(t, name+" error", err.Error())
		assertNoCanary(t, name+" error", strings.ToLower(err.Error()))
	}
}

func TestLoosePermissionsRefused(t *testing.T) {
	t.Parallel()
	dir := privateDir(t)
	id := mustIdentity(t)
	path := writeIdentity(t, dir, id)
	if err := vault.Seal(dir, "alice", []byte(canary), nil, id); err != nil {
		t.Fatal(err)
	}
	vf := vault.Path(dir, "alice")
	for _, tc := range []struct {
		path string
		mode os.FileMode
		fix  string
		load func() error
	}{
		{path, 0o640, "chmod 600 " + path, func() error { _, err := vault.LoadIdentity(path, nil); return err }},
		{path, 0o604, "chmod 600 " + path, func() error { _, err := vault.LoadIdentity(path, nil); return err }},
		{vf, 0o644, "chmod 600 " + vf, func() error { _, err := vault.Open(dir, "alice", id); return err }},
		{vf, 0o620, "chmod 600 " + vf, func() error { _, err := vault.Open(dir, "alice", id); return err }},
		{dir, 0o755, "chmod 700 " + dir, func() error { return vault.CheckPrivate(dir) }},
	} {
		if err := os.Chmod(tc.path, tc.mode); err != nil {
			t.Fatal(err)
		}
		err := tc.load()
		var pe *vault.PermissionError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.fix) {
			t.Errorf("%s mode %04o: err = %v, want a PermissionError saying %q", tc.path, tc.mode, err, tc.fix)
		}
		restore := os.FileMode(0o600)
		if tc.path == dir {
			restore = 0o700
		}
		if err := os.Chmod(tc.path, restore); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := vault.Open(dir, "alice", id); err != nil {
		t.Errorf("after chmod back: %v", err)
	}
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(privateDir(t), "vault") // Seal creates it
	id, backup := mustIdentity(t), mustIdentity(t)
	if err := vault.Seal(dir, "alice", []byte(canary), []string{backup.Recipient()}, id); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, vault.Path(dir, "alice")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]os.FileMode{true: 0o700, false: 0o600}[fi.IsDir()]; fi.Mode().Perm() != want {
			t.Errorf("%s mode = %04o, want %04o", p, fi.Mode().Perm(), want)
		}
	}
	raw, _ := os.ReadFile(vault.Path(dir, "alice"))
	if !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n")) || bytes.Contains(raw, []byte(canary)) {
		t.Fatalf("vault file is not an age file or holds the plain key")
	}
	for name, who := range map[string]*vault.Identity{"identity": id, "extra recipient": backup} {
		s, err := vault.Open(dir, "alice", who)
		if err != nil {
			t.Fatalf("%s: Open: %v", name, err)
		}
		if s.Reveal() != canary {
			t.Errorf("%s: Open returned a different key", name)
		}
	}
	// Overwrite is atomic and leaves no temp file behind.
	if err := vault.Seal(dir, "alice", []byte(canary+"2"), nil, id); err != nil {
		t.Fatal(err)
	}
	if s, _ := vault.Open(dir, "alice", id); s.Reveal() != canary+"2" {
		t.Error("re-Seal did not replace the key")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("vault dir holds %d entries, want 1", len(entries))
	}
	if _, err := vault.Open(dir, "alice", backup); !errors.Is(err, vault.ErrWrongIdentity) {
		t.Errorf("after re-Seal without the extra recipient: err = %v, want ErrWrongIdentity", err)
	}
	if err := vault.Remove(dir, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := vault.Remove(dir, "alice"); err != nil {
		t.Errorf("second Remove = %v, want nil", err)
	}
	if _, err := vault.Open(dir, "alice", id); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open after Remove = %v, want fs.ErrNotExist", err)
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	dir := privateDir(t)
	id, other := mustIdentity(t), mustIdentity(t)
	good, err := vault.Encrypt([]byte(canary), nil, id)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := vault.Encrypt([]byte("x"), nil, id)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-3] ^= 1
	for _, tc := range []struct {
		name string
		data []byte
		id   *vault.Identity
		want error
	}{
		{"wrong identity", good, other, vault.ErrWrongIdentity},
		{"plain-text key", []byte(canary + "\n"), id, vault.ErrCorrupt},
		{"truncated", good[:len(good)/2], id, vault.ErrCorrupt},
		{"flipped bit", flipped, id, vault.ErrCorrupt},
		{"empty file", nil, id, vault.ErrCorrupt},
		{"header with key", []byte("age-encryption.org/v1\n-> " + canary + "\n"), id, vault.ErrCorrupt},
		{"truncated body", empty[:len(empty)-17], id, vault.ErrCorrupt},
	} {
		if err := os.WriteFile(vault.Path(dir, "p"), tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := vault.Open(dir, "p", tc.id)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Open = %v, want %v", tc.name, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), vault.Path(dir, "p")) {
			t.Errorf("%s: error %q does not name the file", tc.name, err)
		}
		assertNoCanary(t, tc.name, err.Error())
	}
	for _, name := range []string{"", ".", "..", "../x", "a/b", ".hidden", "a\x00b"} {
		if err := vault.Seal(dir, name, []byte("k"), nil, id); err == nil {
			t.Errorf("Seal(%q) accepted the name", name)
		}
		if _, err := vault.Open(dir, name, id); err == nil {
			t.Errorf("Open(%q) accepted the name", name)
		}
	}
	if err := vault.Seal(dir, "q", nil, nil, id); !errors.Is(err, vault.ErrEmptyKey) {
		t.Errorf("Seal(empty key) = %v, want ErrEmptyKey", err)
	}
	if err := vault.Seal(dir, "q", []byte(canary), []string{"age1notarecipient"}, id); err == nil || !strings.Contains(err.Error(), "age1notarecipient") {
		t.Errorf("Seal(bad recipient) = %v, want an error naming it", err)
	}
	if _, err := os.Stat(vault.Path(dir, "q")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a failed Seal wrote a file")
	}
}

// runAge runs the real age command and returns its stdout.
func runAge(t *testing.T, bin string, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v: %s", filepath.Base(bin), args, err, stderr.String())
	}
	return out
}

// TestAgeDecryptsVaultFile: `age -d -i identity.txt vault/alice.age` gives
// the key back, for an identity from init and for one from age-keygen.
func TestAgeDecryptsVaultFile(t *testing.T) {
	t.Parallel()
	dir := privateDir(t)
	id := mustIdentity(t)
	idPath := writeIdentity(t, dir, id)
	if err := vault.Seal(dir, "alice", []byte(canary), nil, id); err != nil {
		t.Fatal(err)
	}
	if got := runAge(t, ageBin, nil, "-d", "-i", idPath, vault.Path(dir, "alice")); string(got) != canary {
		t.Errorf("age -d = %q, want the key", got)
	}

	// An identity made by age-keygen is accepted as is.
	kgDir := privateDir(t)
	kgPath := filepath.Join(kgDir, "identity.txt")
	runAge(t, ageKeygenBin, nil, "-o", kgPath)
	if err := os.Chmod(kgPath, 0o600); err != nil {
		t.Fatal(err)
	}
	kg, err := vault.LoadIdentity(kgPath, nil)
	if err != nil {
		t.Fatalf("LoadIdentity(age-keygen output): %v", err)
	}
	if pub := strings.TrimSpace(string(runAge(t, ageKeygenBin, nil, "-y", kgPath))); pub != kg.Recipient() {
		t.Errorf("Recipient() = %q, age-keygen -y says %q", kg.Recipient(), pub)
	}
	if err := vault.Seal(kgDir, "bob", []byte(canary), []string{id.Recipient()}, kg); err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{kgPath, idPath} {
		if got := runAge(t, ageBin, nil, "-d", "-i", ip, vault.Path(kgDir, "bob")); string(got) != canary {
			t.Errorf("age -d -i %s = %q, want the key", ip, got)
		}
	}
}

// TestVaultOpensAgeFile: files made by `age -r` (binary and armored) open.
func TestVaultOpensAgeFile(t *testing.T) {
	t.Parallel()
	dir := privateDir(t)
	id := mustIdentity(t)
	for name, args := range map[string][]string{
		"binary":  {"-r", id.Recipient()},
		"armored": {"-a", "-r", id.Recipient()},
	} {
		enc := runAge(t, ageBin, []byte(canary), args...)
		if err := os.WriteFile(vault.Path(dir, name), enc, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := vault.Open(dir, name, id)
		if err != nil {
			t.Fatalf("%s: Open(age -r output): %v", name, err)
		}
		if s.Reveal() != canary {
			t.Errorf("%s: Open returned a different key", name)
		}
	}
	// A passphrase-encrypted identity from us is an ordinary age -p file:
	// age decrypts it back to the plain identity (it needs a terminal for
	// the passphrase, so check the reverse direction through our parser on
	// an identity file age itself armored with -a).
	plain := id.Marshal(time.Now())
	armored := runAge(t, ageBin, plain, "-a", "-r", mustIdentity(t).Recipient())
	if _, err := vault.ParseIdentity(armored, func() ([]byte, error) { return []byte("pw"), nil }); !errors.Is(err, vault.ErrWrongPassphrase) {
		t.Errorf("identity encrypted to a recipient, not a passphrase: err = %v, want ErrWrongPassphrase", err)
	}
}
