package profiles_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
	"github.com/kanbot/kanbot-sidecar/profiles"
	"github.com/kanbot/kanbot-sidecar/vault"
)

const (
	canaryA = "kb_canary_alice_7d1c0e55aa"
	canaryB = "kb_canary_alice_rotated_91be"
	canaryC = "kb_canary_carol_3f8e2d"
)

func newStore(t *testing.T) (*profiles.Store, string) {
	t.Helper()
	home := testutil.NewHome(t)
	clock := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	return &profiles.Store{
		Home: home, Identity: testutil.IdentityOf(t, home),
		Now: func() time.Time { clock = clock.Add(time.Minute); return clock },
	}, home
}

// snapshotFiles returns every file under dir and its content.
func snapshotFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertNoKeysUnder is the canary check: no file under dir holds any key.
func assertNoKeysUnder(t *testing.T, dir string, keys ...string) {
	t.Helper()
	for p, content := range snapshotFiles(t, dir) {
		for _, k := range keys {
			if strings.Contains(content, k) {
				t.Errorf("%s contains a key in plain text", p)
			}
		}
	}
}

func TestStoreLifecycle(t *testing.T) {
	t.Parallel()
	st, home := newStore(t)
	id := st.Identity
	alice := profiles.Meta{Name: "alice", Email: "alice@example.com", Upstream: "http://127.0.0.1:8000", Rate: 3, Burst: 4,
		AllowPaths: []string{"/api/v1/"}, AllowMethods: []string{"GET"}}
	got, err := st.Add(alice, []byte(canaryA))
	if err != nil {
		t.Fatal(err)
	}
	if got.KeyFingerprint != vault.Fingerprint([]byte(canaryA)) || got.CreatedAt.IsZero() || !got.RotatedAt.IsZero() {
		t.Errorf("Add = %+v", got)
	}
	snap, err := profiles.Load(home, id)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := snap.Get("alice")
	if !ok || p.Key.Reveal() != canaryA || p.Rate != 3 || p.Burst != 4 || p.Upstream != "http://127.0.0.1:8000" {
		t.Fatalf("Load after Add: %+v", p)
	}

	// Refusals leave every file as it was.
	before := snapshotFiles(t, home)
	for name, try := range map[string]func() error{
		"duplicate": func() error {
			_, err := st.Add(profiles.Meta{Name: "alice", Email: "a2@example.com"}, []byte(canaryC))
			return err
		},
		"key in use": func() error {
			_, err := st.Add(profiles.Meta{Name: "carol", Email: "c@example.com"}, []byte(canaryA))
			return err
		},
		"invalid name": func() error {
			_, err := st.Add(profiles.Meta{Name: "Carol", Email: "c@example.com"}, []byte(canaryC))
			return err
		},
		"invalid email": func() error {
			_, err := st.Add(profiles.Meta{Name: "carol", Email: "carol"}, []byte(canaryC))
			return err
		},
		"invalid upstream": func() error {
			_, err := st.Add(profiles.Meta{Name: "carol", Email: "c@e.com", Upstream: "h:1"}, []byte(canaryC))
			return err
		},
		"empty key": func() error { _, err := st.Add(profiles.Meta{Name: "carol", Email: "c@example.com"}, nil); return err },
		"bad recipient": func() error {
			s2 := *st
			s2.Recipients = []string{"age1bogus"}
			_, err := s2.Add(profiles.Meta{Name: "carol", Email: "c@example.com"}, []byte(canaryC))
			return err
		},
		"rotate same key": func() error { _, err := st.Rotate("alice", []byte(canaryA)); return err },
		"rotate unknown":  func() error { _, err := st.Rotate("zed", []byte(canaryC)); return err },
		"remove unknown":  func() error { _, err := st.Remove("zed"); return err },
	} {
		err := try()
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		for _, k := range []string{canaryA, canaryC} {
			if strings.Contains(err.Error(), k) {
				t.Errorf("%s: error quotes the key: %v", name, err)
			}
		}
		after := snapshotFiles(t, home)
		delete(after, filepath.Join(home, profiles.LockName))
		b := maps(before)
		delete(b, filepath.Join(home, profiles.LockName))
		if fmt.Sprint(after) != fmt.Sprint(b) {
			t.Errorf("%s: files changed", name)
		}
	}
	if _, err := st.Add(profiles.Meta{Name: "alice", Email: "x@example.com"}, []byte(canaryC)); !errors.Is(err, profiles.ErrExists) {
		t.Errorf("duplicate: err = %v, want ErrExists", err)
	}
	if _, err := st.Rotate("zed", []byte(canaryC)); !errors.Is(err, profiles.ErrNotFound) {
		t.Errorf("rotate unknown: err = %v, want ErrNotFound", err)
	}

	rot, err := st.Rotate("alice", []byte(canaryB))
	if err != nil {
		t.Fatal(err)
	}
	if rot.KeyFingerprint != vault.Fingerprint([]byte(canaryB)) || rot.RotatedAt.IsZero() || !rot.CreatedAt.Equal(got.CreatedAt) || !rot.RotatedAt.After(rot.CreatedAt) {
		t.Errorf("Rotate = %+v", rot)
	}
	if p, _ := testutil.LoadHome(t, home).Get("alice"); p.Key.Reveal() != canaryB || !p.RotatedAt.Equal(rot.RotatedAt) {
		t.Errorf("after rotate: fingerprint %s rotated %v", p.Fingerprint, p.RotatedAt)
	}
	if _, err := st.Add(profiles.Meta{Name: "carol", Email: "carol@example.com"}, []byte(canaryC)); err != nil {
		t.Fatal(err)
	}
	assertNoKeysUnder(t, home, canaryA, canaryB, canaryC)

	rm, err := st.Remove("alice")
	if err != nil || rm.Name != "alice" {
		t.Fatalf("Remove = %+v, %v", rm, err)
	}
	if _, err := os.Stat(vault.Path(filepath.Join(home, "vault"), "alice")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("vault file left after Remove: %v", err)
	}
	if snap := testutil.LoadHome(t, home); strings.Join(snap.Names(), ",") != "carol" {
		t.Errorf("after remove: %v", snap.Names())
	}
	// The freed key may be used again.
	if _, err := st.Add(profiles.Meta{Name: "dave", Email: "dave@example.com"}, []byte(canaryA)); err != nil {
		t.Errorf("re-using a removed profile's key: %v", err)
	}
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestStoreExtraRecipients(t *testing.T) {
	t.Parallel()
	st, home := newStore(t)
	backup, err := vault.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	st.Recipients = []string{backup.Recipient()}
	if _, err := st.Add(profiles.Meta{Name: "alice", Email: "a@example.com"}, []byte(canaryA)); err != nil {
		t.Fatal(err)
	}
	s, err := vault.Open(filepath.Join(home, "vault"), "alice", backup)
	if err != nil || s.Reveal() != canaryA {
		t.Errorf("backup recipient cannot decrypt: %v", err)
	}
}

// TestConcurrentAdds: many writers at once (each with its own lock file
// descriptor, as separate processes would have) and none is lost.
func TestConcurrentAdds(t *testing.T) {
	t.Parallel()
	home := testutil.NewHome(t)
	id := testutil.IdentityOf(t, home)
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			st := &profiles.Store{Home: home, Identity: id}
			_, errs[i] = st.Add(profiles.Meta{Name: fmt.Sprintf("p%02d", i), Email: fmt.Sprintf("p%d@example.com", i)}, fmt.Appendf(nil, "kb_concurrent_%d", i))
		})
	}
	// A reader in parallel always sees a consistent home.
	wg.Go(func() {
		for range 20 {
			if _, err := profiles.Load(home, id); err != nil {
				t.Errorf("Load during adds: %v", err)
				return
			}
		}
	})
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("add %d: %v", i, err)
		}
	}
	if got := testutil.LoadHome(t, home).Len(); got != n {
		t.Errorf("after %d concurrent adds: %d profiles", n, got)
	}
}

