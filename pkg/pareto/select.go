package pareto

import (
	"fmt"
	"math"

	"github.com/dgdr-dev/dgdr/internal/numfmt"
)

// Bound is an upper limit on one metric of a candidate, such as TTFT ≤ 100 ms.
type Bound[T any] struct {
	// Name and Unit are used in explanations ("ITL", "ms").
	Name  string
	Unit  string
	Limit float64
	Value func(T) float64
}

// Miss is how far one candidate is over one bound.
type Miss struct {
	Name  string  `json:"name"`
	Unit  string  `json:"unit,omitempty"`
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
}

// Over is the absolute excess (Value − Limit).
func (m Miss) Over() float64 { return m.Value - m.Limit }

// Relative is the excess as a fraction of the limit (0.2 = 20 % over); +Inf for a limit ≤ 0.
func (m Miss) Relative() float64 {
	if m.Limit <= 0 {
		return math.Inf(1)
	}
	return m.Value/m.Limit - 1
}

// String reads "ITL 18.2 ms > 15 ms (+3.2 ms, +21%)". One decimal, more when needed to tell
// the value from the limit.
func (m Miss) String() string {
	unit := ""
	if m.Unit != "" {
		unit = " " + m.Unit
	}
	d := 1
	for d < 4 && numfmt.Fixed(m.Value, d) == numfmt.Fixed(m.Limit, d) {
		d++
	}
	rel := ""
	if r := m.Relative(); !math.IsInf(r, 0) {
		rel = fmt.Sprintf(", +%.0f%%", 100*r)
	}
	return fmt.Sprintf("%s %s%s > %s%s (+%s%s%s)", m.Name, numfmt.Fixed(m.Value, d), unit, numfmt.Fixed(m.Limit, d), unit, numfmt.Fixed(m.Over(), d), unit, rel)
}

// Misses lists the bounds item exceeds, in the order of bounds. A NaN value counts as a miss.
func Misses[T any](item T, bounds []Bound[T]) []Miss {
	var out []Miss
	for _, b := range bounds {
		v := b.Value(item)
		if v > b.Limit || math.IsNaN(v) {
			out = append(out, Miss{Name: b.Name, Unit: b.Unit, Value: v, Limit: b.Limit})
		}
	}
	return out
}

// Distance is how far item is from meeting every bound: the sum of the relative excesses
// (0 when it meets them all). Relative, so that 10 ms over a 100 ms TTFT weighs like 1.5 ms over a 15 ms ITL.
func Distance[T any](item T, bounds []Bound[T]) float64 {
	d := 0.0
	for _, m := range Misses(item, bounds) {
		r := m.Relative()
		if math.IsNaN(r) {
			return math.Inf(1)
		}
		d += r
	}
	return d
}

// Selection is the outcome of Select.
type Selection struct {
	// Index is the chosen item's position in the input; -1 when there were no items.
	Index int
	// Meets is true when the chosen item is within every bound.
	Meets bool
	// Misses are the bounds the chosen item exceeds (empty when Meets).
	Misses []Miss
	// Feasible is how many items are within every bound.
	Feasible int
}

// Select chooses the best item within all bounds: the largest keys[0], ties by keys[1], … and
// then by input order. When no item is within the bounds it chooses the closest one (smallest
// Distance), ties broken the same way, and reports what it misses.
func Select[T any](items []T, bounds []Bound[T], keys ...func(T) float64) Selection {
	sel := Selection{Index: -1}
	bestDist := math.Inf(1)
	for i, it := range items {
		d := Distance(it, bounds)
		if d == 0 {
			sel.Feasible++
		}
		switch {
		case sel.Index < 0 || d < bestDist:
		case d > bestDist || math.IsNaN(d):
			continue
		case !better(it, items[sel.Index], keys):
			continue
		}
		sel.Index, bestDist = i, d
	}
	if sel.Index >= 0 {
		sel.Misses = Misses(items[sel.Index], bounds)
		sel.Meets = len(sel.Misses) == 0
	}
	return sel
}

// better reports whether a beats b on the keys, compared in order, larger first. NaN never beats.
func better[T any](a, b T, keys []func(T) float64) bool {
	for _, k := range keys {
		ka, kb := k(a), k(b)
		if ka > kb || (!math.IsNaN(ka) && math.IsNaN(kb)) {
			return true
		}
		if ka < kb || math.IsNaN(ka) {
			return false
		}
	}
	return false
}
