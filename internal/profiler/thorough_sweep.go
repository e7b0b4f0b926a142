package profiler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/bench"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// sweep is one thorough search in progress. mu guards rec: candidates are measured concurrently.
type sweep struct {
	*run
	o        ThoroughOptions
	d        *v1alpha1.DynamoGraphDeploymentRequest
	p        *plan
	req      profile.SearchRequest
	deadline time.Time

	mu  sync.Mutex
	rec *thoroughRecord
}

// Estimates for the budget (rough: the figures that matter are measured).
const (
	teardownEstimate = time.Minute
	// maxErrorFraction of failed requests at one load makes a candidate failed (errors under load).
	maxErrorFraction = 0.05
	// podLabelDGD is the label the Dynamo operator puts on a DGD's pods.
	podLabelDGD = "nvidia.com/dynamo-graph-deployment-name"
)

// resume takes over what an earlier run of the same DGDR recorded: finished candidates keep their
// outcome, the one being measured is measured again (its DGD, if still there, is reused), and candidate
// DGDs that are not to be measured any more are removed.
func (s *sweep) resume(ctx context.Context, old *thoroughRecord) error {
	if old != nil && old.UID == s.d.UID {
		s.rec.Started = old.Started
		byName := map[string]*candidate{}
		for _, c := range old.Candidates {
			byName[c.Name] = c
		}
		for i, c := range s.rec.Candidates {
			o := byName[c.Name]
			if o == nil || profile.Describe(o.Config) != profile.Describe(c.Config) {
				continue
			}
			switch o.State {
			case stateMeasured, stateFailed, statePruned:
				s.rec.Candidates[i] = o
			case stateRunning:
				c.Started, c.GPUSeconds = o.Started, o.GPUSeconds
				s.Log.Info("measuring again the candidate a previous run was measuring", "candidate", c.Name)
			}
		}
		s.rec.Corrections = fitCorrections(s.rec.Candidates)
	}

	planned := map[string]*candidate{}
	for _, c := range s.rec.Candidates {
		if c.State == statePlanned {
			planned[c.Name] = c
		}
	}
	dgds, err := s.listCandidates(ctx)
	if err != nil {
		return err
	}
	for i := range dgds {
		u := &dgds[i]
		c := planned[u.GetLabels()[v1alpha1.LabelCandidate]]
		if c != nil && s.ours(u) && u.GetAnnotations()[AnnotationCandidateConfig] == configJSON(c.Config) {
			s.Log.Info("reusing a candidate DGD left by a previous run", "dgd", u.GetName())
			continue
		}
		if !s.leftover(u) {
			s.Log.Info("a DGD labelled as a candidate of this DGDR is not owned by it; left alone", "dgd", u.GetName())
			continue
		}
		s.Log.Info("removing a candidate DGD left by a previous run", "dgd", u.GetName())
		if err := s.Client.Delete(ctx, u, client.PropagationPolicy(metav1.DeletePropagationBackground),
			client.Preconditions{UID: ptr.To(u.GetUID())}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("removing candidate DGD %s: %w", u.GetName(), err)
		}
	}
	return nil
}

// ours reports whether a DGD is a candidate of this DGDR: labelled so and owned by its UID. Nothing
// else is overwritten or deleted.
func (s *sweep) ours(u *unstructured.Unstructured) bool {
	l := u.GetLabels()
	return l[v1alpha1.LabelDGDRName] == s.d.Name && l[v1alpha1.LabelCandidate] != "" && ownedByUID(u, s.d.UID)
}

// leftover reports whether a DGD is a candidate of this DGDR or of an earlier DGDR of the same name (whose
// garbage collection is pending): labelled so and owned by a DGDR of this name.
func (s *sweep) leftover(u *unstructured.Unstructured) bool {
	l := u.GetLabels()
	if l[v1alpha1.LabelDGDRName] != s.d.Name || l[v1alpha1.LabelCandidate] == "" {
		return false
	}
	for _, r := range u.GetOwnerReferences() {
		if r.Kind == v1alpha1.Kind && r.Name == s.d.Name && strings.HasPrefix(r.APIVersion, v1alpha1.GroupVersion.Group+"/") {
			return true
		}
	}
	return false
}

func ownedByUID(u *unstructured.Unstructured, uid types.UID) bool {
	for _, r := range u.GetOwnerReferences() {
		if r.UID == uid {
			return true
		}
	}
	return false
}

