package lifecycle

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// ErrSuperseded is returned by a write of run g when the stored DGDR is at another generation: a newer
// spec is being profiled, and run g must stop without touching the status.
var ErrSuperseded = errors.New("a newer generation of the DGDR's spec is stored: this run is superseded")

// IsSuperseded reports whether err says the run is superseded.
func IsSuperseded(err error) bool { return errors.Is(err, ErrSuperseded) }

// checkRef refuses a write for a DGDR that is not the one (UID) or not at the generation ref names.
func checkRef(ref Ref, d *v1alpha1.DynamoGraphDeploymentRequest) error {
	if ref.UID != "" && d.UID != ref.UID {
		return ErrReplaced
	}
	if ref.Generation != 0 && d.Generation != ref.Generation {
		return fmt.Errorf("%w (run %d, stored generation %d)", ErrSuperseded, ref.Generation, d.Generation)
	}
	return nil
}

// RunStart is what the profiler of a run records when it takes the run up.
type RunStart struct {
	JobName  string
	Strategy v1alpha1.SearchStrategy
	Now      metav1.Time
}

// IsNewRun reports whether run gen has not been started on d yet: it has no record, and d's phase does not
// already describe gen (a DGDR profiled before run records existed keeps its phase).
func IsNewRun(d *v1alpha1.DynamoGraphDeploymentRequest, gen int64) bool {
	if d.Status.Run(gen) != nil {
		return false
	}
	return d.Status.Phase == "" || d.Status.Phase == v1alpha1.PhasePending || d.Status.ObservedGeneration < gen
}

// StartRun records that run ref.Generation started: the DGDR moves to Pending from whatever phase the
// previous run left (the one transition that may go back, and only for a newer generation),
// status.observedGeneration becomes the run's generation, its record is added at the head of status.runs
// (older ones still running marked Superseded, the list bounded by MaxRuns), and the conditions that
// described the previous spec are dropped. DeploymentReady and the DGD name stay: the DGD of the previous
// run serves until this one replaces it.
func StartRun(ctx context.Context, c client.Client, ref Ref, s RunStart) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	if ref.Generation == 0 {
		return nil, fmt.Errorf("starting a run of DGDR %s: expected a generation", ref.NamespacedName)
	}
	return UpdateStatus(ctx, c, ref.NamespacedName, func(d *v1alpha1.DynamoGraphDeploymentRequest) error {
		if err := checkRef(ref, d); err != nil {
			return err
		}
		if !IsNewRun(d, ref.Generation) {
			return &TransitionError{Name: d.Name, From: d.Status.Phase, To: v1alpha1.PhasePending}
		}
		msg := "spec changed"
		if d.Status.ObservedGeneration == 0 {
			msg = "created"
		}
		if r, ok := v1alpha1.RerunReason(d); ok {
			msg = "rerun: " + cmp.Or(r, "no reason given")
		}
		for i := range d.Status.Runs {
			if r := &d.Status.Runs[i]; r.Outcome == v1alpha1.RunRunning {
				r.Outcome, r.CompletionTime = v1alpha1.RunSuperseded, &s.Now
				r.Message = fmt.Sprintf("superseded by run %d", ref.Generation)
			}
		}
		rec := v1alpha1.RunRecord{
			Generation: ref.Generation, InputsHash: v1alpha1.InputsHash(&d.Spec), Strategy: s.Strategy,
			JobName: s.JobName, StartTime: &s.Now, Message: msg,
		}
		d.Status.Runs = append([]v1alpha1.RunRecord{rec}, d.Status.Runs...)
		if len(d.Status.Runs) > v1alpha1.MaxRuns {
			d.Status.Runs = d.Status.Runs[:v1alpha1.MaxRuns]
		}
		if d.Status.ObservedGeneration > 0 && d.Status.ObservedGeneration < ref.Generation {
			for _, t := range []string{v1alpha1.ConditionValidated, v1alpha1.ConditionProfilingComplete, v1alpha1.ConditionDGDGenerated} {
				meta.RemoveStatusCondition(&d.Status.Conditions, t)
			}
			d.Status.ProfilingResults = nil
		}
		d.Status.Phase = v1alpha1.PhasePending
		d.Status.ObservedGeneration = ref.Generation
		if s.JobName != "" {
			d.Status.ProfilingJobName = s.JobName
		}
		return nil
	})
}

