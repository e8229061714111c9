package proxy

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// ErrNonLoopback is returned (wrapped) by Listen for an address that is not
// loopback when non-loopback binding was not allowed.
var ErrNonLoopback = errors.New("refusing to bind a non-loopback address (set allow_non_loopback: true to permit it)")

// Listen opens the proxy's listener. addr is host:port, or unix:/path for a
// unix socket created with mode 0600 (a stale socket file at the path is
// replaced; any other file is not). A host that is not a loopback address
// or "localhost" (including an empty host, meaning every interface) is
// refused unless allowNonLoopback: the sidecar hands out other people's
// credentials to whoever can reach it.
//
// Serve the listener with the http.Server from Proxy.Server: together
// they let the pipeline see request framing Go's parser hides (see
// framingConn).
func Listen(addr string, allowNonLoopback bool) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return listenUnix(path)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen %q: want host:port or unix:/path", addr)
	}
	if !allowNonLoopback && !IsLoopbackHost(host) {
		return nil, fmt.Errorf("listen %s: %w", addr, ErrNonLoopback)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return framingListener{l}, nil
}

// IsLoopbackHost reports whether host (no port) is "localhost" or a
// loopback IP address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// listenUnix binds a unix socket that is never reachable with a looser mode:
// it binds a temporary name in the same directory, sets 0600, then renames
// it into place.
func listenUnix(path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("listen unix: empty socket path")
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("listen unix %s: file exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen unix %s: another process is listening there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen unix %s: remove stale socket: %w", path, err)
		}
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	_ = os.Remove(tmp)
	l, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ul.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("listen unix %s: chmod: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ul.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	return framingListener{&unixListener{UnixListener: ul, path: path}}, nil
}

// unixListener removes its socket file on Close.
type unixListener struct {
	*net.UnixListener
	path string
}

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	_ = os.Remove(l.path)
	return err
}
