package profile_test

import (
	"encoding/csv"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/internal/repo"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

func TestCatalogModelsParse(t *testing.T) {
	ids := profile.Models()
	require.GreaterOrEqual(t, len(ids), 24)
	assert.True(t, slices.IsSorted(ids))
	for _, id := range ids {
		m, err := profile.LookupModel(id)
		require.NoError(t, err)
		assert.Equal(t, id, m.ID)
		assert.Equal(t, id, m.CatalogID, "a catalog id resolves to itself")
		assert.Positive(t, m.MaxContext, id)
	}
}

// TestCatalogParams checks each embedded architecture against its publisher's parameter count, so
// a wrong dimension in a catalog file (or in Params) shows. Published active counts differ in
// whether they include the input embedding: embeds says which convention the figure uses.
func TestCatalogParams(t *testing.T) {
	tests := []struct {
		id            string
		arch          string
		total, active float64 // billions; active 0 = dense, -1 = MoE without a published figure
		// embeds is how many vocab×hidden tables the published active figure counts beyond
		// ActiveParams: +1 when it includes the input embedding, -1 when it leaves out the LM head too.
		embeds int
	}{
		{"meta-llama/Llama-3.1-8B-Instruct", profile.ArchDense, 8.03, 0, 0},
		{"meta-llama/Llama-3.1-70B", profile.ArchDense, 70.6, 0, 0},
		{"meta-llama/Llama-3.3-70B-Instruct", profile.ArchDense, 70.6, 0, 0},
		{"meta-llama/Llama-3.1-405B-Instruct", profile.ArchDense, 405.9, 0, 0},
		{"meta-llama/Llama-3.2-1B-Instruct", profile.ArchDense, 1.24, 0, 0},
		{"meta-llama/Llama-3.2-3B-Instruct", profile.ArchDense, 3.21, 0, 0},
		{"Qwen/Qwen3-0.6B", profile.ArchDense, 0.6, 0, 0},
		{"Qwen/Qwen3-1.7B", profile.ArchDense, 1.7, 0, 0},
		{"Qwen/Qwen3-4B", profile.ArchDense, 4.0, 0, 0},
		{"Qwen/Qwen3-8B", profile.ArchDense, 8.2, 0, 0},
		{"Qwen/Qwen3-14B", profile.ArchDense, 14.8, 0, 0},
		{"Qwen/Qwen3-32B", profile.ArchDense, 32.8, 0, 0},
		{"Qwen/Qwen3-30B-A3B", profile.ArchMoE, 30.5, 3.3, +1},
		{"Qwen/Qwen3-235B-A22B", profile.ArchMoE, 235, 22, +1},
		{"Qwen/Qwen3-Coder-480B-A35B-Instruct", profile.ArchMoE, 480, 35, +1},
		{"Qwen/Qwen2.5-7B-Instruct", profile.ArchDense, 7.61, 0, 0},
		{"Qwen/Qwen2.5-14B-Instruct", profile.ArchDense, 14.7, 0, 0},
		{"Qwen/Qwen2.5-32B-Instruct", profile.ArchDense, 32.5, 0, 0},
		{"Qwen/Qwen2.5-72B-Instruct", profile.ArchDense, 72.7, 0, 0},
		{"mistralai/Mistral-7B-Instruct-v0.3", profile.ArchDense, 7.25, 0, 0},
		{"mistralai/Mistral-Small-24B-Instruct-2501", profile.ArchDense, 23.6, 0, 0},
		{"mistralai/Mistral-Large-Instruct-2407", profile.ArchDense, 123, 0, 0},
		{"mistralai/Mixtral-8x7B-Instruct-v0.1", profile.ArchMoE, 46.7, 12.9, +1},
		{"mistralai/Mixtral-8x22B-Instruct-v0.1", profile.ArchMoE, 141, 39, +1},
		{"openai/gpt-oss-20b", profile.ArchMoE, 20.9, 3.6, 0},
		{"openai/gpt-oss-120b", profile.ArchMoE, 116.8, 5.1, 0},
		{"deepseek-ai/DeepSeek-V3", profile.ArchMLAMoE, 671, 37, +1},
		{"deepseek-ai/DeepSeek-R1", profile.ArchMLAMoE, 671, 37, +1},
		{"deepseek-ai/DeepSeek-V2", profile.ArchMLAMoE, 236, 21, +1},
		{"deepseek-ai/DeepSeek-V2-Lite", profile.ArchMLAMoE, 15.7, 2.4, 0},
		{"moonshotai/Kimi-K2-Instruct", profile.ArchMLAMoE, 1030, 32, +1},
		{"moonshotai/Kimi-K2.5", profile.ArchMLAMoE, 1030, 32, +1},
		{"MiniMaxAI/MiniMax-M2.5", profile.ArchMoE, 229, 10, 0},
		{"Qwen/Qwen3.5-397B-A17B", profile.ArchMoE, 397, 17, +1},
		{"Qwen/Qwen3.5-122B-A10B", profile.ArchMoE, 122, 10, +1},
		{"Qwen/Qwen3.5-35B-A3B", profile.ArchMoE, 35, 3, 0},
		{"Qwen/Qwen3-Next-80B-A3B-Instruct", profile.ArchMoE, 80, -1, 0}, // "A3B" is all the card says of active weights
		{"deepseek-ai/DeepSeek-V3.2", profile.ArchMLAMoE, 671, 37, +1},   // 685B with the MTP module
		{"zai-org/GLM-5", profile.ArchMLAMoE, 744, 40, 0},
		{"Qwen/Qwen3.6-27B", profile.ArchDense, 27, 0, 0},
		{"nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16", profile.ArchMoE, 31.6, 3.2, 0},
		{"nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-BF16", profile.ArchMoE, 120, 12, 0},
		{"nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B-BF16", profile.ArchMoE, 550, 55, 0},
		{"nvidia/Nemotron-H-56B-Base-8K", profile.ArchDense, 56, 0, 0},
		{"meta-llama/Llama-4-Scout-17B-16E-Instruct", profile.ArchMoE, 109, 17, +1}, // 109B counts the vision encoder
		{"meta-llama/Llama-4-Maverick-17B-128E-Instruct", profile.ArchMoE, 400, 17, +1},
		{"zai-org/GLM-4.5", profile.ArchMoE, 355, 32, -1},
		{"zai-org/GLM-4.5-Air", profile.ArchMoE, 106, 12, -1},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			m, err := profile.LookupModel(tt.id)
			require.NoError(t, err)
			assert.Equal(t, tt.arch, m.Arch)
			assert.InEpsilon(t, tt.total, m.Params()/1e9, 0.03, "total params of %s: %.2fB", tt.id, m.Params()/1e9)
			if tt.active == 0 {
				assert.False(t, m.IsMoE())
				lookup := float64(m.Vocab * m.Hidden) // the input table, unless the LM head shares it
				if m.TiedEmbed {
					lookup = 0
				}
				assert.InEpsilon(t, m.Params(), m.ActiveParams()+lookup, 1e-9, "a dense model uses every weight")
				return
			}
			if tt.active < 0 {
				assert.True(t, m.IsMoE())
				return
			}
			active := m.ActiveParams() + float64(tt.embeds)*float64(m.Vocab*m.Hidden)
			assert.InEpsilon(t, tt.active, active/1e9, 0.06, "active params of %s: %.2fB", tt.id, active/1e9)
		})
	}
}

