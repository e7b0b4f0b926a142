package profiler

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// profilingJob stores a Job as the webhook makes it (owner: the DGDR's UID, or none), with the status the
// Job controller would have written.
func (f *fixture) profilingJob(t *testing.T, name string, owner *metav1.OwnerReference, backoff int32, deadline *int64, status batchv1.JobStatus) *batchv1.Job {
	t.Helper()
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Spec: batchv1.JobSpec{BackoffLimit: ptr.To(backoff), ActiveDeadlineSeconds: deadline, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "profiler", Image: "dgdr"}},
		}}},
	}
	if owner != nil {
		job.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	require.NoError(t, f.env.Client.Create(t.Context(), job))
	job.Status = status
	require.NoError(t, f.env.Client.Status().Update(t.Context(), job))
	return job
}

func dgdrOwner(name string, uid types.UID) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind, Name: name, UID: uid, Controller: ptr.To(true)}
}

func lifecycleTests(t *testing.T, env *testenv.Env) {
	t.Run("the profiling Job's retry policy is one the API server accepts", func(t *testing.T) {
		f := newFixture(t, env, "job-policy")
		for _, strategy := range []v1alpha1.SearchStrategy{v1alpha1.SearchRapid, v1alpha1.SearchThorough} {
			d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "qwen-" + string(strategy), Namespace: f.ns},
				Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-8B", SearchStrategy: strategy}}
			d.Default("img")
			job, err := expand.ProfilingJob(d, expand.JobOptions{ProfilerImage: "dgdr-profiler:dev"})
			require.NoError(t, err)
			require.NoError(t, env.Client.Create(t.Context(), job, client.DryRunAll))
			assert.Equal(t, batchv1.Failed, *job.Spec.PodReplacementPolicy, "a replacement starts once the old pod is gone")
			require.NotNil(t, job.Spec.PodFailurePolicy)
			assert.Equal(t, batchv1.PodFailurePolicyActionIgnore, job.Spec.PodFailurePolicy.Rules[0].Action)
			assert.Equal(t, corev1.DisruptionTarget, job.Spec.PodFailurePolicy.Rules[0].OnPodConditions[0].Type)
		}
	})

	t.Run("the profiler waits for a DGDR stored after its pod started", func(t *testing.T) {
		f := newFixture(t, env, "late-dgdr")
		done := make(chan error, 1)
		go func() {
			done <- Run(t.Context(), Options{Namespace: f.ns, Name: "qwen", Client: env.Client, Log: testr.New(t),
				PollInterval: 20 * time.Millisecond, DGDRWait: 20 * time.Second})
		}()
		time.Sleep(300 * time.Millisecond)
		key := f.dgdr(t, "qwen", nil)
		require.NoError(t, <-done)
		assert.Equal(t, v1alpha1.PhaseReady, f.get(t, key).Status.Phase)
	})

	t.Run("a Job made for another DGDR of the same name exits non-zero and writes nothing", func(t *testing.T) {
		f := newFixture(t, env, "other-uid")
		f.profilingJob(t, "qwen-profile", dgdrOwner("qwen", "0000-earlier"), 3, nil, batchv1.JobStatus{})
		key := f.dgdr(t, "qwen", nil)
		err := f.run(t, key, nil)
		require.ErrorContains(t, err, "is controlled by DynamoGraphDeploymentRequest qwen (UID 0000-earlier), not by DGDR qwen")
		assert.Empty(t, f.get(t, key).Status.Phase)
	})

	t.Run("a Job without an owner is adopted without blockOwnerDeletion", func(t *testing.T) {
		f := newFixture(t, env, "adopt")
		job := f.profilingJob(t, "qwen-profile", nil, 3, nil, batchv1.JobStatus{})
		key := f.dgdr(t, "qwen", nil)
		require.NoError(t, f.run(t, key, nil))
		require.NoError(t, env.Client.Get(t.Context(), client.ObjectKeyFromObject(job), job))
		owner := metav1.GetControllerOf(job)
		require.NotNil(t, owner)
		assert.Equal(t, f.get(t, key).UID, owner.UID)
		assert.Nil(t, owner.BlockOwnerDeletion, "no finalizers rights needed (OwnerReferencesPermissionEnforcement)")
		cm := &corev1.ConfigMap{}
		require.NoError(t, env.Client.Get(t.Context(), types.NamespacedName{Namespace: f.ns, Name: "qwen-profiling"}, cm))
		assert.Nil(t, cm.OwnerReferences[0].BlockOwnerDeletion)
	})

	t.Run("with --uid the Job is claimed only for the stored DGDR of that UID, else deleted", func(t *testing.T) {
		f := newFixture(t, env, "claim")
		made := func(t *testing.T, name string, uid types.UID) *batchv1.Job {
			job := f.profilingJob(t, expand.ProfilingJobName(name, uid), nil, 3, nil, batchv1.JobStatus{})
			patch := client.MergeFrom(job.DeepCopy())
			job.Annotations = map[string]string{v1alpha1.AnnotationDGDRUID: string(uid)}
			require.NoError(t, env.Client.Patch(t.Context(), job, patch))
			return job
		}
		claim := func(name string, uid types.UID) error {
			return Claim(t.Context(), Options{Namespace: f.ns, Name: name, UID: uid, Client: env.Client, Log: testr.New(t),
				PollInterval: 20 * time.Millisecond, DGDRWait: 300 * time.Millisecond})
		}
		gone := func(job *batchv1.Job) bool {
			return apierrors.IsNotFound(env.Client.Get(t.Context(), client.ObjectKeyFromObject(job), &batchv1.Job{}))
		}

		// Refused after the webhook: no DGDR of that name ever appears.
		refused := made(t, "refused", "0000-refused")
		err := claim("refused", "0000-refused")
		require.ErrorIs(t, err, ErrNotAdmitted)
		assert.ErrorContains(t, err, "was not stored within 300ms")
		assert.True(t, gone(refused), "the Job of a create that was never stored is deleted")

		// Another create of the name was stored: this Job's never will be.
		key := f.dgdr(t, "taken", nil)
		other := made(t, "taken", "0000-other")
		err = claim("taken", "0000-other")
		require.ErrorIs(t, err, ErrNotAdmitted)
		assert.ErrorContains(t, err, "not 0000-other")
		assert.True(t, gone(other))
		assert.Empty(t, f.get(t, key).Status.Phase, "nothing written to the DGDR that is not this Job's")

		// Another create's Job of the same DGDR name is left alone.
		later := made(t, "twice", "0000-later")
		err = claim("twice", "0000-earlier")
		require.ErrorIs(t, err, ErrNotAdmitted)
		assert.ErrorContains(t, err, "already gone")
		assert.False(t, gone(later))

		// The stored DGDR of that UID: its Job is adopted, without blockOwnerDeletion.
		key = f.dgdr(t, "stored", nil)
		uid := f.get(t, key).UID
		job := made(t, "stored", uid)
		require.NoError(t, claim("stored", uid))
		require.NoError(t, env.Client.Get(t.Context(), client.ObjectKeyFromObject(job), job))
		owner := metav1.GetControllerOf(job)
		require.NotNil(t, owner, "adopted")
		assert.Equal(t, uid, owner.UID)
		assert.Nil(t, owner.BlockOwnerDeletion)
	})

	crash := errors.New("simulated crash: API server unreachable")
	crashAt := func(phase v1alpha1.Phase, err error) func(v1alpha1.Phase) error {
		return func(p v1alpha1.Phase) error {
			if p == phase {
				return err
			}
			return nil
		}
	}

	t.Run("a failing run with retries left leaves the DGDR to the retry", func(t *testing.T) {
		f := newFixture(t, env, "retry-left")
		f.profilingJob(t, "qwen-profile", nil, 2, nil, batchv1.JobStatus{Failed: 1, StartTime: ptr.To(metav1.Now())})
		key := f.dgdr(t, "qwen", nil)
		require.ErrorIs(t, f.run(t, key, crashAt(v1alpha1.PhaseProfiling, crash)), crash)
		assert.Equal(t, v1alpha1.PhaseProfiling, f.get(t, key).Status.Phase)
	})

	t.Run("the last retry's failure is recorded with its cause", func(t *testing.T) {
		f := newFixture(t, env, "retry-last")
		f.profilingJob(t, "qwen-profile", nil, 1, nil, batchv1.JobStatus{Failed: 1, StartTime: ptr.To(metav1.Now())})
		key := f.dgdr(t, "qwen", nil)
		require.ErrorIs(t, f.run(t, key, crashAt(v1alpha1.PhaseProfiling, crash)), crash, "the Job still sees the failure")
		d := f.get(t, key)
		assert.Equal(t, v1alpha1.PhaseFailed, d.Status.Phase)
		c := condition(d, v1alpha1.ConditionProfilingComplete)
		assert.Equal(t, v1alpha1.ReasonProfilerError, c.Reason)
		assert.Contains(t, c.Message, "API server unreachable")
		assert.Contains(t, c.Message, "last attempt (2 of 2)")
	})

	t.Run("stopped at the Job's deadline (SIGTERM), the run records DeadlineExceeded", func(t *testing.T) {
		f := newFixture(t, env, "sigterm")
		f.profilingJob(t, "qwen-profile", nil, 3, ptr.To[int64](60), batchv1.JobStatus{StartTime: ptr.To(metav1.NewTime(time.Now().Add(-time.Hour)))})
		key := f.dgdr(t, "qwen", nil)
		ctx, cancel := context.WithCancel(t.Context())
		err := Run(ctx, Options{Namespace: key.Namespace, Name: key.Name, JobName: "qwen-profile", Client: env.Client, Log: testr.New(t), PollInterval: 20 * time.Millisecond,
			AfterPhase: func(p v1alpha1.Phase) error {
				if p == v1alpha1.PhaseProfiling {
					cancel() // the kubelet's SIGTERM, as signal.NotifyContext turns it into
					return ctx.Err()
				}
				return nil
			}})
		require.ErrorIs(t, err, context.Canceled)
		d := f.get(t, key)
		assert.Equal(t, v1alpha1.PhaseFailed, d.Status.Phase)
		assert.Equal(t, v1alpha1.ReasonDeadlineExceeded, condition(d, v1alpha1.ConditionProfilingComplete).Reason)
	})

	t.Run("autoApply never overwrites a DGD that is not the DGDR's", func(t *testing.T) {
		f := newFixture(t, env, "theirs")
		theirs := &unstructured.Unstructured{}
		theirs.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
		theirs.SetName("qwen-dgd")
		theirs.SetNamespace(f.ns)
		theirs.Object["spec"] = map[string]any{"components": []any{map[string]any{"name": "Frontend", "type": "frontend", "replicas": int64(1)}}}
		require.NoError(t, env.Client.Create(t.Context(), theirs, client.FieldOwner("kubectl")))
		key := f.dgdr(t, "qwen", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.AutoApply = true })
		require.NoError(t, f.run(t, key, nil), "a spec problem, not a Job retry")
		d := f.get(t, key)
		assert.Equal(t, v1alpha1.PhaseFailed, d.Status.Phase)
		c := condition(d, v1alpha1.ConditionDeploymentReady)
		assert.Equal(t, v1alpha1.ReasonNotOwned, c.Reason)
		assert.Contains(t, c.Message, "not applied by dgdr")
		live, err := lifecycle.GetDGD(t.Context(), env.Client, f.ns, "qwen-dgd")
		require.NoError(t, err)
		assert.Equal(t, theirs.GetResourceVersion(), live.GetResourceVersion(), "untouched")
	})
}

