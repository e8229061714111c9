package profiles_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
	"github.com/kanbot/kanbot-sidecar/profiles"
	"github.com/kanbot/kanbot-sidecar/vault"
)

func TestLoadNewHome(t *testing.T) {
	t.Parallel()
	home := testutil.NewHome(t,
		testutil.ProfileSpec{Name: "alice", Upstream: "http://127.0.0.1:9000", Rate: 5, Burst: 7},
		testutil.ProfileSpec{Name: "bob", Email: "robert@example.org", Key: "kb_bob_key", AllowMethods: []string{"GET"}, AllowPaths: []string{"/api/v1/spaces"}},
	)
	snap := testutil.LoadHome(t, home)
	if got, want := strings.Join(snap.Names(), ","), "alice,bob"; got != want {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
	a, _ := snap.Get("alice")
	if a.Key.Reveal() != testutil.DefaultKey("alice") || a.Email != "alice@example.com" || a.Upstream != "http://127.0.0.1:9000" || a.Rate != 5 || a.Burst != 7 {
		t.Errorf("alice = %+v", *a)
	}
	if a.Fingerprint != vault.Fingerprint([]byte(testutil.DefaultKey("alice"))) {
		t.Errorf("alice fingerprint = %s", a.Fingerprint)
	}
	b, _ := snap.Get("bob")
	if b.Key.Reveal() != "kb_bob_key" || b.Email != "robert@example.org" ||
		fmt.Sprint(b.Methods()) != "[GET]" || fmt.Sprint(b.Paths()) != "[/api/v1/spaces]" {
		t.Errorf("bob = %+v", *b)
	}
	if !b.CreatedAt.Equal(testutil.CreatedAt) || !b.RotatedAt.IsZero() {
		t.Errorf("bob times = %v %v", b.CreatedAt, b.RotatedAt)
	}
}

func TestLoadEmptyHome(t *testing.T) {
	t.Parallel()
	home := testutil.NewHome(t)
	if n := testutil.LoadHome(t, home).Len(); n != 0 {
		t.Errorf("Len() = %d, want 0", n)
	}
}

func TestLoadMissingVaultFile(t *testing.T) {
	t.Parallel()
	home := testutil.NewHome(t, testutil.ProfileSpec{Name: "alice"}, testutil.ProfileSpec{Name: "bob"})
	if err := os.Remove(filepath.Join(home, "vault", "bob.age")); err != nil {
		t.Fatal(err)
	}
	_, err := profiles.Load(home, testutil.IdentityOf(t, home))
	if err == nil || !strings.Contains(err.Error(), `profile "bob"`) || !strings.Contains(err.Error(), "bob.age") {
		t.Fatalf("Load = %v, want error naming bob and bob.age", err)
	}
	_ = errors.Is(err, fs.ErrNotExist)
}
