package auditdb

import (
	"encoding/json"
	"time"
)

// Event kinds, stored in events.kind.
const (
	KindRequest  = "request"  // a request admitted by the pipeline, written before forwarding
	KindResponse = "response" // the outcome of an admitted request
	KindReject   = "reject"   // a request refused by the sidecar
	KindAdmin    = "admin"    // profile added/removed/rotated, reload, start/stop
)

// Outcomes, as the calls view reports them and as response events carry
// them in Event.Outcome.
const (
	OutcomeForwarded     = "forwarded"
	OutcomeRejected      = "rejected"
	OutcomeUpstreamError = "upstream_error"
	OutcomeIncomplete    = "incomplete"
	OutcomeClientAborted = "client_aborted"
)

// Event is one row of the events table. The writer assigns Seq, PrevHash and
// Hash; TS is set from the writer's clock when zero. Fields that do not apply
// to a kind are left zero and stored as NULL.
//
// Event never carries a key, a credential header value or a body. Query is
// redacted by the writer (Config.RedactQuery) before it is stored.
type Event struct {
	Seq            int64
	TS             time.Time
	Kind           string
	RequestID      string
	Profile        string
	Client         string
	Method         string
	Host           string
	Path           string
	Query          string
	Status         int
	Code           string // refusal or error code; for admin events the action (e.g. "profile_added")
	Outcome        string // response events: one of the Outcome* constants
	BytesIn        int64
	BytesOut       int64
	DurationMS     float64
	KeyFingerprint string
	// Detail is a small JSON object with anything else worth keeping
	// (for admin events: who and what). Nil is stored as NULL.
	Detail   json.RawMessage
	PrevHash string
	Hash     string
}
