package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Defaults match the sidecar's default listen address and the demo's profiles.
const (
	defaultSidecar  = "http://127.0.0.1:8787"
	defaultProfiles = "alice,bob,charlie"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args, runs the scenario and returns the exit status:
// 0 all expectations met, 1 some failed (or the sidecar is unreachable),
// 2 bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sidecar := fs.String("sidecar", defaultSidecar, "the sidecar's base URL (its `listen` address)")
	names := fs.String("profiles", defaultProfiles, "comma-separated profile names the agent works for")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agent: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := checkBaseURL(*sidecar); err != nil {
		fmt.Fprintf(stderr, "agent: --sidecar: %v\n", err)
		return 2
	}
	profiles, err := parseProfiles(*names)
	if err != nil {
		fmt.Fprintf(stderr, "agent: --profiles: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	a := newAgent(newClient(*sidecar), stdout, profiles)
	if err := a.run(ctx); err != nil {
		fmt.Fprintf(stderr, "agent: %v\n", err)
		if errors.Is(err, errUnreachable) {
			fmt.Fprintf(stderr, "agent: is `kanbot-sidecar serve` running and listening on %s?\n", *sidecar)
		}
		return 1
	}
	if a.failed > 0 {
		return 1
	}
	return 0
}

// checkBaseURL accepts an http URL with a host and no query.
func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("%q: want http://host:port (the sidecar speaks plain HTTP on loopback)", s)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: want http://host:port with no query", s)
	}
	return nil
}

// parseProfiles splits a comma-separated list, refusing empty and repeated names.
func parseProfiles(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if seen[n] {
			return nil, fmt.Errorf("profile %q is listed twice", n)
		}
		seen[n] = true
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no profile names given")
	}
	return out, nil
}
