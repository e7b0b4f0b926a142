package calib

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// minCellRows is the rows an interval cell needs to be written: a situation with fewer takes the next
// broader level (profile.IntervalLevels). The broadest level of each calibrated/uncalibrated side is
// written whatever its rows, so every prediction has an interval.
const minCellRows = 40

// residual is one row's log errors ln(measured/predicted) and its situation.
type residual struct {
	key        profile.IntervalKey
	ttft, itl  float64
	e2e        float64
	pred       profile.Prediction
	row        *profile.ServingRow
	measureE2E float64
}

// requestMs is a request's whole latency: the first token, then OSL−1 more.
func requestMs(ttft, itl float64, osl int) float64 { return ttft + float64(max(osl-1, 0))*itl }

func residualOf(r RowResult, calibrated bool) (residual, bool) {
	row := r.Row
	if r.Err != nil || row.MeasuredTTFTMs <= 0 || row.MeasuredITLMs <= 0 || r.Pred.TTFTMs <= 0 || r.Pred.ITLMs <= 0 {
		return residual{}, false
	}
	osl := row.Target.Workload.OSL
	me := requestMs(row.MeasuredTTFTMs, row.MeasuredITLMs, osl)
	return residual{
		key:  profile.IntervalKey{Backend: row.Target.Backend, Mode: row.Config.Mode, Method: r.Pred.Method, Calibrated: calibrated},
		ttft: math.Log(row.MeasuredTTFTMs / r.Pred.TTFTMs), itl: math.Log(row.MeasuredITLMs / r.Pred.ITLMs),
		e2e: math.Log(me / requestMs(r.Pred.TTFTMs, r.Pred.ITLMs, osl)), pred: r.Pred, row: row, measureE2E: me,
	}, true
}

// FitIntervals builds the interval table: the calibrated cells from train (the shipped calibration's
// predictions of every row: how far off it is on architectures it was fitted on), the uncalibrated
// ones from lomo (each model predicted by a fit without it: how far off it is on a new architecture).
func FitIntervals(train, lomo []RowResult, method string) profile.IntervalTable {
	t := profile.IntervalTable{Method: method}
	t.Cells = append(intervalCells(residuals(train, true)), intervalCells(residuals(lomo, false))...)
	seen := map[string]bool{}
	for _, r := range train {
		if r.Row.Err == nil && r.Row.MeasuredTTFTMs > 0 {
			seen[r.Row.Target.Model.ArchKey()] = true
		}
	}
	t.Calibrated = slices.Sorted(maps.Keys(seen))
	return t
}

func residuals(res []RowResult, calibrated bool) []residual {
	var out []residual
	for _, r := range res {
		if rr, ok := residualOf(r, calibrated); ok {
			out = append(out, rr)
		}
	}
	return out
}

// intervalCells writes a cell per level of every situation with enough rows.
func intervalCells(rs []residual) []profile.IntervalCell {
	by := map[profile.IntervalKey][]residual{}
	for _, r := range rs {
		for _, l := range profile.IntervalLevels(r.key) {
			by[l] = append(by[l], r)
		}
	}
	keys := slices.SortedFunc(maps.Keys(by), func(a, b profile.IntervalKey) int {
		return cmp.Or(strings.Compare(string(a.Mode), string(b.Mode)), strings.Compare(string(a.Method), string(b.Method)),
			strings.Compare(a.Backend, b.Backend))
	})
	var out []profile.IntervalCell
	for _, k := range keys {
		g := by[k]
		broadest := k == profile.IntervalKey{Calibrated: k.Calibrated}
		if len(g) < minCellRows && !broadest {
			continue
		}
		q := func(f func(residual) float64) [2]float64 {
			xs := make([]float64, len(g))
			for i, r := range g {
				xs[i] = f(r)
			}
			return [2]float64{round6(quantile(xs, 0.1)), round6(quantile(xs, 0.9))}
		}
		out = append(out, profile.IntervalCell{Backend: k.Backend, Mode: k.Mode, Method: k.Method, Calibrated: k.Calibrated, Rows: len(g),
			TTFT: q(func(r residual) float64 { return r.ttft }), ITL: q(func(r residual) float64 { return r.itl }),
			E2E: q(func(r residual) float64 { return r.e2e })})
	}
	return out
}

