package profiles

import (
	"errors"
	"fmt"
)

// ErrInvalidName is returned (wrapped) for a profile name outside
// ^[a-z0-9][a-z0-9_.-]{0,62}$.
var ErrInvalidName = errors.New("invalid profile name")

// MaxNameLen is the longest valid profile name.
const MaxNameLen = 63

// ValidName reports whether name matches ^[a-z0-9][a-z0-9_.-]{0,62}$.
// It is hand-rolled rather than a regexp because it runs on every request.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > MaxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// CheckName returns nil for a valid name, else an error wrapping
// ErrInvalidName that quotes the name (only a prefix of an over-long one)
// and states the rule.
func CheckName(name string) error {
	if ValidName(name) {
		return nil
	}
	return fmt.Errorf("%w %s: must match ^[a-z0-9][a-z0-9_.-]{0,62}$", ErrInvalidName, quoteName(name))
}
