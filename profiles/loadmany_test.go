package profiles_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
	"github.com/kanbot/kanbot-sidecar/profiles"
)

// TestLoadManyReportsFirstBroken: with many profiles decrypted by parallel
// workers, broken files fail the load, and the error always names the
// first broken profile by name.
func TestLoadManyReportsFirstBroken(t *testing.T) {
	t.Parallel()
	specs := make([]testutil.ProfileSpec, 150)
	for i := range specs {
		specs[i] = testutil.ProfileSpec{Name: fmt.Sprintf("user%03d", i)}
	}
	home := testutil.NewHome(t, specs...)
	id := testutil.IdentityOf(t, home)
	if snap := testutil.LoadHome(t, home); snap.Len() != 150 {
		t.Fatalf("Len() = %d", snap.Len())
	}
	for _, p := range []string{"user149", "user077"} {
		if err := os.WriteFile(filepath.Join(home, "vault", p+".age"), []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(home, "vault", "user120.age")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, err := profiles.Load(home, id)
		if err == nil || !strings.Contains(err.Error(), `profile "user077"`) || !strings.Contains(err.Error(), "user077.age") {
			t.Fatalf("Load = %v, want an error naming user077 and its file", err)
		}
	}
}
