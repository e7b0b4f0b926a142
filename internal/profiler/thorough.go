package profiler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/thorough"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// KeyMeasurements is the <name>-profiling ConfigMap key holding the thorough search's raw record: the
// plan, every candidate's outcome and measurements (with the benchmark's full result per load), the
// corrections and the budget.
const KeyMeasurements = "measurements.json"

// AnnotationCandidateConfig on a candidate DGD is the configuration it deploys (profile.Config as JSON).
const AnnotationCandidateConfig = "nvidia.com/dgdr-candidate-config"

// FrontendPort is the port of the Service the Dynamo operator creates for a DGD's Frontend.
const FrontendPort = 8000

// CandidateRuntime reaches a ready candidate's OpenAI-compatible frontend. Readiness itself is read from
// the DGD's status, as the Dynamo operator writes it. Tests replace it (the test control plane has no
// kubelet, so candidates cannot run there): see TestThorough.
type CandidateRuntime interface {
	// Endpoint returns the base URL of the candidate's frontend, e.g. http://qwen-c0-frontend.ns.svc.cluster.local:8000.
	Endpoint(ctx context.Context, dgd *unstructured.Unstructured) (string, error)
}

// ServiceRuntime reaches a candidate through the ClusterIP Service the Dynamo operator creates for the
// Frontend component, <dgd>-frontend on port 8000. It works from inside the cluster (the profiling Job).
type ServiceRuntime struct {
	// ClusterDomain is the cluster's DNS domain (default cluster.local).
	ClusterDomain string
}

// Endpoint is http://<dgd>-frontend.<namespace>.svc.<domain>:8000.
func (s ServiceRuntime) Endpoint(_ context.Context, dgd *unstructured.Unstructured) (string, error) {
	domain := s.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	return fmt.Sprintf("http://%s-%s.%s.svc.%s:%d", dgd.GetName(), strings.ToLower(expand.DGDFrontendName), dgd.GetNamespace(), domain, FrontendPort), nil
}

// ThoroughOptions configure the thorough search. Zero values take the defaults in brackets.
type ThoroughOptions struct {
	// Runtime reaches candidates [ServiceRuntime].
	Runtime CandidateRuntime
	// Deadline is when measuring stops. The profiling Job's hard stop (its start plus
	// activeDeadlineSeconds, less DeadlineMargin for cleanup and the results) applies too; the earlier wins.
	Deadline time.Time
	// DeadlineMargin is kept before the Job's hard stop [3m].
	DeadlineMargin time.Duration
	// ReadyTimeout bounds the wait for one candidate to become ready [10m + twice the startup estimate].
	ReadyTimeout time.Duration
	// DeleteTimeout bounds the wait for a deleted candidate to be gone, its GPUs free [5m].
	DeleteTimeout time.Duration
	// MaxCandidates bounds the plan [8]; MaxLevels the loads per candidate [6]; MaxParallel the
	// candidates deployed at once when the GPU budget holds them [2].
	MaxCandidates, MaxLevels, MaxParallel int
	// Tolerance is the performance model's expected error: how far from the predicted front a deployment
	// may be and still be measured, and the benefit of the doubt before pruning [0.25].
	Tolerance float64
	// Requests per load are Rounds × concurrency, at least MinRequests [3, 16]; NoWarmup leaves out the
	// one warm-up request per user; SkipCalibration sends one word per token (see bench.Options).
	Rounds, MinRequests int
	NoWarmup            bool
	SkipCalibration     bool
	// RequestTimeout bounds one benchmark request [5m].
	RequestTimeout time.Duration
	// StartupRetries is how often a candidate's first benchmark request is retried while its frontend
	// is not yet routing, PollInterval apart [5].
	StartupRetries int
}

func (o ThoroughOptions) withDefaults() ThoroughOptions {
	if o.Runtime == nil {
		o.Runtime = ServiceRuntime{}
	}
	if o.StartupRetries <= 0 {
		o.StartupRetries = 5
	}
	if o.DeadlineMargin <= 0 {
		o.DeadlineMargin = thorough.DefaultDeadlineMargin
	}
	if o.DeleteTimeout <= 0 {
		o.DeleteTimeout = 5 * time.Minute
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Minute
	}
	return o
}

// settings are the planner's knobs (its defaults fill the rest).
func (o ThoroughOptions) settings() thorough.Settings {
	return thorough.Settings{
		MaxCandidates: o.MaxCandidates, MaxLevels: o.MaxLevels, MaxParallel: o.MaxParallel, Tolerance: o.Tolerance,
		Rounds: o.Rounds, MinRequests: o.MinRequests, NoWarmup: o.NoWarmup,
	}.WithDefaults()
}

// errDGDRGone stops a run whose DGDR was deleted: its candidates are removed and the run ends quietly.
var errDGDRGone = errors.New("the DGDR was deleted")

