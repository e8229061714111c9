// Command agent is an example multi-profile Kanbot agent that holds no keys.
//
// It plays the agent of the original multi-profile guide: one process that
// works for several people (alice, bob and charlie by default). Where that
// guide's agent kept every API key and switched between them in its own code,
// this one only knows the sidecar's URL and the profile names: every request
// is plain HTTP tagged with X-Kanbot-Profile, and the sidecar injects the key.
//
// For each profile it creates a space, adds cards to its columns, moves one,
// adds a checklist task and a comment. Then it prints a morning briefing (one
// line per profile with its open cards), tries to read one profile's space
// with another profile (the backend must answer 403, shown as BLOCKED), sends
// an untagged request and one for an unknown profile (the sidecar must refuse
// them), and prints a per-profile summary.
//
// Every step is an expectation; the exit status is 0 only if all were met,
// 1 if any failed, and 2 for bad usage.
//
//	go run ./examples/agent --sidecar http://127.0.0.1:8787 --profiles alice,bob,charlie
//
// It uses the standard library only, and it never reads HTTP_PROXY: it talks
// to the sidecar in base-URL mode.
package main