// estimate computes the budget of the candidates still to measure and drops those that would end past
// the deadline. One candidate is always tried while nothing has been measured: the estimate is rough,
// and the deadline stops it anyway.
func (s *sweep) estimate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var todo []*candidate
	var bcs []profile.BudgetCandidate
	for _, c := range s.rec.Candidates {
		if c.State != statePlanned {
			continue
		}
		todo = append(todo, c)
		bc := profile.BudgetCandidate{GPUs: c.Config.GPUs, Startup: s.startup(c)}
		k := correctionFor(s.rec.Corrections, c)
		for _, l := range c.Levels {
			f := k.apply(l.Predicted, 1)
			e2e := f.TTFTMs + float64(s.req.Workload.OSL-1)*f.ITLMs
			bc.Levels = append(bc.Levels, profile.BudgetLevel{
				Concurrency: l.Concurrency, Requests: s.requests(l.Concurrency) + s.warmup(l.Concurrency),
				E2E: time.Duration(e2e * float64(time.Millisecond)),
			})
		}
		bcs = append(bcs, bc)
	}
	params := profile.BudgetParams{TotalGPUs: s.p.totalGPUs, MaxParallel: s.o.MaxParallel, Teardown: teardownEstimate}
	if !s.deadline.IsZero() {
		params.Available = max(s.deadline.Sub(s.Now()), time.Nanosecond)
	}
	est := profile.EstimateBudget(params, bcs)
	keep := est.Candidates
	if keep == 0 && len(todo) > 0 && !s.anyMeasured() && params.Available > time.Nanosecond {
		keep = 1
		est = profile.EstimateBudget(profile.BudgetParams{TotalGPUs: params.TotalGPUs, Teardown: teardownEstimate}, bcs[:1])
	}
	for i, c := range todo {
		if i >= keep {
			c.State, c.Reason = stateSkipped, "not measured: the budget ends first ("+est.Cut+")"
		}
	}
	b := &s.rec.Budget
	b.TotalGPUs, b.GPUsPerNode = s.p.totalGPUs, s.p.gpusPerNode
	b.Deadline = nil
	if !s.deadline.IsZero() {
		b.Deadline = &s.deadline
	}
	b.EstimatedGPUHours = s.usedGPUHours() + est.GPUHours
	b.EstimatedWallTime = est.WallTime
	b.Cut = est.Cut
	b.Estimate = nil
	for i := range keep {
		b.Estimate = append(b.Estimate, budgetDetail{Name: todo[i].Name, GPUs: bcs[i].GPUs, Startup: bcs[i].Startup, Start: est.Start[i], Finish: est.Finish[i]})
	}
}

// startup estimates how long c takes to become ready: the model's weights in c's precision.
func (s *sweep) startup(c *candidate) time.Duration {
	bytes := 2.0
	switch strings.ToLower(c.Config.WeightDtype) {
	case "fp8", "int8":
		bytes = 1
	case "fp4", "nvfp4", "mxfp4", "int4":
		bytes = 0.5
	}
	gib := s.p.model.Params() * bytes / (1 << 30)
	return profile.StartupEstimate(gib, s.d.Spec.ModelCache != nil)
}

func (s *sweep) readyTimeout(c *candidate) time.Duration {
	if s.o.ReadyTimeout > 0 {
		return s.o.ReadyTimeout
	}
	return 10*time.Minute + 2*s.startup(c)
}

// requests is the number of measured requests at a concurrency; warmup the requests sent first.
func (s *sweep) requests(concurrency int) int {
	return max(s.o.MinRequests, s.o.Rounds*concurrency)
}

func (s *sweep) warmup(concurrency int) int {
	if s.o.NoWarmup {
		return 0
	}
	return concurrency
}

func (s *sweep) anyMeasured() bool {
	for _, c := range s.rec.Candidates {
		if len(c.Measurements) > 0 {
			return true
		}
	}
	return false
}

// usedGPUHours is what the candidates held so far, the running ones up to now.
func (s *sweep) usedGPUHours() float64 {
	sec := 0.0
	for _, c := range s.rec.Candidates {
		sec += c.GPUSeconds
		if c.State == stateRunning && c.Started != nil {
			sec += s.Now().Sub(*c.Started).Seconds() * float64(c.Config.GPUs)
		}
	}
	return sec / 3600
}

