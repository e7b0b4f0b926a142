package profiler

// The thorough search's plan and its model of what measuring will show: which candidate deployments
// to measure, at which loads, how the performance model's predictions are corrected by what has been
// measured so far, and when a candidate is no longer worth its GPUs. Everything here is pure: the
// sweep (thorough_sweep.go) calls it under its lock.

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/dgdr-dev/dgdr/pkg/pareto"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// Candidate states.
const (
	statePlanned  = "planned"  // not deployed yet
	stateRunning  = "running"  // deployed (or being deployed) and measured now
	stateMeasured = "measured" // measured at one load or more
	stateFailed   = "failed"   // crashed, ran out of memory, never became ready or errored under load
	statePruned   = "pruned"   // not deployed: the corrected prediction cannot beat what was measured
	stateSkipped  = "skipped"  // not deployed: past the budget (deadline)
)

// figures are the four numbers a point is judged by.
type figures struct {
	TTFTMs                 float64 `json:"ttftMs"`
	ITLMs                  float64 `json:"itlMs"`
	TokensPerSecondPerGPU  float64 `json:"tokensPerSecondPerGPU"`
	TokensPerSecondPerUser float64 `json:"tokensPerSecondPerUser"`
}

func figuresOf(c profile.Config) figures {
	return figures{TTFTMs: c.TTFTMs, ITLMs: c.ITLMs, TokensPerSecondPerGPU: c.TokensPerSecondPerGPU, TokensPerSecondPerUser: c.TokensPerSecondPerUser}
}

// levelPlan is one load a candidate is measured at: the rapid configuration with worker batch Batch,
// whose batch slots make Concurrency closed-loop users on one replica.
type levelPlan struct {
	Concurrency int     `json:"concurrency"`
	Batch       int     `json:"batch"`
	Predicted   figures `json:"predicted"`
	// Refined marks a load added during the sweep to find where the candidate crosses the SLA.
	Refined bool `json:"refined,omitempty"`
}

// measurement is what one load level measured, with the prediction for the same configuration and load.
type measurement struct {
	Concurrency int     `json:"concurrency"`
	Batch       int     `json:"batch"`
	Measured    figures `json:"measured"`
	Predicted   figures `json:"predicted"`
	// TTFTP90Ms and ITLP90Ms are the 90th percentiles, for users whose SLA is a tail.
	TTFTP90Ms float64 `json:"ttftP90Ms"`
	ITLP90Ms  float64 `json:"itlP90Ms"`
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	// Bench is the benchmark's whole record of the level.
	Bench any `json:"bench,omitempty"`
}

// candidate is one deployment of the plan and what became of it.
type candidate struct {
	// Name is c<k>, k its position in the plan; DGD the candidate DGD's name.
	Name string `json:"name"`
	DGD  string `json:"dgd,omitempty"`
	// Config is what is deployed: one replica, the agg or decode worker's batch the largest level's.
	Config profile.Config `json:"config"`
	// Why it was chosen.
	Why    string      `json:"why"`
	Levels []levelPlan `json:"levels"`

	State string `json:"state"`
	// Reason says why it failed, was pruned or skipped, or why its sweep stopped early.
	Reason       string        `json:"reason,omitempty"`
	Measurements []measurement `json:"measurements,omitempty"`
	Started      *time.Time    `json:"started,omitempty"`
	Ready        *time.Time    `json:"ready,omitempty"`
	Finished     *time.Time    `json:"finished,omitempty"`
	// GPUSeconds is GPUs × the time the deployment existed.
	GPUSeconds float64 `json:"gpuSeconds,omitempty"`
}

// key is the backend and mode, the unit of the prediction corrections.
func (c *candidate) key() string { return c.Config.Backend + "/" + string(c.Config.Mode) }

// slots is the concurrency that fills the batch slots of one replica of c (agg or decode workers).
func slots(c profile.Config) int {
	n := 0
	for _, w := range c.Workers {
		if w.Role != profile.RolePrefill {
			n += w.Count * w.Batch
		}
	}
	return n
}

