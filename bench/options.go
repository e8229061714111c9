package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// options are the knobs of one run. The defaults are what `make bench` runs;
// the smoke test uses tiny counts.
type options struct {
	requests       int   // measured requests per target, concurrency and round
	warmup         int   // unrecorded requests before each measured run
	rounds         int   // rounds; targets alternate inside each
	concurrency    []int // closed-loop workers
	startupSizes   []int // profile counts for the start-up measurement
	startupRepeats int   // starts per size (median reported)
	auditEvents    int   // events written in the audit writer phase
	auditWriters   int   // goroutines recording concurrently in that phase
	sidecarBin     string
	out            string // JSON results path; "" writes none
	markdown       string // Markdown table path; "" writes none
	workDir        string // where homes and logs go; "" = a new temp dir, removed after
	cpuProfile     string // CPU profile of sidecar-noaudit; "" = none
	timeout        time.Duration
}

// parseOptions parses args into options, writing usage to w on error.
func parseOptions(args []string, w io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.IntVar(&o.requests, "requests", 5000, "measured requests per target, concurrency and round")
	fs.IntVar(&o.warmup, "warmup", 500, "unrecorded warm-up requests before each measured run")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds (targets alternate inside each round)")
	conc := fs.String("concurrency", "1,16,64", "comma-separated closed-loop concurrencies")
	sizes := fs.String("startup-profiles", "1000,10000", "comma-separated profile counts for the start-up measurement")
	fs.IntVar(&o.startupRepeats, "startup-repeats", 3, "starts per profile count (the median is reported)")
	fs.IntVar(&o.auditEvents, "audit-events", 200000, "events recorded in the audit writer phase")
	fs.IntVar(&o.auditWriters, "audit-writers", 64, "concurrent recorders in the audit writer phase")
	fs.StringVar(&o.sidecarBin, "sidecar-bin", "bin/kanbot-sidecar", "the built kanbot-sidecar binary")
	fs.StringVar(&o.out, "out", "bench/results/latest.json", "where to write the JSON results (empty: don't)")
	fs.StringVar(&o.markdown, "markdown", "bench/results/latest.md", "where to write the Markdown table (empty: don't)")
	fs.StringVar(&o.workDir, "workdir", "", "directory for homes, databases and logs (default: a temp dir, removed afterwards)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the sidecar-noaudit process (the proxy package) to this file")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "abort the whole run after this long")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.concurrency, err = parseInts("concurrency", *conc); err != nil {
		return o, err
	}
	if o.startupSizes, err = parseInts("startup-profiles", *sizes); err != nil {
		return o, err
	}
	switch {
	case o.requests < 1, o.warmup < 0, o.rounds < 1, o.startupRepeats < 1, o.auditEvents < 1, o.auditWriters < 1:
		return o, fmt.Errorf("-requests, -rounds, -startup-repeats, -audit-events and -audit-writers must be positive, -warmup not negative")
	case o.timeout <= 0:
		return o, fmt.Errorf("-timeout must be positive")
	}
	for _, c := range o.concurrency {
		if c > o.requests {
			return o, fmt.Errorf("-requests (%d) must be at least the highest concurrency (%d)", o.requests, c)
		}
	}
	return o, nil
}

// parseInts parses "1,16,64" into positive integers.
func parseInts(name, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s: %q is not a positive integer", name, f)
		}
		out = append(out, n)
	}
	return out, nil
}
