// Package dist is a distribution of sequence lengths as its quantile function: the form that both
// percentiles (p50, p90, p99) and histograms (bucket bounds and counts) take, that the performance
// model samples (MeanBetween) and that drift compares (Quantile).
package dist

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Knot is one point of a quantile function: the length Value at cumulative probability U.
type Knot struct {
	U     float64 `json:"u"`
	Value float64 `json:"value"`
}

// Quantiles is a quantile function: knots with U in [0, 1] non-decreasing and Value non-decreasing,
// linear between knots and flat beyond the first and the last (nothing is extrapolated past what was
// given). Two knots with the same U are a jump (an empty histogram bucket).
type Quantiles []Knot

// Point is the distribution of a single value.
func Point(v float64) Quantiles { return Quantiles{{U: 0, Value: v}, {U: 1, Value: v}} }

// FromPercentiles reads lengths at percentiles (0–100, strictly increasing; values non-decreasing).
func FromPercentiles(percentiles, values []float64) (Quantiles, error) {
	if len(percentiles) != len(values) || len(values) == 0 {
		return nil, fmt.Errorf("expected as many values as percentiles, at least one, got %d and %d", len(values), len(percentiles))
	}
	q := make(Quantiles, len(values))
	for i := range values {
		q[i] = Knot{U: percentiles[i] / 100, Value: values[i]}
	}
	return q, q.Check()
}

// FromHistogram reads a histogram of per-bucket counts: bucket i holds the values above
// upperBounds[i-1] (0 for the first) up to upperBounds[i], spread evenly inside it (as Prometheus's
// histogram_quantile assumes). Counts are not cumulative.
func FromHistogram(upperBounds, counts []float64) (Quantiles, error) {
	if len(upperBounds) != len(counts) || len(counts) == 0 {
		return nil, fmt.Errorf("expected as many counts as bucket bounds, at least one, got %d and %d", len(counts), len(upperBounds))
	}
	total := 0.0
	for i, c := range counts {
		if !(c >= 0) || math.IsInf(c, 0) {
			return nil, fmt.Errorf("count %d is %v: expected a finite number of at least 0", i, c)
		}
		total += c
	}
	if !(total > 0) || math.IsInf(total, 0) {
		return nil, errors.New("every count is zero: expected at least one observation")
	}
	var q Quantiles
	cum, lo := 0.0, 0.0
	for i, c := range counts {
		hi := upperBounds[i]
		if !(hi > lo) || math.IsInf(hi, 0) {
			return nil, fmt.Errorf("bucket bound %d is %v: expected finite bounds above 0, strictly increasing", i, hi)
		}
		if c > 0 {
			start := Knot{U: cum / total, Value: lo}
			if len(q) == 0 || q[len(q)-1] != start {
				q = append(q, start)
			}
			cum += c
			q = append(q, Knot{U: min(cum/total, 1), Value: hi})
		}
		lo = hi
	}
	q[len(q)-1].U = 1
	return q, q.Check()
}

// Check says whether q is a quantile function.
func (q Quantiles) Check() error {
	if len(q) == 0 {
		return errors.New("no quantiles: expected at least one")
	}
	for i, k := range q {
		if !(k.U >= 0 && k.U <= 1) {
			return fmt.Errorf("quantile %d is at %v: expected a probability between 0 and 1", i, k.U)
		}
		if !(k.Value >= 0) || math.IsInf(k.Value, 0) {
			return fmt.Errorf("quantile %d is %v: expected a finite length of at least 0", i, k.Value)
		}
		if i > 0 && (k.U < q[i-1].U || k.Value < q[i-1].Value) {
			return fmt.Errorf("quantile %d (%v at %v) is below the one before (%v at %v): expected both non-decreasing",
				i, k.Value, k.U, q[i-1].Value, q[i-1].U)
		}
	}
	return nil
}

// Quantile is the value at cumulative probability u (clamped to [0, 1]).
func (q Quantiles) Quantile(u float64) float64 {
	if len(q) == 0 {
		return 0
	}
	i, _ := slices.BinarySearchFunc(q, u, func(k Knot, u float64) int {
		switch {
		case k.U < u:
			return -1
		case k.U > u:
			return 1
		}
		return 0
	})
	switch {
	case i == 0:
		return q[0].Value
	case i == len(q):
		return q[len(q)-1].Value
	}
	a, b := q[i-1], q[i]
	if b.U == a.U {
		return b.Value
	}
	return a.Value + (b.Value-a.Value)*(u-a.U)/(b.U-a.U)
}

// MeanBetween is the mean value of the probability mass between a and b (0 ≤ a < b ≤ 1): the exact
// integral of the piecewise-linear quantile function over [a, b], divided by b − a.
func (q Quantiles) MeanBetween(a, b float64) float64 {
	if len(q) == 0 || !(b > a) {
		return q.Quantile(a)
	}
	area := 0.0
	if first := q[0]; a < first.U {
		area += (min(b, first.U) - a) * first.Value
	}
	for j := 1; j < len(q); j++ {
		k0, k1 := q[j-1], q[j]
		u0, u1 := max(a, k0.U), min(b, k1.U)
		if u1 <= u0 {
			continue
		}
		at := func(u float64) float64 { return k0.Value + (k1.Value-k0.Value)*(u-k0.U)/(k1.U-k0.U) }
		// A linear piece integrates to its width times the mean of its ends.
		area += (u1 - u0) * (at(u0) + at(u1)) / 2
	}
	if last := q[len(q)-1]; b > last.U {
		area += (b - max(a, last.U)) * last.Value
	}
	return area / (b - a)
}

// Mean is the mean value.
func (q Quantiles) Mean() float64 { return q.MeanBetween(0, 1) }
