package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kanbot/kanbot-sidecar/auditdb"
	"github.com/kanbot/kanbot-sidecar/profiles"
	"github.com/kanbot/kanbot-sidecar/proxy"
)

// Admin event codes serve records around its lifetime.
const (
	adminStart = "start"
	adminStop  = "stop"
)

func newServeCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the proxy and the admin listener",
		Long: `Run the sidecar: the proxy on listen (base-URL and forward-proxy mode on one
listener) and /healthz, /readyz, /metrics on admin_listen.

SIGHUP, or a change to profiles.yaml or vault/, reloads the profiles without
dropping connections; a broken change is logged and audited and the current
profiles stay in use. SIGINT/SIGTERM stop accepting, let requests in flight
finish (within shutdown_timeout), flush the audit log and exit 0.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), cmd, e)
		},
	}
	f := cmd.Flags()
	f.String("listen", defaults["listen"].(string), "proxy address: host:port or unix:/path/to.sock")
	f.String("admin-listen", defaults["admin_listen"].(string), `health and metrics address ("" turns it off)`)
	f.String("upstream", defaults["upstream"].(string), "Kanbot base URL for profiles that set none")
	f.String("log-level", defaults["log.level"].(string), "debug, info, warn or error")
	f.String("log-format", defaults["log.format"].(string), "auto (console on a terminal, else JSON), json or console")
	f.String(flagPassphraseFile, "", "file holding the identity's passphrase, if it has one (mode 0600; env "+envPassphraseFile+")")
	return cmd
}

// runServe wires the parts together and owns every goroutine it starts:
// the proxy server, the admin server, the profile watcher and the SIGHUP
// loop all stop before it returns, and the audit DB is closed last.
func runServe(ctx context.Context, cmd *cobra.Command, e *env) (err error) {
	home, err := homeDir(cmd, e)
	if err != nil {
		return err
	}
	fc, err := loadConfig(home, cmd.Flags())
	if err != nil {
		return err
	}
	log, err := newLogger(fc, e.stderr)
	if err != nil {
		return err
	}
	id, err := loadIdentity(cmd, e, home)
	if err != nil {
		return err
	}
	// One Loader for the start and every reload: a reload decrypts only the
	// vault files that changed (about ten times cheaper than profiles.Load).
	loader := &profiles.Loader{Home: home, Identity: id}
	snap, err := loader.Load()
	if err != nil {
		return err // already says "load profiles: …"
	}
	clients, err := proxyClients(fc.Clients)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	commitLatency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kanbot_sidecar_audit_commit_seconds",
		Help:    "Duration of one audit group-commit transaction.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	})
	committed := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kanbot_sidecar_audit_events_total",
		Help: "Audit events committed.",
	})
	reg.MustRegister(commitLatency, committed)
	metrics, err := proxy.NewMetrics(reg)
	if err != nil {
		return err
	}

	db, err := auditdb.Open(ctx, auditdb.Config{
		Path:        fc.auditPath(),
		Durability:  fc.Audit.Durability,
		RedactQuery: fc.Audit.RedactQuery,
		OnCommit: func(n int, d time.Duration) {
			commitLatency.Observe(d.Seconds())
			committed.Add(float64(n))
		},
	})
	if err != nil {
		return err // already says "open audit database …"
	}
	if db.Created() {
		// init creates the DB; a missing one means it was deleted or moved,
		// and the chain that starts now cannot vouch for what came before.
		log.Warn().Str("path", fc.auditPath()).Msg("audit database was missing or had no audit schema: a new audit trail starts at seq 1")
	}
	defer func() {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close audit database: %w", cerr))
		}
	}()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kanbot_sidecar_audit_queue_depth",
		Help: "Audit events waiting for the writer.",
	}, func() float64 { return float64(db.QueueDepth()) }))

	p, err := proxy.New(proxy.Config{
		Snapshot: snap,
		Load: func(context.Context) (*profiles.Snapshot, error) {
			return loader.Load()
		},
		Recorder:        db,
		Upstream:        fc.Upstream,
		AllowedHosts:    fc.AllowedHosts,
		InjectHeader:    fc.InjectHeader,
		UpstreamTimeout: fc.UpstreamTimeout,
		Rate:            fc.RateLimit.Rate,
		Burst:           fc.RateLimit.Burst,
		FailOpen:        fc.Audit.FailOpen,
		Clients:         clients,
		Log:             log,
		Metrics:         metrics,
	})
	if err != nil {
		return err
	}
	if fc.Audit.FailOpen {
		log.Warn().Msg("audit.fail_open is on: requests are forwarded even when the audit log cannot be written")
	}

	l, err := proxy.Listen(fc.Listen, fc.AllowNonLoopback)
	if err != nil {
		return err
	}
	srv := p.Server()
	srv.ErrorLog = stdlog.New(httpErrorLog{log}, "", 0)
	// http.Transport logs through the standard logger; route it the same way.
	stdlog.SetFlags(0)
	stdlog.SetOutput(httpErrorLog{log})

	var admin *http.Server
	var al net.Listener
	if fc.AdminListen != "" {
		if al, err = listenAdmin(fc.AdminListen, fc.AllowNonLoopback); err != nil {
			l.Close()
			return err
		}
		admin = &http.Server{Handler: guardAdmin(adminHandler(p, db, reg), fc.AllowedHosts), ReadHeaderTimeout: 5 * time.Second}
	}

	recordServeEvent(ctx, db, log, adminStart, map[string]any{
		"listen": fc.Listen, "admin_listen": fc.AdminListen, "profiles": snap.Len(), "version": version, "pid": os.Getpid(),
	})

	var wg sync.WaitGroup
	serveErr := make(chan error, 2)
	wg.Go(func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("proxy listener: %w", err)
		}
	})
	if admin != nil {
		wg.Go(func() {
			if err := admin.Serve(al); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("admin listener: %w", err)
			}
		})
	}
	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	wg.Go(func() {
		if err := p.Watch(bgCtx, home, 0); err != nil {
			log.Warn().Err(err).Msg("watching profile files failed; reload with SIGHUP")
		}
	})
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	wg.Go(func() {
		for {
			select {
			case <-bgCtx.Done():
				return
			case <-hup:
				_ = p.Reload(bgCtx, "SIGHUP") // logged and audited by Reload
			}
		}
	})
	listenAddr := l.Addr().String() // the bound port when listen asked for :0
	if strings.HasPrefix(fc.Listen, "unix:") {
		listenAddr = fc.Listen // the socket was bound under a temporary name, then renamed
	}
	ev := log.Info().Str("listen", listenAddr).Str("upstream", fc.Upstream).Int("profiles", snap.Len())
	if al != nil {
		ev = ev.Str("admin_listen", al.Addr().String())
	}
	ev.Msg("kanbot-sidecar serving")

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
	}

	// Shutdown: stop accepting, drain in-flight requests (bounded), wait
	// for response events, stop the background loops, record stop; the
	// deferred Close flushes the audit writer.
	log.Info().Dur("timeout", fc.ShutdownTimeout).Msg("shutting down")
	shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fc.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		log.Warn().Err(err).Msg("requests still running at shutdown_timeout; closing their connections")
		_ = srv.Close()
	}
	if admin != nil {
		_ = admin.Shutdown(shCtx)
	}
	signal.Stop(hup)
	stopBG()
	wg.Wait()
	if err := p.Close(shCtx); err != nil {
		log.Error().Err(err).Msg("response events still pending at shutdown")
	}
	recordServeEvent(context.WithoutCancel(ctx), db, log, adminStop, map[string]any{"pid": os.Getpid()})
	log.Info().Msg("stopped")
	return runErr
}

// recordServeEvent appends a start/stop admin event; failing to is logged,
// not fatal (the process is starting or already stopping).
func recordServeEvent(ctx context.Context, db *auditdb.DB, log zerolog.Logger, code string, detail map[string]any) {
	detail["who"] = osUser()
	d, _ := json.Marshal(detail)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.Record(rctx, auditdb.Event{Kind: auditdb.KindAdmin, Code: code, Detail: d}); err != nil {
		log.Error().Err(err).Str("code", code).Msg("record admin event")
	}
}

// proxyClients converts the clients config (hex SHA-256 of each token).
func proxyClients(cs []clientConfig) ([]proxy.Client, error) {
	out := make([]proxy.Client, 0, len(cs))
	for i, c := range cs {
		sum, err := hex.DecodeString(strings.ToLower(c.TokenSHA256))
		if err != nil || len(sum) != 32 {
			return nil, fmt.Errorf("clients[%d] %q: token_sha256 must be 64 hex digits", i, c.Name)
		}
		pc := proxy.Client{Name: c.Name, Profiles: c.Profiles}
		copy(pc.TokenSHA256[:], sum)
		out = append(out, pc)
	}
	return out, nil
}

// newLogger builds the root logger: JSON, or console on a terminal with
// log.format auto.
func newLogger(fc fileConfig, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(fc.Log.Level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("log.level %q: %w", fc.Log.Level, err)
	}
	console := fc.Log.Format == "console"
	if fc.Log.Format == "auto" {
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			console = true
		}
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// httpErrorLog sends net/http's own complaints (TLS, malformed requests it
// rejects, the transport's "Unsolicited response … starting with %q") to
// the logger at warn. net/http quotes peer-supplied bytes with %q, which can
// be a piece of a response body, so the message is cut at the first quote:
// logs never carry bodies.
type httpErrorLog struct{ log zerolog.Logger }

func (h httpErrorLog) Write(p []byte) (int, error) {
	msg, _, cut := strings.Cut(string(p), `"`)
	msg = strings.TrimSpace(msg)
	if cut {
		msg += " […]"
	}
	h.log.Warn().Str("component", "http").Msg(msg)
	return len(p), nil
}

