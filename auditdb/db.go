package auditdb

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3" // also registers the "sqlite3" database/sql driver
)

// Durability levels (config key audit.durability).
const (
	// DurabilityProcess (the default) survives a killed process: the WAL is
	// written at each commit but not fsynced (synchronous=NORMAL).
	DurabilityProcess = "process"
	// DurabilityPower also survives power loss: every commit is fsynced
	// (synchronous=FULL).
	DurabilityPower = "power"
)

// Defaults for the zero values of Config's bounds.
const (
	DefaultQueueSize     = 4096
	DefaultMaxBatch      = 1024
	DefaultBusyTimeout   = 5 * time.Second
	DefaultCheckpointGap = 4096 // events committed between background WAL checkpoints
	// DefaultLazyDelay is how long the writer holds a batch of response
	// events waiting for the next request event to commit with (see the
	// package doc, "Lazy events").
	DefaultLazyDelay = 2 * time.Millisecond
)

// Errors callers branch on.
var (
	// ErrClosed is returned by Record after Close has begun.
	ErrClosed = errors.New("audit database is closed")
	// ErrReadOnly is returned by writing methods of a DB from OpenReadOnly.
	ErrReadOnly = errors.New("audit database is open read-only")
	// ErrNotExist is returned by OpenReadOnly when the file does not exist
	// (it never creates one).
	ErrNotExist = errors.New("audit database does not exist")
	// ErrReplaced is returned by Record, Ping and Prune when the file at
	// Config.Path (or its -wal file) is no longer the one Open opened: it
	// was deleted, or renamed or copied over. Commits would go to the
	// unlinked file and be lost, so none is attempted; the DB stays
	// failed (it never recreates the file) until it is reopened.
	ErrReplaced = errors.New("audit database file was removed or replaced")
)

// Config configures Open. Only Path is required.
type Config struct {
	// Path is the SQLite file. It is created 0600 if missing (its -wal and
	// -shm files get the same mode); its directory must exist.
	Path string
	// Durability is DurabilityProcess (synchronous=NORMAL; "" means this) or
	// DurabilityPower (synchronous=FULL).
	Durability string
	// RedactQuery names query parameters (case-insensitive) whose values are
	// stored as REDACTED. Nil redacts nothing.
	RedactQuery []string
	// Now is the clock for events with a zero TS and for prune records.
	// Nil means time.Now.
	Now func() time.Time
	// OnCommit, if not nil, is called by the writer goroutine after each
	// successful commit with the number of events and the time the
	// transaction took (BEGIN to COMMIT). It must not block.
	OnCommit func(events int, d time.Duration)
	// QueueSize bounds the events waiting for the writer; when it is full,
	// Record waits (bounded by its context). Zero means DefaultQueueSize.
	QueueSize int
	// MaxBatch bounds the events written in one transaction. Zero means
	// DefaultMaxBatch.
	MaxBatch int
	// BusyTimeout is how long a transaction waits for another process's
	// write lock before failing. Zero means DefaultBusyTimeout.
	BusyTimeout time.Duration
	// CheckpointGap is how many committed events trigger a background WAL
	// checkpoint (the writer's connection never checkpoints itself, so a
	// commit never pays for one). Zero means DefaultCheckpointGap.
	CheckpointGap int
	// LazyDelay bounds how long a batch holding only response events
	// waits for an eager event to share its commit. Zero means
	// DefaultLazyDelay; negative commits every batch at once.
	LazyDelay time.Duration
}