// budgetStatus is the budget as status shows it.
func (s *sweep) budgetStatus() *v1alpha1.ProfilingBudget {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.rec.Budget
	out := &v1alpha1.ProfilingBudget{
		GPUs: int32(b.TotalGPUs), EstimatedGPUHours: b.EstimatedGPUHours,
		EstimatedWallTime: metav1.Duration{Duration: b.EstimatedWallTime},
		UsedGPUHours:      s.usedGPUHours(),
	}
	if b.Deadline != nil {
		out.Deadline = &metav1.Time{Time: *b.Deadline}
	}
	for _, c := range s.rec.Candidates {
		if c.State == stateSkipped {
			continue
		}
		out.Candidates++
		switch c.State {
		case stateMeasured:
			out.Measured++
		case stateFailed:
			out.Failed++
		case statePruned:
			out.Pruned++
		}
	}
	return out
}

// report records the progress in the DGDR's status: the budget and the ProfilingComplete condition.
func (s *sweep) report(ctx context.Context, now string) error {
	b := s.budgetStatus()
	deadline := "no deadline"
	if b.Deadline != nil {
		deadline = "deadline " + b.Deadline.UTC().Format(time.RFC3339)
	}
	msg := fmt.Sprintf("thorough search: %d candidates planned, expected %.2f GPU-hours and %s on up to %d GPUs (%s); %d measured, %d failed, %d pruned, %.2f GPU-hours used; %s",
		b.Candidates, b.EstimatedGPUHours, b.EstimatedWallTime.Round(time.Second), b.GPUs, deadline, b.Measured, b.Failed, b.Pruned, b.UsedGPUHours, now)
	_, err := lifecycle.RecordCondition(ctx, s.Client, s.ref, metav1.Condition{
		Type: v1alpha1.ConditionProfilingComplete, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonProfiling, Message: msg,
	}, func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		if d.Status.ProfilingResults == nil {
			d.Status.ProfilingResults = &v1alpha1.ProfilingResults{}
		}
		d.Status.ProfilingResults.Budget = b
	})
	if lifecycle.IsGone(err) || errors.Is(err, errDGDRGone) {
		return errDGDRGone
	}
	return err
}

// sweep measures the candidates, several at once when the GPU budget holds them, in the order of their
// corrected merit, until every one is done or the deadline passes.
func (s *sweep) sweep(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	if !s.deadline.IsZero() {
		sctx, cancel = context.WithDeadline(ctx, s.deadline)
	}
	defer cancel()
	type done struct {
		c   *candidate
		err error
	}
	results := make(chan done)
	running := map[*candidate]bool{}
	used := 0
	var firstErr error
	for {
		if firstErr == nil && sctx.Err() == nil {
			s.mu.Lock()
			s.prune()
			next := s.startable(used, len(running))
			for _, c := range next {
				c.State = stateRunning
				if c.Started == nil {
					now := s.Now()
					c.Started = &now
				}
			}
			s.mu.Unlock()
			if len(next) > 0 {
				if err := s.persist(ctx); err != nil {
					firstErr = err
					cancel()
					next = nil
				}
			}
			for _, c := range next {
				running[c] = true
				used += c.Config.GPUs
				go func() { results <- done{c, s.measure(sctx, c)} }()
			}
			if len(next) > 0 {
				names := make([]string, len(next))
				for i, c := range next {
					names[i] = c.Name + " (" + profile.Describe(c.Config) + ")"
				}
				if err := s.report(ctx, "measuring "+strings.Join(names, ", ")); err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
			}
		}
		if len(running) == 0 {
			break
		}
		r := <-results
		delete(running, r.c)
		used -= r.c.Config.GPUs
		if r.err != nil && firstErr == nil {
			firstErr = r.err
			cancel()
		}
		if firstErr != nil {
			continue // wait for the others; the caller removes every candidate
		}
		s.mu.Lock()
		s.rec.Corrections = fitCorrections(s.rec.Candidates)
		line := fmt.Sprintf("%s %s", r.c.Name, r.c.State)
		if r.c.Reason != "" {
			line += ": " + r.c.Reason
		}
		s.mu.Unlock()
		if err := s.persist(ctx); err != nil {
			firstErr = err
			cancel()
			continue
		}
		if err := s.report(ctx, "last: "+line); err != nil {
			firstErr = err
			cancel()
		}
	}
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	for _, c := range s.rec.Candidates {
		if c.State == statePlanned {
			c.State, c.Reason = stateSkipped, "not measured: the deadline passed"
		}
	}
	s.mu.Unlock()
	return s.persist(ctx)
}

