package main

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Environment variables that turn this binary into the minimal upstream. The
// harness re-executes itself so that the upstream runs in its own process,
// as a real backend would, and does not share a Go runtime (scheduler, GC)
// with the load generator.
const (
	envRole        = "KANBOT_BENCH_ROLE"
	roleUpstream   = "upstream"
	envUpstreamKey = "KANBOT_BENCH_UPSTREAM_KEY"
)

// injectHeader is the header the upstream checks for the key: the sidecar's
// default inject_header, and what nginx and the direct client set.
const injectHeader = "X-API-Key"

// upstreamBodySize is the size of the upstream's fixed JSON response.
const upstreamBodySize = 1024

// upstreamBody returns a JSON object of exactly size bytes.
func upstreamBody(size int) []byte {
	const head, tail = `{"id":"bench","data":"`, `"}`
	pad := size - len(head) - len(tail)
	return []byte(head + strings.Repeat("x", max(pad, 0)) + tail)
}

// upstreamHandler answers every request with the fixed body if it carries
// the expected key, else 401, so a target that forgets to inject the key
// fails the run instead of being measured.
func upstreamHandler(key string) http.Handler {
	body := upstreamBody(upstreamBodySize)
	size := strconv.Itoa(len(body))
	want := []byte(key)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(injectHeader)), want) != 1 {
			http.Error(w, `{"error":"bad key"}`, http.StatusUnauthorized)
			return
		}
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{size}
		w.Write(body)
	})
}

// upstreamMain runs the upstream process: it listens on a free loopback
// port, prints the address as its first stdout line, and serves until
// SIGTERM or SIGINT.
func upstreamMain() int {
	key := os.Getenv(envUpstreamKey)
	if key == "" {
		fmt.Fprintln(os.Stderr, "bench upstream:", envUpstreamKey, "is not set")
		return 2
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench upstream:", err)
		return 1
	}
	srv := &http.Server{Handler: upstreamHandler(key), ReadHeaderTimeout: 10 * time.Second}
	fmt.Println(ln.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "bench upstream:", err)
		return 1
	}
	return 0
}

// startUpstream re-executes this binary as the upstream and returns the
// process and its address once it prints it.
func startUpstream(ctx context.Context, key, logPath string) (*child, string, error) {
	return startSelf(ctx, roleUpstream, []string{envUpstreamKey + "=" + key}, logPath)
}

// startSelf re-executes this binary in role with extra environment, and
// waits (up to 30 s) for the address it prints as its first stdout line.
func startSelf(ctx context.Context, role string, env []string, logPath string) (*child, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(append(sidecarEnv(), envRole+"="+role), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	c, err := startChild(role, cmd, logPath)
	if err != nil {
		return nil, "", err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			addr <- sc.Text()
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			c.stop()
			return nil, "", fmt.Errorf("%s exited before printing its address (see %s)", role, logPath)
		}
		return c, a, nil
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, "", fmt.Errorf("%s did not print its address within 30s", role)
	case <-ctx.Done():
		c.stop()
		return nil, "", ctx.Err()
	}
}
