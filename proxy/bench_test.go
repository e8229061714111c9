package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
	"github.com/kanbot/kanbot-sidecar/proxy"
)

// benchUpstream answers every request with 1 KiB of JSON (PERFORMANCE.md's
// reference workload).
func benchUpstream(b *testing.B) *httptest.Server {
	body := []byte(`{"data":"` + strings.Repeat("x", 1024-11) + `"}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// runLatency sends b.N requests one at a time over one keep-alive
// connection and reports p50 and p99 latency.
func runLatency(b *testing.B, url string, profile string) {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}}
	req, _ := http.NewRequest("GET", url+"/api/v1/spaces", nil)
	if profile != "" {
		req.Header.Set(proxy.HeaderProfile, profile)
	}
	do := func() {
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	for range 50 { // warm the connection pools
		do()
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		do()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func sidecarFor(b *testing.B, upstream string) *testutil.Sidecar {
	return testutil.StartSidecar(b, testutil.SidecarConfig{Upstream: upstream,
		Profiles: []testutil.ProfileSpec{{Name: "alice", Rate: 1e6, Burst: 1e6}}})
}

// BenchmarkLatencyDirect and BenchmarkLatencySidecar are the pair behind
// "added p50 at concurrency 1": compare their p50-µs (ratio, not absolute:
// the machine is shared).
func BenchmarkLatencyDirect(b *testing.B) {
	up := benchUpstream(b)
	runLatency(b, up.URL, "")
}

func BenchmarkLatencySidecar(b *testing.B) {
	up := benchUpstream(b)
	sc := sidecarFor(b, up.URL)
	runLatency(b, sc.URL, "alice")
}

// BenchmarkLatencyPair runs direct and sidecar requests alternately in one
// benchmark, so both see the same machine load; it reports both p50s and
// the added p50.
func BenchmarkLatencyPair(b *testing.B) {
	up := benchUpstream(b)
	sc := sidecarFor(b, up.URL)
	direct := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}}
	via := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}}
	dreq, _ := http.NewRequest("GET", up.URL+"/api/v1/spaces", nil)
	sreq, _ := http.NewRequest("GET", sc.URL+"/api/v1/spaces", nil)
	sreq.Header.Set(proxy.HeaderProfile, "alice")
	one := func(c *http.Client, r *http.Request) time.Duration {
		t0 := time.Now()
		resp, err := c.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(t0)
	}
	for range 50 {
		one(direct, dreq)
		one(via, sreq)
	}
	var dl, sl []time.Duration
	b.ResetTimer()
	for range b.N {
		dl = append(dl, one(direct, dreq))
		sl = append(sl, one(via, sreq))
	}
	b.StopTimer()
	slices.Sort(dl)
	slices.Sort(sl)
	p := func(l []time.Duration, q float64) float64 { return float64(l[int(float64(len(l)-1)*q)].Microseconds()) }
	b.ReportMetric(p(dl, .5), "direct-p50-µs")
	b.ReportMetric(p(sl, .5), "sidecar-p50-µs")
	b.ReportMetric(p(sl, .5)-p(dl, .5), "added-p50-µs")
	b.ReportMetric(p(sl, .99)-p(dl, .99), "added-p99-µs")
	b.ReportMetric(p(sl, .5)/p(dl, .5), "p50-ratio")
}

// BenchmarkThroughput64 measures requests/s through the sidecar at 64
// concurrent clients (compare with -bench ThroughputDirect64).
func BenchmarkThroughputSidecar64(b *testing.B) {
	up := benchUpstream(b)
	sc := sidecarFor(b, up.URL)
	throughput(b, sc.URL, "alice")
}

func BenchmarkThroughputDirect64(b *testing.B) {
	up := benchUpstream(b)
	throughput(b, up.URL, "")
}

func throughput(b *testing.B, url, profile string) {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}
	var once sync.Once
	b.SetParallelism(64 / max(1, testingProcs()))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		client := &http.Client{Transport: tr}
		req, _ := http.NewRequest("GET", url+"/api/v1/spaces", nil)
		if profile != "" {
			req.Header.Set(proxy.HeaderProfile, profile)
		}
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				once.Do(func() { b.Error(err) })
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
