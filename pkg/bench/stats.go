package bench

import (
	"math"
	"slices"
	"time"
)

// Latency summarises a latency distribution in milliseconds. It is all zeros when there were no
// samples.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
}

// summarize sorts samples in place and summarises them in milliseconds.
func summarize(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	var sum float64
	for _, d := range samples {
		sum += float64(d)
	}
	ms := func(ns float64) float64 { return ns / float64(time.Millisecond) }
	return Latency{
		Mean: ms(sum / float64(len(samples))),
		P50:  ms(percentile(samples, 50)),
		P90:  ms(percentile(samples, 90)),
		P99:  ms(percentile(samples, 99)),
		Min:  ms(float64(samples[0])),
		Max:  ms(float64(samples[len(samples)-1])),
	}
}

// percentile interpolates linearly between the closest ranks of sorted (NumPy's default), so
// p50 of an even count is the mean of the middle two.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(rank))
	hi := min(lo+1, len(sorted)-1)
	frac := rank - float64(lo)
	return float64(sorted[lo]) + frac*float64(sorted[hi]-sorted[lo])
}

// TokenStats summarises per-request token counts.
type TokenStats struct {
	Mean float64 `json:"mean"`
	Min  int     `json:"min"`
	Max  int     `json:"max"`
}

func tokenStats(counts []int) TokenStats {
	if len(counts) == 0 {
		return TokenStats{}
	}
	s := TokenStats{Min: counts[0], Max: counts[0]}
	sum := 0
	for _, c := range counts {
		sum += c
		s.Min = min(s.Min, c)
		s.Max = max(s.Max, c)
	}
	s.Mean = float64(sum) / float64(len(counts))
	return s
}
