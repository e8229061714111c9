// Package profiles reads and writes profiles.yaml (metadata only, never a
// key), validates profile names, and builds the immutable [Snapshot] the proxy
// reads: every profile with its decrypted [vault.Secret].
//
// # Invariants
//
//   - A name matches ^[a-z0-9][a-z0-9_.-]{0,62}$ ([ValidName]).
//   - A [Snapshot] is never modified after it is built; reloads replace it.
//   - A broken entry fails the whole load, with an error naming the profile
//     and the file, so the proxy keeps serving the snapshot it has.
//   - This package never logs.
package profiles
