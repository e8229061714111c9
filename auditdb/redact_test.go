package auditdb_test

import "testing"

// TestQueryRedactionVariants: the spellings of a redacted name that some
// server reads as that name are caught too (';' separators, '+' and %20
// spaces, PHP-style [] and [index] suffixes), names that cannot be decoded
// or are empty fail closed, and no value reaches the database files.
func TestQueryRedactionVariants(t *testing.T) {
	t.Parallel()
	assertRedacted(t, []string{"password", "secret", "key", "API_KEY", "token"}, []redactCase{
		{"password[]=kb_SECRET_S5&x=1;secret=kb_SECRET_S6&key+=kb_SECRET_SA&key%20=kb_SECRET_SG&secret;=kb_SECRET_SH",
			"password[]=REDACTED&x=1;secret=REDACTED&key+=REDACTED&key%20=REDACTED&secret;=REDACTED"},
		{"api_key=kb_SECRET_1&Key=kb_SECRET_2&TOKEN=kb_SECRET_3&k%65y=kb_SECRET_4",
			"api_key=REDACTED&Key=REDACTED&TOKEN=REDACTED&k%65y=REDACTED"},
		{"password[0]=kb_SECRET_7;Secret[a][b]=kb_SECRET_8&+key+=kb_SECRET_9&password%5B%5D=kb_SECRET_10",
			"password[0]=REDACTED;Secret[a][b]=REDACTED&+key+=REDACTED&password%5B%5D=REDACTED"},
		{"%zzkey=kb_SECRET_11&=kb_SECRET_12&secret%3Bx=kb_SECRET_13", "%zzkey=REDACTED&=REDACTED&secret%3Bx=REDACTED"},
		{"keys=keep&x=key&monkey=keep;q=%zz&&a;b", "keys=keep&x=key&monkey=keep;q=%zz&&a;b"},
		{"page=2;;token=kb_SECRET_14;", "page=2;;token=REDACTED;"},
	})
}
