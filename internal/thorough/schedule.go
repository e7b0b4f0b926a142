package thorough

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dgdr-dev/dgdr/internal/numfmt"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// Estimates and bounds of the sweep.
const (
	// TeardownEstimate is the time a deleted candidate takes to free its GPUs (rough: the figures that
	// matter are measured).
	TeardownEstimate = time.Minute
	// MaxErrorFraction of failed requests at one load makes a candidate failed (errors under load).
	MaxErrorFraction = 0.05
	// MaxRefinements bounds the loads added to a candidate's sweep to find where it crosses the SLA.
	MaxRefinements = 2
	// DefaultDeadlineMargin is kept before the profiling Job's hard stop for cleanup and the results.
	DefaultDeadlineMargin = 3 * time.Minute
)

// Planner makes the sweep's decisions for one search. Its methods read and update a Record; they do not
// lock it.
type Planner struct {
	// Request is the rapid search the plan came from: model, GPU, budget, workload and SLA.
	Request  profile.SearchRequest
	Settings Settings
	// ModelCache says the weights are read from a model cache rather than downloaded (startup estimate).
	ModelCache bool
}

// Startup estimates how long c takes to become ready: the model's weights in c's precision.
func (p Planner) Startup(c *Candidate) time.Duration {
	bytes := 2.0
	switch strings.ToLower(c.Config.WeightDtype) {
	case "fp8", "int8":
		bytes = 1
	case "fp4", "nvfp4", "mxfp4", "int4":
		bytes = 0.5
	}
	gib := p.Request.Model.Params() * bytes / (1 << 30)
	return profile.StartupEstimate(gib, p.ModelCache)
}

// Estimate computes the budget of the candidates still to measure, as of now, and skips those that
// would end past the deadline (zero: none). One candidate is always tried while nothing has been
// measured: the estimate is rough, and the deadline stops it anyway.
func (p Planner) Estimate(rec *Record, now, deadline time.Time) {
	s := p.Settings.WithDefaults()
	var todo []*Candidate
	var bcs []profile.BudgetCandidate
	for _, c := range rec.Candidates {
		if c.State != StatePlanned {
			continue
		}
		todo = append(todo, c)
		bc := profile.BudgetCandidate{GPUs: c.Config.GPUs, Startup: p.Startup(c)}
		k := correctionFor(rec.Corrections, c)
		for _, l := range c.Levels {
			f := k.apply(l.Predicted, 1)
			e2e := f.TTFTMs + float64(p.Request.Workload.OSL-1)*f.ITLMs
			bc.Levels = append(bc.Levels, profile.BudgetLevel{
				Concurrency: l.Concurrency, Requests: s.Requests(l.Concurrency) + s.Warmup(l.Concurrency),
				E2E: time.Duration(e2e * float64(time.Millisecond)),
			})
		}
		bcs = append(bcs, bc)
	}
	params := profile.BudgetParams{TotalGPUs: p.Request.TotalGPUs, MaxParallel: s.MaxParallel, Teardown: TeardownEstimate}
	if !deadline.IsZero() {
		params.Available = max(deadline.Sub(now), time.Nanosecond)
	}
	est := profile.EstimateBudget(params, bcs)
	keep := est.Candidates
	if keep == 0 && len(todo) > 0 && !anyMeasured(rec) && params.Available > time.Nanosecond {
		keep = 1
		est = profile.EstimateBudget(profile.BudgetParams{TotalGPUs: params.TotalGPUs, Teardown: TeardownEstimate}, bcs[:1])
	}
	for i, c := range todo {
		if i >= keep {
			c.State, c.Reason = StateSkipped, "not measured: the budget ends first ("+est.Cut+")"
		}
	}
	b := &rec.Budget
	b.TotalGPUs, b.GPUsPerNode = p.Request.TotalGPUs, p.Request.GPUsPerNode
	b.Deadline = nil
	if !deadline.IsZero() {
		b.Deadline = &deadline
	}
	b.EstimatedGPUHours = UsedGPUHours(rec, now) + est.GPUHours
	b.EstimatedWallTime = est.WallTime
	b.Cut = est.Cut
	b.Estimate = nil
	for i := range keep {
		b.Estimate = append(b.Estimate, BudgetDetail{Name: todo[i].Name, GPUs: bcs[i].GPUs, Startup: bcs[i].Startup, Start: est.Start[i], Finish: est.Finish[i]})
	}
}

func anyMeasured(rec *Record) bool {
	for _, c := range rec.Candidates {
		if len(c.Measurements) > 0 {
			return true
		}
	}
	return false
}

