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

// FewShotLine is one left-out model's error on its rows not used for the refit: with the fit that
// never saw it (K = 0, on all its rows) and refitted on K of its rows.
type FewShotLine struct {
	Model string // ModelGroup
	Name  string // the first model_path of the group
	Rows  int
	// Ks are the K of each column; TTFT and ITL the median absolute relative error at each K (NaN
	// when the model has too few rows to leave any out).
	Ks        []int
	TTFT, ITL []float64
}

// FewShot measures what a few of a new model's own measurements buy: for each model group, the
// calibration refitted on the other models' rows plus K of its own (FewShotRows), starting from and
// regularised toward its leave-one-model-out fit (fits, from CrossValidateFits), and the error on
// its remaining rows. K = 0 is the leave-one-out error on all its rows. The K rows weigh in the loss
// as any group of K rows does (√K), so they adjust the shared constants rather than replace them:
// refitting on the K rows alone moved every constant to fit a handful of points and made the
// remaining rows worse. The last line, Model "all", pools every model's remaining rows.
func FewShot(rows []*profile.ServingRow, fits map[string]profile.Calib, ks []int, maxEvals int) []FewShotLine {
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
				var train []*profile.ServingRow
				for _, r := range rows {
					if ModelGroup(r) != g {
						train = append(train, r)
					}
				}
				cal = Fit(NewEvaluator(append(train, chosen...)), fit, maxEvals)
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
