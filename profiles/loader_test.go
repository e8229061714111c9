package profiles_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
	"github.com/kanbot/kanbot-sidecar/profiles"
	"github.com/kanbot/kanbot-sidecar/vault"
)

// TestLoaderSeesEveryChange: a Loader's cache never hides a change, a
// broken file, or a loosened permission.
func TestLoaderSeesEveryChange(t *testing.T) {
	t.Parallel()
	home := testutil.NewHome(t, testutil.ProfileSpec{Name: "alice", Key: canaryA}, testutil.ProfileSpec{Name: "bob"})
	id := testutil.IdentityOf(t, home)
	ld := &profiles.Loader{Home: home, Identity: id}
	st := &profiles.Store{Home: home, Identity: id}
	key := func(name string) string {
		t.Helper()
		snap, err := ld.Load()
		if err != nil {
			t.Fatal(err)
		}
		p, ok := snap.Get(name)
		if !ok {
			return ""
		}
		return p.Key.Reveal()
	}
	if got := key("alice"); got != canaryA {
		t.Fatalf("first load: wrong key for alice")
	}
	if got := key("alice"); got != canaryA {
		t.Fatalf("cached load: wrong key for alice")
	}
	if _, err := st.Rotate("alice", []byte(canaryB)); err != nil {
		t.Fatal(err)
	}
	if got := key("alice"); got != canaryB {
		t.Errorf("after rotate: Loader returned the old key")
	}
	if _, err := st.Remove("bob"); err != nil {
		t.Fatal(err)
	}
	if got := key("bob"); got != "" {
		t.Errorf("after remove: bob still loaded")
	}

	vf := filepath.Join(home, "vault", "alice.age")
	os.Chmod(vf, 0o644)
	if _, err := ld.Load(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("loose vault file with a cached key: Load = %v", err)
	}
	os.Chmod(vf, 0o600)

	// Overwritten in place (same inode): the new content is read.
	other, _ := vault.Encrypt([]byte("kb_sneaky_replacement"), nil, id)
	f, err := os.OpenFile(vf, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(other)
	f.Close()
	if _, err := ld.Load(); err == nil || !strings.Contains(err.Error(), "profiles.yaml says") {
		t.Errorf("vault file replaced in place: Load = %v, want a fingerprint mismatch", err)
	}
	// A failed load keeps nothing half-done: fix the file and load again.
	if _, err := st.Rotate("alice", []byte(canaryC)); err != nil {
		t.Fatal(err)
	}
	if got := key("alice"); got != canaryC {
		t.Error("after repair: wrong key")
	}
}

// BenchmarkReload1000 is a Loader reloading 1000 unchanged profiles (what the
// proxy does when profiles.yaml or vault/ changes).
func BenchmarkReload1000(b *testing.B) {
	specs := make([]testutil.ProfileSpec, 1000)
	for i := range specs {
		specs[i] = testutil.ProfileSpec{Name: fmt.Sprintf("user%04d", i)}
	}
	home := testutil.NewHome(b, specs...)
	ld := &profiles.Loader{Home: home, Identity: testutil.IdentityOf(b, home)}
	if _, err := ld.Load(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		snap, err := ld.Load()
		if err != nil {
			b.Fatal(err)
		}
		if snap.Len() != 1000 {
			b.Fatalf("Len() = %d", snap.Len())
		}
	}
}
