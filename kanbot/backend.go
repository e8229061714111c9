package kanbot

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/rs/zerolog"
)

// DefaultVersion is reported by GET /health when [Config.Version] is empty.
const DefaultVersion = "dev"

// timeFormat is RFC 3339 in UTC with fixed-width microseconds: text order
// equals time order, which ORDER BY created_at relies on.
const timeFormat = "2006-01-02T15:04:05.000000Z"

//go:embed migrations/*.sql
var migrationFS embed.FS

// Config configures [Open].
type Config struct {
	// DBPath is the SQLite file; it is created if missing. Required.
	DBPath string
	// Now is the clock for every stored time. If nil, time.Now is used.
	Now func() time.Time
	// Logger receives one line per request and the causes of 500s. The zero
	// value discards everything. It never receives a key or a body.
	Logger zerolog.Logger
	// Version is reported by GET /health. If empty, [DefaultVersion].
	Version string
}

// Backend is an open Kanbot backend: its database and its HTTP API. It is
// safe for concurrent use; Close releases it.
type Backend struct {
	db      *sql.DB
	now     func() time.Time
	log     zerolog.Logger
	version string
	handler http.Handler
}

// Open opens the database at cfg.DBPath (WAL, foreign keys on), applies any
// pending migrations and returns the Backend. The caller must Close it.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.DBPath == "" {
		return nil, errors.New("open kanbot: empty database path")
	}
	b := &Backend{now: cfg.Now, log: cfg.Logger, version: cfg.Version}
	if b.now == nil {
		b.now = time.Now
	}
	if b.version == "" {
		b.version = DefaultVersion
	}
	// _txlock=immediate makes every BeginTx a BEGIN IMMEDIATE: a write
	// transaction takes the write lock up front instead of failing with
	// SQLITE_BUSY when it upgrades from a read.
	dsn := "file:" + (&url.URL{Path: cfg.DBPath}).EscapedPath() +
		"?_journal_mode=WAL&_foreign_keys=1&_busy_timeout=5000&_txlock=immediate&_synchronous=NORMAL"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open kanbot database %s: %w", cfg.DBPath, err)
	}
	b.db = db
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open kanbot database %s: %w", cfg.DBPath, err)
	}
	if _, err := b.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	b.handler = b.routes()
	return b, nil
}

// Close closes the database. Requests still in flight fail.
func (b *Backend) Close() error { return b.db.Close() }

// Handler returns the HTTP API: GET /health and everything under /api/v1.
func (b *Backend) Handler() http.Handler { return b.handler }

// Ping checks that the database answers a query and holds the schema.
func (b *Backend) Ping(ctx context.Context) error {
	var n int
	if err := b.db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		return fmt.Errorf("query database: %w", err)
	}
	if n == 0 {
		return errors.New("database has no schema")
	}
	return nil
}

// Migrate applies the embedded migrations not yet recorded in
// schema_migrations, each in its own transaction, and returns the versions it
// applied (none when the schema is current). Open calls it; it is safe to call
// again.
func (b *Backend) Migrate(ctx context.Context) ([]int, error) {
	if _, err := b.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	var applied []int
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and _", base)
		}
		did, err := b.migrateOne(ctx, name, version)
		if err != nil {
			return nil, err
		}
		if did {
			applied = append(applied, version)
		}
	}
	return applied, nil
}

func (b *Backend) migrateOne(ctx context.Context, name string, version int) (bool, error) {
	body, err := migrationFS.ReadFile(name)
	if err != nil {
		return false, fmt.Errorf("read migration %s: %w", name, err)
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("begin migration %d: %w", version, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return false, fmt.Errorf("check migration %d: %w", version, err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return false, fmt.Errorf("apply migration %d: %w", version, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		version, b.timestamp()); err != nil {
		return false, fmt.Errorf("record migration %d: %w", version, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("commit migration %d: %w", version, err)
	}
	return true, nil
}

// SchemaVersion returns the highest applied migration.
func (b *Backend) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := b.db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// timestamp is the injected clock's now, formatted for storage and output.
func (b *Backend) timestamp() string { return b.now().UTC().Format(timeFormat) }

// newID returns a random UUID v4 (RFC 9562 §5.4) from crypto/rand.
func newID() string {
	var u [16]byte
	rand.Read(u[:]) // never returns an error (Go 1.24+: it crashes the program instead)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}

// parseUUID returns s in canonical lower-case form if it is a UUID in the
// 8-4-4-4-12 hex form (either case), else false. Ids are compared as text, so
// every id from a client passes through here first.
func parseUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return "", false
			}
		}
	}
	return strings.ToLower(s), true
}

// isUniqueViolation reports whether err is a SQLite UNIQUE or PRIMARY KEY
// constraint failure on the given column ("users.email"), or on any column
// when col is empty. SQLite names the column only in the message.
func isUniqueViolation(err error, col string) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) || se.Code != sqlite3.ErrConstraint {
		return false
	}
	if se.ExtendedCode != sqlite3.ErrConstraintUnique && se.ExtendedCode != sqlite3.ErrConstraintPrimaryKey {
		return false
	}
	return col == "" || strings.Contains(se.Error(), col)
}

// isForeignKeyViolation reports whether err is a SQLite FOREIGN KEY failure.
func isForeignKeyViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintForeignKey
}

// prefixed qualifies each column of a comma-separated list with a table alias.
func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + "." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// ParseID reports whether s is a UUID (8-4-4-4-12 hex, either case) and
// returns it in the canonical lower-case form ids are stored in.
func ParseID(s string) (string, bool) { return parseUUID(s) }
