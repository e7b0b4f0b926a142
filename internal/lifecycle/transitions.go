package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// The DGDR state machine. Every phase change goes through one of the Mark functions below (and
// RecordDGDState for Deploying → Deployed), each one status update with the conflict retry of
// UpdateStatus that refuses a move the machine does not have:
//
//	"" / Pending → Pending → Profiling → Ready → Deploying ⇄ Deployed
//	any phase but Deployed → Failed (the first cause recorded wins); Failed with results → Deploying
//	any phase → Pending when the run of a newer generation starts (StartRun, runs.go)

// legalFrom lists, for each phase, the phases it may be entered from (staying is allowed where a retry
// repeats a step).
var legalFrom = map[v1alpha1.Phase][]v1alpha1.Phase{
	v1alpha1.PhasePending:   {"", v1alpha1.PhasePending},
	v1alpha1.PhaseProfiling: {"", v1alpha1.PhasePending, v1alpha1.PhaseProfiling},
	v1alpha1.PhaseReady:     {v1alpha1.PhaseProfiling, v1alpha1.PhaseReady},
	// A Failed request with results (its DGD could not be applied) may still be promoted.
	v1alpha1.PhaseDeploying: {v1alpha1.PhaseReady, v1alpha1.PhaseDeploying, v1alpha1.PhaseDeployed, v1alpha1.PhaseFailed},
	v1alpha1.PhaseDeployed:  {v1alpha1.PhaseDeploying, v1alpha1.PhaseDeployed},
	v1alpha1.PhaseFailed:    {"", v1alpha1.PhasePending, v1alpha1.PhaseProfiling, v1alpha1.PhaseReady, v1alpha1.PhaseDeploying},
}

// Legal reports whether the state machine moves from one phase to another.
func Legal(from, to v1alpha1.Phase) bool { return slices.Contains(legalFrom[to], from) }

// TransitionError is a refused phase change: the DGDR is elsewhere than the caller thought (another
// writer moved it first).
type TransitionError struct {
	Name     string
	From, To v1alpha1.Phase
}

func (e *TransitionError) Error() string {
	from := e.From
	if from == "" {
		from = "(none)"
	}
	return fmt.Sprintf("DGDR %s cannot move from phase %s to %s", e.Name, from, e.To)
}

// IsTransitionError reports whether err is a refused phase change.
func IsTransitionError(err error) bool {
	var te *TransitionError
	return errors.As(err, &te)
}

// ErrReplaced is returned when the DGDR of that name is another object than the one the caller works for
// (deleted and created again).
var ErrReplaced = errors.New("the DGDR was deleted or replaced by another of the same name")

// Ref names the DGDR a transition is for; a UID, when set, must match the stored object's, and a
// Generation (the run of a profiler), when set, its metadata.generation (else ErrSuperseded).
type Ref struct {
	types.NamespacedName
	UID        types.UID
	Generation int64
}

// RefOf is the Ref of a stored DGDR.
func RefOf(d *v1alpha1.DynamoGraphDeploymentRequest) Ref {
	return Ref{NamespacedName: client.ObjectKeyFromObject(d), UID: d.UID}
}

// transition moves the DGDR to phase to (when legal from the stored phase and, if from is given, from
// one of those) and applies mutate in the same write.
func transition(ctx context.Context, c client.Client, ref Ref, to v1alpha1.Phase, from []v1alpha1.Phase, mutate func(*v1alpha1.DynamoGraphDeploymentRequest)) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	return UpdateStatus(ctx, c, ref.NamespacedName, func(d *v1alpha1.DynamoGraphDeploymentRequest) error {
		if err := checkRef(ref, d); err != nil {
			return err
		}
		if !Legal(d.Status.Phase, to) || (from != nil && !slices.Contains(from, d.Status.Phase)) {
			return &TransitionError{Name: d.Name, From: d.Status.Phase, To: to}
		}
		d.Status.Phase = to
		if mutate != nil {
			mutate(d)
		}
		return nil
	})
}

// IsGone reports whether err says the DGDR is not there any more (deleted, or replaced).
func IsGone(err error) bool { return apierrors.IsNotFound(err) || errors.Is(err, ErrReplaced) }

// MarkPending records that the profiler took the request up, with the profiling Job's name.
func MarkPending(ctx context.Context, c client.Client, ref Ref, jobName string) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	return transition(ctx, c, ref, v1alpha1.PhasePending, nil, func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		if jobName != "" {
			d.Status.ProfilingJobName = jobName
		}
	})
}

