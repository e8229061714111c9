package profiles

import (
	"fmt"
	"sort"
	"time"

	"github.com/kanbot/kanbot-sidecar/vault"
)

// Default allow-lists, used when a profile sets none (DESIGN.md step 7).
var (
	DefaultAllowMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
	DefaultAllowPaths   = []string{"/api/v1/", "/health"}
)

// Profile is one person the agent works for, as the proxy sees it: metadata
// from profiles.yaml plus the decrypted key. Profiles inside a Snapshot must
// not be modified.
type Profile struct {
	Name  string
	Email string
	// Upstream is the Kanbot base URL for this profile; empty means the
	// sidecar's default upstream.
	Upstream string
	// Rate (requests/s) and Burst of the profile's token bucket; zero means
	// the sidecar's default.
	Rate  float64
	Burst int
	// AllowPaths are path prefixes and AllowMethods upper-case methods the
	// profile may use; nil means DefaultAllowPaths / DefaultAllowMethods.
	AllowPaths   []string
	AllowMethods []string
	// Fingerprint is Key.Fingerprint(), kept so listings need no decryption.
	Fingerprint string
	Key         vault.Secret
	CreatedAt   time.Time
	RotatedAt   time.Time // zero if never rotated
}

// Methods returns the effective method allow-list.
func (p *Profile) Methods() []string {
	if len(p.AllowMethods) == 0 {
		return DefaultAllowMethods
	}
	return p.AllowMethods
}

// Paths returns the effective path-prefix allow-list.
func (p *Profile) Paths() []string {
	if len(p.AllowPaths) == 0 {
		return DefaultAllowPaths
	}
	return p.AllowPaths
}

// Snapshot is an immutable set of profiles. The proxy loads one through an
// atomic.Pointer per request; a reload builds a new Snapshot and swaps it,
// so a request in flight keeps the Snapshot it started with. Safe for
// concurrent use.
type Snapshot struct {
	byName  map[string]*Profile
	names   []string
	Created time.Time
}

// NewSnapshot builds a Snapshot from ps. It refuses an invalid or duplicate
// name and a profile without a key, so a Snapshot is always usable as is.
func NewSnapshot(ps []Profile, created time.Time) (*Snapshot, error) {
	s := &Snapshot{byName: make(map[string]*Profile, len(ps)), Created: created}
	for i := range ps {
		p := ps[i]
		if err := CheckName(p.Name); err != nil {
			return nil, err
		}
		if _, dup := s.byName[p.Name]; dup {
			return nil, fmt.Errorf("duplicate profile %q", p.Name)
		}
		if p.Key.Len() == 0 {
			return nil, fmt.Errorf("profile %q has no key", p.Name)
		}
		if p.Fingerprint == "" {
			p.Fingerprint = p.Key.Fingerprint()
		}
		s.byName[p.Name] = &p
		s.names = append(s.names, p.Name)
	}
	sort.Strings(s.names)
	return s, nil
}

// Get returns the named profile, or false if the snapshot has none.
func (s *Snapshot) Get(name string) (*Profile, bool) {
	p, ok := s.byName[name]
	return p, ok
}

// Names returns the profile names in sorted order. The caller must not
// modify the slice.
func (s *Snapshot) Names() []string { return s.names }

// Len returns the number of profiles.
func (s *Snapshot) Len() int { return len(s.names) }
