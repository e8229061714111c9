package vault_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/kanbot/kanbot-sidecar/vault"
)

const canary = "kb_canary_5f3a9e1d77c04b2b"

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	s := vault.NewSecret([]byte(canary))
	type wrapper struct {
		Name string
		Key  vault.Secret
		Ptr  *vault.Secret
	}
	w := wrapper{Name: "alice", Key: s, Ptr: &s}

	var outs []string
	for _, verb := range []string{"%v", "%s", "%q", "%x", "%X", "%+v", "%#v", "%d", "%10s"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, &s), fmt.Sprintf(verb, w), fmt.Sprintf(verb, []vault.Secret{s}))
	}
	outs = append(outs, fmt.Sprint(s), fmt.Sprintln(s, &s), s.String(), s.GoString())
	for _, v := range []any{s, &s, w, &w, map[string]vault.Secret{"k": s}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%T): %v", v, err)
		}
		if !strings.Contains(string(b), "[REDACTED]") {
			t.Errorf("json.Marshal(%T) = %s, want [REDACTED] inside", v, b)
		}
		outs = append(outs, string(b))
	}
	txt, err := s.MarshalText()
	if err != nil || string(txt) != "[REDACTED]" {
		t.Errorf("MarshalText() = %q, %v", txt, err)
	}

	var buf bytes.Buffer
	log := zerolog.New(&buf)
	log.Info().Interface("i", s).Any("a", s).Any("ap", &s).Object("o", s).Stringer("st", s).Interface("w", w).Msg("x")
	log.Info().EmbedObject(s).Msg("embed")
	outs = append(outs, buf.String())
	if n := strings.Count(buf.String(), "[REDACTED]"); n < 7 {
		t.Errorf("zerolog output has %d [REDACTED], want >= 7: %s", n, buf.String())
	}

	for _, o := range outs {
		if strings.Contains(o, canary) || strings.Contains(o, fmt.Sprintf("%x", canary)) || strings.Contains(o, "5f3a9e1d") {
			t.Errorf("output reveals the key: %s", o)
		}
		if !strings.Contains(o, "[REDACTED]") {
			t.Errorf("output %q does not say [REDACTED]", o)
		}
	}
	if got := s.Reveal(); got != canary {
		t.Errorf("Reveal() = %q, want the key", got)
	}
}

func TestNewSecretCopies(t *testing.T) {
	t.Parallel()
	b := []byte("kb_copy_me")
	s := vault.NewSecret(b)
	clear(b)
	if s.Reveal() != "kb_copy_me" || s.Len() != 10 {
		t.Errorf("Secret changed with the caller's slice: len %d", s.Len())
	}
	if !s.Equal(vault.NewSecret([]byte("kb_copy_me"))) || s.Equal(vault.Secret{}) {
		t.Error("Equal is wrong")
	}
	if got, want := s.Fingerprint(), vault.Fingerprint([]byte("kb_copy_me")); got != want || len(got) != len("sha256:")+12 {
		t.Errorf("Fingerprint() = %q, want %q (sha256: + 12 hex)", got, want)
	}
}
