package profile

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/dgdr-dev/dgdr/pkg/hw"
)

// Fitting the calibration (see Calib for the method). Used by internal/tools/fit (which writes the
// embedded tables/calib.json) and internal/tools/accuracy (which refits with each model left out).

// fitParam is one fitted field of backendCalib, optimised in log space within [lo, hi].
type fitParam struct {
	name   string
	lo, hi float64
	get    func(*backendCalib) *float64
	// global: one value for every backend (the physics of kernels and interconnect); otherwise each
	// backend has its own (engine overheads, how its scheduler lets prompts queue).
	global bool
	disagg bool // only disaggregated rows inform it
	moe    bool // only MoE rows inform it
	mla    bool // only MLA rows inform it
}

var fitParams = []fitParam{
	{"decodeScale", 0.4, 3, func(c *backendCalib) *float64 { return &c.DecodeScale }, true, false, false, false},
	{"prefillScale", 0.4, 3, func(c *backendCalib) *float64 { return &c.PrefillScale }, true, false, false, false},
	{"rooflineScale", 0.5, 2, func(c *backendCalib) *float64 { return &c.RooflineScale }, true, false, false, false},
	{"moeScale", 0.3, 3, func(c *backendCalib) *float64 { return &c.MoEScale }, true, false, true, false},
	{"mlaScale", 0.3, 5, func(c *backendCalib) *float64 { return &c.MLAScale }, true, false, false, true},
	{"collectiveUs", 0.1, 200, func(c *backendCalib) *float64 { return &c.CollectiveUs }, true, false, false, false},
	{"commScale", 0.3, 10, func(c *backendCalib) *float64 { return &c.CommScale }, true, false, false, false},
	{"kvTransferScale", 0.1, 20, func(c *backendCalib) *float64 { return &c.KVTransferScale }, true, true, false, false},
	{"prefillShare", 0.05, 4, func(c *backendCalib) *float64 { return &c.PrefillShare }, true, true, false, false},
	{"mtpAccept", 1, 4, func(c *backendCalib) *float64 { return &c.MTPAccept }, false, true, false, false},
	{"stepMs", 0.05, 20, func(c *backendCalib) *float64 { return &c.StepMs }, false, false, false, false},
	{"layerUs", 0.1, 200, func(c *backendCalib) *float64 { return &c.LayerUs }, false, false, false, false},
	{"seqUs", 0.1, 500, func(c *backendCalib) *float64 { return &c.SeqUs }, false, false, false, false},
	{"prefillKernelUs", 0.5, 500, func(c *backendCalib) *float64 { return &c.PrefillKernelUs }, false, false, false, false},
	{"seqLayerUs", 0.001, 5, func(c *backendCalib) *float64 { return &c.SeqLayerUs }, false, false, false, false},
	{"prefillReqMs", 0.1, 200, func(c *backendCalib) *float64 { return &c.PrefillReqMs }, false, false, false, false},
	{"burst", 0.01, 3, func(c *backendCalib) *float64 { return &c.Burst }, false, false, false, false},
}

// regularisation pulls each parameter toward its prior (λ per squared log-ratio), so that constants
// the rows barely inform stay physical instead of absorbing noise.
const regularisation = 0.02

// RowResult is one row's prediction (or why none).
type RowResult struct {
	Row  *ServingRow
	Pred Prediction
	Err  error
}

// AbsErr returns the absolute relative errors of TTFT and ITL (NaN when not predicted or not measured).
func (r RowResult) AbsErr() (ttft, itl float64) {
	if r.Err != nil || r.Row.MeasuredTTFTMs <= 0 || r.Row.MeasuredITLMs <= 0 {
		return math.NaN(), math.NaN()
	}
	return math.Abs(r.Pred.TTFTMs/r.Row.MeasuredTTFTMs - 1), math.Abs(r.Pred.ITLMs/r.Row.MeasuredITLMs - 1)
}

// Evaluator predicts a fixed set of rows under changing calibrations, reusing its predictors.
type Evaluator struct {
	rows   []*ServingRow
	preds  []*Predictor
	errs   []error
	groups []string // ModelGroup/mode of each row, for the loss
	// twin holds copies of the predictors so that the loss can run on two goroutines.
	twin []*Predictor
}

