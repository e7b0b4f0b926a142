package thorough

import (
	"math"

	"github.com/dgdr-dev/dgdr/pkg/pareto"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// Correction multiplies predictions: measured ÷ predicted, as a geometric mean shrunk towards the
// other backends' (and those towards 1) while there are few measurements.
type Correction struct {
	TTFT                  float64 `json:"ttft"`
	ITL                   float64 `json:"itl"`
	TokensPerSecondPerGPU float64 `json:"tokensPerSecondPerGPU"`
	// Samples is the measurements of this backend and mode it rests on.
	Samples int `json:"samples"`
}

// shrinkSamples is the weight of the prior in measurements: two measurements weigh as much as it.
const shrinkSamples = 2.0

// FitCorrections re-fits the corrections to every measurement so far, per backend and mode, plus the
// global one under the key "" for backends and modes not measured yet.
func FitCorrections(cands []*Candidate) map[string]Correction {
	type acc struct {
		lt, li, ly float64
		n          int
	}
	sums := map[string]*acc{}
	all := &acc{}
	for _, c := range cands {
		for _, m := range c.Measurements {
			if !usable(m) {
				continue
			}
			a := sums[c.key()]
			if a == nil {
				a = &acc{}
				sums[c.key()] = a
			}
			for _, s := range []*acc{a, all} {
				s.lt += math.Log(m.Measured.TTFTMs / m.Predicted.TTFTMs)
				s.li += math.Log(m.Measured.ITLMs / m.Predicted.ITLMs)
				s.ly += math.Log(m.Measured.TokensPerSecondPerGPU / m.Predicted.TokensPerSecondPerGPU)
				s.n++
			}
		}
	}
	n := float64(all.n)
	global := [3]float64{all.lt / (n + shrinkSamples), all.li / (n + shrinkSamples), all.ly / (n + shrinkSamples)}
	out := map[string]Correction{"": {TTFT: math.Exp(global[0]), ITL: math.Exp(global[1]), TokensPerSecondPerGPU: math.Exp(global[2]), Samples: all.n}}
	for k, a := range sums {
		n := float64(a.n)
		f := func(sum, prior float64) float64 { return math.Exp((sum + shrinkSamples*prior) / (n + shrinkSamples)) }
		out[k] = Correction{TTFT: f(a.lt, global[0]), ITL: f(a.li, global[1]), TokensPerSecondPerGPU: f(a.ly, global[2]), Samples: a.n}
	}
	return out
}

// usable says a measurement can correct the model: every figure positive on both sides.
func usable(m Measurement) bool {
	return m.Requests > 0 && m.Measured.TTFTMs > 0 && m.Measured.ITLMs > 0 && m.Measured.TokensPerSecondPerGPU > 0 &&
		m.Predicted.TTFTMs > 0 && m.Predicted.ITLMs > 0 && m.Predicted.TokensPerSecondPerGPU > 0
}

// correctionFor is the correction of c's backend and mode, or the global one.
func correctionFor(corr map[string]Correction, c *Candidate) Correction {
	if k, ok := corr[c.key()]; ok {
		return k
	}
	if g, ok := corr[""]; ok {
		return g
	}
	return Correction{TTFT: 1, ITL: 1, TokensPerSecondPerGPU: 1}
}

// apply corrects a prediction; optimism > 1 gives it the benefit of the doubt (faster and more
// throughput by that factor).
func (k Correction) apply(f Figures, optimism float64) Figures {
	itl := f.ITLMs * k.ITL / optimism
	return Figures{
		TTFTMs: f.TTFTMs * k.TTFT / optimism, ITLMs: itl,
		TokensPerSecondPerGPU:  f.TokensPerSecondPerGPU * k.TokensPerSecondPerGPU * optimism,
		TokensPerSecondPerUser: 1000 / itl,
	}
}

// judge compares figures with what has been measured: the measured points that meet TTFT (the front's
// pool) and the best measured tokens/s/GPU meeting the whole SLA.
type judge struct {
	sla   profile.SLA
	front []measuredPoint
	best  float64 // −1: nothing measured meets the SLA
}

type measuredPoint struct {
	cand string
	f    Figures
}

// newJudge collects the measured points of every candidate that did not fail, except skip's.
func newJudge(sla profile.SLA, cands []*Candidate, skip string) judge {
	j := judge{sla: sla, best: -1}
	var pts []measuredPoint
	for _, c := range cands {
		if c.Name == skip || c.State == StateFailed {
			continue
		}
		for _, m := range c.Measurements {
			if m.Requests == 0 {
				continue
			}
			if m.Measured.TTFTMs <= sla.TTFTMs {
				pts = append(pts, measuredPoint{c.Name, m.Measured})
				if m.Measured.ITLMs <= sla.ITLMs {
					j.best = max(j.best, m.Measured.TokensPerSecondPerGPU)
				}
			}
		}
	}
	j.front = pareto.Front(pts, func(p measuredPoint) float64 { return p.f.TokensPerSecondPerUser },
		func(p measuredPoint) float64 { return p.f.TokensPerSecondPerGPU })
	return j
}

// hopeless says whether none of fs can matter: each is dominated by a measured point, and none would
// meet the SLA with more tokens/s/GPU than the best measured so. It names a dominating candidate.
func (j judge) hopeless(fs []Figures) (bool, string) {
	if len(j.front) == 0 || len(fs) == 0 {
		return false, ""
	}
	by := ""
	for _, f := range fs {
		if f.TTFTMs <= j.sla.TTFTMs && f.ITLMs <= j.sla.ITLMs && f.TokensPerSecondPerGPU > j.best {
			return false, ""
		}
		dominated := false
		for _, p := range j.front {
			if pareto.Dominates(p.f.TokensPerSecondPerUser, p.f.TokensPerSecondPerGPU, f.TokensPerSecondPerUser, f.TokensPerSecondPerGPU) {
				dominated, by = true, p.cand
				break
			}
		}
		if !dominated && f.TTFTMs <= j.sla.TTFTMs {
			return false, ""
		}
	}
	return true, by
}
