package profile

import (
	"cmp"
	"fmt"
	"math"

	"github.com/dgdr-dev/dgdr/pkg/dist"
)

// mixSlices are the probability-mass slices of a length distribution that the search predicts
// separately: the body, the shoulder and the tail. Each is represented by its own mean lengths and
// weighted by its mass, so the mix keeps the distribution's mean exactly and the tail's cost is seen.
var mixSlices = []float64{0, 0.5, 0.9, 1}

// mixPredictor predicts a configuration under a workload that is a distribution of lengths. With a
// single length it is its base Predictor and nothing more.
//
// The inputs and outputs of a request are taken as comonotone (a long prompt comes with a long answer:
// the frontend's metrics give only the two marginals, and this is the costlier assumption for memory).
// Each mass slice is predicted as if all traffic were of its mean lengths, and the predictions mix:
//   - throughput: each request of a slice takes 1/rate of the capacity, so requests/s is the
//     mass-weighted harmonic mean and tokens/s/GPU the output-token-weighted harmonic mean;
//   - ITL: the output-token-weighted mean (the mean gap between the tokens served);
//   - TTFT: the mean queueing of the mix plus the prefill of a request at the SLA quantile of the
//     input lengths: TTFT = Σ w·TTFT_k − Σ w·prefill_k + prefill(ISL at SLAQuantile).
//
// So the SLA is checked for the request at that quantile, and the ranking uses the whole mix.
type mixPredictor struct {
	*Predictor // the mean lengths: KV capacity, prefill chunks, bands
	points     []*Predictor
	weights    []float64
	outputs    []float64  // OSL of each point
	sla        *Predictor // a request at the SLA quantile's input length
	longest    *Predictor // the longest request, which must fit alone
}

// hasDist says whether w gives either length as a distribution.
func (w Workload) hasDist() bool { return len(w.ISLDist) > 0 || len(w.OSLDist) > 0 }

// lengths are w's input and output length distributions (a point for a single length).
func (w Workload) lengths() (isl, osl dist.Quantiles) {
	isl, osl = w.ISLDist, w.OSLDist
	if len(isl) == 0 {
		isl = dist.Point(float64(w.ISL))
	}
	if len(osl) == 0 {
		osl = dist.Point(float64(w.OSL))
	}
	return isl, osl
}

// normWorkload checks w's distributions and sets ISL and OSL to their means.
func normWorkload(w Workload) (Workload, error) {
	for _, d := range []struct {
		name string
		q    dist.Quantiles
		v    *int
	}{{"isl", w.ISLDist, &w.ISL}, {"osl", w.OSLDist, &w.OSL}} {
		if len(d.q) == 0 {
			continue
		}
		if err := d.q.Check(); err != nil {
			return w, fmt.Errorf("workload %s distribution: %w", d.name, err)
		}
		*d.v = tokens(d.q.Mean())
	}
	// Every request alike is the single length, predicted as such.
	if q := w.ISLDist; len(q) > 0 && q.Quantile(0) == q.Quantile(1) {
		w.ISLDist = nil
	}
	if q := w.OSLDist; len(q) > 0 && q.Quantile(0) == q.Quantile(1) {
		w.OSLDist = nil
	}
	if w.ISL < 1 || w.OSL < 1 {
		return w, fmt.Errorf("workload isl and osl must be at least 1, got %d and %d", w.ISL, w.OSL)
	}
	if q := w.SLAQuantile; q != 0 && !(q > 0 && q < 1) {
		return w, fmt.Errorf("workload sla quantile must be strictly between 0 and 1, got %v", q)
	}
	if w.hasDist() {
		w.SLAQuantile = cmp.Or(w.SLAQuantile, DefaultSLAQuantile)
	}
	return w, nil
}

// tokens rounds a length to whole tokens, at least one.
func tokens(v float64) int { return max(int(math.Round(v)), 1) }

