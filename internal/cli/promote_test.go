package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

// profiled creates a DGDR in phase Ready with the status the profiler writes, including the DGD it
// generated for the selected configuration.
func (h *harness) profiled(ns, name string) *v1alpha1.DynamoGraphDeploymentRequest {
	h.t.Helper()
	d := h.dgdr(ns, name, spec(), nil)
	st := readyStatus(name)
	u, err := expand.GenerateDGD(d, expand.ConfigFromPoint(st.ProfilingResults.SelectedConfig.ParetoPoint), expand.DGDOptions{GPUsPerNode: 8})
	require.NoError(h.t, err)
	raw, err := u.MarshalJSON()
	require.NoError(h.t, err)
	st.ProfilingResults.SelectedConfig.DGD = &runtime.RawExtension{Raw: raw}
	st.DGDName = u.GetName()
	h.setStatus(ns, name, st)
	return h.get(ns, name)
}

func (h *harness) liveDGD(ns, name string) *unstructured.Unstructured {
	h.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
	testenv.Must(h.t, h.env.Client.Get(h.t.Context(), types.NamespacedName{Namespace: ns, Name: name}, u), "reading DGD %s/%s", ns, name)
	return u
}

// componentReplicas is spec.components[name].replicas of a v1beta1 DGD.
func componentReplicas(t *testing.T, u *unstructured.Unstructured, name string) int64 {
	t.Helper()
	comps, _, err := unstructured.NestedSlice(u.Object, "spec", "components")
	require.NoError(t, err)
	for _, c := range comps {
		m := c.(map[string]any)
		if m["name"] == name {
			r, _, _ := unstructured.NestedInt64(m, "replicas")
			return r
		}
	}
	t.Fatalf("DGD %s has no component %s", u.GetName(), name)
	return 0
}

