package profiles_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kanbot/kanbot-sidecar/profiles"
)

// TestParseFastHandlesWhatWeWrite: files written by Marshal (every field
// set) take the linear-time path, not the quadratic fallback.
func TestParseFastHandlesWhatWeWrite(t *testing.T) {
	t.Parallel()
	ms := metas(50)
	ms[3].Upstream, ms[3].Rate, ms[3].Burst, ms[3].RotatedAt = "http://127.0.0.1:9/x", 2.5, 4, ms[3].CreatedAt.Add(1)
	data, err := profiles.Marshal(ms)
	if err != nil {
		t.Fatal(err)
	}
	ps, ok, err := profiles.ParseFast(data)
	if !ok || err != nil {
		t.Fatalf("ParseFast(Marshal(x)) = ok %v, %v; want the fast path to accept it", ok, err)
	}
	ref, err := profiles.ParseStrict(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ps, ref) {
		t.Fatalf("ParseFast and ParseStrict differ:\n%+v\n%+v", ps, ref)
	}
}

// TestParseDuplicateNamesTheFile: a duplicate name is reported with both
// lines, and ReadFile adds the file.
func TestParseDuplicateNamesTheFile(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	data := "profiles:\n  alice:" + goodEntry + "\n  bob:" + goodEntry + "\n  alice:" + goodEntry + "\n"
	if err := os.WriteFile(filepath.Join(home, profiles.FileName), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := profiles.ReadFile(home)
	if err == nil {
		t.Fatal("ReadFile accepted a duplicate name")
	}
	for _, want := range []string{filepath.Join(home, profiles.FileName), `duplicate profile "alice"`, "line 10", "line 2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ReadFile error %q does not mention %q", err, want)
		}
	}
}

// TestParseUnknownFieldsEverywhere: KnownFields semantics hold on the fast
// path and on the fallback (aliases, merge keys, nested mappings), in any
// entry, not only the first.
func TestParseUnknownFieldsEverywhere(t *testing.T) {
	t.Parallel()
	bob := "  bob:" + goodEntry + "\n"
	for name, tc := range map[string]struct{ data, want string }{
		"last entry":          {"profiles:\n  alice:" + goodEntry + "\n" + bob + "  carol:" + goodEntry + "\n    token: x\n", `"token"`},
		"flow style":          {"profiles:\n  alice: {email: a@b.c, key_fingerprint: sha256:0123456789ab, created_at: 2026-01-02T03:04:05Z, apikey: k}\n", "apikey"},
		"key in quotes":       {"profiles:\n  alice:" + goodEntry + "\n    \"api_key\": k\n", "api_key"},
		"unknown via alias":   {"profiles:\n  alice: &a {email: a@b.c, key_fingerprint: sha256:0123456789ab, created_at: 2026-01-02T03:04:05Z, x: 1}\n  bob: *a\n", "x"},
		"unknown via merge":   {"base: &b {x: 1}\nprofiles:\n  alice: {<<: *b}\n", "base"},
		"merge in entry":      {"profiles:\n  alice: &a {email: a@b.c, key_fingerprint: sha256:0123456789ab, created_at: 2026-01-02T03:04:05Z, y: 2}\n  bob: {<<: *a}\n", "y"},
		"field of created_at": {"profiles:\n  alice:\n    email: a@b.c\n    key_fingerprint: sha256:0123456789ab\n    created_at: 2026-01-02T03:04:05Z\n    rotated_at: {nsec: 1}\n", "nsec"},
		"numeric key":         {"profiles:\n  alice:" + goodEntry + "\n    7: x\n", "7"},
		"unknown top level":   {"profiles:\n" + bob + "extra: 1\n", "extra"},
	} {
		_, err := profiles.Parse([]byte(tc.data))
		if err == nil {
			t.Errorf("%s: Parse accepted\n%s", name, tc.data)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Parse error %q does not mention %q", name, err, tc.want)
		}
		if _, serr := profiles.ParseStrict([]byte(tc.data)); serr == nil {
			t.Errorf("%s: the strict reference accepts it", name)
		}
	}
}

// TestParseFallbackAcceptsValidYAML: valid files that use aliases or merge
// keys still load (through the fallback), as they did before.
func TestParseFallbackAcceptsValidYAML(t *testing.T) {
	t.Parallel()
	data := "profiles:\n  alice: &a {email: a@b.c, key_fingerprint: sha256:0123456789ab, created_at: 2026-01-02T03:04:05Z}\n" +
		"  bob: {<<: *a, email: bob@b.c}\n  carol: *a\n"
	ps, err := profiles.Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 || ps[1].Name != "bob" || ps[1].Email != "bob@b.c" || ps[2].Email != "a@b.c" {
		t.Fatalf("Parse = %+v", ps)
	}
	if _, ok, _ := profiles.ParseFast([]byte(data)); ok {
		t.Error("ParseFast claims to handle aliases and merge keys")
	}
}
