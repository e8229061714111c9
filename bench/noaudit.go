package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/kanbot/kanbot-sidecar/auditdb"
	"github.com/kanbot/kanbot-sidecar/profiles"
	"github.com/kanbot/kanbot-sidecar/proxy"
	"github.com/kanbot/kanbot-sidecar/vault"
)

// The sidecar-noaudit target isolates what the write-ahead audit costs. The
// product has no switch to turn the audit off, and must not get one, so the
// harness builds the same proxy package itself, in its own process, wired
// as serve wires it (same home, snapshot, defaults, JSON logging at info,
// metrics, proxy.Listen and Proxy.Server) except that its Recorder
// discards events. Nothing in the product changes.
const (
	roleNoAudit    = "sidecar-noaudit"
	envNoAuditHome = "KANBOT_BENCH_HOME"
	envNoAuditUp   = "KANBOT_BENCH_UPSTREAM"
	envNoAuditProf = "KANBOT_BENCH_CPUPROFILE" // optional: write a CPU profile here
)

// discardRecorder is a proxy.Recorder that commits nothing.
type discardRecorder struct{}

func (discardRecorder) Record(context.Context, auditdb.Event) error { return nil }

var _ proxy.Recorder = discardRecorder{}

// noAuditMain runs the sidecar-noaudit process: it serves until SIGTERM and
// prints its address on stdout once it listens. Logs go to stderr.
func noAuditMain() int {
	if err := serveNoAudit(); err != nil {
		fmt.Fprintln(os.Stderr, "bench sidecar-noaudit:", err)
		return 1
	}
	return 0
}

func serveNoAudit() error {
	home, upstream := os.Getenv(envNoAuditHome), os.Getenv(envNoAuditUp)
	if home == "" || upstream == "" {
		return errors.New(envNoAuditHome + " and " + envNoAuditUp + " must be set")
	}
	id, err := vault.LoadIdentity(filepath.Join(home, identityFile), nil)
	if err != nil {
		return err
	}
	snap, err := profiles.Load(home, id)
	if err != nil {
		return err
	}
	metrics, err := proxy.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		return err
	}
	log := zerolog.New(os.Stderr).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	p, err := proxy.New(proxy.Config{
		Snapshot: snap,
		Recorder: discardRecorder{},
		Upstream: upstream,
		Log:      log,
		Metrics:  metrics,
	})
	if err != nil {
		return err
	}
	if path := os.Getenv(envNoAuditProf); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	ln, err := proxy.Listen("127.0.0.1:0", false)
	if err != nil {
		return err
	}
	srv := p.Server()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Println(ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.Close(sctx)
}

// startNoAudit re-executes this binary as the sidecar-noaudit process on
// home and returns it and its base URL once it listens.
// If cpuProfile is not empty, the process writes a CPU profile of its whole
// life there (for finding where the proxy's time goes).
func startNoAudit(ctx context.Context, home, upstreamURL, logPath, cpuProfile string) (*child, string, error) {
	env := []string{envNoAuditHome + "=" + home, envNoAuditUp + "=" + upstreamURL}
	if cpuProfile != "" {
		env = append(env, envNoAuditProf+"="+cpuProfile)
	}
	c, addr, err := startSelf(ctx, roleNoAudit, env, logPath)
	if err != nil {
		return nil, "", err
	}
	return c, "http://" + addr, nil
}
