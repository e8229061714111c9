// Package auditdb is the sidecar's audit trail: an append-only, hash-chained
// SQLite events table, written by one group-commit writer, with the queries,
// export, stats, chain verification and pruning built on it.
//
// The promise to users: no call reaches the backend unless its request event
// is already committed, and no row can be altered, removed, inserted or
// reordered without [DB.Verify] noticing.
//
// # Writing
//
// [Open] starts one writer goroutine. [DB.Record] queues an event (waiting,
// bounded by its context, when the queue is full) and returns once the
// transaction holding it has committed. The writer takes every event
// waiting, up to Config.MaxBatch, and writes them in one transaction (group
// commit). Each transaction is BEGIN IMMEDIATE and reads the chain tail
// inside it, so several processes (the server and CLI commands recording
// admin events) can append to one file and the chain stays single and valid.
// (The tail read is a cached value when PRAGMA data_version, read inside
// the transaction, shows that no other connection has committed since the
// writer's own last commit.) WAL checkpoints run on a separate connection
// with automatic checkpoints off, so a commit never pays for one.
//
// Just before each COMMIT the writer checks (one stat each) that the file
// at Config.Path and its -wal file are still the ones Open opened. If one
// was removed or replaced, SQLite would commit into the unlinked file and
// the events would be lost, so the batch fails with [ErrReplaced] and every
// later one does too: the file is never silently recreated. [DB.Ping]
// makes the same check, never creates the file, and takes the write lock
// for real, waiting no longer than its context allows.
//
// # Lazy events
//
// Response events are lazy; every other kind is eager. A batch that holds
// only lazy events is not committed at once: the writer holds it until an
// eager event arrives (the held events then share that event's commit), the
// batch is full, Config.LazyDelay has passed (default 2 ms), or Close.
// At low concurrency this halves the commits per proxied call: the
// response of one call rides along with the write-ahead request event of
// the next, instead of occupying the writer when that request arrives.
//
// Nothing is weakened by it. Record of a lazy event still returns only
// once the event is committed (the proxy calls it off the agent's path);
// Close commits held events before it returns; a request event is never
// held. A crash can lose only lazy events whose Record had not returned,
// and a response event that was never committed leaves its call with
// outcome incomplete, as a crash in the middle of the call would.
//
// # Schema
//
// The schema (migrations/*.sql, embedded) is a public interface, documented
// in README.md ("Audit database"): the events table, the calls view (one row
// per request with its outcome), the checkpoints table written by
// [DB.Prune], and schema_migrations.
//
// # Hash chain
//
// Every event row carries prev_hash and hash, both 32-byte BLOBs:
//
//	hash = SHA-256(prev_hash ‖ canonical(row))
//
// prev_hash is the hash of the event with the previous seq; for the first
// event it is 32 zero bytes, and after a prune it is the hash stored in the
// newest checkpoints row (the last pruned event's hash). seq values are
// consecutive integers.
//
// canonical(row) concatenates these 18 columns, in this order, each encoded
// as a field:
//
//	seq, ts, kind, request_id, profile, client, method, host, path, query,
//	status, code, outcome, bytes_in, bytes_out, duration_ms,
//	key_fingerprint, detail
//
// A NULL field is the single byte 0x00. Any other field is the byte 0x01,
// then the length in bytes of its text as a 4-byte big-endian unsigned
// integer, then that text in UTF-8. The text of an integer column (seq,
// status, bytes_in, bytes_out) is its decimal form without sign or leading
// zeros ("200"); duration_ms is printed with exactly three decimals
// ("1.234", "12.000"), as C's printf("%.3f"); text columns are their stored
// text. No column is ever the empty string (empty values are stored NULL).
//
// So a verifier in any language walks the rows in seq order, keeps the
// previous hash, and for each row checks seq = previous seq + 1, prev_hash =
// previous hash and hash = SHA-256(prev_hash ‖ canonical(row)). The README
// has a complete Python script. A hash chain without a secret cannot stop
// someone who rewrites every later row as well, nor notice the newest rows
// being cut off: keep the head hash that `audit verify` prints somewhere
// else to detect that.
package auditdb