// newMixPredictor builds the predictors of t's workload (normalised by normWorkload), each under cal
// when it is set.
func newMixPredictor(t Target, cal *Calib) (*mixPredictor, error) {
	mk := func(t Target) (*Predictor, error) {
		p, err := NewPredictor(t)
		if err != nil || cal == nil {
			return p, err
		}
		return p.WithCalibration(*cal)
	}
	base, err := mk(t)
	if err != nil {
		return nil, err
	}
	m := &mixPredictor{Predictor: base}
	if !t.Workload.hasDist() {
		return m, nil
	}
	at := func(isl, osl float64) (*Predictor, error) {
		pt := t
		pt.Workload = Workload{ISL: tokens(isl), OSL: tokens(osl)}
		return mk(pt)
	}
	isl, osl := t.Workload.lengths()
	for i := 1; i < len(mixSlices); i++ {
		a, b := mixSlices[i-1], mixSlices[i]
		o := osl.MeanBetween(a, b)
		p, err := at(isl.MeanBetween(a, b), o)
		if err != nil {
			return nil, err
		}
		m.points = append(m.points, p)
		m.weights = append(m.weights, b-a)
		m.outputs = append(m.outputs, float64(tokens(o)))
	}
	if m.sla, err = at(isl.Quantile(t.Workload.SLAQuantile), float64(t.Workload.OSL)); err != nil {
		return nil, err
	}
	if m.longest, err = at(isl.Quantile(1), osl.Quantile(1)); err != nil {
		return nil, err
	}
	return m, nil
}

// Fit says whether w fits: the mean lengths' capacity, and the longest request alone.
func (m *mixPredictor) Fit(w Worker) error {
	if m.longest != nil {
		if err := m.longest.Fit(w); err != nil {
			return err
		}
	}
	return m.Predictor.Fit(w)
}

// MaxBatch is the batch the mean lengths' KV cache holds; a FitError when the longest request does not fit.
func (m *mixPredictor) MaxBatch(w Worker) (int, error) {
	if m.longest != nil {
		if err := m.longest.Fit(w); err != nil {
			return 0, err
		}
	}
	return m.Predictor.MaxBatch(w)
}

// Predict predicts c under concurrency for the whole distribution (see mixPredictor).
func (m *mixPredictor) Predict(c Config, concurrency int) (Prediction, error) {
	if len(m.points) == 0 {
		return m.Predictor.Predict(c, concurrency)
	}
	var out Prediction
	var invRate, tokensW, invTPG, itlW, ttft, prefill, step float64
	for i, p := range m.points {
		pr, err := p.Predict(c, concurrency)
		if err != nil {
			return Prediction{}, err
		}
		w, o := m.weights[i], m.outputs[i]
		if !(pr.RequestsPerSecond > 0) || !(pr.TokensPerSecondPerGPU > 0) {
			return Prediction{}, fmt.Errorf("prediction at %d/%d tokens serves nothing", p.t.Workload.ISL, p.t.Workload.OSL)
		}
		invRate += w / pr.RequestsPerSecond
		tokensW += w * o
		invTPG += w * o / pr.TokensPerSecondPerGPU
		itlW += w * o * pr.ITLMs
		ttft += w * pr.TTFTMs
		prefill += w * pr.PrefillMs
		step += w * pr.DecodeStepMs
		if i == 0 {
			out = pr
		}
		out.MemoryGiB = max(out.MemoryGiB, pr.MemoryGiB)
		out.BatchLimited = out.BatchLimited || pr.BatchLimited
	}
	own, err := m.sla.Predict(c, concurrency)
	if err != nil {
		return Prediction{}, err
	}
	out.RequestsPerSecond = 1 / invRate
	out.TokensPerSecondPerGPU = tokensW / invTPG
	out.ITLMs = itlW / tokensW
	out.TokensPerSecondPerUser = 1000 / out.ITLMs
	out.PrefillMs, out.DecodeStepMs = own.PrefillMs, step
	out.TTFTMs = max(ttft-prefill+own.PrefillMs, own.PrefillMs)
	out.Bands = Bands{}
	if cell, ok := m.bands[cmp.Or(c.Mode, ModeAgg)]; ok {
		out.Bands = cell.Bands(out)
	}
	return out, nil
}
