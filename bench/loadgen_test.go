package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestUpstreamBodyIsJSONOfExactSize(t *testing.T) {
	t.Parallel()
	b := upstreamBody(upstreamBodySize)
	if len(b) != upstreamBodySize {
		t.Fatalf("len(upstreamBody(%d)) = %d", upstreamBodySize, len(b))
	}
	if !strings.HasPrefix(string(b), "{") || !strings.HasSuffix(string(b), "}") {
		t.Errorf("upstreamBody is not a JSON object: %.40q…", b)
	}
}

func TestDriveCountsEveryRequestOnce(t *testing.T) {
	t.Parallel()
	var served atomic.Int64
	h := upstreamHandler("k1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	tg := target{name: "direct", url: srv.URL + "/api/v1/bench", header: http.Header{injectHeader: {"k1"}}}
	res, err := drive(t.Context(), tg, 4, 10, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := served.Load(), int64(110); got != want {
		t.Errorf("upstream served %d requests, want %d (warm-up + measured)", got, want)
	}
	if res.requests != 100 || len(res.sorted) != 100 {
		t.Errorf("drive recorded %d requests, %d latencies, want 100", res.requests, len(res.sorted))
	}
	for i, d := range res.sorted {
		if d <= 0 {
			t.Fatalf("latency %d = %v, want > 0 (every slot filled)", i, d)
		}
		if i > 0 && d < res.sorted[i-1] {
			t.Fatalf("latencies not sorted at %d", i)
		}
	}
	if res.elapsed <= 0 || res.total < res.elapsed || res.rps() <= 0 {
		t.Errorf("elapsed %v, total %v, rps %v: want positive and total >= elapsed", res.elapsed, res.total, res.rps())
	}
}

func TestDriveFailsOnRefusal(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(upstreamHandler("right"))
	defer srv.Close()
	tg := target{name: "direct", url: srv.URL + "/", header: http.Header{injectHeader: {"wrong"}}}
	_, err := drive(t.Context(), tg, 2, 0, 10)
	if err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Fatalf("drive with a wrong key: err = %v, want status 401", err)
	}
	if strings.Contains(err.Error(), "right") {
		t.Errorf("error %q contains the upstream key", err)
	}
}

func TestDriveFailsOnShortBody(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	_, err := drive(t.Context(), target{name: "x", url: srv.URL}, 1, 0, 3)
	if err == nil || !strings.Contains(err.Error(), "body of 2 bytes") {
		t.Fatalf("drive against a short body: err = %v, want a body size error", err)
	}
}

func TestDriveRejectsBadCounts(t *testing.T) {
	t.Parallel()
	if _, err := drive(t.Context(), target{name: "x", url: "http://127.0.0.1:1"}, 8, 0, 4); err == nil {
		t.Error("drive with fewer requests than workers: no error")
	}
}

func TestPercentileNearestRank(t *testing.T) {
	t.Parallel()
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{.5, 50}, {.9, 90}, {.99, 99}, {1, 100}, {.001, 1}} {
		if got := percentile(s, tc.p); got != tc.want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, .5); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	xs := []float64{3, 1, 2, 10}
	if got := median(xs); got != 2.5 {
		t.Errorf("median(%v) = %v, want 2.5", xs, got)
	}
	if xs[0] != 3 {
		t.Error("median modified its input")
	}
	if got := median([]float64{7, 1, 4}); got != 4 {
		t.Errorf("median(7,1,4) = %v, want 4", got)
	}
}

func TestReadOwnMemoryAndCPU(t *testing.T) {
	t.Parallel()
	m, err := readMem(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSSKiB <= 0 || m.HWMKiB < m.RSSKiB {
		t.Errorf("readMem(self) = %+v, want RSS > 0 and HWM >= RSS", m)
	}
	if _, err := readCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if _, err := readMem(-1); err == nil {
		t.Error("readMem(-1): no error")
	}
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	o, err := parseOptions([]string{"-concurrency", "1, 4", "-requests", "10"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.concurrency) != 2 || o.concurrency[1] != 4 || o.requests != 10 {
		t.Errorf("parseOptions = %+v", o)
	}
	for _, args := range [][]string{
		{"-concurrency", "0"},
		{"-concurrency", "a"},
		{"-requests", "4", "-concurrency", "8"},
		{"-rounds", "0"},
		{"extra"},
	} {
		if _, err := parseOptions(args, &strings.Builder{}); err == nil {
			t.Errorf("parseOptions(%q): no error", args)
		}
	}
}
