package profiler

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/calibstore"
	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// gpuNode is a node as GPU feature discovery and the device plugin label it.
func gpuNode(t *testing.T, c client.Client, name, product string, gpus int) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"nvidia.com/gpu.product": product, "nvidia.com/gpu.count": "8", "nvidia.com/gpu.present": "true",
	}}}
	require.NoError(t, c.Create(t.Context(), n))
	// The API server taints new nodes not-ready; the node lifecycle controller (absent here) lifts it.
	n.Spec.Taints = nil
	require.NoError(t, c.Update(t.Context(), n))
	n.Status.Capacity = corev1.ResourceList{"nvidia.com/gpu": *resource.NewQuantity(int64(gpus), resource.DecimalSI)}
	n.Status.Allocatable = n.Status.Capacity
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	require.NoError(t, c.Status().Update(t.Context(), n))
}

type fixture struct {
	env *testenv.Env
	ns  string
}

func newFixture(t *testing.T, env *testenv.Env, ns string) *fixture {
	require.NoError(t, env.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	return &fixture{env: env, ns: ns}
}

// dgdr stores a DGDR as the webhook would have defaulted it.
func (f *fixture) dgdr(t *testing.T, name string, mutate func(*v1alpha1.DynamoGraphDeploymentRequest)) types.NamespacedName {
	t.Helper()
	d := &v1alpha1.DynamoGraphDeploymentRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		// An SLA every revision of the performance model meets: these tests are about the lifecycle.
		Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-32B", Backend: v1alpha1.BackendVLLM,
			SLA: &v1alpha1.SLA{TTFT: ptr.To(5000.0), ITL: ptr.To(200.0)}},
	}
	if mutate != nil {
		mutate(d)
	}
	d.Default("nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.3.0")
	require.NoError(t, f.env.Client.Create(t.Context(), d))
	return client.ObjectKeyFromObject(d)
}

func (f *fixture) run(t *testing.T, key types.NamespacedName, hook func(v1alpha1.Phase) error) error {
	return Run(t.Context(), Options{
		Namespace: key.Namespace, Name: key.Name, JobName: key.Name + "-profile", Client: f.env.Client, Log: testr.New(t),
		PollInterval: 20 * time.Millisecond, DeployWait: 0, AfterPhase: hook,
	})
}

func (f *fixture) get(t *testing.T, key types.NamespacedName) *v1alpha1.DynamoGraphDeploymentRequest {
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	require.NoError(t, f.env.Client.Get(t.Context(), key, d))
	return d
}

func condition(d *v1alpha1.DynamoGraphDeploymentRequest, typ string) metav1.Condition {
	c := meta.FindStatusCondition(d.Status.Conditions, typ)
	if c == nil {
		return metav1.Condition{}
	}
	return *c
}

// markReady plays the Dynamo operator: it reports the DGD successful.
func markReady(t *testing.T, c client.Client, ns, name string) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
	require.NoError(t, c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, u))
	require.NoError(t, unstructured.SetNestedField(u.Object, "successful", "status", "state"))
	require.NoError(t, unstructured.SetNestedMap(u.Object, map[string]any{
		"Frontend": map[string]any{"componentKind": "Deployment", "replicas": int64(1), "updatedReplicas": int64(1), "availableReplicas": int64(1)},
	}, "status", "components"))
	require.NoError(t, c.Status().Update(t.Context(), u))
}