// RecordCondition records a condition that does not change the phase (Validated, the thorough search's
// progress), on the DGDR ref names.
func RecordCondition(ctx context.Context, c client.Client, ref Ref, cond metav1.Condition, mutate func(*v1alpha1.DynamoGraphDeploymentRequest)) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	return UpdateStatus(ctx, c, ref.NamespacedName, func(d *v1alpha1.DynamoGraphDeploymentRequest) error {
		if err := checkRef(ref, d); err != nil {
			return err
		}
		if mutate != nil {
			mutate(d)
		}
		SetCondition(d, cond.Type, cond.Status, cond.Reason, cond.Message)
		return nil
	})
}

// MarkProfiling records that the search started at start.
func MarkProfiling(ctx context.Context, c client.Client, ref Ref, start metav1.Time, message string) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	return transition(ctx, c, ref, v1alpha1.PhaseProfiling, nil, func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		d.Status.ProfilingResults = &v1alpha1.ProfilingResults{StartTime: &start}
		SetCondition(d, v1alpha1.ConditionProfilingComplete, metav1.ConditionFalse, v1alpha1.ReasonProfiling, message)
	})
}

// Profiled is what a finished search records with MarkReady.
type Profiled struct {
	Results *v1alpha1.ProfilingResults
	DGDName string
	// MeetsSLA picks the ProfilingComplete reason (SLAMet or SLANotMet).
	MeetsSLA bool
	// Message of ProfilingComplete (how the search went).
	Message string
	// ResultsConfigMap holds the run's full results (recorded in the run's record).
	ResultsConfigMap string
}

// MarkReady records the search's results and the generated DGD.
func MarkReady(ctx context.Context, c client.Client, ref Ref, p Profiled) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	return transition(ctx, c, ref, v1alpha1.PhaseReady, nil, func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		d.Status.ProfilingResults = p.Results
		d.Status.DGDName = p.DGDName
		reason := v1alpha1.ReasonSLAMet
		if !p.MeetsSLA {
			reason = v1alpha1.ReasonSLANotMet
		}
		SetCondition(d, v1alpha1.ConditionProfilingComplete, metav1.ConditionTrue, reason, p.Message)
		SetCondition(d, v1alpha1.ConditionDGDGenerated, metav1.ConditionTrue, v1alpha1.ReasonGenerated,
			fmt.Sprintf("DGD %s generated from the selected configuration; see kubectl dgdr results %s", p.DGDName, d.Name))
		endRun(d, v1alpha1.RunSucceeded, "", PickOf(p.Results.SelectedConfig))
		// One results ConfigMap per DGDR: the newest run's report replaces the older runs'.
		for i := range d.Status.Runs {
			if r := &d.Status.Runs[i]; r.ResultsConfigMap == p.ResultsConfigMap {
				r.ResultsConfigMap = ""
			}
		}
		if r := d.Status.Run(d.Status.ObservedGeneration); r != nil {
			r.ResultsConfigMap = p.ResultsConfigMap
		}
	})
}

// MarkDeploying records that DGD dgdName was applied. promoted, when set, says which point a user
// promoted (the DGDGenerated condition then names it); applied, when set, goes in the record of the run
// the status describes.
func MarkDeploying(ctx context.Context, c client.Client, ref Ref, dgdName, promoted string, applied *v1alpha1.RunApplied) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	return transition(ctx, c, ref, v1alpha1.PhaseDeploying, nil, func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		d.Status.DGDName = dgdName
		if r := d.Status.Run(d.Status.ObservedGeneration); r != nil && applied != nil {
			r.Applied = applied
		}
		if promoted != "" {
			SetCondition(d, v1alpha1.ConditionDGDGenerated, metav1.ConditionTrue, v1alpha1.ReasonPromoted,
				fmt.Sprintf("%s applied as DGD %s by kubectl dgdr promote", promoted, dgdName))
		}
		SetCondition(d, v1alpha1.ConditionDeploymentReady, metav1.ConditionFalse, v1alpha1.ReasonDeploying,
			fmt.Sprintf("DGD %s applied; waiting for the Dynamo operator to report it ready", dgdName))
	})
}

// MarkFailed records why the request cannot go on: the DGDR becomes Failed with a False condition of
// condType naming the cause. A DGDR already Failed keeps its first cause (TransitionError).
func MarkFailed(ctx context.Context, c client.Client, ref Ref, condType, reason, message string) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	return transition(ctx, c, ref, v1alpha1.PhaseFailed, nil, func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		SetCondition(d, condType, metav1.ConditionFalse, reason, message)
		endRun(d, v1alpha1.RunFailed, message, nil)
	})
}