// round6 keeps the committed table readable; six decimals of a log error are far below its noise.
func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// CoverageLine is how often the measured values of one group of rows fell inside their p10–p90
// intervals, and how wide those were.
type CoverageLine struct {
	Backend, Mode string
	Rows          int
	// TTFT, ITL and E2E are the fractions of rows inside the interval (nominal 0.8); E2E is a
	// request's whole latency, which the throughput interval is derived from.
	TTFT, ITL, E2E float64
	// TTFTWidth and ITLWidth are the median of (p90 − p10)/prediction.
	TTFTWidth, ITLWidth float64
}

// IntervalCoverage checks the uncalibrated intervals left one model out: each model's
// leave-one-model-out predictions (lomo, from CrossValidate) get intervals fitted on the other
// models' residuals only, and the measured values are checked against them. scale multiplies the
// fitted log quantiles (1: as fitted; the tests check that narrower intervals fail the bounds).
func IntervalCoverage(lomo []RowResult, scale float64) []CoverageLine {
	all := residuals(lomo, false)
	byGroup := map[string][]residual{}
	for _, r := range all {
		byGroup[ModelGroup(r.row)] = append(byGroup[ModelGroup(r.row)], r)
	}
	type hit struct {
		t, i, e bool
		wt, wi  float64
	}
	groups := map[[2]string][]hit{}
	for _, g := range slices.Sorted(maps.Keys(byGroup)) {
		var others []residual
		for _, r := range all {
			if ModelGroup(r.row) != g {
				others = append(others, r)
			}
		}
		table := profile.IntervalTable{Cells: intervalCells(others)}
		for _, r := range byGroup[g] {
			cell, ok := table.Lookup(r.key)
			if !ok {
				continue
			}
			for j := range 2 {
				cell.TTFT[j], cell.ITL[j], cell.E2E[j] = scale*cell.TTFT[j], scale*cell.ITL[j], scale*cell.E2E[j]
			}
			b := cell.Bands(r.pred)
			osl := r.row.Target.Workload.OSL
			pe := requestMs(r.pred.TTFTMs, r.pred.ITLMs, osl)
			h := hit{
				t:  inside(r.row.MeasuredTTFTMs, b.TTFTP10Ms, b.TTFTP90Ms),
				i:  inside(r.row.MeasuredITLMs, b.ITLP10Ms, b.ITLP90Ms),
				e:  inside(r.measureE2E, pe*math.Exp(min(cell.E2E[0], 0)), pe*math.Exp(max(cell.E2E[1], 0))),
				wt: (b.TTFTP90Ms - b.TTFTP10Ms) / r.pred.TTFTMs,
				wi: (b.ITLP90Ms - b.ITLP10Ms) / r.pred.ITLMs,
			}
			m := string(r.key.Mode)
			for _, k := range [][2]string{{r.key.Backend, m}, {"all", m}, {"all", "all"}} {
				groups[k] = append(groups[k], h)
			}
		}
	}
	var out []CoverageLine
	for _, k := range sortedGroupKeys(groups) {
		hs := groups[k]
		l := CoverageLine{Backend: k[0], Mode: k[1], Rows: len(hs)}
		var wt, wi []float64
		for _, h := range hs {
			l.TTFT += b2f(h.t)
			l.ITL += b2f(h.i)
			l.E2E += b2f(h.e)
			wt, wi = append(wt, h.wt), append(wi, h.wi)
		}
		n := float64(len(hs))
		l.TTFT, l.ITL, l.E2E = l.TTFT/n, l.ITL/n, l.E2E/n
		l.TTFTWidth, l.ITLWidth = quantile(wt, 0.5), quantile(wi, 0.5)
		out = append(out, l)
	}
	return out
}

func inside(x, lo, hi float64) bool { return x >= lo && x <= hi }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// sortedGroupKeys orders (group, mode) keys with the "all" groups last, as Summarize prints them.
func sortedGroupKeys[V any](m map[[2]string]V) [][2]string {
	return slices.SortedFunc(maps.Keys(m), func(a, b [2]string) int {
		if (a[0] == "all") != (b[0] == "all") {
			if a[0] == "all" {
				return 1
			}
			return -1
		}
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
}
