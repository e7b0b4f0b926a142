package profile

// Architecture families the performance model knows how to cost.
const (
	ArchDense  = "dense"   // Llama, Mistral, Qwen2/Qwen3 dense
	ArchMoE    = "moe"     // Mixtral, Qwen3-MoE, gpt-oss
	ArchMLAMoE = "mla-moe" // DeepSeek-V3/R1: multi-head latent attention + MoE
)

// Model is what the performance model needs to know about a transformer, parsed from a Hugging Face
// config.json (see ParseConfig) or taken from the embedded catalog.
type Model struct {
	// ID is the Hugging Face id (org/name).
	ID string `json:"id"`
	// Arch is ArchDense, ArchMoE or ArchMLAMoE; HFArch is config.json's architectures[0].
	Arch   string `json:"arch"`
	HFArch string `json:"hfArch"`

	Layers     int  `json:"layers"`
	Hidden     int  `json:"hidden"`
	Heads      int  `json:"heads"`
	KVHeads    int  `json:"kvHeads"`
	HeadDim    int  `json:"headDim"`
	FFN        int  `json:"ffn"` // dense MLP intermediate size (dense layers of MoE models too)
	Vocab      int  `json:"vocab"`
	TiedEmbed  bool `json:"tiedEmbeddings"`
	MaxContext int  `json:"maxContext"`

	// MoE: Experts routed experts of ExpertFFN each, TopK active per token, SharedExperts always active;
	// DenseLayers is the number of leading layers with a dense MLP (DeepSeek's first_k_dense_replace).
	Experts       int `json:"experts,omitempty"`
	TopK          int `json:"topK,omitempty"`
	ExpertFFN     int `json:"expertFFN,omitempty"`
	SharedExperts int `json:"sharedExperts,omitempty"`
	DenseLayers   int `json:"denseLayers,omitempty"`

	// MLA (DeepSeek): low-rank query and KV compression, and the split head dims.
	QLoraRank     int `json:"qLoraRank,omitempty"`
	KVLoraRank    int `json:"kvLoraRank,omitempty"`
	QKNopeHeadDim int `json:"qkNopeHeadDim,omitempty"`
	QKRopeHeadDim int `json:"qkRopeHeadDim,omitempty"`
	VHeadDim      int `json:"vHeadDim,omitempty"`

	// SlidingWindow is the attention window of windowed layers (0: none); SlidingLayers how many layers use it.
	SlidingWindow int `json:"slidingWindow,omitempty"`
	SlidingLayers int `json:"slidingLayers,omitempty"`

	// Dtype is the checkpoint's compute dtype (bf16, fp16); WeightQuant the weight quantization
	// from quantization_config ("" for none, fp8, mxfp4, nvfp4, …).
	Dtype       string `json:"dtype"`
	WeightQuant string `json:"weightQuant,omitempty"`
}
