package deploy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/deploy"
	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/profiler"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

// fixture is a control plane with DGDRs profiled by the real profiler: the status, the results ConfigMap
// and the stored DGD are what a cluster holds.
type fixture struct {
	t   *testing.T
	env *testenv.Env
	svc *deploy.Service
}

func (f *fixture) namespace(t *testing.T, name string) string {
	t.Helper()
	require.NoError(t, f.env.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	return name
}

func (f *fixture) profiled(t *testing.T, ns, name string) *v1alpha1.DynamoGraphDeploymentRequest {
	t.Helper()
	d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{
		Model: "Qwen/Qwen3-32B", Backend: v1alpha1.BackendVLLM,
		Hardware: &v1alpha1.Hardware{GPUType: "h200_sxm", GPUsPerNode: ptr.To[int32](8), TotalGPUs: ptr.To[int32](8)},
	}}
	d.Default("nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.3.0")
	require.NoError(t, f.env.Client.Create(t.Context(), d))
	require.NoError(t, profiler.Run(t.Context(), profiler.Options{Namespace: ns, Name: name, Client: f.env.Client, Log: testr.New(t)}))
	got := f.get(t, ns, name)
	require.Equal(t, v1alpha1.PhaseReady, got.Status.Phase)
	require.Greater(t, len(got.Status.ProfilingResults.Pareto), 2)
	return got
}

func (f *fixture) get(t *testing.T, ns, name string) *v1alpha1.DynamoGraphDeploymentRequest {
	t.Helper()
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	require.NoError(t, f.env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, d))
	return d
}

func (f *fixture) live(t *testing.T, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := lifecycle.GetDGD(t.Context(), f.env.Client, ns, name)
	require.NoError(t, err)
	return u
}

func (f *fixture) resolve(t *testing.T, d *v1alpha1.DynamoGraphDeploymentRequest, index int) *deploy.Resolved {
	t.Helper()
	r, err := f.svc.Resolve(t.Context(), d, deploy.Pick{Index: index})
	require.NoError(t, err)
	return r
}

// frontends sets the Frontend's replicas of a live v1beta1 DGD, as someone editing it would.
func frontends(t *testing.T, u *unstructured.Unstructured, n int64) {
	t.Helper()
	comps, _, err := unstructured.NestedSlice(u.Object, "spec", "components")
	require.NoError(t, err)
	found := false
	for _, c := range comps {
		if m := c.(map[string]any); m["name"] == "Frontend" {
			m["replicas"], found = n, true
		}
	}
	require.True(t, found, "DGD %s has a Frontend", u.GetName())
	require.NoError(t, unstructured.SetNestedSlice(u.Object, comps, "spec", "components"))
}

