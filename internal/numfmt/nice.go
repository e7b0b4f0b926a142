package numfmt

import "math"

// NiceCeil rounds v up to a round number for the end of a plot's axis: the first of steps (ascending
// multipliers in [1, 10]) times the power of ten at or below v that reaches v, else ten times that power.
// A v that is not positive and finite gives 1. A plot picks the steps its ticks divide evenly, e.g.
// 1, 2, 5 for quarter ticks that stay whole numbers.
func NiceCeil(v float64, steps ...float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, f := range steps {
		// The tolerance keeps a v that is a step already (but for rounding in Log10 and Pow) where it is.
		if v <= f*p*(1+1e-12) {
			return f * p
		}
	}
	return 10 * p
}
