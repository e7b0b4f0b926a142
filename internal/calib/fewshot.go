package calib

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// FewShotRows picks k of a model's rows by a fixed rule that never looks at the error: the rows
// that can be predicted and have a measurement, ordered by mode, backend, system, concurrency and
// line, then the k at evenly spaced positions (the middle of each of k equal slices), which spreads
// them over the campaigns and their concurrencies. It returns the chosen rows and the rest.
func FewShotRows(rows []*profile.ServingRow, k int) (chosen, rest []*profile.ServingRow) {
	usable := slices.DeleteFunc(slices.Clone(rows), func(r *profile.ServingRow) bool { return !choosable(r) })
	slices.SortStableFunc(usable, func(a, b *profile.ServingRow) int {
		return cmp.Or(strings.Compare(string(a.Config.Mode), string(b.Config.Mode)), strings.Compare(a.Target.Backend, b.Target.Backend),
			strings.Compare(a.Fields["system"], b.Fields["system"]), cmp.Compare(a.Concurrency, b.Concurrency), cmp.Compare(a.Line, b.Line))
	})
	k = min(k, len(usable))
	pick := map[int]bool{}
	for j := range k {
		pick[int((float64(j)+0.5)*float64(len(usable))/float64(k))] = true
	}
	for i, r := range usable {
		if pick[i] {
			chosen = append(chosen, r)
		} else {
			rest = append(rest, r)
		}
	}
	return chosen, rest
}

// correctionPrior is the weight, in rows, of the prior that a correction factor is 1 (the fit as it
// is): one row moves a factor half-way to its own residual, five rows five sixths.
const correctionPrior = 1.0

// FitCorrections fits the corrections of the rows' predictions (res: the measured rows predicted under
// the calibration the corrections will amend), one per architecture, weight precision, GPU, backend
// and mode measured. The factors are geometric means of measured/predicted shrunk toward 1 (the
// calibration as it is): the model's ln m = Σ ln(measured/predicted) / (n + 1) over all its rows of
// that architecture and precision, and each cell's ln f = ln m + Σ (ln(measured/predicted) − ln m) /
// (n_cell + 1) (correctionPrior). Rows without a prediction or a measurement are skipped.
func FitCorrections(res []RowResult) []profile.Correction {
	type sums struct {
		t, i float64
		n    int
	}
	model := func(c profile.Correction) profile.Correction { return profile.Correction{Arch: c.Arch, Dtype: c.Dtype} }
	models := map[profile.Correction]*sums{}
	cells := map[profile.Correction]*sums{}
	add := func(m map[profile.Correction]*sums, k profile.Correction, t, i float64) {
		if m[k] == nil {
			m[k] = &sums{}
		}
		m[k].t, m[k].i, m[k].n = m[k].t+t, m[k].i+i, m[k].n+1
	}
	shrunk := func(s *sums) (float64, float64) {
		return s.t / (float64(s.n) + correctionPrior), s.i / (float64(s.n) + correctionPrior)
	}
	var used []residual
	for _, r := range res {
		if rr, ok := residualOf(r, false); ok {
			used = append(used, rr)
			add(models, model(correctionKey(r)), rr.ttft, rr.itl)
		}
	}
	for _, rr := range used {
		k := correctionKey(RowResult{Row: rr.row, Pred: rr.pred})
		mt, mi := shrunk(models[model(k)])
		add(cells, k, rr.ttft-mt, rr.itl-mi)
	}
	var out []profile.Correction
	for _, k := range slices.SortedFunc(maps.Keys(cells), func(x, y profile.Correction) int {
		return cmp.Or(strings.Compare(x.Arch, y.Arch), strings.Compare(x.Dtype, y.Dtype), strings.Compare(x.GPU, y.GPU),
			strings.Compare(x.Backend, y.Backend), strings.Compare(string(x.Mode), string(y.Mode)))
	}) {
		mt, mi := shrunk(models[model(k)])
		dt, di := shrunk(cells[k])
		k.TTFT, k.ITL, k.Rows = round6(math.Exp(mt+dt)), round6(math.Exp(mi+di)), cells[k].n
		out = append(out, k)
	}
	return out
}

// correctionKey is the correction a predicted row belongs to (factors and rows unset).
func correctionKey(r RowResult) profile.Correction {
	t := r.Row.Target
	return profile.Correction{Arch: t.Model.ArchKey(), Dtype: r.Pred.WeightDtype, GPU: t.GPU.Name, Backend: t.Backend, Mode: r.Row.Config.Mode}
}

// Situation is what a correction is keyed on within a model (profile.Correction): weight precision,
// GPU, backend and mode — the rows a cluster's calibration store holds for one kind of deployment.
func Situation(r RowResult) string {
	k := correctionKey(r)
	return k.Dtype + "/" + k.GPU + "/" + k.Backend + "/" + string(k.Mode)
}

// AllRows as a few-shot K corrects on every row of a set and checks the same rows: no correction on K
// rows can do better than the factors fitted on all of them, so it bounds what a few rows can buy.
const AllRows = -1

// minSituationRows is the usable rows a situation needs to take part in a per-situation few-shot:
// twice the largest K, so that every K leaves rows to check.
const minSituationRows = 10

