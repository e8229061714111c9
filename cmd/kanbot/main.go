// Command kanbot is the bundled Kanbot backend: the agent-facing API server
// (`kanbot serve`) and its admin CLI (users, API keys, spaces, system, db),
// with the command tree and --json envelope of the real Kanbot CLI. See
// README.md, section "kanbot (the bundled backend)".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
