package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kanbot/kanbot-sidecar/profiles"
	"github.com/kanbot/kanbot-sidecar/vault"
)

// Admin event actions recorded after a successful profile change.
const (
	actionProfileAdded   = "profile_added"
	actionProfileRemoved = "profile_removed"
	actionProfileRotated = "profile_rotated"
)

func newProfilesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profiles",
		Short: "Add, list, show, remove and rotate profiles (one per person, each with its own key)",
		Long: `A profile is one person the agent works for: a name (the X-Kanbot-Profile
tag), an email, optional upstream, rate limit and allow-lists, and an API key
stored age-encrypted in vault/NAME.age. No command ever prints a key; read
one back with: age -d -i identity.txt vault/NAME.age`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for \"kanbot-sidecar profiles\"", args[0])
			}
			cmd.SetOut(e.stderr)
			_ = cmd.Help()
			return usagef("missing subcommand: add, list, show, remove or rotate")
		},
	}
	cmd.PersistentFlags().String(flagPassphraseFile, "", "file holding the identity's passphrase, if it has one (mode 0600; env "+envPassphraseFile+")")
	cmd.AddCommand(
		newProfilesAddCmd(e),
		newProfilesListCmd(e),
		newProfilesShowCmd(e),
		newProfilesRemoveCmd(e),
		newProfilesRotateCmd(e),
	)
	return cmd
}

