package kanbot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// ValidationError is a 422: the request was well-formed HTTP but its fields
// are not acceptable. Its JSON form is FastAPI's
// {"detail":[{"loc":[…],"msg":"…","type":"…"}]}. The CLI maps it to its own
// VALIDATION_ERROR code.
type ValidationError struct {
	Items []ValidationItem
}

// ValidationItem is one field's problem: where (Loc, e.g. ["body","name"]),
// what (Msg, for people) and which kind (Type, for programs).
type ValidationItem struct {
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
	Type string `json:"type"`
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Items))
	for i, it := range e.Items {
		loc := make([]string, len(it.Loc))
		for j, l := range it.Loc {
			loc[j] = fmt.Sprint(l)
		}
		parts[i] = strings.Join(loc, ".") + ": " + it.Msg
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

func invalid(loc []any, msg, typ string) *ValidationError {
	return &ValidationError{Items: []ValidationItem{{Loc: loc, Msg: msg, Type: typ}}}
}

// fields reads the members of a JSON object body one by one, collecting every
// problem so that one 422 lists them all (as FastAPI does). A member that is
// absent or null counts as not given. Members nobody asks for are ignored.
type fields struct {
	raw  map[string]json.RawMessage
	errs []ValidationItem
}

func (f *fields) fail(name, msg, typ string) {
	f.errs = append(f.errs, ValidationItem{Loc: []any{"body", name}, Msg: msg, Type: typ})
}

// err returns the collected problems, or nil.
func (f *fields) err() error {
	if len(f.errs) == 0 {
		return nil
	}
	return &ValidationError{Items: f.errs}
}

// get returns the raw value of name, or false when it is absent or null.
func (f *fields) get(name string) (json.RawMessage, bool) {
	v, ok := f.raw[name]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil, false
	}
	return v, true
}

// has reports whether name was given (and not null).
func (f *fields) has(name string) bool { _, ok := f.get(name); return ok }

// str reads a string of min..max characters. required makes absence an
// error. A string of only white space counts as empty.
func (f *fields) str(name string, required bool, min, max int) (string, bool) {
	v, ok := f.get(name)
	if !ok {
		if required {
			f.fail(name, "Field required", "missing")
		}
		return "", false
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		f.fail(name, "Input should be a valid string", "string_type")
		return "", false
	}
	n := utf8.RuneCountInString(s)
	switch {
	case min > 0 && (n < min || strings.TrimSpace(s) == ""):
		f.fail(name, fmt.Sprintf("String should have at least %d character%s", min, plural(min)), "string_too_short")
		return "", false
	case max > 0 && n > max:
		f.fail(name, fmt.Sprintf("String should have at most %d character%s", max, plural(max)), "string_too_long")
		return "", false
	}
	return s, true
}

// enum reads a string that must be one of allowed.
func (f *fields) enum(name string, required bool, allowed ...string) (string, bool) {
	s, ok := f.str(name, required, 0, 0)
	if !ok {
		return "", false
	}
	for _, a := range allowed {
		if s == a {
			return s, true
		}
	}
	f.fail(name, "Input should be "+quoteList(allowed), "literal_error")
	return "", false
}

// id reads a UUID string.
func (f *fields) id(name string, required bool) (string, bool) {
	s, ok := f.str(name, required, 0, 0)
	if !ok {
		return "", false
	}
	id, ok := parseUUID(s)
	if !ok {
		f.fail(name, "Input should be a valid UUID", "uuid_parsing")
		return "", false
	}
	return id, true
}

