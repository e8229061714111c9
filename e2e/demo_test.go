package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// keyShape matches a Kanbot API key: kb_ + 43 characters of base64url. The
// demo's keys are created inside the script, so the test cannot know them;
// nothing of this shape may appear in its output.
var keyShape = regexp.MustCompile(`kb_[A-Za-z0-9_-]{43}`)

// demoCmd prepares examples/demo.sh against the binaries TestMain built,
// with its temp dir under tmp.
func demoCmd(ctx context.Context, tmp string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot, "examples", "demo.sh"))
	cmd.Dir = repoRoot
	cmd.Env = append(baseEnv(filepath.Join(tmp, "xdg")), "BIN_DIR="+bins.dir, "TMPDIR="+tmp)
	// Its own process group, so a test can signal it as a terminal would.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// assertCleanedUp checks that the demo removed its temp dir and left no
// process behind (none has the temp dir in its command line or environment).
func assertCleanedUp(t *testing.T, tmp string) {
	t.Helper()
	des, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if de.Name() != "xdg" {
			t.Errorf("the demo left %s behind in its TMPDIR", de.Name())
		}
	}
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil || len(procs) == 0 {
		t.Fatalf("cannot list /proc to look for leftover processes: %v", err)
	}
	for _, p := range procs {
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(filepath.Join(p, f))
			if err == nil && bytes.Contains(b, []byte(tmp+"/kanbot-demo.")) {
				cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
				t.Errorf("process %s (%s) from the demo is still running", filepath.Base(p), bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
				break
			}
		}
	}
}

// TestDemoScript runs examples/demo.sh (what `make demo` runs after the
// build) and checks what the README says it shows.
func TestDemoScript(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := demoCmd(ctx, tmp).CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("demo.sh: %v (after %v)\n%s", err, took, out)
	}
	for _, want := range []string{
		"result: OK, all ",              // the agent met every expectation
		": BLOCKED — 403 from backend",  // the cross-profile attempt
		"REFUSED — 400 missing_profile", // the untagged call
		"verify: OK",                    // verify passed
		"kanbot-sidecar audit stats",    // the stats were shown
		"demo: OK",                      // and it finished cleanly
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if _, after, ok := bytes.Cut(out, []byte("==> kanbot-sidecar audit verify\n")); !ok || !bytes.Contains(after, []byte("OK")) {
		t.Errorf("demo output lacks a passing audit verify:\n%s", out)
	}
	if m := keyShape.Find(out); m != nil {
		t.Errorf("demo output contains an API key (%d bytes of key shape)", len(m))
	}
	assertCleanedUp(t, tmp)
	t.Logf("demo.sh took %v", took.Round(time.Millisecond))
}

// TestDemoScriptInterrupted presses Ctrl-C while the demo's servers are up:
// it must stop them, remove its temp dir and exit non-zero.
func TestDemoScriptInterrupted(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := demoCmd(ctx, tmp)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	sc := bufio.NewScanner(stdout)
	interrupted := false
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		// Both servers are running once the agent step begins.
		if !interrupted && strings.Contains(sc.Text(), "running the example agent") {
			if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
				t.Fatalf("send SIGINT to the demo's process group: %v", err)
			}
			interrupted = true
		}
	}
	err = cmd.Wait()
	if !interrupted {
		t.Fatalf("the demo never reached the agent step: %v\n%s\n%s", err, seen.String(), stderr.String())
	}
	if err == nil || strings.Contains(seen.String(), "demo: OK") {
		t.Errorf("the interrupted demo reported success (err %v):\n%s", err, seen.String())
	}
	if keyShape.MatchString(seen.String()) || keyShape.MatchString(stderr.String()) {
		t.Error("the interrupted demo printed an API key")
	}
	assertCleanedUp(t, tmp)
}

// TestDemoScriptOutputClosed is `make demo | head`: the reader goes away
// early, and the demo must still stop its servers and remove its temp dir.
func TestDemoScriptOutputClosed(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := demoCmd(ctx, tmp)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "starting kanbot-sidecar") {
			break
		}
	}
	stdout.Close() // like head exiting: later writes fail with EPIPE
	if err := cmd.Wait(); err == nil {
		t.Error("the demo reported success although its output was closed")
	}
	assertCleanedUp(t, tmp)
}
