package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kanbot/kanbot-sidecar/kanbot"
)

// shutdownTimeout bounds the drain of in-flight requests on SIGINT/SIGTERM.
const shutdownTimeout = 10 * time.Second

func newServeCmd(e *env) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Kanbot HTTP API",
		Long: `Run the Kanbot HTTP API (GET /health and /api/v1/...) on --addr. The
database is created and migrated first. SIGINT or SIGTERM stops it cleanly:
the listener closes, in-flight requests finish (up to 10s), the database closes.
Logs go to stderr: JSON, or console text on a terminal.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(e)
			kb, err := openBackend(cmd, e, kanbot.Config{Logger: log})
			if err != nil {
				return err
			}
			defer kb.Close()
			return serve(cmd.Context(), log, kb.Handler(), addr)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", defaultAddr, "listen address host:port (port 0 picks a free one)")
	return cmd
}

// newLogger logs JSON to stderr, or console text when stderr is a terminal.
func newLogger(e *env) zerolog.Logger {
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return zerolog.New(zerolog.ConsoleWriter{Out: f, TimeFormat: time.TimeOnly}).With().Timestamp().Logger()
	}
	return zerolog.New(e.stderr).With().Timestamp().Logger()
}

// serve runs h on addr until ctx ends, then shuts down within shutdownTimeout.
func serve(ctx context.Context, log zerolog.Logger, h http.Handler, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fail(codeListen, "listen on %s: %v", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Str("version", version).Msg("listening")
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info().Msg("stopped")
	return nil
}
