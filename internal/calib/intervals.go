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

// cellRule is how a side of the table turns residuals into cells.
type cellRule struct {
	// symmetric takes the 80th percentile of |residual| on both sides instead of the p10 and p90: the
	// sign of a new model's error is not known (left out, Llama-3.1-70B's TTFT is over-predicted
	// where DeepSeek-R1's is under-predicted), so the other models' signs say nothing about it.
	symmetric bool
	// balanced weighs each model's rows 1/rows of that model in the quantiles: the unit a new model
	// is drawn from is a model, not a row, so the model with the most rows must not set the spread.
	balanced bool
	// minModels is the models a cell needs below the broadest level: one model's residuals hold its
	// own bias but not how biases differ between models.
	minModels int
}

var (
	// calibratedRule: an architecture with rows is predicted by the fit made on them, and its bias
	// in a situation is the shipped fit's bias there, sign included.
	calibratedRule = cellRule{minModels: 1}
	// newModelRule: cross-conformal over models (each model's residuals under the fit without it).
	newModelRule = cellRule{symmetric: true, balanced: true, minModels: 2}
)

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
// ones from lomo (each model predicted by a fit without it: how far off it is on a new architecture),
// and the corrected ones from shots (by Shots: FewShotHeldOut's rows, each model's rows left after a
// correction on that many of its own in their situation, under the fit without it).
func FitIntervals(train, lomo []RowResult, shots map[int][]RowResult, method string) profile.IntervalTable {
	t := profile.IntervalTable{Method: method}
	t.Cells = append(intervalCells(residuals(train, true), calibratedRule), intervalCells(residuals(lomo, false), newModelRule)...)
	for _, k := range slices.Sorted(maps.Keys(shots)) {
		t.Cells = append(t.Cells, intervalCells(shotResiduals(shots[k], k), newModelRule)...)
	}
	seen := map[string]bool{}
	for _, r := range train {
		if r.Row.Err == nil && r.Row.MeasuredTTFTMs > 0 {
			seen[r.Row.Target.Model.ArchKey()] = true
		}
	}
	t.Calibrated = slices.Sorted(maps.Keys(seen))
	return t
}

