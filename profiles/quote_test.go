package profiles_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanbot/kanbot-sidecar/profiles"
)

// pastedKey is a 46-character API key that a person pasted into the wrong
// field of profiles.yaml.
const pastedKey = "kb_fakegHc1Vx9Qm2LpT7zR4sW8yN3bK6dJ0aE5uF_XoIq"

// TestValidationErrorsDoNotEchoAPastedKey is the canary for values pasted
// into profiles.yaml by hand: whichever field holds the key, the error
// (which ends up in the reload log line, the reload_failed audit event and
// `profiles list` stderr) shows at most a short prefix of it, on the fast
// parser, on the strict one and through ReadFile.
func TestValidationErrorsDoNotEchoAPastedKey(t *testing.T) {
	t.Parallel()
	entry := func(old, new string) string {
		return "profiles:\n  bob:" + strings.Replace(goodEntry, old, new, 1) + "\n"
	}
	extra := func(line string) string { return "profiles:\n  bob:" + goodEntry + "\n" + line }
	for name, tc := range map[string]struct{ data, want string }{
		"email":           {entry("alice@example.com", pastedKey), "email"},
		"upstream":        {extra("    upstream: " + pastedKey + "\n"), "upstream"},
		"upstream url":    {extra("    upstream: ftp://h/" + pastedKey + "\n"), "upstream"},
		"key_fingerprint": {entry("sha256:0123456789ab", pastedKey), "key_fingerprint"},
		"allow_paths":     {extra("    allow_paths: [" + pastedKey + "]\n"), "allow path"},
		"allow_paths abs": {extra("    allow_paths: [/" + pastedKey + "/../x]\n"), "allow path"},
		"allow_methods":   {extra("    allow_methods: [" + pastedKey + "]\n"), "method"},
		"created_at":      {entry("2026-01-02T03:04:05Z", pastedKey), "created_at"},
		"name":            {"profiles:\n  " + pastedKey + strings.Repeat("X", 20) + ":" + goodEntry + "\n", "profile name"},
	} {
		home := t.TempDir()
		if err := os.WriteFile(filepath.Join(home, profiles.FileName), []byte(tc.data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, rerr := profiles.ReadFile(home)
		_, serr := profiles.ParseStrict([]byte(tc.data))
		_, ok, ferr := profiles.ParseFast([]byte(tc.data))
		errs := map[string]error{"ReadFile": rerr, "ParseStrict": serr}
		if ok {
			errs["ParseFast"] = ferr
		}
		for via, err := range errs {
			switch {
			case err == nil:
				t.Errorf("%s: %s accepted\n%s", name, via, tc.data)
			case strings.Contains(err.Error(), pastedKey[:12]):
				t.Errorf("%s: %s error quotes the pasted key: %v", name, via, err)
			case via == "ReadFile" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("%s: %s error %q does not mention %q", name, via, err, tc.want)
			}
		}
	}
}

// TestValidationErrorsQuoteAPrefix: a long bad value is shown as its first
// eight characters, "…" and its length; a short one in full.
func TestValidationErrorsQuoteAPrefix(t *testing.T) {
	t.Parallel()
	err := profiles.CheckEmail(pastedKey)
	if err == nil || !strings.Contains(err.Error(), `"kb_fakeg…" (46 chars)`) {
		t.Errorf("CheckEmail(key) = %v, want the prefix and the length", err)
	}
	if err := profiles.CheckMethod("get"); err == nil || !strings.Contains(err.Error(), `method "get"`) {
		t.Errorf("CheckMethod(get) = %v, want the short value in full", err)
	}
	if err := profiles.CheckPathPrefix("/ééééééééé"); err == nil || !strings.Contains(err.Error(), `"/ééééééé…" (10 chars)`) {
		t.Errorf("CheckPathPrefix(non-ASCII) = %v, want a prefix cut on a character boundary", err)
	}
	if err := profiles.CheckName("Alice"); err == nil || !strings.Contains(err.Error(), `"Alice"`) {
		t.Errorf("CheckName(Alice) = %v, want the name in full", err)
	}
}
