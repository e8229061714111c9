package profiles_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
	"github.com/kanbot/kanbot-sidecar/profiles"
)

// metas returns n valid profile entries named user00000, user00001, ….
func metas(n int) []profiles.Meta {
	ms := make([]profiles.Meta, n)
	for i := range ms {
		name := fmt.Sprintf("user%05d", i)
		ms[i] = profiles.Meta{
			Name: name, Email: name + "@example.com", KeyFingerprint: fmt.Sprintf("sha256:%012x", i),
			AllowMethods: []string{"GET", "POST"}, AllowPaths: []string{"/api/v1/"},
			CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		}
	}
	return ms
}

// BenchmarkParse10000 decodes a profiles.yaml of 10,000 entries, as
// written by Marshal: the parse part of a 10,000-profile start-up.
func BenchmarkParse10000(b *testing.B) { benchParse(b, profiles.Parse) }

// BenchmarkParseStrict10000 is the same with yaml.v3's strict decoder
// alone (Parse before it got its linear-time path), for comparison.
func BenchmarkParseStrict10000(b *testing.B) { benchParse(b, profiles.ParseStrict) }

func benchParse(b *testing.B, parse func([]byte) ([]profiles.Meta, error)) {
	data, err := profiles.Marshal(metas(10000))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		ps, err := parse(data)
		if err != nil {
			b.Fatal(err)
		}
		if len(ps) != 10000 {
			b.Fatalf("parse returned %d profiles", len(ps))
		}
	}
}

// BenchmarkLoad10000 is what `serve` does at start-up with 10,000
// profiles: profiles.Load reading profiles.yaml and decrypting every vault
// file (the home is made by the package's own writers, via testutil).
func BenchmarkLoad10000(b *testing.B) {
	specs := make([]testutil.ProfileSpec, 10000)
	for i := range specs {
		specs[i] = testutil.ProfileSpec{Name: fmt.Sprintf("user%05d", i)}
	}
	benchLoad(b, testutil.NewHome(b, specs...), len(specs))
}

// benchLoad runs profiles.Load on home and also reports the process's CPU
// time per load (user + system, all threads): on a shared machine that
// varies far less than the wall time.
func benchLoad(b *testing.B, home string, n int) {
	id := testutil.IdentityOf(b, home)
	b.ReportAllocs()
	var start syscall.Rusage
	first := true
	for b.Loop() {
		if first {
			syscall.Getrusage(syscall.RUSAGE_SELF, &start)
			first = false
		}
		snap, err := profiles.Load(home, id)
		if err != nil {
			b.Fatal(err)
		}
		if snap.Len() != n {
			b.Fatalf("Len() = %d", snap.Len())
		}
	}
	var end syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &end)
	cpu := time.Duration(end.Utime.Nano() + end.Stime.Nano() - start.Utime.Nano() - start.Stime.Nano())
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}
