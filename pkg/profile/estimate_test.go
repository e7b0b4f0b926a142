package profile

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadServingRows(t *testing.T) {
	in := `system,backend,model_path,precision,gemm_quant_mode,moe_quant_mode,mode,isl,osl,batch_size,tp_size,attention_dp_size,moe_ep_size,prefill_tp_size,prefill_num_workers,decode_tp_size,decode_moe_ep_size,decode_num_workers,decode_batch_size,concurrency,silicon_ttft_ms,silicon_tpot_ms
h200_sxm,vllm,Qwen/Qwen3-32B,fp8,,,agg,1024,256,16,2,,,,,,,,,,120.5,9.5
h200_sxm,trtllm,Qwen/Qwen3-235B-A22B,fp8,fp8_block,fp8_block,agg,1024,256,4,1,8,8,,,,,,,,,
b200_sxm,sglang,openai/gpt-oss-120b,,,mxfp4,disagg,8192,1024,,,,,2,3,4,4,1,64,,,
b200_sxm,sglang,openai/gpt-oss-120b,,,mxfp4,disagg,8192,1024,,,,,2,,4,4,,,300,,
h100_sxm,vllm,Qwen/Qwen3-32B,,,,agg,1024,x,16,2,,,,,,,,,,,
h100_sxm,vllm,Qwen/Qwen3-32B,,,,sideways,1024,128,16,2,,,,,,,,,,,
`
	_, rows, err := ReadServingRows(strings.NewReader(in), LookupModel)
	require.NoError(t, err)
	require.Len(t, rows, 6)

	r := rows[0]
	require.NoError(t, r.Err)
	assert.Equal(t, 16, r.Concurrency, "no concurrency column value: batch_size × DP")
	assert.Equal(t, "fp8", r.Target.WeightDtype, "precision alone stands for both")
	assert.InDelta(t, 120.5, r.MeasuredTTFTMs, 1e-9)
	assert.Equal(t, 2, r.Config.Workers[0].TP)

	r = rows[1]
	require.NoError(t, r.Err)
	w := r.Config.Workers[0]
	assert.Equal(t, 8, w.DP)
	assert.Equal(t, 8, w.EP)
	assert.Equal(t, 32, w.Batch, "batch_size is per attention-DP rank")
	assert.Equal(t, 32, r.Concurrency)
	assert.Equal(t, "fp8_block", r.Target.MoEDtype)

	r = rows[2]
	require.NoError(t, r.Err)
	assert.True(t, r.CountsGiven)
	assert.Equal(t, 64, r.Concurrency, "decode batch × decode workers")
	assert.Empty(t, r.Target.WeightDtype, "only the experts are named: the checkpoint's linear precision")

	r = rows[3]
	require.NoError(t, r.Err)
	assert.False(t, r.CountsGiven)
	assert.Equal(t, 300, r.Concurrency)

	assert.ErrorContains(t, rows[4].Err, "column osl")
	assert.ErrorContains(t, rows[5].Err, "expected agg or disagg")
}

// Rows that record a g-GPU MoE worker with tp_size (or attention_dp_size) g² and moe_tp = moe_ep = g.
func TestReadServingRowsUnsquare(t *testing.T) {
	head := "system,backend,model_path,mode,isl,osl,batch_size,tp_size,attention_dp_size,moe_tp_size,moe_ep_size,concurrency\n"
	tests := []struct {
		name, row         string
		tp, dp, ep, batch int
	}{
		{"tp squared", "b200_sxm,trtllm,deepseek-ai/DeepSeek-R1,agg,1024,1024,16,64,1,8,8,16", 8, 1, 8, 16},
		{"dp squared", "b200_sxm,trtllm,deepseek-ai/DeepSeek-R1,agg,1024,1024,1,1,64,8,8,64", 1, 8, 8, 64},
		{"tp4 ep4 squared", "b200_sxm,sglang,deepseek-ai/DeepSeek-R1,agg,1024,1024,32,16,1,4,4,32", 4, 1, 4, 32},
		{"plain attention DP", "b200_sxm,trtllm,deepseek-ai/DeepSeek-R1,agg,1024,1024,8,1,8,1,8,64", 1, 8, 8, 64},
		{"moe tp and ep on tp8", "h200_sxm,trtllm,deepseek-ai/DeepSeek-R1,agg,1024,1024,8,8,1,2,4,8", 8, 1, 4, 8},
		{"dense model untouched", "h200_sxm,vllm,meta-llama/Llama-3.1-70B,agg,1024,1024,8,16,1,4,4,8", 16, 1, 1, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rows, err := ReadServingRows(strings.NewReader(head+tt.row+"\n"), LookupModel)
			require.NoError(t, err)
			require.Len(t, rows, 1)
			require.NoError(t, rows[0].Err)
			w := rows[0].Config.Workers[0]
			assert.Equal(t, []int{tt.tp, tt.dp, tt.ep, tt.batch}, []int{w.TP, w.DP, w.EP, w.Batch})
		})
	}
}