// withServingBatch returns c with the agg or decode workers' batch set to b.
func withServingBatch(c profile.Config, b int) profile.Config {
	c.Workers = slices.Clone(c.Workers)
	for i := range c.Workers {
		if c.Workers[i].Role != profile.RolePrefill {
			c.Workers[i].Batch = b
		}
	}
	return c
}

// servingBatch is the agg or decode workers' batch.
func servingBatch(c profile.Config) int {
	for _, w := range c.Workers {
		if w.Role != profile.RolePrefill {
			return w.Batch
		}
	}
	return 0
}

// layoutKey names a deployment: backend, mode and workers without the serving batch (the prefill batch,
// fixed per layout, is part of it).
func layoutKey(c profile.Config) string {
	return profile.Describe(withServingBatch(oneReplica(c), 0))
}

// oneReplica is c scaled to one replica, without figures.
func oneReplica(c profile.Config) profile.Config {
	o := profile.Config{Backend: c.Backend, Mode: c.Mode, Replicas: 1, Workers: slices.Clone(c.Workers),
		WeightDtype: c.WeightDtype, KVDtype: c.KVDtype}
	o.GPUs = o.GPUsPerReplica()
	return o
}

// sweepSettings are the plan's knobs.
type sweepSettings struct {
	maxCandidates, maxLevels int
	// tolerance is how far from the predicted front (and the SLA) a configuration may be and still be
	// measured: the performance model's expected error.
	tolerance float64
	// diversitySlack admits the best deployment of each backend and mode within this factor of the front,
	// so that each gets a correction of its own.
	diversitySlack float64
}

// group is one deployment layout and its rapid candidates (one per serving batch).
type group struct {
	key    string
	points []int // indices into the rapid candidates
	near   []int // points within tolerance of the front
	// score is the best predicted tokens/s/GPU among near points meeting the loosened SLA (−1: none).
	score    float64
	minSlack float64
	first    int // enumeration order, for determinism
}

