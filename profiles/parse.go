package profiles

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// metaFields are the keys a profile entry may hold: Meta's yaml names.
var metaFields = func() []string {
	var names []string
	t := reflect.TypeFor[Meta]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}()

// parseFast is Parse in time linear in the number of profiles. It decodes
// the document strictly into a yaml.Node for the profiles mapping (so
// yaml.v3 never runs its quadratic duplicate-key check over it), finds
// duplicate names with a Go map, and decodes each entry on its own after
// checking its keys against Meta's fields (yaml.Node.Decode has no
// KnownFields, so that check is ours).
//
// It handles the shapes Marshal writes and anything a person would type:
// plain string keys, and entries whose values are scalars or sequences of
// scalars. For anything else (aliases, merge keys, non-string keys, nested
// mappings) it returns ok == false, and the caller falls back to
// parseStrict, whose result is the reference; FuzzParseMatchesStrict checks
// that the two agree wherever parseFast answers.
func parseFast(data []byte) (ps []Meta, ok bool, err error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // still applies to the top level
	var doc struct {
		Profiles yaml.Node `yaml:"profiles"`
	}
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, true, fmt.Errorf("parse: %s", decodeError(err))
	}
	if err := checkSingleDocument(dec); err != nil {
		return nil, true, err
	}
	pm := &doc.Profiles
	switch {
	case pm.Kind == 0, pm.Kind == yaml.ScalarNode && pm.ShortTag() == "!!null":
		return nil, true, nil // no profiles key, or `profiles:` with no value
	case pm.Kind != yaml.MappingNode:
		return nil, false, nil // parseStrict says what is wrong with it
	}
	n := len(pm.Content) / 2
	ps = make([]Meta, 0, n)
	lines := make(map[string]int, n) // name → line of its first definition
	for i := 0; i+1 < len(pm.Content); i += 2 {
		k, v := pm.Content[i], pm.Content[i+1]
		if !plainString(k) {
			return nil, false, nil
		}
		name := k.Value
		if first, dup := lines[name]; dup {
			return nil, true, fmt.Errorf("parse: line %d: duplicate profile %s (first defined at line %d)", k.Line, quoteName(name), first)
		}
		lines[name] = k.Line
		switch {
		case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null":
			// Reported below, after the duplicate check has seen every name.
		case v.Kind != yaml.MappingNode:
			return nil, false, nil
		}
		if !simpleEntry(v) {
			return nil, false, nil
		}
		ps = append(ps, Meta{Name: name})
	}
	// Decode the entries in document order, so the first error reported
	// is the first in the file.
	j := 0
	for i := 0; i+1 < len(pm.Content); i += 2 {
		k, v := pm.Content[i], pm.Content[i+1]
		m := &ps[j]
		j++
		if v.Kind != yaml.MappingNode {
			return nil, true, fmt.Errorf("profile %s: empty entry", quoteName(k.Value))
		}
		for f := 0; f+1 < len(v.Content); f += 2 {
			if key := v.Content[f]; !slices.Contains(metaFields, key.Value) {
				return nil, true, fmt.Errorf("parse: line %d: profile %s: unknown field %s (known fields: %s)",
					key.Line, quoteName(k.Value), quoteName(key.Value), strings.Join(metaFields, ", "))
			}
		}
		if err := v.Decode(m); err != nil {
			return nil, true, fmt.Errorf("parse: profile %s: %s", quoteName(k.Value), decodeError(err))
		}
		m.Name = k.Value // Meta's Name is yaml:"-"; set it again all the same
	}
	ps, err = validateSorted(ps)
	return ps, true, err
}

// plainString reports whether n is a scalar that YAML resolves to a string
// (not "<<", which is a merge key, nor null, a number or a bool).
func plainString(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str"
}

// simpleEntry reports whether an entry is a mapping of plain string keys to
// scalars or sequences of scalars (or a null), the shapes for which
// decoding it alone, without yaml.v3's KnownFields, and checking its keys
// against metaFields is exactly what the strict decoder does.
func simpleEntry(v *yaml.Node) bool {
	if v.Kind == yaml.ScalarNode {
		return true
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		if !plainString(k) {
			return false
		}
		switch val.Kind {
		case yaml.ScalarNode:
		case yaml.SequenceNode:
			for _, item := range val.Content {
				if item.Kind != yaml.ScalarNode {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}
