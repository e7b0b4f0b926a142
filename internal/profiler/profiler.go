// Package profiler is the profiling Job's entrypoint: it walks a DGDR through the design's state machine
// (Pending → Profiling → Ready → Deploying → Deployed, or Failed) and records every step in the DGDR's
// status. It runs in-cluster as the Job, or anywhere with a kubeconfig (the tests do this).
//
// Re-running is safe: a crashed run is retried by the Job, and the retry resumes from what the status
// says. Profiling is deterministic, so a run that died mid-way redoes it and writes the same results;
// everything it writes is an update of a fixed-name object (status, the <name>-profiling ConfigMap, the
// DGD by server-side apply), so nothing is duplicated.
package profiler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

// Options configure one run.
type Options struct {
	Namespace string
	Name      string
	Client    client.Client
	// DeployWait bounds how long the run waits for an auto-applied DGD to become ready (0: do not wait;
	// the DGDR stays Deploying and `kubectl dgdr status` finishes the move to Deployed).
	DeployWait time.Duration
	// PollInterval is how often readiness is checked while waiting.
	PollInterval time.Duration
	// ModelPath is the model-cache mount holding config.json (the Job sets DGDR_MODEL_PATH), if any.
	ModelPath string
	Log       logr.Logger
	// Now is the clock (tests pin it).
	Now func() time.Time
	// AfterPhase, when set, is called after each phase is recorded; an error stops the run there as a crash
	// would. It is the tests' hook for crash-and-retry.
	AfterPhase func(v1alpha1.Phase) error
	// Thorough configures the thorough search (thorough.go): how candidates are reached, the deadline,
	// timeouts and the benchmark's size.
	Thorough ThoroughOptions
	// JobName is the profiling Job this run belongs to (dgdr-profiler's --job, else the name the webhook
	// gives the Job of UID); "" outside a Job.
	JobName string
	// DGDRWait bounds the wait for the DGDR to be stored [2m]: the webhook creates the Job while the
	// DGDR is being admitted, so the pod can start first. A DGDR that never appears is an error.
	DGDRWait time.Duration
	// UID is the UID of the DGDR create the Job was made for (dgdr-profiler's --uid, set by the webhook).
	// With it the run claims the Job only for the stored DGDR of that UID, and deletes the Job when none
	// appears within DGDRWait (the create was refused after the webhook, or the DGDR was replaced).
	UID types.UID
	// Generation is the DGDR generation (run) this profiles (dgdr-profiler's --generation; 0: the Job's
	// annotation, else the stored one). Every status write of the run checks it: once a newer generation
	// is stored the run stops, records itself Superseded and exits 0.
	Generation int64
}

// ErrNotAdmitted is returned by Claim and Run when no DGDR of Options.UID is stored: the profiling Job was
// made for a create that was refused after the webhook, or for a DGDR since deleted, and was deleted.
var ErrNotAdmitted = lifecycle.ErrNotAdmitted

// errSpec marks a failure the user must fix in the spec or the cluster: the DGDR goes to Failed and the
// run exits 0, so the Job does not retry something a retry cannot mend.
type errSpec struct {
	condType, reason, message string
}

func (e *errSpec) Error() string { return e.message }

func specError(condType, reason, format string, args ...any) error {
	return &errSpec{condType: condType, reason: reason, message: fmt.Sprintf(format, args...)}
}

// Run walks the DGDR from whatever phase it is in to the end of the in-cluster lifecycle.
// A returned error is transient (API unavailable, conflicts beyond retry): the Job retries; or it is
// ErrNotAdmitted, and the Job is gone.
func Run(ctx context.Context, o Options) error {
	r := newRun(o)
	err := r.walk(ctx)
	if errors.Is(err, errDGDRGone) || (r.ref.UID != "" && lifecycle.IsGone(err)) {
		r.Log.Info("the DGDR was deleted during profiling; its candidates are removed", "dgdr", r.key)
		return nil
	}
	if lifecycle.IsSuperseded(err) {
		r.Log.Info("a newer generation of the spec is stored; this run stops", "dgdr", r.key, "generation", r.ref.Generation, "why", err.Error())
		if r.ref.Generation != 0 {
			if rerr := lifecycle.RecordSuperseded(context.WithoutCancel(ctx), r.Client, r.ref, "superseded: "+err.Error()); rerr != nil && !lifecycle.IsGone(rerr) {
				return rerr
			}
		}
		return nil
	}
	var se *errSpec
	if errors.As(err, &se) {
		r.Log.Info("the request cannot be served as written", "reason", se.reason, "message", se.message)
		return r.markFailed(ctx, se.condType, se.reason, se.message)
	}
	if err != nil && r.ref.UID != "" {
		r.reportDeath(ctx, err)
	}
	return err
}

