package profiles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// withLock runs fn holding home/profiles.lock: exclusively for a change,
// shared for a load (so a load never sees a vault file and profiles.yaml
// from different changes). flock(2) locks are released by the kernel when
// the process dies, so a killed `profiles add` never leaves a stale lock.
//
// A shared lock is skipped when the lock file cannot be created (a home the
// process may only read): without writers there is nothing to exclude.
func withLock(home string, exclusive bool, fn func() error) error {
	path := filepath.Join(home, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if !exclusive && (errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS)) {
			return fn()
		}
		return fmt.Errorf("open lock %s: %w", path, err)
	}
	defer f.Close()
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	// Closing f releases the lock; the explicit unlock documents intent.
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}