// startable picks the candidates to deploy now: the planned ones in order of corrected merit, as long
// as the next one fits the free GPUs and the parallelism (never skipping ahead, as the estimate assumes).
func (s *sweep) startable(usedGPUs, running int) []*candidate {
	var planned []*candidate
	for _, c := range s.rec.Candidates {
		if c.State == statePlanned {
			planned = append(planned, c)
		}
	}
	merit := func(c *candidate) float64 {
		k := correctionFor(s.rec.Corrections, c)
		best := -1.0
		for _, l := range c.Levels {
			f := k.apply(l.Predicted, 1)
			if f.TTFTMs <= s.req.SLA.TTFTMs && f.ITLMs <= s.req.SLA.ITLMs {
				best = max(best, f.TokensPerSecondPerGPU)
			}
		}
		return best
	}
	// Nothing measured yet: the plan's order (the rapid selection first) stands.
	if len(s.rec.Corrections) > 0 && s.rec.Corrections[""].Samples > 0 {
		slices.SortStableFunc(planned, func(a, b *candidate) int { return cmp.Compare(merit(b), merit(a)) })
	}
	var out []*candidate
	for _, c := range planned {
		if usedGPUs+c.Config.GPUs > s.p.totalGPUs || running >= s.o.MaxParallel {
			break
		}
		out = append(out, c)
		usedGPUs += c.Config.GPUs
		running++
	}
	return out
}

// prune re-fits the corrections and drops the planned candidates that can no longer matter: even
// corrected and given the benefit of the doubt, every load is dominated by a measured point and none
// would meet the SLA with more tokens/s/GPU than the best measured.
func (s *sweep) prune() {
	s.rec.Corrections = fitCorrections(s.rec.Candidates)
	j := newJudge(s.req.SLA, s.rec.Candidates, "")
	for _, c := range s.rec.Candidates {
		if c.State != statePlanned {
			continue
		}
		k := correctionFor(s.rec.Corrections, c)
		var fs []figures
		for _, l := range c.Levels {
			fs = append(fs, k.apply(l.Predicted, 1+s.o.Tolerance))
		}
		if hopeless, by := j.hopeless(fs); hopeless {
			c.State = statePruned
			c.Reason = fmt.Sprintf("not deployed: corrected by the measurements (TTFT ×%.2f, ITL ×%.2f, tokens/s/GPU ×%.2f) and given %.0f%% benefit of the doubt, every load is dominated by %s's measured points and none beats the best measured under the SLA",
				k.TTFT, k.ITL, k.TokensPerSecondPerGPU, s.o.Tolerance*100, by)
		}
	}
}

// stopEarly decides, after c's latest load, whether its sweep is over: the TTFT target is missed (higher
// loads only queue longer), or its measured point is dominated by another candidate's and its remaining
// loads, corrected by its own measurements, are too.
func (s *sweep) stopEarly(c *candidate, next int) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := c.Measurements[len(c.Measurements)-1]
	loose := 1 + s.o.Tolerance
	if last.Measured.TTFTMs > s.req.SLA.TTFTMs*loose {
		return true, fmt.Sprintf("stopped after concurrency %d: its TTFT %s ms is over the target %s ms, and higher loads only queue longer",
			last.Concurrency, trimFloat(last.Measured.TTFTMs), trimFloat(s.req.SLA.TTFTMs))
	}
	j := newJudge(s.req.SLA, s.rec.Candidates, c.Name)
	if lost, by := j.hopeless([]figures{last.Measured}); lost {
		own := correctionFor(fitCorrections([]*candidate{c}), c)
		var rest []figures
		for _, l := range c.Levels[min(next, len(c.Levels)):] {
			rest = append(rest, own.apply(l.Predicted, loose))
		}
		if hopeless, _ := j.hopeless(rest); hopeless {
			return true, fmt.Sprintf("stopped after concurrency %d: its measured point (%s) is dominated by %s's, and so are its remaining loads as predicted and corrected",
				last.Concurrency, describeFigures(last.Measured), by)
		}
	}
	return false, ""
}

