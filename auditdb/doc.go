// Package auditdb is the sidecar's audit trail: an append-only, hash-chained
// SQLite events table, written by one group-commit writer, with the queries,
// export, stats, chain verification and pruning built on it.
//
// The promise to users: no call reaches the backend unless its request event
// is already committed, and no row can be altered, removed, inserted or
// reordered without [DB.Verify] noticing.
package auditdb
