package auditdb_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kanbot/kanbot-sidecar/auditdb"
)

// TestQueryRedactionVariants: the spellings of a redacted name that some
// server reads as that name are caught too (';' separators, '+' and %20
// spaces, PHP-style [] and [index] suffixes), names that cannot be decoded
// or are empty fail closed, and no value reaches the database files.
func TestQueryRedactionVariants(t *testing.T) {
	t.Parallel()
	db := openDB(t, auditdb.Config{RedactQuery: []string{"password", "secret", "key", "API_KEY", "token"}})
	cases := []struct{ in, want string }{
		{"password[]=kb_SECRET_S5&x=1;secret=kb_SECRET_S6&key+=kb_SECRET_SA&key%20=kb_SECRET_SG&secret;=kb_SECRET_SH",
			"password[]=REDACTED&x=1;secret=REDACTED&key+=REDACTED&key%20=REDACTED&secret;=REDACTED"},
		{"api_key=kb_SECRET_1&Key=kb_SECRET_2&TOKEN=kb_SECRET_3&k%65y=kb_SECRET_4",
			"api_key=REDACTED&Key=REDACTED&TOKEN=REDACTED&k%65y=REDACTED"},
		{"password[0]=kb_SECRET_7;Secret[a][b]=kb_SECRET_8&+key+=kb_SECRET_9&password%5B%5D=kb_SECRET_10",
			"password[0]=REDACTED;Secret[a][b]=REDACTED&+key+=REDACTED&password%5B%5D=REDACTED"},
		{"%zzkey=kb_SECRET_11&=kb_SECRET_12&secret%3Bx=kb_SECRET_13", "%zzkey=REDACTED&=REDACTED&secret%3Bx=REDACTED"},
		{"keys=keep&x=key&monkey=keep;q=%zz&&a;b", "keys=keep&x=key&monkey=keep;q=%zz&&a;b"},
		{"page=2;;token=kb_SECRET_14;", "page=2;;token=REDACTED;"},
	}
	for i, c := range cases {
		record(t, db, auditdb.Event{Kind: auditdb.KindRequest, RequestID: fmt.Sprint("v", i), Profile: "p", Method: "GET", Path: "/api/v1/x", Query: c.in})
	}
	rows, err := rawDB(t, db.Path()).Query("SELECT query FROM events ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			t.Fatal(err)
		}
		if q != cases[i].want {
			t.Errorf("stored query for %q =\n%q, want\n%q", cases[i].in, q, cases[i].want)
		}
		i++
	}
	if err := rows.Err(); err != nil || i != len(cases) {
		t.Fatalf("read %d rows, %v", i, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(db.Path() + suffix)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("kb_SECRET")) {
			t.Errorf("%s contains a redacted query value", filepath.Base(db.Path()+suffix))
		}
	}
}