func TestCompleteDisagg(t *testing.T) {
	p, err := NewPredictor(Target{Model: model(t, "Qwen/Qwen3-32B"), GPU: gpu(t, "h200_sxm"), Backend: BackendVLLM,
		Workload: Workload{ISL: 8192, OSL: 1024}})
	require.NoError(t, err)
	c := Config{Mode: ModeDisagg, Workers: []Worker{{Role: RolePrefill, TP: 2}, {Role: RoleDecode, TP: 4}}}
	maxD, err := p.MaxBatch(Worker{Role: RoleDecode, TP: 4})
	require.NoError(t, err)
	for _, conc := range []int{8, maxD + 1, 4 * maxD} {
		got, err := completeDisagg(p, c, conc)
		require.NoError(t, err)
		pw, dw := got.Workers[0], got.Workers[1]
		assert.GreaterOrEqual(t, pw.Count, 1)
		assert.GreaterOrEqual(t, dw.Count*maxD, conc, "decode workers hold the concurrency")
		assert.GreaterOrEqual(t, dw.Count*dw.Batch, conc)
		_, err = p.Predict(got, conc)
		require.NoError(t, err)
	}
}

func TestEstimateCSVKeepsRows(t *testing.T) {
	in := "note,system,backend,model_path,mode,isl,osl,batch_size,tp_size\nx,h100_sxm,vllm,Qwen/Qwen3-8B,agg,512,128,8,1\ny,h100_sxm,vllm,acme/none,agg,512,128,8,1\n"
	var out bytes.Buffer
	sum, err := EstimateCSV(strings.NewReader(in), &out, LookupModel)
	require.NoError(t, err)
	assert.Equal(t, EstimateSummary{Rows: 2, Predicted: 1}, sum)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3)
	assert.Equal(t, "note,system,backend,model_path,mode,isl,osl,batch_size,tp_size,predicted_ttft_ms,predicted_tpot_ms,ttft_p10_ms,ttft_p90_ms,itl_p10_ms,itl_p90_ms,error", lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "x,h100_sxm"))
	assert.True(t, strings.HasSuffix(lines[1], ","), "a predicted row has no error")
	assert.Equal(t, 15, strings.Count(lines[1], ","))
	assert.Contains(t, lines[2], ",,,,,,", "an unpredicted row has no prediction nor interval")
	assert.Contains(t, lines[2], "acme/none")
}

func FuzzReadServingRows(f *testing.F) {
	f.Add("system,backend,model_path,mode,isl,osl,batch_size,tp_size\nh100_sxm,vllm,Qwen/Qwen3-8B,agg,512,128,8,1\n")
	f.Add("mode,isl\ndisagg,-1\n")
	f.Add("a\n\"")
	f.Fuzz(func(t *testing.T, in string) {
		_, rows, err := ReadServingRows(strings.NewReader(in), LookupModel)
		if err != nil {
			return
		}
		cache := map[string]*Predictor{}
		for i := range rows {
			pred, err := estimateRow(&rows[i], cache)
			if err == nil && (pred.TTFTMs <= 0 || pred.ITLMs <= 0) {
				t.Fatalf("row %d: non-positive prediction %+v", i, pred)
			}
		}
	})
}

// TestEstimateRowReadsMeasuredMemoryAndMTP: a measured row whose weights leave no room under the
// backend's default memory fraction ran with a raised one, and the disaggregated rows of a model with
// MTP modules are read with speculative decoding (lower ITL than without).
func TestEstimateRowReadsMeasuredMemoryAndMTP(t *testing.T) {
	in := `system,backend,model_path,gemm_quant_mode,moe_quant_mode,mode,isl,osl,batch_size,tp_size,moe_tp_size,moe_ep_size,prefill_tp_size,prefill_moe_ep_size,decode_tp_size,decode_moe_ep_size,concurrency
b200_sxm,sglang,deepseek-ai/DeepSeek-R1,fp8,fp8_block,agg,8192,1024,8,4,4,1,,,,,8
b200_sxm,trtllm,deepseek-ai/DeepSeek-R1,fp8,fp8,disagg,1024,1024,,,,,8,8,8,8,16
b200_sxm,trtllm,meta-llama/Llama-3.1-70B,fp8,,disagg,1024,1024,,,,,4,,4,,16
`
	_, rows, err := ReadServingRows(strings.NewReader(in), LookupModel)
	require.NoError(t, err)
	require.Len(t, rows, 3)

	cache := map[string]*Predictor{}
	_, err = estimateRow(&rows[0], cache)
	require.NoError(t, err, "answered with the memory fraction raised")
	p := cache[rows[0].Target.key()]
	require.ErrorIs(t, p.Fit(rows[0].Config.Workers[0]), ErrNoFit, "the backend's default fraction does not hold the weights")

	assert.Equal(t, assumedSpecDraft, rows[1].Target.SpecDraft, "DeepSeek-R1 ships an MTP module")
	assert.Zero(t, rows[2].Target.SpecDraft, "Llama has none")
	spec, err := estimateRow(&rows[1], cache)
	require.NoError(t, err)
	plain := rows[1]
	plain.Target.SpecDraft = 0
	noSpec, err := estimateRow(&plain, cache)
	require.NoError(t, err)
	assert.Less(t, spec.ITLMs, noSpec.ITLMs)
}