// endRun records how the run the status describes (status.observedGeneration) ended, if it is still
// running; the first outcome recorded wins.
func endRun(d *v1alpha1.DynamoGraphDeploymentRequest, outcome v1alpha1.RunOutcome, message string, pick *v1alpha1.RunPick) {
	r := d.Status.Run(d.Status.ObservedGeneration)
	if r == nil || r.Outcome != v1alpha1.RunRunning {
		return
	}
	now := metav1.Now()
	r.Outcome, r.CompletionTime, r.Pick = outcome, &now, pick
	if message != "" {
		r.Message = message
	}
}

// RecordSuperseded marks run ref.Generation Superseded, if it is recorded and still running. The phase is
// the newer run's and is left alone.
func RecordSuperseded(ctx context.Context, c client.Client, ref Ref, message string) error {
	_, err := UpdateStatus(ctx, c, ref.NamespacedName, func(d *v1alpha1.DynamoGraphDeploymentRequest) error {
		if ref.UID != "" && d.UID != ref.UID {
			return ErrReplaced
		}
		r := d.Status.Run(ref.Generation)
		if r == nil || r.Outcome != v1alpha1.RunRunning {
			return errUnchanged
		}
		now := metav1.Now()
		r.Outcome, r.CompletionTime, r.Message = v1alpha1.RunSuperseded, &now, message
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	return err
}

// errUnchanged stops UpdateStatus without a write.
var errUnchanged = errors.New("nothing to record")

// MarkCancelled records that run ref.Generation was cancelled (`kubectl dgdr cancel`): the DGDR becomes
// Failed with ProfilingComplete False, reason Cancelled, and the run's record says so. Only a run still
// profiling (Pending or Profiling, and the generation the status describes) can be cancelled.
func MarkCancelled(ctx context.Context, c client.Client, ref Ref, message string) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	return UpdateStatus(ctx, c, ref.NamespacedName, func(d *v1alpha1.DynamoGraphDeploymentRequest) error {
		if ref.UID != "" && d.UID != ref.UID {
			return ErrReplaced
		}
		if d.Status.ObservedGeneration != ref.Generation || !isProfiling(d.Status.Phase) {
			return &TransitionError{Name: d.Name, From: d.Status.Phase, To: v1alpha1.PhaseFailed}
		}
		d.Status.Phase = v1alpha1.PhaseFailed
		SetCondition(d, v1alpha1.ConditionProfilingComplete, metav1.ConditionFalse, v1alpha1.ReasonCancelled, message)
		endRun(d, v1alpha1.RunCancelled, message, nil)
		return nil
	})
}

func isProfiling(p v1alpha1.Phase) bool {
	for _, q := range profilingPhases {
		if p == q {
			return true
		}
	}
	return false
}

// PickOf is the run record's summary of a selected configuration.
func PickOf(sel *v1alpha1.SelectedConfig) *v1alpha1.RunPick {
	if sel == nil {
		return nil
	}
	var workers []string
	for _, w := range sel.Workers {
		shape := fmt.Sprintf("TP%d", w.TP)
		if w.PP > 1 {
			shape += fmt.Sprintf("·PP%d", w.PP)
		}
		if w.DP > 1 {
			shape += fmt.Sprintf("·DP%d", w.DP)
		}
		if w.EP > 1 {
			shape += fmt.Sprintf("·EP%d", w.EP)
		}
		workers = append(workers, fmt.Sprintf("%d×%s %s", w.Count, w.Role, shape))
	}
	summary := fmt.Sprintf("%s %s", sel.Backend, sel.Mode)
	if len(workers) > 0 {
		summary += " " + strings.Join(workers, " + ")
	}
	summary += fmt.Sprintf(", %d replica(s), %d GPUs", sel.Replicas, sel.GPUs)
	return &v1alpha1.RunPick{Summary: summary, Throughput: sel.Throughput, Measured: sel.Measured, MeetsSLA: sel.MeetsSLA}
}