// UsedGPUHours is what the candidates held so far, the running ones up to now.
func UsedGPUHours(rec *Record, now time.Time) float64 {
	sec := 0.0
	for _, c := range rec.Candidates {
		sec += c.GPUSeconds
		if c.State == StateRunning && c.Started != nil {
			sec += now.Sub(*c.Started).Seconds() * float64(c.Config.GPUs)
		}
	}
	return sec / 3600
}

// BudgetStatus is the budget as the DGDR's status shows it, as of now.
func BudgetStatus(rec *Record, now time.Time) *v1alpha1.ProfilingBudget {
	b := rec.Budget
	out := &v1alpha1.ProfilingBudget{
		GPUs: int32(b.TotalGPUs), EstimatedGPUHours: b.EstimatedGPUHours,
		EstimatedWallTime: metav1.Duration{Duration: b.EstimatedWallTime},
		UsedGPUHours:      UsedGPUHours(rec, now),
	}
	if b.Deadline != nil {
		out.Deadline = &metav1.Time{Time: *b.Deadline}
	}
	for _, c := range rec.Candidates {
		if c.State == StateSkipped {
			continue
		}
		out.Candidates++
		switch c.State {
		case StateMeasured:
			out.Measured++
		case StateFailed:
			out.Failed++
		case StatePruned:
			out.Pruned++
		}
	}
	return out
}

// Startable picks the candidates to deploy now, given the GPUs held and the candidates running: the
// planned ones in order of corrected merit, as long as the next one fits the free GPUs and the
// parallelism (never skipping ahead, as the estimate assumes).
func (p Planner) Startable(rec *Record, usedGPUs, running int) []*Candidate {
	var planned []*Candidate
	for _, c := range rec.Candidates {
		if c.State == StatePlanned {
			planned = append(planned, c)
		}
	}
	sla := p.Request.SLA
	merit := func(c *Candidate) float64 {
		k := correctionFor(rec.Corrections, c)
		best := -1.0
		for _, l := range c.Levels {
			f := k.apply(l.Predicted, 1)
			if f.TTFTMs <= sla.TTFTMs && f.ITLMs <= sla.ITLMs {
				best = max(best, f.TokensPerSecondPerGPU)
			}
		}
		return best
	}
	// Nothing measured yet: the plan's order (the rapid selection first) stands.
	if len(rec.Corrections) > 0 && rec.Corrections[""].Samples > 0 {
		slices.SortStableFunc(planned, func(a, b *Candidate) int { return cmp.Compare(merit(b), merit(a)) })
	}
	maxParallel := p.Settings.WithDefaults().MaxParallel
	var out []*Candidate
	for _, c := range planned {
		if usedGPUs+c.Config.GPUs > p.Request.TotalGPUs || running >= maxParallel {
			break
		}
		out = append(out, c)
		usedGPUs += c.Config.GPUs
		running++
	}
	return out
}

// Prune re-fits the corrections and drops the planned candidates that can no longer matter: even
// corrected and given the benefit of the doubt, every load is dominated by a measured point and none
// would meet the SLA with more tokens/s/GPU than the best measured.
func (p Planner) Prune(rec *Record) {
	tolerance := p.Settings.WithDefaults().Tolerance
	rec.Corrections = FitCorrections(rec.Candidates)
	j := newJudge(p.Request.SLA, rec.Candidates, "")
	for _, c := range rec.Candidates {
		if c.State != StatePlanned {
			continue
		}
		k := correctionFor(rec.Corrections, c)
		var fs []Figures
		for _, l := range c.Levels {
			fs = append(fs, k.apply(l.Predicted, 1+tolerance))
		}
		if hopeless, by := j.hopeless(fs); hopeless {
			c.State = StatePruned
			c.Reason = fmt.Sprintf("not deployed: corrected by the measurements (TTFT ×%.2f, ITL ×%.2f, tokens/s/GPU ×%.2f) and given %.0f%% benefit of the doubt, every load is dominated by %s's measured points and none beats the best measured under the SLA",
				k.TTFT, k.ITL, k.TokensPerSecondPerGPU, tolerance*100, by)
		}
	}
}