// measure deploys c, waits until it is ready, benchmarks it at each load and deletes it. The outcome is
// recorded in c; the error is only for what the Job should retry (the API server unreachable).
func (s *sweep) measure(ctx context.Context, c *candidate) (err error) {
	crashed := false
	u, gerr := s.candidateDGD(c)
	if gerr != nil {
		s.outcome(c, stateFailed, "generating its DGD: "+gerr.Error())
		return nil
	}
	s.mu.Lock()
	c.DGD = u.GetName()
	s.mu.Unlock()
	// A DGD of that name that is not this DGDR's candidate is never overwritten, nor deleted.
	var live *unstructured.Unstructured
	if lerr := lifecycle.RetryTransient(ctx, func() (err error) {
		live, err = lifecycle.GetDGD(ctx, s.Client, s.d.Namespace, u.GetName())
		return err
	}); lerr != nil {
		return lerr
	}
	if live != nil && !s.ours(live) {
		s.outcome(c, stateFailed, fmt.Sprintf("DGD %s exists and is not a candidate of this DGDR: left untouched", u.GetName()))
		return nil
	}
	defer func() {
		if crashed {
			return // as a crash would: the DGD stays for the retry
		}
		// Wait until it is gone (its GPUs free for the next candidate), unless the deadline has come.
		if derr := s.remove(ctx, u.GetName(), !deadlineNear(ctx)); derr != nil && err == nil {
			err = derr
		}
		s.mu.Lock()
		now := s.Now()
		c.Finished = &now
		if c.Started != nil {
			c.GPUSeconds = now.Sub(*c.Started).Seconds() * float64(c.Config.GPUs)
		}
		s.mu.Unlock()
	}()

	// Transient errors (the server busy, a timeout) are retried; a refusal fails the candidate.
	if aerr := lifecycle.RetryTransient(ctx, func() error {
		_, err := lifecycle.ApplyDGD(ctx, s.Client, u, lifecycle.ApplyOptions{Force: true})
		return err
	}); aerr != nil {
		switch {
		case deadlineNear(ctx):
			s.outcome(c, stateSkipped, "not measured: the deadline passed")
			return nil
		case apierrors.IsInvalid(aerr) || apierrors.IsBadRequest(aerr) || apierrors.IsForbidden(aerr):
			s.outcome(c, stateFailed, "its DGD was refused: "+aerr.Error())
			return nil
		}
		return aerr
	}
	live, werr := s.waitReady(ctx, c, u.GetName())
	if werr != nil || live == nil {
		return werr
	}
	if herr := s.AfterPhase(v1alpha1.Phase(phaseThoroughReady + c.Name)); herr != nil {
		crashed = true
		return &crashError{herr}
	}
	url, eerr := s.o.Runtime.Endpoint(ctx, live)
	if eerr != nil {
		s.outcome(c, stateFailed, "its frontend cannot be reached: "+eerr.Error())
		return nil
	}
	planned := len(c.Levels)
	for i := 0; ; i++ {
		if gone, gerr := s.gone(ctx); gone || (gerr != nil && !deadlineNear(ctx)) {
			return cmp.Or(gerr, errDGDRGone)
		}
		if i > 0 && i <= planned {
			if stop, why := s.stopEarly(c, i); stop {
				s.outcome(c, stateMeasured, why)
				return nil
			}
		}
		var l levelPlan
		if i < planned {
			l = c.Levels[i]
		} else {
			// The planned loads are measured: pin down where the SLA is crossed.
			r := s.refine(c)
			if r == nil || i >= planned+maxRefinements {
				break
			}
			l = *r
			s.mu.Lock()
			c.Levels = append(c.Levels, l)
			s.mu.Unlock()
		}
		lr, berr := s.benchLevel(ctx, url, l, i)
		if lr != nil && lr.Requests > 0 {
			s.record(c, l, lr)
		}
		switch {
		case ctx.Err() != nil:
			if len(c.Measurements) > 0 {
				s.outcome(c, stateMeasured, fmt.Sprintf("stopped at the deadline after %d of %d loads", len(c.Measurements), len(c.Levels)))
			} else {
				s.outcome(c, stateSkipped, "not measured: the deadline passed before its first load")
			}
			return nil
		case berr != nil:
			s.outcome(c, stateFailed, fmt.Sprintf("the benchmark failed at concurrency %d: %v", l.Concurrency, berr))
			return nil
		case lr.Errors > 0 && float64(lr.Errors) > maxErrorFraction*float64(lr.Errors+lr.Requests):
			s.outcome(c, stateFailed, fmt.Sprintf("errors under load: %d of %d requests failed at concurrency %d (%s)",
				lr.Errors, lr.Errors+lr.Requests, l.Concurrency, strings.Join(lr.ErrorMessages, "; ")))
			return nil
		}
	}
	s.outcome(c, stateMeasured, "")
	return nil
}

