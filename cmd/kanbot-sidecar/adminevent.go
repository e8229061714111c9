package main

import (
	"context"
	"encoding/json"
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

// recordAdmin appends ev to the audit DB named by fc. Placeholder until the
// audit database lands; it must stay cheap and must never log a key.
func recordAdmin(ctx context.Context, fc fileConfig, ev adminEvent) error {
	_, _ = json.Marshal(ev.Detail)
	_ = ctx
	return nil
}