// NewEvaluator prepares rows (their Err, unknown backends and unbuildable targets are kept as errors).
func NewEvaluator(rows []*ServingRow) *Evaluator {
	ev := &Evaluator{rows: rows, preds: make([]*Predictor, len(rows)), errs: make([]error, len(rows)), groups: make([]string, len(rows))}
	cache := map[string]*Predictor{}
	for i, r := range rows {
		ev.groups[i] = ModelGroup(r) + "/" + string(r.Config.Mode)
		if r.Err != nil {
			ev.errs[i] = r.Err
			continue
		}
		t := r.Target
		key := t.key()
		if p, ok := cache[key]; ok {
			ev.preds[i] = p
			continue
		}
		p, err := NewPredictor(t)
		if err != nil {
			ev.errs[i] = err
			continue
		}
		cache[key] = p
		ev.preds[i] = p
	}
	copies := map[*Predictor]*Predictor{}
	ev.twin = make([]*Predictor, len(rows))
	for i, p := range ev.preds {
		if p == nil {
			continue
		}
		if copies[p] == nil {
			c := *p
			copies[p] = &c
		}
		ev.twin[i] = copies[p]
	}
	return ev
}

// Run predicts every row under c.
func (ev *Evaluator) Run(c Calib) []RowResult {
	out := make([]RowResult, len(ev.rows))
	for i, r := range ev.rows {
		out[i] = ev.one(i, c)
		out[i].Row = r
	}
	return out
}

func (ev *Evaluator) one(i int, c Calib) RowResult {
	return ev.oneWith(ev.preds, i, c)
}

func (ev *Evaluator) oneWith(preds []*Predictor, i int, c Calib) RowResult {
	if ev.errs[i] != nil {
		return RowResult{Err: ev.errs[i]}
	}
	p := preds[i]
	bc, ok := c.Backends[p.t.Backend]
	if !ok {
		return RowResult{Err: fmt.Errorf("calibration lacks backend %q", p.t.Backend)}
	}
	p.cal = bc
	p.glue = c.GlueUsPerLayer / 1000
	pred, err := predictRow(p, ev.rows[i])
	return RowResult{Pred: pred, Err: err}
}

