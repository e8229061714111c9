package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kanbot/kanbot-sidecar/auditdb"
	"github.com/kanbot/kanbot-sidecar/profiles"
	"github.com/kanbot/kanbot-sidecar/proxy"
)

// Check statuses printed by verify. Only FAIL makes verify exit non-zero; a
// WARN reports something worth a look that is not wrong (a shared space).
const (
	checkPass = "PASS"
	checkFail = "FAIL"
	checkWarn = "WARN"
)

// verifyProbeKey is the fake credential sent to prove the sidecar refuses an
// agent's own credential. It is not a key of anyone's.
const verifyProbeKey = "kb_verify-foreign-credential-probe-not-a-key"

// checkResult is one line of verify's output.
type checkResult struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// verifyReport is verify's --json document.
type verifyReport struct {
	OK      bool          `json:"ok"`
	Sidecar string        `json:"sidecar"`
	Backend string        `json:"backend"`
	Home    string        `json:"home"`
	Passed  int           `json:"passed"`
	Failed  int           `json:"failed"`
	Warned  int           `json:"warned"`
	Checks  []checkResult `json:"checks"`
}

func newVerifyCmd(e *env) *cobra.Command {
	var (
		asJSON           bool
		backend, sidecar string
		tokenFile        string
		timeout          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check a running setup end to end (backend, sidecar, profiles, files, audit chain)",
		Long: `verify checks a running sidecar and its backend and prints one line per check:

  backend_health        the backend answers GET /health
  identity NAME         through the sidecar, the profile reaches GET /api/v1/users/me
                        and the email matches the profile's email
  isolation NAME        the profile's GET /api/v1/spaces lists only spaces its user owns
                        or is a member of (shared spaces are reported as WARN)
  unique_keys_emails    no two profiles share a key fingerprint, an email or a user
  security_headers      the backend sends X-Content-Type-Options and X-Frame-Options
  refuses_untagged      the sidecar refuses a request without X-Kanbot-Profile
  refuses_unknown       the sidecar refuses an unknown profile
  refuses_foreign_key   the sidecar refuses a request carrying its own X-API-Key
  file_modes            identity, profiles, vault files and audit DB are 0600
  audit_chain           the audit DB's hash chain verifies

It never decrypts a key: profile emails and fingerprints come from
profiles.yaml, and every profile request goes through the sidecar.
The sidecar URL defaults to the configured listen address, the backend URL to
the configured upstream. Exit status 0 only if no check failed.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := homeDir(cmd, e)
			if err != nil {
				return err
			}
			fc, err := loadConfig(home, cmd.Flags())
			if err != nil {
				return err
			}
			v, err := newVerifier(home, fc, sidecar, backend)
			if err != nil {
				return err
			}
			if tokenFile != "" {
				if v.clientToken, err = readClientToken(tokenFile); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			rep := v.run(ctx)
			if asJSON {
				if err := writeJSON(e.stdout, rep); err != nil {
					return err
				}
			} else if err := printVerify(e.stdout, rep); err != nil {
				return err
			}
			if !rep.OK {
				return fmt.Errorf("verify: %d of %d checks failed", rep.Failed, len(rep.Checks))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document")
	cmd.Flags().StringVar(&backend, "backend", "", "backend base URL (default: the configured upstream)")
	cmd.Flags().StringVar(&sidecar, "sidecar", "", "sidecar base URL, or unix:/path.sock (default: from the configured listen address)")
	cmd.Flags().StringVar(&tokenFile, "client-token-file", "", "file holding a client token, sent as "+proxy.HeaderClientToken+" (needed when clients are configured in config.yaml)")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "give up after this long")
	return cmd
}

func printVerify(w io.Writer, rep verifyReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range rep.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Status, c.Name, c.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "OK"
	if !rep.OK {
		verdict = "FAILED"
	}
	_, err := fmt.Fprintf(w, "verify: %s (%d passed, %d failed, %d warnings)\n", verdict, rep.Passed, rep.Failed, rep.Warned)
	return err
}

// verifier runs the checks against one setup. Not safe for concurrent use.
type verifier struct {
	home      string
	auditPath string
	sidecar   string // base URL, no trailing slash
	backend   string
	sc        *http.Client // to the sidecar (may dial a unix socket)
	bc        *http.Client // to the backend
	// clientToken, when set, goes with every request to the sidecar. It is
	// a secret: it is never printed.
	clientToken string
	results     []checkResult
}

// readClientToken reads a client token from a file (a token is a secret, so
// it never comes from a flag value). The error never quotes the contents.
func readClientToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read --client-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, "\r\n") {
		return "", usagef("--client-token-file %s: want one non-empty line", path)
	}
	return tok, nil
}

func newVerifier(home string, fc fileConfig, sidecar, backend string) (*verifier, error) {
	v := &verifier{home: home, auditPath: fc.auditPath()}
	var dial func(ctx context.Context, network, addr string) (net.Conn, error)
	if strings.HasPrefix(sidecar, "unix:") {
		// --sidecar takes the same unix:/path form as listen.
		fc.Listen, sidecar = sidecar, ""
	}
	if sidecar == "" {
		if sock, ok := strings.CutPrefix(fc.Listen, "unix:"); ok {
			var d net.Dialer
			dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", sock)
			}
			sidecar = "http://localhost"
		} else {
			sidecar = "http://" + verifyDialAddr(fc.Listen)
		}
	} else if err := verifyBaseURL(sidecar); err != nil {
		return nil, usagef("--sidecar: %v", err)
	}
	if backend == "" {
		backend = fc.Upstream
	} else if err := verifyBaseURL(backend); err != nil {
		return nil, usagef("--backend: %v", err)
	}
	v.sidecar = strings.TrimRight(sidecar, "/")
	v.backend = strings.TrimRight(backend, "/")
	v.sc = newVerifyClient(dial)
	v.bc = newVerifyClient(nil)
	return v, nil
}

// verifyBaseURL accepts what upstream accepts: an http(s) URL with a host,
// a valid port and a clean path, and no credentials, query or fragment.
func verifyBaseURL(s string) error { return checkUpstreamURL(s) }

// verifyDialAddr turns a listen address into one a client can dial: a
// wildcard host (0.0.0.0, ::, empty) becomes the matching loopback.
func verifyDialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// newVerifyClient makes a client that ignores HTTP_PROXY (verify must reach
// exactly the addresses it names) and never follows redirects.
func newVerifyClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{Proxy: nil, DialContext: dial, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func (v *verifier) add(name, status, format string, args ...any) {
	v.results = append(v.results, checkResult{Name: name, Status: status, Detail: fmt.Sprintf(format, args...)})
}

// answer is one HTTP response read in full (bounded).
type answer struct {
	status       int
	header       http.Header
	body         []byte
	sidecarError string
}

// get sends GET url with the given headers. A 429 from the sidecar's rate
// limiter is retried after its Retry-After (bounded), since verify may run
// right after a busy agent.
func (v *verifier) get(ctx context.Context, hc *http.Client, rawURL string, hdr map[string]string) (*answer, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		for k, val := range hdr {
			req.Header.Set(k, val)
		}
		if hc == v.sc && v.clientToken != "" {
			req.Header.Set(proxy.HeaderClientToken, v.clientToken)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, verifyTransportError(err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read answer: %v", err)
		}
		a := &answer{status: resp.StatusCode, header: resp.Header, body: body, sidecarError: resp.Header.Get("X-Kanbot-Sidecar-Error")}
		if a.status != http.StatusTooManyRequests || attempt >= 3 {
			return a, nil
		}
		wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		d := min(max(time.Duration(wait)*time.Second, 100*time.Millisecond), 5*time.Second)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(d):
		}
	}
}

// verifyTransportError shortens a transport error to its cause, without
// repeating the URL.
func verifyTransportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return fmt.Errorf("%s: %v", oe.Op, oe.Err)
	}
	return err
}

// describe summarises an answer for a check's detail: status, the sidecar's
// refusal code if any, and the backend's "detail" message if any.
func (a *answer) describe() string {
	s := strconv.Itoa(a.status)
	if a.sidecarError != "" {
		s += " " + a.sidecarError + " (sidecar)"
	}
	if a.sidecarError == "client_unauthorized" {
		s += "; clients are configured: pass --client-token-file"
	}
	var kb struct {
		Detail any `json:"detail"`
	}
	if json.Unmarshal(a.body, &kb) == nil {
		if d, ok := kb.Detail.(string); ok && d != "" {
			s += ": " + d
		}
	}
	return s
}

// verifyUser is the part of /api/v1/users/me that verify reads.
type verifyUser struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// verifySpace is the part of a Space that the isolation check reads.
type verifySpace struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	OwnerID    string `json:"owner_id"`
	OwnerEmail string `json:"owner_email"`
	Members    []struct {
		UserID string `json:"user_id"`
		Email  string `json:"email"`
	} `json:"members"`
}

func (v *verifier) run(ctx context.Context) verifyReport {
	backendHeaders := v.checkBackend(ctx)
	ps, err := profiles.ReadFile(v.home)
	if err != nil {
		v.add("profiles", checkFail, "%v", err)
	} else if len(ps) == 0 {
		v.add("profiles", checkFail, "no profiles in %s (add one with `kanbot-sidecar profiles add`)", filepath.Join(v.home, profiles.FileName))
	}
	users := make(map[string]verifyUser, len(ps))
	for _, p := range ps {
		if u, ok := v.checkIdentity(ctx, p); ok {
			users[p.Name] = u
		}
	}
	for _, p := range ps {
		v.checkIsolation(ctx, p, users, ps)
	}
	v.checkUnique(ps, users)
	v.checkSecurityHeaders(backendHeaders)
	v.checkRefusals(ctx, ps)
	v.checkFileModes(ps)
	v.checkAuditChain(ctx)

	rep := verifyReport{Sidecar: v.sidecar, Backend: v.backend, Home: v.home, Checks: v.results}
	for _, c := range v.results {
		switch c.Status {
		case checkPass:
			rep.Passed++
		case checkFail:
			rep.Failed++
		case checkWarn:
			rep.Warned++
		}
	}
	rep.OK = rep.Failed == 0
	return rep
}

// checkBackend is check 1: GET /health straight to the backend. It returns
// the response headers for the security-header check (nil if none).
func (v *verifier) checkBackend(ctx context.Context) http.Header {
	const name = "backend_health"
	a, err := v.get(ctx, v.bc, v.backend+"/health", nil)
	if err != nil {
		v.add(name, checkFail, "GET %s/health: %v", v.backend, err)
		return nil
	}
	if a.status != http.StatusOK {
		v.add(name, checkFail, "GET %s/health: %s", v.backend, a.describe())
		return a.header
	}
	var h struct {
		Status  string `json:"status"`
		Version string `json:"version"`
	}
	_ = json.Unmarshal(a.body, &h)
	detail := fmt.Sprintf("GET %s/health: 200", v.backend)
	if h.Status != "" {
		detail += " " + h.Status
	}
	if h.Version != "" {
		detail += " (version " + h.Version + ")"
	}
	v.add(name, checkPass, "%s", detail)
	return a.header
}

// checkIdentity is check 2 for one profile: /users/me through the sidecar
// answers with the profile's email.
func (v *verifier) checkIdentity(ctx context.Context, p profiles.Meta) (verifyUser, bool) {
	name := "identity " + p.Name
	a, err := v.get(ctx, v.sc, v.sidecar+"/api/v1/users/me", map[string]string{"X-Kanbot-Profile": p.Name})
	if err != nil {
		v.add(name, checkFail, "GET /api/v1/users/me through %s: %v", v.sidecar, err)
		return verifyUser{}, false
	}
	if a.status != http.StatusOK {
		v.add(name, checkFail, "GET /api/v1/users/me: %s", a.describe())
		return verifyUser{}, false
	}
	var u verifyUser
	if err := json.Unmarshal(a.body, &u); err != nil || u.Email == "" {
		v.add(name, checkFail, "GET /api/v1/users/me: the answer has no email")
		return verifyUser{}, false
	}
	if !strings.EqualFold(u.Email, p.Email) {
		v.add(name, checkFail, "key of profile %s belongs to %s, but the profile's email is %s", p.Name, u.Email, p.Email)
		return u, true
	}
	v.add(name, checkPass, "%s (user %s, key %s)", u.Email, u.ID, p.KeyFingerprint)
	return u, true
}

// checkIsolation is check 3 for one profile: every space it can list is
// one its user owns or is a member of. A space shared with another
// profile's user is reported (WARN), not failed: sharing is legitimate.
func (v *verifier) checkIsolation(ctx context.Context, p profiles.Meta, users map[string]verifyUser, ps []profiles.Meta) {
	name := "isolation " + p.Name
	me, ok := users[p.Name]
	if !ok {
		v.add(name, checkFail, "not checked: the identity check failed")
		return
	}
	a, err := v.get(ctx, v.sc, v.sidecar+"/api/v1/spaces", map[string]string{"X-Kanbot-Profile": p.Name})
	if err != nil {
		v.add(name, checkFail, "GET /api/v1/spaces: %v", err)
		return
	}
	if a.status != http.StatusOK {
		v.add(name, checkFail, "GET /api/v1/spaces: %s", a.describe())
		return
	}
	spaces, err := decodeSpaces(a.body)
	if err != nil {
		v.add(name, checkFail, "GET /api/v1/spaces: %v", err)
		return
	}
	var foreign, unknown, shared []string
	for _, s := range spaces {
		label := fmt.Sprintf("%q (%s)", s.Name, s.ID)
		mine, known := spaceMember(s, me)
		switch {
		case !known:
			unknown = append(unknown, label)
			continue
		case !mine:
			foreign = append(foreign, label)
			continue
		}
		var with []string
		for _, o := range ps {
			if o.Name == p.Name {
				continue
			}
			if u, ok := users[o.Name]; ok && u.ID != me.ID {
				if in, _ := spaceMember(s, u); in {
					with = append(with, o.Name)
				}
			}
		}
		if len(with) > 0 {
			shared = append(shared, label+" with "+strings.Join(with, ", "))
		}
	}
	switch {
	case len(foreign) > 0:
		v.add(name, checkFail, "%d of %d spaces belong to others: %s", len(foreign), len(spaces), strings.Join(foreign, "; "))
	case len(unknown) > 0:
		v.add(name, checkWarn, "%d spaces; membership not shown for %s", len(spaces), strings.Join(unknown, "; "))
	case len(shared) > 0:
		v.add(name, checkWarn, "%d spaces, all %s's; shared: %s", len(spaces), p.Name, strings.Join(shared, "; "))
	case len(spaces) == 0:
		v.add(name, checkPass, "no spaces yet")
	default:
		v.add(name, checkPass, "%d space%s, all with %s as owner or member; none shared with another profile", len(spaces), verifyPlural(len(spaces)), me.Email)
	}
}

// decodeSpaces accepts a bare JSON array (Kanbot) or {"spaces": [...]}.
func decodeSpaces(body []byte) ([]verifySpace, error) {
	var list []verifySpace
	if err := json.Unmarshal(body, &list); err == nil {
		return list, nil
	}
	var wrapped struct {
		Spaces *[]verifySpace `json:"spaces"`
	}
	if err := json.Unmarshal(body, &wrapped); err != nil || wrapped.Spaces == nil {
		return nil, errors.New(`want a JSON array of spaces or {"spaces": [...]}`)
	}
	return *wrapped.Spaces, nil
}

// spaceMember reports whether u owns or is a member of s, and whether the
// space says enough (owner or member list) to tell.
func spaceMember(s verifySpace, u verifyUser) (member, known bool) {
	if s.OwnerID == "" && s.OwnerEmail == "" && s.Members == nil {
		return false, false
	}
	if (s.OwnerID != "" && s.OwnerID == u.ID) || (s.OwnerEmail != "" && strings.EqualFold(s.OwnerEmail, u.Email)) {
		return true, true
	}
	for _, m := range s.Members {
		if (m.UserID != "" && m.UserID == u.ID) || (m.Email != "" && strings.EqualFold(m.Email, u.Email)) {
			return true, true
		}
	}
	return false, true
}

// checkUnique is check 4: key fingerprints, emails and backend users are
// distinct across profiles.
func (v *verifier) checkUnique(ps []profiles.Meta, users map[string]verifyUser) {
	const name = "unique_keys_emails"
	var dups []string
	byFP, byEmail, byUser := map[string]string{}, map[string]string{}, map[string]string{}
	note := func(m map[string]string, key, what, profile string) {
		if key == "" {
			return
		}
		if other, ok := m[key]; ok {
			dups = append(dups, fmt.Sprintf("%s and %s share %s %s", other, profile, what, key))
			return
		}
		m[key] = profile
	}
	for _, p := range ps {
		note(byFP, p.KeyFingerprint, "key", p.Name)
		note(byEmail, strings.ToLower(p.Email), "email", p.Name)
		note(byUser, users[p.Name].ID, "backend user", p.Name)
	}
	switch {
	case len(ps) == 0:
		v.add(name, checkFail, "no profiles")
	case len(dups) > 0:
		v.add(name, checkFail, "%s", strings.Join(dups, "; "))
	default:
		v.add(name, checkPass, "%d profiles, %d distinct keys and emails", len(ps), len(byFP))
	}
}

// checkSecurityHeaders is check 5, on the backend's own /health answer.
func (v *verifier) checkSecurityHeaders(h http.Header) {
	const name = "security_headers"
	if h == nil {
		v.add(name, checkFail, "not checked: the backend did not answer")
		return
	}
	var missing, seen []string
	for _, k := range []string{"X-Content-Type-Options", "X-Frame-Options"} {
		if val := h.Get(k); val == "" {
			missing = append(missing, k)
		} else {
			seen = append(seen, k+": "+val)
		}
	}
	if len(missing) > 0 {
		v.add(name, checkFail, "the backend does not send %s", strings.Join(missing, ", "))
		return
	}
	v.add(name, checkPass, "%s", strings.Join(seen, ", "))
}

// checkRefusals is check 6: the sidecar refuses an untagged request, an
// unknown profile and a request carrying the agent's own credential, each
// with its documented code.
func (v *verifier) checkRefusals(ctx context.Context, ps []profiles.Meta) {
	unknown := "verify-no-such-profile"
	for slices.ContainsFunc(ps, func(p profiles.Meta) bool { return p.Name == unknown }) {
		unknown += "-x"
	}
	type probe struct {
		name, code string
		status     int
		hdr        map[string]string
	}
	probes := []probe{
		{"refuses_untagged", "missing_profile", http.StatusBadRequest, nil},
		{"refuses_unknown", "unknown_profile", http.StatusForbidden, map[string]string{"X-Kanbot-Profile": unknown}},
	}
	if len(ps) > 0 {
		probes = append(probes, probe{"refuses_foreign_key", "foreign_credential", http.StatusForbidden,
			map[string]string{"X-Kanbot-Profile": ps[0].Name, "X-API-Key": verifyProbeKey}})
	} else {
		v.add("refuses_foreign_key", checkFail, "not checked: needs a configured profile")
	}
	for _, pr := range probes {
		a, err := v.get(ctx, v.sc, v.sidecar+"/api/v1/users/me", pr.hdr)
		switch {
		case err != nil:
			v.add(pr.name, checkFail, "GET /api/v1/users/me through %s: %v", v.sidecar, err)
		case a.status != pr.status || a.sidecarError != pr.code:
			v.add(pr.name, checkFail, "want %d %s from the sidecar, got %s", pr.status, pr.code, a.describe())
		default:
			v.add(pr.name, checkPass, "%d %s", a.status, a.sidecarError)
		}
	}
}

// checkFileModes is check 7a: every file in the home that holds a secret or
// private metadata is readable by its owner only.
func (v *verifier) checkFileModes(ps []profiles.Meta) {
	const name = "file_modes"
	required := []string{
		filepath.Join(v.home, identityFileName),
		filepath.Join(v.home, profiles.FileName),
		v.auditPath,
	}
	for _, p := range ps {
		required = append(required, filepath.Join(v.home, profiles.VaultDirName, p.Name+".age"))
	}
	optional := []string{filepath.Join(v.home, configFileName), v.auditPath + "-wal", v.auditPath + "-shm"}
	// Vault files of removed profiles still hold keys: check them too.
	if des, err := os.ReadDir(filepath.Join(v.home, profiles.VaultDirName)); err == nil {
		for _, de := range des {
			if de.Type().IsRegular() {
				optional = append(optional, filepath.Join(v.home, profiles.VaultDirName, de.Name()))
			}
		}
	}
	var bad []string
	checked := map[string]bool{}
	inspect := func(path string, must bool) {
		if checked[path] {
			return
		}
		checked[path] = true
		fi, err := os.Lstat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if must {
				bad = append(bad, v.rel(path)+" is missing")
			}
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: %v", v.rel(path), err))
		case !fi.Mode().IsRegular():
			bad = append(bad, v.rel(path)+" is not a regular file")
		case fi.Mode().Perm()&0o077 != 0:
			bad = append(bad, fmt.Sprintf("%s is %04o", v.rel(path), fi.Mode().Perm()))
		}
	}
	for _, p := range required {
		inspect(p, true)
	}
	for _, p := range optional {
		inspect(p, false)
	}
	if len(bad) > 0 {
		v.add(name, checkFail, "want 0600: %s", strings.Join(bad, "; "))
		return
	}
	v.add(name, checkPass, "%d files readable by the owner only (identity, profiles, vault, audit DB)", countExistingFiles(checked))
}

func countExistingFiles(paths map[string]bool) int {
	n := 0
	for p := range paths {
		if _, err := os.Lstat(p); err == nil {
			n++
		}
	}
	return n
}

// rel shows path relative to the home when it is inside it.
func (v *verifier) rel(path string) string {
	if r, err := filepath.Rel(v.home, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// checkAuditChain is check 7b: the audit DB's hash chain verifies.
func (v *verifier) checkAuditChain(ctx context.Context) {
	const name = "audit_chain"
	db, err := auditdb.OpenReadOnly(ctx, v.auditPath)
	if err != nil {
		v.add(name, checkFail, "%v", err)
		return
	}
	defer db.Close()
	res, err := db.Verify(ctx)
	switch {
	case err != nil:
		v.add(name, checkFail, "%v", err)
	case !res.OK:
		v.add(name, checkFail, "chain broken at seq %d: %s", res.BadSeq, res.Reason)
	default:
		v.add(name, checkPass, "%d events, seq %d..%d chain correctly", res.Events, res.FirstSeq, res.LastSeq)
	}
}

func verifyPlural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
