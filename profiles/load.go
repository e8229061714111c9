package profiles

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
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
// each costs X25519 operations. Load holds a shared lock on
// home/profiles.lock, so it never observes half of a concurrent Update.
// A process that reloads repeatedly should use a Loader, which decrypts
// only the vault files that changed since its previous load.
func Load(home string, id *vault.Identity) (*Snapshot, error) {
	snap, _, err := load(home, id, nil, time.Now)
	return snap, err
}

// Loader loads the profiles of one home again and again (the proxy does on
// every reload), decrypting only vault files that changed since its last
// successful load: an unchanged file (same device, inode, size and
// modification time; our writers always replace a file by renaming a new
// one over it) reuses the key decrypted before. Everything else Load checks
// is checked on every load, for every profile. Keys of removed profiles are
// dropped from the cache. Safe for concurrent use; loads are serialized.
type Loader struct {
	Home     string
	Identity *vault.Identity
	// Now stamps Snapshot.Created; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedKey
}

// cachedKey is a decrypted key and the stamp of the file it came from.
type cachedKey struct {
	stamp fileStamp
	key   vault.Secret
}

// fileStamp identifies one version of a file without reading it.
type fileStamp struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

func stampOf(fi fs.FileInfo) (fileStamp, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileStamp{}, false
	}
	return fileStamp{dev: uint64(st.Dev), ino: uint64(st.Ino), size: fi.Size(), mtime: fi.ModTime().UnixNano()}, true
}

// Load is the package-level Load with the Loader's cache.
func (l *Loader) Load() (*Snapshot, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now
	if now == nil {
		now = time.Now
	}
	snap, cache, err := load(l.Home, l.Identity, l.cache, now)
	if err != nil {
		return nil, err
	}
	l.cache = cache
	return snap, nil
}

func load(home string, id *vault.Identity, old map[string]cachedKey, now func() time.Time) (*Snapshot, map[string]cachedKey, error) {
	if id == nil {
		return nil, nil, errors.New("load profiles: no identity")
	}
	if err := vault.CheckPrivate(home); err != nil {
		return nil, nil, fmt.Errorf("load profiles: %w", err)
	}
	var (
		snap  *Snapshot
		cache map[string]cachedKey
	)
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
		ps, keys, err := decryptAll(dir, metas, id, old)
		if err != nil {
			return err
		}
		if snap, err = NewSnapshot(ps, now()); err != nil {
			return err
		}
		cache = make(map[string]cachedKey, len(keys))
		for i, k := range keys {
			if k.stamp != (fileStamp{}) {
				cache[metas[i].Name] = k
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load profiles: %w", err)
	}
	return snap, cache, nil
}

// decryptAll opens every profile's vault file over GOMAXPROCS workers
// (old, read-only here, supplies keys of unchanged files). On error it
// returns the one for the first profile (by name) that failed, so the
// message is deterministic.
func decryptAll(dir string, metas []Meta, id *vault.Identity, old map[string]cachedKey) ([]Profile, []cachedKey, error) {
	ps := make([]Profile, len(metas))
	keys := make([]cachedKey, len(metas))
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
				k, err := openKey(dir, &metas[i], id, old)
				if err != nil {
					errs[i] = err
					failed.Store(true)
					return
				}
				keys[i] = k
				ps[i] = profileOf(&metas[i], k.key)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, nil, err
		}
	}
	return ps, keys, nil
}

// openKey returns the key in m's vault file, from old if the file is
// unchanged, and checks its fingerprint against profiles.yaml.
func openKey(dir string, m *Meta, id *vault.Identity, old map[string]cachedKey) (cachedKey, error) {
	path := vault.Path(dir, m.Name)
	var k cachedKey
	fi, err := os.Stat(path)
	if err == nil {
		if err := vault.CheckFileInfo(path, fi); err != nil {
			return cachedKey{}, fmt.Errorf("profile %q: %w", m.Name, err)
		}
		k.stamp, _ = stampOf(fi)
	}
	if c, ok := old[m.Name]; ok && err == nil && k.stamp != (fileStamp{}) && c.stamp == k.stamp {
		k.key = c.key
	} else {
		// Stat then open may see two versions if someone bypasses the
		// lock; then the stamp is older than the key and the next load
		// decrypts again, never the reverse.
		k.key, err = vault.OpenFile(path, id)
		if errors.Is(err, fs.ErrNotExist) {
			return cachedKey{}, fmt.Errorf("profile %q: vault file %s is missing", m.Name, path)
		}
		if err != nil {
			return cachedKey{}, fmt.Errorf("profile %q: %w", m.Name, err)
		}
	}
	if fp := k.key.Fingerprint(); fp != m.KeyFingerprint {
		return cachedKey{}, fmt.Errorf("profile %q: vault file %s holds key %s but %s says %s (rerun `profiles rotate %s`)",
			m.Name, path, fp, FileName, m.KeyFingerprint, m.Name)
	}
	return k, nil
}

func profileOf(m *Meta, key vault.Secret) Profile {
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
	}
}
