package profiles

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kanbot/kanbot-sidecar/internal/atomicfile"
)

// File names inside the sidecar home (DESIGN.md, "The sidecar home").
const (
	FileName     = "profiles.yaml"
	VaultDirName = "vault"
	// LockName is the lock file that serializes read-modify-write cycles of
	// profiles.yaml and vault/. It holds no data; watchers of the home
	// should ignore it.
	LockName = "profiles.lock"
)

// maxFileSize bounds profiles.yaml: 10,000 profiles take about 3 MB.
const maxFileSize = 64 << 20

// Meta is one profile's metadata as stored in profiles.yaml: everything but
// the key, which lives encrypted in vault/<name>.age. The JSON form is what
// `profiles list --json` and `profiles show --json` print.
type Meta struct {
	Name         string   `yaml:"-" json:"name"`
	Email        string   `yaml:"email" json:"email"`
	Upstream     string   `yaml:"upstream,omitempty" json:"upstream,omitempty"`
	Rate         float64  `yaml:"rate,omitempty" json:"rate,omitempty"`
	Burst        int      `yaml:"burst,omitempty" json:"burst,omitempty"`
	AllowPaths   []string `yaml:"allow_paths,omitempty" json:"allow_paths,omitempty"`
	AllowMethods []string `yaml:"allow_methods,omitempty" json:"allow_methods,omitempty"`
	// KeyFingerprint is vault.Fingerprint of the key; Load checks that the
	// vault file still holds that key.
	KeyFingerprint string    `yaml:"key_fingerprint" json:"key_fingerprint"`
	CreatedAt      time.Time `yaml:"created_at" json:"created_at"`
	RotatedAt      time.Time `yaml:"rotated_at,omitempty" json:"rotated_at,omitzero"` // zero if never rotated
}

// document is the whole of profiles.yaml.
type document struct {
	Profiles map[string]*Meta `yaml:"profiles"`
}

const fileHeader = "# kanbot-sidecar profiles: metadata only, never a key (keys are in vault/<name>.age).\n" +
	"# Change it with `kanbot-sidecar profiles add|remove|rotate`; unknown fields are an error.\n"

// Parse decodes the contents of profiles.yaml strictly: unknown fields, a
// duplicate name, a second YAML document or an invalid entry are errors
// naming the profile. An empty file holds no profiles. The result is
// sorted by name.
//
// Parse takes time linear in the number of profiles (see parseFast); a
// file using YAML features our writer never produces (aliases, merge keys,
// non-string keys, nested mappings) is decoded by parseStrict instead,
// which gives the same result but is quadratic in the number of profiles.
func Parse(data []byte) ([]Meta, error) {
	ps, ok, err := parseFast(data)
	if !ok {
		return parseStrict(data)
	}
	return ps, err
}

// parseStrict decodes profiles.yaml with yaml.v3's strict decoder into
// document. It is the reference for what Parse accepts, but yaml.v3 checks
// a mapping for duplicate keys by comparing every pair of keys, so 10,000
// profiles take over a second here.
func parseStrict(data []byte) ([]Meta, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var doc document
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse: %s", decodeError(err))
	}
	if err := checkSingleDocument(dec); err != nil {
		return nil, err
	}
	out := make([]Meta, 0, len(doc.Profiles))
	for name, m := range doc.Profiles {
		if m == nil {
			return nil, fmt.Errorf("profile %s: empty entry", quoteName(name))
		}
		m.Name = name
		out = append(out, *m)
	}
	return validateSorted(out)
}

// checkSingleDocument fails if dec holds another YAML document.
func checkSingleDocument(dec *yaml.Decoder) error {
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("parse: more than one YAML document")
	}
	return nil
}

// validateSorted sorts ps by name and validates each entry, reporting the
// first invalid one by name so the error does not depend on map order.
//
// An empty allow_paths or allow_methods list (`allow_paths: []`) means the
// same as none, the defaults, and becomes nil, so that parsing what Marshal
// wrote gives back the same profiles.
func validateSorted(ps []Meta) ([]Meta, error) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	for i := range ps {
		if len(ps[i].AllowPaths) == 0 {
			ps[i].AllowPaths = nil
		}
		if len(ps[i].AllowMethods) == 0 {
			ps[i].AllowMethods = nil
		}
		if err := ps[i].Validate(); err != nil {
			return nil, fmt.Errorf("profile %s: %w", quoteName(ps[i].Name), err)
		}
	}
	return ps, nil
}

// Marshal encodes profiles as profiles.yaml (sorted by name, with a header
// comment). It validates every entry first, so a bad entry is never written.
func Marshal(ps []Meta) ([]byte, error) {
	doc := document{Profiles: make(map[string]*Meta, len(ps))}
	for i := range ps {
		m := ps[i]
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("profile %s: %w", quoteName(m.Name), err)
		}
		if _, dup := doc.Profiles[m.Name]; dup {
			return nil, fmt.Errorf("duplicate profile %s", quoteName(m.Name))
		}
		m.CreatedAt = m.CreatedAt.UTC()
		m.RotatedAt = m.RotatedAt.UTC()
		doc.Profiles[m.Name] = &m
	}
	var b bytes.Buffer
	b.WriteString(fileHeader)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("encode profiles: %v", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode profiles: %v", err)
	}
	return b.Bytes(), nil
}

// ReadFile reads and parses home/profiles.yaml. A missing file is an error
// wrapping fs.ErrNotExist (the home has not been initialized).
func ReadFile(home string) ([]Meta, error) {
	path := filepath.Join(home, FileName)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read profiles: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileSize)
	}
	ps, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ps, nil
}

// WriteFile replaces home/profiles.yaml with ps, atomically, mode 0600.
// Callers that read the file first must hold the lock (use Update).
func WriteFile(home string, ps []Meta) error {
	data, err := Marshal(ps)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(home, FileName), data, 0o600); err != nil {
		return fmt.Errorf("write profiles: %w", err)
	}
	return nil
}

// CreateFile writes an empty profiles.yaml unless one exists; it reports
// whether it wrote one.
func CreateFile(home string) (bool, error) {
	path := filepath.Join(home, FileName)
	if _, err := os.Lstat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
	if err := withLock(home, true, func() error { return WriteFile(home, nil) }); err != nil {
		return false, err
	}
	return true, nil
}

// Update runs a read-modify-write cycle of profiles.yaml under an exclusive
// lock on home/profiles.lock, so concurrent changes (two `profiles add` runs
// in different processes) are serialized and none is lost. fn gets the
// current profiles by name and may change the map; if it returns nil the
// map is written back. fn may also write vault files: nobody else changes
// the profiles while it runs.
func Update(home string, fn func(ps map[string]Meta) error) error {
	return withLock(home, true, func() error {
		ps, err := ReadFile(home)
		if err != nil {
			return err
		}
		byName := make(map[string]Meta, len(ps))
		for _, m := range ps {
			byName[m.Name] = m
		}
		if err := fn(byName); err != nil {
			return err
		}
		out := make([]Meta, 0, len(byName))
		for name, m := range byName {
			m.Name = name
			out = append(out, m)
		}
		return WriteFile(home, out)
	})
}
