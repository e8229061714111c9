// Command bench is the harness behind `make bench`: it answers "what does
// putting kanbot-sidecar in front of my backend cost me?" with figures
// measured in one run on this machine, side by side with a direct
// connection.
//
// # What one run does
//
//   - starts a minimal upstream in its own process (a Go handler that returns
//     a fixed 1 KiB JSON body and checks the injected key), so the proxy's cost
//     is not hidden behind the backend's;
//   - builds a sidecar home the way a user would (`kanbot-sidecar init`,
//     `profiles add` with the key piped on stdin) and starts the built binary
//     (`bin/kanbot-sidecar serve`) in front of the upstream, write-ahead audit
//     on and every other setting at its default;
//   - starts the same proxy without the audit (see below);
//   - starts nginx with `proxy_set_header X-API-Key …` as the baseline a user
//     would reach for instead, if nginx is installed (it is never installed
//     by the harness; the row is left out with a printed note otherwise);
//   - drives every target with the same closed-loop load generator
//     (keep-alive, a fixed number of requests after a warm-up, at each
//     concurrency), alternating targets inside every round and rotating their
//     order between rounds, so that machine drift hits all of them alike;
//   - reports requests/s and p50/p90/p99 latency per target (medians over the
//     rounds), the sidecar's added latency and its throughput ratio to a
//     direct connection (computed per round, then the median), the sidecar's
//     RSS idle and under load (/proc/PID/status), the audit writer's events/s
//     and bytes per event on disk, and start-up time and RSS with many
//     profiles;
//   - prints a Markdown table and writes bench/results/latest.json.
//
// Nothing is estimated or hard-coded: every figure comes from the run. Every
// loop is bounded by a request count and a deadline, and all traffic stays on
// loopback.
//
// # The sidecar-noaudit row
//
// The write-ahead audit is part of the product's promise (no call reaches
// the backend unless its request event is committed), and serve has no way
// to turn it off; adding one only for benchmarks would weaken the product.
// To show what the audit costs, the harness re-executes itself as a second
// sidecar built from the same proxy package, wired as serve wires it but
// with an audit Recorder that discards events (noaudit.go). The "sidecar"
// row is always the real binary.
//
// # Flags
//
// The defaults are what `make bench` runs (under five minutes on 2 cores);
// the smoke test in bench_test.go runs the same code with tiny counts.
// Run `go run ./bench -h` for the list.
package main
