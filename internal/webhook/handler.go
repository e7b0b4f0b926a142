// Package webhook is the DGDR admission webhook: it defaults and validates DynamoGraphDeploymentRequests and,
// when one is created, creates its profiling Job.
package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
	"github.com/dgdr-dev/dgdr/pkg/profile"
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

	// Background is the context of the claims that run after admission (claimLater): the server's
	// lifetime [context.Background()].
	Background context.Context
	// ClaimWait bounds how long a claim waits for its DGDR to be stored before deleting the Job [2m].
	ClaimWait time.Duration

	facts facts // what the warnings found present, remembered briefly
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

// Default fills the design's defaults. It has no side effect: the profiling Job is created by
// ValidateCreate (ValidateUpdate for a spec change), where the object is final and has its UID. A CREATE
// is defaulted, and an UPDATE only when it changes the spec: defaulting a metadata-only update of an
// object stored without defaults would turn it into a spec change, and so into a profiling run. Default
// is idempotent.
func (h *Handler) Default(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) error {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("reading the admission request: %w", err))
	}
	switch req.Operation {
	case admissionv1.Create:
	case admissionv1.Update:
		old := &v1alpha1.DynamoGraphDeploymentRequest{}
		if err := json.Unmarshal(req.OldObject.Raw, old); err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("decoding the stored DynamoGraphDeploymentRequest: %v", err))
		}
		if !v1alpha1.SpecChanged(old, d) {
			return nil
		}
	default:
		return nil
	}
	d.Default(h.DefaultImage)
	return nil
}

// ValidateCreate refuses an invalid DGDR with one 422 listing every cause, warns about what would make it
// fail later (no Dynamo, no GPU nodes, no profiler ServiceAccount) and, unless it is a dry run, creates the
// profiling Job for the DGDR's UID, then settles it in the background (claim): owned by the DGDR once it is
// stored, deleted if the request is refused after this webhook (another webhook, a quota, storage).
func (h *Handler) ValidateCreate(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) (admission.Warnings, error) {
	return h.admitRun(ctx, d)
}

// admitRun is what a create and a spec change share: validate the spec in full (overrides' access review
// and dry run included), and unless a dry run create the profiling Job of the run (the generation the API
// server assigned before validating admission) and claim it in the background.
func (h *Handler) admitRun(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) (admission.Warnings, error) {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("reading the admission request: %w", err))
	}
	if d.Namespace == "" {
		d.Namespace = req.Namespace
	}
	errs, err := h.validate(ctx, d)
	if err != nil {
		return nil, err
	}
	jobErrs, err := h.checkJobOverride(ctx, req, d, hasErrorUnder(errs, "spec.overrides.profilingJob"))
	if err != nil {
		return nil, err
	}
	errs = append(errs, jobErrs...)
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(dgdrGroupKind, d.Name, errs)
	}
	warnings := h.warnings(ctx, d)
	if req.DryRun != nil && *req.DryRun {
		return warnings, nil
	}
	if err := h.ensureJob(ctx, d); err != nil {
		return nil, err
	}
	if err := h.ensureAdaptCronJob(ctx, req.Operation == admissionv1.Update, d); err != nil {
		return nil, err
	}
	return warnings, nil
}

// ValidateUpdate admits a change of spec exactly as a create (admitRun): validated in full, then a new
// profiling run with its own Job. A metadata-only update starts nothing; only annotations dgdr reads are
// checked, and only when they change. Status writes do not reach the webhook (the status subresource).
func (h *Handler) ValidateUpdate(ctx context.Context, oldObj, newObj *v1alpha1.DynamoGraphDeploymentRequest) (admission.Warnings, error) {
	if v1alpha1.SpecChanged(oldObj, newObj) {
		return h.admitRun(ctx, newObj)
	}
	if !maps.Equal(oldObj.Annotations, newObj.Annotations) {
		if errs := v1alpha1.ValidateAnnotations(newObj.Annotations); len(errs) > 0 {
			return nil, apierrors.NewInvalid(dgdrGroupKind, newObj.Name, errs)
		}
	}
	return nil, nil
}

