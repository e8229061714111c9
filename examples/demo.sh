#!/usr/bin/env bash
# examples/demo.sh — the main job end to end, on one machine, in one temp dir.
#
# Run it with `make demo` (which builds bin/ first). It starts the bundled
# Kanbot backend on a temporary SQLite file, creates three users and their
# API keys, hands the keys to kanbot-sidecar (piped, never echoed), starts the
# sidecar, runs the example agent through it, runs `verify`, and shows the
# audit trail. Everything lives in one temp dir, removed at the end unless
# KEEP=1. Every process it starts is stopped on exit, failure or Ctrl-C.
#
# Needs only what `make build` needs (Go with cgo, make); uses sqlite3 to show
# example queries if it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# BIN_DIR lets the end-to-end test run this script against binaries it built.
BIN_DIR=${BIN_DIR:-bin}
KANBOT=$BIN_DIR/kanbot
SIDECAR=$BIN_DIR/kanbot-sidecar
PROFILES=(alice bob charlie)

for b in "$KANBOT" "$SIDECAR"; do
	if [[ ! -x $b ]]; then
		echo "demo: $b is missing; run 'make demo' (it builds first)" >&2
		exit 1
	fi
done

DEMO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kanbot-demo.XXXXXX")
PIDS=()

# stop_all sends SIGTERM to every process the demo started (newest first, so
# the sidecar drains before the backend goes), waits up to 10 s for each, then
# forces it.
stop_all() {
	local i pid
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		pid=${PIDS[i]}
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}

cleanup() {
	local status=$?
	# Clean up whatever happens now: no errexit, and a closed stdout (EPIPE)
	# must not kill the cleanup halfway.
	set +e
	trap - EXIT HUP INT TERM
	trap '' PIPE
	stop_all
	if [[ $status -ne 0 ]]; then
		echo
		echo "demo: FAILED (exit $status). Last lines of the server logs:" >&2
		for log in "$DEMO_DIR"/logs/*.log; do
			[[ -f $log ]] || continue
			echo "--- $log" >&2
			tail -n 20 "$log" >&2
		done
	fi
	if [[ ${KEEP:-0} == 1 ]]; then
		echo "demo: kept $DEMO_DIR (KANBOT_SIDECAR_HOME=$DEMO_DIR/home)"
	else
		rm -rf "$DEMO_DIR"
	fi
	exit "$status"
}
# Signals end the script through exit, so the EXIT trap cleans up. PIPE is
# caught too: `make demo | head` must not leave servers running.
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

step() { printf '\n==> %s\n' "$*"; }

mkdir -p "$DEMO_DIR/logs" "$DEMO_DIR/tools"
step "building the example agent and the demo helper (standard library only)"
go build -o "$DEMO_DIR/tools/agent" ./examples/agent
go build -o "$DEMO_DIR/tools/demotool" ./examples/demotool
TOOL=$DEMO_DIR/tools/demotool

# (A read loop rather than mapfile: macOS still ships bash 3.2.)
PORTS=()
while read -r port; do PORTS+=("$port"); done < <("$TOOL" ports 3)
[[ ${#PORTS[@]} -eq 3 ]] || { echo "demo: could not find three free ports" >&2; exit 1; }
BACKEND_URL=http://127.0.0.1:${PORTS[0]}
SIDECAR_URL=http://127.0.0.1:${PORTS[1]}
ADMIN_URL=http://127.0.0.1:${PORTS[2]}

step "starting the bundled Kanbot backend on $BACKEND_URL (SQLite: $DEMO_DIR/kanbot.db)"
export KANBOT_DB=$DEMO_DIR/kanbot.db
"$KANBOT" serve --addr "127.0.0.1:${PORTS[0]}" --db "$KANBOT_DB" >"$DEMO_DIR/logs/kanbot.log" 2>&1 &
PIDS+=($!)
"$TOOL" wait "$BACKEND_URL/health" 30s

step "creating three Kanbot users, each with an API key, and handing the keys to the sidecar"
# The sidecar's settings for this demo come from the environment
# (flags > env > config.yaml > defaults), so nothing outside $DEMO_DIR is used.
export KANBOT_SIDECAR_HOME=$DEMO_DIR/home
export KANBOT_SIDECAR_LISTEN=127.0.0.1:${PORTS[1]}
export KANBOT_SIDECAR_ADMIN_LISTEN=127.0.0.1:${PORTS[2]}
export KANBOT_SIDECAR_UPSTREAM=$BACKEND_URL
export KANBOT_SIDECAR_LOG_FORMAT=json
"$SIDECAR" init
for p in "${PROFILES[@]}"; do
	"$KANBOT" user create --db "$KANBOT_DB" --email "$p@example.com" --username "$p" --json >/dev/null
	echo "created Kanbot user $p@example.com; its new API key goes by pipe into the sidecar"
	# The key travels stdout → pipe → stdin: it is never printed, never in a
	# shell variable and never on a command line (where `ps` would show it).
	"$KANBOT" apikey create --db "$KANBOT_DB" --user "$p@example.com" --name "sidecar demo" --json |
		"$TOOL" field data.key |
		"$SIDECAR" profiles add "$p" --email "$p@example.com"
done
"$SIDECAR" profiles list

step "starting kanbot-sidecar on $SIDECAR_URL (admin: $ADMIN_URL)"
"$SIDECAR" serve >"$DEMO_DIR/logs/sidecar.log" 2>&1 &
PIDS+=($!)
"$TOOL" wait "$ADMIN_URL/readyz" 30s

step "running the example agent through the sidecar (it holds no key)"
"$DEMO_DIR/tools/agent" --sidecar "$SIDECAR_URL" --profiles "$(
	IFS=,
	echo "${PROFILES[*]}"
)"

step "kanbot-sidecar verify"
"$SIDECAR" verify

step "kanbot-sidecar audit stats"
"$SIDECAR" audit stats

step "kanbot-sidecar audit verify"
"$SIDECAR" audit verify

AUDIT_DB=$KANBOT_SIDECAR_HOME/audit.db
if command -v sqlite3 >/dev/null 2>&1; then
	step "two example queries on the audit database ($AUDIT_DB)"
	q1="SELECT profile, outcome, count(*) AS calls FROM calls GROUP BY profile, outcome ORDER BY profile, outcome;"
	echo "\$ sqlite3 -readonly audit.db \"$q1\""
	sqlite3 -readonly -header -column "$AUDIT_DB" "$q1"
	echo
	q2="SELECT started_at, coalesce(nullif(profile, ''), '-') AS profile, method, path, status, CASE WHEN outcome = 'rejected' THEN 'sidecar: ' || code ELSE 'backend' END AS refused_by FROM calls WHERE outcome = 'rejected' OR status >= 400 ORDER BY started_at;"
	echo "\$ sqlite3 -readonly audit.db \"$q2\""
	sqlite3 -readonly -header -column "$AUDIT_DB" "$q2"
else
	step "sqlite3 is not installed: skipping the example queries (see README, 'Audit database')"
fi

step "stopping the sidecar and the backend"
stop_all
echo "demo: OK"
