package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanbot/kanbot-sidecar/internal/testutil"
	"github.com/kanbot/kanbot-sidecar/profiles"
	"github.com/kanbot/kanbot-sidecar/proxy"
	"github.com/kanbot/kanbot-sidecar/vault"
)

// Reload while 4 goroutines send continuously: no request fails, a new
// profile works within a second of being added, a rotated key is used
// from then on, and a broken change keeps the old profiles serving.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	b := testutil.StartBackend(t)
	specs := people(t, b, "alice", "bob")
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: b.URL, Profiles: specs, Watch: true})
	store := &profiles.Store{Home: sc.Home, Identity: testutil.IdentityOf(t, sc.Home)}

	var sent, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	for g := range 4 {
		name := []string{"alice", "bob"}[g%2]
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req := newRequest(t, sc, "GET", "/api/v1/users/me", nil)
				req.Header.Set(proxy.HeaderProfile, name)
				resp, err := client.Do(req)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), `"email":"`+name+`@example.com"`) {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %d %s", name, resp.StatusCode, body))
				}
			}
		})
	}
	waitSent := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for target := sent.Load() + n; sent.Load() < target; {
			if time.Now().After(deadline) {
				t.Fatal("load generator stalled")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitSent(50)

	// Add carol: she must work within a second.
	_, carolKey := b.CreateUser(t, "carol@example.com", "carol")
	sc.AddKey(carolKey)
	if _, err := store.Add(profiles.Meta{Name: "carol", Email: "carol@example.com", Rate: 10000, Burst: 10000}, []byte(carolKey)); err != nil {
		t.Fatal(err)
	}
	added := time.Now()
	for {
		resp, body := sc.Get(t, "carol", "/api/v1/users/me")
		if resp.StatusCode == 200 {
			if meEmail(t, body) != "carol@example.com" {
				t.Fatalf("carol got %s", body)
			}
			break
		}
		if time.Since(added) > time.Second {
			t.Fatalf("carol not served a second after being added: %d %s", resp.StatusCode, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitSent(50)

	// Rotate alice's key: requests after the swap carry the new key.
	newKey := b.NewAPIKey(t, specsID(t, b, "alice"), "rotated")
	sc.AddKey(newKey)
	if _, err := store.Rotate("alice", []byte(newKey)); err != nil {
		t.Fatal(err)
	}
	newFP := vault.Fingerprint([]byte(newKey))
	deadline := time.Now().Add(2 * time.Second)
	for {
		p, ok := sc.Proxy.Snapshot().Get("alice")
		if ok && p.Fingerprint == newFP {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rotation not picked up within 2s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, _ := sc.Get(t, "alice", "/api/v1/users/me")
	evs := sc.WaitEvents(t, resp.Header.Get(proxy.HeaderRequestID), "request", "response")
	if evs[0].KeyFingerprint != newFP {
		t.Errorf("after rotation: key_fingerprint %s, want %s", evs[0].KeyFingerprint, newFP)
	}
	waitSent(50)

	// A broken change (a vault file that is not age) keeps the old
	// snapshot serving, and the failure is audited.
	bad := filepath.Join(sc.Home, profiles.VaultDirName, "bob.age")
	good, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("not an age file"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return hasAdminEvent(t, sc, proxy.AdminReloadFailed) })
	waitSent(50)
	if err := os.WriteFile(bad, good, 0o600); err != nil {
		t.Fatal(err)
	}

	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed during reloads; first: %v", n, sent.Load(), firstErr.Load())
	}
	if !hasAdminEvent(t, sc, proxy.AdminReload) {
		t.Error("no reload admin event")
	}
	sc.AssertKeysAbsent(t)
}

// Reload with a loader that fails keeps the current snapshot.
func TestReloadFailureKeepsSnapshot(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	sc := testutil.StartSidecar(t, testutil.SidecarConfig{Upstream: up.URL, Profiles: []testutil.ProfileSpec{{Name: "alice"}}})
	// Break profiles.yaml: unknown field.
	path := filepath.Join(sc.Home, profiles.FileName)
	if err := os.WriteFile(path, []byte("profiles:\n  alice: {bogus: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sc.Proxy.Reload(context.Background(), "test"); err == nil {
		t.Fatal("Reload of a broken profiles.yaml succeeded")
	}
	if resp, body := sc.Get(t, "alice", "/api/v1/spaces"); resp.StatusCode != 200 {
		t.Errorf("after failed reload: %d %s", resp.StatusCode, body)
	}
	if !hasAdminEvent(t, sc, proxy.AdminReloadFailed) {
		t.Error("failed reload not audited")
	}
	if !strings.Contains(sc.Log.String(), "reload failed") {
		t.Error("failed reload not logged")
	}
	sc.AssertKeysAbsent(t)
}

func specsID(t *testing.T, b *testutil.Backend, who string) string {
	t.Helper()
	u, err := b.Kanbot.FindUser(context.Background(), who)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func hasAdminEvent(t testing.TB, sc *testutil.Sidecar, code string) bool {
	for _, e := range sc.Events(t) {
		if e.Kind == "admin" && e.Code == code {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
