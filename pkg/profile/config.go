package profile

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Architecture names (config.json architectures[0]) ParseConfig understands, by family.
var (
	denseArchs = []string{"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
		"Qwen3_5ForCausalLM"}
	moeArchs = []string{"MixtralForCausalLM", "Qwen3MoeForCausalLM", "GptOssForCausalLM", "Glm4MoeForCausalLM",
		"MiniMaxM2ForCausalLM", "Qwen3NextForCausalLM", "Qwen3_5MoeForCausalLM", "Llama4ForCausalLM"}
	mlaMoEArchs = []string{"DeepseekV3ForCausalLM", "DeepseekV2ForCausalLM", "DeepseekV32ForCausalLM", "GlmMoeDsaForCausalLM"}
	// hybridArchs interleave Mamba-2 mixers, attention and FFN blocks as layers of their own; MoE
	// when the pattern has expert blocks.
	hybridArchs = []string{"NemotronHForCausalLM"}
	// dsaArchs add DeepSeek sparse attention (a lightning indexer and top-k attention) to MLA.
	dsaArchs = []string{"DeepseekV32ForCausalLM", "GlmMoeDsaForCausalLM"}
	// textArchs are multimodal wrappers whose language model, in text_config, is costed as the named
	// architecture (the vision encoder runs once per image and is left out).
	textArchs = map[string]string{
		"Qwen3_5ForConditionalGeneration":    "Qwen3_5ForCausalLM",
		"Qwen3_5MoeForConditionalGeneration": "Qwen3_5MoeForCausalLM",
		"KimiK25ForConditionalGeneration":    "DeepseekV3ForCausalLM",
		"Qwen3VLForConditionalGeneration":    "Qwen3ForCausalLM",
		"Qwen3VLMoeForConditionalGeneration": "Qwen3MoeForCausalLM",
		"Llama4ForConditionalGeneration":     "Llama4ForCausalLM",
	}
)