// loss is the absolute log error of TTFT and ITL averaged per model group and mode, then over the
// groups weighted by √rows, so that the model with the most rows does not decide alone the constants
// every model shares.
func (ev *Evaluator) loss(c Calib, idx []int) float64 {
	type acc struct {
		s float64
		n int
	}
	// Two goroutines, each with its own predictors (Evaluator.twin), over alternate rows.
	var parts [2]map[string]*acc
	var wg sync.WaitGroup
	for h := range parts {
		parts[h] = map[string]*acc{}
		preds := ev.preds
		if h == 1 {
			preds = ev.twin
		}
		wg.Go(func() {
			for j := h; j < len(idx); j += 2 {
				i := idx[j]
				res := ev.oneWith(preds, i, c)
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
	keys := mapsKeys(groups)
	slices.Sort(keys)
	var s, w float64
	for _, k := range keys {
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

// FitCalibration fits the calibration on the rows with measurements, starting from start (whose values
// are also the priors of the regularisation). It alternates two rounds of: the global parameters on
// all aggregated rows, each backend's parameters on its aggregated rows, then the disaggregation
// parameters on the disaggregated rows. Parameters no row informs (disaggregation, MoE or MLA ones
// without such rows) keep start's values.
func FitCalibration(ev *Evaluator, start Calib, maxEvals int) Calib {
	out := start
	out.Backends = map[string]backendCalib{}
	for k, v := range start.Backends {
		out.Backends[k] = v
	}
	names := mapsKeys(start.Backends)
	slices.Sort(names)
	// Kernel physics and engine overheads are fitted on aggregated rows only: the disaggregated rows
	// give neither worker counts nor speculative-decoding settings, so they inform only the
	// disaggregation parameters (KV transfer, prefill provisioning).
	var agg, disagg []int
	byBackend, disByBackend := map[string][]int{}, map[string][]int{}
	hasMoE, hasMLA := false, false
	for i, r := range ev.rows {
		if ev.errs[i] != nil || r.MeasuredTTFTMs <= 0 {
			continue
		}
		if _, ok := start.Backends[r.Target.Backend]; !ok {
			continue
		}
		if r.Config.Mode == ModeDisagg {
			disagg = append(disagg, i)
			disByBackend[r.Target.Backend] = append(disByBackend[r.Target.Backend], i)
			continue
		}
		agg = append(agg, i)
		byBackend[r.Target.Backend] = append(byBackend[r.Target.Backend], i)
		hasMoE = hasMoE || r.Target.Model.Experts > 0
		hasMLA = hasMLA || r.Target.Model.KVLoraRank > 0
	}
	var global, local, dis, disLocal []fitParam
	for _, fp := range fitParams {
		switch {
		case fp.disagg && fp.global:
			if len(disagg) > 0 {
				dis = append(dis, fp)
			}
		case fp.disagg:
			disLocal = append(disLocal, fp)
		case (fp.moe && !hasMoE) || (fp.mla && !hasMLA):
		case fp.global:
			global = append(global, fp)
		default:
			local = append(local, fp)
		}
	}
	prior := func(params []fitParam, b string) []float64 {
		bc := start.Backends[b]
		x := make([]float64, len(params))
		for j, fp := range params {
			x[j] = math.Log(math.Min(math.Max(*fp.get(&bc), fp.lo), fp.hi))
		}
		return x
	}
	apply := func(c Calib, params []fitParam, x []float64, backends []string) Calib {
		c.Backends = maps.Clone(c.Backends)
		for _, b := range backends {
			bc := c.Backends[b]
			for j, fp := range params {
				*fp.get(&bc) = math.Exp(math.Min(math.Max(x[j], math.Log(fp.lo)), math.Log(fp.hi)))
			}
			c.Backends[b] = bc
		}
		return c
	}
	current := func(params []fitParam, b string) []float64 {
		bc := out.Backends[b]
		x := make([]float64, len(params))
		for j, fp := range params {
			x[j] = math.Log(*fp.get(&bc))
		}
		return x
	}
	objective := func(params []fitParam, backends []string, idx []int, x0prior []float64) func([]float64) float64 {
		return func(x []float64) float64 {
			var reg float64
			for j := range x {
				d := x[j] - x0prior[j]
				reg += d * d
			}
			return ev.loss(apply(out, params, x, backends), idx) + regularisation*reg
		}
	}
	per := max(maxEvals/4, 20)
	for round := 0; round < 2; round++ {
		step := 0.5 / float64(round+1)
		if len(global) > 0 && len(agg) > 0 {
			x := nelderMead(objective(global, names, agg, prior(global, names[0])), current(global, names[0]), step, per)
			out = apply(out, global, x, names)
		}
		for _, b := range names {
			if len(byBackend[b]) == 0 {
				continue
			}
			x := nelderMead(objective(local, []string{b}, byBackend[b], prior(local, b)), current(local, b), step, per)
			out = apply(out, local, x, []string{b})
		}
		if len(dis) > 0 {
			x := nelderMead(objective(dis, names, disagg, prior(dis, names[0])), current(dis, names[0]), step, per/2)
			out = apply(out, dis, x, names)
		}
		for _, b := range names {
			if len(disLocal) == 0 || len(disByBackend[b]) == 0 {
				continue
			}
			x := nelderMead(objective(disLocal, []string{b}, disByBackend[b], prior(disLocal, b)), current(disLocal, b), step, per/4)
			out = apply(out, disLocal, x, []string{b})
		}
	}
	return out
}

func mapsKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// nelderMead minimises f from x0 with an initial simplex of size step, within maxEvals evaluations.
func nelderMead(f func([]float64) float64, x0 []float64, step float64, maxEvals int) []float64 {
	n := len(x0)
	pts := make([][]float64, n+1)
	vals := make([]float64, n+1)
	for i := range pts {
		pts[i] = slices.Clone(x0)
		if i > 0 {
			pts[i][i-1] += step
		}
		vals[i] = f(pts[i])
	}
	evals := n + 1
	order := make([]int, n+1)
	for evals < maxEvals {
		for i := range order {
			order[i] = i
		}
		sort.Slice(order, func(a, b int) bool { return vals[order[a]] < vals[order[b]] })
		bestI, worst, second := order[0], order[n], order[n-1]
		if math.Abs(vals[worst]-vals[bestI]) < 1e-6 {
			break
		}
		cent := make([]float64, n)
		for _, i := range order[:n] {
			for j := range cent {
				cent[j] += pts[i][j] / float64(n)
			}
		}
		at := func(t float64) []float64 {
			p := make([]float64, n)
			for j := range p {
				p[j] = cent[j] + t*(pts[worst][j]-cent[j])
			}
			return p
		}
		xr := at(-1)
		fr := f(xr)
		evals++
		switch {
		case fr < vals[bestI]:
			xe := at(-2)
			fe := f(xe)
			evals++
			if fe < fr {
				pts[worst], vals[worst] = xe, fe
			} else {
				pts[worst], vals[worst] = xr, fr
			}
		case fr < vals[second]:
			pts[worst], vals[worst] = xr, fr
		default:
			xc := at(0.5)
			fc := f(xc)
			evals++
			if fc < vals[worst] {
				pts[worst], vals[worst] = xc, fc
			} else {
				for _, i := range order[1:] {
					for j := range pts[i] {
						pts[i][j] = pts[bestI][j] + 0.5*(pts[i][j]-pts[bestI][j])
					}
					vals[i] = f(pts[i])
					evals++
				}
			}
		}
	}
	bestI := 0
	for i := range vals {
		if vals[i] < vals[bestI] {
			bestI = i
		}
	}
	return pts[bestI]
}

// DecodeStepPoint is one measured whole-model decode step (gpu-data's e2e table).
type DecodeStepPoint struct {
	Batch, KV int
	Ms        float64
}

// E2EModel is the Llama-3.1-8B-shaped decoder of testdata/gpu-data's e2e table (its README gives the
// shape: 32 layers, hidden 4096, 32 query / 8 KV heads, FFN 14336, vocab 128256, bf16).
var E2EModel = Model{ID: "e2e-llama3.1-8b", Arch: ArchDense, Layers: 32, Hidden: 4096, Heads: 32, KVHeads: 8,
	HeadDim: 128, FFN: 14336, Vocab: 128256, Dtype: "bf16"}

// ComposedDecodeMs is the composed GPU time of one decode step of m on g (TP 1) with the given glue.
func ComposedDecodeMs(m Model, g hw.GPU, glueUs float64, batch, kv int) (float64, error) {
	return composedStepMs(m, g, glueUs, kv, batchLoad{decodeSeqs: float64(batch), decodeKV: float64(kv)})
}

// ComposedPrefillMs is the composed GPU time of prefilling one prompt of isl tokens (TP 1).
func ComposedPrefillMs(m Model, g hw.GPU, glueUs float64, isl int) (float64, error) {
	return composedStepMs(m, g, glueUs, isl, batchLoad{prefillTokens: float64(isl), prefillSeqs: 1})
}

// composedStepMs is one step's composed GPU time on one GPU (TP 1), with a workload of isl tokens.
func composedStepMs(m Model, g hw.GPU, glueUs float64, isl int, b batchLoad) (float64, error) {
	p, err := NewPredictor(Target{Model: m, GPU: g, Backend: BackendVLLM, Workload: Workload{ISL: isl, OSL: 1}})
	if err != nil {
		return 0, err
	}
	p.glue = glueUs / 1000
	s, err := p.shard(Worker{TP: 1, PP: 1, DP: 1, EP: 1})
	if err != nil {
		return 0, err
	}
	return p.stepMs(&s, b), nil
}

// FitGlue picks the per-layer glue (µs) that makes the composed decode steps of E2EModel on g match
// the measured points in least squares (relative), by golden-section search on [−30, 50] µs. It comes
// out negative when the isolated kernel timings carry per-launch costs that a CUDA-graph step hides.
func FitGlue(g hw.GPU, pts []DecodeStepPoint) (float64, error) {
	if len(pts) == 0 {
		return 0, fmt.Errorf("no decode step points to fit the glue on")
	}
	var ferr error
	loss := func(glue float64) float64 {
		var s float64
		for _, pt := range pts {
			ms, err := ComposedDecodeMs(E2EModel, g, glue, pt.Batch, pt.KV)
			if err != nil {
				ferr = err
				return math.Inf(1)
			}
			d := ms/pt.Ms - 1
			s += d * d
		}
		return s
	}
	lo, hi := -30.0, 50.0
	phi := (math.Sqrt(5) - 1) / 2
	for i := 0; i < 60; i++ {
		a, b := hi-phi*(hi-lo), lo+phi*(hi-lo)
		if loss(a) < loss(b) {
			hi = b
		} else {
			lo = a
		}
	}
	return math.Round((lo+hi)/2*100) / 100, ferr
}
