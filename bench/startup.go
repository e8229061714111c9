package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanbot/kanbot-sidecar/profiles"
	"github.com/kanbot/kanbot-sidecar/vault"
)

// identityFile is the identity's name inside a home (DESIGN.md).
const identityFile = "identity.txt"

// buildLargeHome makes a home with n profiles. `init` runs as a user would
// run it; the profiles are then written with the vault and profiles
// packages rather than n `profiles add` runs (each of which rewrites
// profiles.yaml, so n of them take O(n²) and minutes). The files are the
// same ones `profiles add` writes (vault.Encrypt to the home's identity,
// mode 0600, profiles.yaml via profiles.WriteFile), except that the vault
// files are not fsynced one by one: that durability is irrelevant to a
// throw-away fixture and would cost ~2 ms × n here.
func buildLargeHome(ctx context.Context, bin, home string, n int) error {
	if _, err := sidecarCLI(ctx, bin, home, "", "init"); err != nil {
		return err
	}
	id, err := vault.LoadIdentity(filepath.Join(home, identityFile), nil)
	if err != nil {
		return err
	}
	dir := filepath.Join(home, profiles.VaultDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	created := time.Now().UTC().Truncate(time.Second)
	metas := make([]profiles.Meta, n)
	salt := randomHex(8)
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				name := fmt.Sprintf("p%05d", i)
				key := []byte(fmt.Sprintf("kb_bench_%s_%05d", salt, i)) // unique: keys may not be shared
				data, err := vault.Encrypt(key, nil, id)
				if err == nil {
					err = os.WriteFile(vault.Path(dir, name), data, 0o600)
				}
				if err != nil {
					mu.Lock()
					first = firstErr(first, fmt.Errorf("profile %s: %w", name, err))
					mu.Unlock()
					return
				}
				metas[i] = profiles.Meta{
					Name: name, Email: name + "@example.com",
					KeyFingerprint: vault.Fingerprint(key), CreatedAt: created,
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return profiles.WriteFile(home, metas)
}

func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// measureStartup builds a home with n profiles and starts the sidecar on it
// repeats times. It returns the median time from exec until /readyz answers
// 200, and the median VmRSS at that moment. Each start is checked to have
// loaded the profiles by sending one request for the last profile through it.
func measureStartup(ctx context.Context, bin, dir string, n, repeats int, upstreamURL string) (float64, int64, error) {
	home := filepath.Join(dir, "home")
	if err := buildLargeHome(ctx, bin, home, n); err != nil {
		return 0, 0, fmt.Errorf("build home with %d profiles: %w", n, err)
	}
	var ms, rss []float64
	for range repeats {
		sc, err := startSidecar(ctx, bin, home, upstreamURL, filepath.Join(dir, "sidecar.log"))
		if err != nil {
			return 0, 0, fmt.Errorf("start with %d profiles: %w", n, err)
		}
		m, merr := readMem(sc.pid())
		cerr := checkProfileLoaded(ctx, sc.url, fmt.Sprintf("p%05d", n-1))
		serr := sc.stop()
		if err := errors.Join(merr, cerr, serr); err != nil {
			return 0, 0, fmt.Errorf("start with %d profiles: %w", n, err)
		}
		ms = append(ms, float64(sc.startup)/float64(time.Millisecond))
		rss = append(rss, float64(m.RSSKiB))
	}
	return median(ms), int64(median(rss)), nil
}

// checkProfileLoaded sends one request for profile through the sidecar and
// fails if the sidecar itself refuses it. The upstream answers 401 (it only
// knows the load test's key), which shows the request was forwarded with a
// key from the vault.
func checkProfileLoaded(ctx context.Context, sidecarURL, profile string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sidecarURL+"/api/v1/bench", nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Kanbot-Profile", profile)
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("request for profile %s: %w", profile, err)
	}
	resp.Body.Close()
	if code := resp.Header.Get("X-Kanbot-Sidecar-Error"); code != "" {
		return fmt.Errorf("request for profile %s refused by the sidecar: %s", profile, code)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("request for profile %s: status %d, want the upstream's 401", profile, resp.StatusCode)
	}
	return nil
}
