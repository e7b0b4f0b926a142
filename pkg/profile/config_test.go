package profile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// llama8B is a Llama-3.1-8B-Instruct config.json as published, with the fields ParseConfig ignores.
const llama8B = `{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009],
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
}`

// withFields returns base with fields set (nil deletes a field).
func withFields(t testing.TB, base string, fields map[string]any) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(base), &m))
	for k, v := range fields {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want Model
	}{
		{
			name: "llama dense",
			data: []byte(llama8B),
			want: Model{ID: "x", Arch: ArchDense, HFArch: "LlamaForCausalLM", Layers: 32, Hidden: 4096, Heads: 32,
				KVHeads: 8, HeadDim: 128, FFN: 14336, Vocab: 128256, MaxContext: 131072, Dtype: "bf16"},
		},
		{
			name: "mistral v0.1 slides every layer; explicit head_dim wins; dtype key and fp16",
			data: withFields(t, llama8B, map[string]any{"architectures": []string{"MistralForCausalLM"},
				"sliding_window": 4096, "head_dim": 96, "torch_dtype": nil, "dtype": "float16", "tie_word_embeddings": true}),
			want: Model{ID: "x", Arch: ArchDense, HFArch: "MistralForCausalLM", Layers: 32, Hidden: 4096, Heads: 32,
				KVHeads: 8, HeadDim: 96, FFN: 14336, Vocab: 128256, MaxContext: 131072, TiedEmbed: true,
				SlidingWindow: 4096, SlidingLayers: 32, Dtype: "fp16"},
		},
		{
			name: "qwen2 windows only from max_window_layers when use_sliding_window; kv heads default to heads",
			data: withFields(t, llama8B, map[string]any{"architectures": []string{"Qwen2ForCausalLM"},
				"sliding_window": 4096, "use_sliding_window": true, "max_window_layers": 28, "num_key_value_heads": nil}),
			want: Model{ID: "x", Arch: ArchDense, HFArch: "Qwen2ForCausalLM", Layers: 32, Hidden: 4096, Heads: 32,
				KVHeads: 32, HeadDim: 128, FFN: 14336, Vocab: 128256, MaxContext: 131072,
				SlidingWindow: 4096, SlidingLayers: 4, Dtype: "bf16"},
		},
		{
			name: "qwen3 with use_sliding_window false ignores the window; head_dim 0 derives",
			data: withFields(t, llama8B, map[string]any{"architectures": []string{"Qwen3ForCausalLM"},
				"sliding_window": 4096, "use_sliding_window": false, "head_dim": 0}),
			want: Model{ID: "x", Arch: ArchDense, HFArch: "Qwen3ForCausalLM", Layers: 32, Hidden: 4096, Heads: 32,
				KVHeads: 8, HeadDim: 128, FFN: 14336, Vocab: 128256, MaxContext: 131072, Dtype: "bf16"},
		},
		{
			name: "mixtral: experts are the MLP",
			data: withFields(t, llama8B, map[string]any{"architectures": []string{"MixtralForCausalLM"},
				"num_local_experts": 8, "num_experts_per_tok": 2, "sliding_window": nil}),
			want: Model{ID: "x", Arch: ArchMoE, HFArch: "MixtralForCausalLM", Layers: 32, Hidden: 4096, Heads: 32,
				KVHeads: 8, HeadDim: 128, FFN: 14336, Vocab: 128256, MaxContext: 131072, Dtype: "bf16",
				Experts: 8, TopK: 2, ExpertFFN: 14336},
		},
		{
			name: "qwen3-moe with dense layers from mlp_only_layers and decoder_sparse_step",
			data: withFields(t, llama8B, map[string]any{"architectures": []string{"Qwen3MoeForCausalLM"},
				"num_experts": 64, "num_experts_per_tok": 8, "moe_intermediate_size": 768,
				"decoder_sparse_step": 2, "mlp_only_layers": []int{1, 2}}),
			// Layers 0,2,4,… are dense by the step (16), plus layer 1 from mlp_only_layers.
			want: Model{ID: "x", Arch: ArchMoE, HFArch: "Qwen3MoeForCausalLM", Layers: 32, Hidden: 4096, Heads: 32,
				KVHeads: 8, HeadDim: 128, FFN: 14336, Vocab: 128256, MaxContext: 131072, Dtype: "bf16",
				Experts: 64, TopK: 8, ExpertFFN: 768, DenseLayers: 17},
		},
		{
			name: "gpt-oss: layer_types, experts_per_token, mxfp4 experts only",
			data: []byte(`{"architectures":["GptOssForCausalLM"],"hidden_size":2880,"num_hidden_layers":4,
				"num_attention_heads":64,"num_key_value_heads":8,"head_dim":64,"intermediate_size":2880,
				"num_local_experts":32,"experts_per_token":4,"vocab_size":201088,"max_position_embeddings":131072,
				"sliding_window":128,"layer_types":["sliding_attention","full_attention","sliding_attention","full_attention"],
				"quantization_config":{"quant_method":"mxfp4","modules_to_not_convert":["model.layers.*.self_attn",
				"model.layers.*.mlp.router","model.embed_tokens","lm_head"]}}`),
			want: Model{ID: "x", Arch: ArchMoE, HFArch: "GptOssForCausalLM", Layers: 4, Hidden: 2880, Heads: 64,
				KVHeads: 8, HeadDim: 64, FFN: 2880, Vocab: 201088, MaxContext: 131072, Dtype: "bf16",
				Experts: 32, TopK: 4, ExpertFFN: 2880, SlidingWindow: 128, SlidingLayers: 2,
				WeightQuant: "mxfp4", MoEQuant: "mxfp4"},
		},
		{
			name: "gpt-oss without layer_types alternates",
			data: []byte(`{"architectures":["GptOssForCausalLM"],"hidden_size":2880,"num_hidden_layers":24,
				"num_attention_heads":64,"num_key_value_heads":8,"head_dim":64,"intermediate_size":2880,
				"num_local_experts":32,"num_experts_per_tok":4,"vocab_size":201088,"sliding_window":128}`),
			want: Model{ID: "x", Arch: ArchMoE, HFArch: "GptOssForCausalLM", Layers: 24, Hidden: 2880, Heads: 64,
				KVHeads: 8, HeadDim: 64, FFN: 2880, Vocab: 201088, Dtype: "bf16",
				Experts: 32, TopK: 4, ExpertFFN: 2880, SlidingWindow: 128, SlidingLayers: 12},
		},
		{
			name: "deepseek-v3 MLA with block fp8",
			data: []byte(`{"architectures":["DeepseekV3ForCausalLM"],"hidden_size":7168,"num_hidden_layers":61,
				"num_attention_heads":128,"num_key_value_heads":128,"intermediate_size":18432,"moe_intermediate_size":2048,
				"n_routed_experts":256,"n_shared_experts":1,"num_experts_per_tok":8,"first_k_dense_replace":3,
				"q_lora_rank":1536,"kv_lora_rank":512,"qk_nope_head_dim":128,"qk_rope_head_dim":64,"v_head_dim":128,
				"vocab_size":129280,"max_position_embeddings":163840,"torch_dtype":"bfloat16","num_nextn_predict_layers":1,
				"quantization_config":{"activation_scheme":"dynamic","fmt":"e4m3","quant_method":"fp8","weight_block_size":[128,128]}}`),
			want: Model{ID: "x", Arch: ArchMLAMoE, HFArch: "DeepseekV3ForCausalLM", Layers: 61, Hidden: 7168, Heads: 128,
				KVHeads: 128, HeadDim: 192, FFN: 18432, Vocab: 129280, MaxContext: 163840, Dtype: "bf16",
				Experts: 256, TopK: 8, ExpertFFN: 2048, SharedExperts: 1, DenseLayers: 3, MTPLayers: 1,
				QLoraRank: 1536, KVLoraRank: 512, QKNopeHeadDim: 128, QKRopeHeadDim: 64, VHeadDim: 128,
				WeightQuant: "fp8", GEMMQuant: "fp8_block", MoEQuant: "fp8_block"},
		},
		{
			name: "glm-5: MLA with DeepSeek sparse attention",
			data: []byte(`{"architectures":["GlmMoeDsaForCausalLM"],"hidden_size":6144,"num_hidden_layers":78,
				"num_attention_heads":64,"num_key_value_heads":64,"head_dim":64,"intermediate_size":12288,
				"moe_intermediate_size":2048,"n_routed_experts":256,"n_shared_experts":1,"num_experts_per_tok":8,
				"first_k_dense_replace":3,"q_lora_rank":2048,"kv_lora_rank":512,"qk_nope_head_dim":192,
				"qk_rope_head_dim":64,"v_head_dim":256,"index_n_heads":32,"index_head_dim":128,"index_topk":2048,
				"vocab_size":154880,"max_position_embeddings":202752,"dtype":"bfloat16","num_nextn_predict_layers":1}`),
			want: Model{ID: "x", Arch: ArchMLAMoE, HFArch: "GlmMoeDsaForCausalLM", Layers: 78, Hidden: 6144, Heads: 64,
				KVHeads: 64, HeadDim: 256, FFN: 12288, Vocab: 154880, MaxContext: 202752, Dtype: "bf16",
				Experts: 256, TopK: 8, ExpertFFN: 2048, SharedExperts: 1, DenseLayers: 3, MTPLayers: 1,
				QLoraRank: 2048, KVLoraRank: 512, QKNopeHeadDim: 192, QKRopeHeadDim: 64, VHeadDim: 256,
				IndexHeads: 32, IndexHeadDim: 128, IndexTopK: 2048},
		},
		{
			name: "deepseek-v2-lite: null q_lora_rank",
			data: []byte(`{"architectures":["DeepseekV2ForCausalLM"],"hidden_size":2048,"num_hidden_layers":27,
				"num_attention_heads":16,"num_key_value_heads":16,"intermediate_size":10944,"moe_intermediate_size":1408,
				"n_routed_experts":64,"n_shared_experts":2,"num_experts_per_tok":6,"first_k_dense_replace":1,
				"q_lora_rank":null,"kv_lora_rank":512,"qk_nope_head_dim":128,"qk_rope_head_dim":64,"v_head_dim":128,
				"vocab_size":102400,"max_position_embeddings":163840}`),
			want: Model{ID: "x", Arch: ArchMLAMoE, HFArch: "DeepseekV2ForCausalLM", Layers: 27, Hidden: 2048, Heads: 16,
				KVHeads: 16, HeadDim: 192, FFN: 10944, Vocab: 102400, MaxContext: 163840, Dtype: "bf16",
				Experts: 64, TopK: 6, ExpertFFN: 1408, SharedExperts: 2, DenseLayers: 1,
				KVLoraRank: 512, QKNopeHeadDim: 128, QKRopeHeadDim: 64, VHeadDim: 128},
		},
		{
			name: "minimax-m2: experts are the MLP, block fp8",
			data: []byte(`{"architectures":["MiniMaxM2ForCausalLM"],"hidden_size":3072,"intermediate_size":1536,
				"num_hidden_layers":62,"num_attention_heads":48,"num_key_value_heads":8,"head_dim":128,
				"num_local_experts":256,"num_experts_per_tok":8,"vocab_size":200064,"max_position_embeddings":196608,
				"quantization_config":{"quant_method":"fp8","weight_block_size":[128,128]}}`),
			want: Model{ID: "x", Arch: ArchMoE, HFArch: "MiniMaxM2ForCausalLM", Layers: 62, Hidden: 3072, Heads: 48,
				KVHeads: 8, HeadDim: 128, FFN: 1536, Vocab: 200064, MaxContext: 196608, Dtype: "bf16",
				Experts: 256, TopK: 8, ExpertFFN: 1536, WeightQuant: "fp8", GEMMQuant: "fp8_block", MoEQuant: "fp8_block"},
		},
		{
			name: "qwen3.5 moe: multimodal wrapper, hybrid linear attention by interval, gated shared expert",
			data: []byte(`{"architectures":["Qwen3_5MoeForConditionalGeneration"],"model_type":"qwen3_5_moe",
				"text_config":{"hidden_size":4096,"num_hidden_layers":60,"num_attention_heads":32,"num_key_value_heads":2,
				"head_dim":256,"full_attention_interval":4,"linear_num_key_heads":16,"linear_num_value_heads":64,
				"linear_key_head_dim":128,"linear_value_head_dim":128,"linear_conv_kernel_dim":4,"num_experts":512,
				"num_experts_per_tok":10,"moe_intermediate_size":1024,"shared_expert_intermediate_size":1024,
				"vocab_size":248320,"max_position_embeddings":262144,"dtype":"bfloat16"}}`),
			want: Model{ID: "x", Arch: ArchMoE, HFArch: "Qwen3_5MoeForConditionalGeneration", Layers: 60, Hidden: 4096,
				Heads: 32, KVHeads: 2, HeadDim: 256, FFN: 1024, Vocab: 248320, MaxContext: 262144, Dtype: "bf16",
				Experts: 512, TopK: 10, ExpertFFN: 1024, SharedExperts: 1,
				LinearLayers: 45, LinearKeyHeads: 16, LinearValueHeads: 64, LinearKeyDim: 128, LinearValueDim: 128,
				LinearConvKernel: 4, AttnGate: true},
		},
		{
			name: "nemotron-h: the pattern's mixers are the layers; Mamba-2 as linear attention; relu² latent MoE",
			data: []byte(`{"architectures":["NemotronHForCausalLM"],"hidden_size":4096,"num_hidden_layers":7,
				"hybrid_override_pattern":"MEM*E-E","num_attention_heads":32,"num_key_value_heads":2,"head_dim":128,
				"intermediate_size":2688,"moe_intermediate_size":2688,"moe_latent_size":1024,
				"moe_shared_expert_intermediate_size":5376,"n_routed_experts":512,"n_shared_experts":1,
				"num_experts_per_tok":22,"mlp_hidden_act":"relu2","mamba_num_heads":128,"mamba_head_dim":64,
				"n_groups":8,"ssm_state_size":128,"conv_kernel":4,"vocab_size":131072,"num_nextn_predict_layers":1}`),
			want: Model{ID: "x", Arch: ArchMoE, HFArch: "NemotronHForCausalLM", Layers: 3, Hidden: 4096, Heads: 32,
				KVHeads: 2, HeadDim: 128, FFN: 2688, Vocab: 131072, Dtype: "bf16",
				Experts: 512, TopK: 22, ExpertFFN: 2688, SharedExperts: 2, DenseLayers: 1, FFNLayers: 4,
				MLPUngated: true, MoELatent: 1024, MTPLayers: 1,
				LinearLayers: 2, LinearKeyHeads: 8, LinearValueHeads: 128, LinearKeyDim: 128, LinearValueDim: 64,
				LinearConvKernel: 4},
		},
		{
			name: "nemotron-h: layers_block_type spells the pattern; no num_hidden_layers; attention_head_dim",
			data: []byte(`{"architectures":["NemotronHForCausalLM"],"hidden_size":8192,
				"layers_block_type":["mamba","mlp","attention","mlp"],"num_attention_heads":64,"num_key_value_heads":8,
				"attention_head_dim":128,"intermediate_size":32768,"mlp_hidden_act":"relu2","mamba_num_heads":256,
				"mamba_head_dim":64,"n_groups":8,"ssm_state_size":256,"vocab_size":131072}`),
			want: Model{ID: "x", Arch: ArchDense, HFArch: "NemotronHForCausalLM", Layers: 2, Hidden: 8192, Heads: 64,
				KVHeads: 8, HeadDim: 128, FFN: 32768, Vocab: 131072, Dtype: "bf16", DenseLayers: 2, FFNLayers: 2,
				MLPUngated: true, LinearLayers: 1, LinearKeyHeads: 8, LinearValueHeads: 256, LinearKeyDim: 256,
				LinearValueDim: 64, LinearConvKernel: 4},
		},
		{
			name: "llama-4: interleaved MoE with a shared expert; chunked attention on the RoPE layers",
			data: []byte(`{"architectures":["Llama4ForConditionalGeneration"],"text_config":{"hidden_size":5120,
				"num_hidden_layers":8,"num_attention_heads":40,"num_key_value_heads":8,"head_dim":128,
				"intermediate_size":8192,"intermediate_size_mlp":16384,"num_local_experts":128,"num_experts_per_tok":1,
				"interleave_moe_layer_step":2,"attention_chunk_size":8192,"vocab_size":202048,"torch_dtype":"bfloat16"}}`),
			want: Model{ID: "x", Arch: ArchMoE, HFArch: "Llama4ForConditionalGeneration", Layers: 8, Hidden: 5120,
				Heads: 40, KVHeads: 8, HeadDim: 128, FFN: 16384, Vocab: 202048, Dtype: "bf16",
				Experts: 128, TopK: 1, ExpertFFN: 8192, SharedExperts: 1, DenseLayers: 4,
				SlidingWindow: 8192, SlidingLayers: 6},
		},
		{
			name: "qwen3-vl: the text_config is a Qwen3 decoder, tied through the wrapper",
			data: []byte(`{"architectures":["Qwen3VLForConditionalGeneration"],"tie_word_embeddings":true,
				"text_config":{"hidden_size":2048,"num_hidden_layers":28,"num_attention_heads":16,"num_key_value_heads":8,
				"head_dim":128,"intermediate_size":6144,"vocab_size":151936,"max_position_embeddings":262144,
				"tie_word_embeddings":true,"dtype":"bfloat16"}}`),
			want: Model{ID: "x", Arch: ArchDense, HFArch: "Qwen3VLForConditionalGeneration", Layers: 28, Hidden: 2048,
				Heads: 16, KVHeads: 8, HeadDim: 128, FFN: 6144, Vocab: 151936, MaxContext: 262144, TiedEmbed: true,
				Dtype: "bf16"},
		},
		{
			name: "qwen3-next: layer_types win over the interval; the wrapper's quantization reaches the text model",
			data: []byte(`{"architectures":["Qwen3NextForCausalLM"],"hidden_size":2048,"intermediate_size":5120,
				"num_hidden_layers":4,"num_attention_heads":16,"num_key_value_heads":2,"head_dim":256,
				"layer_types":["linear_attention","full_attention","linear_attention","full_attention"],
				"linear_num_key_heads":16,"linear_num_value_heads":32,"linear_key_head_dim":128,"linear_value_head_dim":128,
				"num_experts":512,"num_experts_per_tok":10,"moe_intermediate_size":512,"shared_expert_intermediate_size":512,
				"vocab_size":151936,"attn_output_gate":false}`),
			want: Model{ID: "x", Arch: ArchMoE, HFArch: "Qwen3NextForCausalLM", Layers: 4, Hidden: 2048,
				Heads: 16, KVHeads: 2, HeadDim: 256, FFN: 5120, Vocab: 151936, Dtype: "bf16",
				Experts: 512, TopK: 10, ExpertFFN: 512, SharedExperts: 1,
				LinearLayers: 2, LinearKeyHeads: 16, LinearValueHeads: 32, LinearKeyDim: 128, LinearValueDim: 128,
				LinearConvKernel: 4},
		},
		{
			name: "kimi-k2.5: the text_config is a DeepSeek-V3 decoder; top-level int4 experts, attention left bf16",
			data: []byte(`{"architectures":["KimiK25ForConditionalGeneration"],
				"text_config":{"hidden_size":7168,"num_hidden_layers":61,"num_attention_heads":64,"num_key_value_heads":64,
				"intermediate_size":18432,"moe_intermediate_size":2048,"n_routed_experts":384,"n_shared_experts":1,
				"num_experts_per_tok":8,"first_k_dense_replace":1,"q_lora_rank":1536,"kv_lora_rank":512,
				"qk_nope_head_dim":128,"qk_rope_head_dim":64,"v_head_dim":128,"vocab_size":163840},
				"quantization_config":{"quant_method":"compressed-tensors","config_groups":{"group_0":{"weights":
				{"num_bits":4,"type":"int","strategy":"group"}}},"ignore":["lm_head","re:.*self_attn.*"]}}`),
			want: Model{ID: "x", Arch: ArchMLAMoE, HFArch: "KimiK25ForConditionalGeneration", Layers: 61, Hidden: 7168,
				Heads: 64, KVHeads: 64, HeadDim: 192, FFN: 18432, Vocab: 163840, Dtype: "bf16",
				Experts: 384, TopK: 8, ExpertFFN: 2048, SharedExperts: 1, DenseLayers: 1,
				QLoraRank: 1536, KVLoraRank: 512, QKNopeHeadDim: 128, QKRopeHeadDim: 64, VHeadDim: 128,
				WeightQuant: "int4", MoEQuant: "int4"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseConfig("x", tt.data)
			require.NoError(t, err)
			assert.Equal(t, tt.want, m)
		})
	}
}

