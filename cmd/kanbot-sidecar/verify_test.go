package main

import (
	"testing"
)

func TestDecodeSpaces(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in      string
		want    int
		wantErr bool
	}{
		{`[{"id":"a","owner_id":"u1"}]`, 1, false}, // Kanbot: a bare list
		{`[]`, 0, false},
		{`{"spaces":[{"id":"a"},{"id":"b"}]}`, 2, false}, // wrapped
		{`{"spaces":[]}`, 0, false},
		{`{"items":[]}`, 0, true},
		{`{"spaces":null}`, 0, true},
		{`{"detail":"Invalid API key"}`, 0, true},
		{`"nope"`, 0, true},
		{`<html>`, 0, true},
	} {
		got, err := decodeSpaces([]byte(c.in))
		if (err != nil) != c.wantErr || len(got) != c.want {
			t.Errorf("decodeSpaces(%s) = %d spaces, %v; want %d, error %v", c.in, len(got), err, c.want, c.wantErr)
		}
	}
}

func TestSpaceMember(t *testing.T) {
	t.Parallel()
	alice := verifyUser{ID: "u-alice", Email: "alice@example.com"}
	type member = struct {
		UserID string `json:"user_id"`
		Email  string `json:"email"`
	}
	for _, c := range []struct {
		name          string
		s             verifySpace
		member, known bool
	}{
		{"owner by id", verifySpace{OwnerID: "u-alice"}, true, true},
		{"owner by email, any case", verifySpace{OwnerEmail: "Alice@Example.com"}, true, true},
		{"member", verifySpace{OwnerID: "u-bob", Members: []member{{UserID: "u-bob"}, {UserID: "u-alice"}}}, true, true},
		{"member by email", verifySpace{OwnerID: "u-bob", Members: []member{{Email: "alice@example.com"}}}, true, true},
		{"someone else's", verifySpace{OwnerID: "u-bob", OwnerEmail: "bob@example.com", Members: []member{{UserID: "u-bob"}}}, false, true},
		{"empty member list is still an answer", verifySpace{Members: []member{}}, false, true},
		{"nothing to tell", verifySpace{ID: "s1", Name: "x"}, false, false},
	} {
		m, k := spaceMember(c.s, alice)
		if m != c.member || k != c.known {
			t.Errorf("%s: spaceMember = (%v, %v), want (%v, %v)", c.name, m, k, c.member, c.known)
		}
	}
}

func TestVerifyDialAddr(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"127.0.0.1:8787": "127.0.0.1:8787",
		"0.0.0.0:8787":   "127.0.0.1:8787",
		":8787":          "127.0.0.1:8787",
		"[::]:8787":      "[::1]:8787",
		"[::1]:8787":     "[::1]:8787",
		"localhost:1":    "localhost:1",
	} {
		if got := verifyDialAddr(in); got != want {
			t.Errorf("verifyDialAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVerifyBaseURL(t *testing.T) {
	t.Parallel()
	for in, ok := range map[string]bool{
		"http://127.0.0.1:8787":  true,
		"https://kanbot.example": true,
		"ftp://x":                false,
		"127.0.0.1:8787":         false,
		"http://x/?q=1":          false,
		"http://x/#f":            false,
		"not a url":              false,
	} {
		if err := verifyBaseURL(in); (err == nil) != ok {
			t.Errorf("verifyBaseURL(%q) = %v, want ok=%v", in, err, ok)
		}
	}
}
