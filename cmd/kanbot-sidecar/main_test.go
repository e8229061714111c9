package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// sidecarBin is this package built as a binary and ageBin the real age
// command (the version in go.mod), both built once per test run, for tests
// that exercise the CLI as a user would. Other tests of this package may
// use them too.
var sidecarBin, ageBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kanbot-sidecar-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		sidecarBin = filepath.Join(dir, "kanbot-sidecar")
		build := exec.Command("go", "build", "-o", sidecarBin, ".")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build kanbot-sidecar: %v\n%s", err, out)
			return 1
		}
		// @version makes go install ignore our go.mod; the pinned version
		// is in the module cache.
		install := exec.Command("go", "install", "filippo.io/age/cmd/age@v1.3.2")
		install.Env = append(os.Environ(), "GOBIN="+dir)
		if out, err := install.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build age: %v\n%s", err, out)
			return 1
		}
		ageBin = filepath.Join(dir, "age")
		return m.Run()
	}()
	os.Exit(code)
}
