package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// nginxConf is the baseline a user would reach for instead of the sidecar:
// nginx injecting the key with proxy_set_header, keep-alive to the upstream,
// access log on (the sidecar logs every request too). %[1]s is the prefix
// directory, %[2]s the listen address, %[3]s the upstream address, %[4]s the
// key, %[5]d the upstream keep-alive pool size.
const nginxConf = `daemon off;
master_process on;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream kanbot { server %[3]s; keepalive %[5]d; }
    server {
        listen %[2]s;
        location / {
            proxy_pass http://kanbot;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-API-Key "%[4]s";
        }
    }
}
`

// startNginx starts nginx in front of upstreamAddr if it is installed. It
// returns (nil, "", nil) when it is not: the harness never installs it.
func startNginx(ctx context.Context, dir, upstreamAddr, key string, maxConc int) (*child, string, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return nil, "", nil
	}
	prefix := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(prefix, 0o700); err != nil {
		return nil, "", err
	}
	listen, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, prefix, listen, upstreamAddr, key, maxConc), 0o600); err != nil {
		return nil, "", err
	}
	c, err := startChild("nginx", exec.Command(bin, "-p", prefix, "-c", conf), filepath.Join(dir, "nginx.log"))
	if err != nil {
		return nil, "", err
	}
	if err := waitListening(ctx, c, listen, 10*time.Second); err != nil {
		c.stop()
		return nil, "", fmt.Errorf("nginx: %w (see %s)", err, filepath.Join(prefix, "error.log"))
	}
	return c, "http://" + listen, nil
}

// waitListening polls addr until an HTTP request gets any answer.
func waitListening(ctx context.Context, c *child, addr string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: time.Second}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/health", nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
				return nil
			}
		}
		select {
		case <-c.exited:
			return fmt.Errorf("exited before listening: %v", c.err)
		case <-ctx.Done():
			return fmt.Errorf("not listening within %v", limit)
		case <-tick.C:
		}
	}
}