func TestLookupModel(t *testing.T) {
	tests := []struct {
		id        string
		catalogID string
		quant     string // WeightQuant
		gemm, moe string
		kv        string
	}{
		{"meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", "", "", "", ""},
		{"META-LLAMA/llama-3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct", "", "", "", ""},
		{"Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", "", "", "", ""},
		{"meta-llama/Meta-Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", "", "", "", ""},
		{"nvidia/Llama-3.1-8B-Instruct-FP8", "nvidia/Llama-3.1-8B-Instruct-FP8", "fp8", "fp8", "", "fp8"},
		{"RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8-dynamic", "nvidia/Llama-3.1-8B-Instruct-FP8", "fp8", "fp8", "", ""},
		{"RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic", "nvidia/Llama-3.3-70B-Instruct-FP8", "fp8", "fp8", "", ""},
		{"meta-llama/Llama-3.1-70B", "meta-llama/Llama-3.1-70B", "", "", "", ""},
		{"nvidia/Llama-3.1-70B-Instruct-FP8", "meta-llama/Llama-3.1-70B-Instruct", "fp8", "fp8", "", ""},
		{"nvidia/Llama-3.1-405B-Instruct-FP4", "meta-llama/Llama-3.1-405B-Instruct", "nvfp4", "nvfp4", "", ""},
		{"Qwen/Qwen3-32B-FP8", "Qwen/Qwen3-32B-FP8", "fp8", "fp8_block", "", ""},
		{"Qwen/Qwen3-8B-FP8", "Qwen/Qwen3-8B", "fp8", "fp8_block", "", ""},
		{"Qwen/Qwen3-32B-AWQ", "Qwen/Qwen3-32B", "int4", "int4", "", ""},
		{"Qwen/Qwen2.5-72B-Instruct-GPTQ-Int4", "Qwen/Qwen2.5-72B-Instruct", "int4", "int4", "", ""},
		{"Qwen/Qwen3-235B-A22B-Instruct-2507-FP8", "Qwen/Qwen3-235B-A22B", "fp8", "fp8_block", "fp8_block", ""},
		{"nvidia/Qwen3-235B-A22B-FP4", "Qwen/Qwen3-235B-A22B", "nvfp4", "nvfp4", "nvfp4", ""},
		{"Qwen/Qwen3-30B-A3B-Thinking-2507", "Qwen/Qwen3-30B-A3B", "", "", "", ""},
		{"deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-R1", "fp8", "fp8_block", "fp8_block", ""},
		{"deepseek-ai/DeepSeek-V3-0324", "deepseek-ai/DeepSeek-V3", "fp8", "fp8_block", "fp8_block", ""},
		{"deepseek-ai/DeepSeek-V3.1-Terminus", "deepseek-ai/DeepSeek-V3.1", "fp8", "fp8_block", "fp8_block", ""},
		{"nvidia/DeepSeek-R1-FP4", "nvidia/DeepSeek-R1-FP4", "nvfp4", "nvfp4", "nvfp4", "fp8"},
		{"nvidia/DeepSeek-R1-0528-FP4-v2", "nvidia/DeepSeek-R1-FP4", "nvfp4", "nvfp4", "nvfp4", "fp8"},
		{"/model-cache/deepseek-r1-fp4", "nvidia/DeepSeek-R1-FP4", "nvfp4", "nvfp4", "nvfp4", "fp8"},
		{"openai/gpt-oss-120b", "openai/gpt-oss-120b", "mxfp4", "", "mxfp4", ""},
		{"gpt-oss-20b", "openai/gpt-oss-20b", "mxfp4", "", "mxfp4", ""},
		{"moonshotai/Kimi-K2-Instruct-0905", "moonshotai/Kimi-K2-Instruct", "fp8", "fp8_block", "fp8_block", ""},
		{"mistralai/Mixtral-8x7B-v0.1", "mistralai/Mixtral-8x7B-Instruct-v0.1", "", "", "", ""},
		{"mistralai/Mistral-7B-Instruct", "mistralai/Mistral-7B-Instruct-v0.3", "", "", "", ""},
		{"mistralai/Mistral-Small-24B-Base-2501", "mistralai/Mistral-Small-24B-Instruct-2501", "", "", "", ""},
		{"meta-llama/Meta-Llama-3-70B-Instruct", "meta-llama/Meta-Llama-3-70B-Instruct", "", "", "", ""},
		{"meta-llama/Llama-3-70b", "meta-llama/Meta-Llama-3-70B-Instruct", "", "", "", ""},
		{"RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w4a16", "meta-llama/Llama-3.1-8B-Instruct", "int4", "int4", "", ""},
		{"/mnt/models/Qwen3_32B", "Qwen/Qwen3-32B", "", "", "", ""},
		{"./Qwen3-30B-A3B/", "Qwen/Qwen3-30B-A3B", "", "", "", ""},
		{"Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8", "Qwen/Qwen3-30B-A3B", "fp8", "fp8_block", "fp8_block", ""},
		{"unsloth/Mistral-Small-24B-FP8", "mistralai/Mistral-Small-24B-Instruct-2501", "fp8", "fp8", "", ""},
		{"Qwen/QwQ-32B", "Qwen/Qwen2.5-32B-Instruct", "", "", "", ""},
		{"nvidia/Llama-3.1-Nemotron-70B-Instruct-HF", "meta-llama/Llama-3.1-70B-Instruct", "", "", "", ""},
		{"mistralai/Mistral-Small-3.1-24B-Instruct-2503", "mistralai/Mistral-Small-24B-Instruct-2501", "", "", "", ""},
		{"deepseek-ai/DeepSeek-V3.2-Exp", "deepseek-ai/DeepSeek-V3.2", "fp8", "fp8_block", "fp8_block", ""},
		{"nvidia/DeepSeek-V3.2-NVFP4", "deepseek-ai/DeepSeek-V3.2", "nvfp4", "nvfp4", "nvfp4", ""},
		{"zai-org/GLM-5.1-FP8", "zai-org/GLM-5", "fp8", "fp8_block", "fp8_block", ""},
		{"zai-org/GLM-4.7", "zai-org/GLM-4.5", "", "", "", ""},
		{"MiniMaxAI/MiniMax-M2.7", "MiniMaxAI/MiniMax-M2.5", "fp8", "fp8_block", "fp8_block", ""},
		{"moonshotai/Kimi-K2.6", "moonshotai/Kimi-K2.5", "int4", "", "int4", ""},
		{"nvidia/Qwen3.6-35B-A3B-NVFP4", "Qwen/Qwen3.5-35B-A3B", "nvfp4", "nvfp4", "nvfp4", ""},
		{"Qwen/Qwen3-VL-235B-A22B-Instruct-FP8", "Qwen/Qwen3-235B-A22B", "fp8", "fp8_block", "fp8_block", ""},
		{"Qwen/Qwen3-VL-2B-Thinking", "Qwen/Qwen3-1.7B", "", "", "", ""},
		{"nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-FP8", "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16", "fp8", "fp8", "fp8", ""},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			m, err := profile.LookupModel(tt.id)
			require.NoError(t, err)
			assert.Equal(t, tt.id, m.ID, "the id asked for is kept")
			assert.Equal(t, tt.catalogID, m.CatalogID)
			assert.Equal(t, tt.quant, m.WeightQuant)
			assert.Equal(t, tt.gemm, m.GEMMQuant)
			assert.Equal(t, tt.moe, m.MoEQuant)
			assert.Equal(t, tt.kv, m.KVQuant)
		})
	}
}

