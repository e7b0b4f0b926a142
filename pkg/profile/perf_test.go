package profile

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/pkg/hw"
)

func gpu(t *testing.T, name string) hw.GPU { return gpuB(t, name) }

func gpuB(t testing.TB, name string) hw.GPU {
	t.Helper()
	g, err := hw.Lookup(name)
	require.NoError(t, err)
	return g
}

func model(t *testing.T, id string) Model {
	t.Helper()
	m, err := LookupModel(id)
	require.NoError(t, err)
	return m
}

func aggConfig(tp, batch int) Config {
	return Config{Mode: ModeAgg, Replicas: 1, Workers: []Worker{{Role: RoleAgg, Count: 1, TP: tp, PP: 1, EP: 1, Batch: batch}}}
}

func TestPredictAggBasics(t *testing.T) {
	p, err := NewPredictor(Target{Model: model(t, "meta-llama/Llama-3.1-8B-Instruct"), GPU: gpu(t, "h100_sxm"),
		Backend: BackendVLLM, Workload: Workload{ISL: 1024, OSL: 256}})
	require.NoError(t, err)
	assert.Equal(t, MethodKernelTable, p.Method())
	pred, err := p.Predict(aggConfig(1, 32), 32)
	require.NoError(t, err)
	assert.Greater(t, pred.TTFTMs, pred.PrefillMs*0.99, "ttft includes at least the prefill")
	assert.Greater(t, pred.ITLMs, 3.0)
	assert.Less(t, pred.ITLMs, 100.0)
	assert.InDelta(t, 1000/pred.ITLMs, pred.TokensPerSecondPerUser, 1e-9)
	assert.Equal(t, 32, pred.Concurrency)
	assert.Equal(t, "bf16", pred.WeightDtype)
}

func TestPredictRooflineForUnmeasuredGPU(t *testing.T) {
	pred, err := Predict(Target{Model: model(t, "meta-llama/Llama-3.1-70B"), GPU: gpu(t, "b200_sxm"), Backend: BackendTRTLLM,
		WeightDtype: "fp8", Workload: Workload{ISL: 1024, OSL: 1024}}, aggConfig(4, 64), 64)
	require.NoError(t, err)
	assert.Equal(t, MethodRoofline, pred.Method)
	assert.Equal(t, "fp8", pred.KVDtype, "trtllm with quantized weights keeps an fp8 kv cache")
}

func TestKVCacheDtypeDefaults(t *testing.T) {
	for _, tc := range []struct {
		name, model, gpu, backend, want string
	}{
		{"trtllm quantized", "meta-llama/Llama-3.1-70B", "h200_sxm", BackendTRTLLM, "fp8"},
		{"vllm keeps the model dtype", "meta-llama/Llama-3.1-70B", "b200_sxm", BackendVLLM, "bf16"},
		{"sglang mla on blackwell", "deepseek-ai/DeepSeek-R1", "b200_sxm", BackendSGLang, "fp8"},
		{"sglang mla on hopper", "deepseek-ai/DeepSeek-R1", "h200_sxm", BackendSGLang, "bf16"},
		{"sglang gqa on blackwell", "meta-llama/Llama-3.1-70B", "b200_sxm", BackendSGLang, "bf16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pred, err := Predict(Target{Model: model(t, tc.model), GPU: gpu(t, tc.gpu), Backend: tc.backend,
				WeightDtype: "fp8", Workload: Workload{ISL: 1024, OSL: 1024}}, aggConfig(8, 8), 8)
			require.NoError(t, err)
			assert.Equal(t, tc.want, pred.KVDtype)
		})
	}
}

