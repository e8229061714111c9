package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kanbot/kanbot-sidecar/auditdb"
)

// defaultQueryLimit caps `audit query` output unless --limit says otherwise
// (export has no cap).
const defaultQueryLimit = 100

func newAuditCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Query, export, summarise, verify and prune the audit database",
		Long: `The audit database (audit.path, default audit.db in the home) records every
request the sidecar saw, hash-chained so that changes are detected. These
commands read it (query, export, stats, verify) or trim it (prune). It is
plain SQLite: see README.md "Audit database" for the schema and sqlite3 queries.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for \"kanbot-sidecar audit\"", args[0])
			}
			cmd.SetOut(e.stderr)
			_ = cmd.Help()
			return usagef("missing subcommand: query, export, stats, verify or prune")
		},
	}
	cmd.AddCommand(
		newAuditQueryCmd(e),
		newAuditExportCmd(e),
		newAuditStatsCmd(e),
		newAuditVerifyCmd(e),
		newAuditPruneCmd(e),
	)
	return cmd
}

// filterFlags are the call filters shared by query and export.
type filterFlags struct {
	profile, since, until, outcome, reason, status, method, pathPrefix, requestID string
	limit                                                                         int
}

func (ff *filterFlags) register(cmd *cobra.Command, defaultLimit int) {
	fl := cmd.Flags()
	fl.StringVar(&ff.profile, "profile", "", "only this profile")
	fl.StringVar(&ff.since, "since", "", "only calls at or after: a duration back from now (1h, 36h, 90d) or RFC3339")
	fl.StringVar(&ff.until, "until", "", "only calls before: a duration back from now or RFC3339")
	fl.StringVar(&ff.outcome, "outcome", "", "forwarded, rejected, upstream_error, incomplete or client_aborted")
	fl.StringVar(&ff.reason, "reason", "", "refusal or error code, e.g. unknown_profile")
	fl.StringVar(&ff.status, "status", "", "HTTP status: exact (200) or a class (4xx)")
	fl.StringVar(&ff.method, "method", "", "HTTP method")
	fl.StringVar(&ff.pathPrefix, "path-prefix", "", "only paths starting with this (literal)")
	fl.StringVar(&ff.requestID, "request-id", "", "only this request id")
	fl.IntVar(&ff.limit, "limit", defaultLimit, "at most N calls (0: no limit)")
}

// filter turns the flags into an auditdb.Filter; bad values are usage errors.
func (ff *filterFlags) filter(now time.Time) (auditdb.Filter, error) {
	f := auditdb.Filter{
		Profile: ff.profile, Outcome: ff.outcome, Code: ff.reason, Method: ff.method,
		PathPrefix: ff.pathPrefix, RequestID: ff.requestID, Limit: ff.limit,
	}
	var err error
	if ff.since != "" {
		if f.Since, err = parseTimeFlag(ff.since, now); err != nil {
			return f, usagef("--since: %v", err)
		}
	}
	if ff.until != "" {
		if f.Until, err = parseTimeFlag(ff.until, now); err != nil {
			return f, usagef("--until: %v", err)
		}
	}
	if ff.status != "" {
		if f.Status, f.StatusMin, f.StatusMax, err = parseStatusFlag(ff.status); err != nil {
			return f, usagef("--status: %v", err)
		}
	}
	if ff.limit < 0 {
		return f, usagef("--limit %d: must not be negative", ff.limit)
	}
	if err := f.Validate(); err != nil {
		return f, usagef("%v", err)
	}
	return f, nil
}

var daysRE = regexp.MustCompile(`^(\d+)d(.*)$`)

// parseTimeFlag reads a point in time: a duration back from now (Go
// durations plus a leading whole number of days: 90d, 36h, 1d12h) or an
// RFC3339 time (a bare date 2006-01-02 means its midnight UTC).
func parseTimeFlag(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	d, err := parseAge(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want a duration like 1h, 36h or 90d, or an RFC3339 time like 2026-01-02T15:04:05Z", s)
	}
	return now.Add(-d), nil
}

// parseAge parses a non-negative duration with an optional leading days
// part ("90d", "1d12h", "36h").
func parseAge(s string) (time.Duration, error) {
	var days time.Duration
	rest := s
	if m := daysRE.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 100000 {
			return 0, errors.New("too many days")
		}
		days = time.Duration(n) * 24 * time.Hour
		rest = m[2]
	}
	var d time.Duration
	if rest != "" {
		var err error
		if d, err = time.ParseDuration(rest); err != nil {
			return 0, err
		}
	}
	if d < 0 || s == "" {
		return 0, errors.New("negative or empty duration")
	}
	return days + d, nil
}

// parseStatusFlag reads "200" (exact) or "4xx" (class).
func parseStatusFlag(s string) (exact, lo, hi int, err error) {
	ls := strings.ToLower(s)
	if len(ls) == 3 && strings.HasSuffix(ls, "xx") && ls[0] >= '1' && ls[0] <= '5' {
		c := int(ls[0]-'0') * 100
		return 0, c, c + 99, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return 0, 0, 0, fmt.Errorf("%q: want a status like 200 or a class like 4xx", s)
	}
	return n, 0, 0, nil
}

// openAuditRead opens the configured audit DB read-only; a missing file is
// a failed operation with a clear message, never silently created.
func openAuditRead(cmd *cobra.Command, e *env) (*auditdb.DB, error) {
	path, _, err := auditPathFor(cmd, e)
	if err != nil {
		return nil, err
	}
	db, err := auditdb.OpenReadOnly(cmd.Context(), path)
	if errors.Is(err, auditdb.ErrNotExist) {
		return nil, fmt.Errorf("no audit database at %s (run kanbot-sidecar init, or check audit.path / --home)", path)
	}
	return db, err
}

func auditPathFor(cmd *cobra.Command, e *env) (string, fileConfig, error) {
	home, err := homeDir(cmd, e)
	if err != nil {
		return "", fileConfig{}, err
	}
	fc, err := loadConfig(home, nil)
	if err != nil {
		return "", fileConfig{}, err
	}
	return fc.auditPath(), fc, nil
}

func newAuditQueryCmd(e *env) *cobra.Command {
	var ff filterFlags
	var format string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "query",
		Short: "Show calls (newest first), filtered",
		Long: `query prints calls from the calls view, newest first, at most --limit
