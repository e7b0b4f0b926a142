package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// TestResultsOfRun: `results --run N` reads the full results kept for run N, says in one line with a hint
// when they are gone, and `delete` removes the per-run copies the DGDR owns (not a ConfigMap of that name
// someone else made).
func TestResultsOfRun(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ctx := t.Context()
	ns := h.namespace("runresults")

	st := readyStatus("qwen")
	st.ObservedGeneration = 1
	for _, g := range []int64{5, 4, 3, 2, 1} {
		r := v1alpha1.RunRecord{Generation: g, InputsHash: "h", Outcome: v1alpha1.RunSucceeded}
		switch g {
		case 5:
			r.ResultsConfigMap = "qwen-profiling"
		case 4, 3:
			r.ResultsConfigMap = lifecycle.RunResultsConfigMapName("qwen", g)
		}
		st.Runs = append(st.Runs, r)
	}
	d := h.dgdr(ns, "qwen", spec(), &st)
	// Run 4's copy is the DGDR's; a ConfigMap named like run 3's copy was made by someone else.
	report := &profile.Report{Model: "Qwen/Qwen3-0.6B", GPU: "h200_sxm", TotalGPUs: 8, GPUsPerNode: 8,
		Workload: profile.Workload{ISL: 4321, OSL: 500}, SelectedIndex: -1, Explanation: "run four"}
	cm, err := lifecycle.ResultsConfigMap(d, report, "<svg/>")
	require.NoError(t, err)
	cm.Name = "qwen-profiling-g4"
	cm.Annotations = map[string]string{v1alpha1.AnnotationGeneration: "4"}
	testenv.Must(t, h.env.Client.Create(ctx, cm), "creating run 4's results")
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "qwen-profiling-g3", Namespace: ns}}
	testenv.Must(t, h.env.Client.Create(ctx, foreign), "creating a ConfigMap not dgdr's")

	r := h.ok("results", "qwen", "-n", ns, "--run", "4")
	assert.Contains(t, r.out, "Run 4 (Succeeded), from ConfigMap qwen-profiling-g4\n")
	assert.Contains(t, r.out, "ISL 4321, OSL 500")

	r = h.ok("results", "qwen", "-n", ns, "--run", "4", "-o", "json")
	var got RunResults
	require.NoError(t, json.Unmarshal([]byte(r.out), &got))
	assert.Equal(t, int64(4), got.Run.Generation)
	require.NotNil(t, got.Search)
	assert.Equal(t, "run four", got.Search.Explanation)

	for _, c := range []struct{ run, want string }{
		{"2", "error: run 2 of DGDR qwen: the run's full results are no longer kept (hint: only the last 3 runs keep their full results; `kubectl dgdr history qwen` shows every run's pick)"},
		{"3", "error: run 3 of DGDR qwen: ConfigMap qwen-profiling-g3 does not hold this run's results: the run's full results are no longer kept (hint: only the last 3 runs"},
		{"9", "error: dynamographdeploymentrequest qwen has no run 9 (hint: list the runs with `kubectl dgdr history qwen`"},
	} {
		assert.Contains(t, h.fail("results", "qwen", "-n", ns, "--run", c.run).errLine, c.want, "--run %s", c.run)
	}
	assert.Contains(t, h.fail("results", "qwen", "-n", ns, "--run", "4", "-o", "csv").errLine, "-o csv shows the current run's front only")

	r = h.ok("delete", "qwen", "-n", ns)
	assert.Equal(t, "configmap/qwen-profiling-g4 deleted\ndynamographdeploymentrequest.nvidia.com/qwen deleted\n", r.out)
	err = h.env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "qwen-profiling-g4"}, &corev1.ConfigMap{})
	assert.True(t, apierrors.IsNotFound(err), "run 4's copy is gone: %v", err)
	require.NoError(t, h.env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "qwen-profiling-g3"}, &corev1.ConfigMap{}), "a ConfigMap not dgdr's is left alone")
}