// DB is an open audit database. A DB from Open appends events through one
// group-commit writer goroutine and also answers queries; a DB from
// OpenReadOnly only answers queries. All methods are safe for concurrent
// use. Close releases it.
type DB struct {
	path     string
	readOnly bool
	now      func() time.Time
	redact   map[string]bool
	onCommit func(int, time.Duration)
	maxBatch int
	ckptGap  int
	// lazyDelay: see Config.LazyDelay (0: off).
	lazyDelay time.Duration

	busyTimeout time.Duration
	lastBatch   int // writer goroutine only

	// file and wal identify the database file and its -wal file as Open
	// found them (wal is zero if there was none), so that checkFile can
	// tell when either has been removed or replaced under us.
	file, wal fileID
	walPath   string
	// created: Open found no schema in the file (see Created).
	created bool

	rdb *sql.DB // deferred transactions, mode=ro: queries, verify, stats
	wdb *sql.DB // _txlock=immediate: writer, checkpointer, prune, ping (nil when read-only)

	queue chan *pending
	held  atomic.Int64 // lazy events the writer holds for a later commit

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool

	stop      chan struct{} // closed by Close: the writer drains the queue and exits
	done      chan struct{} // closed when the writer has exited
	ckpt      chan struct{} // writer → checkpointer nudges
	ckptDone  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating and migrating if needed) the audit database at
// cfg.Path and starts its writer. The caller must Close it.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Path == "" {
		return nil, errors.New("open audit database: no path")
	}
	sync := "NORMAL"
	switch cfg.Durability {
	case "", DurabilityProcess:
	case DurabilityPower:
		sync = "FULL"
	default:
		return nil, fmt.Errorf("open audit database: durability %q: want %q or %q", cfg.Durability, DurabilityProcess, DurabilityPower)
	}
	if cfg.QueueSize < 0 || cfg.MaxBatch < 0 || cfg.BusyTimeout < 0 || cfg.CheckpointGap < 0 {
		return nil, errors.New("open audit database: negative queue size, batch, busy timeout or checkpoint gap")
	}
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("open audit database %s: %w", cfg.Path, err)
	}
	if err := createFile(path); err != nil {
		return nil, err
	}
	busy := cfg.BusyTimeout
	if busy == 0 {
		busy = DefaultBusyTimeout
	}
	db := &DB{
		path:        path,
		now:         cfg.Now,
		redact:      make(map[string]bool, len(cfg.RedactQuery)),
		onCommit:    cfg.OnCommit,
		maxBatch:    orDefault(cfg.MaxBatch, DefaultMaxBatch),
		ckptGap:     orDefault(cfg.CheckpointGap, DefaultCheckpointGap),
		busyTimeout: busy,
		queue:       make(chan *pending, orDefault(cfg.QueueSize, DefaultQueueSize)),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		ckpt:        make(chan struct{}, 1),
		ckptDone:    make(chan struct{}),
	}
	switch {
	case cfg.LazyDelay == 0:
		db.lazyDelay = DefaultLazyDelay
	case cfg.LazyDelay > 0:
		db.lazyDelay = cfg.LazyDelay
	}
	if db.now == nil {
		db.now = time.Now
	}
	for _, k := range cfg.RedactQuery {
		db.redact[strings.ToLower(k)] = true
	}
	db.wdb, err = sql.Open("sqlite3", dsn(path, url.Values{
		// Never create: createFile made the file, and a connection opened
		// later (Ping, Prune) after it was removed must fail, not leave an
		// empty database behind.
		"mode":          {"rw"},
		"_journal_mode": {"WAL"},
		"_synchronous":  {sync},
		"_busy_timeout": {fmt.Sprint(busy.Milliseconds())},
		"_txlock":       {"immediate"},
		// Keeps prune's statements prepared.
		"_stmt_cache_size": {"16"},
		// database/sql never shares a connection between goroutines, so
		// SQLite's per-call connection mutex is pure cost.
		"_mutex": {"no"},
	}))
	if err != nil {
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	db.rdb, err = sql.Open("sqlite3", dsn(path, url.Values{
		"mode":          {"ro"},
		"_busy_timeout": {fmt.Sprint(busy.Milliseconds())},
	}))
	if err != nil {
		db.wdb.Close()
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	var tables int
	if err := db.wdb.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'").Scan(&tables); err != nil {
		db.closeDBs()
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	db.created = tables == 0
	if err := migrate(ctx, db.wdb); err != nil {
		db.closeDBs()
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	// SQLite has the file (and, in WAL mode, its -wal file) open now:
	// remember which files these are.
	if db.file, err = statID(path); err != nil {
		db.closeDBs()
		return nil, fmt.Errorf("open audit database: %w", err)
	}
	db.walPath = path + "-wal"
	if id, err := statID(db.walPath); err == nil {
		db.wal = id
	}
	wconn, err := db.pinConn(ctx)
	if err != nil {
		db.closeDBs()
		return nil, err
	}
	// The writer retries BEGIN itself, with shorter pauses (chainWriter.begin).
	if _, err := wconn.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
		wconn.Close()
		db.closeDBs()
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	cconn, err := db.pinConn(ctx)
	if err != nil {
		wconn.Close()
		db.closeDBs()
		return nil, err
	}
	// The writer drives the go-sqlite3 connection directly (chainWriter):
	// Raw lends it for as long as the writer runs.
	started := make(chan error, 1)
	go func() {
		defer close(db.done)
		defer wconn.Close()
		err := wconn.Raw(func(dc any) error {
			c, ok := dc.(*sqlite3.SQLiteConn)
			if !ok {
				return fmt.Errorf("unexpected driver connection %T", dc)
			}
			started <- nil
			db.writer(c)
			return nil
		})
		if err != nil { // the writer never ran
			close(db.ckpt)
			started <- err
		}
	}()
	if err := <-started; err != nil {
		<-db.done
		cconn.Close()
		db.closeDBs()
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	go db.checkpointer(cconn)
	return db, nil
}

// OpenReadOnly opens an existing audit database for queries, Verify and
// Stats without taking write access to the file. It returns an error
// wrapping ErrNotExist if path does not exist, and never creates it.
func OpenReadOnly(ctx context.Context, path string) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open audit database %s: %w", path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotExist, abs)
		}
		return nil, fmt.Errorf("open audit database: %w", err)
	}
	db := &DB{path: abs, readOnly: true, now: time.Now}
	db.rdb, err = sql.Open("sqlite3", dsn(abs, url.Values{
		"mode":          {"ro"},
		"_busy_timeout": {fmt.Sprint(DefaultBusyTimeout.Milliseconds())},
	}))
	if err != nil {
		return nil, fmt.Errorf("open audit database %s: %w", abs, err)
	}
	if err := checkSchema(ctx, db.rdb); err != nil {
		db.rdb.Close()
		return nil, fmt.Errorf("open audit database %s: %w", abs, err)
	}
	return db, nil
}

