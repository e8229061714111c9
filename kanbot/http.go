package kanbot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// maxBodyBytes is the largest request body accepted (KANBOT_API.md: 1 MiB).
const maxBodyBytes = 1 << 20

// APIKeyHeader carries an agent's API key.
const APIKeyHeader = "X-API-Key"

// Messages of KANBOT_API.md that clients match on.
const (
	msgNotAuthenticated = "Not authenticated"
	msgInvalidKey       = "Invalid API key"
	msgSuspended        = "Account suspended"
	msgInactive         = "Inactive user"
	msgSpaceNotFound    = "Space not found"
	msgColumnNotFound   = "Column not found"
	msgCardNotFound     = "Card not found"
	msgTaskNotFound     = "Task not found"
	msgCommentNotFound  = "Comment not found"
	msgKeyNotFound      = "API key not found"
	msgUserNotFound     = "User not found"
	msgNotMember        = "Not a member of this space"
	msgGuestReadOnly    = "Guests have read-only access to this space"
	msgOwnerOnly        = "Only space owners can do this"
	msgOnlyOwnerDelete  = "Only owner can delete space"
	msgAdminRequired    = "Admin access required"
	msgOwnComments      = "Can only edit your own comments"
	msgBodyTooLarge     = "Request body too large"
)

// httpError is an error with the status and public detail a client gets.
type httpError struct {
	status int
	detail string
}

func (e *httpError) Error() string { return fmt.Sprintf("%d %s", e.status, e.detail) }

func errStatus(status int, detail string) error { return &httpError{status, detail} }

// routes builds the API. Every handler sits behind headers (security headers
// on every response) and, under /api/v1, behind authentication.
func (b *Backend) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /health", b.public(b.health))

	api := func(pattern string, h authedFunc) { mux.Handle(pattern, b.authed(h)) }
	api("GET /api/v1/users/me", b.getMe)
	api("GET /api/v1/agents/me", b.getAgentMe)

	api("POST /api/v1/auth/api-keys", b.postAPIKey)
	api("GET /api/v1/auth/api-keys", b.listAPIKeys)
	api("DELETE /api/v1/auth/api-keys/{id}", b.deleteAPIKey)

	api("GET /api/v1/spaces", b.listSpaces)
	api("POST /api/v1/spaces", b.postSpace)
	api("GET /api/v1/spaces/{id}", b.getSpace)
	api("PATCH /api/v1/spaces/{id}", b.patchSpace)
	api("DELETE /api/v1/spaces/{id}", b.deleteSpace)
	api("POST /api/v1/spaces/{id}/invite", b.inviteMember)
	api("DELETE /api/v1/spaces/{id}/members/{user_id}", b.removeMember)

	api("GET /api/v1/columns", b.listColumns)
	api("POST /api/v1/columns", b.postColumn)
	api("GET /api/v1/columns/{id}", b.getColumn)
	api("PATCH /api/v1/columns/{id}", b.patchColumn)
	api("DELETE /api/v1/columns/{id}", b.deleteColumn)

	api("GET /api/v1/cards", b.listCards)
	api("POST /api/v1/cards", b.postCard)
	api("GET /api/v1/cards/{id}", b.getCard)
	api("PATCH /api/v1/cards/{id}", b.patchCard)
	api("DELETE /api/v1/cards/{id}", b.deleteCard)
	api("POST /api/v1/cards/{id}/move", b.moveCard)
	api("GET /api/v1/cards/{id}/history", b.cardHistory)
	api("POST /api/v1/cards/{id}/tasks", b.postTask)
	api("PATCH /api/v1/cards/{id}/tasks/{task_id}", b.patchTask)
	api("DELETE /api/v1/cards/{id}/tasks/{task_id}", b.deleteTask)
	api("GET /api/v1/cards/{id}/comments", b.listComments)
	api("POST /api/v1/cards/{id}/comments", b.postComment)
	api("PATCH /api/v1/cards/{id}/comments/{comment_id}", b.patchComment)
	api("DELETE /api/v1/cards/{id}/comments/{comment_id}", b.deleteComment)

	api("GET /api/v1/admin/users", b.adminUsers)
	api("GET /api/v1/admin/stats", b.adminStats)

	return b.frame(mux)
}

