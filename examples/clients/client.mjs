// As profile argv[2] (default alice), ask the sidecar who we are and how many
// spaces we can see. Node 18+ (built-in fetch); no key here: the sidecar
// injects it. Node's fetch does not read HTTP_PROXY, so it talks to the
// sidecar directly.
const base = (process.env.SIDECAR_URL ?? "http://127.0.0.1:8787").replace(/\/+$/, "");
const profile = process.argv[2] ?? "alice";

async function get(path) {
  let resp;
  try {
    resp = await fetch(base + path, {
      headers: { "X-Kanbot-Profile": profile, Accept: "application/json" },
      redirect: "manual",
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new Error(`GET ${path}: cannot reach the sidecar at ${base}: ${err.cause?.code ?? err.message}`);
  }
  if (resp.status !== 200) {
    const code = resp.headers.get("X-Kanbot-Sidecar-Error");
    if (code) {
      throw new Error(`GET ${path}: refused by the sidecar: ${resp.status} ${code}`);
    }
    throw new Error(`GET ${path}: backend answered ${resp.status}: ${await resp.text()}`);
  }
  return resp.json();
}

try {
  const me = await get("/api/v1/users/me");
  let spaces = await get("/api/v1/spaces");
  if (!Array.isArray(spaces)) spaces = spaces.spaces ?? []; // some deployments wrap the list
  console.log(`profile=${profile} email=${me.email} spaces=${spaces.length}`);
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