// maxRefinements bounds the loads added to a candidate's sweep to find where it crosses the SLA.
const maxRefinements = 2

// refine proposes one more load for c once its planned loads are measured: when the SLA is crossed
// between two measured loads more than one batch apart, the largest batch at which TTFT and ITL,
// interpolated linearly between them, still meet it (the most tokens/s/GPU the candidate can offer under
// the SLA). nil when the crossing is pinned down, when nothing measured meets the SLA, or when even
// the interpolated point would not beat the best measured elsewhere.
func (s *sweep) refine(c *candidate) *levelPlan {
	s.mu.Lock()
	defer s.mu.Unlock()
	sla := s.req.SLA
	meets := func(f figures) bool { return f.TTFTMs <= sla.TTFTMs && f.ITLMs <= sla.ITLMs }
	var lo, hi *measurement // the largest batch meeting the SLA, the smallest above it missing it
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
	at := func(b int, f func(figures) float64) float64 {
		t := float64(b-lo.Batch) / float64(hi.Batch-lo.Batch)
		return f(lo.Measured) + t*(f(hi.Measured)-f(lo.Measured))
	}
	b := lo.Batch + 1
	for k := hi.Batch - 1; k > lo.Batch; k-- {
		if at(k, func(f figures) float64 { return f.TTFTMs }) <= sla.TTFTMs && at(k, func(f figures) float64 { return f.ITLMs }) <= sla.ITLMs {
			b = k
			break
		}
	}
	if j := newJudge(sla, s.rec.Candidates, c.Name); at(b, func(f figures) float64 { return f.TokensPerSecondPerGPU }) <= j.best {
		return nil
	}
	cfg := withServingBatch(c.Config, b)
	l := &levelPlan{Concurrency: slots(cfg), Batch: b, Refined: true}
	if p, err := s.req.Predictor(c.Config.Backend); err == nil {
		if pr, err := p.Predict(cfg, 0); err == nil {
			l.Predicted = figures{TTFTMs: pr.TTFTMs, ITLMs: pr.ITLMs, TokensPerSecondPerGPU: pr.TokensPerSecondPerGPU, TokensPerSecondPerUser: pr.TokensPerSecondPerUser}
		}
	}
	return l
}

// gone says whether the DGDR was deleted (or replaced by another of the same name).
func (s *sweep) gone(ctx context.Context) (bool, error) {
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	err := s.Client.Get(ctx, s.key, d)
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("reading DGDR %s: %w", s.key, err)
	}
	return d.UID != s.d.UID, nil
}

// crashError is an AfterPhase error during the sweep: the run stops as a crash would, leaving its
// candidates for the retry to find.
type crashError struct{ error }

func (e *crashError) Unwrap() error { return e.error }

// outcome records c's state and reason.
func (s *sweep) outcome(c *candidate, state, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.State, c.Reason = state, reason
	s.Log.Info("candidate done", "candidate", c.Name, "dgd", c.DGD, "state", state, "reason", reason, "measured", len(c.Measurements))
}

// waitReady waits for the Dynamo operator to report c ready. It records c failed when the operator
// reports failure, a pod crash-loops, runs out of memory or cannot pull its image, or the timeout
// passes; skipped when the deadline comes first. It returns the ready DGD (nil when it is not).
func (s *sweep) waitReady(ctx context.Context, c *candidate, name string) (*unstructured.Unstructured, error) {
	timeout := s.readyTimeout(c)
	begin := s.Now()
	failures := 0 // consecutive API errors: a few are retried, the deadline ends the wait
	for {
		u, fatal, note, err := s.readiness(ctx, c, name)
		switch {
		case err == nil:
			failures = 0
		case deadlineNear(ctx):
		case errors.Is(err, errDGDRGone) || failures >= 3:
			return nil, err
		default:
			failures++
		}
		if ctx.Err() != nil {
			s.outcome(c, stateSkipped, "not measured: the deadline passed while it started")
			return nil, nil
		}
		if u != nil {
			return u, nil
		}
		if fatal != "" {
			s.outcome(c, stateFailed, fatal)
			return nil, nil
		}
		if err == nil && s.Now().Sub(begin) > timeout {
			s.outcome(c, stateFailed, fmt.Sprintf("not ready after %s: %s", timeout.Round(time.Second), note))
			return nil, nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(s.PollInterval):
		}
	}
}

