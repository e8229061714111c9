package profiles

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanbot/kanbot-sidecar/vault"
)

// Load reads home/profiles.yaml and decrypts every profile's vault file with
// id, and returns them as a Snapshot. Any problem fails the whole load, with
// an error naming the profile and the file: a loose permission on the home,
// vault/ or a vault file, a missing or corrupt vault file, a file not
// encrypted to id, or a key whose fingerprint differs from the one in
// profiles.yaml. A caller reloading keeps its previous snapshot on error.
//
// Vault files are decrypted in parallel (one worker per GOMAXPROCS), since
// each costs an X25519 operation and the proxy reloads on every change.
// Load holds a shared lock on home/profiles.lock, so it never observes half
// of a concurrent Update.
func Load(home string, id *vault.Identity) (*Snapshot, error) {
	if id == nil {
		return nil, errors.New("load profiles: no identity")
	}
	if err := vault.CheckPrivate(home); err != nil {
		return nil, fmt.Errorf("load profiles: %w", err)
	}
	var snap *Snapshot
	err := withLock(home, false, func() error {
		metas, err := ReadFile(home)
		if err != nil {
			return err
		}
		dir := filepath.Join(home, VaultDirName)
		if len(metas) > 0 {
			if err := vault.CheckPrivate(dir); err != nil {
				return err
			}
		}
		ps, err := decryptAll(dir, metas, id)
		if err != nil {
			return err
		}
		snap, err = NewSnapshot(ps, time.Now())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load profiles: %w", err)
	}
	return snap, nil
}

// decryptAll opens every profile's vault file over GOMAXPROCS workers. On
// error it returns the one for the first profile (by name) that failed, so
// the message is deterministic.
func decryptAll(dir string, metas []Meta, id *vault.Identity) ([]Profile, error) {
	ps := make([]Profile, len(metas))
	errs := make([]error, len(metas))
	var next atomic.Int64
	var failed atomic.Bool
	workers := min(runtime.GOMAXPROCS(0), len(metas))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(metas) {
					return
				}
				p, err := openProfile(dir, &metas[i], id)
				if err != nil {
					errs[i] = err
					failed.Store(true)
					return
				}
				ps[i] = p
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return ps, nil
}

func openProfile(dir string, m *Meta, id *vault.Identity) (Profile, error) {
	path := vault.Path(dir, m.Name)
	key, err := vault.OpenFile(path, id)
	if errors.Is(err, fs.ErrNotExist) {
		return Profile{}, fmt.Errorf("profile %q: vault file %s is missing", m.Name, path)
	}
	if err != nil {
		return Profile{}, fmt.Errorf("profile %q: %w", m.Name, err)
	}
	if fp := key.Fingerprint(); fp != m.KeyFingerprint {
		return Profile{}, fmt.Errorf("profile %q: vault file %s holds key %s but %s says %s (rerun `profiles rotate %s`)",
			m.Name, path, fp, FileName, m.KeyFingerprint, m.Name)
	}
	return Profile{
		Name:         m.Name,
		Email:        m.Email,
		Upstream:     m.Upstream,
		Rate:         m.Rate,
		Burst:        m.Burst,
		AllowPaths:   m.AllowPaths,
		AllowMethods: m.AllowMethods,
		Fingerprint:  m.KeyFingerprint,
		Key:          key,
		CreatedAt:    m.CreatedAt,
		RotatedAt:    m.RotatedAt,
	}, nil
}
