package proxy

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters holds one token bucket per profile name. Buckets outlive
// snapshots, so a reload does not refill them (which would let an agent
// that triggers reloads escape its limit); a bucket is rebuilt only when the
// profile's rate or burst changes.
type limiters struct {
	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	rate  float64
	burst int
	lim   *rate.Limiter
}

func newLimiters() *limiters { return &limiters{m: make(map[string]*bucket)} }

// allow takes one token from name's bucket at now. When the bucket is
// empty it returns false and the whole seconds after which a token will be
// there (at least 1), for Retry-After.
func (l *limiters) allow(name string, r float64, burst int, now time.Time) (bool, int) {
	l.mu.Lock()
	b := l.m[name]
	if b == nil || b.rate != r || b.burst != burst {
		b = &bucket{rate: r, burst: burst, lim: rate.NewLimiter(rate.Limit(r), burst)}
		l.m[name] = b
	}
	l.mu.Unlock()
	// rate.Limiter is safe for concurrent use: AllowN is atomic, so
	// concurrent requests cannot overdraw the bucket.
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - b.lim.TokensAt(now)
	secs := int(math.Ceil(missing / r))
	if secs < 1 {
		secs = 1
	}
	return false, secs
}

// forget drops the buckets of profiles no longer configured, so a removed
// and re-added profile starts fresh and the map does not grow without end.
func (l *limiters) forget(keep func(string) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name := range l.m {
		if !keep(name) {
			delete(l.m, name)
		}
	}
}
