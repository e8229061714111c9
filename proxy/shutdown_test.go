package proxy_test

import (
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
	"github.com/kanbot/kanbot-sidecar/proxy"
)

// Shutdown during load: every response an agent received has its audit
// rows (request + response for forwarded calls, reject for refusals).
func TestShutdownUnderLoadKeepsAudit(t *testing.T) {
	t.Parallel()
	b := testutil.StartBackend(t)
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: b.URL, Profiles: people(t, b, "alice", "bob")})
	var mu sync.Mutex
	got := map[string]int{} // request id → status the agent received
	var wg sync.WaitGroup
	started := make(chan struct{}, 8)
	for g := range 8 {
		profile := []string{"alice", "bob", "mallory"}[g%3]
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
			for i := 0; i < 1000; i++ {
				req := newRequest(t, sc, "GET", "/api/v1/users/me", nil)
				req.Header.Set(proxy.HeaderProfile, profile)
				resp, err := client.Do(req)
				if err != nil {
					return // the sidecar is gone
				}
				_, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if rerr != nil {
					return
				}
				mu.Lock()
				got[resp.Header.Get(proxy.HeaderRequestID)] = resp.StatusCode
				mu.Unlock()
				if i == 5 {
					started <- struct{}{}
				}
			}
		})
	}
	for range 8 {
		<-started
	}
	if err := sc.Stop(10 * time.Second); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	wg.Wait()
	kinds := map[string]map[string]bool{}
	for _, e := range testutil.ReadEvents(t, sc.AuditPath) {
		if kinds[e.RequestID] == nil {
			kinds[e.RequestID] = map[string]bool{}
		}
		kinds[e.RequestID][e.Kind] = true
	}
	if len(got) < 40 {
		t.Fatalf("only %d responses before shutdown", len(got))
	}
	for id, status := range got {
		k := kinds[id]
		switch status {
		case http.StatusOK:
			if !k["request"] || !k["response"] {
				t.Errorf("request %s answered 200 but audit has %v", id, k)
			}
		default:
			if !k["reject"] {
				t.Errorf("request %s answered %d but audit has %v", id, status, k)
			}
		}
	}
	sc.AssertKeysAbsent(t)
}