// Claim is what Run does first: wait (up to DGDRWait) for the DGDR, and make it the owner of its profiling
// Job; or, with Options.UID, delete the Job when no DGDR of that UID is stored (ErrNotAdmitted).
func Claim(ctx context.Context, o Options) error {
	r := newRun(o)
	_, err := r.claim(ctx)
	return err
}

func newRun(o Options) *run {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PollInterval == 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.AfterPhase == nil {
		o.AfterPhase = func(v1alpha1.Phase) error { return nil }
	}
	if o.DGDRWait <= 0 {
		o.DGDRWait = 2 * time.Minute
	}
	r := &run{Options: o, key: types.NamespacedName{Namespace: o.Namespace, Name: o.Name}}
	r.ref.NamespacedName = r.key
	return r
}

type run struct {
	Options
	key types.NamespacedName
	// ref is the DGDR this run works for, its UID set once read: a DGDR recreated under the same name
	// is another request, not this run's to write.
	ref lifecycle.Ref
	// job is the profiling Job this run belongs to, when found.
	job *batchv1.Job
}

// markFailed records the DGDR Failed; one already Failed keeps its first cause.
func (r *run) markFailed(ctx context.Context, condType, reason, message string) error {
	_, err := lifecycle.MarkFailed(ctx, r.Client, r.ref, condType, reason, message)
	if lifecycle.IsTransitionError(err) || lifecycle.IsGone(err) {
		return nil
	}
	return err
}

// reportDeath records the DGDR Failed when the Job will not run the profiler again after this error:
// it is the last attempt the backoff limit allows, or the Job's deadline stopped it (SIGTERM). Otherwise
// the retry goes on from the status.
func (r *run) reportDeath(ctx context.Context, cause error) {
	if r.job == nil {
		return
	}
	// The run's context may be cancelled (SIGTERM): the record gets the rest of the grace period.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	job := &batchv1.Job{}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(r.job), job); err != nil {
		job = r.job
	}
	reason, msg := "", ""
	switch {
	case job.Spec.ActiveDeadlineSeconds != nil && job.Status.StartTime != nil &&
		!r.Now().Before(job.Status.StartTime.Add(time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second)):
		reason = v1alpha1.ReasonDeadlineExceeded
		msg = fmt.Sprintf("profiling Job %s ran past its activeDeadlineSeconds (%ds) and was stopped (%v); raise spec.overrides.profilingJob.activeDeadlineSeconds or narrow the search",
			job.Name, *job.Spec.ActiveDeadlineSeconds, cause)
	case job.Spec.BackoffLimit != nil && job.Status.Failed >= *job.Spec.BackoffLimit && !errors.Is(cause, context.Canceled):
		reason = v1alpha1.ReasonProfilerError
		msg = fmt.Sprintf("the profiler failed on its last attempt (%d of %d): %v; see kubectl dgdr logs %s",
			job.Status.Failed+1, *job.Spec.BackoffLimit+1, cause, r.key.Name)
	default:
		return
	}
	if err := r.markFailed(ctx, v1alpha1.ConditionProfilingComplete, reason, msg); err != nil {
		r.Log.Error(err, "recording the DGDR Failed")
	}
}

