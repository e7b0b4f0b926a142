package thorough

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/dgdr-dev/dgdr/pkg/pareto"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// Settings are the search's knobs. Zero values take the defaults in brackets.
type Settings struct {
	// MaxCandidates bounds the plan [8]; MaxLevels the loads per candidate [6]; MaxParallel the
	// candidates deployed at once when the GPU budget holds them [2].
	MaxCandidates, MaxLevels, MaxParallel int
	// Tolerance is the performance model's expected error: how far from the predicted front (and the
	// SLA) a configuration may be and still be measured, and the benefit of the doubt before pruning [0.25].
	Tolerance float64
	// Requests per load are Rounds × concurrency, at least MinRequests [3, 16]; NoWarmup leaves out the
	// one warm-up request per user.
	Rounds, MinRequests int
	NoWarmup            bool
}

// WithDefaults fills in the defaults.
func (s Settings) WithDefaults() Settings {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&s.MaxCandidates, 8)
	def(&s.MaxLevels, 6)
	def(&s.MaxParallel, 2)
	def(&s.Rounds, 3)
	def(&s.MinRequests, 16)
	if s.Tolerance <= 0 {
		s.Tolerance = 0.25
	}
	return s
}

// Requests is the number of measured requests at a concurrency.
func (s Settings) Requests(concurrency int) int {
	s = s.WithDefaults()
	return max(s.MinRequests, s.Rounds*concurrency)
}

// Warmup is the number of requests sent before those measured at a concurrency.
func (s Settings) Warmup(concurrency int) int {
	if s.NoWarmup {
		return 0
	}
	return concurrency
}

// diversitySlack admits the best deployment of each backend and mode within this factor of the front,
// so that each gets a correction of its own.
const diversitySlack = 2.0

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

// Plan chooses what to measure from the rapid search: the deployments on and near the
// predicted front that fit the budget, first the one rapid selects, then the best of every backend and
// mode, then the others by predicted tokens/s/GPU under the SLA; each with up to maxLevels loads.
func Plan(req profile.SearchRequest, res profile.SearchResult, s Settings) []*Candidate {
	s = s.WithDefaults()
	loose := 1 + s.Tolerance
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
		k := LayoutKey(res.Candidates[i].Config)
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
		if g != nil && !chosen[g] && len(picks) < s.MaxCandidates {
			chosen[g] = true
			picks = append(picks, pick{g, why})
		}
	}
	if sel, ok := res.SelectedConfig(); ok {
		add(byKey[LayoutKey(sel)], "the rapid search's selection")
	}
	// The best of each backend and mode, so that each is measured and corrected.
	for _, b := range profile.Backends {
		for _, m := range []profile.Mode{profile.ModeAgg, profile.ModeDisagg} {
			for _, g := range groups {
				c := res.Candidates[g.first].Config
				if c.Backend == b && c.Mode == m {
					if g.minSlack <= diversitySlack {
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
	predict := func(c profile.Config) (Figures, bool) {
		p, ok := predictors[c.Backend]
		if !ok {
			p, _ = req.Predictor(c.Backend) // nil: the backend cannot be costed (Search said so)
			predictors[c.Backend] = p
		}
		if p == nil {
			return Figures{}, false
		}
		pr, err := p.Predict(c, 0)
		if err != nil {
			return Figures{}, false
		}
		return Figures{TTFTMs: pr.TTFTMs, ITLMs: pr.ITLMs, TokensPerSecondPerGPU: pr.TokensPerSecondPerGPU, TokensPerSecondPerUser: pr.TokensPerSecondPerUser}, true
	}
	levelOf := func(c profile.Config) LevelPlan {
		return LevelPlan{Concurrency: Slots(oneReplica(c)), Batch: servingBatch(c), Predicted: figuresOf(c)}
	}

	var out []*Candidate
	for _, p := range append(sel, rest...) {
		// The loads: the layout's batches the rapid search costed, and lower ones it did not try on this
		// layout (halving the largest; disaggregated layouts are often costed at one batch only).
		var all, must []LevelPlan
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
				all = append(all, LevelPlan{Concurrency: Slots(oneReplica(c)), Batch: b, Predicted: f})
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
		levels := chooseLevels(all, must, s.MaxLevels)
		dep := withServingBatch(oneReplica(top), levels[len(levels)-1].Batch)
		out = append(out, &Candidate{
			Name: fmt.Sprintf("c%d", len(out)), Config: dep, Why: p.why, Levels: levels, State: StatePlanned,
		})
	}
	return out
}

// chooseLevels picks the loads, ascending: every one of must, then loads evenly spread over all (its
// ends included), n in all when n > 0.
func chooseLevels(all, must []LevelPlan, n int) []LevelPlan {
	byConc := func(a, b LevelPlan) int { return cmp.Compare(a.Concurrency, b.Concurrency) }
	all = slices.Clone(all)
	slices.SortStableFunc(all, byConc)
	all = slices.CompactFunc(all, func(a, b LevelPlan) bool { return a.Concurrency == b.Concurrency })
	if n < 1 || len(all) <= n {
		return all
	}
	keep := map[int]bool{}
	var out []LevelPlan
	add := func(l LevelPlan) {
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