func TestLoadRefusesBrokenHome(t *testing.T) {
	t.Parallel()
	specs := []testutil.ProfileSpec{{Name: "alice", Key: canaryA}, {Name: "bob"}}
	for _, tc := range []struct {
		name      string
		breakHome func(t *testing.T, home string)
		want      []string
	}{
		{"corrupt vault file", func(t *testing.T, home string) {
			p := filepath.Join(home, "vault", "alice.age")
			b, _ := os.ReadFile(p)
			b[len(b)-1] ^= 0x55
			os.WriteFile(p, b, 0o600)
		}, []string{`profile "alice"`, "alice.age", "corrupt"}},
		{"plain key in vault file", func(t *testing.T, home string) {
			os.WriteFile(filepath.Join(home, "vault", "alice.age"), []byte(canaryA+"\n"), 0o600)
		}, []string{`profile "alice"`, "alice.age", "corrupt"}},
		{"vault file for another identity", func(t *testing.T, home string) {
			other, _ := vault.GenerateIdentity()
			if err := vault.Seal(filepath.Join(home, "vault"), "bob", []byte(testutil.DefaultKey("bob")), nil, other); err != nil {
				t.Fatal(err)
			}
		}, []string{`profile "bob"`, "bob.age", "not encrypted to this identity"}},
		{"fingerprint mismatch", func(t *testing.T, home string) {
			id := testutil.IdentityOf(t, home)
			if err := vault.Seal(filepath.Join(home, "vault"), "bob", []byte("kb_some_other_key"), nil, id); err != nil {
				t.Fatal(err)
			}
		}, []string{`profile "bob"`, "bob.age", "profiles.yaml says"}},
		{"missing vault file", func(t *testing.T, home string) {
			os.Remove(filepath.Join(home, "vault", "alice.age"))
		}, []string{`profile "alice"`, "alice.age", "missing"}},
		{"loose vault file", func(t *testing.T, home string) {
			os.Chmod(filepath.Join(home, "vault", "bob.age"), 0o644)
		}, []string{"bob.age", "chmod 600"}},
		{"loose vault dir", func(t *testing.T, home string) {
			os.Chmod(filepath.Join(home, "vault"), 0o755)
		}, []string{"vault", "chmod 700"}},
		{"loose home", func(t *testing.T, home string) {
			os.Chmod(home, 0o750)
		}, []string{"home", "chmod 700"}},
		{"unknown field", func(t *testing.T, home string) {
			f, _ := os.OpenFile(filepath.Join(home, "profiles.yaml"), os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString("extra: 1\n")
			f.Close()
		}, []string{"profiles.yaml", "extra"}},
		{"missing profiles.yaml", func(t *testing.T, home string) {
			os.Remove(filepath.Join(home, "profiles.yaml"))
		}, []string{"profiles.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			home := testutil.NewHome(t, specs...)
			tc.breakHome(t, home)
			snap, err := profiles.Load(home, testutil.IdentityOf(t, home))
			if err == nil {
				t.Fatalf("Load accepted a broken home (%d profiles)", snap.Len())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), canaryA) {
				t.Errorf("Load error quotes a key: %v", err)
			}
		})
	}
}