// readiness reads the candidate once: the ready DGD, or why it will never be ready (fatal), or what it
// is waiting for (note).
func (s *sweep) readiness(ctx context.Context, c *candidate, name string) (ready *unstructured.Unstructured, fatal, note string, err error) {
	if gone, err := s.gone(ctx); err != nil || gone {
		return nil, "", "", cmp.Or(err, errDGDRGone)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
	if err := s.Client.Get(ctx, types.NamespacedName{Namespace: s.d.Namespace, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "its DGD was deleted while it started", "", nil
		}
		return nil, "", "", fmt.Errorf("reading candidate DGD %s: %w", name, err)
	}
	st := lifecycle.ReadDGDState(u)
	if st.Ready {
		s.mu.Lock()
		now := s.Now()
		c.Ready = &now
		s.mu.Unlock()
		return u, "", "", nil
	}
	if st.Failed {
		return nil, "the Dynamo operator reports it failed: " + st.Message, "", nil
	}
	fatal, pods, err := s.podProblem(ctx, name)
	if err != nil {
		return nil, "", "", err
	}
	note = st.Message
	if pods != "" {
		note += "; " + pods
	}
	return nil, fatal, note, nil
}

// deadlineNear says an error may be the deadline arriving rather than a fault: client-go's rate limiter
// refuses a request it could not finish before the context's deadline, just before the context ends.
func deadlineNear(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ctx.Err() != nil || (ok && time.Until(d) < time.Second)
}

// podProblem looks at the candidate's pods for what will not mend by waiting: a container killed for
// running out of memory, crash-looping or unable to start. note is a softer hint for the timeout
// message (unschedulable pods).
func (s *sweep) podProblem(ctx context.Context, dgd string) (fatal, note string, err error) {
	pods := &corev1.PodList{}
	if err := s.Client.List(ctx, pods, client.InNamespace(s.d.Namespace), client.MatchingLabels{podLabelDGD: dgd}); err != nil {
		if apierrors.IsForbidden(err) {
			return "", "", nil
		}
		return "", "", fmt.Errorf("listing the pods of candidate %s: %w", dgd, err)
	}
	for _, p := range pods.Items {
		for _, cs := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
			where := fmt.Sprintf("pod %s container %s", p.Name, cs.Name)
			for _, t := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
				if t != nil && t.Reason == "OOMKilled" {
					return fmt.Sprintf("%s ran out of memory (OOMKilled, exit code %d)", where, t.ExitCode), "", nil
				}
			}
			w := cs.State.Waiting
			if w == nil {
				continue
			}
			switch w.Reason {
			case "CrashLoopBackOff":
				last := ""
				if t := cs.LastTerminationState.Terminated; t != nil {
					last = fmt.Sprintf(", last exit code %d %s %s", t.ExitCode, t.Reason, strings.TrimSpace(t.Message))
				}
				return fmt.Sprintf("%s is crash-looping (%d restarts%s)", where, cs.RestartCount, strings.TrimRight(last, " ")), "", nil
			case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError":
				return fmt.Sprintf("%s cannot start: %s: %s", where, w.Reason, w.Message), "", nil
			}
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && cond.Reason == corev1.PodReasonUnschedulable {
				note = fmt.Sprintf("pod %s is unschedulable: %s", p.Name, cond.Message)
			}
		}
	}
	return "", note, nil
}

// benchLevel measures one load. The first load retries while the frontend is not routing yet.
func (s *sweep) benchLevel(ctx context.Context, url string, l levelPlan, index int) (*bench.LevelResult, error) {
	opts := bench.Options{
		URL: url, ISL: s.req.Workload.ISL, OSL: s.req.Workload.OSL,
		Concurrency: []int{l.Concurrency}, Requests: s.requests(l.Concurrency),
		SkipCalibration: s.o.SkipCalibration, RequestTimeout: s.o.RequestTimeout, Seed: uint64(index + 1),
	}
	if !s.o.NoWarmup {
		opts.Warmup = -1
	}
	tries := 1
	if index == 0 {
		tries += s.o.StartupRetries
	}
	var err error
	for try := range tries {
		var res bench.Result
		res, err = bench.Run(ctx, opts)
		if len(res.Levels) > 0 {
			return &res.Levels[0], err
		}
		if ctx.Err() != nil || try == tries-1 {
			break
		}
		s.Log.Info("the candidate's frontend does not answer yet", "url", url, "error", err.Error())
		select {
		case <-ctx.Done():
		case <-time.After(s.PollInterval):
		}
	}
	return nil, err
}

