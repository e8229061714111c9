package vault_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ageBin and ageKeygenBin are the real age and age-keygen commands at the
// version in go.mod, built once for this test binary.
var ageBin, ageKeygenBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vault-test-age-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		for _, pkg := range []string{"filippo.io/age/cmd/age", "filippo.io/age/cmd/age-keygen"} {
			// @version makes go install ignore our go.mod; the pinned
			// version is in the module cache already.
			cmd := exec.Command("go", "install", pkg+"@v1.3.2")
			cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
				return 1
			}
		}
		ageBin = filepath.Join(dir, "age")
		ageKeygenBin = filepath.Join(dir, "age-keygen")
		return m.Run()
	}()
	os.Exit(code)
}
