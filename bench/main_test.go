package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary act as the upstream too: the harness starts
// the upstream by re-executing its own binary (os.Executable), which under
// `go test` is this one.
func TestMain(m *testing.M) {
	if os.Getenv(envRole) == roleUpstream {
		os.Exit(upstreamMain())
	}
	os.Exit(m.Run())
}
