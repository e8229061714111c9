package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/profiles"
	"github.com/kanbot/kanbot-sidecar/vault"
)

// cli runs the built kanbot-sidecar binary against one home and keeps
// everything it printed, for the canary checks.
type cli struct {
	t    *testing.T
	home string
	env  []string
	mu   sync.Mutex
	all  bytes.Buffer // every stdout and stderr so far
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LANG=C"}
	return &cli{t: t, home: home, env: env}
}

// run runs the binary with stdin and args (plus --home) and returns its
// stdout, stderr and exit code. The process gets a new session, so it has
// no controlling terminal, like a CI job.
func (c *cli) run(stdin string, args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(sidecarBin, append(args, "--home", c.home)...)
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader(stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("run %v: %v", args, err)
	}
	c.mu.Lock()
	c.all.WriteString(stdout.String() + stderr.String())
	c.mu.Unlock()
	return stdout.String(), stderr.String(), code
}

// ok runs a command that must succeed and returns its stdout.
func (c *cli) ok(stdin string, args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(stdin, args...)
	if code != 0 {
		c.t.Fatalf("kanbot-sidecar %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs a command that must exit with code and mention want on stderr.
func (c *cli) fails(code int, want, stdin string, args ...string) {
	c.t.Helper()
	out, errOut, got := c.run(stdin, args...)
	if got != code || !strings.Contains(errOut, want) {
		c.t.Errorf("kanbot-sidecar %s: exit %d, stderr %q; want exit %d mentioning %q (stdout %q)",
			strings.Join(args, " "), got, errOut, code, want, out)
	}
}

// assertNoKeys: no key appears in any file under the home or in anything
// the CLI printed.
func (c *cli) assertNoKeys(keys ...string) {
	c.t.Helper()
	err := filepath.WalkDir(c.home, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		for _, k := range keys {
			if bytes.Contains(b, []byte(k)) {
				c.t.Errorf("%s contains a key in plain text", p)
			}
		}
		return err
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if strings.Contains(c.all.String(), k) {
			c.t.Errorf("the CLI printed a key")
		}
	}
}

func (c *cli) files() map[string]string {
	c.t.Helper()
	out := map[string]string{}
	filepath.WalkDir(c.home, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != profiles.LockName {
			b, _ := os.ReadFile(p)
			fi, _ := d.Info()
			out[p] = fmt.Sprintf("%v %s", fi.Mode(), b)
		}
		return err
	})
	return out
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s mode = %04o, want %04o", path, fi.Mode().Perm(), want)
	}
}

const (
	keyAlice  = "kb_live_alice_0f1e2d3c4b5a69788796"
	keyAlice2 = "kb_live_alice_rotated_aa55aa55aa55"
	keyBob    = "kb_live_bob_123456789abcdef0"
)

func TestCLIFlow(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	out := c.ok("", "init")
	if !strings.Contains(out, "age1") || !strings.Contains(out, c.home) {
		t.Errorf("init output %q lacks the recipient or the home", out)
	}
	assertMode(t, c.home, 0o700)
	assertMode(t, filepath.Join(c.home, "identity.txt"), 0o600)
	assertMode(t, filepath.Join(c.home, "profiles.yaml"), 0o600)
	assertMode(t, filepath.Join(c.home, "config.yaml"), 0o600)
	assertMode(t, filepath.Join(c.home, "vault"), 0o700)
	assertMode(t, filepath.Join(c.home, "audit.db"), 0o600)
	fc, err := loadConfig(c.home, nil)
	if err != nil {
		t.Fatalf("config.yaml written by init does not load: %v", err)
	}
	if fc.Listen != defaults["listen"] || fc.RateLimit.Burst != 20 || fc.UpstreamTimeout != 30*time.Second {
		t.Errorf("config.yaml from init = %+v", fc)
	}
	cfg, _ := os.ReadFile(filepath.Join(c.home, "config.yaml"))
	for key := range defaults {
		leaf := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(string(cfg), leaf+":") {
			t.Errorf("config.yaml lacks %s", key)
		}
	}
	identity, _ := os.ReadFile(filepath.Join(c.home, "identity.txt"))

	// init never overwrites the identity.
	c.fails(1, "already exists", "", "init")
	if again, _ := os.ReadFile(filepath.Join(c.home, "identity.txt")); !bytes.Equal(again, identity) {
		t.Fatal("second init changed identity.txt")
	}

	// Adding: piped stdin with a trailing newline, and --key-file.
	if out := c.ok(keyAlice+"\n", "profiles", "add", "alice", "--email", "alice@example.com",
		"--upstream", "http://127.0.0.1:8000", "--rate", "5", "--burst", "9",
		"--allow-path", "/api/v1/", "--allow-method", "get,post", "--allow-method", "DELETE"); !strings.Contains(out, "alice") {
		t.Errorf("add output = %q", out)
	}
	keyFile := filepath.Join(t.TempDir(), "bob.key")
	os.WriteFile(keyFile, []byte(keyBob+"\r\n"), 0o600)
	c.ok("", "profiles", "add", "bob", "--email", "bob@example.com", "--key-file", keyFile)
	assertMode(t, filepath.Join(c.home, "vault", "alice.age"), 0o600)
	assertMode(t, filepath.Join(c.home, "vault", "bob.age"), 0o600)
	assertMode(t, filepath.Join(c.home, "profiles.yaml"), 0o600)

	// The real age command decrypts the vault file back to the exact key.
	dec, err := exec.Command(ageBin, "-d", "-i", filepath.Join(c.home, "identity.txt"), filepath.Join(c.home, "vault", "alice.age")).Output()
	if err != nil || string(dec) != keyAlice {
		t.Fatalf("age -d vault/alice.age = %q, %v; want the key without the newline", dec, err)
	}
	snap, err := profiles.Load(c.home, mustLoadIdentity(t, c.home))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := snap.Get("bob"); b.Key.Reveal() != keyBob {
		t.Error("bob's key did not round-trip (\\r\\n not trimmed?)")
	}

	var list struct{ Profiles []profiles.Meta }
	if err := json.Unmarshal([]byte(c.ok("", "profiles", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Profiles) != 2 || list.Profiles[0].Name != "alice" || list.Profiles[1].Name != "bob" {
		t.Fatalf("list --json = %+v", list)
	}
	a := list.Profiles[0]
	if a.KeyFingerprint != vault.Fingerprint([]byte(keyAlice)) || a.Email != "alice@example.com" || a.Rate != 5 || a.Burst != 9 ||
		strings.Join(a.AllowMethods, " ") != "GET POST DELETE" || strings.Join(a.AllowPaths, " ") != "/api/v1/" {
		t.Errorf("alice in list --json = %+v", a)
	}
	if text := c.ok("", "profiles", "list"); !strings.Contains(text, a.KeyFingerprint) || !strings.Contains(text, "bob@example.com") {
		t.Errorf("list = %q", text)
	}
	var show struct {
		profiles.Meta
		VaultFile string `json:"vault_file"`
	}
	if err := json.Unmarshal([]byte(c.ok("", "profiles", "show", "alice", "--json")), &show); err != nil {
		t.Fatal(err)
	}
	if show.KeyFingerprint != a.KeyFingerprint || show.VaultFile != filepath.Join(c.home, "vault", "alice.age") {
		t.Errorf("show --json = %+v", show)
	}
	if text := c.ok("", "profiles", "show", "bob"); !strings.Contains(text, "(default)") || !strings.Contains(text, "never") {
		t.Errorf("show bob = %q", text)
	}

	// Rotate: new fingerprint and rotated_at; the old key is gone.
	c.ok(keyAlice2+"\n", "profiles", "rotate", "alice")
	if err := json.Unmarshal([]byte(c.ok("", "profiles", "show", "alice", "--json")), &show); err != nil {
		t.Fatal(err)
	}
	if show.KeyFingerprint != vault.Fingerprint([]byte(keyAlice2)) || show.RotatedAt.IsZero() || show.CreatedAt.After(show.RotatedAt) {
		t.Errorf("after rotate: %+v", show.Meta)
	}
	dec, err = exec.Command(ageBin, "-d", "-i", filepath.Join(c.home, "identity.txt"), filepath.Join(c.home, "vault", "alice.age")).Output()
	if err != nil || string(dec) != keyAlice2 {
		t.Errorf("age -d after rotate = %q, %v", dec, err)
	}
	c.fails(1, "same as the current", keyAlice2, "profiles", "rotate", "alice")
	c.fails(1, "no such profile", keyAlice2+"x", "profiles", "rotate", "carol")

	c.ok("", "profiles", "remove", "bob")
	if _, err := os.Stat(filepath.Join(c.home, "vault", "bob.age")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("vault/bob.age after remove: %v", err)
	}
	c.fails(1, "no such profile", "", "profiles", "show", "bob")
	c.fails(1, "no such profile", "", "profiles", "remove", "bob")

	c.assertNoKeys(keyAlice, keyAlice2, keyBob)
}

func mustLoadIdentity(t *testing.T, home string) *vault.Identity {
	t.Helper()
	id, err := vault.LoadIdentity(filepath.Join(home, "identity.txt"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestCLIAddRefusesBadInput(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("", "init")
	c.ok(keyAlice+"\n", "profiles", "add", "alice", "--email", "alice@example.com")
	before := c.files()
	add := func(extra ...string) []string {
		return append([]string{"profiles", "add"}, extra...)
	}
	for _, tc := range []struct {
		name  string
		code  int
		want  string
		stdin string
		args  []string
	}{
		{"empty key", 1, "key is empty", "", add("bob", "--email", "bob@example.com")},
		{"newline only", 1, "key is empty", "\n", add("bob", "--email", "bob@example.com")},
		{"two lines", 1, "printable ASCII", "kb_one\nkb_two\n", add("bob", "--email", "bob@example.com")},
		{"duplicate", 1, "already exists", keyBob, add("alice", "--email", "alice2@example.com")},
		{"same key as alice", 1, "already used by another profile", keyAlice, add("bob", "--email", "bob@example.com")},
		{"same email as alice", 1, "email is already used", keyBob, add("bob", "--email", "alice@example.com")},
		{"alice's email in other case", 1, "email is already used", keyBob, add("bob", "--email", "Alice@Example.COM")},
		{"invalid name", 1, "invalid profile name", keyBob, add("Bob", "--email", "bob@example.com")},
		{"name with slash", 1, "invalid profile name", keyBob, add("../bob", "--email", "bob@example.com")},
		{"invalid email", 1, "email", keyBob, add("bob", "--email", "bob")},
		{"invalid URL", 1, "upstream", keyBob, add("bob", "--email", "bob@example.com", "--upstream", "ftp://x")},
		{"URL with query", 1, "query", keyBob, add("bob", "--email", "bob@example.com", "--upstream", "http://h/?api_key=1")},
		{"invalid method", 1, "method", keyBob, add("bob", "--email", "bob@example.com", "--allow-method", "TRACE")},
		{"invalid path", 1, "allow path", keyBob, add("bob", "--email", "bob@example.com", "--allow-path", "/api/../x")},
		{"negative rate", 1, "rate", keyBob, add("bob", "--email", "bob@example.com", "--rate", "-1")},
		{"missing key file", 1, "key file", "", add("bob", "--email", "bob@example.com", "--key-file", "/nonexistent/k")},
		{"missing --email", 2, "--email is required", keyBob, add("bob")},
		{"no name", 2, "accepts 1 arg", keyBob, add("--email", "bob@example.com")},
		{"two names", 2, "accepts 1 arg", keyBob, add("bob", "carol", "--email", "bob@example.com")},
		{"key as a flag", 2, "unknown flag", "", add("bob", "--email", "bob@example.com", "--key", keyBob)},
		{"rate not a number", 2, "invalid argument", keyBob, add("bob", "--email", "bob@example.com", "--rate", "fast")},
		{"unknown subcommand", 2, "unknown command", "", []string{"profiles", "frobnicate"}},
		{"no subcommand", 2, "missing subcommand", "", []string{"profiles"}},
		{"show invalid name", 1, "invalid profile name", "", []string{"profiles", "show", "A"}},
	} {
		c.fails(tc.code, tc.want, tc.stdin, tc.args...)
		if after := c.files(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("%s: files under the home changed", tc.name)
			before = after
		}
	}
	c.assertNoKeys(keyAlice, keyBob)
}

func TestCLIInitHome(t *testing.T) {
	t.Parallel()
	// An existing empty directory made with a loose mode is tightened.
	c := newCLI(t)
	os.Mkdir(c.home, 0o755)
	os.Chmod(c.home, 0o755)
	var res initResult
	if err := json.Unmarshal([]byte(c.ok("", "init", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Home != c.home || !strings.HasPrefix(res.Recipient, "age1") || res.PassphraseProtected || !res.ConfigCreated ||
		res.AuditDB != filepath.Join(c.home, "audit.db") {
		t.Errorf("init --json = %+v", res)
	}
	assertMode(t, c.home, 0o700)

	// A non-empty loose directory is refused with the fix.
	c2 := newCLI(t)
	os.Mkdir(c2.home, 0o755)
	os.Chmod(c2.home, 0o755)
	os.WriteFile(filepath.Join(c2.home, "notes"), nil, 0o644)
	c2.fails(1, "chmod 700 "+c2.home, "", "init")
	if _, err := os.Stat(filepath.Join(c2.home, "identity.txt")); err == nil {
		t.Error("init wrote an identity into a refused home")
	}

	// Leftover vault files of a lost identity are not silently orphaned.
	c3 := newCLI(t)
	c3.ok("", "init")
	c3.ok(keyBob, "profiles", "add", "bob", "--email", "bob@example.com")
	os.Remove(filepath.Join(c3.home, "identity.txt"))
	c3.fails(1, "no identity at", keyAlice, "profiles", "add", "alice", "--email", "alice@example.com")
	c3.fails(1, "encrypted to another identity", "", "init")

	// A bad config.yaml stops init before it writes the identity.
	c4 := newCLI(t)
	os.Mkdir(c4.home, 0o700)
	os.WriteFile(filepath.Join(c4.home, "config.yaml"), []byte("listen: 127.0.0.1:1\nbogus: 1\n"), 0o600)
	c4.fails(1, "bogus", "", "init")
	if _, err := os.Stat(filepath.Join(c4.home, "identity.txt")); err == nil {
		t.Error("init wrote an identity despite a bad config.yaml")
	}
	c4.fails(2, "unknown command", "", "init", "extra")
}

func TestCLILoosePermissions(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("", "init")
	c.ok(keyAlice, "profiles", "add", "alice", "--email", "alice@example.com")
	id := filepath.Join(c.home, "identity.txt")
	os.Chmod(id, 0o644)
	c.fails(1, "chmod 600 "+id, keyBob, "profiles", "add", "bob", "--email", "bob@example.com")
	c.fails(1, "chmod 600 "+id, keyAlice2, "profiles", "rotate", "alice")
	os.Chmod(id, 0o600)
	os.Chmod(c.home, 0o755)
	c.fails(1, "chmod 700 "+c.home, "", "profiles", "list")
	c.fails(1, "chmod 700 "+c.home, keyBob, "profiles", "add", "bob", "--email", "bob@example.com")
	os.Chmod(c.home, 0o700)
	c.ok(keyBob, "profiles", "add", "bob", "--email", "bob@example.com")
	c.assertNoKeys(keyAlice, keyBob)
}

func TestCLIMissingHome(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.fails(1, "run `kanbot-sidecar init", "", "profiles", "list")
	c.fails(1, "run `kanbot-sidecar init", keyAlice, "profiles", "add", "alice", "--email", "a@example.com")
	if _, err := os.Stat(c.home); !errors.Is(err, fs.ErrNotExist) {
		t.Error("profiles add created the home")
	}
}

func TestCLIPassphraseIdentity(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	pf := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pf, []byte("correct horse battery\n"), 0o600)
	c.ok("", "init", "--passphrase-file", pf)
	id, _ := os.ReadFile(filepath.Join(c.home, "identity.txt"))
	if !bytes.HasPrefix(id, []byte("-----BEGIN AGE ENCRYPTED FILE-----")) || bytes.Contains(id, []byte("AGE-SECRET-KEY")) {
		t.Fatalf("identity.txt is not passphrase-encrypted:\n%s", id)
	}
	// The passphrase file named by the environment.
	c.env = append(c.env, envPassphraseFile+"="+pf)
	c.ok(keyAlice, "profiles", "add", "alice", "--email", "alice@example.com")
	c.env = c.env[:len(c.env)-1]

	// No passphrase source and no terminal: a clear refusal, nothing written.
	c.fails(1, "no terminal", keyBob, "profiles", "add", "bob", "--email", "bob@example.com")
	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("wrong horse\n"), 0o600)
	c.fails(1, "wrong passphrase", keyBob, "profiles", "add", "bob", "--email", "bob@example.com", "--passphrase-file", wrong)
	os.Chmod(pf, 0o644)
	c.fails(1, "chmod 600 "+pf, keyBob, "profiles", "add", "bob", "--email", "bob@example.com", "--passphrase-file", pf)
	os.Chmod(pf, 0o600)
	// init --passphrase without a terminal or a file says what to use.
	c2 := newCLI(t)
	c2.fails(1, "--passphrase-file", "", "init", "--passphrase")
	if _, err := os.Stat(filepath.Join(c2.home, "identity.txt")); err == nil {
		t.Error("init --passphrase wrote an identity without a passphrase")
	}

	out := c.ok("", "profiles", "list") // metadata needs no passphrase
	if !strings.Contains(out, "alice") {
		t.Errorf("list = %q", out)
	}
	c.assertNoKeys(keyAlice, keyBob, "correct horse")
}

// TestCLIConcurrentAdds: separate processes adding at the same moment all
// land (profiles.yaml is read-modified-written under a lock).
func TestCLIConcurrentAdds(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("", "init")
	const n = 6
	var wg sync.WaitGroup
	codes := make([]int, n)
	errs := make([]string, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i], codes[i] = c.run(fmt.Sprintf("kb_concurrent_key_%d\n", i),
				"profiles", "add", fmt.Sprintf("user%d", i), "--email", fmt.Sprintf("user%d@example.com", i))
		})
	}
	wg.Wait()
	for i := range n {
		if codes[i] != 0 {
			t.Errorf("add user%d: exit %d: %s", i, codes[i], errs[i])
		}
	}
	snap, err := profiles.Load(c.home, mustLoadIdentity(t, c.home))
	if err != nil {
		t.Fatal(err)
	}
	if snap.Len() != n {
		t.Errorf("after %d concurrent adds: %d profiles (%v)", n, snap.Len(), snap.Names())
	}
}

// A profile command that finds the audit DB gone says so: it has to create a
// new one, and the operator must learn that the old trail is missing.
func TestCLIWarnsWhenAuditDBWasMissing(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("", "init")
	if _, errOut, code := c.run(keyAlice+"\n", "profiles", "add", "alice", "--email", "alice@example.com"); code != 0 || strings.Contains(errOut, "was missing") {
		t.Fatalf("add with the DB present: exit %d, stderr %q", code, errOut)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(filepath.Join(c.home, "audit.db"+suffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	_, errOut, code := c.run(keyBob+"\n", "profiles", "add", "bob", "--email", "bob@example.com")
	if code != 0 || !strings.Contains(errOut, "was missing") {
		t.Errorf("add after the audit DB was deleted: exit %d, stderr %q; want 0 and a warning", code, errOut)
	}
	c.assertNoKeys(keyAlice, keyBob)
}