// planCandidates chooses what to measure from the rapid search: the deployments on and near the
// predicted front that fit the budget, first the one rapid selects, then the best of every backend and
// mode, then the others by predicted tokens/s/GPU under the SLA; each with up to maxLevels loads.
func planCandidates(req profile.SearchRequest, res profile.SearchResult, s sweepSettings) []*candidate {
	loose := 1 + s.tolerance
	var predicted, pool []int
	for i, c := range res.Candidates {
		if !c.Predicted {
			continue
		}
		predicted = append(predicted, i)
		if c.Config.TTFTMs <= req.SLA.TTFTMs*loose {
			pool = append(pool, i)
		}
	}
	if len(pool) == 0 {
		pool = predicted
	}
	if len(pool) == 0 {
		return nil
	}
	x := func(i int) float64 { return res.Candidates[i].Config.TokensPerSecondPerUser }
	y := func(i int) float64 { return res.Candidates[i].Config.TokensPerSecondPerGPU }
	front := pareto.Front(pool, x, y)
	slack := func(i int) float64 {
		worst := 1.0
		for _, f := range front {
			worst = max(worst, min(x(f)/x(i), y(f)/y(i)))
		}
		return worst
	}

	byKey := map[string]*group{}
	var groups []*group
	for _, i := range pool {
		k := layoutKey(res.Candidates[i].Config)
		g := byKey[k]
		if g == nil {
			g = &group{key: k, score: -1, minSlack: math.Inf(1), first: i}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.points = append(g.points, i)
		sl := slack(i)
		g.minSlack = min(g.minSlack, sl)
		if sl <= loose {
			g.near = append(g.near, i)
			c := res.Candidates[i].Config
			if c.ITLMs <= req.SLA.ITLMs*loose && c.TTFTMs <= req.SLA.TTFTMs*loose {
				g.score = max(g.score, c.TokensPerSecondPerGPU)
			}
		}
	}
	better := func(a, b *group) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		if c := cmp.Compare(a.minSlack, b.minSlack); c != 0 {
			return c
		}
		return cmp.Compare(a.first, b.first)
	}
	slices.SortStableFunc(groups, better)

	type pick struct {
		g   *group
		why string
	}
	var picks []pick
	chosen := map[*group]bool{}
	add := func(g *group, why string) {
		if g != nil && !chosen[g] && len(picks) < s.maxCandidates {
			chosen[g] = true
			picks = append(picks, pick{g, why})
		}
	}
	if sel, ok := res.SelectedConfig(); ok {
		add(byKey[layoutKey(sel)], "the rapid search's selection")
	}
	// The best of each backend and mode, so that each is measured and corrected.
	for _, b := range profile.Backends {
		for _, m := range []profile.Mode{profile.ModeAgg, profile.ModeDisagg} {
			for _, g := range groups {
				c := res.Candidates[g.first].Config
				if c.Backend == b && c.Mode == m {
					if g.minSlack <= s.diversitySlack {
						add(g, fmt.Sprintf("the best predicted %s %s deployment", b, m))
					}
					break
				}
			}
		}
	}
	for _, g := range groups {
		if len(g.near) > 0 {
			add(g, fmt.Sprintf("within %.0f%% of the predicted front", (g.minSlack-1)*100))
		}
	}
	// Execution order: the rapid selection first, then by predicted merit.
	sel := picks[:min(1, len(picks))]
	rest := picks[len(sel):]
	slices.SortStableFunc(rest, func(a, b pick) int { return better(a.g, b.g) })

	predictors := map[string]*profile.Predictor{}
	predict := func(c profile.Config) (figures, bool) {
		p, ok := predictors[c.Backend]
		if !ok {
			p, _ = req.Predictor(c.Backend) // nil: the backend cannot be costed (Search said so)
			predictors[c.Backend] = p
		}
		if p == nil {
			return figures{}, false
		}
		pr, err := p.Predict(c, 0)
		if err != nil {
			return figures{}, false
		}
		return figures{TTFTMs: pr.TTFTMs, ITLMs: pr.ITLMs, TokensPerSecondPerGPU: pr.TokensPerSecondPerGPU, TokensPerSecondPerUser: pr.TokensPerSecondPerUser}, true
	}
	levelOf := func(c profile.Config) levelPlan {
		return levelPlan{Concurrency: slots(oneReplica(c)), Batch: servingBatch(c), Predicted: figuresOf(c)}
	}

	var out []*candidate
	for _, p := range append(sel, rest...) {
		// The loads: the layout's batches the rapid search costed, and lower ones it did not try on this
		// layout (halving the largest; disaggregated layouts are often costed at one batch only).
		var all, must []levelPlan
		top := res.Candidates[p.g.points[0]].Config
		for _, i := range p.g.points {
			c := res.Candidates[i].Config
			all = append(all, levelOf(c))
			if servingBatch(c) > servingBatch(top) {
				top = c
			}
		}
		for b := servingBatch(top) / 2; b >= 1; b /= 2 {
			c := withServingBatch(top, b)
			if f, ok := predict(c); ok {
				all = append(all, levelPlan{Concurrency: slots(oneReplica(c)), Batch: b, Predicted: f})
			}
		}
		// Always the rapid selection and the layout's best predicted load under the SLA (and loosened).
		if i := res.Selected; i >= 0 && slices.Contains(p.g.points, i) {
			must = append(must, levelOf(res.Candidates[i].Config))
		}
		for _, lim := range []float64{1, loose} {
			best := -1
			for k, l := range all {
				f := l.Predicted
				if f.TTFTMs <= req.SLA.TTFTMs*lim && f.ITLMs <= req.SLA.ITLMs*lim && (best < 0 || f.TokensPerSecondPerGPU > all[best].Predicted.TokensPerSecondPerGPU) {
					best = k
				}
			}
			if best >= 0 {
				must = append(must, all[best])
			}
		}
		levels := chooseLevels(all, must, s.maxLevels)
		dep := withServingBatch(oneReplica(top), levels[len(levels)-1].Batch)
		out = append(out, &candidate{
			Name: fmt.Sprintf("c%d", len(out)), Config: dep, Why: p.why, Levels: levels, State: statePlanned,
		})
	}
	return out
}