// TestResultsConfigMapWorstCase builds the results of the largest search we can construct, DeepSeek-R1 on
// 4096 H200s, and checks the ConfigMap as stored (binaryData base64) stays under the API server's 1 MiB
// with room for the measurements record.
func TestResultsConfigMapWorstCase(t *testing.T) {
	if testing.Short() {
		t.Skip("a 4096-GPU search")
	}
	d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "deepseek", Namespace: "ns", UID: "u1"},
		Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "deepseek-ai/DeepSeek-R1", Hardware: &v1alpha1.Hardware{GPUType: "h200_sxm"},
			SLA: &v1alpha1.SLA{TTFT: ptr.To(2000.0), ITL: ptr.To(50.0)}}}
	d.Default("img")
	model, err := profile.LookupModel(d.Spec.Model)
	require.NoError(t, err)
	gpu, err := hw.Lookup("h200_sxm")
	require.NoError(t, err)
	p := &plan{model: model, gpu: gpu, gpusPerNode: 8, totalGPUs: 4096}
	req := searchRequest(d, p)
	res, err := profile.Search(t.Context(), req)
	require.NoError(t, err)
	cm, err := resultsConfigMap(d, &req, res)
	require.NoError(t, err)
	data, err := json.Marshal(cm)
	require.NoError(t, err)
	report, err := lifecycle.ReadResults(cm)
	require.NoError(t, err)
	t.Logf("%d candidates costed, %d stored (%d omitted); plot %d bytes; ConfigMap %d bytes",
		len(res.Candidates), len(report.Candidates), report.CandidatesOmitted, len(cm.Data[lifecycle.PlotKey]), len(data))
	assert.Greater(t, len(res.Candidates), 10000, "a search large enough to need thinning")
	assert.Less(t, len(data)+lifecycle.MeasurementsReserve, 1<<20, "under 1 MiB with the measurements' reserve")
	full := profile.NewReport(&req, &res, true)
	assert.Equal(t, len(full.Candidates), len(report.Candidates)+report.CandidatesOmitted, "what was left out is counted")
	assert.LessOrEqual(t, strings.Count(cm.Data[lifecycle.PlotKey], "<circle"), maxPlotPoints+len(res.Pareto())+1)
}