func TestParseConfigQuant(t *testing.T) {
	moe := map[string]any{"architectures": []string{"MixtralForCausalLM"}, "num_local_experts": 8, "num_experts_per_tok": 2}
	tests := []struct {
		name          string
		qc            string
		moe           bool
		w, gemm, mExp string
		kv            string
	}{
		{"none", `null`, false, "", "", "", ""},
		{"fp8 per tensor", `{"quant_method":"fp8","activation_scheme":"static"}`, false, "fp8", "fp8", "", ""},
		{"fp8 block on MoE", `{"quant_method":"fp8","weight_block_size":[128,128]}`, true, "fp8", "fp8_block", "fp8_block", ""},
		{"modelopt FP8 with fp8 KV", `{"quant_method":"modelopt","quant_algo":"FP8","kv_cache_quant_algo":"FP8"}`, false, "fp8", "fp8", "", "fp8"},
		{"modelopt NVFP4 on MoE", `{"quant_method":"modelopt","quant_algo":"NVFP4"}`, true, "nvfp4", "nvfp4", "nvfp4", ""},
		{"compressed-tensors fp8 dynamic", `{"quant_method":"compressed-tensors","format":"float-quantized",
			"config_groups":{"group_0":{"targets":["Linear"],"weights":{"num_bits":8,"type":"float","strategy":"channel"},
			"input_activations":{"num_bits":8,"type":"float","dynamic":true}}},"ignore":["lm_head"]}`, false, "fp8", "fp8", "", ""},
		{"compressed-tensors fp8 block with KV", `{"quant_method":"compressed-tensors",
			"config_groups":{"group_0":{"weights":{"num_bits":8,"type":"float","strategy":"block"}}},
			"kv_cache_scheme":{"num_bits":8,"type":"float"}}`, false, "fp8", "fp8_block", "", "fp8"},
		{"compressed-tensors nvfp4", `{"quant_method":"compressed-tensors","format":"nvfp4-pack-quantized",
			"config_groups":{"group_0":{"weights":{"num_bits":4,"type":"float","strategy":"tensor_group","group_size":16}}}}`, false, "nvfp4", "nvfp4", "", ""},
		{"compressed-tensors w4a16", `{"quant_method":"compressed-tensors","format":"pack-quantized",
			"config_groups":{"group_0":{"weights":{"num_bits":4,"type":"int","strategy":"group","group_size":128}}}}`, false, "int4", "int4", "", ""},
		{"awq", `{"quant_method":"awq","bits":4,"group_size":128,"version":"gemm","zero_point":true}`, false, "int4", "int4", "", ""},
		{"gptq int8", `{"quant_method":"gptq","bits":8}`, false, "int8", "int8", "", ""},
		{"bitsandbytes 4-bit", `{"quant_method":"bitsandbytes","load_in_4bit":true}`, false, "int4", "int4", "", ""},
		{"mxfp4 experts only", `{"quant_method":"mxfp4","modules_to_not_convert":["model.layers.*.self_attn"]}`, true, "mxfp4", "", "mxfp4", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := map[string]any{"quantization_config": json.RawMessage(tt.qc)}
			if tt.moe {
				for k, v := range moe {
					fields[k] = v
				}
			}
			m, err := ParseConfig("x", withFields(t, llama8B, fields))
			require.NoError(t, err)
			assert.Equal(t, tt.w, m.WeightQuant)
			assert.Equal(t, tt.gemm, m.GEMMQuant)
			assert.Equal(t, tt.mExp, m.MoEQuant)
			assert.Equal(t, tt.kv, m.KVQuant)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want []string // substrings of the one-line error
	}{
		{"not json", []byte(`{"architectures":`), []string{`"x"`}},
		{"no architectures", withFields(t, llama8B, map[string]any{"architectures": nil}),
			[]string{"no architectures", "LlamaForCausalLM"}},
		{"unsupported architecture", withFields(t, llama8B, map[string]any{"architectures": []string{"Gemma3ForCausalLM"}}),
			[]string{`unsupported architecture "Gemma3ForCausalLM"`, "DeepseekV3ForCausalLM"}},
		{"missing fields named", withFields(t, llama8B, map[string]any{"hidden_size": nil, "vocab_size": nil}),
			[]string{"LlamaForCausalLM", "lacks", "hidden_size", "vocab_size"}},
		{"missing MoE fields named", withFields(t, llama8B, map[string]any{"architectures": []string{"DeepseekV3ForCausalLM"}}),
			[]string{"DeepseekV3ForCausalLM", "moe_intermediate_size", "n_routed_experts", "kv_lora_rank", "v_head_dim"}},
		{"sparse attention without its indexer", withFields(t, llama8B, map[string]any{"architectures": []string{"DeepseekV32ForCausalLM"}}),
			[]string{"DeepseekV32ForCausalLM", "index_n_heads", "index_head_dim", "index_topk"}},
		{"nemotron-h without its pattern", []byte(`{"architectures":["NemotronHForCausalLM"],"hidden_size":4096,
			"num_hidden_layers":4,"num_attention_heads":32,"vocab_size":131072}`), []string{"NemotronHForCausalLM", "hybrid_override_pattern"}},
		{"nemotron-h pattern of another length", []byte(`{"architectures":["NemotronHForCausalLM"],"hidden_size":4096,
			"num_hidden_layers":4,"hybrid_override_pattern":"M*-","num_attention_heads":32,"vocab_size":131072,"intermediate_size":8,
			"mamba_num_heads":8,"mamba_head_dim":8,"n_groups":1,"ssm_state_size":8}`), []string{"3 blocks", "num_hidden_layers is 4"}},
		{"nemotron-h unknown block", []byte(`{"architectures":["NemotronHForCausalLM"],"hybrid_override_pattern":"M*X"}`),
			[]string{`block 'X'`, "M (Mamba-2)"}},
		{"multimodal wrapper without text_config", []byte(`{"architectures":["Qwen3_5MoeForConditionalGeneration"]}`),
			[]string{"Qwen3_5MoeForConditionalGeneration", "lacks text_config"}},
		{"hybrid without linear-attention heads", []byte(`{"architectures":["Qwen3NextForCausalLM"],"hidden_size":2048,
			"num_hidden_layers":48,"num_attention_heads":16,"vocab_size":151936,"num_experts":512,"num_experts_per_tok":10,
			"moe_intermediate_size":512}`), []string{"linear_num_key_heads", "linear_value_head_dim"}},
		{"negative dimension", withFields(t, llama8B, map[string]any{"num_hidden_layers": -1}), []string{"num_hidden_layers is -1"}},
		{"heads not a multiple of kv heads", withFields(t, llama8B, map[string]any{"num_key_value_heads": 5}),
			[]string{"not a multiple"}},
		{"more experts per token than experts", withFields(t, llama8B, map[string]any{
			"architectures": []string{"MixtralForCausalLM"}, "num_local_experts": 2, "num_experts_per_tok": 4}),
			[]string{"experts per token is 4"}},
		{"fractional dimension", withFields(t, llama8B, map[string]any{"hidden_size": 4096.5}), []string{"hidden_size"}},
		{"unknown quant method", withFields(t, llama8B, map[string]any{"quantization_config": map[string]any{"quant_method": "hqq"}}),
			[]string{`quant_method "hqq"`, "modelopt"}},
		{"unknown modelopt algo", withFields(t, llama8B, map[string]any{"quantization_config": map[string]any{
			"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION"}}), []string{"MIXED_PRECISION"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("x", tt.data)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "\n")
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestLoadConfigDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Llama-3.1-8B-Instruct-FP8")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(llama8B), 0o644))

	m, err := LoadConfigDir(dir)
	require.NoError(t, err)
	assert.Equal(t, "Llama-3.1-8B-Instruct-FP8", m.ID)
	assert.Empty(t, m.WeightQuant, "config.json alone says bf16")

	// A ModelOpt export keeps its quantization in hf_quant_config.json.
	hfq := `{"producer":{"name":"modelopt","version":"0.19.0"},
	  "quantization":{"quant_algo":"FP8","kv_cache_quant_algo":"FP8","exclude_modules":["lm_head"]}}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hf_quant_config.json"), []byte(hfq), 0o644))
	m, err = LoadConfigDir(dir)
	require.NoError(t, err)
	assert.Equal(t, "fp8", m.WeightQuant)
	assert.Equal(t, "fp8", m.KVQuant)

	m, err = LoadConfigFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	assert.Equal(t, "Llama-3.1-8B-Instruct-FP8", m.ID)
	assert.Equal(t, 32, m.Layers)

	_, err = LoadConfigDir(t.TempDir())
	require.ErrorContains(t, err, "expected a config.json")
	_, err = LoadConfigFile(filepath.Join(t.TempDir(), "missing.json"))
	require.Error(t, err)
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(llama8B))
	entries, err := modelFiles.ReadDir("models")
	require.NoError(f, err)
	for _, e := range entries {
		data, err := modelFiles.ReadFile("models/" + e.Name())
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte(`{"architectures":["DeepseekV3ForCausalLM"],"hidden_size":1,"num_hidden_layers":1,"num_attention_heads":1,
		"intermediate_size":1,"moe_intermediate_size":1,"n_routed_experts":1,"num_experts_per_tok":1,"kv_lora_rank":1,
		"qk_nope_head_dim":0,"qk_rope_head_dim":1,"v_head_dim":1,"vocab_size":1}`))
	f.Add([]byte(`{"architectures":["NemotronHForCausalLM"],"hidden_size":8,"hybrid_override_pattern":"M*E-",
		"num_attention_heads":2,"intermediate_size":8,"moe_intermediate_size":4,"n_routed_experts":4,"num_experts_per_tok":2,
		"mamba_num_heads":2,"mamba_head_dim":4,"n_groups":1,"ssm_state_size":4,"vocab_size":16}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseConfig("fuzz", data)
		if err != nil {
			return
		}
		for name, v := range map[string]int{"layers": m.Layers, "hidden": m.Hidden, "heads": m.Heads,
			"kvHeads": m.KVHeads, "headDim": m.HeadDim, "vocab": m.Vocab} {
			assert.Positive(t, v, name)
		}
		if m.IsMoE() {
			assert.Positive(t, m.ExpertFFN)
			assert.Positive(t, m.TopK)
			assert.LessOrEqual(t, m.TopK, m.Experts)
			assert.LessOrEqual(t, m.DenseLayers, m.ffnLayers())
		} else {
			assert.Positive(t, m.FFN)
		}
		assert.LessOrEqual(t, m.SlidingLayers, m.Layers)
		assert.Positive(t, m.Params())
		assert.Positive(t, m.ActiveParams())
		assert.LessOrEqual(t, m.ActiveParams(), m.Params()+float64(m.Vocab)*float64(m.Hidden))
		assert.Positive(t, m.KVCacheElems(1))
		assert.Contains(t, []string{"bf16", "fp16", "fp32"}, m.Dtype)
	})
}
