// Command demotool holds the few helpers examples/demo.sh needs and a fresh
// machine (Go, gcc and make, nothing else) may lack: free loopback ports,
// waiting for a server, and pulling one field out of a JSON document.
//
//	demotool ports N          print N free loopback TCP ports, one per line
//	demotool wait URL [DUR]   poll URL until it answers 200 (default 30s)
//	demotool field PATH       read JSON on stdin, print the string at PATH (e.g. data.key)
//
// field exists so that an API key printed by `kanbot apikey create --json`
// can be piped straight into `kanbot-sidecar profiles add` without ever
// being echoed, stored in a shell variable or named on a command line. It
// prints the value with no trailing newline, and its errors never quote the
// input.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demotool:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: demotool ports N | wait URL [DUR] | field PATH")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "ports":
		if len(rest) != 1 {
			return errors.New("usage: demotool ports N")
		}
		n, err := strconv.Atoi(rest[0])
		if err != nil || n < 1 || n > 16 {
			return fmt.Errorf("ports: N must be 1..16, got %q", rest[0])
		}
		return ports(n, stdout)
	case "wait":
		if len(rest) < 1 || len(rest) > 2 {
			return errors.New("usage: demotool wait URL [DURATION]")
		}
		d := 30 * time.Second
		if len(rest) == 2 {
			var err error
			if d, err = time.ParseDuration(rest[1]); err != nil || d <= 0 {
				return fmt.Errorf("wait: bad duration %q", rest[1])
			}
		}
		return wait(rest[0], d)
	case "field":
		if len(rest) != 1 {
			return errors.New("usage: demotool field PATH")
		}
		return field(rest[0], stdin, stdout)
	default:
		return fmt.Errorf("unknown command %q (want ports, wait or field)", cmd)
	}
}

// ports holds n listeners open at once so the ports are distinct, then
// closes them. Another process could take one before the caller binds it;
// on a demo machine that race is rare, and the caller fails loudly if so.
func ports(n int, w io.Writer) error {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("ports: %w", err)
		}
		ls = append(ls, l)
	}
	for _, l := range ls {
		fmt.Fprintln(w, l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

// wait polls url until it answers 200 or d passes.
func wait(url string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait: %s did not answer 200 within %v (last: %s)", url, d, last)
		case <-tick.C:
		}
	}
}

// field prints the string found at a dotted path in the JSON on r.
func field(path string, r io.Reader, w io.Writer) error {
	var v any
	if err := json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(&v); err != nil {
		return errors.New("field: stdin is not a JSON document")
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("field: %q: not an object at %q", path, k)
		}
		if v, ok = m[k]; !ok {
			return fmt.Errorf("field: %q: no %q in the input", path, k)
		}
	}
	s, ok := v.(string)
	if !ok || s == "" {
		return fmt.Errorf("field: %q is not a non-empty string", path)
	}
	_, err := io.WriteString(w, s)
	return err
}
