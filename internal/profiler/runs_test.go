package profiler

import (
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/deploy"
	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// runGen runs the profiler for generation gen of key, as the Job of that run would.
func (f *fixture) runGen(t *testing.T, key types.NamespacedName, gen int64) error {
	return Run(t.Context(), Options{
		Namespace: key.Namespace, Name: key.Name, Client: f.env.Client, Log: testr.New(t), Generation: gen,
		PollInterval: 20 * time.Millisecond, DGDRWait: 2 * time.Second,
	})
}

// TestRuns: each generation profiled gives one run record, newest first, with its outcome and pick; a
// run whose generation is no longer stored stops without touching the newer run's status; a new run moves
// the phase back through Pending.
func TestRuns(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	gpuNode(t, env.Client, "gpu-a", "NVIDIA-H200", 8)
	f := newFixture(t, env, "runs")
	key := f.dgdr(t, "qwen", nil)

	require.NoError(t, f.runGen(t, key, 1))
	d := f.get(t, key)
	require.Len(t, d.Status.Runs, 1)
	r1 := d.Status.Runs[0]
	assert.Equal(t, int64(1), r1.Generation)
	assert.Equal(t, v1alpha1.RunSucceeded, r1.Outcome)
	assert.Equal(t, v1alpha1.InputsHash(&d.Spec), r1.InputsHash)
	assert.Equal(t, "created", r1.Message)
	require.NotNil(t, r1.Pick)
	assert.Greater(t, r1.Pick.Throughput, 0.0)
	assert.Equal(t, "qwen-profiling", r1.ResultsConfigMap)
	assert.Equal(t, int64(1), d.Status.ObservedGeneration)

	// A spec change: generation 2. Until its run starts, the status still describes generation 1.
	d.Spec.SLA.TTFT = ptr.To(3000.0)
	require.NoError(t, env.Client.Update(t.Context(), d))
	require.Equal(t, int64(2), d.Generation)
	assert.Equal(t, int64(1), f.get(t, key).Status.ObservedGeneration)

	// The run of generation 1 started again now (a late retry) is superseded and writes nothing.
	require.NoError(t, f.runGen(t, key, 1))
	assert.Len(t, f.get(t, key).Status.Runs, 1)

	var phases []v1alpha1.Phase
	require.NoError(t, Run(t.Context(), Options{
		Namespace: key.Namespace, Name: key.Name, Client: env.Client, Log: testr.New(t), Generation: 2, PollInterval: 20 * time.Millisecond,
		AfterPhase: func(p v1alpha1.Phase) error { phases = append(phases, p); return nil },
	}))
	assert.Equal(t, []v1alpha1.Phase{v1alpha1.PhasePending, v1alpha1.PhaseProfiling, v1alpha1.PhaseReady}, phases, "Ready → Pending → Profiling → Ready")
	d = f.get(t, key)
	assert.Equal(t, v1alpha1.PhaseReady, d.Status.Phase)
	assert.Equal(t, int64(2), d.Status.ObservedGeneration)
	require.Len(t, d.Status.Runs, 2, "one record per run")
	assert.Equal(t, int64(2), d.Status.Runs[0].Generation, "newest first")
	assert.Equal(t, v1alpha1.RunSucceeded, d.Status.Runs[0].Outcome)
	assert.Equal(t, "spec changed", d.Status.Runs[0].Message)
	assert.Equal(t, "qwen-profiling", d.Status.Runs[0].ResultsConfigMap)
	assert.Equal(t, "qwen-profiling-g1", d.Status.Runs[1].ResultsConfigMap, "run 1's results were kept in their own ConfigMap")
	assert.Equal(t, v1alpha1.RunSucceeded, d.Status.Runs[1].Outcome)

	// A run of generation 2 repeated (a retry) adds nothing.
	require.NoError(t, f.runGen(t, key, 2))
	assert.Len(t, f.get(t, key).Status.Runs, 2)

	// A rerun with a reason: generation 3, recorded as a rerun.
	d.Spec.Rerun = 1
	d.Annotations = map[string]string{v1alpha1.AnnotationRerunReason: "1:new nodes"}
	require.NoError(t, env.Client.Update(t.Context(), d))
	require.NoError(t, f.runGen(t, key, 3))
	d = f.get(t, key)
	require.Len(t, d.Status.Runs, 3)
	assert.Equal(t, "rerun: new nodes", d.Status.Runs[0].Message)
}

// TestInPlaceUpdate: with autoApply, a later run updates the DGD of the earlier one in place and records
// the diff in its run record; a DGD edited by hand in between is not overwritten (the DGDR stays Ready
// with DGDEdited), and promote --force (the plugin's deploy path) then updates it.
func TestInPlaceUpdate(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	gpuNode(t, env.Client, "gpu-a", "NVIDIA-H200", 8)
	f := newFixture(t, env, "inplace")
	ctx := t.Context()
	key := f.dgdr(t, "qwen", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.AutoApply = true })
	label := func(d *v1alpha1.DynamoGraphDeploymentRequest, team string) {
		d.Spec.Overrides = &v1alpha1.Overrides{DGD: &runtime.RawExtension{Raw: []byte(`{"metadata":{"labels":{"team":"` + team + `"}}}`)}}
		require.NoError(t, env.Client.Update(ctx, d))
	}
	dgd := func() *unstructured.Unstructured {
		u, err := lifecycle.GetDGD(ctx, env.Client, f.ns, f.get(t, key).Status.DGDName)
		require.NoError(t, err)
		require.NotNil(t, u)
		return u
	}

	require.NoError(t, f.runGen(t, key, 1))
	d := f.get(t, key)
	require.Equal(t, v1alpha1.PhaseDeploying, d.Status.Phase)
	a1 := d.Status.Runs[0].Applied
	require.NotNil(t, a1)
	assert.Equal(t, "autoApply", a1.By)
	assert.Contains(t, a1.Diff, "--- /dev/null", "created")
	markReady(t, env.Client, f.ns, d.Status.DGDName)
	first := dgd()

	// Run 2: the same DGD, updated in place; Deployed → Pending → … → Ready → Deploying.
	label(d, "a")
	require.NoError(t, f.runGen(t, key, 2))
	d = f.get(t, key)
	// The DGD's status still reports the old spec ready (no operator here to roll it): Deployed at once.
	assert.Equal(t, v1alpha1.PhaseDeployed, d.Status.Phase, "Ready → Deploying → Deployed again")
	second := dgd()
	assert.Equal(t, first.GetUID(), second.GetUID(), "updated in place")
	assert.Equal(t, "a", second.GetLabels()["team"])
	a2 := d.Status.Runs[0].Applied
	require.NotNil(t, a2)
	assert.Equal(t, int64(2), d.Status.Runs[0].Generation)
	assert.Contains(t, a2.Diff, "--- live/"+second.GetName())
	assert.Contains(t, a2.Diff, "+    team: a")
	assert.False(t, a2.DiffTruncated)
	assert.Equal(t, a1, d.Status.Runs[1].Applied, "run 1's record keeps its own diff")

	// A hand edit of the DGD's spec, then run 3: not overwritten, the DGDR stays Ready and says how to force.
	edited := second.DeepCopy()
	comps, _, err := unstructured.NestedSlice(edited.Object, "spec", "components")
	require.NoError(t, err)
	require.NotEmpty(t, comps)
	comps[0].(map[string]any)["replicas"] = int64(7)
	require.NoError(t, unstructured.SetNestedSlice(edited.Object, comps, "spec", "components"))
	require.NoError(t, env.Client.Update(ctx, edited, client.FieldOwner("kubectl-edit")))
	label(d, "b")
	require.NoError(t, f.runGen(t, key, 3))
	d = f.get(t, key)
	assert.Equal(t, v1alpha1.PhaseReady, d.Status.Phase)
	c := condition(d, v1alpha1.ConditionDeploymentReady)
	assert.Equal(t, v1alpha1.ReasonDGDEdited, c.Reason)
	assert.Contains(t, c.Message, "kubectl-edit")
	assert.Contains(t, c.Message, "kubectl dgdr promote qwen --force")
	assert.Equal(t, edited.GetResourceVersion(), dgd().GetResourceVersion(), "the edit is kept")
	assert.Nil(t, d.Status.Runs[0].Applied)

	// promote without --force refuses; with it, the DGD is updated and the diff shows the edit undone.
	svc := deploy.New(env.Client)
	r, err := svc.Resolve(ctx, d, deploy.Pick{Index: deploy.Selected})
	require.NoError(t, err)
	_, err = svc.Deploy(ctx, r, deploy.Options{})
	require.True(t, lifecycle.IsOwnerError(err), "%v", err)
	_, err = svc.Deploy(ctx, r, deploy.Options{Force: true})
	require.NoError(t, err)
	d = f.get(t, key)
	assert.Equal(t, v1alpha1.PhaseDeploying, d.Status.Phase)
	assert.Equal(t, "b", dgd().GetLabels()["team"])
	a3 := d.Status.Runs[0].Applied
	require.NotNil(t, a3)
	assert.Equal(t, "promote --force", a3.By)
	assert.Contains(t, a3.Diff, "-    replicas: 7")
	assert.Contains(t, a3.Diff, "+    team: b")
}