// ValidateDelete allows every deletion.
func (h *Handler) ValidateDelete(context.Context, *v1alpha1.DynamoGraphDeploymentRequest) (admission.Warnings, error) {
	return nil, nil
}

// validate returns every field problem of d: the API package's rules, the GPU catalog, whether the profiling
// Job can be built from overrides.profilingJob, whether a DGD can be generated with overrides.dgd, and
// whether the model-cache PVC exists. err is set only when a check could not be made (the API server could
// not answer).
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
	// The override parsed as an allowed partial JobSpec (ValidateSpec); it must also merge into the Job dgdr builds.
	if o := d.Spec.Overrides; o != nil && o.ProfilingJob != nil && d.Name != "" && d.Namespace != "" && !hasErrorUnder(errs, "spec.overrides.profilingJob") {
		if _, err := expand.ProfilingJob(d, expand.JobOptions{ProfilerImage: h.ProfilerImage}); err != nil {
			errs = append(errs, field.Invalid(spec.Child("overrides", "profilingJob"), "<object>", err.Error()))
		}
	}
	// overrides.dgd is merged hours later, when profiling is done: generate a DGD with it now, so that an
	// override that can never generate one (wrong apiVersion, an invalid name, a bad shape) is refused now.
	if o := d.Spec.Overrides; o != nil && o.DGD != nil && len(o.DGD.Raw) > 0 && len(v1alpha1.ValidateName(d.Name)) == 0 && !hasErrorUnder(errs, "spec.overrides.dgd") {
		if err := TrialGenerateDGD(d); err != nil {
			errs = append(errs, field.Invalid(spec.Child("overrides", "dgd"), "<object>", err.Error()))
		}
	}
	return errs
}

// TrialGenerateDGD generates the DGD of d (defaulted here on a copy) for representative configurations of
// its backend: one aggregated worker and a disaggregated pair, on one node each and spanning nodes, the
// shapes whose component names the DGD name limit counts. The profiler generates the same way (v1beta1).
func TrialGenerateDGD(d *v1alpha1.DynamoGraphDeploymentRequest) error {
	d = d.DeepCopy()
	d.Default(DefaultImage)
	backend := string(d.Spec.Backend)
	if backend == string(v1alpha1.BackendAny) {
		backend = string(v1alpha1.BackendVLLM)
	}
	one := func(role profile.Role, tp int) profile.Worker {
		return profile.Worker{Role: role, Count: 1, TP: tp, PP: 1, EP: 1, DP: 1, Batch: 8}
	}
	for _, cfg := range []profile.Config{
		{Backend: backend, Mode: profile.ModeAgg, Replicas: 1, Workers: []profile.Worker{one(profile.RoleAgg, 1)}},
		{Backend: backend, Mode: profile.ModeDisagg, Replicas: 1, Workers: []profile.Worker{one(profile.RolePrefill, 16), one(profile.RoleDecode, 16)}},
	} {
		if _, err := expand.GenerateDGD(d, cfg, expand.DGDOptions{GPUsPerNode: 8}); err != nil {
			return err
		}
	}
	return nil
}

func hasErrorUnder(errs field.ErrorList, path string) bool {
	for _, e := range errs {
		if e.Field == path || strings.HasPrefix(e.Field, path+".") || strings.HasPrefix(e.Field, path+"[") {
			return true
		}
	}
	return false
}

