package vault

import (
	"fmt"
	"io/fs"
	"os"
)

// PermissionError reports a file or directory that group or others may
// access. Its message names the path and the chmod that fixes it.
type PermissionError struct {
	Path string
	Mode fs.FileMode
}

func (e *PermissionError) Error() string {
	want := "600"
	if e.Mode.IsDir() {
		want = "700"
	}
	return fmt.Sprintf("%s is accessible by group or others (mode %04o); fix with: chmod %s %s",
		e.Path, e.Mode.Perm(), want, e.Path)
}

// CheckPrivate returns a *PermissionError if group or others have any
// permission on path (a file holding or protecting key material, or a
// directory holding such files). It follows symlinks: the mode that matters
// is the target's.
func CheckPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return checkMode(path, fi)
}

// CheckFileInfo is CheckPrivate for a FileInfo the caller already has.
func CheckFileInfo(path string, fi fs.FileInfo) error { return checkMode(path, fi) }

// checkMode is CheckPrivate on a FileInfo the caller already has (from an
// open file's Stat, so the checked file is the one being read).
func checkMode(path string, fi fs.FileInfo) error {
	// Any group/other bit is refused, not just read: a group-writable
	// identity or vault file could be replaced by someone else.
	if fi.Mode().Perm()&0o077 != 0 {
		return &PermissionError{Path: path, Mode: fi.Mode()}
	}
	return nil
}
