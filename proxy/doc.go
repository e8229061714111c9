// Package proxy is the sidecar's request pipeline: it admits a request
// tagged X-Kanbot-Profile, resolves the profile, rate-limits it, commits a
// write-ahead audit event, injects the profile's key and forwards it to the
// profile's upstream, then records the response (DESIGN.md, "The request
// pipeline").
//
// # Modes
//
// One listener serves base-URL mode (the agent uses the sidecar as its
// Kanbot base URL) and forward-proxy mode (the agent sets HTTP_PROXY).
// goproxy routes both into one pipeline function; CONNECT is refused.
//
// # Invariants
//
//   - Every request ends either forwarded or refused with one of the codes
//     of DESIGN.md, and either way it is in the audit log: refusals as a
//     reject event, forwarded requests as a request event committed before
//     anything is sent upstream plus a response event.
//   - The upstream receives exactly one key header, set after every header
//     the agent sent has been filtered; the key goes only to the profile's
//     upstream and never follows a redirect.
//   - A key never reaches a log line, an audit event, a refusal or a
//     response header (an upstream echoing it is scrubbed).
//   - A request reads the profile snapshot once; reloads swap it
//     atomically and never block requests.
package proxy