// profilingPhases are those in which the profiling Job is what moves the DGDR on: its death fails it.
var profilingPhases = []v1alpha1.Phase{"", v1alpha1.PhasePending, v1alpha1.PhaseProfiling}

// MarkJobDied records the death of the profiling Job, unless the DGDR moved past profiling meanwhile
// (the profiler finished just before its Job ended).
func MarkJobDied(ctx context.Context, c client.Client, ref Ref, death *JobDeath) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	return transition(ctx, c, ref, v1alpha1.PhaseFailed, profilingPhases, func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		SetCondition(d, v1alpha1.ConditionProfilingComplete, metav1.ConditionFalse, death.Reason, death.Message)
		endRun(d, v1alpha1.RunFailed, death.Message, nil)
	})
}

// RecordDGDState is the Deploying → Deployed step, shared by the profiler (while it waits for an
// auto-applied DGD) and the plugin (status, wait): a Deploying DGDR whose DGD is ready becomes Deployed,
// and the DeploymentReady condition and deploymentInfo follow the DGD. It writes only when something
// changed, and returns the DGDR as stored with whether it wrote.
func RecordDGDState(ctx context.Context, c client.Client, d *v1alpha1.DynamoGraphDeploymentRequest, st DGDState) (*v1alpha1.DynamoGraphDeploymentRequest, bool, error) {
	if !observesDeployment(d) || !needsDeploymentUpdate(d, st) {
		return d, false, nil
	}
	dgd := d.Status.DGDName
	updated, err := UpdateStatus(ctx, c, client.ObjectKeyFromObject(d), func(cur *v1alpha1.DynamoGraphDeploymentRequest) error {
		if cur.UID != d.UID {
			return ErrReplaced
		}
		// The DGDR may have moved on (Failed, or promoted again) since it was read.
		if cur.Status.DGDName == dgd && observesDeployment(cur) {
			recordDeployment(cur, st)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return updated, true, nil
}

func observesDeployment(d *v1alpha1.DynamoGraphDeploymentRequest) bool {
	return d.Status.DGDName != "" && (d.Status.Phase == v1alpha1.PhaseDeploying || d.Status.Phase == v1alpha1.PhaseDeployed)
}

// recordDeployment writes the DGD's state into a Deploying or Deployed DGDR's status.
func recordDeployment(d *v1alpha1.DynamoGraphDeploymentRequest, st DGDState) {
	name := d.Status.DGDName
	switch {
	case !st.Found:
		SetCondition(d, v1alpha1.ConditionDeploymentReady, metav1.ConditionFalse, v1alpha1.ReasonDGDNotFound, st.Message)
		return
	case st.Ready:
		d.Status.Phase = v1alpha1.PhaseDeployed
		SetCondition(d, v1alpha1.ConditionDeploymentReady, metav1.ConditionTrue, v1alpha1.ReasonDGDReady, fmt.Sprintf("DGD %s is ready", name))
	case st.Failed:
		SetCondition(d, v1alpha1.ConditionDeploymentReady, metav1.ConditionFalse, v1alpha1.ReasonDGDFailed,
			fmt.Sprintf("DGD %s failed: %s", name, st.Message))
	default:
		SetCondition(d, v1alpha1.ConditionDeploymentReady, metav1.ConditionFalse, v1alpha1.ReasonDeploying,
			fmt.Sprintf("DGD %s is not ready: %s", name, st.Message))
	}
	d.Status.DeploymentInfo = &v1alpha1.DeploymentInfo{Replicas: st.Replicas, AvailableReplicas: st.AvailableReplicas}
}

// needsDeploymentUpdate reports whether recordDeployment would change the status.
func needsDeploymentUpdate(d *v1alpha1.DynamoGraphDeploymentRequest, st DGDState) bool {
	probe := d.DeepCopy()
	recordDeployment(probe, st)
	old := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionDeploymentReady)
	cur := meta.FindStatusCondition(probe.Status.Conditions, v1alpha1.ConditionDeploymentReady)
	if old == nil || old.Status != cur.Status || old.Reason != cur.Reason || old.Message != cur.Message {
		return true
	}
	return probe.Status.Phase != d.Status.Phase || !equalInfo(probe.Status.DeploymentInfo, d.Status.DeploymentInfo)
}

func equalInfo(a, b *v1alpha1.DeploymentInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