func TestFitAndMaxBatch(t *testing.T) {
	ds := model(t, "deepseek-ai/DeepSeek-R1")
	p, err := NewPredictor(Target{Model: ds, GPU: gpu(t, "h100_sxm"), Backend: BackendSGLang, Workload: Workload{ISL: 1024, OSL: 1024}})
	require.NoError(t, err)
	err = p.Fit(Worker{Role: RoleAgg, TP: 8, EP: 8})
	require.Error(t, err, "671B fp8 parameters do not fit 8×80 GB")
	assert.True(t, errors.Is(err, ErrNoFit))
	var fe *FitError
	require.ErrorAs(t, err, &fe)
	assert.Greater(t, fe.NeedGiB, fe.HaveGiB)
	_, err = p.Predict(Config{Mode: ModeAgg, Workers: []Worker{{Role: RoleAgg, TP: 8, EP: 8, Batch: 8}}}, 8)
	assert.ErrorIs(t, err, ErrNoFit)

	n8, err := p.MaxBatch(Worker{Role: RoleAgg, TP: 16, EP: 16})
	require.NoError(t, err)
	assert.Positive(t, n8)

	l8 := model(t, "meta-llama/Llama-3.1-8B-Instruct")
	q, err := NewPredictor(Target{Model: l8, GPU: gpu(t, "h100_sxm"), Backend: BackendVLLM, Workload: Workload{ISL: 1024, OSL: 1024}})
	require.NoError(t, err)
	b1, err := q.MaxBatch(Worker{Role: RoleAgg, TP: 1})
	require.NoError(t, err)
	b2, err := q.MaxBatch(Worker{Role: RoleAgg, TP: 2})
	require.NoError(t, err)
	assert.Greater(t, b2, 2*b1, "two GPUs hold more than twice the KV cache (the weights are split too)")
	mu, err := q.Memory(Worker{Role: RoleAgg, TP: 1}, b1)
	require.NoError(t, err)
	assert.InDelta(t, 16.0/1.0737, mu.WeightsGiB, 1.0, "8B bf16 weights ≈ 15 GiB")
	assert.LessOrEqual(t, mu.KVCacheGiB, mu.KVBudgetGiB+1e-9)
}

func TestMonotonicity(t *testing.T) {
	p, err := NewPredictor(Target{Model: model(t, "meta-llama/Llama-3.1-70B"), GPU: gpu(t, "h200_sxm"), Backend: BackendTRTLLM,
		WeightDtype: "fp8", Workload: Workload{ISL: 2048, OSL: 512}})
	require.NoError(t, err)
	prev := Prediction{}
	for i, tp := range []int{2, 4, 8} {
		pred, err := p.Predict(aggConfig(tp, 16), 16)
		require.NoError(t, err)
		if i > 0 {
			assert.Less(t, pred.DecodeStepMs, prev.DecodeStepMs, "tp %d decode step", tp)
			assert.Less(t, pred.PrefillMs, prev.PrefillMs, "tp %d prefill", tp)
		}
		prev = pred
	}
	prev = Prediction{}
	for i, b := range []int{1, 4, 16, 64, 256} {
		pred, err := p.Predict(aggConfig(4, b), b)
		require.NoError(t, err)
		if i > 0 {
			assert.Greater(t, pred.ITLMs, prev.ITLMs, "batch %d itl", b)
			assert.Greater(t, pred.TokensPerSecondPerGPU, prev.TokensPerSecondPerGPU, "batch %d throughput", b)
			assert.GreaterOrEqual(t, pred.TTFTMs, prev.TTFTMs, "batch %d ttft", b)
		}
		prev = pred
	}
}