func newProfilesAddCmd(e *env) *cobra.Command {
	var (
		m       profiles.Meta
		keyFile string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "add NAME --email EMAIL",
		Short: "Add a profile; the key is read from stdin, a no-echo prompt, or --key-file",
		Long: `add creates profile NAME. Its API key is read from stdin when piped (one
trailing newline is removed), prompted for without echo on a terminal, or read
from --key-file. A key is never taken from a flag value.

  printf '%s\n' "$KEY" | kanbot-sidecar profiles add alice --email alice@example.com`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m.Name = args[0]
			if m.Email == "" {
				return usagef("--email is required")
			}
			for i, meth := range m.AllowMethods {
				m.AllowMethods[i] = strings.ToUpper(strings.TrimSpace(meth))
			}
			// Check everything that does not need the key before asking
			// for it, so a typo does not cost a pasted key.
			check := m
			check.KeyFingerprint, check.CreatedAt = vault.Fingerprint([]byte("x")), time.Now()
			if err := check.Validate(); err != nil {
				return err
			}
			home, fc, id, err := openForChange(cmd, e, true)
			if err != nil {
				return err
			}
			st := &profiles.Store{Home: home, Identity: id, Recipients: fc.Vault.Recipients}
			if _, err := st.Get(m.Name); err == nil {
				return fmt.Errorf("%w: %q (use `profiles rotate %s` to change its key)", profiles.ErrExists, m.Name, m.Name)
			} else if !errors.Is(err, profiles.ErrNotFound) {
				return err
			}
			key, err := readKey(e, keyFile, m.Name)
			if err != nil {
				return err
			}
			defer clear(key)
			added, err := st.Add(m, key)
			if err != nil {
				return err
			}
			warnAdmin(cmd.Context(), e, fc, "added", adminEvent{
				Action: actionProfileAdded, Profile: added.Name, KeyFingerprint: added.KeyFingerprint,
				Detail: map[string]any{"email": added.Email, "upstream": added.Upstream},
			})
			if asJSON {
				return writeJSON(e.stdout, added)
			}
			_, err = fmt.Fprintf(e.stdout, "added profile %s (%s, key %s)\n", added.Name, added.Email, added.KeyFingerprint)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&m.Email, "email", "", "the person's Kanbot account email (required)")
	f.StringVar(&m.Upstream, "upstream", "", "Kanbot base URL for this profile (default: the config's upstream)")
	f.Float64Var(&m.Rate, "rate", 0, "requests per second (default: the config's rate_limit.rate)")
	f.IntVar(&m.Burst, "burst", 0, "burst size (default: the config's rate_limit.burst)")
	f.StringArrayVar(&m.AllowPaths, "allow-path", nil, "allowed path prefix, repeatable (default: /api/v1/ and /health)")
	f.StringSliceVar(&m.AllowMethods, "allow-method", nil, "allowed HTTP method, repeatable or comma-separated (default: GET HEAD POST PUT PATCH DELETE)")
	f.StringVar(&keyFile, "key-file", "", "read the key from this file instead of stdin")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newProfilesRotateCmd(e *env) *cobra.Command {
	var (
		keyFile string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Replace a profile's key (read like add); records rotated_at and the new fingerprint",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := profiles.CheckName(name); err != nil {
				return err
			}
			home, fc, id, err := openForChange(cmd, e, true)
			if err != nil {
				return err
			}
			st := &profiles.Store{Home: home, Identity: id, Recipients: fc.Vault.Recipients}
			old, err := st.Get(name)
			if err != nil {
				return err
			}
			key, err := readKey(e, keyFile, name)
			if err != nil {
				return err
			}
			defer clear(key)
			m, err := st.Rotate(name, key)
			if err != nil {
				return err
			}
			warnAdmin(cmd.Context(), e, fc, "rotated", adminEvent{
				Action: actionProfileRotated, Profile: m.Name, KeyFingerprint: m.KeyFingerprint,
				Detail: map[string]any{"previous_key_fingerprint": old.KeyFingerprint},
			})
			if asJSON {
				return writeJSON(e.stdout, m)
			}
			_, err = fmt.Fprintf(e.stdout, "rotated profile %s: key %s (was %s)\n", m.Name, m.KeyFingerprint, old.KeyFingerprint)
			return err
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "read the new key from this file instead of stdin")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newProfilesRemoveCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a profile and its vault file",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := profiles.CheckName(name); err != nil {
				return err
			}
			home, fc, _, err := openForChange(cmd, e, false)
			if err != nil {
				return err
			}
			st := &profiles.Store{Home: home}
			m, err := st.Remove(name)
			if err != nil {
				return err
			}
			warnAdmin(cmd.Context(), e, fc, "removed", adminEvent{
				Action: actionProfileRemoved, Profile: m.Name, KeyFingerprint: m.KeyFingerprint,
				Detail: map[string]any{"email": m.Email},
			})
			if asJSON {
				return writeJSON(e.stdout, m)
			}
			_, err = fmt.Fprintf(e.stdout, "removed profile %s (key %s)\n", m.Name, m.KeyFingerprint)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newProfilesListCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List profiles with their key fingerprints (never the keys)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := openHome(cmd, e)
			if err != nil {
				return err
			}
			ps, err := profiles.ReadFile(home)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, struct {
					Profiles []profiles.Meta `json:"profiles"`
				}{ps})
			}
			if len(ps) == 0 {
				_, err := fmt.Fprintln(e.stdout, "no profiles yet; add one with: kanbot-sidecar profiles add NAME --email EMAIL")
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tEMAIL\tKEY\tUPSTREAM\tRATE/BURST\tCREATED\tROTATED")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Email, p.KeyFingerprint,
					orDefault(p.Upstream), rateBurst(p), p.CreatedAt.UTC().Format(time.RFC3339), rotated(p))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newProfilesShowCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one profile's metadata and key fingerprint (never the key)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := profiles.CheckName(name); err != nil {
				return err
			}
			home, err := openHome(cmd, e)
			if err != nil {
				return err
			}
			m, err := (&profiles.Store{Home: home}).Get(name)
			if err != nil {
				return err
			}
			vf := vault.Path(filepath.Join(home, profiles.VaultDirName), name)
			if asJSON {
				return writeJSON(e.stdout, struct {
					profiles.Meta
					VaultFile string `json:"vault_file"`
				}{m, vf})
			}
			paths, methods := m.AllowPaths, m.AllowMethods
			pd, md := "", ""
			if len(paths) == 0 {
				paths, pd = profiles.DefaultAllowPaths, " (default)"
			}
			if len(methods) == 0 {
				methods, md = profiles.DefaultAllowMethods, " (default)"
			}
			_, err = fmt.Fprintf(e.stdout, `name:           %s
email:          %s
upstream:       %s
rate/burst:     %s
allow paths:    %s%s
allow methods:  %s%s
key:            %s (in %s)
created:        %s
rotated:        %s
`, m.Name, m.Email, orDefault(m.Upstream), rateBurst(m), strings.Join(paths, " "), pd,
				strings.Join(methods, " "), md, m.KeyFingerprint, vf,
				m.CreatedAt.UTC().Format(time.RFC3339), rotated(m))
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// openHome resolves the home and checks that it exists and is private.
func openHome(cmd *cobra.Command, e *env) (string, error) {
	home, err := homeDir(cmd, e)
	if err != nil {
		return "", err
	}
	if err := vault.CheckPrivate(home); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("home %s does not exist; run `kanbot-sidecar init --home %s` first", home, shellQuote(home))
		}
		return "", err
	}
	return home, nil
}

