package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "config.yaml"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

func TestLoadConfigDefaultsWithoutFile(t *testing.T) {
	home := t.TempDir()
	fc, err := loadConfig(home, nil)
	if err != nil {
		t.Fatalf("loadConfig(no file) = %v", err)
	}
	if fc.Listen != "127.0.0.1:8787" || fc.AdminListen != "127.0.0.1:8788" || fc.Upstream != "http://127.0.0.1:8000" {
		t.Errorf("listen/admin/upstream = %q %q %q, want the DESIGN.md defaults", fc.Listen, fc.AdminListen, fc.Upstream)
	}
	if fc.InjectHeader != "X-API-Key" || fc.UpstreamTimeout != 30*time.Second || fc.ShutdownTimeout != 10*time.Second {
		t.Errorf("inject/timeouts = %q %v %v", fc.InjectHeader, fc.UpstreamTimeout, fc.ShutdownTimeout)
	}
	if fc.RateLimit.Rate != 10 || fc.RateLimit.Burst != 20 {
		t.Errorf("rate_limit = %v/%d, want 10/20", fc.RateLimit.Rate, fc.RateLimit.Burst)
	}
	if fc.Audit.Durability != "process" || fc.Audit.FailOpen || fc.auditPath() != filepath.Join(home, "audit.db") {
		t.Errorf("audit = %+v (path %s)", fc.Audit, fc.auditPath())
	}
	if got := strings.Join(fc.Audit.RedactQuery, ","); got != "api_key,key,token,password,secret" {
		t.Errorf("audit.redact_query = %s", got)
	}
	if fc.Log.Level != "info" || fc.Log.Format != "auto" {
		t.Errorf("log = %+v", fc.Log)
	}
}

// TestLoadConfigPrecedence checks flags > env > config.yaml > defaults.
func TestLoadConfigPrecedence(t *testing.T) {
	home := writeConfig(t, "listen: 127.0.0.1:9001\nupstream: http://127.0.0.1:9100\nrate_limit:\n  rate: 3\naudit:\n  path: /tmp/x-audit.db\n")
	t.Setenv("KANBOT_SIDECAR_UPSTREAM", "http://127.0.0.1:9200")
	t.Setenv("KANBOT_SIDECAR_RATE_LIMIT_BURST", "7")
	t.Setenv("KANBOT_SIDECAR_AUDIT_DURABILITY", "power")
	flags := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	flags.String("listen", defaults["listen"].(string), "")
	flags.String("upstream", defaults["upstream"].(string), "")
	if err := flags.Parse([]string{"--upstream", "http://127.0.0.1:9300"}); err != nil {
		t.Fatal(err)
	}
	fc, err := loadConfig(home, flags)
	if err != nil {
		t.Fatalf("loadConfig = %v", err)
	}
	checks := []struct{ name, got, want string }{
		{"listen (file beats unset flag)", fc.Listen, "127.0.0.1:9001"},
		{"upstream (flag beats env and file)", fc.Upstream, "http://127.0.0.1:9300"},
		{"audit.durability (env beats default)", fc.Audit.Durability, "power"},
		{"audit path (absolute kept)", fc.auditPath(), "/tmp/x-audit.db"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if fc.RateLimit.Rate != 3 || fc.RateLimit.Burst != 7 {
		t.Errorf("rate_limit = %v/%d, want 3 (file) / 7 (env)", fc.RateLimit.Rate, fc.RateLimit.Burst)
	}
}

func TestLoadConfigRejectsBadInput(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"unknown top-level key", "lisen: 127.0.0.1:1\n", "lisen"},
		{"unknown nested key", "audit:\n  durabilty: power\n", "durabilty"},
		{"bad yaml", "listen: [\n", "config.yaml"},
		{"bad durability", "audit:\n  durability: sometimes\n", "audit.durability"},
		{"bad listen", "listen: nonsense\n", "listen"},
		{"bad upstream scheme", "upstream: ftp://x\n", "upstream"},
		{"upstream with credentials", "upstream: http://u:p@127.0.0.1:1\n", "upstream"},
		{"upstream port too big", "upstream: http://127.0.0.1:99999\n", "port"},
		{"upstream port zero", "upstream: http://127.0.0.1:0\n", "port"},
		{"upstream dot-dot path", "upstream: http://127.0.0.1:8000/a/../b\n", "path"},
		{"upstream path with space", "upstream: \"http://127.0.0.1:8000/a b\"\n", "path"},
		{"zero rate", "rate_limit:\n  rate: 0\n", "rate_limit"},
		{"bad timeout", "upstream_timeout: soon\n", "upstream_timeout"},
		{"bad log level", "log:\n  level: loud\n", "log.level"},
		{"allowed host wildcard", "allowed_hosts: [\"*\"]\n", "allowed_hosts"},
		{"allowed host with port", "allowed_hosts: [\"sidecar.internal:8787\"]\n", "allowed_hosts"},
		{"empty inject header", "inject_header: \"\"\n", "inject_header"},
		{"inject header Host", "inject_header: Host\n", "reserved"},
		{"inject header framing", "inject_header: content-length\n", "reserved"},
		{"inject header hop-by-hop", "inject_header: Connection\n", "reserved"},
		{"inject header request id", "inject_header: X-Request-Id\n", "reserved"},
		{"inject header tag look-alike", "inject_header: x_kanbot_profile\n", "reserved"},
		{"inject header browser", "inject_header: Sec-Fetch-Key\n", "reserved"},
		{"inject header not a token", "inject_header: \"X API Key\"\n", "not a header name"},
		{"client without hash", "clients:\n  - name: a\n    profiles: [alice]\n", "token_sha256"},
		{"client without profiles", "clients:\n  - name: a\n    token_sha256: " + strings.Repeat("ab", 32) + "\n", "profiles"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			home := writeConfig(t, c.body)
			_, err := loadConfig(home, nil)
			if err == nil {
				t.Fatalf("loadConfig(%q) = nil error, want one mentioning %q", c.body, c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("loadConfig(%q) = %v, want it to mention %q", c.body, err, c.want)
			}
		})
	}
}

func TestLoadConfigAcceptsCustomInjectHeader(t *testing.T) {
	for _, name := range []string{"X-API-Key", "X-Kanbot-Token", "Authorization", "x_api_key"} {
		home := writeConfig(t, "inject_header: "+name+"\n")
		fc, err := loadConfig(home, nil)
		if err != nil {
			t.Errorf("loadConfig(inject_header: %s) = %v, want nil", name, err)
			continue
		}
		if fc.InjectHeader != name {
			t.Errorf("InjectHeader = %q, want %q", fc.InjectHeader, name)
		}
	}
}

func TestLoadConfigUnixSocketRelativeToHome(t *testing.T) {
	home := writeConfig(t, "listen: unix:sidecar.sock\n")
	fc, err := loadConfig(home, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "unix:" + filepath.Join(home, "sidecar.sock"); fc.Listen != want {
		t.Errorf("listen = %q, want %q", fc.Listen, want)
	}
	home = writeConfig(t, "listen: unix:/run/x.sock\n")
	if fc, err = loadConfig(home, nil); err != nil || fc.Listen != "unix:/run/x.sock" {
		t.Errorf("absolute socket = %q, %v; want unchanged", fc.Listen, err)
	}
}
