package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bins are the binaries TestMain builds once for every test in the package.
var bins struct {
	dir, kanbot, sidecar, agent, goclient string
}

// repoRoot is the module root (the parent of this package's directory).
var repoRoot string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = root
	goBin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: the go command is not on PATH; it is needed to build the binaries under test")
		return 1
	}
	dir, err := os.MkdirTemp("", "kanbot-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins.dir = dir
	bins.kanbot = filepath.Join(dir, "kanbot")
	bins.sidecar = filepath.Join(dir, "kanbot-sidecar")
	bins.agent = filepath.Join(dir, "agent")
	bins.goclient = filepath.Join(dir, "goclient")
	for out, pkg := range map[string]string{
		bins.kanbot:   "./cmd/kanbot",
		bins.sidecar:  "./cmd/kanbot-sidecar",
		bins.agent:    "./examples/agent",
		bins.goclient: "./examples/clients/goclient",
	} {
		cmd := exec.Command(goBin, "build", "-o", out, pkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go build %s: %v\n%s", pkg, err, b)
			return 1
		}
	}
	return m.Run()
}

// profileNames are the demo's people.
var profileNames = []string{"alice", "bob", "charlie"}

// baseEnv is the environment for every process: the test's own, minus
// anything that could point a process at another sidecar, backend or proxy.
func baseEnv(xdg string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch uk := strings.ToUpper(k); {
		case strings.HasPrefix(uk, "KANBOT"), uk == "HTTP_PROXY", uk == "HTTPS_PROXY", uk == "NO_PROXY",
			uk == "ALL_PROXY", uk == "XDG_CONFIG_HOME", uk == "SIDECAR_URL":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "XDG_CONFIG_HOME="+xdg)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// result is a finished command.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// proc is a long-running process (a server) started by a test.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// stop sends SIGTERM and waits (bounded) for the process to exit, then
// kills it. It returns the process's exit error (nil for exit 0). Safe to
// call more than once.
func (p *proc) stop() error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within 15s of SIGTERM (killed)", p.name)
	}
}

// stack is one backend + one sidecar, set up through the CLIs as the README
// tells a user to. Every file it makes is under dir.
type stack struct {
	dir, home  string
	env        []string // environment for sidecar and kanbot commands
	dbPath     string
	backendURL string
	sidecarURL string
	adminURL   string
	keys       map[string]string // profile → API key: the canaries
	backend    *proc
	sidecar    *proc

	mu      sync.Mutex
	outputs []string // every stdout/stderr seen, scanned for keys at the end
}