// StopEarly decides, after c's latest load, whether its sweep is over before load next: the TTFT
// target is missed (higher loads only queue longer), or its measured point is dominated by another
// candidate's and its remaining loads, corrected by its own measurements, are too.
func (p Planner) StopEarly(rec *Record, c *Candidate, next int) (bool, string) {
	if len(c.Measurements) == 0 {
		return false, ""
	}
	sla := p.Request.SLA
	last := c.Measurements[len(c.Measurements)-1]
	loose := 1 + p.Settings.WithDefaults().Tolerance
	if last.Measured.TTFTMs > sla.TTFTMs*loose {
		return true, fmt.Sprintf("stopped after concurrency %d: its TTFT %s ms is over the target %s ms, and higher loads only queue longer",
			last.Concurrency, trimFloat(last.Measured.TTFTMs), trimFloat(sla.TTFTMs))
	}
	j := newJudge(sla, rec.Candidates, c.Name)
	if lost, by := j.hopeless([]Figures{last.Measured}); lost {
		own := correctionFor(FitCorrections([]*Candidate{c}), c)
		var rest []Figures
		for _, l := range c.Levels[min(next, len(c.Levels)):] {
			rest = append(rest, own.apply(l.Predicted, loose))
		}
		if hopeless, _ := j.hopeless(rest); hopeless {
			return true, fmt.Sprintf("stopped after concurrency %d: its measured point (%s) is dominated by %s's, and so are its remaining loads as predicted and corrected",
				last.Concurrency, DescribeFigures(last.Measured), by)
		}
	}
	return false, ""
}

// Refine proposes one more load for c once its planned loads are measured: when the SLA is crossed
// between two measured loads more than one batch apart, the largest batch at which TTFT and ITL,
// interpolated linearly between them, still meet it (the most tokens/s/GPU the candidate can offer under
// the SLA). nil when MaxRefinements loads were added already, when the crossing is pinned down, when
// nothing measured meets the SLA, or when even the interpolated point would not beat the best measured
// elsewhere.
func (p Planner) Refine(rec *Record, c *Candidate) *LevelPlan {
	refined := 0
	for _, l := range c.Levels {
		if l.Refined {
			refined++
		}
	}
	if refined >= MaxRefinements {
		return nil
	}
	sla := p.Request.SLA
	meets := func(f Figures) bool { return f.TTFTMs <= sla.TTFTMs && f.ITLMs <= sla.ITLMs }
	var lo, hi *Measurement // the largest batch meeting the SLA, the smallest above it missing it
	for i := range c.Measurements {
		m := &c.Measurements[i]
		if m.Requests > 0 && meets(m.Measured) && (lo == nil || m.Batch > lo.Batch) {
			lo = m
		}
	}
	if lo == nil {
		return nil
	}
	for i := range c.Measurements {
		m := &c.Measurements[i]
		if m.Requests > 0 && m.Batch > lo.Batch && !meets(m.Measured) && (hi == nil || m.Batch < hi.Batch) {
			hi = m
		}
	}
	if hi == nil || hi.Batch-lo.Batch < 2 {
		return nil
	}
	at := func(b int, f func(Figures) float64) float64 {
		t := float64(b-lo.Batch) / float64(hi.Batch-lo.Batch)
		return f(lo.Measured) + t*(f(hi.Measured)-f(lo.Measured))
	}
	b := lo.Batch + 1
	for k := hi.Batch - 1; k > lo.Batch; k-- {
		if at(k, func(f Figures) float64 { return f.TTFTMs }) <= sla.TTFTMs && at(k, func(f Figures) float64 { return f.ITLMs }) <= sla.ITLMs {
			b = k
			break
		}
	}
	if j := newJudge(sla, rec.Candidates, c.Name); at(b, func(f Figures) float64 { return f.TokensPerSecondPerGPU }) <= j.best {
		return nil
	}
	cfg := withServingBatch(c.Config, b)
	l := &LevelPlan{Concurrency: Slots(cfg), Batch: b, Refined: true}
	if pr, err := p.Request.Predictor(c.Config.Backend); err == nil {
		if f, err := pr.Predict(cfg, 0); err == nil {
			l.Predicted = Figures{TTFTMs: f.TTFTMs, ITLMs: f.ITLMs, TokensPerSecondPerGPU: f.TokensPerSecondPerGPU, TokensPerSecondPerUser: f.TokensPerSecondPerUser}
		}
	}
	return l
}

// TooManyErrors says a load failed more of its requests than a serving deployment may (errors under
// load): the candidate fails.
func TooManyErrors(errors, requests int) bool {
	return errors > 0 && float64(errors) > MaxErrorFraction*float64(errors+requests)
}

// DescribeFigures is "TTFT 81 ms, ITL 6.2 ms, 2100 tokens/s/GPU".
func DescribeFigures(f Figures) string {
	return fmt.Sprintf("TTFT %s ms, ITL %s ms, %.0f tokens/s/GPU", trimFloat(f.TTFTMs), trimFloat(f.ITLMs), f.TokensPerSecondPerGPU)
}

// trimFloat prints a latency: two decimals below 10 ms, one above.
func trimFloat(v float64) string {
	if v < 10 {
		return numfmt.Fixed(v, 2)
	}
	return numfmt.Fixed(v, 1)
}
