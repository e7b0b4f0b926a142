// Package webhook is the DGDR admission webhook: it defaults and validates DynamoGraphDeploymentRequests and,
// when one is created, creates its profiling Job.
package webhook

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/thorough"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
	"github.com/dgdr-dev/dgdr/pkg/hw"
)

// The paths the API server calls (the names controller-runtime's builder would derive).
const (
	MutatePath   = "/mutate-nvidia-com-v1alpha1-dynamographdeploymentrequest"
	ValidatePath = "/validate-nvidia-com-v1alpha1-dynamographdeploymentrequest"
)

// LabelGPUPresent is set to "true" on GPU nodes by NVIDIA GPU feature discovery.
const LabelGPUPresent = "nvidia.com/gpu.present"

var dgdrGroupKind = schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.Kind}

// Handler defaults and validates DGDRs. It is both the Defaulter (mutating path) and the Validator
// (validating path) so that the two share one validation.
type Handler struct {
	// Client reads without a cache (the webhook may only get, not list or watch, most kinds) and creates Jobs.
	Client client.Client
	// DefaultImage fills spec.image when it is empty.
	DefaultImage string
	// ProfilerImage runs the profiling Job.
	ProfilerImage string
}

var (
	_ admission.Defaulter[*v1alpha1.DynamoGraphDeploymentRequest] = (*Handler)(nil)
	_ admission.Validator[*v1alpha1.DynamoGraphDeploymentRequest] = (*Handler)(nil)
)

// Register adds the mutating and validating handlers to srv.
func Register(srv webhook.Server, h *Handler) {
	scheme := lifecycle.Scheme()
	srv.Register(MutatePath, admission.WithDefaulter[*v1alpha1.DynamoGraphDeploymentRequest](scheme, h))
	srv.Register(ValidatePath, admission.WithValidator[*v1alpha1.DynamoGraphDeploymentRequest](scheme, h))
}

// Default fills the design's defaults and, on a CREATE that is not a dry run and passes validation, creates
// the profiling Job and records its name in the annotation nvidia.com/dgdr-profiling-job.
//
// Only CREATE is mutated: spec is immutable, so defaulting an UPDATE could only turn a metadata change into a
// refused spec change. Default is idempotent: a reinvoked or retried request finds the Job it created.
func (h *Handler) Default(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) error {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("reading the admission request: %w", err))
	}
	if req.Operation != admissionv1.Create {
		return nil
	}
	if d.Namespace == "" {
		d.Namespace = req.Namespace
	}
	// The API server generates names after mutating admission; the Job is named after the DGDR, so the
	// webhook generates it here, the way the API server would.
	if d.Name == "" && d.GenerateName != "" {
		d.Name = generateName(d.GenerateName)
	}
	d.Default(h.DefaultImage)

	errs, err := h.validate(ctx, d)
	if err != nil {
		return err
	}
	// An invalid request is refused by the validating path, with every cause; no Job for it.
	if len(errs) > 0 || (req.DryRun != nil && *req.DryRun) {
		return nil
	}
	name, err := h.ensureJob(ctx, d)
	if err != nil {
		return err
	}
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[v1alpha1.AnnotationProfilingJob] = name
	return nil
}

// ValidateCreate refuses an invalid DGDR with one 422 listing every cause, and warns about what would make
// it fail later (no Dynamo, no GPU nodes, no profiler ServiceAccount).
func (h *Handler) ValidateCreate(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) (admission.Warnings, error) {
	if d.Namespace == "" {
		if req, err := admission.RequestFromContext(ctx); err == nil {
			d.Namespace = req.Namespace
		}
	}
	errs, err := h.validate(ctx, d)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(dgdrGroupKind, d.Name, errs)
	}
	return h.warnings(ctx, d), nil
}

// ValidateUpdate refuses a change of spec (the CRD's CEL rule refuses it first; this is the second line).
// Metadata and status may change; the rest of the spec was validated when it was created.
func (h *Handler) ValidateUpdate(_ context.Context, oldObj, newObj *v1alpha1.DynamoGraphDeploymentRequest) (admission.Warnings, error) {
	if errs := v1alpha1.ValidateUpdate(oldObj, newObj); len(errs) > 0 {
		return nil, apierrors.NewInvalid(dgdrGroupKind, newObj.Name, errs)
	}
	return nil, nil
}

// ValidateDelete allows every deletion.
func (h *Handler) ValidateDelete(context.Context, *v1alpha1.DynamoGraphDeploymentRequest) (admission.Warnings, error) {
	return nil, nil
}