// shotResiduals are the residuals of predictions corrected by k rows, keyed as corrected cells are.
func shotResiduals(res []RowResult, k int) []residual {
	rs := residuals(res, false)
	for i := range rs {
		rs[i].key = profile.IntervalKey{Backend: rs[i].key.Backend, Mode: rs[i].key.Mode, Shots: k}
	}
	return rs
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

// intervalCells writes a cell per level of every situation with enough rows and models. A mode whose
// rows come from fewer models than the rule asks (every disaggregated row is DeepSeek-R1's) still
// gets a cell at its mode level, from the models it has, at least as wide as the broadest cell: that
// model's errors there show how far off the mode can be, and one model cannot show how models
// differ, which the broadest cell's spread stands for.
func intervalCells(rs []residual, rule cellRule) []profile.IntervalCell {
	by := map[profile.IntervalKey][]residual{}
	for _, r := range rs {
		for _, l := range profile.IntervalLevels(r.key) {
			if l.Shots == r.key.Shots {
				by[l] = append(by[l], r)
			}
		}
	}
	keys := slices.SortedFunc(maps.Keys(by), func(a, b profile.IntervalKey) int {
		return cmp.Or(cmp.Compare(a.Shots, b.Shots), strings.Compare(string(a.Mode), string(b.Mode)),
			strings.Compare(string(a.Method), string(b.Method)), strings.Compare(a.Backend, b.Backend))
	})
	var out []profile.IntervalCell
	for _, k := range keys {
		g := by[k]
		broadest := k.Backend == "" && k.Method == "" && k.Mode == ""
		modeLevel := k.Backend == "" && k.Method == "" && k.Mode != ""
		fewModels := len(modelRows(g)) < rule.minModels
		switch {
		case broadest:
		case len(g) < minCellRows, fewModels && !modeLevel:
			continue
		}
		c := cellOf(k, g, rule)
		if fewModels && modeLevel {
			all := k
			all.Mode = ""
			c = widest(c, cellOf(all, by[all], rule))
		}
		out = append(out, c)
	}
	return out
}

// modelRows counts the residuals of each model group.
func modelRows(g []residual) map[string]int {
	rows := map[string]int{}
	for _, r := range g {
		rows[ModelGroup(r.row)]++
	}
	return rows
}

// cellOf is the cell of key k from its residuals g under rule.
func cellOf(k profile.IntervalKey, g []residual, rule cellRule) profile.IntervalCell {
	rows := modelRows(g)
	q := func(f func(residual) float64) [2]float64 {
		xs := make([]weighted, len(g))
		for i, r := range g {
			xs[i] = weighted{f(r), 1}
			if rule.balanced {
				xs[i].w = 1 / float64(rows[ModelGroup(r.row)])
			}
			if rule.symmetric {
				xs[i].v = math.Abs(xs[i].v)
			}
		}
		if rule.symmetric {
			a := round6(weightedQuantile(xs, 0.8))
			return [2]float64{-a, a}
		}
		return [2]float64{round6(weightedQuantile(xs, 0.1)), round6(weightedQuantile(xs, 0.9))}
	}
	return profile.IntervalCell{Backend: k.Backend, Mode: k.Mode, Method: k.Method, Calibrated: k.Calibrated, Shots: k.Shots,
		Rows: len(g), TTFT: q(func(r residual) float64 { return r.ttft }), ITL: q(func(r residual) float64 { return r.itl }),
		E2E: q(func(r residual) float64 { return r.e2e })}
}

// widest is c with each bound moved out to w's where w's is wider.
func widest(c, w profile.IntervalCell) profile.IntervalCell {
	for _, p := range []struct{ c, w *[2]float64 }{{&c.TTFT, &w.TTFT}, {&c.ITL, &w.ITL}, {&c.E2E, &w.E2E}} {
		p.c[0], p.c[1] = min(p.c[0], p.w[0]), max(p.c[1], p.w[1])
	}
	return c
}

// weighted is a value and its weight in a quantile.
type weighted struct{ v, w float64 }

// weightedQuantile is the q-quantile of the values (at least one), each counting its weight: each
// sorted value sits at the cumulative weight before it, and the quantile is linear between
// neighbours, so equal weights give quantile's answer.
func weightedQuantile(xs []weighted, q float64) float64 {
	s := slices.SortedFunc(slices.Values(xs), func(a, b weighted) int { return cmp.Compare(a.v, b.v) })
	var c float64
	pos := make([]float64, len(s))
	for i, x := range s {
		pos[i] = c
		c += x.w
	}
	first, last := pos[0], pos[len(s)-1]
	at := first + q*(last-first)
	for i := 1; i < len(s); i++ {
		if pos[i] >= at {
			if pos[i] == pos[i-1] {
				return s[i].v
			}
			f := (at - pos[i-1]) / (pos[i] - pos[i-1])
			return s[i-1].v*(1-f) + s[i].v*f
		}
	}
	return s[len(s)-1].v
}

// round6 keeps the committed table readable; six decimals of a log error are far below its noise.
func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// CoverageLine is how often the measured values of one group of rows fell inside their p10–p90
// intervals, and how wide those were.
type CoverageLine struct {
	Backend, Mode string
	// Shots is the rows behind the corrections of the predictions checked (CorrectedCoverage); 0 when
	// uncorrected.
	Shots int
	Rows  int
	// TTFT, ITL and E2E are the fractions of rows inside the interval (nominal 0.8); E2E is a
	// request's whole latency, which the throughput interval is derived from.
	TTFT, ITL, E2E float64
	// TTFTWidth and ITLWidth are the median of (p90 − p10)/prediction.
	TTFTWidth, ITLWidth float64
}

// Nested is one model's nested leave-one-out run (NestedCrossValidate): the other models' rows, each
// predicted by a fit that saw neither it nor the model, and those fits (by ModelGroup).
type Nested struct {
	Res  []RowResult
	Fits map[string]profile.Calib
}

// NestedCrossValidate prepares the coverage checks: for each model group g, CrossValidateFits on the
// other groups' rows alone, so each other model h is predicted by a fit that saw neither g nor h.
// Intervals fitted on those residuals owe nothing to g's rows, not even through the fits that made them.
func NestedCrossValidate(rows []*profile.ServingRow, start profile.Calib, maxEvals int) map[string]Nested {
	out := map[string]Nested{}
	for _, g := range modelGroups(rows) {
		var others []*profile.ServingRow
		for _, r := range rows {
			if ModelGroup(r) != g {
				others = append(others, r)
			}
		}
		res, fits := CrossValidateFits(others, start, maxEvals)
		out[g] = Nested{Res: res, Fits: fits}
	}
	return out
}

func modelGroups(rows []*profile.ServingRow) []string {
	seen := map[string]bool{}
	for _, r := range rows {
		seen[ModelGroup(r)] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// IntervalCoverage checks the new-model intervals left one model out: each model's
// leave-one-model-out predictions (lomo, from CrossValidate) get intervals fitted as make calibrate
// fits them, on nested[model].Res — the other models' residuals under fits that never saw the model
// — and the measured values are checked against them. scale multiplies the fitted log quantiles (1:
// as fitted; the tests check that narrower intervals fail the bounds).
func IntervalCoverage(lomo []RowResult, nested map[string]Nested, scale float64) []CoverageLine {
	return leftOutCoverage(residuals(lomo, false), byModel, func(g string) []residual { return residuals(nested[g].Res, false) }, scale)
}

// GPUCoverage checks the new-model intervals of mode's rows left one GPU out, where leaving a model
// out cannot (every disaggregated row is one model's, so left out it has no other model's to learn
// from): each GPU's rows of mode, predicted left one model out (lomo), get intervals fitted as make
// calibrate fits them on the residuals of every row not on that GPU.
func GPUCoverage(lomo []RowResult, mode profile.Mode, scale float64) []CoverageLine {
	return gpuCoverage(residuals(lomo, false), mode, scale)
}

// CorrectedGPUCoverage is GPUCoverage of the corrected intervals (Shots k): each GPU's rows of mode
// left after corrections on k rows of their situation (FewShotHeldOut under the leave-one-out fits),
// with the corrected cells fitted on the corrected rows not on that GPU.
func CorrectedGPUCoverage(rows []*profile.ServingRow, fits map[string]profile.Calib, k int, mode profile.Mode, scale float64) []CoverageLine {
	return withShots(gpuCoverage(shotResiduals(FewShotHeldOut(rows, fits, k, Situation), k), mode, scale), k)
}

func gpuCoverage(all []residual, mode profile.Mode, scale float64) []CoverageLine {
	var test []residual
	for _, r := range all {
		if r.key.Mode == mode {
			test = append(test, r)
		}
	}
	gpu := func(r residual) string { return r.row.Target.GPU.Name }
	return leftOutCoverage(test, gpu, func(g string) []residual {
		var train []residual
		for _, r := range all {
			if gpu(r) != g {
				train = append(train, r)
			}
		}
		return train
	}, scale)
}

// CorrectedCoverage checks the corrected intervals (Shots k) left one model out: each model's rows
// left after a correction on k of them in their situation (FewShotHeldOut under its leave-one-out fit
// from fits) get the corrected cells fitted on the other models' corrected rows under the nested fits.
func CorrectedCoverage(rows []*profile.ServingRow, fits map[string]profile.Calib, nested map[string]Nested, k int, scale float64) []CoverageLine {
	test := shotResiduals(FewShotHeldOut(rows, fits, k, Situation), k)
	return withShots(leftOutCoverage(test, byModel, func(g string) []residual {
		return shotResiduals(FewShotHeldOut(rows, nested[g].Fits, k, Situation), k)
	}, scale), k)
}

// withShots marks coverage lines as those of corrections on k rows.
func withShots(lines []CoverageLine, k int) []CoverageLine {
	for i := range lines {
		lines[i].Shots = k
	}
	return lines
}

func byModel(r residual) string { return ModelGroup(r.row) }

// leftOutCoverage checks test's residuals unit by unit against the new-model cells fitted on
// train(unit), residuals that never saw that unit, and sums the hits per backend and mode.
func leftOutCoverage(test []residual, unit func(residual) string, train func(string) []residual, scale float64) []CoverageLine {
	byUnit := map[string][]residual{}
	for _, r := range test {
		byUnit[unit(r)] = append(byUnit[unit(r)], r)
	}
	type hit struct {
		t, i, e bool
		wt, wi  float64
	}
	groups := map[[2]string][]hit{}
	for _, u := range slices.Sorted(maps.Keys(byUnit)) {
		table := profile.IntervalTable{Cells: intervalCells(train(u), newModelRule)}
		for _, r := range byUnit[u] {
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
			for _, k := range [][2]string{{r.row.Target.Backend, m}, {"all", m}, {"all", "all"}} {
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