// listenAdmin opens the admin listener under the same loopback rule as the
// proxy.
func listenAdmin(addr string, allowNonLoopback bool) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("admin_listen %q: want host:port", addr)
	}
	if !allowNonLoopback && !proxy.IsLoopbackHost(host) {
		return nil, fmt.Errorf("admin_listen %s: %w", addr, proxy.ErrNonLoopback)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin_listen %s: %w", addr, err)
	}
	return l, nil
}

// adminHandler serves /healthz (process up), /readyz (audit writable and
// profiles loaded) and /metrics.
func adminHandler(p *proxy.Proxy, db *auditdb.DB, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		res := map[string]any{"status": "ready", "audit": "ok", "profiles": p.Snapshot().Len()}
		status := http.StatusOK
		if err := db.Ping(ctx); err != nil {
			res["status"], res["audit"] = "not ready", "unavailable"
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(res)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// guardAdmin applies the proxy's browser and DNS-rebinding guards (DESIGN.md
// steps 1-2, the same proxy functions) to the admin listener: /metrics names
// every profile, so a web page that rebinds a name to 127.0.0.1 must not be
// able to read it.
func guardAdmin(h http.Handler, allowedHosts []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok := proxy.HostAllowed(r.Host, allowedHosts)
		for k := range r.Header {
			ok = ok && !proxy.IsBrowserHeader(k)
		}
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":"admin endpoints answer loopback hosts only, never browsers"}`+"\n")
			return
		}
		h.ServeHTTP(w, r)
	})
}

var _ proxy.Recorder = (*auditdb.DB)(nil)
