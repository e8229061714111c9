package profiles

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// quotePrefixLen is how many characters of a rejected value an error
// message may show.
const quotePrefixLen = 8

// quoteValue quotes a value from profiles.yaml for an error message without
// repeating it in full: a person who pastes an API key into the wrong field
// (email:, upstream:, …) must not find it again in a log line, an audit
// event or a terminal. Values of up to quotePrefixLen characters are quoted
// whole; longer ones as their first quotePrefixLen characters, "…" and the
// length: "kb_fakeg…" (46 chars). Every validation message that shows a
// field value goes through here.
func quoteValue(s string) string {
	n := utf8.RuneCountInString(s)
	if n <= quotePrefixLen {
		return strconv.Quote(s)
	}
	cut, i := 0, 0
	for cut < len(s) && i < quotePrefixLen {
		_, size := utf8.DecodeRuneInString(s[cut:])
		cut += size
		i++
	}
	return fmt.Sprintf("%s (%d chars)", strconv.Quote(s[:cut]+"…"), n)
}

// quoteName quotes a profile name: in full when it is no longer than a
// valid name may be (names are not secret and the person needs to see which
// entry is meant), else through quoteValue, since an over-long "name" may
// well be something pasted in the wrong place.
func quoteName(name string) string {
	if len(name) <= MaxNameLen {
		return strconv.Quote(name)
	}
	return quoteValue(name)
}

// decodeError describes an error from decoding profiles.yaml. yaml.v3 cuts
// the values in its own type errors short, but a bad created_at or
// rotated_at fails in time.Time's UnmarshalText, whose *time.ParseError
// quotes the whole value (twice), so that one is rewritten.
func decodeError(err error) string {
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("time %s: want RFC 3339 like 2026-01-02T03:04:05Z in created_at and rotated_at", quoteValue(pe.Value))
	}
	return err.Error()
}
