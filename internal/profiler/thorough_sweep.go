package profiler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
	"github.com/dgdr-dev/dgdr/internal/thorough"
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
	pl       thorough.Planner
	deadline time.Time

	mu  sync.Mutex
	rec *thorough.Record
	// calNote is what the status message says of the calibration the rapid plan used.
	calNote string
}

// podLabelDGD is the label the Dynamo operator puts on a DGD's pods.
const podLabelDGD = "nvidia.com/dynamo-graph-deployment-name"

// resume takes over what an earlier run of the same DGDR recorded: finished candidates keep their
// outcome, the one being measured is measured again (its DGD, if still there, is reused), and candidate
// DGDs that are not to be measured any more are removed.
func (s *sweep) resume(ctx context.Context, old *thorough.Record) error {
	s.mu.Lock()
	again := thorough.Resume(s.rec, old)
	s.mu.Unlock()
	for _, name := range again {
		s.Log.Info("measuring again the candidate a previous run was measuring", "candidate", name)
	}

	planned := map[string]*thorough.Candidate{}
	for _, c := range s.rec.Candidates {
		if c.State == thorough.StatePlanned {
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

func (s *sweep) readyTimeout(c *thorough.Candidate) time.Duration {
	if s.o.ReadyTimeout > 0 {
		return s.o.ReadyTimeout
	}
	return 10*time.Minute + 2*s.pl.Startup(c)
}

// budgetStatus is the budget as status shows it.
func (s *sweep) budgetStatus() *v1alpha1.ProfilingBudget {
	s.mu.Lock()
	defer s.mu.Unlock()
	return thorough.BudgetStatus(s.rec, s.Now())
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
		c   *thorough.Candidate
		err error
	}
	results := make(chan done)
	running := map[*thorough.Candidate]bool{}
	used := 0
	var firstErr error
	for {
		if firstErr == nil && sctx.Err() == nil {
			if skip, err := s.between(ctx); err != nil {
				firstErr = err
				cancel()
			} else {
				s.skipPlanned(skip)
			}
		}
		if firstErr == nil && sctx.Err() == nil {
			s.mu.Lock()
			s.pl.Prune(s.rec)
			next := s.pl.Startable(s.rec, used, len(running))
			for _, c := range next {
				c.State = thorough.StateRunning
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
		s.rec.Corrections = thorough.FitCorrections(s.rec.Candidates)
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
		if c.State == thorough.StatePlanned {
			c.State, c.Reason = thorough.StateSkipped, "not measured: the deadline passed"
		}
	}
	s.mu.Unlock()
	return s.persist(ctx)
}

// measure deploys c, waits until it is ready, benchmarks it at each load and deletes it. The outcome is
// recorded in c; the error is only for what the Job should retry (the API server unreachable).
func (s *sweep) measure(ctx context.Context, c *thorough.Candidate) (err error) {
	crashed := false
	u, gerr := s.candidateDGD(c)
	if gerr != nil {
		s.outcome(c, thorough.StateFailed, "generating its DGD: "+gerr.Error())
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
		s.outcome(c, thorough.StateFailed, fmt.Sprintf("DGD %s exists and is not a candidate of this DGDR: left untouched", u.GetName()))
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
			s.outcome(c, thorough.StateSkipped, "not measured: the deadline passed")
			return nil
		case apierrors.IsInvalid(aerr) || apierrors.IsBadRequest(aerr) || apierrors.IsForbidden(aerr):
			s.outcome(c, thorough.StateFailed, "its DGD was refused: "+aerr.Error())
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
		s.outcome(c, thorough.StateFailed, "its frontend cannot be reached: "+eerr.Error())
		return nil
	}
	planned := len(c.Levels)
	for i := 0; ; i++ {
		skip, gerr := s.between(ctx)
		if gerr != nil && (errors.Is(gerr, errDGDRGone) || lifecycle.IsSuperseded(gerr) || !deadlineNear(ctx)) {
			return gerr
		}
		if slices.Contains(skip, candidateNumber(c)) {
			s.outcome(c, thorough.StateSkipped, fmt.Sprintf("skipped by kubectl dgdr cancel --candidate %d after %d loads", candidateNumber(c), len(c.Measurements)))
			return nil
		}
		if i > 0 && i <= planned {
			s.mu.Lock()
			stop, why := s.pl.StopEarly(s.rec, c, i)
			s.mu.Unlock()
			if stop {
				s.outcome(c, thorough.StateMeasured, why)
				return nil
			}
		}
		var l thorough.LevelPlan
		if i < planned {
			l = c.Levels[i]
		} else {
			// The planned loads are measured: pin down where the SLA is crossed.
			s.mu.Lock()
			r := s.pl.Refine(s.rec, c)
			if r != nil {
				c.Levels = append(c.Levels, *r)
			}
			s.mu.Unlock()
			if r == nil {
				break
			}
			l = *r
		}
		lr, berr := s.benchLevel(ctx, url, l, i)
		if lr != nil && lr.Requests > 0 {
			s.record(c, l, lr)
		}
		switch {
		case ctx.Err() != nil:
			if len(c.Measurements) > 0 {
				s.outcome(c, thorough.StateMeasured, fmt.Sprintf("stopped at the deadline after %d of %d loads", len(c.Measurements), len(c.Levels)))
			} else {
				s.outcome(c, thorough.StateSkipped, "not measured: the deadline passed before its first load")
			}
			return nil
		case berr != nil:
			s.outcome(c, thorough.StateFailed, fmt.Sprintf("the benchmark failed at concurrency %d: %v", l.Concurrency, berr))
			return nil
		case thorough.TooManyErrors(lr.Errors, lr.Requests):
			s.outcome(c, thorough.StateFailed, fmt.Sprintf("errors under load: %d of %d requests failed at concurrency %d (%s)",
				lr.Errors, lr.Errors+lr.Requests, l.Concurrency, strings.Join(lr.ErrorMessages, "; ")))
			return nil
		}
	}
	s.outcome(c, thorough.StateMeasured, "")
	return nil
}

// between is what the search checks between its steps (before starting candidates, before each load):
// errDGDRGone when the DGDR was deleted or replaced, ErrSuperseded when a newer generation of its spec is
// stored, else the candidate numbers the user asked to skip (AnnotationSkipCandidates).
func (s *sweep) between(ctx context.Context) ([]int, error) {
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	err := s.Client.Get(ctx, s.key, d)
	switch {
	case apierrors.IsNotFound(err):
		return nil, errDGDRGone
	case err != nil:
		return nil, fmt.Errorf("reading DGDR %s: %w", s.key, err)
	case d.UID != s.d.UID:
		return nil, errDGDRGone
	case s.ref.Generation != 0 && d.Generation != s.ref.Generation:
		return nil, fmt.Errorf("%w (run %d, stored generation %d)", lifecycle.ErrSuperseded, s.ref.Generation, d.Generation)
	}
	skip, perr := v1alpha1.ParseSkipCandidates(d.Annotations[v1alpha1.AnnotationSkipCandidates])
	if perr != nil {
		s.Log.Info("ignoring the annotation", "annotation", v1alpha1.AnnotationSkipCandidates, "error", perr.Error())
	}
	return skip, nil
}

// skipError is a candidate the user asked to skip while it started.
type skipError struct{ msg string }

func (e *skipError) Error() string { return e.msg }

// skipPlanned marks the planned candidates the user asked to skip.
func (s *sweep) skipPlanned(skip []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.rec.Candidates {
		if k := candidateNumber(c); c.State == thorough.StatePlanned && slices.Contains(skip, k) {
			c.State, c.Reason = thorough.StateSkipped, fmt.Sprintf("skipped by kubectl dgdr cancel --candidate %d before it started", k)
		}
	}
}

// candidateNumber is k of a candidate named c<k> (0 when it is not so named).
func candidateNumber(c *thorough.Candidate) int {
	k, err := strconv.Atoi(strings.TrimPrefix(c.Name, "c"))
	if err != nil {
		return 0
	}
	return k
}

// crashError is an AfterPhase error during the sweep: the run stops as a crash would, leaving its
// candidates for the retry to find.
type crashError struct{ error }

func (e *crashError) Unwrap() error { return e.error }

// outcome records c's state and reason.
func (s *sweep) outcome(c *thorough.Candidate, state, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.State, c.Reason = state, reason
	s.Log.Info("candidate done", "candidate", c.Name, "dgd", c.DGD, "state", state, "reason", reason, "measured", len(c.Measurements))
}

// waitReady waits for the Dynamo operator to report c ready. It records c failed when the operator
// reports failure, a pod crash-loops, runs out of memory or cannot pull its image, or the timeout
// passes; skipped when the deadline comes first. It returns the ready DGD (nil when it is not).
func (s *sweep) waitReady(ctx context.Context, c *thorough.Candidate, name string) (*unstructured.Unstructured, error) {
	timeout := s.readyTimeout(c)
	begin := s.Now()
	failures := 0 // consecutive API errors: a few are retried, the deadline ends the wait
	for {
		u, fatal, note, err := s.readiness(ctx, c, name)
		var skipped *skipError
		switch {
		case errors.As(err, &skipped):
			s.outcome(c, thorough.StateSkipped, skipped.Error())
			return nil, nil
		case err == nil:
			failures = 0
		case deadlineNear(ctx):
		case errors.Is(err, errDGDRGone) || lifecycle.IsSuperseded(err) || failures >= 3:
			return nil, err
		default:
			failures++
		}
		if ctx.Err() != nil {
			s.outcome(c, thorough.StateSkipped, "not measured: the deadline passed while it started")
			return nil, nil
		}
		if u != nil {
			return u, nil
		}
		if fatal != "" {
			s.outcome(c, thorough.StateFailed, fatal)
			return nil, nil
		}
		if err == nil && s.Now().Sub(begin) > timeout {
			s.outcome(c, thorough.StateFailed, fmt.Sprintf("not ready after %s: %s", timeout.Round(time.Second), note))
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
func (s *sweep) readiness(ctx context.Context, c *thorough.Candidate, name string) (ready *unstructured.Unstructured, fatal, note string, err error) {
	skip, err := s.between(ctx)
	if err != nil {
		return nil, "", "", err
	}
	if k := candidateNumber(c); slices.Contains(skip, k) {
		return nil, "", "", &skipError{fmt.Sprintf("skipped by kubectl dgdr cancel --candidate %d while it started", k)}
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
func (s *sweep) benchLevel(ctx context.Context, url string, l thorough.LevelPlan, index int) (*bench.LevelResult, error) {
	opts := bench.Options{
		URL: url, ISL: s.pl.Request.Workload.ISL, OSL: s.pl.Request.Workload.OSL,
		Concurrency: []int{l.Concurrency}, Requests: s.pl.Settings.Requests(l.Concurrency),
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
func (s *sweep) record(c *thorough.Candidate, l thorough.LevelPlan, lr *bench.LevelResult) {
	m := thorough.Measurement{
		Concurrency: l.Concurrency, Batch: l.Batch, Predicted: l.Predicted,
		Measured: thorough.Figures{
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
