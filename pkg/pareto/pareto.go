package pareto

import (
	"cmp"
	"math"
	"slices"
)

// Dominates reports whether point a = (ax, ay) dominates b = (bx, by) when both coordinates are
// maximized: a is at least as good in both and strictly better in one.
func Dominates(ax, ay, bx, by float64) bool {
	return ax >= bx && ay >= by && (ax > bx || ay > by)
}

// FrontIndices returns the indices of the items that no other item dominates in (x, y), both
// maximized, ordered by x ascending (so y descending: the front read left to right).
// Items with a NaN coordinate are never on the front. Of several items at the same point only the
// first in input order is kept, since the others add nothing to the trade-off.
func FrontIndices[T any](items []T, x, y func(T) float64) []int {
	type pt struct {
		i    int
		x, y float64
	}
	pts := make([]pt, 0, len(items))
	for i, it := range items {
		px, py := x(it), y(it)
		if math.IsNaN(px) || math.IsNaN(py) {
			continue
		}
		pts = append(pts, pt{i, px, py})
	}
	// Best x first; at equal x best y first; at equal points the earliest item first.
	slices.SortFunc(pts, func(a, b pt) int {
		if c := cmp.Compare(b.x, a.x); c != 0 {
			return c
		}
		if c := cmp.Compare(b.y, a.y); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	// Sweeping from the largest x, a point survives only if it beats every y seen so far:
	// anything seen earlier has x at least as large.
	var kept []int
	bestY := math.Inf(-1)
	first := true
	for _, p := range pts {
		if first || p.y > bestY {
			kept = append(kept, p.i)
			bestY = p.y
			first = false
		}
	}
	slices.Reverse(kept)
	return kept
}

// Front returns the items that no other item dominates in (x, y), both maximized, ordered by x
// ascending. See FrontIndices for ties and NaN.
func Front[T any](items []T, x, y func(T) float64) []T {
	idx := FrontIndices(items, x, y)
	out := make([]T, len(idx))
	for k, i := range idx {
		out[k] = items[i]
	}
	return out
}
