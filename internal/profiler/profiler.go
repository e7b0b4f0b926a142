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
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
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
}

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
// A returned error is transient (API unavailable, conflicts beyond retry): the Job retries.
func Run(ctx context.Context, o Options) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PollInterval == 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.AfterPhase == nil {
		o.AfterPhase = func(v1alpha1.Phase) error { return nil }
	}
	r := &run{Options: o, key: types.NamespacedName{Namespace: o.Namespace, Name: o.Name}}
	err := r.walk(ctx)
	if errors.Is(err, errDGDRGone) {
		r.Log.Info("the DGDR was deleted during profiling; its candidates are removed", "dgdr", r.key)
		return nil
	}
	var se *errSpec
	if errors.As(err, &se) {
		r.Log.Info("the request cannot be served as written", "reason", se.reason, "message", se.message)
		_, uerr := lifecycle.UpdateStatus(ctx, r.Client, r.key, func(d *v1alpha1.DynamoGraphDeploymentRequest) error {
			d.Status.Phase = v1alpha1.PhaseFailed
			lifecycle.SetCondition(d, se.condType, metav1.ConditionFalse, se.reason, se.message)
			return nil
		})
		return uerr
	}
	return err
}

type run struct {
	Options
	key types.NamespacedName
}

func (r *run) walk(ctx context.Context) error {
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	if err := r.Client.Get(ctx, r.key, d); err != nil {
		if apierrors.IsNotFound(err) {
			// The webhook makes the Job before the DGDR is stored; if storing failed, or the DGDR was
			// deleted, there is nothing to do and the Job's TTL removes it.
			r.Log.Info("the DGDR does not exist (never stored, or deleted); nothing to do", "dgdr", r.key)
			return nil
		}
		return fmt.Errorf("reading DGDR %s: %w", r.key, err)
	}
	if err := r.adoptJob(ctx, d); err != nil {
		return err
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

// adoptJob makes the profiling Job owned by the DGDR, so deleting the DGDR removes the Job (the webhook
// could not: the DGDR had no UID at admission).
func (r *run) adoptJob(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) error {
	name := d.Annotations[v1alpha1.AnnotationProfilingJob]
	if name == "" {
		return nil // created without the webhook (tests, or a cluster where it was bypassed)
	}
	job := &batchv1.Job{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: name}, job); err != nil {
		if apierrors.IsNotFound(err) {
			return nil // run outside the Job (kubeconfig), or the Job was deleted
		}
		return fmt.Errorf("reading the profiling Job %s: %w", name, err)
	}
	for _, ref := range job.OwnerReferences {
		if ref.UID == d.UID {
			return nil
		}
	}
	patch := client.MergeFrom(job.DeepCopy())
	job.OwnerReferences = append(job.OwnerReferences, metav1.OwnerReference{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind, Name: d.Name, UID: d.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	})
	if err := r.Client.Patch(ctx, job, patch); err != nil {
		return fmt.Errorf("making DGDR %s the owner of Job %s: %w", d.Name, name, err)
	}
	return nil
}

// dgdCRDInstalled reports whether the Dynamo DGD CRD exists.
func (r *run) dgdCRDInstalled(ctx context.Context) (bool, error) {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	err := r.Client.Get(ctx, types.NamespacedName{Name: lifecycle.DGDCRDName}, crd)
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
