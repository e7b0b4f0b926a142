package cli

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// searchDoc is results.json as `plan -o json` writes it, for the front of points().
func searchDoc() profile.Report {
	var front []profile.Config
	for _, p := range points() {
		front = append(front, expand.ConfigFromPoint(p))
	}
	rejected := front[2]
	rejected.GPUs, rejected.Replicas = 32, 16
	return profile.Report{
		Model: "Qwen/Qwen3-0.6B", GPU: "h100_sxm", TotalGPUs: 16, GPUsPerNode: 8,
		Workload: profile.Workload{ISL: 2048, OSL: 256}, SLA: profile.SLA{TTFTMs: 300, ITLMs: 20},
		Selected: &front[1], SelectedIndex: 1, Pareto: front, Predicted: 41,
		Explanation: "highest tokens/s/GPU meeting TTFT ≤ 300ms and ITL ≤ 20ms",
		Rejected: map[profile.RejectReason]profile.ReportRejections{
			profile.RejectGPUBudget: {Count: 7, Examples: []profile.ReportExample{{Config: rejected, Detail: "needs 32 GPUs, the budget is 16"}}},
			profile.RejectITL:       {Count: 12},
		},
	}
}

func TestWriteResultsGolden(t *testing.T) {
	d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "qwen", Namespace: "ml"}, Spec: spec(), Status: readyStatus("qwen")}
	doc := searchDoc()
	for _, tt := range []struct {
		name   string
		search *profile.Report
	}{
		{"status-only", nil},
		{"with-search", &doc},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, writeResults(&out, d, tt.search))
			golden(t, "results/"+tt.name+".txt", out.Bytes())
		})
	}
}

func TestResults(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ctx := t.Context()
	ns := h.namespace("results")
	h.profiled(ns, "qwen")
	doc := searchDoc()
	cm, err := lifecycle.ResultsConfigMap(h.get(ns, "qwen"), &doc, "<svg/>")
	require.NoError(t, err)
	testenv.Must(t, h.env.Client.Create(ctx, cm), "creating the results ConfigMap as the profiler does")

	t.Run("table with the search document", func(t *testing.T) {
		h := h.with(t)
		r := h.ok("results", "qwen", "-n", ns)
		assert.Contains(t, r.out, "Qwen/Qwen3-0.6B on 16 x h100_sxm (8 per node), ISL 2048, OSL 256")
		assert.Contains(t, r.out, "Pareto front (3 configurations of 41 predicted):\n#")
		assert.Contains(t, r.out, "rejected for gpuBudget: 7 (e.g. vllm 16x tp2 bs256: needs 32 GPUs, the budget is 16)")
		assert.Empty(t, r.errOut)
	})

	t.Run("json holds the stored front and the search document", func(t *testing.T) {
		h := h.with(t)
		var got Results
		require.NoError(t, json.Unmarshal([]byte(h.ok("results", "qwen", "-n", ns, "-o", "json").out), &got))
		assert.Equal(t, points(), got.ProfilingResults.Pareto)
		require.NotNil(t, got.Search)
		assert.Equal(t, 41, got.Search.Predicted)
		assert.Equal(t, v1alpha1.PhaseReady, got.Phase)
	})

	t.Run("csv", func(t *testing.T) {
		h := h.with(t)
		assert.Equal(t, `index,selected,backend,mode,gpus,replicas,layout,ttft_ms,itl_ms,tokens_per_s,tokens_per_s_per_gpu,tokens_per_s_per_user,meets_sla
0,false,vllm,agg,4,4,4x tp1 bs64,95,8.5,9600,2400,117.6,true
1,true,vllm,disagg,6,2,2x (1P tp1 bs1 + 2D tp1 bs128),140,12.5,16800,2800,80,true
2,false,vllm,agg,16,8,8x tp2 bs256,250,24,56000,3500,41.7,false
`, h.ok("results", "qwen", "-n", ns, "-o", "csv").out)
	})

	t.Run("a broken ConfigMap falls back to the status with a warning", func(t *testing.T) {
		h := h.with(t)
		h.profiled(ns, "broken")
		testenv.Must(t, h.env.Client.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "broken-profiling", Namespace: ns},
			BinaryData: map[string][]byte{lifecycle.ResultsKey: []byte("{")},
		}), "creating the results ConfigMap")
		r := h.ok("results", "broken", "-n", ns)
		assert.Contains(t, r.errOut, "Warning: reading results.json.gz of ConfigMap broken-profiling: expected gzip")
		assert.Contains(t, r.out, "Pareto front (3 configurations):")
	})

	errs := []struct {
		name string
		args []string
		want string
	}{
		{"bad output", []string{"results", "qwen", "-o", "wide"}, `unsupported output format "wide" (hint: use -o table, json, yaml or csv)`},
		{"not found", []string{"results", "nope"}, `dynamographdeploymentrequest "nope" not found`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			h := h.with(t)
			assert.Contains(t, h.fail(append(tt.args, "-n", ns)...).errLine, tt.want)
		})
	}
	t.Run("before profiling finished", func(t *testing.T) {
		h := h.with(t)
		h.dgdr(ns, "pending", spec(), nil)
		assert.Contains(t, h.fail("results", "pending", "-n", ns).errLine, "DGDR pending has no profiling results yet (phase Pending)")
	})
}