// thorough runs the thorough search and records its results as profile does for rapid. internal/thorough
// makes every decision (its doc.go describes the search); this side deploys, waits, benchmarks and records.
func (r *run) thorough(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest, p *plan) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	o := r.Thorough.withDefaults()
	s := &sweep{run: r, o: o, d: d, p: p}
	old, err := s.readRecord(ctx)
	if err != nil {
		return nil, err
	}
	if old != nil && old.UID == d.UID && old.Generation == r.ref.Generation && old.Budget.TotalGPUs > 0 {
		// A retry plans with the budget the first run recorded, not with the GPUs free now (its own
		// candidates may hold some): the same plan, so that nothing measured is thrown away.
		p.totalGPUs = old.Budget.TotalGPUs
		if old.Budget.GPUsPerNode > 0 {
			p.gpusPerNode = old.Budget.GPUsPerNode
		}
	}
	req := searchRequest(d, p)
	s.calNote = r.useCalibration(ctx, d, &req)
	rapid, err := profile.Search(ctx, req)
	if err != nil {
		return nil, specError(v1alpha1.ConditionProfilingComplete, v1alpha1.ReasonSearchFailed, "%v", err)
	}
	cands := thorough.Plan(req, rapid, o.settings())
	if len(cands) == 0 {
		return nil, specError(v1alpha1.ConditionProfilingComplete, v1alpha1.ReasonNoConfiguration,
			"nothing to measure: %s; raise spec.hardware.totalGpus or choose a GPU with more memory", rapid.Explanation)
	}
	deadline, err := r.thoroughDeadline(ctx, d, o)
	if err != nil {
		return nil, err
	}
	s.pl = thorough.Planner{Request: req, Settings: o.settings(), ModelCache: d.Spec.ModelCache != nil}
	s.deadline = deadline
	s.rec = &thorough.Record{
		UID: d.UID, Generation: r.ref.Generation, Model: req.Model.ID, GPU: req.GPU.Name, Workload: req.Workload, SLA: req.SLA,
		Started: r.Now(), Candidates: cands,
	}
	if err := s.resume(ctx, old); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.pl.Estimate(s.rec, r.Now(), s.deadline)
	s.mu.Unlock()
	if err := s.persist(ctx); err != nil {
		return nil, err
	}
	if err := s.report(ctx, "planned"); err != nil {
		return nil, err
	}
	if err := r.AfterPhase(phaseThoroughPlanned); err != nil {
		return nil, err
	}

	// Every candidate goes, whatever happens from here: success, failure, deadline, a deleted DGDR or a
	// cancelled run. The ownerReferences cover a profiler killed outright; the retry of a crashed one
	// finds them by label (resume).
	if err := s.sweep(ctx); err != nil {
		var crash *crashError
		if errors.As(err, &crash) {
			return nil, crash.error
		}
		_ = s.removeAll(ctx)
		if !errors.Is(err, errDGDRGone) {
			_ = s.persist(context.WithoutCancel(ctx))
		}
		return nil, err
	}
	if err := s.removeAll(ctx); err != nil {
		return nil, err
	}
	return s.finish(ctx)
}

// Points reported to AfterPhase during a thorough search (the tests' crash points): once the plan and
// budget are recorded, before any candidate is deployed; and when candidate <name> is ready, before it
// is benchmarked ("ThoroughReady c1").
const phaseThoroughPlanned v1alpha1.Phase = "ThoroughPlanned"

// phaseThoroughReady is a prefix: the candidate's name follows it.
const phaseThoroughReady = "ThoroughReady "

// thoroughDeadline is the earlier of Options.Thorough.Deadline and the profiling Job's hard stop less the
// margin; zero when neither is known.
func (r *run) thoroughDeadline(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest, o ThoroughOptions) (time.Time, error) {
	deadline := o.Deadline
	name := r.jobName()
	if name == "" {
		return deadline, nil
	}
	job := &batchv1.Job{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: name}, job); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			return deadline, nil
		}
		return time.Time{}, fmt.Errorf("reading the profiling Job %s for its deadline: %w", name, err)
	}
	if job.Spec.ActiveDeadlineSeconds == nil || job.Status.StartTime == nil {
		return deadline, nil
	}
	hard := job.Status.StartTime.Add(time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second - o.DeadlineMargin)
	if deadline.IsZero() || hard.Before(deadline) {
		deadline = hard
	}
	return deadline, nil
}

// ownedBy makes an object the DGDR's, so that deleting the DGDR deletes it (the garbage collector).
// BlockOwnerDeletion is left unset: it would need update rights on the DGDR's finalizers.
func ownedBy(d *v1alpha1.DynamoGraphDeploymentRequest) []metav1.OwnerReference {
	return []metav1.OwnerReference{{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind, Name: d.Name, UID: d.UID, Controller: ptr.To(true),
	}}
}

