package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// fileConfig mirrors config.yaml (DESIGN.md, "The sidecar home"). Every key
// has an entry in defaults: viper only lets env values reach Unmarshal for
// keys it knows (spf13/viper#761).
type fileConfig struct {
	Listen           string        `mapstructure:"listen"`
	AdminListen      string        `mapstructure:"admin_listen"`
	Upstream         string        `mapstructure:"upstream"`
	AllowedHosts     []string      `mapstructure:"allowed_hosts"`
	AllowNonLoopback bool          `mapstructure:"allow_non_loopback"`
	InjectHeader     string        `mapstructure:"inject_header"`
	UpstreamTimeout  time.Duration `mapstructure:"upstream_timeout"`
	ShutdownTimeout  time.Duration `mapstructure:"shutdown_timeout"`
	RateLimit        struct {
		Rate  float64 `mapstructure:"rate"`
		Burst int     `mapstructure:"burst"`
	} `mapstructure:"rate_limit"`
	Audit struct {
		Path        string   `mapstructure:"path"`
		Durability  string   `mapstructure:"durability"`
		FailOpen    bool     `mapstructure:"fail_open"`
		RedactQuery []string `mapstructure:"redact_query"`
	} `mapstructure:"audit"`
	Vault struct {
		Recipients []string `mapstructure:"recipients"`
	} `mapstructure:"vault"`
	Clients []clientConfig `mapstructure:"clients"`
	Log     struct {
		Level  string `mapstructure:"level"`
		Format string `mapstructure:"format"`
	} `mapstructure:"log"`

	// home is where the config was read from; relative paths resolve here.
	home string
}

// clientConfig is one entry of `clients`: an agent process identified by a
// token whose SHA-256 (hex) is stored, allowed a set of profiles.
type clientConfig struct {
	Name        string   `mapstructure:"name"`
	TokenSHA256 string   `mapstructure:"token_sha256"`
	Profiles    []string `mapstructure:"profiles"`
}

// defaults holds every config key with its default value. Flag defaults read
// from here too, so there is one source of truth.
var defaults = map[string]any{
	"listen":             "127.0.0.1:8787",
	"admin_listen":       "127.0.0.1:8788",
	"upstream":           "http://127.0.0.1:8000",
	"allowed_hosts":      []string{},
	"allow_non_loopback": false,
	"inject_header":      "X-API-Key",
	"upstream_timeout":   "30s",
	"shutdown_timeout":   "10s",
	"rate_limit.rate":    10.0,
	"rate_limit.burst":   20,
	"audit.path":         "audit.db",
	"audit.durability":   "process",
	"audit.fail_open":    false,
	"audit.redact_query": []string{"api_key", "key", "token", "password", "secret"},
	"vault.recipients":   []string{},
	"clients":            []map[string]any{},
	"log.level":          "info",
	"log.format":         "auto",
}

// flagKeys maps command-line flag names to config keys; loadConfig binds
// whichever of them the command defines.
var flagKeys = map[string]string{
	"listen":       "listen",
	"admin-listen": "admin_listen",
	"upstream":     "upstream",
	"log-level":    "log.level",
	"log-format":   "log.format",
}

// loadConfig is the only function in the sidecar that touches viper.
// Precedence (DESIGN.md): flags > KANBOT_SIDECAR_* env > config.yaml > defaults.
// A missing config.yaml is fine; unknown keys in it are an error.
func loadConfig(home string, flags *pflag.FlagSet) (fileConfig, error) {
	v := viper.New()
	v.SetEnvPrefix("KANBOT_SIDECAR")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for key, def := range defaults {
		v.SetDefault(key, def)
	}
	if flags != nil {
		for name, key := range flagKeys {
			if f := flags.Lookup(name); f != nil {
				if err := v.BindPFlag(key, f); err != nil {
					return fileConfig{}, fmt.Errorf("bind flag --%s: %w", name, err)
				}
			}
		}
	}
	path := filepath.Join(home, "config.yaml")
	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fileConfig{}, fmt.Errorf("read %s: %w", path, err)
	}
	var fc fileConfig
	if err := v.UnmarshalExact(&fc); err != nil {
		// The bad value may come from the file, a KANBOT_SIDECAR_* variable
		// or a flag; viper does not say which, so name all three.
		return fileConfig{}, fmt.Errorf("parse settings (%s, KANBOT_SIDECAR_* environment, flags): %w", path, err)
	}
	fc.home = home
	if sock, ok := strings.CutPrefix(fc.Listen, "unix:"); ok && sock != "" && !filepath.IsAbs(sock) {
		// Relative paths are under the home, as for audit.path, not
		// under whatever directory serve happens to be started from.
		fc.Listen = "unix:" + filepath.Join(home, sock)
	}
	if err := fc.validate(); err != nil {
		return fileConfig{}, fmt.Errorf("config: %w", err)
	}
	return fc, nil
}