// ids reads an array of UUID strings, without duplicates.
func (f *fields) ids(name string) ([]string, bool) {
	v, ok := f.get(name)
	if !ok {
		return nil, false
	}
	var list []string
	if err := json.Unmarshal(v, &list); err != nil {
		f.fail(name, "Input should be a valid list of UUID strings", "list_type")
		return nil, false
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(list))
	for _, s := range list {
		id, ok := parseUUID(s)
		if !ok {
			f.fail(name, "Input should be a valid UUID", "uuid_parsing")
			return nil, false
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, true
}

// strs reads an array of strings of 1..max characters each, without
// duplicates.
func (f *fields) strs(name string, max int) ([]string, bool) {
	v, ok := f.get(name)
	if !ok {
		return nil, false
	}
	var list []string
	if err := json.Unmarshal(v, &list); err != nil {
		f.fail(name, "Input should be a valid list of strings", "list_type")
		return nil, false
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" || utf8.RuneCountInString(s) > max {
			f.fail(name, fmt.Sprintf("Each item should have 1 to %d characters", max), "string_too_long")
			return nil, false
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, true
}

// integer reads a whole number in 0..maxPosition.
func (f *fields) position(name string) (int64, bool) {
	v, ok := f.get(name)
	if !ok {
		return 0, false
	}
	var n float64
	if err := json.Unmarshal(v, &n); err != nil || n != math.Trunc(n) {
		f.fail(name, "Input should be a valid integer", "int_type")
		return 0, false
	}
	if n < 0 || n > maxPosition {
		f.fail(name, fmt.Sprintf("Input should be between 0 and %d", maxPosition), "less_than_equal")
		return 0, false
	}
	return int64(n), true
}

// maxPosition bounds positions so that appending (max+1) never overflows.
const maxPosition = 1 << 40

// boolean reads true or false.
func (f *fields) boolean(name string) (bool, bool) {
	v, ok := f.get(name)
	if !ok {
		return false, false
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		f.fail(name, "Input should be a valid boolean", "bool_type")
		return false, false
	}
	return b, true
}

// object reads a JSON object and returns it compacted.
func (f *fields) object(name string) (string, bool) {
	v, ok := f.get(name)
	if !ok {
		return "", false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		f.fail(name, "Input should be a valid dictionary", "dict_type")
		return "", false
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		f.fail(name, "Input should be a valid dictionary", "dict_type")
		return "", false
	}
	return buf.String(), true
}

// datetime reads an RFC 3339 date-time (or a plain YYYY-MM-DD date, taken as
// midnight UTC) and returns it in storage form. An explicit null clears:
// cleared reports it.
func (f *fields) datetime(name string) (value string, given, cleared bool) {
	raw, present := f.raw[name]
	if !present {
		return "", false, false
	}
	if _, ok := f.get(name); !ok {
		return "", true, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		f.fail(name, "Input should be a valid datetime", "datetime_type")
		return "", false, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t, err = time.Parse(time.DateOnly, s)
	}
	if err != nil {
		f.fail(name, "Input should be a valid datetime", "datetime_parsing")
		return "", false, false
	}
	return t.UTC().Format(timeFormat), true, false
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func quoteList(allowed []string) string {
	q := make([]string, len(allowed))
	for i, a := range allowed {
		q[i] = "'" + a + "'"
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// usernameRE is what a username may be: it never contains @, so an identifier
// with @ is always an email.
var usernameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$`)

// validEmail accepts a bare address (no display name) of at most 254 bytes
// with a dot in the domain.
func validEmail(s string) bool {
	if len(s) > 254 {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	_, domain, _ := strings.Cut(s, "@")
	return strings.Contains(domain, ".")
}

// queryID reads a UUID query parameter: absent is "", present and malformed
// is a 422.
func queryID(r *http.Request, name string, required bool) (string, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		if required {
			return "", invalid([]any{"query", name}, "Field required", "missing")
		}
		return "", nil
	}
	id, ok := parseUUID(s)
	if !ok {
		return "", invalid([]any{"query", name}, "Input should be a valid UUID", "uuid_parsing")
	}
	return id, nil
}

// pathID reads the {name} wildcard as a UUID; anything else is the 404 the
// resource would get if it did not exist.
func pathID(r *http.Request, name, notFound string) (string, error) {
	id, ok := parseUUID(r.PathValue(name))
	if !ok {
		return "", errStatus(http.StatusNotFound, notFound)
	}
	return id, nil
}