// validate returns every field problem of d: the API package's rules, the GPU catalog, whether the profiling
// Job can be built from overrides.profilingJob, and whether the model-cache PVC exists. err is set only when
// a check could not be made (the API server could not answer).
func (h *Handler) validate(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) (field.ErrorList, error) {
	errs := h.staticErrors(d)
	spec := field.NewPath("spec")
	if mc := d.Spec.ModelCache; mc != nil && mc.PVCName != "" {
		pvc := &corev1.PersistentVolumeClaim{}
		err := h.Client.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: mc.PVCName}, pvc)
		switch {
		case apierrors.IsNotFound(err):
			e := field.NotFound(spec.Child("modelCache", "pvcName"), mc.PVCName)
			e.Detail = fmt.Sprintf("PersistentVolumeClaim %q does not exist in namespace %q: create it (holding the model) first", mc.PVCName, d.Namespace)
			errs = append(errs, e)
		case err != nil:
			return nil, apierrors.NewInternalError(fmt.Errorf("checking PersistentVolumeClaim %s/%s of spec.modelCache: %w", d.Namespace, mc.PVCName, err))
		}
	}
	return errs, nil
}

// staticErrors are the checks that need no cluster.
func (h *Handler) staticErrors(d *v1alpha1.DynamoGraphDeploymentRequest) field.ErrorList {
	errs := v1alpha1.ValidateName(d.Name)
	errs = append(errs, v1alpha1.ValidateAnnotations(d.Annotations)...)
	errs = append(errs, v1alpha1.ValidateSpec(&d.Spec)...)
	spec := field.NewPath("spec")

	if hwSpec := d.Spec.Hardware; hwSpec != nil && hwSpec.GPUType != "" {
		if _, err := hw.Lookup(hwSpec.GPUType); err != nil {
			errs = append(errs, field.NotSupported(spec.Child("hardware", "gpuType"), hwSpec.GPUType, hw.Names()))
		}
	}
	// The override parsed as a JobSpec (ValidateSpec); it must also merge into the Job dgdr builds.
	if o := d.Spec.Overrides; o != nil && o.ProfilingJob != nil && d.Name != "" && d.Namespace != "" && !hasErrorUnder(errs, "spec.overrides.profilingJob") {
		if _, err := expand.ProfilingJob(d, expand.JobOptions{ProfilerImage: h.ProfilerImage}); err != nil {
			errs = append(errs, field.Invalid(spec.Child("overrides", "profilingJob"), "<object>", err.Error()))
		}
	}
	return errs
}

func hasErrorUnder(errs field.ErrorList, path string) bool {
	for _, e := range errs {
		if e.Field == path || strings.HasPrefix(e.Field, path+".") {
			return true
		}
	}
	return false
}

// ensureJob creates the profiling Job, or finds the one an earlier call for the same request created.
func (h *Handler) ensureJob(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) (string, error) {
	job, err := expand.ProfilingJob(d, expand.JobOptions{ProfilerImage: h.ProfilerImage})
	if err != nil {
		return "", apierrors.NewInternalError(fmt.Errorf("building the profiling Job: %w", err))
	}
	err = h.Client.Create(ctx, job)
	if err == nil {
		logf.FromContext(ctx).Info("created profiling Job", "dgdr", client.ObjectKeyFromObject(d), "job", job.Name)
		return job.Name, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return "", apierrors.NewInternalError(fmt.Errorf("creating the profiling Job %s/%s: %w", job.Namespace, job.Name, err))
	}

	existing := &batchv1.Job{}
	if err := h.Client.Get(ctx, client.ObjectKeyFromObject(job), existing); err != nil {
		return "", apierrors.NewInternalError(fmt.Errorf("reading the existing profiling Job %s/%s: %w", job.Namespace, job.Name, err))
	}
	if owner := existing.Labels[v1alpha1.LabelDGDRName]; owner != d.Name {
		return "", conflict(fmt.Sprintf("Job %s/%s already exists and does not belong to this DynamoGraphDeploymentRequest (label %s=%q): "+
			"choose another DGDR name or delete that Job", job.Namespace, job.Name, v1alpha1.LabelDGDRName, owner))
	}
	stale, err := h.staleJob(ctx, d, existing)
	if err != nil {
		return "", err
	}
	if stale != "" {
		return "", conflict(fmt.Sprintf("profiling Job %s/%s is left over from an earlier DynamoGraphDeploymentRequest named %q (%s): "+
			"wait for it to be garbage-collected or run `kubectl delete job -n %s %s`, then create the DGDR again",
			job.Namespace, job.Name, d.Name, stale, job.Namespace, job.Name))
	}
	return job.Name, nil
}