// candidateOwners are a candidate's owners: the DGDR, and the profiling Job when known, so that a Job
// deleted (replaced for a new spec) takes its candidates with it.
func (s *sweep) candidateOwners() []metav1.OwnerReference {
	refs := ownedBy(s.d)
	if j := s.job; j != nil && j.UID != "" {
		refs = append(refs, metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job", Name: j.Name, UID: j.UID})
	}
	return refs
}

// candidateName derives c<k>'s DGD name from the final DGD's default name, <dgdr>-dgd: <dgdr>-c<k>, no
// longer than the default so that it keeps within Dynamo's 45-character rule with the same components.
// DGDR names are unique in a namespace, so the name is this DGDR's; another object of that name (a
// user's, or a leftover of an earlier DGDR of the name) is found by its labels and owner, and never
// overwritten (see measure).
func candidateName(defaultName, suffix string) string {
	base := strings.TrimSuffix(defaultName, expand.DGDNameSuffix)
	if len(base)+len(suffix) > len(defaultName) {
		base = strings.TrimRight(base[:len(defaultName)-len(suffix)], "-")
	}
	return base + suffix
}

// candidateDGD generates c's DGD by the same code as the final one, for one replica and without the
// Planner (it would scale the candidate while it is measured), named after the DGDR rather than
// overrides.dgd's metadata.name, labelled and owned by the DGDR.
func (s *sweep) candidateDGD(c *thorough.Candidate) (*unstructured.Unstructured, error) {
	d := s.d.DeepCopy()
	d.Spec.EnableAutoScaling = false
	if o := d.Spec.Overrides; o != nil && o.DGD != nil && len(o.DGD.Raw) > 0 {
		var m map[string]any
		if err := json.Unmarshal(o.DGD.Raw, &m); err != nil {
			return nil, fmt.Errorf("spec.overrides.dgd: %w", err)
		}
		if md, ok := m["metadata"].(map[string]any); ok {
			delete(md, "name")
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("spec.overrides.dgd: %w", err)
		}
		o.DGD = &runtime.RawExtension{Raw: raw}
	}
	g, err := generateDGD(d, c.Config, s.p)
	if err != nil {
		return nil, err
	}
	u, err := decodeDGD(&runtime.RawExtension{Raw: g.raw})
	if err != nil {
		return nil, err
	}
	u.SetName(candidateName(g.name, "-"+c.Name))
	u.SetNamespace(s.d.Namespace)
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[v1alpha1.LabelDGDRName] = s.d.Name
	labels[v1alpha1.LabelCandidate] = c.Name
	u.SetLabels(labels)
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationCandidateConfig] = configJSON(c.Config)
	u.SetAnnotations(ann)
	u.SetOwnerReferences(s.candidateOwners())
	return u, nil
}

// configJSON is the candidate annotation's value.
func configJSON(c profile.Config) string {
	b, _ := json.Marshal(c) // a Config always encodes
	return string(b)
}

// listCandidates lists the DGDR's candidate DGDs by label.
func (s *sweep) listCandidates(ctx context.Context) ([]unstructured.Unstructured, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
	if err := s.Client.List(ctx, list, client.InNamespace(s.d.Namespace),
		client.MatchingLabels{v1alpha1.LabelDGDRName: s.d.Name}, client.HasLabels{v1alpha1.LabelCandidate}); err != nil {
		return nil, fmt.Errorf("listing candidate DGDs of %s: %w", s.d.Name, err)
	}
	return list.Items, nil
}

// readRecord reads measurements.json of the <name>-profiling ConfigMap (nil when there is none).
func (s *sweep) readRecord(ctx context.Context) (*thorough.Record, error) {
	cm := &corev1.ConfigMap{}
	err := s.Client.Get(ctx, types.NamespacedName{Namespace: s.d.Namespace, Name: lifecycle.ResultsConfigMapName(s.d.Name)}, cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the measurements so far: %w", err)
	}
	data, ok := cm.Data[KeyMeasurements]
	if !ok {
		return nil, nil
	}
	rec, err := decodeRecord([]byte(data))
	if err != nil {
		// A record this version cannot read is started over, not a crash loop.
		s.Log.Info("the stored measurements cannot be read; measuring again", "error", err.Error())
		return nil, nil
	}
	return rec, nil
}

// decodeRecord reads measurements.json, bounded by what the ConfigMap holds for it.
func decodeRecord(data []byte) (*thorough.Record, error) {
	if len(data) > lifecycle.MeasurementsReserve {
		return nil, fmt.Errorf("%s is %d bytes, expected at most %d", KeyMeasurements, len(data), lifecycle.MeasurementsReserve)
	}
	rec := &thorough.Record{}
	if err := json.Unmarshal(data, rec); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", KeyMeasurements, err)
	}
	return rec, nil
}