// TestRunResultsKept: of five runs, exactly the last three keep their full results (the newest in
// <name>-profiling, the two before in <name>-profiling-g<run>, owned by the DGDR); the older copies are
// deleted and their records no longer point at anything.
func TestRunResultsKept(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	gpuNode(t, env.Client, "gpu-a", "NVIDIA-H200", 8)
	f := newFixture(t, env, "kept")
	ctx := t.Context()
	key := f.dgdr(t, "qwen", nil)
	ttft := func(gen int64) float64 { return 5000 + 100*float64(gen) }
	for gen := int64(1); gen <= 5; gen++ {
		if gen > 1 {
			d := f.get(t, key)
			d.Spec.SLA.TTFT = ptr.To(ttft(gen))
			require.NoError(t, env.Client.Update(ctx, d))
			require.Equal(t, gen, d.Generation)
		}
		require.NoError(t, f.runGen(t, key, gen))
	}
	// A retry of run 5 changes nothing.
	require.NoError(t, f.runGen(t, key, 5))

	d := f.get(t, key)
	require.Len(t, d.Status.Runs, 5)
	want := map[int64]string{5: "qwen-profiling", 4: "qwen-profiling-g4", 3: "qwen-profiling-g3", 2: "", 1: ""}
	for _, r := range d.Status.Runs {
		assert.Equal(t, want[r.Generation], r.ResultsConfigMap, "run %d", r.Generation)
		if r.Generation < 2 {
			continue // run 1's SLA is the fixture's
		}
		cm, err := lifecycle.GetRunResults(ctx, env.Client, d, r.Generation)
		if r.Generation <= 2 {
			require.ErrorIs(t, err, lifecycle.ErrRunResultsGone, "run %d", r.Generation)
			continue
		}
		require.NoError(t, err, "run %d", r.Generation)
		report, err := lifecycle.ReadResults(cm)
		require.NoError(t, err)
		assert.Equal(t, ttft(r.Generation), report.SLA.TTFTMs, "run %d's ConfigMap holds run %d's search", r.Generation, r.Generation)
		require.Len(t, cm.OwnerReferences, 1)
		assert.Equal(t, d.UID, cm.OwnerReferences[0].UID)
		assert.Nil(t, cm.OwnerReferences[0].BlockOwnerDeletion)
	}
	_, err := lifecycle.GetRunResults(ctx, env.Client, d, 1)
	require.ErrorIs(t, err, lifecycle.ErrRunResultsGone)

	var cms corev1.ConfigMapList
	require.NoError(t, env.Client.List(ctx, &cms, client.InNamespace(f.ns), client.MatchingLabels{v1alpha1.LabelDGDRName: "qwen"}))
	var names []string
	for _, cm := range cms.Items {
		names = append(names, cm.Name)
	}
	assert.ElementsMatch(t, []string{"qwen-profiling", "qwen-profiling-g3", "qwen-profiling-g4"}, names, "the copies of runs 1 and 2 are deleted")
}
