package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseProfiles(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"alice,bob,charlie", []string{"alice", "bob", "charlie"}, ""},
		{" alice , bob ,", []string{"alice", "bob"}, ""},
		{"", nil, "no profile names"},
		{",, ,", nil, "no profile names"},
		{"alice,bob,alice", nil, `"alice" is listed twice`},
	} {
		got, err := parseProfiles(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("parseProfiles(%q) error = %v, want one containing %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("parseProfiles(%q) = %q, %v, want %q", c.in, got, err, c.want)
		}
	}
}

func TestCheckBaseURL(t *testing.T) {
	t.Parallel()
	for in, ok := range map[string]bool{
		"http://127.0.0.1:8787":      true,
		"http://localhost:8787/":     true,
		"https://127.0.0.1:8787":     false, // the sidecar speaks plain HTTP on loopback
		"127.0.0.1:8787":             false,
		"http://":                    false,
		"http://127.0.0.1:8787/?a=b": false,
		"http://a b":                 false,
	} {
		if err := checkBaseURL(in); (err == nil) != ok {
			t.Errorf("checkBaseURL(%q) = %v, want ok=%v", in, err, ok)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"1":      time.Second,
		" 2 ":    2 * time.Second,
		"0":      100 * time.Millisecond, // never spin
		"-5":     100 * time.Millisecond,
		"":       100 * time.Millisecond,
		"soon":   100 * time.Millisecond,
		"3600":   5 * time.Second, // never stall the agent
		"999999": 5 * time.Second,
	} {
		if got := parseRetryAfter(in); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestDecodeList(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in      string
		want    int
		wantErr bool
	}{
		{`[{"id":"a"},{"id":"b"}]`, 2, false},
		{`[]`, 0, false},
		{`{"spaces":[{"id":"a"}]}`, 1, false},
		{`{"items":[{"id":"a"}]}`, 0, true},
		{`{"spaces":"nope"}`, 0, true},
		{`"text"`, 0, true},
		{`not json`, 0, true},
	} {
		got, err := decodeList[space](json.RawMessage(c.in), "spaces")
		if (err != nil) != c.wantErr || len(got) != c.want {
			t.Errorf("decodeList(%s) = %d items, %v; want %d items, error %v", c.in, len(got), err, c.want, c.wantErr)
		}
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--sidecar", "ftp://x"},
		{"--profiles", ""},
		{"--timeout", "soon"},
		{"stray"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr %q)", args, code, errOut.String())
		}
		if errOut.Len() == 0 {
			t.Errorf("run(%q) printed no reason to stderr", args)
		}
	}
}