// frame sets the security headers on every response, caps request bodies,
// logs one line per request, and turns the mux's own text 404/405 into JSON
// like every other error.
func (b *Backend) frame(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := b.now()
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		h.Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		sw := &statusWriter{ResponseWriter: w}
		if handler, pattern := mux.Handler(r); pattern == "" {
			// The mux's NotFound or 405 handler: it writes text/plain.
			handler.ServeHTTP(&jsonErrorWriter{statusWriter: sw}, r)
		} else {
			mux.ServeHTTP(sw, r)
		}
		b.log.Info().Str("method", r.Method).Str("path", r.URL.Path).
			Int("status", sw.status()).Int64("dur_ms", b.now().Sub(start).Milliseconds()).Msg("request")
	})
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// jsonErrorWriter replaces the body of the mux's built-in error responses
// (http.Error text) with {"detail": "<status text>"}; headers such as Allow
// are kept.
type jsonErrorWriter struct {
	*statusWriter
	wrote bool
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.statusWriter.WriteHeader(code)
	body, _ := json.Marshal(map[string]string{"detail": http.StatusText(code)})
	w.statusWriter.Write(body)
}

func (w *jsonErrorWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return len(p), nil
}

// handlerFunc is a handler that returns its failure; serve maps it to a
// response.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// authedFunc is a handler for an authenticated /api/v1 route.
type authedFunc func(w http.ResponseWriter, r *http.Request, u *User) error

func (b *Backend) public(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.serve(w, r, h(w, r))
	})
}

func (b *Backend) authed(h authedFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := b.authenticate(r.Context(), r.Header.Values(APIKeyHeader))
		if err == nil {
			err = h(w, r, u)
		}
		b.serve(w, r, err)
	})
}

// serve writes err as the response, if there is one. It is the only place
// that decides what a client is told about a failure: the internal cause of a
// 500 is logged, never sent.
func (b *Backend) serve(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		return
	}
	var he *httpError
	var ve *ValidationError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		writeJSON(w, he.status, map[string]string{"detail": he.detail})
	case errors.As(err, &ve):
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": ve.Items})
	case errors.As(err, &mbe):
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"detail": msgBodyTooLarge})
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this.
		w.WriteHeader(499)
	default:
		b.log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("internal error")
		writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": "Internal Server Error"})
	}
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
	return nil
}

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// readBody reads the whole (size-capped) body and parses it as a JSON object.
// An empty or malformed body, or JSON that is not an object, is a 422.
func readBody(r *http.Request) (*fields, error) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, errStatus(http.StatusBadRequest, "Could not read request body")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &ValidationError{Items: []ValidationItem{{Loc: []any{"body"}, Msg: "Field required", Type: "missing"}}}
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil || dec.More() {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return nil, &ValidationError{Items: []ValidationItem{{Loc: []any{"body"}, Msg: "Input should be a valid dictionary or object", Type: "model_attributes_type"}}}
		}
		return nil, &ValidationError{Items: []ValidationItem{{Loc: []any{"body", 0}, Msg: "JSON decode error", Type: "json_invalid"}}}
	}
	if raw == nil { // the literal null
		return nil, &ValidationError{Items: []ValidationItem{{Loc: []any{"body"}, Msg: "Input should be a valid dictionary or object", Type: "model_attributes_type"}}}
	}
	return &fields{raw: raw}, nil
}

func (b *Backend) health(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "healthy", "version": b.version})
}

// since reports whether at least d passed between the stored time s and now.
func since(s string, now time.Time, d time.Duration) bool {
	t, err := time.Parse(time.RFC3339Nano, s)
	return err != nil || now.Sub(t) >= d
}