// FewShotHeldOut returns, for every model with a leave-one-out fit in fits, its rows not used for a
// correction, predicted by that fit corrected by FitCorrections on k of its rows (FewShotRows). by
// splits a model's rows into the sets a correction is fitted on: nil, all its rows at once; Situation,
// one set a situation, as a cluster's store is used, each set needing minSituationRows usable rows.
// k = 0 returns every row of the sets, uncorrected; k = AllRows every row, corrected on all of them.
func FewShotHeldOut(rows []*profile.ServingRow, fits map[string]profile.Calib, k int, by func(RowResult) string) []RowResult {
	byModel := map[string][]*profile.ServingRow{}
	for _, r := range rows {
		byModel[ModelGroup(r)] = append(byModel[ModelGroup(r)], r)
	}
	sets := map[[2]string][]*profile.ServingRow{}
	for g, rs := range byModel {
		fit, ok := fits[g]
		if !ok {
			continue
		}
		if by == nil {
			sets[[2]string{g, ""}] = rs
			continue
		}
		// The situation may depend on the prediction (the precision resolved), so the model's rows
		// are predicted once by its fit to be sorted.
		for _, r := range NewEvaluator(rs).Run(fit) {
			key := [2]string{g, by(r)}
			sets[key] = append(sets[key], r.Row)
		}
	}
	var out []RowResult
	for _, key := range slices.SortedFunc(maps.Keys(sets), func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	}) {
		fit := fits[key[0]]
		cal, test := fit, sets[key]
		if by != nil && countFunc(test, choosable) < minSituationRows {
			continue
		}
		switch {
		case k == AllRows:
			cal.Corrections = FitCorrections(NewEvaluator(test).Run(fit))
		case k > 0:
			var chosen []*profile.ServingRow
			chosen, test = FewShotRows(test, k)
			cal.Corrections = FitCorrections(NewEvaluator(chosen).Run(fit))
		}
		out = append(out, NewEvaluator(test).Run(cal)...)
	}
	return out
}

// choosable says whether FewShotRows may choose r: it can be predicted and has a measurement.
func choosable(r *profile.ServingRow) bool {
	return r.Err == nil && r.MeasuredTTFTMs > 0 && r.MeasuredITLMs > 0
}

// FewShotLine is one left-out model's error on its rows not used for the correction: with the fit
// that never saw it (K = 0, on all its rows) and corrected by K of its rows.
type FewShotLine struct {
	Model string // ModelGroup
	Name  string // the first model_path of the group
	Rows  int
	// Ks are the K of each column; TTFT and ITL the median absolute relative error at each K (NaN
	// when the model has too few rows to leave any out).
	Ks        []int
	TTFT, ITL []float64
}

// FewShot measures what a few of a new model's own measurements buy: for each model group, its
// leave-one-model-out fit (fits, from CrossValidateFits) corrected on K of its rows in each set of by
// (FewShotHeldOut) — what kubectl dgdr calibrate does with a cluster's measurements — and the error
// on its remaining rows. K = 0 is the leave-one-out error on all the rows of the sets. The last lines
// pool every model's remaining rows by mode (Model "all:agg", "all:disagg") and all of them ("all").
func FewShot(rows []*profile.ServingRow, fits map[string]profile.Calib, ks []int, by func(RowResult) string) []FewShotLine {
	names := map[string]string{}
	for _, r := range rows {
		if _, ok := names[ModelGroup(r)]; !ok {
			names[ModelGroup(r)] = r.Fields["model_path"]
		}
	}
	ks = append([]int{0}, ks...)
	lines := map[string]*FewShotLine{}
	line := func(g string) *FewShotLine {
		if lines[g] == nil {
			l := &FewShotLine{Model: g, Name: names[g], Ks: ks, TTFT: make([]float64, len(ks)), ITL: make([]float64, len(ks))}
			for i := range ks {
				l.TTFT[i], l.ITL[i] = math.NaN(), math.NaN()
			}
			lines[g] = l
		}
		return lines[g]
	}
	names["all"] = "all rows left"
	pooled := []string{"all:" + string(profile.ModeAgg), "all:" + string(profile.ModeDisagg), "all"}
	names[pooled[0]], names[pooled[1]] = "aggregated rows left", "disaggregated rows left"
	for j, k := range ks {
		errs := map[string][2][]float64{}
		for _, r := range FewShotHeldOut(rows, fits, k, by) {
			if t, i := r.AbsErr(); !math.IsNaN(t) {
				for _, g := range []string{ModelGroup(r.Row), "all:" + string(r.Row.Config.Mode), "all"} {
					e := errs[g]
					errs[g] = [2][]float64{append(e[0], t), append(e[1], i)}
				}
			}
		}
		for g, e := range errs {
			l := line(g)
			if k == 0 {
				l.Rows = len(e[0])
			}
			l.TTFT[j], l.ITL[j] = quantile(e[0], 0.5), quantile(e[1], 0.5)
		}
	}
	var out []FewShotLine
	for _, g := range slices.Sorted(maps.Keys(lines)) {
		if !slices.Contains(pooled, g) {
			out = append(out, *lines[g])
		}
	}
	for _, g := range pooled {
		if lines[g] != nil || g == "all" {
			out = append(out, *line(g))
		}
	}
	return out
}

// countFunc counts the elements of xs for which f holds.
func countFunc[T any](xs []T, f func(T) bool) int {
	n := 0
	for _, x := range xs {
		if f(x) {
			n++
		}
	}
	return n
}
