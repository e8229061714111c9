package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// benchProfile is the profile the harness drives through the sidecar.
const benchProfile = "bench"

// benchRate is the profile's rate limit (requests/s and burst). It is set
// far above what one machine can send so that the limiter is exercised on
// every request (as in production) but never refuses one: a 429 would fail
// the run rather than be counted as a fast answer.
const benchRate = "1000000"

// sidecarCLI runs one short kanbot-sidecar command (init, profiles add) the
// way a user would, with stdin piped, and returns its stdout.
func sidecarCLI(ctx context.Context, bin, home, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "--home", home)...)
	cmd.Env = sidecarEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		// The key is on stdin only; the CLI never prints it, and neither do we.
		return "", fmt.Errorf("kanbot-sidecar %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// sidecarEnv is the environment for sidecar processes: ours without any
// KANBOT_SIDECAR_* setting (the run must not depend on the caller's shell)
// and without proxy variables.
func sidecarEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "KANBOT_SIDECAR_"), strings.HasPrefix(k, "KANBOT_BENCH_"):
		case strings.EqualFold(k, "HTTP_PROXY"), strings.EqualFold(k, "HTTPS_PROXY"), strings.EqualFold(k, "ALL_PROXY"):
		default:
			env = append(env, kv)
		}
	}
	return env
}

// makeSidecarHome creates a home with one profile through the CLI:
// `init`, then `profiles add` with the key piped on stdin.
func makeSidecarHome(ctx context.Context, bin, home, upstreamURL, key string) error {
	if _, err := sidecarCLI(ctx, bin, home, "", "init"); err != nil {
		return err
	}
	_, err := sidecarCLI(ctx, bin, home, key+"\n", "profiles", "add", benchProfile,
		"--email", "bench@example.com", "--upstream", upstreamURL,
		"--rate", benchRate, "--burst", benchRate)
	return err
}

// sidecarProc is a running `kanbot-sidecar serve`.
type sidecarProc struct {
	*child
	url      string // proxy base URL
	adminURL string
	startup  time.Duration // from exec until /readyz answered 200
	home     string
}

// freeAddr returns a loopback address with a port that was free a moment
// ago. serve needs the port before it starts; the tiny window in which
// another process could take it only makes the start fail loudly.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startSidecar runs `kanbot-sidecar serve` on home with the proxy and admin
// listeners on free loopback ports, and waits until /readyz answers 200.
// The start-up time is measured from just before exec until that answer.
func startSidecar(ctx context.Context, bin, home, upstreamURL, logPath string) (*sidecarProc, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a port taken between freeAddr and bind
		listen, err := freeAddr()
		if err != nil {
			return nil, err
		}
		admin, err := freeAddr()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "serve", "--home", home,
			"--listen", listen, "--admin-listen", admin, "--upstream", upstreamURL)
		cmd.Env = append(sidecarEnv(), "KANBOT_SIDECAR_LOG_FORMAT=json")
		t0 := time.Now()
		c, err := startChild("sidecar", cmd, logPath)
		if err != nil {
			return nil, err
		}
		p := &sidecarProc{child: c, url: "http://" + listen, adminURL: "http://" + admin, home: home}
		if err := p.waitReady(ctx, 60*time.Second); err != nil {
			lastErr = err
			if c.running() {
				c.stop()
				return nil, err
			}
			continue
		}
		p.startup = time.Since(t0)
		return p, nil
	}
	return nil, fmt.Errorf("sidecar did not start (see %s): %w", logPath, lastErr)
}

// waitReady polls /readyz every millisecond until it answers 200, the
// process exits, or the deadline passes.
func (p *sidecarProc) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 2 * time.Second}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.adminURL+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("sidecar exited before it was ready: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("sidecar not ready within %v: %w", limit, ctx.Err())
		case <-tick.C:
		}
	}
}

// auditFiles returns the sidecar's audit database and its WAL and SHM files
// (those that exist).
func auditFiles(dbPath string) []string {
	var out []string
	for _, p := range []string{dbPath, dbPath + "-wal", dbPath + "-shm"} {
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// filesSize sums the sizes of paths.
func filesSize(paths []string) (int64, error) {
	var total int64
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return 0, err
		}
		total += fi.Size()
	}
	return total, nil
}

// sidecarBinary resolves the sidecar binary and fails with a hint when it
// has not been built.
func sidecarBinary(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(abs); err != nil || fi.IsDir() {
		return "", errors.New(path + " not found: run `make build` first (or `make bench`, which builds)")
	}
	return abs, nil
}