// validate checks values that UnmarshalExact cannot, so that serve fails at
// start with a clear message rather than at the first request.
func (fc *fileConfig) validate() error {
	if fc.Listen == "" {
		return errors.New("listen: must not be empty")
	}
	if !strings.HasPrefix(fc.Listen, "unix:") {
		if _, _, err := net.SplitHostPort(fc.Listen); err != nil {
			return fmt.Errorf("listen %q: want host:port or unix:/path", fc.Listen)
		}
	}
	if fc.AdminListen != "" {
		if _, _, err := net.SplitHostPort(fc.AdminListen); err != nil {
			return fmt.Errorf("admin_listen %q: want host:port or empty", fc.AdminListen)
		}
	}
	if err := checkUpstreamURL(fc.Upstream); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	if err := checkInjectHeader(fc.InjectHeader); err != nil {
		return err
	}
	for _, h := range fc.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "*?/@ ") || (strings.Contains(h, ":") && net.ParseIP(h) == nil) {
			return fmt.Errorf("allowed_hosts %q: want a plain host name or address (no wildcards, ports, paths or credentials)", h)
		}
	}
	if fc.UpstreamTimeout <= 0 {
		return fmt.Errorf("upstream_timeout %v: must be positive", fc.UpstreamTimeout)
	}
	if fc.ShutdownTimeout <= 0 {
		return fmt.Errorf("shutdown_timeout %v: must be positive", fc.ShutdownTimeout)
	}
	if fc.RateLimit.Rate <= 0 || fc.RateLimit.Burst <= 0 {
		return fmt.Errorf("rate_limit: rate (%v) and burst (%d) must be positive", fc.RateLimit.Rate, fc.RateLimit.Burst)
	}
	switch fc.Audit.Durability {
	case "process", "power":
	default:
		return fmt.Errorf("audit.durability %q: want process or power", fc.Audit.Durability)
	}
	if fc.Audit.Path == "" {
		return errors.New("audit.path: must not be empty")
	}
	switch fc.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level %q: want debug, info, warn or error", fc.Log.Level)
	}
	switch fc.Log.Format {
	case "auto", "json", "console":
	default:
		return fmt.Errorf("log.format %q: want auto, json or console", fc.Log.Format)
	}
	for i, c := range fc.Clients {
		if c.Name == "" {
			return fmt.Errorf("clients[%d]: name is required", i)
		}
		if len(c.TokenSHA256) != 64 || strings.Trim(strings.ToLower(c.TokenSHA256), "0123456789abcdef") != "" {
			return fmt.Errorf("clients[%d] %q: token_sha256 must be 64 hex digits", i, c.Name)
		}
		if len(c.Profiles) == 0 {
			return fmt.Errorf("clients[%d] %q: profiles must list at least one profile (or \"*\")", i, c.Name)
		}
	}
	return nil
}

// auditPath resolves audit.path against the home.
func (fc *fileConfig) auditPath() string {
	if filepath.IsAbs(fc.Audit.Path) {
		return fc.Audit.Path
	}
	return filepath.Join(fc.home, fc.Audit.Path)
}

// checkUpstreamURL accepts an absolute http(s) URL with a host and nothing
// after the path (no query, fragment or credentials).
func checkUpstreamURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: must not contain credentials, a query or a fragment", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port must be 1-65535", s)
		}
	}
	if u.Path != "" && u.Path != "/" && (path.Clean(u.Path) != strings.TrimSuffix(u.Path, "/") || strings.ContainsAny(u.Path, " \t\r\n")) {
		return fmt.Errorf("%q: the path must be clean (no ., .. or empty segments, no spaces)", s)
	}
	return nil
}

// reservedHeaders are headers the proxy strips, sets itself or that frame
// the message. Injecting the key under one of them would send it nowhere
// (Host, framing), to the wrong place (X-Request-Id ends up in backend
// logs) or let the agent's own header collide with it.
var reservedHeaders = []string{
	"Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
	"Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "TE",
	"Trailer", "Upgrade", "Cookie", "X-Request-Id", "X-Kanbot-Profile",
	"X-Kanbot-Client-Token", "X-Kanbot-Sidecar-Error", "Origin",
	"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
}

// checkInjectHeader accepts an HTTP token header name that is none of
// reservedHeaders, compared as the proxy compares names: case-insensitively
// and with "_" standing for "-".
func checkInjectHeader(name string) error {
	if name == "" {
		return errors.New("inject_header: must not be empty")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("inject_header %q: not a header name (letters, digits, - and _ only)", name)
		}
	}
	norm := strings.ReplaceAll(name, "_", "-")
	if strings.HasPrefix(strings.ToLower(norm), "sec-") {
		return fmt.Errorf("inject_header %q: Sec-* names are reserved for browsers", name)
	}
	for _, r := range reservedHeaders {
		if strings.EqualFold(norm, r) {
			return fmt.Errorf("inject_header %q: reserved (%s already means something to the sidecar, to HTTP framing, to proxies or to browsers); use a header your backend reads the key from, such as X-API-Key", name, r)
		}
	}
	return nil
}
