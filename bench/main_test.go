package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary act as the upstream and sidecar-noaudit too: the harness starts
// its helper processes by re-executing its own binary (os.Executable), which under
// `go test` is this one.
func TestMain(m *testing.M) {
	if code, ok := roleMain(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
