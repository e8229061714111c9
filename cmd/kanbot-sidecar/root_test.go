package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestRootUsageExitCodes(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	for _, c := range []struct {
		args []string
		want int
		msg  string
	}{
		{[]string{"bogus"}, 2, "unknown command"},
		{[]string{"--no-such-flag"}, 2, "unknown flag"},
		{[]string{"profiles", "list", "--home", ""}, 2, "--home is empty"},
		{[]string{"version", "extra"}, 2, "unknown command"},
	} {
		code, _, stderr := runCLI(t, home, c.args...)
		if code != c.want || !strings.Contains(stderr, c.msg) {
			t.Errorf("%v = exit %d, stderr %q; want %d mentioning %q", c.args, code, stderr, c.want, c.msg)
		}
	}
}

// A passphrase problem is found before init creates anything, so the
// failed init leaves no half-made home behind.
func TestInitBadPassphraseFileCreatesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose")
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(loose, []byte("correct horse\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, pf := range []string{loose, empty, filepath.Join(dir, "missing")} {
		home := filepath.Join(dir, "home"+strconv.Itoa(i))
		code, _, stderr := runCLI(t, home, "init", "--passphrase-file", pf)
		if code != 1 || !strings.Contains(stderr, "passphrase") {
			t.Errorf("init --passphrase-file %s = %d (%q), want 1 about the passphrase", pf, code, stderr)
		}
		if _, err := os.Stat(home); !os.IsNotExist(err) {
			t.Errorf("failed init left %s behind (stat err %v)", home, err)
		}
	}
}
