// Package stats holds the pure parts of berth's benchmark harness: sample
// summaries (percentiles, first against last tenth) and the one table the
// bench command prints. It measures nothing itself, so it is tested without
// root and cannot rot unnoticed.
package stats

import (
	"math"
	"slices"
	"time"
)

// Samples are durations in the order they were taken; the order matters for
// FirstLast, which compares the start of a series with its end.
type Samples []time.Duration

// Percentile returns the p-th percentile (0 < p <= 100) by the
// nearest-rank method: the smallest sample that at least p % of the
// samples do not exceed. It is always one of the samples, which keeps small
// series honest (no interpolated value that was never measured). An empty
// series has no percentile: 0.
func (s Samples) Percentile(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Median is the 50th percentile.
func (s Samples) Median() time.Duration { return s.Percentile(50) }

// Mean is the samples' average (0 for none): for a comparison with a
// figure that is known only as a sum and a count.
func (s Samples) Mean() time.Duration {
	if len(s) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return sum / time.Duration(len(s))
}

// Summary is what the table shows of one series.
type Summary struct {
	N                 int
	Median, P95, P99  time.Duration
	FirstTen, LastTen time.Duration // medians of the first and last 10 % (at least one sample each)
}

// Summarize computes the summary of s.
func (s Samples) Summarize() Summary {
	first, last := s.FirstLast()
	return Summary{
		N: len(s), Median: s.Median(), P95: s.Percentile(95), P99: s.Percentile(99),
		FirstTen: first, LastTen: last,
	}
}

// FirstLast returns the medians of the first and of the last tenth of the
// series (at least one sample each): a cost that grows with what the
// series builds up shows as last > first.
func (s Samples) FirstLast() (first, last time.Duration) {
	if len(s) == 0 {
		return 0, 0
	}
	k := max(len(s)/10, 1)
	return s[:k].Median(), s[len(s)-k:].Median()
}

// Ratio is a/b, or NaN when b is zero (printed as "-").
func Ratio(a, b time.Duration) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// Diff returns a[i] - b[i] for each pair the two series share: with
// samples taken alternately, the median of the differences follows the
// cost of what separates them even while the machine's load drifts.
func Diff(a, b Samples) Samples {
	n := min(len(a), len(b))
	d := make(Samples, n)
	for i := range d {
		d[i] = a[i] - b[i]
	}
	return d
}

// RoundRatios reads a and b as taken in rounds of per samples a side
// (round k is a[k*per:(k+1)*per], and the same of b) and returns, for each
// round both series hold whole, the median of a's round over b's. Two
// blocks of one round are seconds apart, so the spread of these ratios
// shows how far the machine alone moves the figure within a run.
func RoundRatios(a, b Samples, per int) []float64 {
	if per <= 0 {
		return nil
	}
	n := min(len(a), len(b)) / per
	r := make([]float64, n)
	for k := range r {
		r[k] = Ratio(a[k*per:(k+1)*per].Median(), b[k*per:(k+1)*per].Median())
	}
	return r
}