// record stores one measured load of c with its prediction.
func (s *sweep) record(c *candidate, l levelPlan, lr *bench.LevelResult) {
	m := measurement{
		Concurrency: l.Concurrency, Batch: l.Batch, Predicted: l.Predicted,
		Measured: figures{
			TTFTMs: lr.TTFT.Mean, ITLMs: lr.ITL.Mean, TokensPerSecondPerUser: lr.TokensPerSecondPerUser,
			TokensPerSecondPerGPU: lr.OutputTokensPerSecond / float64(max(c.Config.GPUs, 1)),
		},
		TTFTP90Ms: lr.TTFT.P90, ITLP90Ms: lr.ITL.P90, Requests: lr.Requests, Errors: lr.Errors, Bench: *lr,
	}
	s.mu.Lock()
	c.Measurements = append(c.Measurements, m)
	s.mu.Unlock()
}

// remove deletes a candidate DGD, even when ctx has ended, and with wait waits until it is gone.
func (s *sweep) remove(ctx context.Context, name string, wait bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.DeleteTimeout)
	defer cancel()
	var u *unstructured.Unstructured
	if err := lifecycle.RetryTransient(ctx, func() (err error) {
		u, err = lifecycle.GetDGD(ctx, s.Client, s.d.Namespace, name)
		return err
	}); err != nil || u == nil {
		return err
	}
	if !s.ours(u) {
		s.Log.Info("not deleting a DGD that is not a candidate of this DGDR", "dgd", name)
		return nil
	}
	// The precondition: should the DGD have been replaced meanwhile, the other one stays.
	if err := s.Client.Delete(ctx, u, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: ptr.To(u.GetUID())}); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return fmt.Errorf("deleting candidate DGD %s: %w", name, err)
	}
	for wait {
		err := s.Client.Get(ctx, client.ObjectKeyFromObject(u), u)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if ctx.Err() != nil {
			s.Log.Info("the candidate DGD is not gone yet; going on", "dgd", name)
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(s.PollInterval):
		}
	}
	return nil
}

// removeAll deletes every candidate DGD of the DGDR (by label), whatever ended the search. It does not
// wait for them to go: nothing else is deployed after it.
func (s *sweep) removeAll(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	dgds, err := s.listCandidates(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, u := range dgds {
		errs = append(errs, s.remove(ctx, u.GetName(), false))
	}
	return errors.Join(errs...)
}

// measuredPoints are the measured loads of the candidates that did not fail, as configurations of the
// whole budget (the replicas it holds, like rapid's), with their predictions by description, and a
// summary of the outcomes.
func (s *sweep) measuredPoints() ([]profile.Candidate, map[string]figures, string) {
	var points []profile.Candidate
	predicted := map[string]figures{}
	var failed []string
	n := map[string]int{}
	for _, c := range s.rec.Candidates {
		n[c.State]++
		if c.State == stateFailed {
			failed = append(failed, c.Name+": "+c.Reason)
		}
		if c.State != stateMeasured {
			continue
		}
		for _, m := range c.Measurements {
			if m.Requests == 0 {
				continue
			}
			cfg := s.pointConfig(c, m)
			points = append(points, profile.Candidate{Config: cfg, Predicted: true})
			predicted[profile.Describe(cfg)] = m.Predicted
		}
	}
	summary := fmt.Sprintf("%d candidates (%d measured, %d failed, %d pruned, %d skipped)",
		len(s.rec.Candidates), n[stateMeasured], n[stateFailed], n[statePruned], n[stateSkipped])
	if len(failed) > 0 {
		summary += "; failed: " + strings.Join(failed, "; ")
	}
	return points, predicted, summary
}

// pointConfig is a measured load as a configuration of the budget: c's layout with the load's batch,
// as many replicas as the budget holds, and the measured figures (which hold per replica).
func (s *sweep) pointConfig(c *candidate, m measurement) profile.Config {
	cfg := withServingBatch(c.Config, m.Batch)
	per := cfg.GPUsPerReplica()
	cfg.Replicas = max(s.p.totalGPUs/max(per, 1), 1)
	cfg.GPUs = cfg.Replicas * per
	cfg.TTFTMs, cfg.ITLMs = m.Measured.TTFTMs, m.Measured.ITLMs
	cfg.TokensPerSecondPerGPU, cfg.TokensPerSecondPerUser = m.Measured.TokensPerSecondPerGPU, m.Measured.TokensPerSecondPerUser
	return cfg
}
