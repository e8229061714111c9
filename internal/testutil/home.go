// Package testutil holds helpers for tests only (imported from _test.go
// files, never by production code): real sidecar homes with real age files,
// and more as other parts land. Every helper cleans up with t.Cleanup or
// t.TempDir.
package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/profiles"
	"github.com/kanbot/kanbot-sidecar/vault"
)

// ProfileSpec describes one profile for NewHome. Only Name is required.
type ProfileSpec struct {
	Name string
	// Email defaults to Name@example.com.
	Email string
	// Key defaults to DefaultKey(Name).
	Key string
	// Upstream, Rate, Burst, AllowPaths and AllowMethods are stored as
	// given; their zero values mean the sidecar's defaults.
	Upstream     string
	Rate         float64
	Burst        int
	AllowPaths   []string
	AllowMethods []string
}

// DefaultKey is the key NewHome gives a profile whose spec has none: unique
// per name and easy to search for in canary checks.
func DefaultKey(name string) string {
	sum := sha256.Sum256([]byte("kanbot-sidecar test key " + name))
	return "kb_test_" + hex.EncodeToString(sum[:16])
}

// CreatedAt is the created_at time NewHome records for every profile.
var CreatedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// NewHome creates a complete sidecar home in a fresh temporary directory
// (removed when the test ends): a plain identity.txt, vault/<name>.age for
// each spec, and profiles.yaml, all with the modes the sidecar demands. It
// returns the home directory; IdentityOf loads its identity. It is fast
// enough for thousands of profiles (keys are encrypted in parallel, files
// are not fsynced).
func NewHome(t testing.TB, specs ...ProfileSpec) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	id, err := vault.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "identity.txt"), id.Marshal(CreatedAt), 0o600); err != nil {
		t.Fatal(err)
	}
	vdir := filepath.Join(home, profiles.VaultDirName)
	if err := os.Mkdir(vdir, 0o700); err != nil {
		t.Fatal(err)
	}

	metas := make([]profiles.Meta, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, s := range specs {
		if s.Email == "" {
			s.Email = s.Name + "@example.com"
		}
		if s.Key == "" {
			s.Key = DefaultKey(s.Name)
		}
		metas[i] = profiles.Meta{
			Name: s.Name, Email: s.Email, Upstream: s.Upstream, Rate: s.Rate, Burst: s.Burst,
			AllowPaths: s.AllowPaths, AllowMethods: s.AllowMethods,
			KeyFingerprint: vault.Fingerprint([]byte(s.Key)), CreatedAt: CreatedAt,
		}
		if err := profiles.CheckName(s.Name); err != nil {
			t.Fatalf("NewHome: %v", err)
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			data, err := vault.Encrypt([]byte(s.Key), nil, id)
			if err == nil {
				err = os.WriteFile(vault.Path(vdir, s.Name), data, 0o600)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("NewHome: profile %q: %v", specs[i].Name, err)
		}
	}
	if err := profiles.WriteFile(home, metas); err != nil {
		t.Fatalf("NewHome: %v", err)
	}
	return home
}

// IdentityOf loads the (plain) identity of a home made by NewHome or by
// `kanbot-sidecar init` without --passphrase.
func IdentityOf(t testing.TB, home string) *vault.Identity {
	t.Helper()
	id, err := vault.LoadIdentity(filepath.Join(home, "identity.txt"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// LoadHome loads the profiles of home with its identity, failing the test
// on error.
func LoadHome(t testing.TB, home string) *profiles.Snapshot {
	t.Helper()
	snap, err := profiles.Load(home, IdentityOf(t, home))
	if err != nil {
		t.Fatal(err)
	}
	return snap
}