func TestLookupModelUnknown(t *testing.T) {
	tests := []struct {
		id      string
		closest []string
	}{
		{"Qwen/Qwen3-31B", []string{"Qwen/Qwen3-32B"}},
		{"deepseek-ai/DeepSeek-V4", []string{"deepseek-ai/DeepSeek-V3"}},
		{"nvidia/gpt-oss-120b-Eagle3-v3", []string{"openai/gpt-oss-120b"}},
		{"google/gemma-3-27b-it", nil},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			_, err := profile.LookupModel(tt.id)
			require.Error(t, err)
			msg := err.Error()
			assert.NotContains(t, msg, "\n")
			if tt.id == "" {
				return
			}
			assert.Contains(t, msg, "--model-config")
			for _, c := range tt.closest {
				assert.Contains(t, msg, c)
			}
			if tt.closest == nil {
				assert.Contains(t, msg, "closest: none")
			}
		})
	}
}

func TestCatalogKVCache(t *testing.T) {
	tests := []struct {
		id     string
		seqLen int
		perTok float64 // elements per token, all layers, for a sequence shorter than any window
	}{
		{"meta-llama/Llama-3.1-8B-Instruct", 1000, 32 * 2 * 8 * 128},
		{"deepseek-ai/DeepSeek-R1", 1000, 61 * (512 + 64)},
		{"openai/gpt-oss-120b", 100, 36 * 2 * 8 * 64},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			m, err := profile.LookupModel(tt.id)
			require.NoError(t, err)
			assert.InDelta(t, tt.perTok*float64(tt.seqLen), m.KVCacheElems(tt.seqLen), 1e-6)
		})
	}
	// gpt-oss: half the layers keep only the last 128 tokens.
	m, err := profile.LookupModel("openai/gpt-oss-120b")
	require.NoError(t, err)
	assert.Equal(t, 18, m.SlidingLayers)
	assert.InDelta(t, 2*8*64*(18*10000+18*128.0), m.KVCacheElems(10000), 1e-6)
	assert.True(t, strings.HasPrefix(m.HFArch, "GptOss"))
}

