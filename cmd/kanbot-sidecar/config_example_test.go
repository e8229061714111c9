package main

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// config.example.yaml must load strictly through loadConfig, list every
// key of defaults, and state the defaults: it cannot drift from the code.
func TestConfigExampleMatchesDefaults(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "config.yaml"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := loadConfig(home, nil)
	if err != nil {
		t.Fatalf("loadConfig(config.example.yaml) = %v", err)
	}
	want, err := loadConfig(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got.home, want.home = "", ""
	if !reflect.DeepEqual(normalize(got), normalize(want)) {
		t.Errorf("config.example.yaml values differ from the defaults:\n got %+v\nwant %+v", got, want)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var keys []string
	flatten("", doc, &keys)
	for k := range defaults {
		if !slices.Contains(keys, k) {
			t.Errorf("config.example.yaml lacks key %s", k)
		}
	}
	for _, k := range keys {
		if _, ok := defaults[k]; !ok {
			t.Errorf("config.example.yaml has key %s that defaults does not know", k)
		}
	}
}

// normalize makes empty and nil slices compare equal.
func normalize(fc fileConfig) fileConfig {
	if len(fc.AllowedHosts) == 0 {
		fc.AllowedHosts = nil
	}
	if len(fc.Vault.Recipients) == 0 {
		fc.Vault.Recipients = nil
	}
	if len(fc.Clients) == 0 {
		fc.Clients = nil
	}
	return fc
}

func flatten(prefix string, m map[string]any, out *[]string) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(key, sub, out)
			continue
		}
		*out = append(*out, key)
	}
}
