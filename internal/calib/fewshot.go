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
	var usable []*profile.ServingRow
	for _, r := range rows {
		if r.Err == nil && r.MeasuredTTFTMs > 0 && r.MeasuredITLMs > 0 {
			usable = append(usable, r)
		}
	}
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
// the calibration the corrections will amend), one per architecture, GPU, backend and mode measured.
// The factors are geometric means of measured/predicted shrunk toward 1 (the calibration as it is):
// the architecture's ln m = Σ ln(measured/predicted) / (n + 1) over all its rows, and each cell's
// ln f = ln m + Σ (ln(measured/predicted) − ln m) / (n_cell + 1) (correctionPrior). Rows without a
// prediction or a measurement are skipped.
func FitCorrections(res []RowResult) []profile.Correction {
	type sums struct {
		t, i float64
		n    int
	}
	arch := map[string]*sums{}
	cells := map[profile.Correction]*sums{}
	var used []residual
	for _, r := range res {
		rr, ok := residualOf(r, false)
		if !ok {
			continue
		}
		used = append(used, rr)
		a := r.Row.Target.Model.ArchKey()
		if arch[a] == nil {
			arch[a] = &sums{}
		}
		arch[a].t, arch[a].i, arch[a].n = arch[a].t+rr.ttft, arch[a].i+rr.itl, arch[a].n+1
	}
	shrunk := func(s *sums) (float64, float64) {
		return s.t / (float64(s.n) + correctionPrior), s.i / (float64(s.n) + correctionPrior)
	}
	for _, rr := range used {
		t := rr.row.Target
		k := profile.Correction{Arch: t.Model.ArchKey(), GPU: t.GPU.Name, Backend: t.Backend, Mode: rr.row.Config.Mode}
		mt, mi := shrunk(arch[k.Arch])
		if cells[k] == nil {
			cells[k] = &sums{}
		}
		c := cells[k]
		c.t, c.i, c.n = c.t+rr.ttft-mt, c.i+rr.itl-mi, c.n+1
	}
	var out []profile.Correction
	for _, a := range slices.Sorted(maps.Keys(arch)) {
		mt, mi := shrunk(arch[a])
		keys := slices.SortedFunc(maps.Keys(cells), func(x, y profile.Correction) int {
			return cmp.Or(strings.Compare(x.GPU, y.GPU), strings.Compare(x.Backend, y.Backend), strings.Compare(string(x.Mode), string(y.Mode)))
		})
		for _, k := range keys {
			if k.Arch != a {
				continue
			}
			dt, di := shrunk(cells[k])
			k.TTFT, k.ITL, k.Rows = round6(math.Exp(mt+dt)), round6(math.Exp(mi+di)), cells[k].n
			out = append(out, k)
		}
	}
	return out
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
// leave-one-model-out fit (fits, from CrossValidateFits) corrected by FitCorrections on K of its rows
// (FewShotRows) — what kubectl dgdr calibrate does with a cluster's measurements — and the error on
// its remaining rows. K = 0 is the leave-one-out error on all its rows. The last line, Model "all",
// pools every model's remaining rows.
func FewShot(rows []*profile.ServingRow, fits map[string]profile.Calib, ks []int) []FewShotLine {
	byGroup := map[string][]*profile.ServingRow{}
	for _, r := range rows {
		byGroup[ModelGroup(r)] = append(byGroup[ModelGroup(r)], r)
	}
	ks = append([]int{0}, ks...)
	pooled := make([][2][]float64, len(ks))
	var out []FewShotLine
	for _, g := range slices.Sorted(maps.Keys(byGroup)) {
		fit, ok := fits[g]
		if !ok {
			continue
		}
		l := FewShotLine{Model: g, Name: byGroup[g][0].Fields["model_path"], Ks: ks}
		for j, k := range ks {
			cal := fit
			test := byGroup[g]
			if k > 0 {
				var chosen []*profile.ServingRow
				chosen, test = FewShotRows(byGroup[g], k)
				cal.Corrections = FitCorrections(NewEvaluator(chosen).Run(fit))
			}
			var te, ie []float64
			for _, r := range NewEvaluator(test).Run(cal) {
				if t, i := r.AbsErr(); !math.IsNaN(t) {
					te, ie = append(te, t), append(ie, i)
				}
			}
			if k == 0 {
				l.Rows = len(te)
			}
			l.TTFT, l.ITL = append(l.TTFT, quantile(te, 0.5)), append(l.ITL, quantile(ie, 0.5))
			pooled[j][0], pooled[j][1] = append(pooled[j][0], te...), append(pooled[j][1], ie...)
		}
		out = append(out, l)
	}
	all := FewShotLine{Model: "all", Name: "all rows left", Rows: len(pooled[0][0]), Ks: ks}
	for _, p := range pooled {
		all.TTFT, all.ITL = append(all.TTFT, quantile(p[0], 0.5)), append(all.ITL, quantile(p[1], 0.5))
	}
	return append(out, all)
}
