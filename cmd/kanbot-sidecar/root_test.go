package main

import (
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