// claim waits (up to DGDRWait) for the DGDR the Job was made for and makes it the owner of the Job, or
// deletes the Job when that DGDR is not stored (ErrNotAdmitted): the Job's pod may start before admission
// stored the DGDR, and the webhook may already have done the same.
func (r *run) claim(ctx context.Context) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	jobName := r.JobName
	if jobName == "" && r.UID != "" && r.Generation <= 1 {
		jobName = expand.ProfilingJobName(r.Name, r.UID)
	}
	d, job, err := lifecycle.Claim(ctx, r.Client, r.key, r.UID, jobName, lifecycle.ClaimOptions{
		Wait: r.DGDRWait, Poll: r.PollInterval, Now: r.Now, Generation: r.Generation, Log: r.Log,
	})
	if err != nil {
		return nil, err
	}
	r.ref.UID, r.job = d.UID, job
	r.ref.Generation = r.Generation
	if job != nil {
		r.ref.Generation = cmp.Or(r.ref.Generation, v1alpha1.JobGeneration(job))
	}
	r.ref.Generation = cmp.Or(r.ref.Generation, d.Generation)
	return d, nil
}

// jobName is the profiling Job this run belongs to, once claimed; "" outside a Job.
func (r *run) jobName() string {
	if r.job == nil {
		return ""
	}
	return r.job.Name
}

func (r *run) walk(ctx context.Context) error {
	d, err := r.claim(ctx)
	if err != nil {
		return err
	}

	if lifecycle.IsNewRun(d, r.ref.Generation) {
		if d, err = lifecycle.StartRun(ctx, r.Client, r.ref, lifecycle.RunStart{
			JobName: r.jobName(), Strategy: cmp.Or(d.Spec.SearchStrategy, v1alpha1.SearchRapid), Now: metav1.NewTime(r.Now()),
		}); err != nil {
			return err
		}
	}

	switch d.Status.Phase {
	case v1alpha1.PhaseFailed, v1alpha1.PhaseDeployed:
		r.Log.Info("nothing left to do", "phase", d.Status.Phase)
		return nil
	case v1alpha1.PhaseReady, v1alpha1.PhaseDeploying:
		if d.Status.ProfilingResults != nil && d.Status.ProfilingResults.SelectedConfig != nil {
			return r.deploy(ctx, d)
		}
	}

	// Before this run writes <name>-profiling, the results of the run there are kept in their own ConfigMap.
	if err := lifecycle.KeepRunResults(ctx, r.Client, r.ref); err != nil {
		return err
	}
	plan, err := r.pending(ctx, d)
	if err != nil {
		return err
	}
	if err := r.AfterPhase(v1alpha1.PhasePending); err != nil {
		return err
	}
	d, err = r.profile(ctx, d, plan)
	if err != nil {
		return err
	}
	if err := r.AfterPhase(v1alpha1.PhaseReady); err != nil {
		return err
	}
	return r.deploy(ctx, d)
}

// dgdCRDInstalled reports whether the Dynamo DGD CRD exists.
func (r *run) dgdCRDInstalled(ctx context.Context) (bool, error) {
	err := lifecycle.GetDGDCRD(ctx, r.Client)
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	case apierrors.IsForbidden(err):
		// A profiler without the right to read CRDs learns the answer when it applies the DGD.
		return true, nil
	default:
		return false, fmt.Errorf("checking for the DynamoGraphDeployment CRD: %w", err)
	}
}

// listNodes and listPods feed GPU discovery. Forbidden (a namespace-scoped install) yields nothing, and
// discovery then asks for spec.hardware.
func (r *run) listNodes(ctx context.Context) ([]corev1.Node, error) {
	var nodes corev1.NodeList
	if err := r.Client.List(ctx, &nodes); err != nil {
		if apierrors.IsForbidden(err) {
			r.Log.Info("cannot list Nodes; set spec.hardware to describe the GPUs", "error", err.Error())
			return nil, nil
		}
		return nil, fmt.Errorf("listing Nodes for GPU discovery: %w", err)
	}
	return nodes.Items, nil
}

func (r *run) listPods(ctx context.Context) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods); err != nil {
		if apierrors.IsForbidden(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing Pods to count free GPUs: %w", err)
	}
	return pods.Items, nil
}