// chooseLevels picks the loads, ascending: every one of must, then loads evenly spread over all (its
// ends included), n in all when n > 0.
func chooseLevels(all, must []levelPlan, n int) []levelPlan {
	byConc := func(a, b levelPlan) int { return cmp.Compare(a.Concurrency, b.Concurrency) }
	all = slices.Clone(all)
	slices.SortStableFunc(all, byConc)
	all = slices.CompactFunc(all, func(a, b levelPlan) bool { return a.Concurrency == b.Concurrency })
	if n < 1 || len(all) <= n {
		return all
	}
	keep := map[int]bool{}
	var out []levelPlan
	add := func(l levelPlan) {
		if !keep[l.Concurrency] && len(out) < n {
			keep[l.Concurrency] = true
			out = append(out, l)
		}
	}
	for _, l := range must {
		add(l)
	}
	// The ends first, then inwards.
	for lo, hi := 0, n-1; lo <= hi; lo, hi = lo+1, hi-1 {
		add(all[lo*(len(all)-1)/max(n-1, 1)])
		add(all[hi*(len(all)-1)/max(n-1, 1)])
	}
	for _, l := range all {
		add(l)
	}
	slices.SortStableFunc(out, byConc)
	return out
}

// correction multiplies predictions: measured ÷ predicted, as a geometric mean shrunk towards the
// other backends' (and those towards 1) while there are few measurements.
type correction struct {
	TTFT                  float64 `json:"ttft"`
	ITL                   float64 `json:"itl"`
	TokensPerSecondPerGPU float64 `json:"tokensPerSecondPerGPU"`
	// Samples is the measurements of this backend and mode it rests on.
	Samples int `json:"samples"`
}

// shrinkSamples is the weight of the prior in measurements: two measurements weigh as much as it.
const shrinkSamples = 2.0

// fitCorrections re-fits the corrections to every measurement so far, per backend and mode, plus the
// global one under the key "" for backends and modes not measured yet.
func fitCorrections(cands []*candidate) map[string]correction {
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
	out := map[string]correction{"": {TTFT: math.Exp(global[0]), ITL: math.Exp(global[1]), TokensPerSecondPerGPU: math.Exp(global[2]), Samples: all.n}}
	for k, a := range sums {
		n := float64(a.n)
		f := func(sum, prior float64) float64 { return math.Exp((sum + shrinkSamples*prior) / (n + shrinkSamples)) }
		out[k] = correction{TTFT: f(a.lt, global[0]), ITL: f(a.li, global[1]), TokensPerSecondPerGPU: f(a.ly, global[2]), Samples: a.n}
	}
	return out
}

// usable says a measurement can correct the model: every figure positive on both sides.
func usable(m measurement) bool {
	return m.Requests > 0 && m.Measured.TTFTMs > 0 && m.Measured.ITLMs > 0 && m.Measured.TokensPerSecondPerGPU > 0 &&
		m.Predicted.TTFTMs > 0 && m.Predicted.ITLMs > 0 && m.Predicted.TokensPerSecondPerGPU > 0
}

// correctionFor is the correction of c's backend and mode, or the global one.
func correctionFor(corr map[string]correction, c *candidate) correction {
	if k, ok := corr[c.key()]; ok {
		return k
	}
	if g, ok := corr[""]; ok {
		return g
	}
	return correction{TTFT: 1, ITL: 1, TokensPerSecondPerGPU: 1}
}

// apply corrects a prediction; optimism > 1 gives it the benefit of the doubt (faster and more
// throughput by that factor).
func (k correction) apply(f figures, optimism float64) figures {
	itl := f.ITLMs * k.ITL / optimism
	return figures{
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
	f    figures
}

// newJudge collects the measured points of every candidate that did not fail, except skip's.
func newJudge(sla profile.SLA, cands []*candidate, skip string) judge {
	j := judge{sla: sla, best: -1}
	var pts []measuredPoint
	for _, c := range cands {
		if c.Name == skip || c.State == stateFailed {
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
func (j judge) hopeless(fs []figures) (bool, string) {
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

// describeFigures is "TTFT 81 ms, ITL 6.2 ms, 2100 tokens/s/GPU".
func describeFigures(f figures) string {
	return fmt.Sprintf("TTFT %s ms, ITL %s ms, %.0f tokens/s/GPU", trimFloat(f.TTFTMs), trimFloat(f.ITLMs), f.TokensPerSecondPerGPU)
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	if v < 10 {
		s = fmt.Sprintf("%.2f", v)
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}