func TestProfiler(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	gpuNode(t, env.Client, "gpu-a", "NVIDIA-H200", 8)
	gpuNode(t, env.Client, "gpu-b", "NVIDIA-H200", 8)

	t.Run("a rapid search predicts with the namespace's refit and says so", func(t *testing.T) {
		f := newFixture(t, env, "calibrated")
		m, err := profile.LookupModel("Qwen/Qwen3-32B")
		require.NoError(t, err)
		fit := &calibstore.Fit{Method: "calibrated/dgdr-calibration: 3 measured rows", Rows: 3, Corrections: []profile.Correction{
			{Arch: m.ArchKey(), GPU: "h200_sxm", Backend: "vllm", Mode: profile.ModeAgg, TTFT: 1.3, ITL: 1.7, Rows: 3}}}
		require.NoError(t, calibstore.SaveFit(t.Context(), env.Client, f.ns, fit))
		key := f.dgdr(t, "qwen", nil)
		require.NoError(t, f.run(t, key, nil))
		d := f.get(t, key)
		require.Equal(t, v1alpha1.PhaseReady, d.Status.Phase)
		assert.Contains(t, condition(d, v1alpha1.ConditionProfilingComplete).Message, "predictions with the calibration "+fit.Method)
		cm := &corev1.ConfigMap{}
		require.NoError(t, env.Client.Get(t.Context(), types.NamespacedName{Namespace: f.ns, Name: "qwen-profiling"}, cm))
		report, err := lifecycle.ReadResults(cm)
		require.NoError(t, err)
		assert.Equal(t, fit.Method, report.Calibration)
	})

	t.Run("rapid search to Ready with a Pareto front, results ConfigMap and a DGD", func(t *testing.T) {
		f := newFixture(t, env, "ready")
		key := f.dgdr(t, "qwen", nil)
		require.NoError(t, f.run(t, key, nil))

		d := f.get(t, key)
		assert.Equal(t, v1alpha1.PhaseReady, d.Status.Phase)
		res := d.Status.ProfilingResults
		require.NotNil(t, res)
		assert.GreaterOrEqual(t, len(res.Pareto), 2, "a front of several trade-offs")
		require.NotNil(t, res.SelectedConfig)
		assert.True(t, res.SelectedConfig.MeetsSLA, res.SelectedConfig.Reason)
		assert.LessOrEqual(t, res.SelectedConfig.GPUs, int32(16), "within the discovered GPUs")
		assert.Equal(t, "vllm", res.SelectedConfig.Backend)
		require.NotNil(t, res.StartTime)
		require.NotNil(t, res.CompletionTime)
		assert.Equal(t, metav1.ConditionTrue, condition(d, v1alpha1.ConditionValidated).Status)
		assert.Contains(t, condition(d, v1alpha1.ConditionValidated).Message, "h200_sxm discovered on 2 node(s)")
		assert.Equal(t, "SLAMet", condition(d, v1alpha1.ConditionProfilingComplete).Reason)
		assert.NotEmpty(t, d.Status.DGDName)

		dgd, err := decodeDGD(res.SelectedConfig.DGD)
		require.NoError(t, err)
		assert.Equal(t, d.Status.DGDName, dgd.GetName())
		// The stored DGD is what the real CRD accepts.
		dgd.SetNamespace(f.ns)
		require.NoError(t, env.Client.Create(t.Context(), dgd, client.DryRunAll))

		cm := &corev1.ConfigMap{}
		require.NoError(t, env.Client.Get(t.Context(), types.NamespacedName{Namespace: f.ns, Name: "qwen-profiling"}, cm))
		report, err := lifecycle.ReadResults(cm)
		require.NoError(t, err)
		assert.Equal(t, min(len(report.Pareto), maxStoredPareto), len(res.Pareto), "status holds the front, thinned to its bound")
		if sel := res.SelectedConfig; sel.Index >= 0 {
			assert.Equal(t, sel.ParetoPoint, res.Pareto[sel.Index], "the selection's index points at it in the stored front")
		}
		assert.Greater(t, len(report.Candidates), len(report.Pareto), "dominated candidates are kept for the UI")
		assert.Equal(t, "h200_sxm", report.GPU)
		assert.True(t, strings.HasPrefix(cm.Data[lifecycle.PlotKey], "<svg"))
		require.Len(t, cm.OwnerReferences, 1)
		assert.Equal(t, d.UID, cm.OwnerReferences[0].UID)

		// Nothing applied without autoApply.
		st, err := lifecycle.GetDGDState(t.Context(), env.Client, f.ns, d.Status.DGDName)
		require.NoError(t, err)
		assert.False(t, st.Found)
	})

	t.Run("autoApply deploys, then Deployed once the DGD is ready", func(t *testing.T) {
		f := newFixture(t, env, "auto")
		key := f.dgdr(t, "qwen", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.AutoApply = true })
		require.NoError(t, f.run(t, key, nil))
		d := f.get(t, key)
		assert.Equal(t, v1alpha1.PhaseDeploying, d.Status.Phase, "DeployWait 0 returns at once")
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
		require.NoError(t, env.Client.Get(t.Context(), types.NamespacedName{Namespace: f.ns, Name: d.Status.DGDName}, u))
		assert.Equal(t, "qwen", u.GetLabels()[v1alpha1.LabelDGDRName])
		assert.Empty(t, u.GetOwnerReferences(), "the DGD outlives the DGDR")
		assert.Equal(t, v1alpha1.FieldManager, u.GetManagedFields()[0].Manager)

		markReady(t, env.Client, f.ns, d.Status.DGDName)
		require.NoError(t, Run(t.Context(), Options{
			Namespace: key.Namespace, Name: key.Name, Client: env.Client, Log: testr.New(t),
			PollInterval: 10 * time.Millisecond, DeployWait: 5 * time.Second,
		}))
		d = f.get(t, key)
		assert.Equal(t, v1alpha1.PhaseDeployed, d.Status.Phase)
		require.NotNil(t, d.Status.DeploymentInfo)
		assert.Equal(t, int32(1), d.Status.DeploymentInfo.AvailableReplicas)
		assert.Equal(t, metav1.ConditionTrue, condition(d, v1alpha1.ConditionDeploymentReady).Status)
	})

	t.Run("a crash mid-way and the retry lose and duplicate nothing", func(t *testing.T) {
		f := newFixture(t, env, "crash")
		key := f.dgdr(t, "qwen", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.AutoApply = true })
		crash := errors.New("simulated crash")
		for _, at := range []v1alpha1.Phase{v1alpha1.PhaseProfiling, v1alpha1.PhaseReady, v1alpha1.PhaseDeploying} {
			err := f.run(t, key, func(p v1alpha1.Phase) error {
				if p == at {
					return crash
				}
				return nil
			})
			require.ErrorIs(t, err, crash)
		}
		first := f.get(t, key).Status.ProfilingResults.SelectedConfig
		require.NoError(t, f.run(t, key, nil))
		d := f.get(t, key)
		assert.Equal(t, v1alpha1.PhaseDeploying, d.Status.Phase)
		assert.Equal(t, first.ParetoPoint, d.Status.ProfilingResults.SelectedConfig.ParetoPoint, "the retry selects the same")

		dgds := &unstructured.UnstructuredList{}
		dgds.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
		require.NoError(t, env.Client.List(t.Context(), dgds, client.InNamespace(f.ns)))
		assert.Len(t, dgds.Items, 1, "one DGD however often it ran")
		cms := &corev1.ConfigMapList{}
		require.NoError(t, env.Client.List(t.Context(), cms, client.InNamespace(f.ns), client.MatchingLabels{v1alpha1.LabelDGDRName: "qwen"}))
		assert.Len(t, cms.Items, 1)
		for _, c := range []string{v1alpha1.ConditionValidated, v1alpha1.ConditionProfilingComplete, v1alpha1.ConditionDGDGenerated, v1alpha1.ConditionDeploymentReady} {
			assert.NotEmpty(t, condition(d, c).Type, c)
		}
		assert.Len(t, d.Status.Conditions, 4, "conditions are replaced, not appended")
	})

	t.Run("an SLA no configuration meets is explained, not deployed", func(t *testing.T) {
		f := newFixture(t, env, "impossible")
		key := f.dgdr(t, "qwen", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
			d.Spec.AutoApply = true
			d.Spec.SLA = &v1alpha1.SLA{TTFT: ptr.To(1.0), ITL: ptr.To(0.5)}
		})
		require.NoError(t, f.run(t, key, nil))
		d := f.get(t, key)
		assert.Equal(t, v1alpha1.PhaseReady, d.Status.Phase)
		sel := d.Status.ProfilingResults.SelectedConfig
		assert.False(t, sel.MeetsSLA)
		pc := condition(d, v1alpha1.ConditionProfilingComplete)
		assert.Equal(t, "SLANotMet", pc.Reason)
		assert.Contains(t, pc.Message, "closest")
		dr := condition(d, v1alpha1.ConditionDeploymentReady)
		assert.Equal(t, "SLANotMet", dr.Reason)
		assert.Contains(t, dr.Message, "kubectl dgdr promote qwen")
	})

	failures := []struct {
		name, reason, message string
		mutate                func(*v1alpha1.DynamoGraphDeploymentRequest)
	}{
		{"unknown model", "UnknownModel", "modelCache", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.Model = "acme/NoSuchModel-7B" }},
		{"unknown GPU type", "UnknownGPU", "spec.hardware.gpuType", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
			d.Spec.Hardware = &v1alpha1.Hardware{GPUType: "z100"}
		}},
		{"nothing fits the budget", "NoConfiguration", "totalGpus", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
			d.Spec.Model = "deepseek-ai/DeepSeek-R1"
			d.Spec.Hardware = &v1alpha1.Hardware{TotalGPUs: ptr.To[int32](1)}
		}},
	}
	for i, tt := range failures {
		t.Run("Failed: "+tt.name, func(t *testing.T) {
			f := newFixture(t, env, "fail-"+string(rune('a'+i)))
			key := f.dgdr(t, "req", tt.mutate)
			require.NoError(t, f.run(t, key, nil), "a spec problem is not a Job retry")
			d := f.get(t, key)
			assert.Equal(t, v1alpha1.PhaseFailed, d.Status.Phase)
			var found bool
			for _, c := range d.Status.Conditions {
				if c.Status == metav1.ConditionFalse && c.Reason == tt.reason {
					found = true
					assert.Contains(t, c.Message, tt.message)
				}
			}
			assert.True(t, found, "a False condition with reason %s in %+v", tt.reason, d.Status.Conditions)
			require.NoError(t, f.run(t, key, nil), "a Failed DGDR stays Failed")
		})
	}

	t.Run("a DGDR that is never stored is an error after the bounded wait", func(t *testing.T) {
		f := newFixture(t, env, "gone")
		err := Run(t.Context(), Options{Namespace: f.ns, Name: "missing", Client: env.Client, Log: testr.New(t),
			PollInterval: 20 * time.Millisecond, DGDRWait: 300 * time.Millisecond})
		require.ErrorContains(t, err, "did not appear within 300ms")
	})

	lifecycleTests(t, env)
}