func TestPromote(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ctx := t.Context()
	ns := h.namespace("promote")
	d := h.profiled(ns, "qwen")
	dgdName := d.Status.DGDName
	key := types.NamespacedName{Namespace: ns, Name: dgdName}

	t.Run("client dry run shows the new DGD and changes nothing", func(t *testing.T) {
		h := h.with(t)
		r := h.ok("promote", "qwen", "-n", ns, "--dry-run=client")
		assert.Equal(t, "dynamographdeployment.nvidia.com/"+dgdName+" created (dry run)\n", r.out)
		assert.Contains(t, r.errOut, "--- /dev/null\n+++ dgdr/"+dgdName+"\n")
		assert.Contains(t, r.errOut, "+  name: "+dgdName+"\n")
		err := h.env.Client.Get(ctx, key, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeployment"}})
		assert.True(t, apierrors.IsNotFound(err), "nothing applied: %v", err)
		assert.Equal(t, v1alpha1.PhaseReady, h.get(ns, "qwen").Status.Phase)
	})

	t.Run("server dry run prints the object the server would store", func(t *testing.T) {
		h := h.with(t)
		r := h.ok("promote", "qwen", "-n", ns, "--dry-run=server", "-o", "yaml")
		u := &unstructured.Unstructured{}
		require.NoError(t, yaml.Unmarshal([]byte(r.out), &u.Object))
		assert.Equal(t, dgdName, u.GetName())
		assert.NotEmpty(t, u.GetUID(), "the server's answer")
		err := h.env.Client.Get(ctx, key, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeployment"}})
		assert.True(t, apierrors.IsNotFound(err), "nothing stored: %v", err)
	})

	t.Run("promote applies the stored DGD and moves the DGDR to Deploying", func(t *testing.T) {
		h := h.with(t)
		r := h.ok("promote", "qwen", "-n", ns)
		assert.Equal(t, "dynamographdeployment.nvidia.com/"+dgdName+" created\n", r.out)
		assert.Contains(t, r.errOut, "Next: `kubectl dgdr status qwen -n promote` records the DGDR Deployed once the DGD is ready\n")
		live := h.liveDGD(ns, dgdName)
		assert.Equal(t, "qwen", live.GetLabels()[v1alpha1.LabelDGDRName])
		assert.Equal(t, lifecycle.SpecHash(live), live.GetAnnotations()[v1alpha1.AnnotationAppliedSpecHash])
		assert.Equal(t, v1alpha1.FieldManager, live.GetManagedFields()[0].Manager)

		got := h.get(ns, "qwen")
		assert.Equal(t, v1alpha1.PhaseDeploying, got.Status.Phase)
		assert.Equal(t, dgdName, got.Status.DGDName)
		c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionDGDGenerated)
		require.NotNil(t, c)
		assert.Equal(t, "Promoted", c.Reason)
		assert.Contains(t, c.Message, "the selected configuration (vllm disagg")

		r = h.ok("promote", "qwen", "-n", ns)
		assert.Equal(t, "dynamographdeployment.nvidia.com/"+dgdName+" unchanged\n", r.out)
		assert.NotContains(t, r.errOut, "---", "no diff")
	})

	t.Run("another point with a patch: the diff shows the change", func(t *testing.T) {
		h := h.with(t)
		r := h.ok("promote", "qwen", "-n", ns, "--pick", "2", "--patch", "testdata/promote/frontends.yaml")
		assert.Equal(t, "dynamographdeployment.nvidia.com/"+dgdName+" configured\n", r.out)
		assert.Contains(t, r.errOut, "--- live/"+dgdName+"\n+++ dgdr/"+dgdName+"\n")
		live := h.liveDGD(ns, dgdName)
		assert.Equal(t, int64(2), componentReplicas(t, live, "Frontend"), "the patch")
		assert.Equal(t, int64(8), componentReplicas(t, live, "worker"), "point 2: 8 aggregated replicas")
		c := meta.FindStatusCondition(h.get(ns, "qwen").Status.Conditions, v1alpha1.ConditionDGDGenerated)
		assert.Contains(t, c.Message, "Pareto point 2 (vllm agg")
	})

	t.Run("a DGD someone edited is not overwritten without --force", func(t *testing.T) {
		h := h.with(t)
		live := h.liveDGD(ns, dgdName)
		comps, _, _ := unstructured.NestedSlice(live.Object, "spec", "components")
		for _, c := range comps {
			if m := c.(map[string]any); m["name"] == "Frontend" {
				m["replicas"] = int64(5)
			}
		}
		require.NoError(t, unstructured.SetNestedSlice(live.Object, comps, "spec", "components"))
		require.NoError(t, h.env.Client.Update(ctx, live, client.FieldOwner("kubectl-edit")))

		r := h.fail("promote", "qwen", "-n", ns, "--pick", "2")
		assert.Contains(t, r.errLine, "error: DGD "+dgdName+" was changed since dgdr applied it (by kubectl-edit)")
		assert.Contains(t, r.errLine, "rerun with --force to overwrite it")
		assert.Equal(t, int64(5), componentReplicas(t, h.liveDGD(ns, dgdName), "Frontend"), "the edit is kept")

		r = h.ok("promote", "qwen", "-n", ns, "--pick", "2", "--force")
		assert.Contains(t, r.errOut, "-    replicas: 5\n")
		assert.Equal(t, int64(1), componentReplicas(t, h.liveDGD(ns, dgdName), "Frontend"))
	})

	t.Run("a DGD applied by the profiler and then changed by someone else is refused", func(t *testing.T) {
		h := h.with(t)
		other := h.profiled(ns, "auto")
		stored := &unstructured.Unstructured{}
		require.NoError(t, stored.UnmarshalJSON(other.Status.ProfilingResults.SelectedConfig.DGD.Raw))
		_, err := lifecycle.ApplyDGD(ctx, h.env.Client, stored, lifecycle.ApplyOptions{})
		require.NoError(t, err, "the profiler's autoApply")
		live := h.liveDGD(ns, stored.GetName())
		require.NoError(t, unstructured.SetNestedField(live.Object, "sglang", "spec", "backendFramework"))
		require.NoError(t, h.env.Client.Update(ctx, live, client.FieldOwner("helm")))

		r := h.fail("promote", "auto", "-n", ns)
		assert.Contains(t, r.errLine, "DGD auto-dgd was changed since dgdr applied it (by helm)", "the profiler recorded what it applied")
	})

	t.Run("a DGD dgdr did not make is refused", func(t *testing.T) {
		h := h.with(t)
		mine := h.profiled(ns, "taken")
		h.dgd(ns, mine.Status.DGDName, nil)
		r := h.fail("promote", "taken", "-n", ns)
		assert.Contains(t, r.errLine, "error: DGD "+mine.Status.DGDName+" exists and was not applied by dgdr (managers:")
	})

	errs := []struct {
		name string
		args []string
		want string
	}{
		{"pick out of range", []string{"promote", "qwen", "--pick", "3"}, "--pick 3 is out of range: DGDR qwen has 3 Pareto points (0 to 2) (hint: `kubectl dgdr results qwen -n promote` lists them in the # column)"},
		{"negative pick", []string{"promote", "qwen", "--pick", "-2"}, "invalid --pick -2"},
		{"patch of the other version", []string{"promote", "qwen", "--patch", "testdata/promote/bad-shape.yaml", "--dry-run=client"}, "patch testdata/promote/bad-shape.yaml:"},
		{"missing patch", []string{"promote", "qwen", "--patch", "nope.yaml"}, "reading the patch nope.yaml"},
		{"bad dry-run", []string{"promote", "qwen", "--dry-run=yes"}, `invalid --dry-run "yes"`},
		{"not found", []string{"promote", "nope"}, `dynamographdeploymentrequest "nope" not found`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			h := h.with(t)
			r := h.fail(append(tt.args, "-n", ns)...)
			assert.Contains(t, r.errLine, tt.want)
		})
	}

	t.Run("no results yet", func(t *testing.T) {
		h := h.with(t)
		h.dgdr(ns, "early", spec(), &v1alpha1.DynamoGraphDeploymentRequestStatus{Phase: v1alpha1.PhaseProfiling})
		r := h.fail("promote", "early", "-n", ns)
		assert.Equal(t, "error: DGDR early has no profiling results yet (phase Profiling) (hint: wait for phase Ready: `kubectl dgdr status early -n promote`)\n", r.errLine)
	})

	t.Run("without the Dynamo CRD", func(t *testing.T) {
		h := newHarness(t, testenv.Options{WithoutDynamoCRD: true})
		ns := h.namespace("nodynamo")
		h.profiled(ns, "qwen")
		r := h.fail("promote", "qwen", "-n", ns)
		assert.Contains(t, r.errLine, "hint: the DynamoGraphDeployment CRD is not installed: install the NVIDIA Dynamo operator")
	})
}
