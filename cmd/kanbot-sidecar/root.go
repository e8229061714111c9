package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// version is set with -ldflags "-X main.version=…" by release builds.
var version = "dev"

// usageError marks bad usage (exit 2) as opposed to a failed operation (exit 1).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// env carries the process's streams and environment into commands, so that
// tests can run the CLI in-process with their own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// run executes the CLI and returns the process exit code: 0 ok, 1 failed
// operation, 2 bad usage.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "kanbot-sidecar:", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command ") {
		// cobra reports an unknown subcommand of the root as a plain error.
		return 2
	}
	return 1
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "kanbot-sidecar",
		Short: "Hold Kanbot API keys for an AI agent and inject them per profile",
		Long: `kanbot-sidecar is a local daemon that holds the Kanbot API keys of the people
an AI agent works for. The agent sends plain HTTP tagged with
X-Kanbot-Profile: <name>; the sidecar checks it, injects that profile's key,
enforces a per-profile rate limit, forwards it and records it in an audit DB.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("home", "", "sidecar home directory (env KANBOT_SIDECAR_HOME; default $XDG_CONFIG_HOME/kanbot-sidecar)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newInitCmd(e),
		newProfilesCmd(e),
		newServeCmd(e),
		newVerifyCmd(e),
		newAuditCmd(e),
		newVersionCmd(e),
	)
	return root
}

// homeDir resolves the sidecar home: --home, then KANBOT_SIDECAR_HOME, then
// $XDG_CONFIG_HOME/kanbot-sidecar, then ~/.config/kanbot-sidecar.
func homeDir(cmd *cobra.Command, e *env) (string, error) {
	h, _ := cmd.Flags().GetString("home")
	if f := cmd.Flags().Lookup("home"); f != nil && f.Changed && h == "" {
		// `--home "$UNSET"` must not quietly act on the default home.
		return "", usagef("--home is empty; give a directory or leave the flag out")
	}
	if h == "" {
		h = e.getenv("KANBOT_SIDECAR_HOME")
	}
	if h == "" {
		if x := e.getenv("XDG_CONFIG_HOME"); x != "" {
			h = filepath.Join(x, "kanbot-sidecar")
		}
	}
	if h == "" {
		uh, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find home directory: %w (set --home)", err)
		}
		h = filepath.Join(uh, ".config", "kanbot-sidecar")
	}
	return filepath.Abs(h)
}

// exactArgs is cobra.ExactArgs with a usage exit code.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// noArgs is cobra.NoArgs with a usage exit code.
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return usageError{err}
	}
	return nil
}

// writeJSON prints v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newVersionCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				return writeJSON(e.stdout, map[string]string{"version": version})
			}
			_, err := fmt.Fprintln(e.stdout, "kanbot-sidecar", version)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