func TestLoadIgnoresOrphanVaultFile(t *testing.T) {
	t.Parallel()
	home := testutil.NewHome(t, testutil.ProfileSpec{Name: "alice"})
	// Left by an add that crashed before profiles.yaml was written.
	if err := os.WriteFile(filepath.Join(home, "vault", "ghost.age"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if snap := testutil.LoadHome(t, home); snap.Len() != 1 {
		t.Errorf("Len() = %d, want 1", snap.Len())
	}
}

func TestLoadWrongIdentity(t *testing.T) {
	t.Parallel()
	home := testutil.NewHome(t, testutil.ProfileSpec{Name: "alice"})
	other, _ := vault.GenerateIdentity()
	_, err := profiles.Load(home, other)
	if !errors.Is(err, vault.ErrWrongIdentity) || !strings.Contains(err.Error(), "alice.age") {
		t.Errorf("Load(other identity) = %v, want ErrWrongIdentity naming alice.age", err)
	}
}

func TestSnapshotSecretsRedacted(t *testing.T) {
	t.Parallel()
	home := testutil.NewHome(t, testutil.ProfileSpec{Name: "alice", Key: canaryA})
	snap := testutil.LoadHome(t, home)
	p, _ := snap.Get("alice")
	var b bytes.Buffer
	fmt.Fprintf(&b, "%v %+v %#v %s", p, *p, snap, p.Key)
	if strings.Contains(b.String(), canaryA) {
		t.Errorf("printing a profile reveals the key: %s", b.String())
	}
}

// BenchmarkLoad1000 is profiles.Load of a home with 1000 profiles.
func BenchmarkLoad1000(b *testing.B) {
	specs := make([]testutil.ProfileSpec, 1000)
	for i := range specs {
		specs[i] = testutil.ProfileSpec{Name: fmt.Sprintf("user%04d", i)}
	}
	benchLoad(b, testutil.NewHome(b, specs...), len(specs))
}
