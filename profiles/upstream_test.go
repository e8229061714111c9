package profiles_test

import (
	"strings"
	"testing"

	"github.com/kanbot/kanbot-sidecar/profiles"
)

// TestCheckUpstreamPortAndPath: the port, if given, is 1–65535, and the
// base path is empty, "/" or clean (no dot or empty segments, spaces or
// control characters), in CheckUpstream and in profiles.yaml alike.
func TestCheckUpstreamPortAndPath(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{
		"http://h.example:1", "http://h.example:65535", "https://h.example:443/", "http://h.example/kanbot",
		"http://h.example/kanbot/", "http://h.example/a/b.c/d..e", "http://[::1]:8000/base",
	} {
		if err := profiles.CheckUpstream(ok); err != nil {
			t.Errorf("CheckUpstream(%q) = %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"http://h.example:99999":      "port",
		"http://h.example:65536":      "port",
		"http://h.example:0":          "port",
		"http://h.example:00":         "port",
		"http://h.example:":           "port",
		"http://[::1]:0/":             "port",
		"http://h.example/../x":       "..",
		"http://h.example/a/..":       "..",
		"http://h.example/./x":        ". or ..",
		"http://h.example/a/%2e%2e/b": "..",
		"http://h.example//x":         "empty segment",
		"http://h.example/a//b":       "empty segment",
		"http://h.example/ x":         "spaces",
		"http://h.example/x%20y":      "spaces, even %-encoded",
		"http://h.example/x%00y":      "spaces, even %-encoded",
		"http://h.example/caf%C3%A9":  "ASCII",
		"http://h.example/\tx":        "",
		"http://h.example/a\x7fb":     "",
		"http://h.example/a%5cb":      `\`,
		"http://h.example/a\\b":       "backslash",
		"http://h.example/a;b":        ";",
		"http://h.example/é":          "ASCII",
	} {
		err := profiles.CheckUpstream(bad)
		if err == nil {
			t.Errorf("CheckUpstream(%q) accepted", bad)
		} else if !strings.Contains(err.Error(), want) {
			t.Errorf("CheckUpstream(%q) = %v, want it to mention %q", bad, err, want)
		}
	}
	data := "profiles:\n  alice:" + goodEntry + "\n    upstream: http://h.example:99999\n"
	if _, err := profiles.Parse([]byte(data)); err == nil || !strings.Contains(err.Error(), "port") {
		t.Errorf("Parse with upstream port 99999 = %v, want a port error", err)
	}
}
