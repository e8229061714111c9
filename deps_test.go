package kanbotsidecar_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/kanbot/kanbot-sidecar"

type goPackage struct {
	ImportPath   string
	Doc          string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Name         string
}

func listPackages(t *testing.T) []goPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// rel returns the import path relative to the module ("" for non-module).
func rel(path string) (string, bool) {
	if path == module {
		return ".", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func under(r, dir string) bool { return r == dir || strings.HasPrefix(r, dir+"/") }

// allowedOurs says which of our packages r may import (non-test imports), per
// DESIGN.md "Layout": cmd → anything; proxy → profiles, auditdb (and vault,
// which profiles exposes); profiles → vault; vault, auditdb, kanbot → none.
// internal/* leaves (but never internal/testutil) may be imported by anyone.
func allowedOurs(r, dep string) bool {
	if under(r, "internal/testutil") { // test-only glue: starts real backends and sidecars
		return true
	}
	if under(dep, "internal/testutil") {
		return false
	}
	if under(dep, "internal") {
		return !under(r, "internal") || under(r, "internal/testutil") || r == dep
	}
	switch {
	case under(r, "cmd"), under(r, "bench"):
		return true
	case under(r, "proxy"):
		return under(dep, "profiles") || under(dep, "auditdb") || under(dep, "vault")
	case under(r, "profiles"):
		return under(dep, "vault")
	case under(r, "kanbot"):
		return under(dep, "kanbot") // its own subpackages
	default: // vault, auditdb, examples, anything new: nothing of ours
		return false
	}
}

func TestImportDirections(t *testing.T) {
	t.Parallel()
	for _, p := range listPackages(t) {
		r, _ := rel(p.ImportPath)
		for _, imp := range p.Imports {
			dep, ours := rel(imp)
			if ours && !allowedOurs(r, dep) {
				t.Errorf("%s imports %s: forbidden by DESIGN.md Layout", r, dep)
			}
			if !under(r, "cmd") && !under(r, "bench") {
				for _, edgeOnly := range []string{"github.com/spf13/cobra", "github.com/spf13/viper", "github.com/rs/zerolog/log"} {
					if imp == edgeOnly {
						t.Errorf("%s imports %s: only cmd/* may", r, imp)
					}
				}
			}
			if under(r, "internal") && !under(r, "internal/testutil") && strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				t.Errorf("%s imports %s: internal leaves use the standard library only", r, imp)
			}
			if under(r, "examples") && strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				t.Errorf("%s imports %s: examples use the standard library only", r, imp)
			}
		}
	}
}

// TestPackagesHaveDocs enforces STYLE.md §12: every package states its job.
func TestPackagesHaveDocs(t *testing.T) {
	t.Parallel()
	for _, p := range listPackages(t) {
		if p.ImportPath == module { // test-only package: go list reports no doc
			continue
		}
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no package doc comment", p.ImportPath)
		}
	}
}
