package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kanbot/kanbot-sidecar/auditdb"
	"github.com/kanbot/kanbot-sidecar/profiles"
)

// Admin event codes the proxy records (auditdb.KindAdmin, in Event.Code).
const (
	AdminReload       = "reload"
	AdminReloadFailed = "reload_failed"
)

// DefaultDebounce is how long Watch waits after the last file change before
// reloading: a `profiles add` writes a vault file and then profiles.yaml,
// and one reload should see both.
const DefaultDebounce = 150 * time.Millisecond

// Reload builds a new snapshot with Config.Load and swaps it in. If the
// load fails or the snapshot is invalid, the current snapshot stays in
// use. Either way the attempt is logged and recorded as an admin event.
// Requests in flight finish on the snapshot they started with. Reloads
// are serialised; reason says what triggered it ("SIGHUP", "files changed").
func (p *Proxy) Reload(ctx context.Context, reason string) error {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	old := p.Snapshot()
	var snap *profiles.Snapshot
	err := errors.New("no profile loader configured")
	if p.load != nil {
		snap, err = p.load(ctx)
	}
	if err == nil {
		err = p.SetSnapshot(snap)
	}
	detail := map[string]any{"reason": reason}
	ev := auditdb.Event{Kind: auditdb.KindAdmin, Code: AdminReload}
	result := "ok"
	if err != nil {
		ev.Code, result = AdminReloadFailed, "failed"
		// Load errors name profiles and files, never key material (vault
		// and profiles guarantee it).
		detail["error"] = err.Error()
		detail["profiles"] = old.Len()
	} else {
		added, removed, rotated := diffSnapshots(old, snap)
		detail["profiles"] = snap.Len()
		detail["added"], detail["removed"], detail["rotated"] = added, removed, rotated
	}
	ev.Detail, _ = json.Marshal(detail)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.auditTimeout)
	if rerr := p.rec.Record(rctx, ev); rerr != nil {
		p.log.Error().Err(rerr).Str("code", ev.Code).Msg("record reload event")
	}
	cancel()
	if p.metrics != nil {
		p.metrics.reloads.WithLabelValues(result).Inc()
	}
	if err != nil {
		p.log.Error().Err(err).Str("reason", reason).Int("profiles", old.Len()).Msg("reload failed; keeping the current profiles")
		return fmt.Errorf("reload profiles: %w", err)
	}
	p.log.Info().Str("reason", reason).Int("profiles", snap.Len()).Msg("profiles reloaded")
	return nil
}

// diffSnapshots lists profile names added, removed and with a changed key.
func diffSnapshots(old, cur *profiles.Snapshot) (added, removed, rotated []string) {
	added, removed, rotated = []string{}, []string{}, []string{}
	for _, n := range cur.Names() {
		np, _ := cur.Get(n)
		op, ok := old.Get(n)
		switch {
		case !ok:
			added = append(added, n)
		case op.Fingerprint != np.Fingerprint:
			rotated = append(rotated, n)
		}
	}
	for _, n := range old.Names() {
		if _, ok := cur.Get(n); !ok {
			removed = append(removed, n)
		}
	}
	return added, removed, rotated
}

// Watch reloads the profiles whenever profiles.yaml in home or a file in
// home/vault changes, debounced (zero means DefaultDebounce). It returns
// when ctx ends; the caller owns the goroutine running it.
//
// Only the events that can change the profiles wake it: the home directory
// also holds the audit database, whose WAL is written on every commit, and
// a watcher woken by those writes cost about 6% of the sidecar's CPU at
// concurrency 1. On Linux (watch_linux.go) inotify is asked only for
// files being closed after writing, renamed, created, deleted or
// re-permissioned, never for plain writes; elsewhere fsnotify is used and
// its events are filtered by name.
func (p *Proxy) Watch(ctx context.Context, home string, debounce time.Duration) error {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	changed := make(chan struct{}, 1)
	errs := make(chan error, 1)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	started := make(chan error, 1)
	go func() {
		errs <- watchProfileFiles(wctx, home, changed, started, func(err error) {
			p.log.Warn().Err(err).Msg("profile file watcher")
		})
	}()
	if err := <-started; err != nil {
		return err
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			stop()
			<-errs
			return nil
		case err := <-errs:
			return err
		case <-changed:
			timer.Reset(debounce)
		case <-timer.C:
			_ = p.Reload(ctx, "files changed") // logged and audited by Reload
		}
	}
}

// relevantChange reports whether a change to name in dir can change the
// profiles: profiles.yaml or the vault directory in home, a key file in
// the vault.
func relevantChange(home, vaultDir, dir, name string) bool {
	switch dir {
	case home:
		return name == profiles.FileName || name == profiles.VaultDirName
	case vaultDir:
		return strings.HasSuffix(name, ".age")
	}
	return false
}

// notify sends a non-blocking wake-up.
func notify(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
