//go:build !linux

package proxy

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/fsnotify/fsnotify"

	"github.com/kanbot/kanbot-sidecar/profiles"
)

// watchProfileFiles sends on changed for every relevant change under home
// (see Watch) until ctx ends. It reports on started whether the watch was
// set up. This is the portable version on fsnotify, which cannot be told
// to skip plain writes: they are filtered by name here.
func watchProfileFiles(ctx context.Context, home string, changed chan<- struct{}, started chan<- error, warn func(error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		started <- fmt.Errorf("watch profiles: %w", err)
		return nil
	}
	defer w.Close()
	vaultDir := filepath.Join(home, profiles.VaultDirName)
	if err := w.Add(home); err != nil {
		started <- fmt.Errorf("watch %s: %w", home, err)
		return nil
	}
	vaultWatched := w.Add(vaultDir) == nil
	started <- nil
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Create) {
				// A key file or profiles.yaml is always replaced by a
				// rename, never written in place.
				continue
			}
			dir, base := filepath.Dir(ev.Name), filepath.Base(ev.Name)
			if dir == home && base == profiles.VaultDirName && (!vaultWatched || ev.Has(fsnotify.Create)) {
				vaultWatched = w.Add(vaultDir) == nil
			}
			if relevantChange(home, vaultDir, dir, base) {
				notify(changed)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			warn(err)
		}
	}
}