func TestAggVersusDisagg(t *testing.T) {
	p, err := NewPredictor(Target{Model: model(t, "meta-llama/Llama-3.1-70B"), GPU: gpu(t, "h200_sxm"), Backend: BackendVLLM,
		WeightDtype: "fp8", Workload: Workload{ISL: 8192, OSL: 1024}})
	require.NoError(t, err)
	agg, err := p.Predict(Config{Mode: ModeAgg, Replicas: 2, Workers: []Worker{{Role: RoleAgg, Count: 1, TP: 4, Batch: 64}}}, 128)
	require.NoError(t, err)
	dis, err := p.Predict(Config{Mode: ModeDisagg, Replicas: 1, Workers: []Worker{
		{Role: RolePrefill, Count: 1, TP: 4, Batch: 1}, {Role: RoleDecode, Count: 1, TP: 4, Batch: 64}}}, 64)
	require.NoError(t, err)
	// Long prompts stall aggregated decoding; a decode pool without prefill interference streams faster
	// at the same decode batch.
	assert.Less(t, dis.ITLMs, agg.ITLMs)
	assert.Equal(t, 64, dis.Concurrency)
	assert.Equal(t, 128, agg.Concurrency)
	// One prefill worker for 64 users of 8k prompts queues: TTFT far above one prefill.
	assert.Greater(t, dis.TTFTMs, 2*dis.PrefillMs)
	more, err := p.Predict(Config{Mode: ModeDisagg, Replicas: 1, Workers: []Worker{
		{Role: RolePrefill, Count: 3, TP: 4, Batch: 1}, {Role: RoleDecode, Count: 1, TP: 4, Batch: 64}}}, 64)
	require.NoError(t, err)
	assert.Less(t, more.TTFTMs, dis.TTFTMs, "more prefill workers queue less")

	_, err = p.Predict(Config{Mode: ModeDisagg, Workers: []Worker{{Role: RoleDecode, TP: 4}}}, 8)
	assert.ErrorContains(t, err, "no prefill worker")
}

func TestComposedStepAgainstE2E(t *testing.T) {
	// Whole-model decode steps measured on H100 (testdata/gpu-data/h100_sxm/e2e_llama3.1-8b_bf16.csv),
	// checked against the composition of interpolated kernel times (+ the fitted glue).
	cal, err := EmbeddedCalibration()
	require.NoError(t, err)
	g := gpu(t, "h100_sxm")
	pts := readE2EPoints(t)
	var worst float64
	for _, pt := range pts {
		ms, err := ComposedDecodeMs(E2EModel, g, cal.GlueUsPerLayer, pt.Batch, pt.KV)
		require.NoError(t, err)
		e := ms/pt.Ms - 1
		t.Logf("decode batch %3d kv %5d: composed %.2f ms, measured %.2f ms (%+.1f%%)", pt.Batch, pt.KV, ms, pt.Ms, 100*e)
		worst = max(worst, math.Abs(e))
	}
	assert.Less(t, worst, 0.12, "composed decode steps within 12%% of the measured whole steps")
}

// TestHybridLinearAttention: Qwen3.5's linear-attention layers keep a fixed recurrent state instead
// of a KV cache, so a sequence costs a quarter of the KV bytes plus its state, and many more fit.
func TestHybridLinearAttention(t *testing.T) {
	hybrid := model(t, "Qwen/Qwen3.5-397B-A17B")
	softmax := hybrid
	softmax.LinearLayers = 0 // the same model with softmax attention in every layer
	target := func(m Model) *Predictor {
		p, err := NewPredictor(Target{Model: m, GPU: gpu(t, "h200_sxm"), Backend: BackendSGLang, WeightDtype: "fp8",
			Workload: Workload{ISL: 8192, OSL: 1024}})
		require.NoError(t, err)
		return p
	}
	pH, pS := target(hybrid), target(softmax)
	w := Worker{Role: RoleAgg, TP: 8, EP: 8}
	sH, err := pH.shard(w)
	require.NoError(t, err)
	sS, err := pS.shard(w)
	require.NoError(t, err)
	assert.InEpsilon(t, pS.kvBytesPerTokenGPU(&sS)/4, pH.kvBytesPerTokenGPU(&sH), 1e-9, "15 of 60 layers keep KV")
	// Per GPU: 45 layers × (8 value heads × 128×128 fp32 + (2×2×128 + 8×128) channels × 3 taps in bf16).
	assert.InDelta(t, 45*(8*128*128*4+(2*2*128+8*128)*3*2), pH.seqStateBytesGPU(&sH), 1e-6)
	assert.Zero(t, pS.seqStateBytesGPU(&sS))

	bH, err := pH.MaxBatch(w)
	require.NoError(t, err)
	bS, err := pS.MaxBatch(w)
	require.NoError(t, err)
	assert.Greater(t, bH, 3*bS, "a quarter of the KV plus a 24 MB state per sequence")

	pred, err := pH.Predict(Config{Mode: ModeAgg, Replicas: 1, Workers: []Worker{{Role: RoleAgg, Count: 1, TP: 8, EP: 8, Batch: 64}}}, 64)
	require.NoError(t, err)
	assert.Greater(t, pred.ITLMs, 1.0)
	assert.Greater(t, pred.TTFTMs, pred.ITLMs)
}