// Path is the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Created reports whether Open found no audit schema in the file (it was
// missing, empty, or not an initialised audit database) and so started a
// new hash chain at seq 1. A server expecting an existing trail should say
// so loudly: an earlier trail, if there was one, is not in this file.
func (db *DB) Created() bool { return db.created }

// checkFile returns an error wrapping ErrReplaced if the database file or
// its -wal file at db.path is not the one Open opened: SQLite keeps
// writing to the open (possibly unlinked) file, so its commits would be
// lost. It costs one stat per file.
func (db *DB) checkFile() error {
	if err := sameFile(db.path, db.file); err != nil {
		return err
	}
	if db.wal != (fileID{}) {
		return sameFile(db.walPath, db.wal)
	}
	return nil
}

func sameFile(path string, want fileID) error {
	id, err := statID(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s is gone", ErrReplaced, filepath.Base(path))
	case err != nil:
		return fmt.Errorf("check audit database file: %w", err)
	case id != want:
		return fmt.Errorf("%w: %s is another file", ErrReplaced, filepath.Base(path))
	}
	return nil
}

// fileID is a file's identity (device and inode), as os.SameFile compares
// them. While SQLite holds the file open its inode cannot be reused, so a
// different fileID at the path means another file.
type fileID struct{ dev, ino uint64 }

// statID stats path with syscall.Stat: os.Stat would allocate a FileInfo
// on every commit (the project is Unix-only already: profiles uses flock).
func statID(path string) (fileID, error) {
	var st syscall.Stat_t
	for {
		err := syscall.Stat(path, &st)
		if err == nil {
			return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil // Dev is int32 on darwin
		}
		if err != syscall.EINTR {
			return fileID{}, &fs.PathError{Op: "stat", Path: path, Err: err}
		}
	}
}

// QueueDepth is the number of events waiting for the writer (for
// metrics): queued, or held by it for a later commit (lazy events).
func (db *DB) QueueDepth() int { return len(db.queue) + int(db.held.Load()) }

