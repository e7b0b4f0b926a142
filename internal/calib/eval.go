package calib

import (
	"maps"
	"math"
	"slices"
	"sync"

	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// RowResult is one row's prediction (or why none).
type RowResult struct {
	Row  *profile.ServingRow
	Pred profile.Prediction
	Err  error
}

// AbsErr returns the absolute relative errors of TTFT and ITL (NaN when not predicted or not measured).
func (r RowResult) AbsErr() (ttft, itl float64) {
	if r.Err != nil || r.Row.MeasuredTTFTMs <= 0 || r.Row.MeasuredITLMs <= 0 {
		return math.NaN(), math.NaN()
	}
	return math.Abs(r.Pred.TTFTMs/r.Row.MeasuredTTFTMs - 1), math.Abs(r.Pred.ITLMs/r.Row.MeasuredITLMs - 1)
}

// Evaluator predicts a fixed set of rows under changing calibrations, building each row's predictor
// once. It is safe for concurrent use: a calibration is applied to a copy of the predictor.
type Evaluator struct {
	rows   []*profile.ServingRow
	preds  []*profile.Predictor
	errs   []error
	groups []string // ModelGroup/mode of each row, for the loss
}

// NewEvaluator prepares rows (their Err, unknown backends and unbuildable targets are kept as errors).
func NewEvaluator(rows []*profile.ServingRow) *Evaluator {
	ev := &Evaluator{rows: rows, preds: make([]*profile.Predictor, len(rows)), errs: make([]error, len(rows)), groups: make([]string, len(rows))}
	for i, r := range rows {
		ev.groups[i] = ModelGroup(r) + "/" + string(r.Config.Mode)
		if r.Err != nil {
			ev.errs[i] = r.Err
			continue
		}
		ev.preds[i], ev.errs[i] = profile.NewPredictor(r.Target)
	}
	return ev
}

// Run predicts every row under c.
func (ev *Evaluator) Run(c profile.Calib) []RowResult {
	out := make([]RowResult, len(ev.rows))
	for i, r := range ev.rows {
		out[i] = ev.one(i, c)
		out[i].Row = r
	}
	return out
}

func (ev *Evaluator) one(i int, c profile.Calib) RowResult {
	if ev.errs[i] != nil {
		return RowResult{Err: ev.errs[i]}
	}
	p, err := ev.preds[i].WithCalibration(c)
	if err != nil {
		return RowResult{Err: err}
	}
	pred, err := p.PredictRow(ev.rows[i])
	return RowResult{Pred: pred, Err: err}
}

// loss is the absolute log error of TTFT and ITL averaged per model group and mode, then over the
// groups weighted by √rows, so that the model with the most rows does not decide alone the constants
// every model shares.
func (ev *Evaluator) loss(c profile.Calib, idx []int) float64 {
	type acc struct {
		s float64
		n int
	}
	// Two goroutines over alternate rows, each summing its own groups.
	var parts [2]map[string]*acc
	var wg sync.WaitGroup
	for h := range parts {
		parts[h] = map[string]*acc{}
		wg.Go(func() {
			for j := h; j < len(idx); j += 2 {
				i := idx[j]
				res := ev.one(i, c)
				r := ev.rows[i]
				if res.Err != nil || r.MeasuredTTFTMs <= 0 || r.MeasuredITLMs <= 0 {
					continue
				}
				a := parts[h][ev.groups[i]]
				if a == nil {
					a = &acc{}
					parts[h][ev.groups[i]] = a
				}
				a.s += math.Abs(math.Log(res.Pred.TTFTMs/r.MeasuredTTFTMs)) + math.Abs(math.Log(res.Pred.ITLMs/r.MeasuredITLMs))
				a.n++
			}
		})
	}
	wg.Wait()
	groups := parts[0]
	for k, a := range parts[1] {
		if g := groups[k]; g != nil {
			g.s += a.s
			g.n += a.n
		} else {
			groups[k] = a
		}
	}
	// Each group weighs the square root of its rows: more rows count, but do not drown the others.
	// Summed in key order: the fit must be reproducible to the last bit.
	var s, w float64
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		a := groups[k]
		wg := math.Sqrt(float64(a.n))
		s += wg * a.s / float64(a.n)
		w += wg
	}
	if w == 0 {
		return 0
	}
	return s / w
}

// ModelGroup is the leave-one-out unit: one architecture (re-uploads and quantizations of a model
// are the same model).
func ModelGroup(r *profile.ServingRow) string {
	if r.Err != nil && r.Target.Model.Layers == 0 {
		return "unparsed:" + r.Fields["model_path"]
	}
	return r.Target.Model.ArchKey()
}

// CrossValidate refits the calibration with each model group left out and predicts that group's rows
// with the fit that never saw it. It returns the results in row order.
func CrossValidate(rows []*profile.ServingRow, start profile.Calib, maxEvals int) []RowResult {
	res, _ := CrossValidateFits(rows, start, maxEvals)
	return res
}

// CrossValidateFits is CrossValidate that also returns each left-out group's fit (by ModelGroup).
func CrossValidateFits(rows []*profile.ServingRow, start profile.Calib, maxEvals int) ([]RowResult, map[string]profile.Calib) {
	byGroup := map[string][]int{}
	for i, r := range rows {
		byGroup[ModelGroup(r)] = append(byGroup[ModelGroup(r)], i)
	}
	out := make([]RowResult, len(rows))
	fits := map[string]profile.Calib{}
	for _, g := range slices.Sorted(maps.Keys(byGroup)) {
		var train, test []*profile.ServingRow
		for i, r := range rows {
			if ModelGroup(r) == g {
				test = append(test, rows[i])
			} else {
				train = append(train, rows[i])
			}
		}
		cal := Fit(NewEvaluator(train), start, maxEvals)
		fits[g] = cal
		res := NewEvaluator(test).Run(cal)
		for j, i := range byGroup[g] {
			out[i] = res[j]
		}
	}
	return out, fits
}

// RowPointers returns pointers to the rows (for NewEvaluator and CrossValidate).
func RowPointers(rows []profile.ServingRow) []*profile.ServingRow {
	out := make([]*profile.ServingRow, len(rows))
	for i := range rows {
		out[i] = &rows[i]
	}
	return out
}