(default 100; 0 for all). Filters combine with AND.

  kanbot-sidecar audit query --profile alice --since 1h --status 4xx`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				format = "json"
			}
			switch format {
			case "table", auditdb.FormatJSON, auditdb.FormatJSONL, auditdb.FormatCSV:
			default:
				return usagef("--format %q: want table, json, jsonl or csv", format)
			}
			f, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			f.Newest = true
			db, err := openAuditRead(cmd, e)
			if err != nil {
				return err
			}
			defer db.Close()
			if format != "table" {
				_, err := db.Export(cmd.Context(), e.stdout, format, f, nil)
				return err
			}
			return printCallTable(cmd.Context(), e.stdout, db, f)
		},
	}
	ff.register(cmd, defaultQueryLimit)
	cmd.Flags().StringVar(&format, "format", "table", "table, json, jsonl or csv")
	cmd.Flags().BoolVar(&asJSON, "json", false, "same as --format json")
	return cmd
}

func printCallTable(ctx context.Context, w io.Writer, db *auditdb.DB, f auditdb.Filter) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED_AT\tPROFILE\tMETHOD\tPATH\tSTATUS\tOUTCOME\tCODE\tMS\tREQUEST_ID")
	n := 0
	err := db.Calls(ctx, f, func(c auditdb.Call) error {
		n++
		status, ms := "-", "-"
		if c.Status != 0 {
			status = strconv.Itoa(c.Status)
		}
		if c.DurationMS != 0 {
			ms = strconv.FormatFloat(c.DurationMS, 'f', -1, 64)
		}
		_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			c.StartedAt.UTC().Format("2006-01-02T15:04:05.000Z"), dash(c.Profile), dash(c.Method), dash(c.Path),
			status, c.Outcome, dash(c.Code), ms, dash(c.RequestID))
		return err
	})
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(tw, "(no calls match)")
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newAuditExportCmd(e *env) *cobra.Command {
	var ff filterFlags
	var format, out string
	var force bool
	cmd := &cobra.Command{
		Use:   "export --format jsonl|json|csv [--out FILE [--force]]",
		Short: "Stream calls (oldest first) as jsonl, json or csv",
		Long: `export streams every matching call, oldest first, to stdout or --out FILE.
