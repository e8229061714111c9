#!/bin/sh
# As profile $1 (default alice), ask the sidecar who we are and how many
# spaces we can see. No key here: the sidecar injects it.
# Needs curl; uses sed to read two fields, so no jq is required.
set -eu
PROFILE=${1:-alice}
SIDECAR_URL=${SIDECAR_URL:-http://127.0.0.1:8787}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# get PATH: body to $tmp/body, headers to $tmp/headers; prints the status.
# --noproxy '*': talk to the sidecar directly, never through HTTP_PROXY.
get() {
	curl -sS --noproxy '*' -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' \
		-H "X-Kanbot-Profile: $PROFILE" -H 'Accept: application/json' \
		"$SIDECAR_URL$1"
}

check() { # check STATUS PATH: fail unless 200, naming who refused
	[ "$1" = 200 ] && return 0
	code=$(sed -n 's/^[Xx]-[Kk]anbot-[Ss]idecar-[Ee]rror: *\([a-z_]*\).*/\1/p' "$tmp/headers")
	if [ -n "$code" ]; then
		echo "GET $2: refused by the sidecar: $1 $code" >&2
	else
		echo "GET $2: backend answered $1: $(cat "$tmp/body")" >&2
	fi
	exit 1
}

status=$(get /api/v1/users/me)
check "$status" /api/v1/users/me
email=$(sed -n 's/.*"email" *: *"\([^"]*\)".*/\1/p' "$tmp/body" | head -n 1)

status=$(get /api/v1/spaces)
check "$status" /api/v1/spaces
# Count space objects by their "owner_id" field (a bare JSON array).
spaces=$(grep -o '"owner_id"' "$tmp/body" | wc -l | tr -d ' ')

echo "profile=$PROFILE email=$email spaces=$spaces"
