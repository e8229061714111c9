// Package e2e runs the whole product as a user would: it builds the kanbot
// and kanbot-sidecar binaries, starts the bundled backend on a temporary
// SQLite file, creates users and keys with the kanbot CLI, hands the keys to
// the sidecar through stdin, starts the sidecar, and drives it with the
// example agent, the client snippets and `kanbot-sidecar verify`, as separate
// processes on loopback.
//
// It also runs examples/demo.sh itself, so `make demo` cannot rot.
//
// # Invariants checked
//
//   - the agent, verify and `audit verify` exit 0 and print what the README
//     promises; the sidecar's refusals carry their documented codes;
//   - no API key appears in any process output, log file, or file under the
//     sidecar home or the temp dir (canary scan);
//   - every process started is stopped, and the demo leaves no temp dir.
//
// The package has tests only; it exports nothing.
package e2e
