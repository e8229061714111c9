package proxy

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The watcher ignores plain writes in the home directory (the audit WAL is
// written on every commit) and reports profiles.yaml being replaced and a
// key file appearing in the vault.
func TestWatchIgnoresWritesReportsReplacements(t *testing.T) {
	home := t.TempDir()
	vaultDir := filepath.Join(home, "vault")
	if err := os.Mkdir(vaultDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		done <- watchProfileFiles(ctx, home, changed, started, func(err error) { t.Errorf("watcher warning: %v", err) })
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watchProfileFiles = %v", err)
		}
	}()

	wal, err := os.OpenFile(filepath.Join(home, "audit.db-wal"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer wal.Close()
	drain := func() {
		for {
			select {
			case <-changed:
			case <-time.After(100 * time.Millisecond):
				return
			}
		}
	}
	drain() // the WAL's creation
	for i := 0; i < 50; i++ {
		if _, err := wal.WriteAt(make([]byte, 4096), int64(i)*4096); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-changed:
		t.Fatal("plain writes to audit.db-wal woke the profile watcher")
	case <-time.After(100 * time.Millisecond):
	}

	replace := func(dir, name string) {
		t.Helper()
		tmp := filepath.Join(dir, ".tmp-"+name)
		if err := os.WriteFile(tmp, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		case <-time.After(2 * time.Second):
			t.Fatalf("no change reported for %s replaced in %s", name, dir)
		}
		drain()
	}
	replace(home, "profiles.yaml")
	replace(vaultDir, "alice.age")
}