func TestService(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	f := &fixture{t: t, env: env, svc: deploy.New(env.Client)}
	ns := f.namespace(t, "deploy")
	d := f.profiled(t, ns, "qwen")
	pr := d.Status.ProfilingResults

	t.Run("resolve: the stored DGD for the selected configuration, generated for a row", func(t *testing.T) {
		stored := &unstructured.Unstructured{}
		require.NoError(t, stored.UnmarshalJSON(pr.SelectedConfig.DGD.Raw))
		r := f.resolve(t, d, deploy.Selected)
		assert.Equal(t, stored.Object["spec"], r.DGD.Object["spec"], "what profiling stored")
		assert.Equal(t, "qwen", r.DGD.GetLabels()[v1alpha1.LabelDGDRName])
		assert.Equal(t, ns, r.DGD.GetNamespace())
		assert.Equal(t, pr.SelectedConfig.ParetoPoint, r.Point)
		assert.Empty(t, r.Warnings, "spec.hardware.gpusPerNode is set")

		last := len(pr.Pareto) - 1
		r = f.resolve(t, d, last)
		assert.Equal(t, pr.Pareto[last], r.Point)
		assert.Equal(t, last, r.Index)
		assert.Equal(t, expand.DGDAPIVersionV1Beta1, r.DGD.GetAPIVersion())
		assert.Equal(t, "qwen", r.DGD.GetLabels()[v1alpha1.LabelDGDRName])
	})

	t.Run("resolve: the node size from the stored report, else a guess said as such", func(t *testing.T) {
		unset := d.DeepCopy()
		unset.Spec.Hardware.GPUsPerNode = nil
		r := f.resolve(t, unset, 0)
		assert.Empty(t, r.Warnings, "the profiler's report records the node size")

		other := unset.DeepCopy()
		other.Name = "no-report"
		r = f.resolve(t, other, 0)
		require.Len(t, r.Warnings, 1)
		assert.Contains(t, r.Warnings[0], "assuming 8 GPUs per node")
	})

	t.Run("resolve: patches merge in order; a bad one is a PatchError", func(t *testing.T) {
		patch := func(n int) deploy.Patch {
			return deploy.Patch{Name: "p", Data: []byte("apiVersion: nvidia.com/v1beta1\nkind: DynamoGraphDeployment\nspec:\n  components:\n  - name: Frontend\n    replicas: " + string(rune('0'+n)) + "\n")}
		}
		r, err := f.svc.Resolve(t.Context(), d, deploy.Pick{Index: 0, Patches: []deploy.Patch{patch(3), patch(2)}})
		require.NoError(t, err)
		comps, _, _ := unstructured.NestedSlice(r.DGD.Object, "spec", "components")
		replicas := map[string]any{}
		for _, c := range comps {
			m := c.(map[string]any)
			replicas[m["name"].(string)] = m["replicas"]
		}
		assert.EqualValues(t, 2, replicas["Frontend"])
		assert.Equal(t, "qwen", r.DGD.GetLabels()[v1alpha1.LabelDGDRName], "labelled after the patches")

		_, err = f.svc.Resolve(t.Context(), d, deploy.Pick{Index: 0, Patches: []deploy.Patch{{Name: "bad.yaml", Data: []byte("spec: [")}}})
		var pe *deploy.PatchError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "bad.yaml", pe.Patch)
	})

	t.Run("resolve refuses a pick past the front and a DGDR without results", func(t *testing.T) {
		_, err := f.svc.Resolve(t.Context(), d, deploy.Pick{Index: len(pr.Pareto)})
		var pe *deploy.PickError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, deploy.PickError{Name: "qwen", Namespace: ns, Pick: len(pr.Pareto), Points: len(pr.Pareto)}, *pe)

		for phase, want := range map[v1alpha1.Phase]string{
			"":                      "DGDR early has no profiling results yet (phase Pending)",
			v1alpha1.PhaseFailed:    "DGDR early failed without profiling results",
			v1alpha1.PhaseProfiling: "DGDR early has no profiling results yet (phase Profiling)",
		} {
			early := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "early"}}
			early.Status.Phase = phase
			_, err := f.svc.Resolve(t.Context(), early, deploy.Pick{Index: deploy.Selected})
			var nr *deploy.NoResultsError
			require.ErrorAs(t, err, &nr)
			assert.EqualError(t, err, want)
			_, err = f.svc.Export(t.Context(), early, deploy.Pick{Index: 0}, expand.DGDAPIVersionV1Beta1)
			assert.ErrorAs(t, err, &nr)
		}
	})

	t.Run("export: the DGD with nothing tying it to the DGDR, which applies on its own", func(t *testing.T) {
		for _, version := range []string{expand.DGDAPIVersionV1Beta1, expand.DGDAPIVersionV1Alpha1} {
			ex, err := f.svc.Export(t.Context(), d, deploy.Pick{Index: 1}, version)
			require.NoError(t, err)
			p := pr.Pareto[1]
			assert.True(t, strings.HasPrefix(string(ex.Data), fmt.Sprintf("# Qwen/Qwen3-32B, ISL %d, OSL %d: %s on %d GPUs, predicted TTFT ", d.Spec.ISL(), d.Spec.OSL(), deploy.PointLabel(p), p.GPUs)), string(ex.Data))
			assert.NotContains(t, string(ex.Data), "nvidia.com/dgdr-")
			u := &unstructured.Unstructured{}
			require.NoError(t, yaml.Unmarshal(ex.Data, &u.Object))
			assert.Equal(t, version, u.GetAPIVersion())
			assert.Empty(t, u.GetNamespace())
			u.SetNamespace(f.namespace(t, "git-"+strings.TrimPrefix(version, "nvidia.com/")))
			require.NoError(t, env.Client.Create(t.Context(), u), "the real CRD accepts it")
		}
		_, err := f.svc.Export(t.Context(), d, deploy.Pick{Index: 0}, "nvidia.com/v2")
		assert.ErrorContains(t, err, `unsupported DGD apiVersion "nvidia.com/v2"`)
	})

	t.Run("preview changes nothing; deploy applies and records; again is unchanged", func(t *testing.T) {
		r := f.resolve(t, d, 1)
		name := r.DGD.GetName()
		for _, local := range []bool{false, true} {
			ch, err := f.svc.Preview(t.Context(), r, deploy.Options{Local: local})
			require.NoError(t, err)
			assert.Equal(t, deploy.Created, ch.Action, "local %v", local)
			assert.Nil(t, ch.Live)
			assert.True(t, strings.HasPrefix(ch.Diff, "--- /dev/null\n+++ dgdr/"+name+"\n"), ch.Diff)
			assert.Equal(t, "dynamographdeployment.nvidia.com/"+name+" created", ch.Summary())
			if !local {
				assert.NotEmpty(t, ch.Stored.GetUID(), "the server's answer")
			}
		}
		assert.Nil(t, f.live(t, ns, name), "nothing stored")
		assert.Equal(t, v1alpha1.PhaseReady, f.get(t, ns, "qwen").Status.Phase)

		ch, err := f.svc.Deploy(t.Context(), r, deploy.Options{})
		require.NoError(t, err)
		assert.Equal(t, deploy.Created, ch.Action)
		live := f.live(t, ns, name)
		require.NotNil(t, live)
		assert.Equal(t, lifecycle.SpecHash(live), live.GetAnnotations()[v1alpha1.AnnotationAppliedSpecHash])
		assert.Equal(t, v1alpha1.PhaseDeploying, ch.DGDR.Status.Phase)
		assert.Equal(t, name, ch.DGDR.Status.DGDName)
		c := meta.FindStatusCondition(f.get(t, ns, "qwen").Status.Conditions, v1alpha1.ConditionDGDGenerated)
		require.NotNil(t, c)
		assert.True(t, strings.HasPrefix(c.Message, "Pareto point 1 ("+deploy.PointLabel(pr.Pareto[1])+")"), c.Message)

		d := f.get(t, ns, "qwen")
		r = f.resolve(t, d, 1)
		ch, err = f.svc.Preview(t.Context(), r, deploy.Options{})
		require.NoError(t, err)
		assert.Equal(t, deploy.Unchanged, ch.Action)
		assert.Empty(t, ch.Diff)
		ch, err = f.svc.Deploy(t.Context(), r, deploy.Options{})
		require.NoError(t, err)
		assert.Equal(t, deploy.Unchanged, ch.Action)

		// Another point over it: configured, with the diff of the change.
		ch, err = f.svc.Deploy(t.Context(), f.resolve(t, d, 0), deploy.Options{})
		require.NoError(t, err)
		assert.Equal(t, deploy.Configured, ch.Action)
		assert.True(t, strings.HasPrefix(ch.Diff, "--- live/"+name+"\n+++ dgdr/"+name+"\n"), ch.Diff)
	})

	t.Run("a DGD edited since dgdr applied it is refused, kept, and taken over only with Force", func(t *testing.T) {
		d := f.get(t, ns, "qwen")
		r := f.resolve(t, d, 0)
		live := f.live(t, ns, r.DGD.GetName())
		require.NotNil(t, live, "deployed by the previous subtest")
		frontends(t, live, 5)
		require.NoError(t, env.Client.Update(t.Context(), live, client.FieldOwner("kubectl-edit")))

		for _, local := range []bool{false, true} {
			_, err := f.svc.Preview(t.Context(), r, deploy.Options{Local: local})
			require.True(t, lifecycle.IsOwnerError(err), "local %v: %v", local, err)
			assert.ErrorContains(t, err, "was changed since dgdr applied it (by kubectl-edit)")
		}
		_, err := f.svc.Deploy(t.Context(), r, deploy.Options{})
		require.True(t, lifecycle.IsOwnerError(err), "%v", err)
		after := f.live(t, ns, r.DGD.GetName())
		assert.Equal(t, live.GetResourceVersion(), after.GetResourceVersion(), "the edit is kept")

		ch, err := f.svc.Deploy(t.Context(), r, deploy.Options{Force: true})
		require.NoError(t, err)
		assert.Equal(t, deploy.Configured, ch.Action)
		assert.Contains(t, ch.Diff, "-    replicas: 5\n")
	})

	t.Run("a DGD dgdr did not apply is refused, untouched", func(t *testing.T) {
		ns := f.namespace(t, "deploy-taken")
		d := f.profiled(t, ns, "taken")
		r := f.resolve(t, d, deploy.Selected)
		theirs := r.DGD.DeepCopy()
		theirs.SetLabels(nil)
		frontends(t, theirs, 3)
		require.NoError(t, env.Client.Create(t.Context(), theirs, client.FieldOwner("helm")))

		for _, local := range []bool{false, true} {
			_, err := f.svc.Preview(t.Context(), r, deploy.Options{Local: local})
			require.True(t, lifecycle.IsOwnerError(err), "local %v: %v", local, err)
			assert.ErrorContains(t, err, "exists and was not applied by dgdr (managers: helm)")
		}
		_, err := f.svc.Deploy(t.Context(), r, deploy.Options{})
		require.True(t, lifecycle.IsOwnerError(err), "%v", err)
		live := f.live(t, ns, r.DGD.GetName())
		assert.Empty(t, live.GetLabels(), "untouched")
		assert.Equal(t, v1alpha1.PhaseReady, f.get(t, ns, "taken").Status.Phase, "not recorded")
	})
}
