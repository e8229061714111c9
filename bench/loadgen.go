package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// target is one way of reaching the upstream: directly with the key, or
// through a proxy that injects it.
type target struct {
	name   string
	url    string              // e.g. http://127.0.0.1:PORT/api/v1/bench
	header map[string][]string // sent with every request
	pid    int                 // the serving process (for CPU and RSS), 0 if none of ours
	// adminURL, if set, is the sidecar's admin listener: its audit counters
	// are scraped around every run.
	adminURL string
}

// loadResult is one closed-loop run of one target at one concurrency.
type loadResult struct {
	requests int
	elapsed  time.Duration   // the measured requests
	total    time.Duration   // warm-up included
	sorted   []time.Duration // per-request latencies, ascending
}

func (r loadResult) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// drive runs a closed loop against t: conc workers, each with its own
// keep-alive connection, each sending its next request as soon as the
// previous response has been read; first warmup requests that are not
// recorded, then n that are. Latency is measured from just before the
// request is written until its body has been read to the end. Any response
// other than 200 with the full body fails the run. The context bounds the
// run: once it is done, workers stop after their current request.
func drive(ctx context.Context, t target, conc, warmup, n int) (loadResult, error) {
	if conc < 1 || n < conc {
		return loadResult{}, fmt.Errorf("drive %s: need concurrency >= 1 and requests >= concurrency (got %d, %d)", t.name, conc, n)
	}
	conns := make([]*conn, conc)
	for w := range conns {
		c, err := newConn(t.url, t.header)
		if err != nil {
			return loadResult{}, fmt.Errorf("drive %s: %w", t.name, err)
		}
		conns[w] = c
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	t0 := time.Now()
	if warmup > 0 {
		if _, err := closedLoop(ctx, conns, warmup, nil); err != nil {
			return loadResult{}, fmt.Errorf("%s c=%d warm-up: %w", t.name, conc, err)
		}
	}
	lat := make([]time.Duration, n)
	elapsed, err := closedLoop(ctx, conns, n, lat)
	if err != nil {
		return loadResult{}, fmt.Errorf("%s c=%d: %w", t.name, conc, err)
	}
	total := time.Since(t0)
	slices.Sort(lat)
	return loadResult{requests: n, elapsed: elapsed, total: total, sorted: lat}, nil
}

// closedLoop sends n requests over conns, one worker per connection, and
// stores each request's latency in lat (if not nil, len(lat) == n). Workers
// take request numbers from a shared counter, so the loop ends after exactly
// n requests; the first error (or the end of ctx) stops every worker.
func closedLoop(ctx context.Context, conns []*conn, n int, lat []time.Duration) (time.Duration, error) {
	var (
		next    atomic.Int64
		failed  atomic.Bool
		errOnce sync.Once
		first   error
		wg      sync.WaitGroup
	)
	fail := func(err error) {
		errOnce.Do(func() { first = err })
		failed.Store(true)
	}
	stop := context.AfterFunc(ctx, func() { fail(ctx.Err()) })
	defer stop()
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				t0 := time.Now()
				if err := c.do(); err != nil {
					fail(err)
					return
				}
				if lat != nil {
					lat[i] = time.Since(t0)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	errOnce.Do(func() {}) // first is final from here on
	if first != nil {
		return 0, first
	}
	return elapsed, nil
}