func TestSparseAttention(t *testing.T) {
	sparse := model(t, "deepseek-ai/DeepSeek-V3.2")
	dense := model(t, "deepseek-ai/DeepSeek-V3")
	target := func(m Model, isl int) *Predictor {
		p, err := NewPredictor(Target{Model: m, GPU: gpu(t, "h200_sxm"), Backend: BackendSGLang,
			Workload: Workload{ISL: isl, OSL: 1024}})
		require.NoError(t, err)
		return p
	}
	w := Worker{Role: RoleAgg, TP: 1, DP: 8, EP: 8} // attention data-parallel, as SGLang runs DSA
	pS, pD := target(sparse, 32768), target(dense, 32768)
	sS, err := pS.shard(w)
	require.NoError(t, err)
	sD, err := pD.shard(w)
	require.NoError(t, err)
	// Per token and layer: the bf16 latent and rope key (576 × 2 bytes) plus a 128-byte fp8 index key and its scale.
	assert.InDelta(t, 61*(576*2+128+4), pS.kvBytesPerTokenGPU(&sS), 1e-9)
	assert.InDelta(t, 61*576*2, pD.kvBytesPerTokenGPU(&sD), 1e-9)

	// At a 32k context the core attends to 2,048 tokens: decode and prefill are cheaper than dense MLA.
	load := func(p *Predictor, s *shard) (decode, prefill float64) {
		decode = p.stepMs(s, batchLoad{decodeSeqs: 64, decodeKV: 32768})
		prefill = p.stepMs(s, batchLoad{prefillTokens: 8192, prefillSeqs: 1, prefillCtx: 24576})
		return decode, prefill
	}
	dS, fS := load(pS, &sS)
	dD, fD := load(pD, &sD)
	assert.Less(t, dS, dD)
	assert.Less(t, fS, 0.8*fD)

	// Within the top-k both attend to every token; the indexer, its projections and the latent
	// (absorbed) form of sparse prefill cost a little more.
	pS, pD = target(sparse, 1024), target(dense, 1024)
	short := batchLoad{prefillTokens: 1024, prefillSeqs: 1}
	assert.Greater(t, pS.stepMs(&sS, short), pD.stepMs(&sD, short))
	assert.Less(t, pS.stepMs(&sS, short), 1.25*pD.stepMs(&sD, short))
}

func TestNemotronHybrid(t *testing.T) {
	for _, id := range []string{"nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16", "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-BF16"} {
		t.Run(id, func(t *testing.T) {
			m := model(t, id)
			p, err := NewPredictor(Target{Model: m, GPU: gpu(t, "h200_sxm"), Backend: BackendVLLM,
				Workload: Workload{ISL: 1024, OSL: 1024}})
			require.NoError(t, err)
			s, err := p.shard(Worker{Role: RoleAgg, TP: 1, EP: 1})
			require.NoError(t, err)
			// bf16 weights: two bytes a parameter (norms aside), the relu² MLPs' two matrices and the
			// latent experts included.
			assert.InEpsilon(t, 2*m.Params(), p.weightBytesGPU(&s), 0.01)
			// Only the attention blocks keep KV: two KV heads of 128 in bf16 each.
			attnLayers := float64(m.Layers - m.LinearLayers)
			assert.InDelta(t, attnLayers*2*2*128*2, p.kvBytesPerTokenGPU(&s), 1e-9)
			assert.Positive(t, p.seqStateBytesGPU(&s), "the Mamba-2 state of every sequence")
			pred, err := p.Predict(Config{Mode: ModeAgg, Replicas: 1, Workers: []Worker{{Role: RoleAgg, Count: 1, TP: 4, EP: 1, Batch: 32}}}, 32)
			require.NoError(t, err)
			assert.Greater(t, pred.TTFTMs, pred.ITLMs)
			assert.Greater(t, pred.ITLMs, 1.0)
		})
	}
}
