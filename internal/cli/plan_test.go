package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/pareto"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

func runPlan(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	root := NewRootCmd(genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: out, ErrOut: errOut})
	root.SetArgs(append([]string{"plan"}, args...))
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// fixedPlan is a small search result written by hand, so the golden files test the output format
// and not the performance model's current numbers.
func fixedPlan(t *testing.T, meets bool) profile.Report {
	t.Helper()
	g, err := hw.Lookup("h200_sxm")
	require.NoError(t, err)
	sla := profile.SLA{TTFTMs: 100, ITLMs: 15}
	if !meets {
		sla.ITLMs = 3.5
	}
	req := profile.SearchRequest{Model: profile.Model{ID: "Qwen/Qwen3-32B"}, GPU: g, TotalGPUs: 8,
		Workload: profile.Workload{ISL: 512, OSL: 128}, SLA: sla}
	cands := []profile.Candidate{}
	for _, c := range sampleFront() {
		c.Replicas = 8 / c.GPUsPerReplica()
		c.GPUs = c.Replicas * c.GPUsPerReplica()
		c.MeetsSLA = c.ITLMs <= sla.ITLMs && c.TTFTMs <= sla.TTFTMs
		// Intervals as the performance model attaches them: 20% below, 50% above.
		c.Bands = profile.Bands{TTFTP10Ms: 0.8 * c.TTFTMs, TTFTP90Ms: 1.5 * c.TTFTMs, ITLP10Ms: 0.8 * c.ITLMs, ITLP90Ms: 1.5 * c.ITLMs,
			TokensPerSecondPerGPUP10: c.TokensPerSecondPerGPU / 1.5, TokensPerSecondPerGPUP90: c.TokensPerSecondPerGPU / 0.8}
		cands = append(cands, profile.Candidate{Config: c, Predicted: true})
	}
	cands = append(cands, profile.Candidate{
		Config:  profile.Config{Backend: "vllm", Mode: profile.ModeAgg, GPUs: 16, Replicas: 1, Workers: []profile.Worker{{Role: profile.RoleAgg, Count: 1, TP: 16, PP: 1, EP: 1}}},
		Reasons: []profile.RejectReason{profile.RejectGPUBudget}, Detail: "one agg worker needs 16 GPUs, the budget is 8"})
	res := profile.SearchResult{
		Candidates: cands, Front: []int{0, 1, 2, 3}, Selected: 1, MeetsSLA: true, Predicted: 4,
		Explanation: "trtllm disagg 1x (2P tp2 bs1 + 1D tp4 bs68) has the highest tokens/s/GPU (684.0) of the 3 configurations meeting TTFT ≤ 100 ms and ITL ≤ 15 ms (4 predicted)",
		Rejected: map[profile.RejectReason]profile.Rejections{
			profile.RejectGPUBudget: {Count: 1, Examples: []profile.Candidate{cands[4]}},
			profile.RejectITL:       {Count: 1, Examples: []profile.Candidate{{Config: cands[0].Config, Detail: "ITL 30 ms > 15 ms (+15 ms, +100%)"}}},
		},
	}
	p := cands[res.Selected].Config.Probabilities(sla)
	res.SLAProbability = &p
	if !meets {
		res.Selected, res.MeetsSLA = 3, false
		p := cands[3].Config.Probabilities(sla)
		res.SLAProbability = &p
		res.Misses = []pareto.Miss{{Name: "ITL", Unit: "ms", Value: 4, Limit: 3.5}}
		res.Explanation = "no configuration meets TTFT ≤ 100 ms and ITL ≤ 3.5 ms; the closest, vllm agg 1x tp8 bs1, misses ITL 4 ms > 3.5 ms (+0.5 ms, +14%); rejected: 1 gpuBudget, 4 itl"
		res.Rejected[profile.RejectITL] = profile.Rejections{Count: 4, Examples: []profile.Candidate{{Config: cands[3].Config, Detail: "ITL 4 ms > 3.5 ms (+0.5 ms, +14%)"}}}
	}
	return profile.NewReport(&req, &res, false)
}

func TestPlanOutputGolden(t *testing.T) {
	for _, tt := range []struct {
		name  string
		meets bool
	}{{"plan", true}, {"plan-closest", false}} {
		t.Run(tt.name, func(t *testing.T) {
			out := fixedPlan(t, tt.meets)
			b, err := json.MarshalIndent(out, "", "  ")
			require.NoError(t, err)
			golden(t, "plan/"+tt.name+".json", append(b, '\n'))

			var buf bytes.Buffer
			require.NoError(t, RenderPlan(&buf, out))
			golden(t, "plan/"+tt.name+".txt", buf.Bytes())
		})
	}
}

