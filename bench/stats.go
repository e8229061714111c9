package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 1) of sorted by the
// nearest-rank method: the smallest sample with at least p of all samples at
// or below it. It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none. xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// us converts a duration to microseconds as a float.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// round2 keeps two decimals, so the JSON stays readable without pretending
// to more precision than a noisy machine gives.
func round2(x float64) float64 { return math.Round(x*100) / 100 }
