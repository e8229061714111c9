package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/kanbot/kanbot-sidecar/auditdb"
	"github.com/kanbot/kanbot-sidecar/internal/atomicfile"
	"github.com/kanbot/kanbot-sidecar/profiles"
	"github.com/kanbot/kanbot-sidecar/vault"
)

// Names inside the sidecar home (DESIGN.md, "The sidecar home").
const (
	identityFileName = "identity.txt"
	configFileName   = "config.yaml"
	// envPassphraseFile names a file holding the identity's passphrase. The
	// passphrase itself is never taken from the environment or a flag:
	// both leak through /proc, shell history and process listings.
	envPassphraseFile  = "KANBOT_SIDECAR_PASSPHRASE_FILE"
	flagPassphraseFile = "passphrase-file"
)

func newInitCmd(e *env) *cobra.Command {
	var (
		withPassphrase bool
		passFile       string
		asJSON         bool
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the sidecar home: identity, profiles.yaml, vault/, config.yaml, audit DB",
		Long: `init creates the sidecar home (mode 0700) with a fresh age identity
(identity.txt, 0600), an empty profiles.yaml, an empty vault/ and a config.yaml
holding every setting at its default. It never overwrites an existing identity:
every vault file is encrypted to it.

With --passphrase (or --passphrase-file) the identity is itself encrypted with
an age passphrase, asked for on the terminal or read from the named file
(env KANBOT_SIDECAR_PASSPHRASE_FILE). Back up identity.txt: without it the
keys in vault/ cannot be decrypted.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := homeDir(cmd, e)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed(flagPassphraseFile) {
				withPassphrase = true
			}
			res, err := initHome(cmd.Context(), e, home, withPassphrase, passFile)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, res)
			}
			return printInit(e.stdout, res)
		},
	}
	cmd.Flags().BoolVar(&withPassphrase, "passphrase", false, "encrypt the identity with a passphrase (asked for on the terminal)")
	cmd.Flags().StringVar(&passFile, flagPassphraseFile, "", "read the identity passphrase from this file (mode 0600; env "+envPassphraseFile+")")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// initResult is what init prints.
type initResult struct {
	Home                string `json:"home"`
	Identity            string `json:"identity"`
	Recipient           string `json:"recipient"`
	PassphraseProtected bool   `json:"passphrase_protected"`
	Profiles            string `json:"profiles"`
	Vault               string `json:"vault"`
	Config              string `json:"config"`
	ConfigCreated       bool   `json:"config_created"`
	AuditDB             string `json:"audit_db"`
}

func printInit(w io.Writer, r initResult) error {
	prot := ""
	if r.PassphraseProtected {
		prot = ", passphrase-protected"
	}
	cfg := "kept the existing file"
	if r.ConfigCreated {
		cfg = "defaults"
	}
	_, err := fmt.Fprintf(w, `initialized kanbot-sidecar home %s
  identity  %s (recipient %s%s)
  profiles  %s
  vault     %s
  config    %s (%s)
  audit db  %s
Back up identity.txt: without it the keys in vault/ cannot be decrypted.
Next: kanbot-sidecar profiles add NAME --email EMAIL --home %s
      (the key is prompted for without echo, or piped straight from where it is stored, or --key-file)
`, r.Home, r.Identity, r.Recipient, prot, r.Profiles, r.Vault, r.Config, cfg, r.AuditDB, shellQuote(r.Home))
	return err
}

// initHome does the work of init. Everything that can fail for a reason the
// user must fix (an existing identity, loose permissions, a bad config.yaml,
// no passphrase) is checked before the identity is written, and the
// identity is written last, so a failed init can simply be run again.
func initHome(ctx context.Context, e *env, home string, withPassphrase bool, passFile string) (initResult, error) {
	res := initResult{
		Home:     home,
		Identity: filepath.Join(home, identityFileName),
		Profiles: filepath.Join(home, profiles.FileName),
		Vault:    filepath.Join(home, profiles.VaultDirName),
		Config:   filepath.Join(home, configFileName),
	}
	if _, err := os.Lstat(res.Identity); err == nil {
		return res, fmt.Errorf("%s already exists; init never overwrites an identity (every vault file is encrypted to it)", res.Identity)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("check identity: %w", err)
	}
	// The passphrase is read before anything is created, so a bad
	// passphrase file leaves no half-made home behind.
	var passphrase []byte
	if withPassphrase {
		var err error
		if passphrase, err = newPassphrase(e, passFile); err != nil {
			return res, err
		}
	}
	if err := makePrivateDir(home); err != nil {
		return res, err
	}
	if err := makePrivateDir(res.Vault); err != nil {
		return res, err
	}
	if n := countVaultFiles(res.Vault); n > 0 {
		return res, fmt.Errorf("%s already holds %d key file(s) encrypted to another identity; restore that identity.txt, or move vault/ and profiles.yaml away to start afresh", res.Vault, n)
	}

	created, err := writeDefaultConfig(res.Config)
	if err != nil {
		return res, err
	}
	res.ConfigCreated = created
	fc, err := loadConfig(home, nil)
	if err != nil {
		return res, err
	}
	if _, err := profiles.CreateFile(home); err != nil {
		return res, err
	}
	if res.AuditDB, err = initAuditDB(ctx, fc); err != nil {
		return res, err
	}

	id, err := vault.GenerateIdentity()
	if err != nil {
		return res, err
	}
	data := id.Marshal(time.Now())
	if withPassphrase {
		if data, err = id.MarshalEncrypted(time.Now(), passphrase, vault.DefaultWorkFactor); err != nil {
			return res, err
		}
	}
	if err := vault.WriteIdentityFile(res.Identity, data); err != nil {
		return res, err
	}
	res.Recipient = id.Recipient()
	res.PassphraseProtected = withPassphrase
	return res, nil
}

// initAuditDB creates the audit database (schema migrated, file 0600) so
// that it exists before the first `serve` (DESIGN.md: init creates the audit
// DB), and returns its path. An existing database is opened and left as is.
func initAuditDB(ctx context.Context, fc fileConfig) (string, error) {
	path := fc.auditPath()
	db, err := auditdb.Open(ctx, auditdb.Config{
		Path:        path,
		Durability:  fc.Audit.Durability,
		RedactQuery: fc.Audit.RedactQuery,
	})
	if err != nil {
		return "", fmt.Errorf("create audit database: %w", err)
	}
	if err := db.Close(); err != nil {
		return "", fmt.Errorf("close audit database: %w", err)
	}
	return path, nil
}

// makePrivateDir creates dir with mode 0700, or accepts an existing one that
// group and others cannot access. An existing empty directory with a looser
// mode (say, made by mkdir) is tightened; a non-empty one is refused with the
// chmod that fixes it, since its contents may already have been exposed.
func makePrivateDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		return os.Chmod(dir, 0o700) // MkdirAll's mode is subject to the umask
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", dir)
	}
	perr := vault.CheckPrivate(dir)
	if perr == nil {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) > 0 {
		return perr
	}
	return os.Chmod(dir, 0o700)
}

func countVaultFiles(dir string) int {
	m, _ := filepath.Glob(filepath.Join(dir, "*"+vault.Ext))
	return len(m)
}

// writeDefaultConfig writes config.yaml with every key at its default
// (mode 0600) unless the file exists; it reports whether it wrote it.
func writeDefaultConfig(path string) (bool, error) {
	if _, err := os.Lstat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("check %s: %w", path, err)
	}
	nested := map[string]any{}
	for key, v := range defaults {
		m := nested
		parts := strings.Split(key, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = v
	}
	var b bytes.Buffer
	b.WriteString("# kanbot-sidecar settings, written by `kanbot-sidecar init` with every default.\n" +
		"# Precedence: command-line flags > KANBOT_SIDECAR_* environment > this file > defaults.\n" +
		"# Unknown keys are an error. See README.md, \"Configuration\".\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(nested); err != nil {
		return false, fmt.Errorf("encode default config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return false, fmt.Errorf("encode default config: %w", err)
	}
	if err := atomicfile.Write(path, b.Bytes(), 0o600); err != nil {
		return false, err
	}
	return true, nil
}

// passphraseSource returns how to get the identity's passphrase, for
// commands that load the identity: the file named by --passphrase-file (if
// cmd has that flag and it is set), else by KANBOT_SIDECAR_PASSPHRASE_FILE,
// else a no-echo prompt on the terminal (/dev/tty, so a key piped on stdin
// is not consumed). It is called only for a passphrase-encrypted identity.
func passphraseSource(cmd *cobra.Command, e *env) func() ([]byte, error) {
	return func() ([]byte, error) {
		path := ""
		if f := cmd.Flags().Lookup(flagPassphraseFile); f != nil {
			path = f.Value.String()
		}
		if path == "" {
			path = e.getenv(envPassphraseFile)
		}
		if path != "" {
			return readPassphraseFile(path)
		}
		return promptTTY(e, "Passphrase for identity.txt: ")
	}
}

// loadIdentity loads home/identity.txt after checking the home's mode, with
// a message that says what to do when it is missing. serve and verify may
// use it too (with a --passphrase-file flag of their own).
func loadIdentity(cmd *cobra.Command, e *env, home string) (*vault.Identity, error) {
	if err := vault.CheckPrivate(home); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("home %s does not exist; run `kanbot-sidecar init --home %s` first", home, shellQuote(home))
		}
		return nil, err
	}
	path := filepath.Join(home, identityFileName)
	id, err := vault.LoadIdentity(path, passphraseSource(cmd, e))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no identity at %s; run `kanbot-sidecar init --home %s` first (or restore your backup of identity.txt)", path, shellQuote(home))
	}
	return id, err
}

// maxPassphrase bounds a passphrase file; a passphrase is a line of text.
const maxPassphrase = 4 << 10

// readPassphraseFile reads a passphrase from path, which must not be
// readable by group or others; one trailing newline is removed.
func readPassphraseFile(path string) ([]byte, error) {
	if err := vault.CheckPrivate(path); err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPassphrase+1))
	if err != nil {
		return nil, fmt.Errorf("passphrase file %s: %w", path, err)
	}
	if len(b) > maxPassphrase {
		return nil, fmt.Errorf("passphrase file %s: longer than %d bytes", path, maxPassphrase)
	}
	b = trimNewline(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("passphrase file %s is empty", path)
	}
	return b, nil
}

// newPassphrase gets the passphrase for a new identity: from the file, or
// typed twice on the terminal.
func newPassphrase(e *env, passFile string) ([]byte, error) {
	if passFile == "" {
		passFile = e.getenv(envPassphraseFile)
	}
	if passFile != "" {
		return readPassphraseFile(passFile)
	}
	p1, err := promptTTY(e, "New passphrase for identity.txt: ")
	if err != nil {
		return nil, err
	}
	if len(p1) == 0 {
		return nil, errors.New("passphrase is empty")
	}
	p2, err := promptTTY(e, "Repeat the passphrase: ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(p1, p2) {
		return nil, errors.New("the passphrases do not match")
	}
	return p1, nil
}

// promptTTY asks on the controlling terminal without echo. It uses
// /dev/tty rather than stdin, which may carry a piped key.
func promptTTY(e *env, prompt string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("no terminal to ask for the passphrase on; use --%s or %s", flagPassphraseFile, envPassphraseFile)
	}
	defer tty.Close()
	if !term.IsTerminal(int(tty.Fd())) {
		return nil, fmt.Errorf("no terminal to ask for the passphrase on; use --%s or %s", flagPassphraseFile, envPassphraseFile)
	}
	fmt.Fprint(tty, prompt)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	return b, nil
}

// trimNewline removes one trailing "\n" or "\r\n": what echo, printf '%s\n'
// and editors add, and nothing more (a key is taken byte for byte).
func trimNewline(b []byte) []byte {
	if bytes.HasSuffix(b, []byte("\r\n")) {
		return b[:len(b)-2]
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

// shellQuote quotes s for a command line shown to the user.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
