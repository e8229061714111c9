package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"strconv"

	"github.com/kanbot/kanbot-sidecar/auditdb"
)

// adminEvent describes a change an operator made with the CLI (profile
// added, removed, rotated), recorded as an `admin` audit event whether or
// not a server is running.
type adminEvent struct {
	Action         string         // e.g. "profile_added", "profile_removed", "profile_rotated"
	Profile        string         // the profile concerned
	KeyFingerprint string         // the (new) key's fingerprint, never the key
	Detail         map[string]any // extra JSON detail; "who" (the OS user) is added by recordAdmin
}

// recordAdmin appends ev to the audit DB named by fc: it opens the database
// (creating it if needed, with fc's durability and redaction), records one
// admin event with Code = Action and "who" = the OS user in its detail, and
// closes it. A running server appending at the same time is fine: every
// transaction takes the write lock and reads the chain tail inside it.
// created reports that the database had to be created (it was missing or
// had no audit schema), which the caller must tell the operator: a chain
// that restarts at seq 1 cannot vouch for what came before.
func recordAdmin(ctx context.Context, fc fileConfig, ev adminEvent) (created bool, err error) {
	detail := make(map[string]any, len(ev.Detail)+1)
	for k, v := range ev.Detail {
		detail[k] = v
	}
	detail["who"] = osUser()
	d, err := json.Marshal(detail)
	if err != nil {
		return false, fmt.Errorf("admin event detail: %w", err)
	}
	db, err := auditdb.Open(ctx, auditdb.Config{
		Path:        fc.auditPath(),
		Durability:  fc.Audit.Durability,
		RedactQuery: fc.Audit.RedactQuery,
	})
	if err != nil {
		return false, err
	}
	created = db.Created()
	err = db.Record(ctx, auditdb.Event{
		Kind:           auditdb.KindAdmin,
		Code:           ev.Action,
		Profile:        ev.Profile,
		KeyFingerprint: ev.KeyFingerprint,
		Detail:         d,
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return created, err
}

// osUser names the operator for admin events: the login name, or the
// numeric uid when the user database has no entry (containers).
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid:" + strconv.Itoa(os.Getuid())
}