// TestLookupCalibrationModels resolves every model of the calibration table the way the estimate
// path does, with the precision the rows were measured at within what the GPU can be told to run.
func TestLookupCalibrationModels(t *testing.T) {
	f, err := os.Open(repo.TestPath(t, "calibration", "serving_measurements_train.csv"))
	require.NoError(t, err)
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	col := slices.Index(recs[0], "model_path")
	require.GreaterOrEqual(t, col, 0)
	seen := map[string]bool{}
	for _, rec := range recs[1:] {
		id := rec[col]
		if seen[id] {
			continue
		}
		seen[id] = true
		m, err := profile.LookupModel(id)
		require.NoError(t, err, id)
		assert.Positive(t, m.Params(), id)
	}
	assert.GreaterOrEqual(t, len(seen), 4)
}

func BenchmarkLookupModel(b *testing.B) {
	for b.Loop() {
		if _, err := profile.LookupModel("nvidia/DeepSeek-R1-0528-FP4-v2"); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzLookupModel(f *testing.F) {
	for _, s := range []string{"Qwen/Qwen3-32B-FP8", "nvidia/DeepSeek-R1-0528-FP4-v2", "/a/b/", "-", "meta-", "x/y/z-0528-fp8"} {
		f.Add(s)
	}
	ids := profile.Models()
	f.Fuzz(func(t *testing.T, id string) {
		m, err := profile.LookupModel(id)
		if err != nil {
			assert.NotContains(t, err.Error(), "\n")
			return
		}
		assert.Contains(t, ids, m.CatalogID)
		assert.Positive(t, m.Params())
	})
}