// SupportedArchitectures lists the config.json architectures ParseConfig accepts, sorted.
func SupportedArchitectures() []string {
	out := slices.Concat(denseArchs, moeArchs, mlaMoEArchs, hybridArchs)
	for a := range textArchs {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Upper bounds that reject garbage before it reaches the arithmetic of the performance model
// (the largest published models are well inside them).
const (
	maxDim    = 1 << 20
	maxLayers = 4096
	maxVocab  = 1 << 23
)

// hfConfig is the subset of a Hugging Face config.json that ParseConfig reads. Pointers tell
// "absent" (or null) from zero.
type hfConfig struct {
	Architectures []string `json:"architectures"`
	ModelType     string   `json:"model_type"`

	HiddenSize            *int  `json:"hidden_size"`
	NumHiddenLayers       *int  `json:"num_hidden_layers"`
	NumAttentionHeads     *int  `json:"num_attention_heads"`
	NumKeyValueHeads      *int  `json:"num_key_value_heads"`
	HeadDim               *int  `json:"head_dim"`
	IntermediateSize      *int  `json:"intermediate_size"`
	VocabSize             *int  `json:"vocab_size"`
	TieWordEmbeddings     *bool `json:"tie_word_embeddings"`
	MaxPositionEmbeddings *int  `json:"max_position_embeddings"`

	SlidingWindow    *int     `json:"sliding_window"`
	UseSlidingWindow *bool    `json:"use_sliding_window"`
	MaxWindowLayers  *int     `json:"max_window_layers"`
	LayerTypes       []string `json:"layer_types"`

	TorchDtype string `json:"torch_dtype"`
	Dtype      string `json:"dtype"`

	// MoE: the names differ by family.
	NumLocalExperts     *int  `json:"num_local_experts"` // Mixtral, gpt-oss
	NumExperts          *int  `json:"num_experts"`       // Qwen3-MoE
	NRoutedExperts      *int  `json:"n_routed_experts"`  // DeepSeek, GLM-4.5
	NumExpertsPerTok    *int  `json:"num_experts_per_tok"`
	ExpertsPerToken     *int  `json:"experts_per_token"` // gpt-oss (older configs)
	MoeIntermediateSize *int  `json:"moe_intermediate_size"`
	NSharedExperts      *int  `json:"n_shared_experts"`
	FirstKDenseReplace  *int  `json:"first_k_dense_replace"`
	MlpOnlyLayers       []int `json:"mlp_only_layers"`
	DecoderSparseStep   *int  `json:"decoder_sparse_step"`

	// MLA.
	QLoraRank     *int `json:"q_lora_rank"`
	KVLoraRank    *int `json:"kv_lora_rank"`
	QKNopeHeadDim *int `json:"qk_nope_head_dim"`
	QKRopeHeadDim *int `json:"qk_rope_head_dim"`
	VHeadDim      *int `json:"v_head_dim"`

	// NemotronH: one character per block (M Mamba-2, * attention, E MoE, - MLP), the Mamba-2
	// mixer's shape, the MLP activation, the shared expert's width and the experts' latent.
	HybridOverridePattern           string   `json:"hybrid_override_pattern"`
	LayersBlockType                 []string `json:"layers_block_type"` // newer configs: the pattern spelt out
	AttentionHeadDim                *int     `json:"attention_head_dim"`
	MambaNumHeads                   *int     `json:"mamba_num_heads"`
	MambaHeadDim                    *int     `json:"mamba_head_dim"`
	SSMStateSize                    *int     `json:"ssm_state_size"`
	NGroups                         *int     `json:"n_groups"`
	ConvKernel                      *int     `json:"conv_kernel"`
	MLPHiddenAct                    string   `json:"mlp_hidden_act"`
	MoESharedExpertIntermediateSize *int     `json:"moe_shared_expert_intermediate_size"`
	MoELatentSize                   *int     `json:"moe_latent_size"`

	// Llama 4: the dense layers' MLP width, which layers are MoE, and the chunked local attention of
	// the RoPE layers (no_rope_layers: 1 uses RoPE and the chunk, 0 is global).
	IntermediateSizeMLP    *int  `json:"intermediate_size_mlp"`
	InterleaveMoELayerStep *int  `json:"interleave_moe_layer_step"`
	AttentionChunkSize     *int  `json:"attention_chunk_size"`
	NoRopeLayers           []int `json:"no_rope_layers"`

	// DeepSeek sparse attention.
	IndexNHeads  *int `json:"index_n_heads"`
	IndexHeadDim *int `json:"index_head_dim"`
	IndexTopK    *int `json:"index_topk"`

	// Shared expert given as a width (Qwen3-Next, Qwen3.5) rather than a count.
	SharedExpertIntermediateSize *int `json:"shared_expert_intermediate_size"`

	// Linear attention (Gated DeltaNet: Qwen3-Next, Qwen3.5).
	FullAttentionInterval *int  `json:"full_attention_interval"`
	LinearNumKeyHeads     *int  `json:"linear_num_key_heads"`
	LinearNumValueHeads   *int  `json:"linear_num_value_heads"`
	LinearKeyHeadDim      *int  `json:"linear_key_head_dim"`
	LinearValueHeadDim    *int  `json:"linear_value_head_dim"`
	LinearConvKernelDim   *int  `json:"linear_conv_kernel_dim"`
	AttnOutputGate        *bool `json:"attn_output_gate"`

	// Multi-token prediction modules.
	NumNextnPredictLayers *int `json:"num_nextn_predict_layers"` // DeepSeek, GLM
	MtpNumHiddenLayers    *int `json:"mtp_num_hidden_layers"`    // Qwen3-Next, Qwen3.5

	// TextConfig is the language model of a multimodal wrapper (textArchs).
	TextConfig json.RawMessage `json:"text_config"`

	QuantizationConfig json.RawMessage `json:"quantization_config"`
}

// ParseConfig turns a Hugging Face config.json into a Model. id is recorded as Model.ID. It fails,
// naming the architecture, for architectures the performance model cannot cost and, naming the
// fields, when a supported architecture's config lacks what the model needs.
func ParseConfig(id string, data []byte) (Model, error) {
	return parseConfig(id, data, nil)
}

func parseConfig(id string, data, hfQuant []byte) (Model, error) {
	var c hfConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil {
		return Model{}, fmt.Errorf("parse config.json of %q: %w", id, err)
	}
	if len(c.Architectures) == 0 || c.Architectures[0] == "" {
		return Model{}, fmt.Errorf("config.json of %q has no architectures: expected one of %s",
			id, strings.Join(SupportedArchitectures(), ", "))
	}
	arch := c.Architectures[0]
	m := Model{ID: id, HFArch: arch}
	if text, ok := textArchs[arch]; ok {
		if len(c.TextConfig) == 0 {
			return Model{}, fmt.Errorf("config.json of %q (%s) lacks text_config: expected the language model's config in it", id, arch)
		}
		var tc hfConfig
		if err := json.Unmarshal(c.TextConfig, &tc); err != nil {
			return Model{}, fmt.Errorf("parse text_config of %q: %w", id, err)
		}
		if len(tc.QuantizationConfig) == 0 {
			tc.QuantizationConfig = c.QuantizationConfig
		}
		tc.TorchDtype = cmp.Or(tc.TorchDtype, tc.Dtype, c.TorchDtype, c.Dtype)
		c, arch = tc, text
	}
	switch {
	case slices.Contains(denseArchs, arch):
		m.Arch = ArchDense
	case slices.Contains(moeArchs, arch):
		m.Arch = ArchMoE
	case slices.Contains(mlaMoEArchs, arch):
		m.Arch = ArchMLAMoE
	case slices.Contains(hybridArchs, arch):
		pat, err := blockPattern(c)
		if err != nil {
			return Model{}, fmt.Errorf("config.json of %q (%s): %w", id, arch, err)
		}
		c.HybridOverridePattern = pat
		if c.NumHiddenLayers == nil && pat != "" {
			n := len(pat)
			c.NumHiddenLayers = &n
		}
		m.Arch = ArchDense
		if strings.Contains(pat, "E") {
			m.Arch = ArchMoE
		}
	default:
		return Model{}, fmt.Errorf("unsupported architecture %q in config.json of %q: expected one of %s",
			arch, id, strings.Join(SupportedArchitectures(), ", "))
	}

	var missing []string
	need := func(name string, v *int) int {
		if v == nil {
			missing = append(missing, name)
			return 0
		}
		return *v
	}
	opt := func(v *int, def int) int {
		if v == nil {
			return def
		}
		return *v
	}
	m.Layers = need("num_hidden_layers", c.NumHiddenLayers)
	m.Hidden = need("hidden_size", c.HiddenSize)
	m.Heads = need("num_attention_heads", c.NumAttentionHeads)
	m.Vocab = need("vocab_size", c.VocabSize)
	m.KVHeads = opt(c.NumKeyValueHeads, m.Heads)
	m.MaxContext = opt(c.MaxPositionEmbeddings, 0)
	m.TiedEmbed = c.TieWordEmbeddings != nil && *c.TieWordEmbeddings // false is every supported family's default
	if m.Heads > 0 {
		m.HeadDim = opt(c.HeadDim, m.Hidden/m.Heads)
		if m.HeadDim == 0 { // some configs write head_dim: 0 or null for "derived"
			m.HeadDim = m.Hidden / m.Heads
		}
	}

	switch arch {
	case "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Qwen3_5ForCausalLM":
		m.FFN = need("intermediate_size", c.IntermediateSize)
	case "MixtralForCausalLM", "GptOssForCausalLM", "MiniMaxM2ForCausalLM":
		// The experts are the only MLPs; intermediate_size is their width.
		m.FFN = need("intermediate_size", c.IntermediateSize)
		m.ExpertFFN = m.FFN
		m.Experts = need("num_local_experts", c.NumLocalExperts)
		m.TopK = need("num_experts_per_tok", cmpOr(c.NumExpertsPerTok, c.ExpertsPerToken))
	case "Qwen3MoeForCausalLM":
		m.FFN = need("intermediate_size", c.IntermediateSize)
		m.ExpertFFN = need("moe_intermediate_size", c.MoeIntermediateSize)
		m.Experts = need("num_experts", c.NumExperts)
		m.TopK = need("num_experts_per_tok", c.NumExpertsPerTok)
		step := max(opt(c.DecoderSparseStep, 1), 1)
		for i := range min(max(m.Layers, 0), maxLayers) {
			if slices.Contains(c.MlpOnlyLayers, i) || (i+1)%step != 0 {
				m.DenseLayers++
			}
		}
	case "Llama4ForCausalLM":
		// Every step-th layer is an MoE block of routed experts and one shared expert, all of
		// intermediate_size; the others are dense MLPs of intermediate_size_mlp.
		m.ExpertFFN = need("intermediate_size", c.IntermediateSize)
		m.FFN = opt(c.IntermediateSizeMLP, m.ExpertFFN)
		m.Experts = need("num_local_experts", c.NumLocalExperts)
		m.TopK = need("num_experts_per_tok", c.NumExpertsPerTok)
		m.SharedExperts = 1
		step := max(opt(c.InterleaveMoELayerStep, 1), 1)
		m.DenseLayers = max(m.Layers, 0) - max(m.Layers, 0)/step
	case "Qwen3NextForCausalLM", "Qwen3_5MoeForCausalLM":
		// Every layer is an MoE block with one gated shared expert given by its width.
		m.ExpertFFN = need("moe_intermediate_size", c.MoeIntermediateSize)
		m.Experts = need("num_experts", c.NumExperts)
		m.TopK = need("num_experts_per_tok", c.NumExpertsPerTok)
		m.FFN = opt(c.IntermediateSize, m.ExpertFFN)
		if sh := opt(c.SharedExpertIntermediateSize, 0); sh > 0 && m.ExpertFFN > 0 {
			m.SharedExperts = (sh + m.ExpertFFN - 1) / m.ExpertFFN
		}
	case "Glm4MoeForCausalLM", "DeepseekV3ForCausalLM", "DeepseekV2ForCausalLM", "DeepseekV32ForCausalLM", "GlmMoeDsaForCausalLM":
		m.FFN = need("intermediate_size", c.IntermediateSize)
		m.ExpertFFN = need("moe_intermediate_size", c.MoeIntermediateSize)
		m.Experts = need("n_routed_experts", c.NRoutedExperts)
		m.TopK = need("num_experts_per_tok", c.NumExpertsPerTok)
		m.SharedExperts = opt(c.NSharedExperts, 0)
		m.DenseLayers = opt(c.FirstKDenseReplace, 0)
		if m.Arch == ArchMLAMoE {
			m.QLoraRank = opt(c.QLoraRank, 0) // null: queries are not compressed (V2-Lite)
			m.KVLoraRank = need("kv_lora_rank", c.KVLoraRank)
			m.QKNopeHeadDim = need("qk_nope_head_dim", c.QKNopeHeadDim)
			m.QKRopeHeadDim = need("qk_rope_head_dim", c.QKRopeHeadDim)
			m.VHeadDim = need("v_head_dim", c.VHeadDim)
			m.HeadDim = m.QKNopeHeadDim + m.QKRopeHeadDim
		}
		if slices.Contains(dsaArchs, arch) {
			m.IndexHeads = need("index_n_heads", c.IndexNHeads)
			m.IndexHeadDim = need("index_head_dim", c.IndexHeadDim)
			m.IndexTopK = need("index_topk", c.IndexTopK)
		}
	}
	if arch == "NemotronHForCausalLM" {
		if err := parseNemotronH(&m, c, need, opt); err != nil {
			return Model{}, fmt.Errorf("config.json of %q (%s): %w", id, arch, err)
		}
	}
	if arch == "Qwen3NextForCausalLM" || strings.HasPrefix(arch, "Qwen3_5") {
		m.LinearLayers = linearLayers(c, m.Layers)
		m.LinearKeyHeads = need("linear_num_key_heads", c.LinearNumKeyHeads)
		m.LinearValueHeads = need("linear_num_value_heads", c.LinearNumValueHeads)
		m.LinearKeyDim = need("linear_key_head_dim", c.LinearKeyHeadDim)
		m.LinearValueDim = need("linear_value_head_dim", c.LinearValueHeadDim)
		m.LinearConvKernel = opt(c.LinearConvKernelDim, 4)
		m.AttnGate = c.AttnOutputGate == nil || *c.AttnOutputGate // both families gate by default
	}
	if len(missing) > 0 {
		return Model{}, fmt.Errorf("config.json of %q (%s) lacks %s", id, arch, strings.Join(missing, ", "))
	}

	m.MTPLayers = max(opt(cmpOr(c.NumNextnPredictLayers, c.MtpNumHiddenLayers), 0), 0)
	m.SlidingWindow, m.SlidingLayers = slidingWindow(c, m.Layers)
	if arch == "Llama4ForCausalLM" {
		m.SlidingWindow, m.SlidingLayers = chunkedAttention(c, m.Layers)
	}
	m.Dtype = normalizeDtype(cmp.Or(c.TorchDtype, c.Dtype))

	q, err := parseQuant(c.QuantizationConfig, hfQuant, m.IsMoE())
	if err != nil {
		return Model{}, fmt.Errorf("config.json of %q: %w", id, err)
	}
	m.WeightQuant, m.GEMMQuant, m.MoEQuant, m.KVQuant = q.weight, q.gemm, q.moe, q.kv

	if err := m.validate(); err != nil {
		return Model{}, fmt.Errorf("config.json of %q (%s): %w", id, arch, err)
	}
	return m, nil
}

// parseNemotronH reads NemotronH's block pattern: the Mamba-2 mixers are costed as linear attention
// (n_groups B/C heads of ssm_state_size, mamba_num_heads value heads of mamba_head_dim: the state a
// head keeps), the attention blocks as GQA, and the E and - blocks as FFN layers of their own.
func parseNemotronH(m *Model, c hfConfig, need func(string, *int) int, opt func(*int, int) int) error {
	pat := c.HybridOverridePattern
	if pat == "" {
		need("hybrid_override_pattern (or layers_block_type)", nil) // records it as missing
		return nil
	}
	count := map[rune]int{}
	for _, r := range pat {
		count[r]++
	}
	if c.HeadDim == nil && c.AttentionHeadDim != nil {
		m.HeadDim = *c.AttentionHeadDim
	}
	if m.Layers != len(pat) {
		return fmt.Errorf("hybrid_override_pattern has %d blocks but num_hidden_layers is %d: expected one block per layer", len(pat), m.Layers)
	}
	if count['*'] == 0 || count['E']+count['-'] == 0 {
		return fmt.Errorf("hybrid_override_pattern %q: expected at least one attention (*) and one FFN (E or -) block", pat)
	}
	m.Layers = count['M'] + count['*']
	m.LinearLayers = count['M']
	m.FFNLayers = count['E'] + count['-']
	m.DenseLayers = count['-']
	m.MLPUngated = c.MLPHiddenAct == "relu2"
	if count['-'] > 0 {
		m.FFN = need("intermediate_size", c.IntermediateSize)
	}
	if count['E'] > 0 {
		m.ExpertFFN = need("moe_intermediate_size", c.MoeIntermediateSize)
		m.Experts = need("n_routed_experts", c.NRoutedExperts)
		m.TopK = need("num_experts_per_tok", c.NumExpertsPerTok)
		if sh := opt(c.MoESharedExpertIntermediateSize, 0); sh > 0 && m.ExpertFFN > 0 {
			m.SharedExperts = (sh + m.ExpertFFN - 1) / m.ExpertFFN
		}
		m.MoELatent = opt(c.MoELatentSize, 0)
		m.FFN = opt(c.IntermediateSize, m.ExpertFFN)
	}
	if count['M'] > 0 {
		m.LinearKeyHeads = need("n_groups", c.NGroups)
		m.LinearKeyDim = need("ssm_state_size", c.SSMStateSize)
		m.LinearValueHeads = need("mamba_num_heads", c.MambaNumHeads)
		m.LinearValueDim = need("mamba_head_dim", c.MambaHeadDim)
		m.LinearConvKernel = opt(c.ConvKernel, 4)
	}
	return nil
}

// blockPattern is NemotronH's layer pattern, one character per block: hybrid_override_pattern, or
// layers_block_type spelt as one.
func blockPattern(c hfConfig) (string, error) {
	pat := c.HybridOverridePattern
	if len(c.LayersBlockType) > 0 {
		names := map[string]byte{"mamba": 'M', "attention": '*', "moe": 'E', "mlp": '-'}
		b := make([]byte, 0, len(c.LayersBlockType))
		for _, t := range c.LayersBlockType {
			ch, ok := names[t]
			if !ok {
				return "", fmt.Errorf("layers_block_type has %q: expected mamba, attention, moe or mlp", t)
			}
			b = append(b, ch)
		}
		pat = string(b)
	}
	for _, r := range pat {
		if !strings.ContainsRune("M*E-", r) {
			return "", fmt.Errorf("hybrid_override_pattern has block %q: expected M (Mamba-2), * (attention), E (MoE) or - (MLP)", r)
		}
	}
	return pat, nil
}

// chunkedAttention is Llama 4's local attention: its RoPE layers attend within chunks of
// attention_chunk_size, costed as a window of that size; every fourth layer (or those
// no_rope_layers marks 0) is global.
func chunkedAttention(c hfConfig, layers int) (window, count int) {
	if c.AttentionChunkSize == nil || *c.AttentionChunkSize <= 0 {
		return 0, 0
	}
	if len(c.NoRopeLayers) > 0 {
		for _, r := range c.NoRopeLayers {
			if r != 0 {
				count++
			}
		}
		return *c.AttentionChunkSize, min(count, max(layers, 0))
	}
	return *c.AttentionChunkSize, max(layers, 0) - max(layers, 0)/4
}

// linearLayers counts the linear-attention layers: from layer_types when given, else every layer but
// each full_attention_interval-th (default 4, the published hybrids' 3:1 layout).
func linearLayers(c hfConfig, layers int) int {
	if len(c.LayerTypes) > 0 {
		n := 0
		for _, t := range c.LayerTypes {
			if t == "linear_attention" {
				n++
			}
		}
		return min(n, layers)
	}
	every := 4
	if c.FullAttentionInterval != nil && *c.FullAttentionInterval > 0 {
		every = *c.FullAttentionInterval
	}
	return max(layers, 0) - max(layers, 0)/every
}

// slidingWindow returns the window and how many layers use it. Explicit layer_types (gpt-oss,
// newer Qwen/Mistral configs) win; otherwise Mistral applies sliding_window to every layer and
// Qwen2/3 only with use_sliding_window, to layers from max_window_layers on.
func slidingWindow(c hfConfig, layers int) (window, count int) {
	if c.SlidingWindow == nil || *c.SlidingWindow <= 0 {
		return 0, 0
	}
	window = *c.SlidingWindow
	switch {
	case len(c.LayerTypes) > 0:
		for _, t := range c.LayerTypes {
			if t == "sliding_attention" {
				count++
			}
		}
	case c.UseSlidingWindow != nil:
		if *c.UseSlidingWindow {
			from := 0
			if c.MaxWindowLayers != nil {
				from = min(max(*c.MaxWindowLayers, 0), layers)
			}
			count = layers - from
		}
	case slices.Contains(c.Architectures, "GptOssForCausalLM"):
		count = layers / 2 // alternating sliding/full, sliding first
	case slices.Contains(c.Architectures, "MistralForCausalLM") || slices.Contains(c.Architectures, "MixtralForCausalLM"):
		count = layers
	}
	count = min(count, layers)
	if count == 0 {
		return 0, 0
	}
	return window, count
}

func (m Model) validate() error {
	type dim struct {
		name string
		v    int
		max  int
	}
	dims := []dim{
		{"num_hidden_layers", m.Layers, maxLayers}, {"hidden_size", m.Hidden, maxDim},
		{"num_attention_heads", m.Heads, maxDim}, {"num_key_value_heads", m.KVHeads, maxDim},
		{"head_dim", m.HeadDim, maxDim}, {"vocab_size", m.Vocab, maxVocab},
	}
	if m.DenseLayers > 0 || !m.IsMoE() {
		dims = append(dims, dim{"intermediate_size", m.FFN, maxDim})
	}
	if m.IsMoE() {
		dims = append(dims, dim{"expert count", m.Experts, maxDim}, dim{"experts per token", m.TopK, m.Experts},
			dim{"expert intermediate size", m.ExpertFFN, maxDim})
	}
	if m.LinearLayers > 0 {
		dims = append(dims, dim{"linear_num_key_heads", m.LinearKeyHeads, maxDim},
			dim{"linear_num_value_heads", m.LinearValueHeads, maxDim}, dim{"linear_key_head_dim", m.LinearKeyDim, maxDim},
			dim{"linear_value_head_dim", m.LinearValueDim, maxDim}, dim{"linear_conv_kernel_dim", m.LinearConvKernel, 64})
	}
	if m.IsMLA() {
		dims = append(dims, dim{"kv_lora_rank", m.KVLoraRank, maxDim},
			dim{"qk_rope_head_dim", m.QKRopeHeadDim, maxDim}, dim{"v_head_dim", m.VHeadDim, maxDim})
	}
	if m.IndexHeads > 0 || m.IndexHeadDim > 0 || m.IndexTopK > 0 {
		dims = append(dims, dim{"index_n_heads", m.IndexHeads, maxDim}, dim{"index_head_dim", m.IndexHeadDim, maxDim},
			dim{"index_topk", m.IndexTopK, 1 << 30})
	}
	for _, d := range dims {
		if d.v <= 0 || d.v > d.max {
			return fmt.Errorf("%s is %d: expected 1..%d", d.name, d.v, d.max)
		}
	}
	checks := []struct {
		name   string
		v, max int
	}{
		{"num_key_value_heads", m.KVHeads, m.Heads}, {"first_k_dense_replace", m.DenseLayers, m.ffnLayers()},
		{"n_shared_experts", m.SharedExperts, maxDim}, {"q_lora_rank", m.QLoraRank, maxDim},
		{"qk_nope_head_dim", m.QKNopeHeadDim, maxDim}, {"intermediate_size", m.FFN, maxDim},
		{"max_position_embeddings", m.MaxContext, 1 << 30}, {"linear-attention layers", m.LinearLayers, m.Layers - 1},
	}
	for _, c := range checks {
		if c.v < 0 || c.v > c.max {
			return fmt.Errorf("%s is %d: expected 0..%d", c.name, c.v, c.max)
		}
	}
	if !m.IsMLA() && m.Heads%m.KVHeads != 0 {
		return fmt.Errorf("num_attention_heads %d is not a multiple of num_key_value_heads %d", m.Heads, m.KVHeads)
	}
	if m.IsMLA() && m.QKNopeHeadDim+m.QKRopeHeadDim <= 0 {
		return errors.New("qk_nope_head_dim + qk_rope_head_dim must be positive")
	}
	return nil
}

// normalizeDtype maps torch dtype names to the short names the rest of dgdr uses; a missing or
// "auto" dtype is bf16, what every supported family ships.
func normalizeDtype(s string) string {
	switch strings.ToLower(strings.TrimPrefix(s, "torch.")) {
	case "float16", "fp16", "half":
		return "fp16"
	case "float32", "fp32", "float":
		return "fp32"
	}
	return "bf16"
}

func cmpOr(ps ...*int) *int {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

// LoadConfigFile reads and parses a config.json; the model id is the file's folder name.
func LoadConfigFile(path string) (Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Model{}, fmt.Errorf("read model config: %w", err)
	}
	return ParseConfig(filepath.Base(filepath.Dir(path)), data)
}

// LoadConfigDir parses the config.json of a model folder (a Hugging Face snapshot or the model-cache
// mount), with the ModelOpt hf_quant_config.json beside it when present (it, not config.json, holds
// the quantization of TensorRT Model Optimizer exports). The model id is the folder's name.
func LoadConfigDir(dir string) (Model, error) {
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return Model{}, fmt.Errorf("read model folder: expected a config.json: %w", err)
	}
	hfQuant, err := os.ReadFile(filepath.Join(dir, "hf_quant_config.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Model{}, fmt.Errorf("read model folder: %w", err)
	}
	return parseConfig(filepath.Base(filepath.Clean(dir)), data, hfQuant)
}

// quant is a checkpoint's quantization in Model's vocabulary.
type quant struct{ weight, gemm, moe, kv string }

// hfQuantConfig is the union of the quantization_config shapes of the supported quant methods,
// and of ModelOpt's hf_quant_config.json ({"quantization": {...}}).
type hfQuantConfig struct {
	QuantMethod      string `json:"quant_method"`
	QuantAlgo        string `json:"quant_algo"`          // modelopt
	KVCacheQuantAlgo string `json:"kv_cache_quant_algo"` // modelopt
	WeightBlockSize  []int  `json:"weight_block_size"`   // fp8 (DeepSeek, Qwen FP8)
	Bits             int    `json:"bits"`                // awq, gptq
	LoadIn4bit       bool   `json:"load_in_4bit"`        // bitsandbytes
	LoadIn8bit       bool   `json:"load_in_8bit"`
	Format           string `json:"format"` // compressed-tensors
	ConfigGroups     map[string]struct {
		Weights *ctScheme `json:"weights"`
	} `json:"config_groups"`
	KVCacheScheme       *ctScheme `json:"kv_cache_scheme"`
	ExcludeModules      []string  `json:"exclude_modules"`        // modelopt
	ModulesToNotConvert []string  `json:"modules_to_not_convert"` // mxfp4, fp8
	Ignore              []string  `json:"ignore"`                 // compressed-tensors

	Quantization *hfQuantConfig `json:"quantization"` // hf_quant_config.json
}

// ctScheme is a compressed-tensors quantization scheme.
type ctScheme struct {
	NumBits  int    `json:"num_bits"`
	Type     string `json:"type"` // float | int
	Strategy string `json:"strategy"`
}

// parseQuant reads config.json's quantization_config, or ModelOpt's hf_quant_config.json when
// given (it takes precedence: ModelOpt exports may carry both, the latter being authoritative).
func parseQuant(raw json.RawMessage, hfQuant []byte, moe bool) (quant, error) {
	src := []byte(raw)
	if len(hfQuant) > 0 {
		src = hfQuant
	}
	if len(bytes.TrimSpace(src)) == 0 || bytes.Equal(bytes.TrimSpace(src), []byte("null")) {
		return quant{}, nil
	}
	var qc hfQuantConfig
	if err := json.Unmarshal(src, &qc); err != nil {
		return quant{}, fmt.Errorf("parse quantization config: %w", err)
	}
	if qc.Quantization != nil { // hf_quant_config.json
		inner := *qc.Quantization
		inner.QuantMethod = "modelopt"
		qc = inner
	}
	var q quant
	method := strings.ToLower(qc.QuantMethod)
	switch method {
	case "fp8", "fbgemm_fp8":
		q.weight, q.gemm = "fp8", "fp8"
		if len(qc.WeightBlockSize) > 0 {
			q.gemm = "fp8_block"
		}
	case "mxfp4":
		q.weight, q.gemm = "mxfp4", "mxfp4"
	case "modelopt":
		switch algo := strings.ToUpper(qc.QuantAlgo); algo {
		case "FP8", "FP8_PER_CHANNEL_PER_TOKEN":
			q.weight, q.gemm = "fp8", "fp8"
		case "FP8_BLOCK", "FP8_BLOCKWISE":
			q.weight, q.gemm = "fp8", "fp8_block"
		case "NVFP4":
			q.weight, q.gemm = "nvfp4", "nvfp4"
		case "W4A16_AWQ", "W4A8_AWQ", "INT4_AWQ":
			q.weight, q.gemm = "int4", "int4"
		case "W8A8_SQ_PER_CHANNEL", "INT8_SQ":
			q.weight, q.gemm = "int8", "int8"
		default:
			return quant{}, fmt.Errorf("unsupported modelopt quant_algo %q: expected FP8, FP8_BLOCK, NVFP4, W4A16_AWQ or W8A8_SQ_PER_CHANNEL", qc.QuantAlgo)
		}
		q.kv = kvQuant(strings.ToLower(qc.KVCacheQuantAlgo))
	case "compressed-tensors":
		w, err := compressedTensorsQuant(qc)
		if err != nil {
			return quant{}, err
		}
		q.weight, q.gemm = strings.TrimSuffix(w, "_block"), w
		if s := qc.KVCacheScheme; s != nil && s.Type == "float" && s.NumBits == 8 {
			q.kv = "fp8"
		}
	case "awq", "gptq", "awq_marlin", "gptq_marlin":
		switch qc.Bits {
		case 4, 0: // 4 bits is both methods' default
			q.weight, q.gemm = "int4", "int4"
		case 8:
			q.weight, q.gemm = "int8", "int8"
		default:
			return quant{}, fmt.Errorf("unsupported %s bits %d: expected 4 or 8", method, qc.Bits)
		}
	case "bitsandbytes":
		switch {
		case qc.LoadIn4bit:
			q.weight, q.gemm = "int4", "int4"
		case qc.LoadIn8bit:
			q.weight, q.gemm = "int8", "int8"
		default:
			return quant{}, errors.New("bitsandbytes quantization_config sets neither load_in_4bit nor load_in_8bit")
		}
	default:
		return quant{}, fmt.Errorf("unsupported quantization_config.quant_method %q: expected fp8, mxfp4, modelopt, compressed-tensors, awq, gptq or bitsandbytes", qc.QuantMethod)
	}
	if moe {
		q.moe = q.gemm
		// A checkpoint that leaves attention unquantized (gpt-oss's MXFP4 covers the experts only)
		// computes its non-expert GEMMs in the checkpoint dtype.
		if excludesAttention(slices.Concat(qc.ExcludeModules, qc.ModulesToNotConvert, qc.Ignore)) {
			q.gemm = ""
		}
	}
	return q, nil
}

// compressedTensorsQuant reads the weight scheme of the first config group (llm-compressor writes
// one group for the linear layers).
func compressedTensorsQuant(qc hfQuantConfig) (string, error) {
	names := make([]string, 0, len(qc.ConfigGroups))
	for k := range qc.ConfigGroups {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, n := range names {
		w := qc.ConfigGroups[n].Weights
		if w == nil {
			continue
		}
		switch {
		case w.Type == "float" && w.NumBits == 8:
			if w.Strategy == "block" {
				return "fp8_block", nil
			}
			return "fp8", nil
		case w.Type == "float" && w.NumBits == 4:
			return "nvfp4", nil
		case w.Type == "int" && w.NumBits == 4:
			return "int4", nil
		case w.Type == "int" && w.NumBits == 8:
			return "int8", nil
		}
		return "", fmt.Errorf("unsupported compressed-tensors weight scheme %s%d: expected float8, float4, int4 or int8", w.Type, w.NumBits)
	}
	return "", errors.New("compressed-tensors quantization_config has no config_groups weights scheme")
}

// kvQuant maps a KV cache algorithm name to Model's vocabulary ("" for none).
func kvQuant(algo string) string {
	switch algo {
	case "fp8":
		return "fp8"
	case "nvfp4":
		return "nvfp4"
	}
	return ""
}

// excludesAttention reports whether an exclusion list leaves every layer's attention unquantized
// (patterns such as "model.layers.*.self_attn" or "re:.*self_attn.*").
func excludesAttention(patterns []string) bool {
	for _, p := range patterns {
		if strings.Contains(p, "*") && strings.Contains(p, "attn") {
			return true
		}
	}
	return false
}
