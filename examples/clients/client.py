#!/usr/bin/env python3
"""As profile argv[1] (default alice), ask the sidecar who we are and how many
spaces we can see. Standard library only; no key here: the sidecar injects it."""
import json
import os
import sys
import urllib.error
import urllib.request

SIDECAR_URL = os.environ.get("SIDECAR_URL", "http://127.0.0.1:8787").rstrip("/")
PROFILE = sys.argv[1] if len(sys.argv) > 1 else "alice"

# An empty ProxyHandler: talk to the sidecar directly, never via HTTP_PROXY.
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(path):
    req = urllib.request.Request(
        SIDECAR_URL + path,
        headers={"X-Kanbot-Profile": PROFILE, "Accept": "application/json"},
    )
    try:
        with opener.open(req, timeout=10) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as err:
        code = err.headers.get("X-Kanbot-Sidecar-Error")
        if code:  # the sidecar refused before anything reached the backend
            sys.exit(f"GET {path}: refused by the sidecar: {err.code} {code}")
        sys.exit(f"GET {path}: backend answered {err.code}: {err.read().decode(errors='replace')}")
    except urllib.error.URLError as err:
        sys.exit(f"GET {path}: cannot reach the sidecar at {SIDECAR_URL}: {err.reason}")


me = get("/api/v1/users/me")
spaces = get("/api/v1/spaces")
if isinstance(spaces, dict):  # some deployments wrap the list
    spaces = spaces.get("spaces", [])
print(f"profile={PROFILE} email={me['email']} spaces={len(spaces)}")