// Ping reports whether the database is writable right now: the file at
// Path is still the one Open opened (else an error wrapping ErrReplaced),
// and it takes and releases the write lock (BEGIN IMMEDIATE; ROLLBACK) on a
// connection of its own, waiting for another holder of the lock no longer
// than ctx allows (nor than Config.BusyTimeout). It never creates the file.
// It is meant for readiness checks, not for every request.
func (db *DB) Ping(ctx context.Context) error {
	if db.readOnly {
		return ErrReadOnly
	}
	db.mu.RLock()
	closed := db.closed
	db.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if err := db.ping(ctx); err != nil {
		return fmt.Errorf("audit database %s not writable: %w", db.path, err)
	}
	return nil
}

func (db *DB) ping(ctx context.Context) error {
	if err := db.checkFile(); err != nil {
		return err
	}
	wait := db.busyTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	if wait <= 0 {
		return context.DeadlineExceeded
	}
	conn, err := db.wdb.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// SQLite's busy handler does not notice ctx (an interrupt does not cut
	// its sleep short), so bound the wait itself; the connection goes back
	// to the pool with the configured timeout.
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", max(wait.Milliseconds(), 1))); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	if err == nil {
		// BEGIN IMMEDIATE on a file SQLite could open only read-only
		// succeeds; a write statement (that changes nothing) fails there.
		_, err = conn.ExecContext(ctx, "UPDATE schema_migrations SET version = version WHERE 0")
	}
	// ROLLBACK whatever BEGIN left (a cancelled ctx may have raced its
	// success); "no transaction is active" is expected after a failure.
	_, rerr := conn.ExecContext(context.Background(), "ROLLBACK")
	_, terr := conn.ExecContext(context.Background(), fmt.Sprintf("PRAGMA busy_timeout = %d", db.busyTimeout.Milliseconds()))
	if (err == nil && rerr != nil) || terr != nil {
		// Do not return a connection in an unknown state to the pool.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return cmp.Or(err, rerr, terr)
}

// Close stops accepting events, commits every event already queued, stops
// the writer and closes the database. It is safe to call more than once.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		if db.readOnly {
			db.closeErr = db.rdb.Close()
			return
		}
		db.mu.Lock()
		db.closed = true
		db.mu.Unlock()
		close(db.stop)
		<-db.done
		<-db.ckptDone
		db.closeErr = db.closeDBs()
	})
	return db.closeErr
}

func (db *DB) closeDBs() error {
	var errs []error
	if db.wdb != nil {
		errs = append(errs, db.wdb.Close())
	}
	if db.rdb != nil {
		errs = append(errs, db.rdb.Close())
	}
	return errors.Join(errs...)
}

// pinConn takes a dedicated connection with automatic checkpoints off: the
// background checkpointer does them, so no commit pays for one
// (PERFORMANCE.md).
func (db *DB) pinConn(ctx context.Context) (*sql.Conn, error) {
	c, err := db.wdb.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open audit database %s: %w", db.path, err)
	}
	if _, err := c.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0"); err != nil {
		c.Close()
		return nil, fmt.Errorf("open audit database %s: %w", db.path, err)
	}
	return c, nil
}

// createFile makes sure path exists with mode 0600 before SQLite opens it,
// so SQLite creates -wal and -shm with the same mode. The directory must
// already exist: a missing directory is a configuration error, not
// something to paper over.
func createFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("open audit database %s: directory %s does not exist", path, filepath.Dir(path))
		}
		// A read-only file is still opened (read-only) by SQLite; writes
		// then fail with a clear error.
		if _, serr := os.Stat(path); serr != nil {
			return fmt.Errorf("open audit database: %w", err)
		}
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open audit database: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			return fmt.Errorf("open audit database: %w", err)
		}
	}
	return nil
}

// dsn builds a go-sqlite3 URI DSN; the path is escaped so that '?', '#' and
// '%' in a directory name cannot change the parameters.
func dsn(path string, params url.Values) string {
	u := url.URL{Scheme: "file", OmitHost: true, Path: path}
	return u.String() + "?" + params.Encode()
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