Rows are written as they are read, so memory stays flat for any size. --out is
written to a temporary file next to FILE (mode 0600) and moved into place
only when complete; an existing FILE is kept unless --force, and a FILE inside
the sidecar home is always refused. Progress goes to stderr when it is a terminal.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch format {
			case auditdb.FormatJSON, auditdb.FormatJSONL, auditdb.FormatCSV:
			case "":
				return usagef("--format is required: jsonl, json or csv")
			default:
				return usagef("--format %q: want jsonl, json or csv", format)
			}
			f, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			if out == "-" {
				out = "" // the usual spelling of stdout
			}
			if out != "" {
				if err := checkExportTarget(cmd, e, out); err != nil {
					return err
				}
			}
			db, err := openAuditRead(cmd, e)
			if err != nil {
				return err
			}
			defer db.Close()
			progress := progressFunc(e.stderr)
			if out == "" {
				_, err := db.Export(cmd.Context(), e.stdout, format, f, progress)
				return err
			}
			return exportToFile(cmd.Context(), db, out, format, f, progress, force)
		},
	}
	ff.register(cmd, 0)
	cmd.Flags().StringVar(&format, "format", "", "jsonl, json or csv (required)")
	cmd.Flags().StringVar(&out, "out", "", "write to FILE (atomically) instead of stdout; FILE must not exist unless --force")
	cmd.Flags().BoolVar(&force, "force", false, "with --out: replace FILE if it exists")
	return cmd
}

// checkExportTarget refuses an --out path inside the sidecar home or beside
// the audit database with its name (audit.db, -wal, -shm), whatever --force
// says: an export moved over audit.db or identity.txt would destroy the
// audit trail or every key.
func checkExportTarget(cmd *cobra.Command, e *env, out string) error {
	auditPath, fc, err := auditPathFor(cmd, e)
	if err != nil {
		return err
	}
	if fi, err := os.Lstat(out); err == nil && !fi.Mode().IsRegular() {
		// --force replaces a file by renaming over it: never a device
		// (/dev/null), a symlink (/dev/stdout) or a directory.
		return fmt.Errorf("--out %s: not a regular file; export to a regular file, or leave --out out to write to stdout", out)
	}
	target := resolvePath(out)
	db := resolvePath(auditPath)
	if real, err := filepath.EvalSymlinks(auditPath); err == nil {
		db = real // audit.path may itself be a symlink to the real file
	}
	if within(resolvePath(fc.home), target) ||
		(filepath.Dir(target) == filepath.Dir(db) && strings.HasPrefix(filepath.Base(target), filepath.Base(db))) {
		return fmt.Errorf("--out %s: refusing to write inside the sidecar home or over the audit database; export somewhere else", out)
	}
	return nil
}

// resolvePath makes p absolute and resolves symlinks in its directory (the
// file itself may not exist yet).
func resolvePath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(dir, filepath.Base(abs))
	}
	return abs
}

// within reports whether p is dir or lies below it.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// progressFunc returns a progress printer when w is a terminal, else nil.
func progressFunc(w io.Writer) func(int64) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(n int64) { fmt.Fprintf(f, "\rexported %d calls", n) }
}

// exportToFile streams into a temp file in out's directory and moves it to
// out once complete, so out is never left half written. Without force the
// move is a hard link, which fails if out exists, so a file that appeared
// meanwhile is not replaced either.
func exportToFile(ctx context.Context, db *auditdb.DB, out, format string, f auditdb.Filter, progress func(int64), force bool) (err error) {
	if !force {
		if _, err := os.Lstat(out); err == nil {
			return fmt.Errorf("export: %s exists; pass --force to replace it", out)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = db.Export(ctx, tmp, format, f, progress); err != nil {
		return err
	}
	if progress != nil {
		fmt.Fprintln(os.Stderr)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if force {
		if err = os.Rename(tmp.Name(), out); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		return nil
	}
	if err = os.Link(tmp.Name(), out); err != nil {
		if errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("export: %s exists; pass --force to replace it", out)
		} else {
			err = fmt.Errorf("export: %w", err)
		}
		return err
	}
	os.Remove(tmp.Name())
	return nil
}

func newAuditStatsCmd(e *env) *cobra.Command {
	var since, profile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats [--since 24h] [--json]",
		Short: "Per-profile summary: calls, forwarded, refusals by code, upstream 401/403, p50/p95",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			f := auditdb.Filter{Profile: profile}
			if since != "" {
				t, err := parseTimeFlag(since, now)
				if err != nil {
					return usagef("--since: %v", err)
				}
				f.Since = t
			}
			db, err := openAuditRead(cmd, e)
			if err != nil {
				return err
			}
			defer db.Close()
			st, err := db.Stats(cmd.Context(), f)
			if err != nil {
				return err
			}
			if asJSON {
				if st == nil {
					st = []auditdb.ProfileStats{}
				}
				return writeJSON(e.stdout, map[string]any{"since": f.Since.UTC(), "profiles": st})
			}
			return printStats(e.stdout, st)
		},
	}
	cmd.Flags().StringVar(&since, "since", "24h", "window: a duration back from now (24h, 7d) or RFC3339; empty for all time")
	cmd.Flags().StringVar(&profile, "profile", "", "only this profile")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printStats(w io.Writer, st []auditdb.ProfileStats) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tCALLS\tFORWARDED\tREJECTED\tRATE_LIMITED\tUPSTREAM_401\tUPSTREAM_403\tMISMATCH\tUPSTREAM_ERR\tP50_MS\tP95_MS\tREJECTED_BY")
	for _, s := range st {
		var by []string
		for code, n := range s.RejectedBy {
			by = append(by, fmt.Sprintf("%s=%d", code, n))
		}
		sort.Strings(by)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.3f\t%.3f\t%s\n",
			orNone(s.Profile), s.Calls, s.Forwarded, s.Rejected, s.RateLimited, s.Upstream401, s.Upstream403,
			s.Mismatch, s.UpstreamError, s.P50MS, s.P95MS, dash(strings.Join(by, ",")))
	}
	if len(st) == 0 {
		fmt.Fprintln(tw, "(no calls in this window)")
	}
	return tw.Flush()
}