// openForChange prepares a profile change: the home, its configuration
// (vault.recipients and where to record the admin event) and, if withID,
// the identity. All of it is checked before anything is written.
func openForChange(cmd *cobra.Command, e *env, withID bool) (string, fileConfig, *vault.Identity, error) {
	home, err := openHome(cmd, e)
	if err != nil {
		return "", fileConfig{}, nil, err
	}
	fc, err := loadConfig(home, nil)
	if err != nil {
		return "", fileConfig{}, nil, err
	}
	if _, err := vault.ParseRecipients(fc.Vault.Recipients); err != nil {
		return "", fileConfig{}, nil, fmt.Errorf("config vault.recipients: %w", err)
	}
	var id *vault.Identity
	if withID {
		if id, err = loadIdentity(cmd, e, home); err != nil {
			return "", fileConfig{}, nil, err
		}
	}
	return home, fc, id, nil
}

// readKey reads a profile's key: from keyFile if given, else with a no-echo
// prompt if stdin is a terminal, else all of stdin. One trailing newline is
// removed. A key never comes from a flag value: flags show up in process
// listings and shell history.
func readKey(e *env, keyFile, name string) ([]byte, error) {
	const limit = vault.MaxKeySize + 2 // room for "\r\n"
	var (
		b   []byte
		err error
	)
	switch f, isFile := e.stdin.(*os.File); {
	case keyFile != "":
		kf, oerr := os.Open(keyFile)
		if oerr != nil {
			return nil, fmt.Errorf("key file: %w", oerr)
		}
		b, err = io.ReadAll(io.LimitReader(kf, limit+1))
		kf.Close()
		if err != nil {
			return nil, fmt.Errorf("read key file %s: %w", keyFile, err)
		}
	case isFile && term.IsTerminal(int(f.Fd())):
		fmt.Fprintf(e.stderr, "API key for profile %s (input hidden): ", name)
		b, err = term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return nil, fmt.Errorf("read key: %w", err)
		}
	default:
		if e.stdin == nil {
			return nil, errors.New("no key given: pipe it on stdin or use --key-file")
		}
		b, err = io.ReadAll(io.LimitReader(e.stdin, limit+1))
		if err != nil {
			return nil, fmt.Errorf("read key from stdin: %w", err)
		}
	}
	if len(b) > limit {
		clear(b)
		return nil, fmt.Errorf("key is longer than %d bytes", vault.MaxKeySize)
	}
	b = trimNewline(b)
	if len(b) == 0 {
		return nil, errors.New("key is empty: pipe it on stdin, type it at the prompt, or use --key-file")
	}
	return b, nil
}

// warnAdmin records the admin audit event for a profile change. The change
// has already happened on disk by then, so failing to record it is reported
// as a warning on stderr and the command still succeeds: returning an error
// would tell the operator the change failed when it did not.
func warnAdmin(ctx context.Context, e *env, fc fileConfig, what string, ev adminEvent) {
	created, err := recordAdmin(ctx, fc, ev)
	if created {
		fmt.Fprintf(e.stderr, "kanbot-sidecar: warning: the audit database %s was missing or had no audit schema; a new one was created and its chain starts at seq 1\n", fc.auditPath())
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "kanbot-sidecar: warning: profile %s %s, but recording the admin audit event failed: %v\n", ev.Profile, what, err)
	}
}

func orDefault(s string) string {
	if s == "" {
		return "(default)"
	}
	return s
}

func rateBurst(m profiles.Meta) string {
	r, b := "default", "default"
	if m.Rate != 0 {
		r = strconv.FormatFloat(m.Rate, 'g', -1, 64)
	}
	if m.Burst != 0 {
		b = strconv.Itoa(m.Burst)
	}
	return r + "/" + b
}

func rotated(m profiles.Meta) string {
	if m.RotatedAt.IsZero() {
		return "never"
	}
	return m.RotatedAt.UTC().Format(time.RFC3339)
}