func TestPlanOutputShape(t *testing.T) {
	out := fixedPlan(t, true)
	require.NotNil(t, out.Selected)
	assert.Nil(t, out.Closest)
	assert.Equal(t, 1, out.SelectedIndex, "the selection's position on the front")
	assert.Equal(t, *out.Selected, out.Pareto[out.SelectedIndex])

	out = fixedPlan(t, false)
	assert.Nil(t, out.Selected, "no recommendation when nothing meets the SLA")
	assert.Equal(t, -1, out.SelectedIndex)
	require.NotNil(t, out.Closest)
	require.Len(t, out.Misses, 1)
	assert.Equal(t, profile.ReportMiss{Target: "ITL", Value: 4, Limit: 3.5, Over: 0.5}, out.Misses[0])
}

func TestPlanTable(t *testing.T) {
	out, stderr, err := runPlan(t, "--model", "Qwen/Qwen3-8B", "--backend", "vllm", "--total-gpus", "4")
	require.NoError(t, err)
	assert.Contains(t, stderr, "predicted ")
	assert.Contains(t, out, "Qwen/Qwen3-8B on 4 x h200_sxm (8 per node), ISL 512, OSL 128; SLA: TTFT <= 100 ms, ITL <= 15 ms")
	var marked []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "*") {
			marked = append(marked, l)
		}
	}
	require.Len(t, marked, 1, "exactly one table row is marked")
	assert.Contains(t, marked[0], "vllm")
	assert.Contains(t, marked[0], "yes")
	assert.Contains(t, out, "Recommended: vllm ")
	assert.Contains(t, out, "tokens/s/user\n")
	// The plot (from its title to the legend) fits 80 columns.
	plot := out[strings.Index(out, "tokens/s/GPU\n"):strings.Index(out, "* selected")]
	for _, l := range strings.Split(plot, "\n") {
		assert.LessOrEqual(t, utf8.RuneCountInString(l), 80, l)
	}
}

func TestPlanJSON(t *testing.T) {
	out, _, err := runPlan(t, "--model", "Qwen/Qwen3-8B", "--total-gpus", "4", "-o", "json")
	require.NoError(t, err)
	var doc profile.Report
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	require.NotNil(t, doc.Selected)
	require.NotEmpty(t, doc.Pareto)
	require.GreaterOrEqual(t, doc.SelectedIndex, 0)
	assert.Equal(t, *doc.Selected, doc.Pareto[doc.SelectedIndex])
	assert.True(t, doc.Selected.MeetsSLA)
	assert.LessOrEqual(t, doc.Selected.GPUs, 4)
	assert.Positive(t, doc.Predicted)
	for r, rj := range doc.Rejected {
		assert.Contains(t, profile.RejectReasons, r)
		assert.Positive(t, rj.Count)
		assert.LessOrEqual(t, len(rj.Examples), 3)
	}
	// The contract other tools read: these keys are present.
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &raw))
	for _, k := range []string{"selected", "pareto", "rejected", "explanation"} {
		assert.Contains(t, raw, k)
	}
	sel := raw["selected"].(map[string]any)
	for _, k := range []string{"backend", "mode", "gpus", "replicas", "ttftMs", "itlMs", "tokensPerSecondPerGPU", "tokensPerSecondPerUser", "meetsSLA", "workers"} {
		assert.Contains(t, sel, k)
	}
	w := sel["workers"].([]any)[0].(map[string]any)
	for _, k := range []string{"role", "count", "tp", "pp", "ep", "batch"} {
		assert.Contains(t, w, k)
	}
}

// A plan at a confidence: the header says it, the pick meets the targets at that quantile, and the
// table, the summary and the JSON carry the intervals and the probabilities.
func TestPlanConfidence(t *testing.T) {
	args := []string{"--model", "Qwen/Qwen3-8B", "--backend", "vllm", "--total-gpus", "4", "--ttft", "300", "--itl", "20"}
	out, _, err := runPlan(t, append(args, "--sla-confidence", "0.9")...)
	require.NoError(t, err)
	assert.Contains(t, out, "SLA: TTFT <= 300 ms, ITL <= 20 ms at 90% confidence")
	assert.Contains(t, out, "Probability of meeting the SLA (from the p10–p90 intervals): TTFT <= 300 ms ")
	assert.Regexp(t, `Recommended: vllm .* TTFT [0-9.]+ \([0-9.]+–[0-9.]+\) ms, ITL`, out)

	js, _, err := runPlan(t, append(args, "--sla-confidence", "0.9", "-o", "json")...)
	require.NoError(t, err)
	var doc profile.Report
	require.NoError(t, json.Unmarshal([]byte(js), &doc))
	require.NotNil(t, doc.Selected)
	assert.Equal(t, 0.9, doc.SLA.Confidence)
	require.NotNil(t, doc.SLAProbability)
	assert.GreaterOrEqual(t, doc.SLAProbability.TTFT, 0.9-1e-9)
	assert.GreaterOrEqual(t, doc.SLAProbability.ITL, 0.9-1e-9)
	for _, c := range doc.Pareto {
		assert.Positive(t, c.TTFTP10Ms)
		assert.LessOrEqual(t, c.TTFTP10Ms, c.TTFTMs)
		assert.GreaterOrEqual(t, c.ITLP90Ms, c.ITLMs)
	}
	assert.LessOrEqual(t, doc.Selected.ITLQuantile(0.9), 20.0)
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(js), &raw))
	for _, k := range []string{"ttftP10Ms", "ttftP90Ms", "itlP10Ms", "itlP90Ms", "tokensPerSecondPerGPUP10", "tokensPerSecondPerGPUP90"} {
		assert.Contains(t, raw["selected"], k)
	}
}