func orNone(p string) string {
	if p == "" {
		return "(none)"
	}
	return p
}

func newAuditVerifyCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify [--json]",
		Short: "Walk the hash chain; exit 1 with the first bad sequence number on any break",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := openAuditRead(cmd, e)
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := db.Verify(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(e.stdout, res); err != nil {
					return err
				}
			} else if res.OK {
				fmt.Fprintf(e.stdout, "OK: %d events (seq %d..%d), chain intact; head hash %s\n", res.Events, res.FirstSeq, res.LastSeq, dash(res.HeadHash))
				if res.CheckpointSeq > 0 {
					fmt.Fprintf(e.stdout, "pruned through seq %d (checkpoint)\n", res.CheckpointSeq)
				}
			} else {
				fmt.Fprintf(e.stdout, "BROKEN at seq %d: %s (%d events verified before it)\n", res.BadSeq, res.Reason, res.Events)
			}
			if !res.OK {
				return fmt.Errorf("audit chain broken at seq %d: %s", res.BadSeq, res.Reason)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newAuditPruneCmd(e *env) *cobra.Command {
	var before string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "prune --before 90d|RFC3339 [--json]",
		Short: "Delete events older than a bound, keeping a checkpoint so verify still passes",
		Long: `prune deletes the oldest events (those stamped before --before) and records
a checkpoint: the hash of the last deleted event, from which the remaining
chain verifies. It also appends an admin event (audit_pruned) saying what was
pruned and by whom. The file does not shrink (SQLite reuses the pages); run
sqlite3 audit.db VACUUM with the server stopped to shrink it.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if before == "" {
				return usagef("--before is required (e.g. --before 90d)")
			}
			now := time.Now()
			t, err := parseTimeFlag(before, now)
			if err != nil {
				return usagef("--before: %v", err)
			}
			if t.After(now) {
				// A future bound would delete everything, including events
				// being written right now; that is never what retention means.
				return usagef("--before %s is in the future; give an age such as 90d or a past time", before)
			}
			path, fc, err := auditPathFor(cmd, e)
			if err != nil {
				return err
			}
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("no audit database at %s (run kanbot-sidecar init, or check audit.path / --home)", path)
			}
			db, err := auditdb.Open(cmd.Context(), auditdb.Config{Path: path, Durability: fc.Audit.Durability, RedactQuery: fc.Audit.RedactQuery})
			if err != nil {
				return err
			}
			res, err := db.Prune(cmd.Context(), t, osUser())
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, res)
			}
			if res.Deleted == 0 {
				_, err := fmt.Fprintf(e.stdout, "nothing to prune before %s\n", t.UTC().Format(time.RFC3339))
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "pruned %d events (through seq %d) before %s; checkpoint %s\n",
				res.Deleted, res.CheckpointSeq, t.UTC().Format(time.RFC3339), res.CheckpointHash)
			return err
		},
	}
	cmd.Flags().StringVar(&before, "before", "", "delete events before: a duration back from now (90d, 36h) or RFC3339")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
