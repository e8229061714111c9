// Package kanbot is the bundled Kanbot backend: the agent-facing part of the
// Kanbot HTTP API (KANBOT_API.md in the design docs) on an embedded SQLite
// store, so that kanbot-sidecar has a real backend to stand in front of with
// no external services.
//
// # Use
//
// [Open] opens (creating and migrating) the database and returns a [Backend].
// [Backend.Handler] is the whole HTTP API; the store methods ([Backend.CreateUser],
// [Backend.CreateAPIKey], [Backend.SetBanned], …) are what the kanbot CLI and
// tests use to administer it. [Backend.Close] releases the database.
//
// # Invariants
//
//   - API keys are returned once, by [Backend.CreateAPIKey] or POST
//     /api/v1/auth/api-keys; only their SHA-256 hex is stored.
//   - Every multi-row write is one transaction (BEGIN IMMEDIATE), so a failed
//     request writes nothing.
//   - A client mistake never yields a 500: malformed JSON and bad fields are
//     422, bodies over 1 MiB are 413, an id that is not a UUID is 404 (path)
//     or 422 (body or query).
//   - Every response, errors and mux 404/405 included, carries the security
//     headers of KANBOT_API.md.
//   - A banned user's key is refused on every /api/v1 route.
//
// The package holds no package-level mutable state; time comes from
// [Config.Now]. A Backend is safe for concurrent use.
package kanbot