// checkJobOverride applies to a non-empty overrides.profilingJob what the webhook needs before it creates
// a Job shaped by the user: that the user may create Jobs in the namespace themselves (a
// SubjectAccessReview for the requesting user, groups, uid and extra), and that the real API server
// accepts the merged Job (a server dry run). shapeRefused skips the dry run when the override was refused.
func (h *Handler) checkJobOverride(ctx context.Context, req admission.Request, d *v1alpha1.DynamoGraphDeploymentRequest, shapeRefused bool) (field.ErrorList, error) {
	if v1alpha1.JobOverrideEmpty(d.Spec.Overrides) {
		return nil, nil
	}
	p := field.NewPath("spec", "overrides", "profilingJob")
	u := req.UserInfo
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: u.Username, Groups: u.Groups, UID: u.UID, Extra: extra,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: d.Namespace, Verb: "create", Group: batchv1.GroupName, Resource: "jobs"},
	}}
	if err := h.Client.Create(ctx, sar); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("asking whether %s may create Jobs in namespace %s (SubjectAccessReview): %w", u.Username, d.Namespace, err))
	}
	if !sar.Status.Allowed {
		return field.ErrorList{field.Forbidden(p, fmt.Sprintf(
			"user %q may not create Jobs in namespace %q, and the webhook applies overrides.profilingJob only for users who could create the Job themselves: "+
				"remove spec.overrides.profilingJob, or ask an administrator for create on jobs.batch in %s", u.Username, d.Namespace, d.Namespace))}, nil
	}
	if shapeRefused || d.Name == "" {
		return nil, nil
	}
	job, err := expand.ProfilingJob(d, expand.JobOptions{ProfilerImage: h.ProfilerImage})
	if err != nil {
		return nil, nil // staticErrors reported it
	}
	err = h.Client.Create(ctx, job, client.DryRunAll)
	switch {
	case err == nil || apierrors.IsAlreadyExists(err):
		return nil, nil
	case apierrors.IsInvalid(err):
		return jobCauses(p, err), nil
	default:
		return nil, apierrors.NewInternalError(fmt.Errorf("checking the profiling Job with a server dry run: %w", err))
	}
}

// jobCauses turns the API server's refusal of the merged Job into causes under overrides.profilingJob
// (the override's paths are the JobSpec's: spec.template... in the Job is profilingJob.template...).
func jobCauses(p *field.Path, err error) field.ErrorList {
	var out field.ErrorList
	status := err.(apierrors.APIStatus).Status()
	if status.Details != nil {
		for _, c := range status.Details.Causes {
			path := p.String()
			if rest, ok := strings.CutPrefix(c.Field, "spec."); ok {
				path += "." + rest
			}
			out = append(out, &field.Error{Type: field.ErrorTypeInvalid, Field: path, BadValue: "<merged Job>",
				Detail: "the API server refuses the profiling Job merged with this override: " + c.Message})
		}
	}
	if len(out) == 0 {
		out = append(out, field.Invalid(p, "<object>", "the API server refuses the profiling Job merged with this override: "+status.Message))
	}
	return out
}

// ensureJob creates the profiling Job for this create or spec change, named after the DGDR, its UID and
// (after the first run) the generation and inputs hash, and annotated with the UID, the generation, the
// inputs hash and the JobSpec hash, with no owner reference (the garbage collector would judge an owner that is
// not stored yet dangling). A Job of that name already made for the same UID and spec is this request's
// own, from a retried admission call; any other is a 409 (it is not this request's to touch).
func (h *Handler) ensureJob(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) error {
	if d.UID == "" {
		return apierrors.NewInternalError(fmt.Errorf("the API server sent the DynamoGraphDeploymentRequest without a UID at validating admission: " +
			"the profiling Job is claimed by that UID and needs a Kubernetes API server that assigns it before admission (every supported release does)"))
	}
	job, err := expand.ProfilingJob(d, expand.JobOptions{ProfilerImage: h.ProfilerImage})
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("building the profiling Job: %w", err))
	}
	err = h.Client.Create(ctx, job.DeepCopy())
	switch {
	case err == nil:
		logf.FromContext(ctx).Info("created profiling Job", "dgdr", client.ObjectKeyFromObject(d), "uid", d.UID, "job", job.Name)
	case apierrors.IsInvalid(err):
		return apierrors.NewInvalid(dgdrGroupKind, d.Name, jobCauses(field.NewPath("spec", "overrides", "profilingJob"), err))
	case !apierrors.IsAlreadyExists(err):
		return apierrors.NewInternalError(fmt.Errorf("creating the profiling Job %s/%s: %w", job.Namespace, job.Name, err))
	default:
		existing := &batchv1.Job{}
		if err := h.Client.Get(ctx, client.ObjectKeyFromObject(job), existing); err != nil {
			return apierrors.NewInternalError(fmt.Errorf("reading the existing profiling Job %s/%s: %w", job.Namespace, job.Name, err))
		}
		if v1alpha1.JobDGDRUID(existing) != d.UID || existing.Annotations[v1alpha1.AnnotationSpecHash] != job.Annotations[v1alpha1.AnnotationSpecHash] || existing.DeletionTimestamp != nil {
			return conflict(fmt.Sprintf("Job %s/%s already exists and was not made for this request (it names DGDR UID %q): "+
				"create the DGDR again (it gets a new UID and Job name), or delete that Job", job.Namespace, job.Name, v1alpha1.JobDGDRUID(existing)))
		}
	}
	h.claimLater(client.ObjectKeyFromObject(d), d.UID, job.Name, v1alpha1.JobGeneration(job))
	return nil
}

