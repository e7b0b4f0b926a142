package calib

import (
	"math"
	"slices"

	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// AccuracyLine is the error of one group of rows (a backend and mode).
type AccuracyLine struct {
	Backend, Mode string
	Rows          int
	// Answered is how many rows got a prediction; Coverage = Answered/Rows.
	Answered            int
	Coverage            float64
	TTFTMedian, TTFTP90 float64 // absolute relative error
	ITLMedian, ITLP90   float64
}

// Summarize groups results by backend and mode (plus an "all" line per mode and overall).
func Summarize(res []RowResult) []AccuracyLine {
	return SummarizeBy(res, func(r *profile.ServingRow) string { return r.Fields["backend"] })
}

// SummarizeBy is Summarize with the first grouping column chosen by key (a model, a system).
func SummarizeBy(res []RowResult, key func(*profile.ServingRow) string) []AccuracyLine {
	type acc struct {
		rows, ok int
		t, i     []float64
	}
	groups := map[[2]string]*acc{}
	add := func(k [2]string, r RowResult) {
		a := groups[k]
		if a == nil {
			a = &acc{}
			groups[k] = a
		}
		if r.Row.MeasuredTTFTMs <= 0 {
			return
		}
		a.rows++
		te, ie := r.AbsErr()
		if math.IsNaN(te) {
			return
		}
		a.ok++
		a.t = append(a.t, te)
		a.i = append(a.i, ie)
	}
	for _, r := range res {
		b, m := key(r.Row), r.Row.Fields["mode"]
		add([2]string{b, m}, r)
		add([2]string{"all", m}, r)
		add([2]string{"all", "all"}, r)
	}
	keys := sortedGroupKeys(groups)
	var out []AccuracyLine
	for _, k := range keys {
		a := groups[k]
		if a.rows == 0 {
			continue
		}
		l := AccuracyLine{Backend: k[0], Mode: k[1], Rows: a.rows, Answered: a.ok, Coverage: float64(a.ok) / float64(a.rows)}
		l.TTFTMedian, l.TTFTP90 = quantile(a.t, 0.5), quantile(a.t, 0.9)
		l.ITLMedian, l.ITLP90 = quantile(a.i, 0.5), quantile(a.i, 0.9)
		out = append(out, l)
	}
	return out
}

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	pos := q * float64(len(s)-1)
	i := int(math.Floor(pos))
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	f := pos - float64(i)
	return s[i]*(1-f) + s[i+1]*f
}
