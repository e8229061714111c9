package main

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// cellRE finds the start of each cell of a table line: tabwriter pads cells
// with at least two spaces, and no value in these tables has two in a row.
var cellRE = regexp.MustCompile(`(?:^|  )(\S)`)

// cellStarts returns the byte offsets at which the cells of line begin.
func cellStarts(line string) []int {
	var starts []int
	for _, m := range cellRE.FindAllStringSubmatchIndex(line, -1) {
		starts = append(starts, m[2])
	}
	return starts
}

// TestListCommandsPrintTables checks the human output of the list commands:
// the header, one aligned line per item, then the count line that is also the
// --json message.
func TestListCommandsPrintTables(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "k.db")
	ok(t, db, "db", "seed")
	ok(t, db, "user", "create", "--email", "alice@example.com", "--username", "alice")
	ok(t, db, "apikey", "create", "--user", "alice", "--name", "laptop")
	for _, tc := range []struct {
		args   []string
		header string
		rows   int
		count  string
		cell   string // a value that must appear in the rows
	}{
		{[]string{"user", "list"}, "ID EMAIL USERNAME ADMIN BANNED CREATED", 2, "2 user(s)", "alice@example.com"},
		{[]string{"space", "list"}, "ID NAME TYPE OWNER MEMBERS", 1, "1 space(s)", "Demo Space"},
		{[]string{"space", "list", "--owner", "alice"}, "ID NAME TYPE OWNER MEMBERS", 0, "0 space(s)", ""},
		{[]string{"apikey", "list"}, "ID NAME HASH PREFIX USER LAST USED", 1, "1 key(s)", "laptop"},
		{[]string{"apikey", "list", "--user", "demo"}, "ID NAME HASH PREFIX USER LAST USED", 0, "0 key(s)", ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			code, out, errOut := cli(t, nil, append(tc.args, "--db", db)...)
			if code != 0 || errOut != "" {
				t.Fatalf("kanbot %v = exit %d, stderr %q", tc.args, code, errOut)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != tc.rows+2 {
				t.Fatalf("kanbot %v printed %d lines, want header, %d rows and count:\n%s", tc.args, len(lines), tc.rows, out)
			}
			if got := strings.Join(strings.Fields(lines[0]), " "); got != tc.header {
				t.Errorf("kanbot %v header = %q, want %q", tc.args, got, tc.header)
			}
			if got := lines[len(lines)-1]; got != tc.count {
				t.Errorf("kanbot %v last line = %q, want %q", tc.args, got, tc.count)
			}
			if tc.cell != "" && !strings.Contains(out, tc.cell) {
				t.Errorf("kanbot %v: %q missing from\n%s", tc.args, tc.cell, out)
			}
			head := cellStarts(lines[0])
			for _, row := range lines[1 : len(lines)-1] {
				if got := cellStarts(row); !slices.Equal(got, head) {
					t.Errorf("kanbot %v: row cells start at %v, header cells at %v:\n%s", tc.args, got, head, out)
				}
			}
		})
	}
}
