package profiles

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kanbot/kanbot-sidecar/vault"
)

// Errors returned (wrapped) by Store methods.
var (
	ErrExists   = errors.New("profile already exists")
	ErrNotFound = errors.New("no such profile")
	// ErrKeyInUse means the key is already another profile's: two
	// profiles sharing a key would act as one person.
	ErrKeyInUse = errors.New("key is already used by another profile")
	// ErrEmailInUse means another profile already acts for that email
	// (compared case-insensitively): two profiles for one person defeat
	// verify's identity and uniqueness checks.
	ErrEmailInUse = errors.New("email is already used by another profile")
	// ErrSameKey means a rotation was given the key the profile has now.
	ErrSameKey = errors.New("new key is the same as the current one")
)

// Store changes profiles.yaml and the vault files together, each change
// under the exclusive profiles lock (see Update). The zero Store is not
// usable: Home is required, and Identity for Add and Rotate.
type Store struct {
	Home string
	// Identity is the sidecar's identity: keys are encrypted to its
	// recipient, and each new vault file is decrypted once as a check.
	Identity *vault.Identity
	// Recipients are extra age recipients every key is also encrypted to
	// (config vault.recipients); nil means none.
	Recipients []string
	// Now is the clock for created_at and rotated_at; nil means time.Now.
	Now func() time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}

func (s *Store) vaultDir() string { return filepath.Join(s.Home, VaultDirName) }

// Add creates profile m with key. It sets m's fingerprint and created_at,
// validates everything before writing anything, and refuses a duplicate
// name (ErrExists) or a key another profile has (ErrKeyInUse). It returns
// the metadata as stored.
func (s *Store) Add(m Meta, key []byte) (Meta, error) {
	if err := CheckKey(key); err != nil {
		return Meta{}, err
	}
	if s.Identity == nil {
		return Meta{}, errors.New("add profile: no identity")
	}
	m.KeyFingerprint = vault.Fingerprint(key)
	m.CreatedAt = s.now()
	m.RotatedAt = time.Time{}
	if err := m.Validate(); err != nil {
		return Meta{}, err
	}
	if _, err := vault.ParseRecipients(s.Recipients); err != nil {
		return Meta{}, fmt.Errorf("vault.recipients: %w", err)
	}
	err := Update(s.Home, func(ps map[string]Meta) error {
		if _, ok := ps[m.Name]; ok {
			return fmt.Errorf("%w: %q", ErrExists, m.Name)
		}
		if err := checkKeyUnused(ps, m.Name, m.KeyFingerprint); err != nil {
			return err
		}
		if err := checkEmailUnused(ps, m.Name, m.Email); err != nil {
			return err
		}
		if err := s.seal(m.Name, key); err != nil {
			return err
		}
		ps[m.Name] = m
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrExists) && !errors.Is(err, ErrKeyInUse) && !errors.Is(err, ErrEmailInUse) {
			// The vault file may exist without a profiles.yaml entry; that
			// is harmless (Load ignores it) but untidy.
			s.removeOrphan(m.Name)
		}
		return Meta{}, err
	}
	return m, nil
}

