package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kanbot/kanbot-sidecar/kanbot"
)

// version is set with -ldflags "-X main.version=…" by release builds.
var version = "dev"

// Defaults of the CLI.
const (
	defaultDB   = "./kanbot.db"
	defaultAddr = "127.0.0.1:8000"
	envDB       = "KANBOT_DB"
)

// Error codes of the --json failure envelope (the real Kanbot CLI's).
const (
	codeEmailExists    = "EMAIL_EXISTS"
	codeUsernameExists = "USERNAME_EXISTS"
	codeUserNotFound   = "USER_NOT_FOUND"
	codeKeyNotFound    = "KEY_NOT_FOUND"
	codeSpaceNotFound  = "SPACE_NOT_FOUND"
	codeInvalidID      = "INVALID_ID"
	codeValidation     = "VALIDATION_ERROR"
	codeUnhealthy      = "UNHEALTHY"
	codeUsage          = "USAGE_ERROR"
	codeDB             = "DB_ERROR"
	codeListen         = "LISTEN_FAILED"
)

// usageError marks bad usage (exit 2) as opposed to a failed operation (exit 1).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// opError is a failed operation with its envelope code.
type opError struct {
	code string
	err  error
}

func (e *opError) Error() string { return e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// fail returns an operation failure with code and a message.
func fail(code, format string, args ...any) error {
	return &opError{code: code, err: fmt.Errorf(format, args...)}
}

// codeOf decides the envelope code of any error.
func codeOf(err error) string {
	var oe *opError
	var ve *kanbot.ValidationError
	switch {
	case errors.As(err, &oe):
		return oe.code
	case errors.Is(err, kanbot.ErrEmailExists):
		return codeEmailExists
	case errors.Is(err, kanbot.ErrUsernameExists):
		return codeUsernameExists
	case errors.Is(err, kanbot.ErrUserNotFound):
		return codeUserNotFound
	case errors.Is(err, kanbot.ErrAPIKeyNotFound):
		return codeKeyNotFound
	case errors.Is(err, kanbot.ErrSpaceNotFound):
		return codeSpaceNotFound
	case errors.As(err, &ve):
		return codeValidation
	default:
		return codeDB
	}
}

// env carries the process's streams and environment into commands, so that
// tests can run the CLI in-process with their own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// run executes the CLI and returns the exit code: 0 ok, 1 failed operation,
// 2 bad usage. With --json a failure is also printed as the JSON envelope
// on stdout; the message always goes to stderr.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	asJSON := false
	if f := cmd.Flags().Lookup("json"); f != nil {
		asJSON = f.Value.String() == "true"
	}
	var ue usageError
	isUsage := errors.As(err, &ue)
	if asJSON {
		code := codeUsage
		if !isUsage {
			code = codeOf(err)
		}
		writeJSON(stdout, failure{Success: false, Error: err.Error(), Code: code})
	}
	fmt.Fprintln(stderr, "kanbot:", err)
	if isUsage {
		return 2
	}
	return 1
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "kanbot",
		Short: "The bundled Kanbot backend: API server and admin CLI",
		Long: `kanbot is a Go implementation of the agent-facing Kanbot backend on an
embedded SQLite database: "kanbot serve" runs the HTTP API, the other commands
administer users, API keys and spaces. Every command takes --db PATH
(env KANBOT_DB, default ./kanbot.db); data commands take --json.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("db", "", "SQLite database file (env KANBOT_DB; default "+defaultDB+")")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newServeCmd(e),
		newUserCmd(e),
		newAPIKeyCmd(e),
		newSpaceCmd(e),
		newSystemCmd(e),
		newDBCmd(e),
	)
	// A group command run without a subcommand, or with an unknown one, is
	// bad usage.
	for _, c := range append(root.Commands(), root) {
		if c.HasSubCommands() {
			c.Args = noArgs
			c.RunE = func(cmd *cobra.Command, _ []string) error {
				return usageError{fmt.Errorf("%s needs a subcommand (see %s --help)", cmd.CommandPath(), cmd.CommandPath())}
			}
		}
	}
	return root
}

// dbPath resolves --db, then KANBOT_DB, then ./kanbot.db.
func dbPath(cmd *cobra.Command, e *env) string {
	p, _ := cmd.Flags().GetString("db")
	if p == "" {
		p = e.getenv(envDB)
	}
	if p == "" {
		p = defaultDB
	}
	return p
}

// openBackend opens (creating and migrating) the database for one command.
func openBackend(cmd *cobra.Command, e *env, cfg kanbot.Config) (*kanbot.Backend, error) {
	cfg.DBPath = dbPath(cmd, e)
	cfg.Version = version
	kb, err := kanbot.Open(cmd.Context(), cfg)
	if err != nil {
		return nil, fail(codeDB, "%v", err)
	}
	return kb, nil
}

// withBackend runs f with an open backend and closes it after.
func withBackend(cmd *cobra.Command, e *env, f func(kb *kanbot.Backend) error) error {
	kb, err := openBackend(cmd, e, kanbot.Config{})
	if err != nil {
		return err
	}
	defer kb.Close()
	return f(kb)
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

// requireFlags makes flags required with a usage exit code. (cobra's own
// MarkFlagRequired check runs before any hook and returns a plain error.)
func requireFlags(cmd *cobra.Command, names ...string) {
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		for _, n := range names {
			if !c.Flags().Changed(n) {
				return usageError{fmt.Errorf("required flag --%s not set", n)}
			}
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

// jsonFlag adds --json to cmd.
func jsonFlag(cmd *cobra.Command, p *bool) {
	cmd.Flags().BoolVar(p, "json", false, "print one JSON document: {success, data, message}")
}

// writeJSON prints v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// envelope is the --json output of a command that succeeded.
type envelope struct {
	Success bool   `json:"success"`
	Data    any    `json:"data"`
	Message string `json:"message"`
}

// failure is the --json output of a command that failed (exit 1 or 2).
type failure struct {
	Success bool   `json:"success"`
	Error   string `json:"error"`
	Code    string `json:"code"`
}

// successTable prints a list result: the JSON envelope with data and the
// message count, or a table (the tab-separated header, then the rows that
// rows writes) followed by count on a line of its own.
func (e *env) successTable(asJSON bool, count string, data any, header string, rows func(tw io.Writer)) error {
	return e.success(asJSON, count, data, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, header)
		rows(tw)
		tw.Flush()
		fmt.Fprintln(w, count)
	})
}

// success prints a result: the JSON envelope, or human text (human, or the
// message when human is nil).
func (e *env) success(asJSON bool, message string, data any, human func(w io.Writer)) error {
	if asJSON {
		return writeJSON(e.stdout, envelope{Success: true, Data: data, Message: message})
	}
	if human != nil {
		human(e.stdout)
		return nil
	}
	_, err := fmt.Fprintln(e.stdout, message)
	return err
}
