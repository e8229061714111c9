package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if code, ok := roleMain(); ok {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// roleMain runs this binary as one of the helper processes the harness
// re-executes it as (see startSelf), if the environment asks for one.
func roleMain() (code int, ok bool) {
	switch os.Getenv(envRole) {
	case roleUpstream:
		return upstreamMain(), true
	case roleNoAudit:
		return noAuditMain(), true
	}
	return 0, false
}
