//go:build linux

package proxy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kanbot/kanbot-sidecar/profiles"
)

// watchMask is what can change the profiles: a file closed after writing,
// renamed in or out, created, deleted, or re-permissioned (Load refuses
// loose modes). Plain writes (IN_MODIFY) are left out: the audit WAL in
// the home directory is written on every commit.
const watchMask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_CREATE |
	unix.IN_DELETE | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// watchProfileFiles sends on changed for every relevant change under home
// (see Watch) until ctx ends, with inotify watches on home and home/vault.
// It reports on started whether the watch was set up.
func watchProfileFiles(ctx context.Context, home string, changed chan<- struct{}, started chan<- error, warn func(error)) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		started <- fmt.Errorf("watch profiles: inotify: %w", err)
		return nil
	}
	// A non-blocking fd in an os.File is read through the runtime poller,
	// so Close (below, when ctx ends) wakes the blocked Read.
	f := os.NewFile(uintptr(fd), "inotify")
	defer f.Close()
	homeWD, err := unix.InotifyAddWatch(fd, home, watchMask)
	if err != nil {
		started <- fmt.Errorf("watch %s: %w", home, err)
		return nil
	}
	vaultDir := filepath.Join(home, profiles.VaultDirName)
	vaultWD, verr := unix.InotifyAddWatch(fd, vaultDir, watchMask)
	if verr != nil {
		vaultWD = -1
	}
	started <- nil
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("watch profiles: %w", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			name := string(trimNUL(nameBytes))
			switch {
			case ev.Mask&unix.IN_Q_OVERFLOW != 0:
				warn(errors.New("inotify queue overflowed; reloading"))
				notify(changed)
			case int(ev.Wd) == homeWD && name == profiles.VaultDirName:
				// The vault directory appeared or was replaced: watch it.
				if ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 || vaultWD < 0 {
					if wd, err := unix.InotifyAddWatch(fd, vaultDir, watchMask); err == nil {
						vaultWD = wd
					}
				}
				notify(changed)
			case int(ev.Wd) == homeWD && relevantChange(home, vaultDir, home, name):
				notify(changed)
			case int(ev.Wd) == vaultWD && ev.Mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0:
				vaultWD = -1
				notify(changed)
			case int(ev.Wd) == vaultWD && relevantChange(home, vaultDir, vaultDir, name):
				notify(changed)
			}
		}
	}
}

// trimNUL cuts the NUL padding of an inotify event name.
func trimNUL(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}