func TestNoGPUNodes(t *testing.T) {
	env := testenv.Start(t, testenv.Options{WithoutDynamoCRD: true})
	f := newFixture(t, env, "bare")
	key := f.dgdr(t, "req", nil)
	require.NoError(t, f.run(t, key, nil))
	d := f.get(t, key)
	assert.Equal(t, v1alpha1.PhaseFailed, d.Status.Phase)
	assert.Contains(t, condition(d, v1alpha1.ConditionValidated).Message, "set spec.hardware.gpuType")

	// With spec.hardware the same cluster profiles, and says Dynamo is missing.
	key = f.dgdr(t, "hw", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		d.Spec.Hardware = &v1alpha1.Hardware{GPUType: "h100_sxm", GPUsPerNode: ptr.To[int32](8), TotalGPUs: ptr.To[int32](8)}
	})
	require.NoError(t, f.run(t, key, nil))
	d = f.get(t, key)
	assert.Equal(t, v1alpha1.PhaseReady, d.Status.Phase)
	assert.Contains(t, condition(d, v1alpha1.ConditionValidated).Message, "CRD is not installed")

	key = f.dgdr(t, "auto", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		d.Spec.AutoApply = true
		d.Spec.Hardware = &v1alpha1.Hardware{GPUType: "h100_sxm", TotalGPUs: ptr.To[int32](8)}
	})
	require.NoError(t, f.run(t, key, nil))
	d = f.get(t, key)
	assert.Equal(t, v1alpha1.PhaseFailed, d.Status.Phase)
	assert.Equal(t, "DynamoNotInstalled", condition(d, v1alpha1.ConditionValidated).Reason)
}
