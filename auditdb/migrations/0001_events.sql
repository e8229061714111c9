-- 0001: the append-only events table, its indexes, the prune checkpoints and
-- the calls view. This schema is a public interface (README.md, "Audit
-- database"): never edit this file once released; add 0002_….sql instead.

-- One row per event. seq is assigned by the writer inside a BEGIN IMMEDIATE
-- transaction as (tail seq + 1); hash = SHA-256(prev_hash || canonical
-- encoding of the row), see the auditdb package doc.
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY,
    ts              TEXT    NOT NULL,   -- UTC, 2006-01-02T15:04:05.000Z
    kind            TEXT    NOT NULL CHECK (kind IN ('request', 'response', 'reject', 'admin')),
    request_id      TEXT,
    profile         TEXT,
    client          TEXT,
    method          TEXT,
    host            TEXT,
    path            TEXT,
    query           TEXT,               -- values of audit.redact_query parameters are REDACTED
    status          INTEGER,
    code            TEXT,               -- refusal/error code; admin events: the action
    outcome         TEXT,               -- response events: forwarded, upstream_error, client_aborted
    bytes_in        INTEGER,
    bytes_out       INTEGER,
    duration_ms     REAL,               -- rounded to 3 decimals (µs)
    key_fingerprint TEXT,
    detail          TEXT,               -- JSON object
    prev_hash       BLOB    NOT NULL,   -- 32 bytes: the previous event's hash (or the checkpoint's)
    hash            BLOB    NOT NULL    -- 32 bytes
);

-- "one profile, one time range" over calls: only the rows that start a call
-- are indexed (response events are found through request_id), which keeps
-- the index, and each commit, small. A query on events uses it when its
-- WHERE clause contains this exact kind term, as the calls view does.
CREATE INDEX events_profile_ts ON events (profile, ts) WHERE kind IN ('request', 'reject');
-- "by request id", and the calls view's request → response join.
CREATE INDEX events_request_id ON events (request_id) WHERE request_id IS NOT NULL;

-- One row per `audit prune`: the last pruned event and its hash, which is the
-- prev_hash the first remaining event must carry.
CREATE TABLE checkpoints (
    seq       INTEGER PRIMARY KEY,
    hash      BLOB    NOT NULL,
    pruned_at TEXT    NOT NULL,
    deleted   INTEGER NOT NULL
);

-- Guard rails against accidents (an attacker with write access can drop them;
-- the hash chain is what detects tampering).
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN OLD.seq > (SELECT ifnull(max(seq), 0) FROM checkpoints)
BEGIN
    SELECT RAISE(ABORT, 'audit events are deleted only by audit prune');
END;

-- One row per request: a request event joined to its first later response
-- event with the same request_id; a reject event is a call of its own.
CREATE VIEW calls AS
SELECT
    r.request_id                                              AS request_id,
    r.ts                                                      AS started_at,
    r.profile                                                 AS profile,
    r.client                                                  AS client,
    r.method                                                  AS method,
    r.host                                                    AS host,
    r.path                                                    AS path,
    CASE WHEN r.kind = 'reject' THEN r.status ELSE s.status END AS status,
    CASE
        WHEN r.kind = 'reject' THEN 'rejected'
        WHEN s.seq IS NULL THEN 'incomplete'
        ELSE coalesce(s.outcome, 'forwarded')
    END                                                       AS outcome,
    CASE WHEN r.kind = 'reject' THEN r.code ELSE s.code END   AS code,
    CASE WHEN r.kind = 'reject' THEN r.duration_ms ELSE s.duration_ms END AS duration_ms,
    coalesce(s.bytes_in, r.bytes_in)                          AS bytes_in,
    coalesce(s.bytes_out, r.bytes_out)                        AS bytes_out,
    coalesce(r.key_fingerprint, s.key_fingerprint)            AS key_fingerprint,
    r.seq                                                     AS seq
FROM events AS r
LEFT JOIN events AS s
    ON r.kind = 'request'
   AND s.seq = (SELECT min(x.seq) FROM events AS x
                WHERE x.request_id = r.request_id AND x.seq > r.seq AND x.kind = 'response')
WHERE r.kind IN ('request', 'reject');
