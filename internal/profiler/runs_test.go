package profiler

import (
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

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
	assert.Empty(t, d.Status.Runs[1].ResultsConfigMap, "run 1's results were replaced by run 2's")
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