// newStack starts the backend, creates users and keys, initializes the
// sidecar home, adds the profiles (keys through stdin) and starts the sidecar.
func newStack(t *testing.T) *stack {
	t.Helper()
	dir := t.TempDir()
	s := &stack{
		dir:    dir,
		home:   filepath.Join(dir, "home"),
		dbPath: filepath.Join(dir, "kanbot.db"),
		keys:   map[string]string{},
	}
	bport, sport, aport := freePort(t), freePort(t), freePort(t)
	s.backendURL = fmt.Sprintf("http://127.0.0.1:%d", bport)
	s.sidecarURL = fmt.Sprintf("http://127.0.0.1:%d", sport)
	s.adminURL = fmt.Sprintf("http://127.0.0.1:%d", aport)
	s.env = append(baseEnv(filepath.Join(dir, "xdg")),
		"KANBOT_DB="+s.dbPath,
		"KANBOT_SIDECAR_HOME="+s.home,
		fmt.Sprintf("KANBOT_SIDECAR_LISTEN=127.0.0.1:%d", sport),
		fmt.Sprintf("KANBOT_SIDECAR_ADMIN_LISTEN=127.0.0.1:%d", aport),
		"KANBOT_SIDECAR_UPSTREAM="+s.backendURL,
		"KANBOT_SIDECAR_LOG_FORMAT=json",
		// The test sends alice's requests faster than any agent would (the
		// agent twice, four clients, verify several times, within seconds);
		// a roomy bucket keeps 429s out of it. Rate limiting has its own
		// tests in proxy/, and the demo test runs with the defaults.
		"KANBOT_SIDECAR_RATE_LIMIT_RATE=200",
		"KANBOT_SIDECAR_RATE_LIMIT_BURST=400",
	)
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		t.Fatal(err)
	}

	s.backend = s.start(t, "kanbot", bins.kanbot, "serve", "--addr", fmt.Sprintf("127.0.0.1:%d", bport), "--db", s.dbPath)
	waitOK(t, s.backendURL+"/health", s.backend)

	s.mustRun(t, "", bins.sidecar, "init")
	for _, p := range profileNames {
		email := p + "@example.com"
		s.mustRun(t, "", bins.kanbot, "user", "create", "--db", s.dbPath, "--email", email, "--username", p, "--json")
		// The key is the only secret output: it is kept in memory for the
		// canary scan and piped to the sidecar, never recorded as output.
		r := s.run(t, runOpts{secretOutput: true}, bins.kanbot, "apikey", "create", "--db", s.dbPath, "--user", email, "--name", "e2e", "--json")
		if r.code != 0 {
			t.Fatalf("kanbot apikey create for %s: exit %d: %s", p, r.code, r.stderr)
		}
		var created struct {
			Success bool `json:"success"`
			Data    struct {
				Key string `json:"key"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || !created.Success || !strings.HasPrefix(created.Data.Key, "kb_") {
			t.Fatalf("kanbot apikey create --json for %s: no key in the answer (err %v)", p, err)
		}
		s.keys[p] = created.Data.Key
		s.mustRun(t, created.Data.Key+"\n", bins.sidecar, "profiles", "add", p, "--email", email)
	}

	s.sidecar = s.start(t, "kanbot-sidecar", bins.sidecar, "serve")
	waitOK(t, s.adminURL+"/readyz", s.sidecar)
	return s
}

// runOpts tunes run.
type runOpts struct {
	stdin        string
	secretOutput bool     // stdout carries a key: keep it out of s.outputs
	env          []string // extra environment
	dir          string   // working directory (default: the stack's dir)
}

// run runs a command to completion (bounded) and records its output.
func (s *stack) run(t *testing.T, o runOpts, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append([]string(nil), s.env...), o.env...)
	cmd.Dir = o.dir
	if cmd.Dir == "" {
		cmd.Dir = s.dir
	}
	cmd.Stdin = strings.NewReader(o.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s %s: %v", filepath.Base(bin), strings.Join(args, " "), err)
	}
	s.mu.Lock()
	if !o.secretOutput {
		s.outputs = append(s.outputs, r.stdout)
	}
	s.outputs = append(s.outputs, r.stderr)
	s.mu.Unlock()
	return r
}

// mustRun runs a command that must exit 0, with stdin.
func (s *stack) mustRun(t *testing.T, stdin, bin string, args ...string) result {
	t.Helper()
	r := s.run(t, runOpts{stdin: stdin}, bin, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: %v", filepath.Base(bin), strings.Join(args, " "), r)
	}
	return r
}

// start starts a server process with its output in logs/<name>.log; it is
// stopped when the test ends.
func (s *stack) start(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(s.dir, "logs", name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = s.env
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { _ = p.stop() })
	return p
}

// waitOK polls url until it answers 200, failing early if p exits.
func waitOK(t *testing.T, url string, p *proc) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			log, _ := os.ReadFile(p.log)
			t.Fatalf("%s exited before %s answered 200: %v\n%s", p.name, url, p.err, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(p.log)
			t.Fatalf("%s did not answer 200 within 30s\n%s", url, log)
		}
	}
}

// assertNoKeys is the canary: no key may appear in any output the test saw,
// nor in any file under the stack's dir (logs, the sidecar home with its
// vault and audit DB, the backend's DB).
func assertNoKeys(t *testing.T, keys map[string]string, outputs []string, dirs ...string) {
	t.Helper()
	if len(keys) == 0 {
		t.Fatal("canary scan with no keys")
	}
	for i, out := range outputs {
		for p, k := range keys {
			if strings.Contains(out, k) {
				t.Errorf("%s's key appears in command output #%d", p, i)
			}
		}
	}
	scanned := 0
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			scanned++
			for p, k := range keys {
				if bytes.Contains(b, []byte(k)) {
					t.Errorf("%s's key appears in %s", p, path)
				}
			}
			return nil
		})
		if err != nil {
			t.Errorf("scan %s: %v", dir, err)
		}
	}
	if scanned == 0 {
		t.Error("canary scan found no files to scan")
	}
}

// sidecarGet sends one request to the sidecar in base-URL mode.
func (s *stack) sidecarGet(t *testing.T, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	return doRequest(t, &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}, "GET", s.sidecarURL+path, nil, hdr)
}

func doRequest(t *testing.T, hc *http.Client, method, url string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b.Bytes()
}