// ensureAdaptCronJob creates, or updates to this spec, the adaptation CronJob of a DGDR with
// spec.adaptation (expand.AdaptCronJob: no owner, the DGDR's UID and generation in annotations), then
// settles it in the background (settleAdaptLater): owned once the DGDR is stored, deleted if the request
// is refused after this webhook or the stored spec has no adaptation. An update without spec.adaptation
// creates nothing and only settles (removes) the CronJob of an earlier spec. A CronJob of that name not
// made for this DGDR's UID is a 409, left alone.
func (h *Handler) ensureAdaptCronJob(ctx context.Context, update bool, d *v1alpha1.DynamoGraphDeploymentRequest) error {
	name := expand.AdaptCronJobName(d.Name, d.UID)
	if d.Spec.Adaptation == nil {
		if update {
			h.settleAdaptLater(client.ObjectKeyFromObject(d), d.UID, d.Generation, name)
		}
		return nil
	}
	cj, err := expand.AdaptCronJob(d, expand.JobOptions{ProfilerImage: h.ProfilerImage})
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("building the adaptation CronJob: %w", err))
	}
	err = h.Client.Create(ctx, cj.DeepCopy())
	switch {
	case err == nil:
		logf.FromContext(ctx).Info("created adaptation CronJob", "dgdr", client.ObjectKeyFromObject(d), "uid", d.UID, "cronjob", name)
	case !apierrors.IsAlreadyExists(err):
		return apierrors.NewInternalError(fmt.Errorf("creating the adaptation CronJob %s/%s: %w", d.Namespace, name, err))
	default:
		existing := &batchv1.CronJob{}
		if err := h.Client.Get(ctx, client.ObjectKeyFromObject(cj), existing); err != nil {
			return apierrors.NewInternalError(fmt.Errorf("reading the existing adaptation CronJob %s/%s: %w", d.Namespace, name, err))
		}
		if existing.Annotations[v1alpha1.AnnotationDGDRUID] != string(d.UID) || existing.DeletionTimestamp != nil {
			return conflict(fmt.Sprintf("CronJob %s/%s already exists and was not made for this DGDR (it names DGDR UID %q): delete that CronJob, or create the DGDR again",
				d.Namespace, name, existing.Annotations[v1alpha1.AnnotationDGDRUID]))
		}
		if existing.Annotations[v1alpha1.AnnotationSpecHash] != cj.Annotations[v1alpha1.AnnotationSpecHash] ||
			existing.Annotations[v1alpha1.AnnotationGeneration] != cj.Annotations[v1alpha1.AnnotationGeneration] {
			// The spec of this generation; the optimistic lock makes a concurrent update retry.
			patch := client.MergeFromWithOptions(existing.DeepCopy(), client.MergeFromWithOptimisticLock{})
			existing.Spec = cj.Spec
			if existing.Annotations == nil {
				existing.Annotations = map[string]string{}
			}
			maps.Copy(existing.Annotations, cj.Annotations)
			if err := h.Client.Patch(ctx, existing, patch); err != nil {
				return apierrors.NewInternalError(fmt.Errorf("updating the adaptation CronJob %s/%s: %w", d.Namespace, name, err))
			}
		}
	}
	h.settleAdaptLater(client.ObjectKeyFromObject(d), d.UID, d.Generation, name)
	return nil
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

	installed, err := h.facts.present("dgd-crd", func() (bool, error) {
		err := lifecycle.GetDGDCRD(ctx, h.Client)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	switch {
	case err != nil:
		log.Error(err, "checking whether Dynamo is installed")
	case !installed && d.Spec.AutoApply:
		out = append(out, fmt.Sprintf("CustomResourceDefinition %s is not installed: autoApply will fail until NVIDIA Dynamo is installed", lifecycle.DGDCRDName))
	case !installed:
		out = append(out, fmt.Sprintf("CustomResourceDefinition %s is not installed: the recommended DGD cannot be deployed until NVIDIA Dynamo is installed", lifecycle.DGDCRDName))
	}

	if d.Spec.Hardware == nil {
		found, err := h.facts.present("gpu-node", func() (bool, error) { return h.gpuNodeVisible(ctx) })
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

	exists, err := h.facts.present("profiler-sa/"+d.Namespace, func() (bool, error) {
		err := h.Client.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: v1alpha1.ProfilerServiceAccount}, &corev1.ServiceAccount{},
			&client.GetOptions{Raw: &metav1.GetOptions{ResourceVersion: "0"}})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	switch {
	case err != nil:
		log.Error(err, "checking the profiler ServiceAccount")
	case !exists:
		out = append(out, fmt.Sprintf("ServiceAccount %s does not exist in namespace %s: the profiling Job cannot start until it does "+
			"(kubectl create serviceaccount -n %s %s, bound to the ClusterRole dgdr-profiler; see the README)",
			v1alpha1.ProfilerServiceAccount, d.Namespace, d.Namespace, v1alpha1.ProfilerServiceAccount))
	}
	return out
}

// gpuNodeVisible looks for one GPU node: first by the feature-discovery label (one small request), then by
// allocatable GPUs, page by page, stopping at the first. It reads the API server's watch cache
// (resourceVersion 0): a warning needs no quorum read, and a consistent list of nodes waited ~50 ms for the
// cache to catch up on every admission.
func (h *Handler) gpuNodeVisible(ctx context.Context) (bool, error) {
	nodes := &corev1.NodeList{}
	if err := h.Client.List(ctx, nodes, client.MatchingLabels{LabelGPUPresent: "true"}, client.Limit(1), fromWatchCache()); err != nil {
		return false, fmt.Errorf("listing GPU nodes: %w", err)
	}
	if len(nodes.Items) > 0 {
		return true, nil
	}
	opts := []client.ListOption{client.Limit(500), fromWatchCache()}
	for {
		nodes := &corev1.NodeList{}
		if err := h.Client.List(ctx, nodes, opts...); err != nil {
			return false, fmt.Errorf("listing nodes: %w", err)
		}
		for _, n := range nodes.Items {
			if q, ok := n.Status.Allocatable[hw.ResourceGPU]; ok && !q.IsZero() {
				return true, nil
			}
		}
		if nodes.Continue == "" {
			return false, nil
		}
		opts = []client.ListOption{client.Limit(500), client.Continue(nodes.Continue)} // a continued list carries its own version
	}
}

// fromWatchCache lists at resourceVersion 0: whatever the API server's watch cache holds, without a quorum
// read. A new value each call: the client writes the request's options into it.
func fromWatchCache() *client.ListOptions {
	return &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}
}