// Rotate replaces the key of the named profile, recording rotated_at and
// the new fingerprint. If profiles.yaml cannot be written, the previous
// vault file is put back, so the two never disagree.
func (s *Store) Rotate(name string, key []byte) (Meta, error) {
	if err := CheckName(name); err != nil {
		return Meta{}, err
	}
	if err := CheckKey(key); err != nil {
		return Meta{}, err
	}
	if s.Identity == nil {
		return Meta{}, errors.New("rotate profile: no identity")
	}
	if _, err := vault.ParseRecipients(s.Recipients); err != nil {
		return Meta{}, fmt.Errorf("vault.recipients: %w", err)
	}
	var out Meta
	var restore []byte
	err := withLock(s.Home, true, func() error {
		ps, err := ReadFile(s.Home)
		if err != nil {
			return err
		}
		byName := make(map[string]Meta, len(ps))
		for _, p := range ps {
			byName[p.Name] = p
		}
		m, ok := byName[name]
		if !ok {
			return fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		fp := vault.Fingerprint(key)
		if fp == m.KeyFingerprint {
			return fmt.Errorf("profile %q: %w", name, ErrSameKey)
		}
		if err := checkKeyUnused(byName, name, fp); err != nil {
			return err
		}
		restore, err = os.ReadFile(vault.Path(s.vaultDir(), name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read vault file: %w", err)
		}
		if err := s.seal(name, key); err != nil {
			return err
		}
		m.KeyFingerprint = fp
		m.RotatedAt = s.now()
		byName[name] = m
		out = m
		list := make([]Meta, 0, len(byName))
		for _, p := range byName {
			list = append(list, p)
		}
		if err := WriteFile(s.Home, list); err != nil {
			if restore != nil {
				if rerr := vault.WriteFile(vault.Path(s.vaultDir(), name), restore); rerr != nil {
					return fmt.Errorf("%w (and restoring the previous vault file failed: %v)", err, rerr)
				}
			}
			return err
		}
		return nil
	})
	if err != nil {
		return Meta{}, err
	}
	return out, nil
}

// Remove deletes the named profile from profiles.yaml and then its vault
// file, and returns the metadata it had.
func (s *Store) Remove(name string) (Meta, error) {
	if err := CheckName(name); err != nil {
		return Meta{}, err
	}
	var out Meta
	err := withLock(s.Home, true, func() error {
		ps, err := ReadFile(s.Home)
		if err != nil {
			return err
		}
		kept := ps[:0:0]
		found := false
		for _, p := range ps {
			if p.Name == name {
				out, found = p, true
				continue
			}
			kept = append(kept, p)
		}
		if !found {
			return fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		// profiles.yaml first: a crash in between leaves an orphan vault
		// file, which Load ignores, rather than an entry without a key.
		if err := WriteFile(s.Home, kept); err != nil {
			return err
		}
		return vault.Remove(s.vaultDir(), name)
	})
	if err != nil {
		return Meta{}, err
	}
	return out, nil
}

// Get returns the named profile's metadata (no decryption).
func (s *Store) Get(name string) (Meta, error) {
	if err := CheckName(name); err != nil {
		return Meta{}, err
	}
	ps, err := ReadFile(s.Home)
	if err != nil {
		return Meta{}, err
	}
	for _, p := range ps {
		if p.Name == name {
			return p, nil
		}
	}
	return Meta{}, fmt.Errorf("%w: %q", ErrNotFound, name)
}

// seal writes the vault file and decrypts it once, so a key is never
// recorded as stored unless the identity can read it back.
func (s *Store) seal(name string, key []byte) error {
	if err := vault.Seal(s.vaultDir(), name, key, s.Recipients, s.Identity); err != nil {
		return err
	}
	got, err := vault.Open(s.vaultDir(), name, s.Identity)
	if err != nil {
		return fmt.Errorf("check vault file: %w", err)
	}
	if got.Fingerprint() != vault.Fingerprint(key) {
		return fmt.Errorf("check vault file %s: read back a different key", vault.Path(s.vaultDir(), name))
	}
	return nil
}

func (s *Store) removeOrphan(name string) {
	// Only if no profile refers to it: another process may have added the
	// same name since.
	_ = withLock(s.Home, true, func() error {
		ps, err := ReadFile(s.Home)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.Name == name {
				return nil
			}
		}
		return vault.Remove(s.vaultDir(), name)
	})
}

func checkKeyUnused(ps map[string]Meta, name, fp string) error {
	for other, p := range ps {
		if other != name && p.KeyFingerprint == fp {
			return fmt.Errorf("%w (profile %q, fingerprint %s)", ErrKeyInUse, other, fp)
		}
	}
	return nil
}

func checkEmailUnused(ps map[string]Meta, name, email string) error {
	for other, p := range ps {
		if other != name && strings.EqualFold(p.Email, email) {
			return fmt.Errorf("%w (profile %q has %s)", ErrEmailInUse, other, p.Email)
		}
	}
	return nil
}
