package profiles_test

import (
	"reflect"
	"regexp"
	"testing"

	"github.com/kanbot/kanbot-sidecar/profiles"
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// FuzzValidName checks the hand-rolled ValidName against the regexp in
// DESIGN.md, and CheckName against ValidName.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"alice", "a", "", "Alice", "-a", "a-b.c_d", "a/b", "..", "a\n", "é", string(make([]byte, 64))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, want := profiles.ValidName(s), nameRE.MatchString(s)
		if got != want {
			t.Fatalf("ValidName(%q) = %v, regexp says %v", s, got, want)
		}
		if (profiles.CheckName(s) == nil) != got {
			t.Fatalf("CheckName(%q) disagrees with ValidName", s)
		}
	})
}

// FuzzLoadProfilesYAML: any profiles.yaml either fails with an error or
// parses to valid entries that survive a write and a re-read unchanged.
func FuzzLoadProfilesYAML(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("profiles: {}\n"))
	f.Add([]byte("profiles:\n  alice:" + goodEntry + "\n"))
	f.Add([]byte("profiles:\n  alice:" + goodEntry + "\n    rate: 2\n    burst: 3\n    allow_paths: [/api/v1/]\n    allow_methods: [GET]\n    upstream: http://h:1\n    rotated_at: 2026-05-06T07:08:09Z\n"))
	f.Add([]byte("profiles:\n  a: &x {email: a@b.c}\n  b: *x\n"))
	f.Add([]byte("profiles: [1, 2]\n---\nx: y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := profiles.Parse(data)
		if err != nil {
			return
		}
		for i := range ps {
			if err := ps[i].Validate(); err != nil {
				t.Fatalf("Parse returned an invalid entry: %v", err)
			}
		}
		out, err := profiles.Marshal(ps)
		if err != nil {
			t.Fatalf("Marshal(Parse(x)): %v", err)
		}
		again, err := profiles.Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(x))): %v\n%s", err, out)
		}
		if len(ps) == 0 && len(again) == 0 {
			return
		}
		for i := range ps { // time zones may differ; compare instants
			if !ps[i].CreatedAt.Equal(again[i].CreatedAt) || !ps[i].RotatedAt.Equal(again[i].RotatedAt) {
				t.Fatalf("times changed in a round trip")
			}
			again[i].CreatedAt, again[i].RotatedAt = ps[i].CreatedAt, ps[i].RotatedAt
		}
		if !reflect.DeepEqual(ps, again) {
			t.Fatalf("round trip changed the profiles:\n%+v\n%+v", ps, again)
		}
	})
}

// FuzzParseMatchesStrict: wherever the linear-time parser answers, it
// agrees with yaml.v3's strict decoder (the reference): same acceptance,
// same profiles.
func FuzzParseMatchesStrict(f *testing.F) {
	f.Add([]byte("profiles:\n  alice:" + goodEntry + "\n  bob:" + goodEntry + "\n"))
	f.Add([]byte("profiles:\n  alice:" + goodEntry + "\n  alice:" + goodEntry + "\n"))
	f.Add([]byte("profiles:\n  alice:" + goodEntry + "\n    api_key: x\n"))
	f.Add([]byte("profiles:\n  alice:" + goodEntry + "\n    rate: 2\n    burst: 3\n    allow_paths: [/api/v1/]\n    allow_methods: [GET]\n    upstream: http://h:1\n    rotated_at: 2026-05-06T07:08:09Z\n"))
	f.Add([]byte("profiles:\n  a: &x {email: a@b.c}\n  b: *x\n"))
	f.Add([]byte("profiles:\n  alice:\n  'alice':" + goodEntry + "\n"))
	f.Add([]byte("profiles: ~\n"))
	f.Add([]byte("profiles: [1, 2]\n---\nx: y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok, ferr := profiles.ParseFast(data)
		ref, serr := profiles.ParseStrict(data)
		if !ok {
			return
		}
		if (ferr == nil) != (serr == nil) {
			t.Fatalf("ParseFast error %v, ParseStrict error %v", ferr, serr)
		}
		if ferr == nil && !reflect.DeepEqual(fast, ref) && !(len(fast) == 0 && len(ref) == 0) {
			t.Fatalf("ParseFast = %+v\nParseStrict = %+v", fast, ref)
		}
	})
}