// persist writes measurements.json. It is an update of one key (a merge patch), so the final
// server-side apply of the report and plot leaves it in place.
func (s *sweep) persist(ctx context.Context) error {
	s.mu.Lock()
	data, err := json.Marshal(s.rec)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encoding the measurements: %w", err)
	}
	if len(data) > lifecycle.MeasurementsReserve {
		return fmt.Errorf("the measurements record is %d bytes, more than the %d ConfigMap %s keeps for it; lower the thorough search's candidates or loads",
			len(data), lifecycle.MeasurementsReserve, lifecycle.ResultsConfigMapName(s.d.Name))
	}
	key := types.NamespacedName{Namespace: s.d.Namespace, Name: lifecycle.ResultsConfigMapName(s.d.Name)}
	cm := &corev1.ConfigMap{}
	err = s.Client.Get(ctx, key, cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{
				Name: key.Name, Namespace: key.Namespace, OwnerReferences: ownedBy(s.d),
				Labels: map[string]string{v1alpha1.LabelDGDRName: s.d.Name},
			},
			Data: map[string]string{KeyMeasurements: string(data)},
		}
		if err := s.Client.Create(ctx, cm, client.FieldOwner(v1alpha1.FieldManager)); err != nil {
			return fmt.Errorf("writing the measurements to ConfigMap %s: %w", key.Name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading ConfigMap %s: %w", key.Name, err)
	}
	patch := client.MergeFrom(cm.DeepCopy())
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[KeyMeasurements] = string(data)
	if err := s.Client.Patch(ctx, cm, patch, client.FieldOwner(v1alpha1.FieldManager)); err != nil {
		return fmt.Errorf("writing the measurements to ConfigMap %s: %w", key.Name, err)
	}
	return nil
}

// finish ranks the measured points, generates the final DGD from the selection and records the results.
func (s *sweep) finish(ctx context.Context) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	s.mu.Lock()
	rank := s.pl.Rank(s.rec)
	s.mu.Unlock()
	if rank.Points == 0 {
		return nil, specError(v1alpha1.ConditionProfilingComplete, v1alpha1.ReasonNothingMeasured,
			"no candidate could be measured (%s); see %s in ConfigMap %s, fix the cause or use searchStrategy: rapid, then delete and recreate the DGDR",
			rank.Summary, KeyMeasurements, lifecycle.ResultsConfigMapName(s.d.Name))
	}
	res, sel := rank.Result, rank.Selected
	stored := s.storeMeasurements(ctx)
	dgd, err := generateDGD(s.d, sel, s.p)
	if err != nil {
		return nil, specError(v1alpha1.ConditionDGDGenerated, v1alpha1.ReasonGenerationFailed, "%v", err)
	}
	cm, err := s.writeConfigMap(ctx, s.d, &s.pl.Request, res)
	if err != nil {
		return nil, err
	}

	done := metav1.NewTime(s.Now())
	budget := s.budgetStatus()
	// The first run's start, also after a retry.
	started := metav1.NewTime(s.rec.Started)
	results := &v1alpha1.ProfilingResults{StartTime: &started, CompletionTime: &done, Budget: budget}
	results.Pareto, results.SelectedConfig = storedResults(res, sel)
	for i := range results.Pareto {
		markMeasured(&results.Pareto[i], rank.Predicted)
	}
	markMeasured(&results.SelectedConfig.ParetoPoint, rank.Predicted)
	results.SelectedConfig.DGD = &runtime.RawExtension{Raw: dgd.raw}
	d, err := lifecycle.MarkReady(ctx, s.Client, s.ref, lifecycle.Profiled{
		Results: results, DGDName: dgd.name, MeetsSLA: sel.MeetsSLA, ResultsConfigMap: cm,
		Message: fmt.Sprintf("thorough search measured %d points on %s in %s using %.2f GPU-hours: %s%s%s",
			rank.Points, rank.Summary, done.Sub(started.Time).Round(time.Second), budget.UsedGPUHours, res.Explanation, s.calNote, stored),
	})
	if lifecycle.IsGone(err) {
		return nil, errDGDRGone
	}
	return d, err
}

// markMeasured flags a stored point as measured and puts the prediction beside it.
func markMeasured(p *v1alpha1.ParetoPoint, predicted map[string]thorough.Figures) {
	f, ok := predicted[profile.Describe(expand.ConfigFromPoint(*p))]
	if !ok {
		return
	}
	p.Measured = true
	p.Predicted = &v1alpha1.PredictedPerformance{TTFT: f.TTFTMs, ITL: f.ITLMs, TokensPerSecondPerGPU: f.TokensPerSecondPerGPU}
}