// staleJob says why an existing Job labelled for this DGDR's name cannot serve this request, or "" when it
// can: it is this request's own Job (a reinvocation or retry), or the request duplicates a stored DGDR (the
// API server answers AlreadyExists).
func (h *Handler) staleJob(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest, job *batchv1.Job) (string, error) {
	if job.DeletionTimestamp != nil {
		return "it is being deleted", nil
	}
	var owner *metav1.OwnerReference
	for i, ref := range job.OwnerReferences {
		if ref.Kind == v1alpha1.Kind {
			owner = &job.OwnerReferences[i]
		}
	}
	if owner == nil {
		// A Job without an owner was made for a DGDR that was never stored. It can serve this one if it
		// has not finished yet: the profiler reads the DGDR only when it starts.
		if finished(job) {
			return "it finished and its DGDR was never stored", nil
		}
		return "", nil
	}
	stored := &v1alpha1.DynamoGraphDeploymentRequest{}
	err := h.Client.Get(ctx, client.ObjectKeyFromObject(d), stored)
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("its owner %s was deleted", owner.UID), nil
	case err != nil:
		return "", apierrors.NewInternalError(fmt.Errorf("reading DynamoGraphDeploymentRequest %s/%s: %w", d.Namespace, d.Name, err))
	case stored.UID != owner.UID:
		return fmt.Sprintf("its owner %s was deleted", owner.UID), nil
	}
	return "", nil
}

func finished(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func conflict(msg string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusConflict, Reason: metav1.StatusReasonConflict, Message: msg,
	}}
}

// warnings are the soft problems of a new DGDR: it is admitted, but would fail or wait later. A check that
// cannot be made is logged, not reported: a warning must be true.
func (h *Handler) warnings(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) admission.Warnings {
	log := logf.FromContext(ctx)
	var out admission.Warnings

	crd := &apiextensionsv1.CustomResourceDefinition{}
	err := h.Client.Get(ctx, client.ObjectKey{Name: lifecycle.DGDCRDName}, crd)
	switch {
	case apierrors.IsNotFound(err) && d.Spec.AutoApply:
		out = append(out, fmt.Sprintf("CustomResourceDefinition %s is not installed: autoApply will fail until NVIDIA Dynamo is installed", lifecycle.DGDCRDName))
	case apierrors.IsNotFound(err):
		out = append(out, fmt.Sprintf("CustomResourceDefinition %s is not installed: the recommended DGD cannot be deployed until NVIDIA Dynamo is installed", lifecycle.DGDCRDName))
	case err != nil:
		log.Error(err, "checking whether Dynamo is installed")
	}

	if d.Spec.Hardware == nil {
		found, err := h.gpuNodeVisible(ctx)
		switch {
		case err != nil:
			log.Error(err, "looking for GPU nodes")
		case !found:
			out = append(out, fmt.Sprintf("no GPU nodes are visible (no node has the label %s=true or allocatable %s): "+
				"profiling will fail unless GPU nodes join or you set spec.hardware (gpuType, gpusPerNode, totalGpus)", LabelGPUPresent, hw.ResourceGPU))
		}
	}

	if d.Spec.SearchStrategy == v1alpha1.SearchThorough {
		// The GPU-hours a thorough search may spend, told before it spends them.
		job, _ := expand.ProfilingJob(d, expand.JobOptions{ProfilerImage: h.ProfilerImage})
		out = append(out, thorough.BudgetWarning(ctx, d, job))
	}

	sa := &corev1.ServiceAccount{}
	err = h.Client.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: v1alpha1.ProfilerServiceAccount}, sa)
	switch {
	case apierrors.IsNotFound(err):
		out = append(out, fmt.Sprintf("ServiceAccount %s does not exist in namespace %s: the profiling Job cannot start until it does "+
			"(kubectl create serviceaccount -n %s %s, bound to the ClusterRole dgdr-profiler; see the README)",
			v1alpha1.ProfilerServiceAccount, d.Namespace, d.Namespace, v1alpha1.ProfilerServiceAccount))
	case err != nil:
		log.Error(err, "checking the profiler ServiceAccount")
	}
	return out
}

// gpuNodeVisible looks for one GPU node: first by the feature-discovery label (one small request), then by
// allocatable GPUs, page by page, stopping at the first.
func (h *Handler) gpuNodeVisible(ctx context.Context) (bool, error) {
	nodes := &corev1.NodeList{}
	if err := h.Client.List(ctx, nodes, client.MatchingLabels{LabelGPUPresent: "true"}, client.Limit(1)); err != nil {
		return false, fmt.Errorf("listing GPU nodes: %w", err)
	}
	if len(nodes.Items) > 0 {
		return true, nil
	}
	cont := ""
	for {
		nodes := &corev1.NodeList{}
		if err := h.Client.List(ctx, nodes, client.Limit(500), client.Continue(cont)); err != nil {
			return false, fmt.Errorf("listing nodes: %w", err)
		}
		for _, n := range nodes.Items {
			if q, ok := n.Status.Allocatable[hw.ResourceGPU]; ok && !q.IsZero() {
				return true, nil
			}
		}
		if cont = nodes.Continue; cont == "" {
			return false, nil
		}
	}
}

// generateName appends five random characters to base, as the API server does, keeping the result a valid
// DGDR name (at most 63 characters, the label-value limit).
func generateName(base string) string {
	const suffix = 5
	if len(base) > validation.LabelValueMaxLength-suffix {
		base = base[:validation.LabelValueMaxLength-suffix]
	}
	return base + utilrand.String(suffix)
}