func TestPlanYAMLClosest(t *testing.T) {
	out, _, err := runPlan(t, "--model", "Qwen/Qwen3-8B", "--backend", "sglang", "--total-gpus", "2", "--ttft", "1", "--itl", "1", "-o", "yaml")
	require.NoError(t, err, "an unreachable SLA is a result, not an error")
	var doc profile.Report
	require.NoError(t, yaml.Unmarshal([]byte(out), &doc))
	assert.Nil(t, doc.Selected)
	require.NotNil(t, doc.Closest)
	assert.Len(t, doc.Misses, 2)
	assert.Contains(t, doc.Explanation, "no configuration meets TTFT ≤ 1 ms and ITL ≤ 1 ms")
	assert.Positive(t, doc.Rejected[profile.RejectTTFT].Count)
}

func TestPlanModelConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny-llama")
	require.NoError(t, os.Mkdir(dir, 0o755))
	// A small Llama-shaped config written for this test.
	cfg := `{"architectures": ["LlamaForCausalLM"], "hidden_size": 2048, "intermediate_size": 8192,
	"num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 16, "vocab_size": 128256,
	"max_position_embeddings": 8192, "torch_dtype": "bfloat16"}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644))

	for _, path := range []string{dir, filepath.Join(dir, "config.json")} {
		out, _, err := runPlan(t, "--model", "acme/tiny", "--model-config", path, "--backend", "vllm", "--total-gpus", "2", "-o", "json")
		require.NoError(t, err)
		var doc profile.Report
		require.NoError(t, json.Unmarshal([]byte(out), &doc))
		assert.Equal(t, "acme/tiny", doc.Model)
		assert.NotEmpty(t, doc.Pareto)
	}
}

func TestPlanErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no model", nil, []string{"--model is required", "hint: pass --model"}},
		{"unknown model", []string{"--model", "acme/nonexistent-7b"}, []string{"acme/nonexistent-7b", "hint: pass --model-config"}},
		{"unknown gpu", []string{"--model", "Qwen/Qwen3-8B", "--gpu", "h300"}, []string{`unknown gpu type "h300"`, "h100_sxm", "h200_sxm", "hint: --gpu takes a catalog name"}},
		{"unknown backend", []string{"--model", "Qwen/Qwen3-8B", "--backend", "tgi"}, []string{`unknown backend "tgi"`, "hint: use --backend any"}},
		{"bad output", []string{"--model", "Qwen/Qwen3-8B", "-o", "csv"}, []string{`unsupported output format "csv"`, "hint: use -o table"}},
		{"no budget", []string{"--model", "Qwen/Qwen3-8B", "--total-gpus", "0"}, []string{"--total-gpus must be at least 1"}},
		{"bad sla", []string{"--model", "Qwen/Qwen3-8B", "--itl", "-1"}, []string{"--ttft and --itl must be positive"}},
		{"confidence 0", []string{"--model", "Qwen/Qwen3-8B", "--sla-confidence", "0"}, []string{"--sla-confidence must be strictly between 0 and 1", "hint: pass a probability"}},
		{"confidence 1", []string{"--model", "Qwen/Qwen3-8B", "--sla-confidence", "1"}, []string{"--sla-confidence must be strictly between 0 and 1"}},
		{"negative confidence", []string{"--model", "Qwen/Qwen3-8B", "--sla-confidence", "-0.2"}, []string{"--sla-confidence must be strictly between 0 and 1"}},
		{"missing model config", []string{"--model", "x/y", "--model-config", "/nonexistent/config.json"}, []string{"read --model-config", "hint: pass a config.json"}},
		{"nothing fits", []string{"--model", "deepseek-ai/DeepSeek-R1", "--gpu", "h100_sxm", "--total-gpus", "8"},
			[]string{"no configuration could be predicted within 8 GPUs", "memory", "the closest, ", "GiB", "hint: raise --total-gpus"}},
		{"extra argument", []string{"Qwen/Qwen3-8B"}, []string{"unknown command"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runPlan(t, tt.args...)
			require.Error(t, err)
			assert.Empty(t, out, "nothing on stdout on error")
			var buf bytes.Buffer
			PrintError(&buf, err)
			line := buf.String()
			assert.Equal(t, 1, strings.Count(line, "\n"), "one line: %q", line)
			for _, w := range tt.want {
				assert.Contains(t, line, w)
			}
		})
	}
}
