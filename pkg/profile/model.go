package profile

import "fmt"

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
	// FFNLayers is the number of FFN blocks (dense MLP or MoE) where they are layers of their own
	// (NemotronH's hybrid pattern: Layers then counts the mixers, attention and Mamba); 0 when every
	// layer pairs its mixer with one. DenseLayers counts among them.
	FFNLayers int `json:"ffnLayers,omitempty"`
	// MLPUngated: MLPs and experts are up·act·down (NemotronH's relu²), not gated (SwiGLU).
	MLPUngated bool `json:"mlpUngated,omitempty"`
	// MoELatent is the width routed experts work in where tokens are projected down to it before
	// dispatch and back after (NemotronH's LatentMoE); 0 when the experts take the hidden state.
	MoELatent int `json:"moeLatent,omitempty"`

	// MLA (DeepSeek): low-rank query and KV compression, and the split head dims.
	QLoraRank     int `json:"qLoraRank,omitempty"`
	KVLoraRank    int `json:"kvLoraRank,omitempty"`
	QKNopeHeadDim int `json:"qkNopeHeadDim,omitempty"`
	QKRopeHeadDim int `json:"qkRopeHeadDim,omitempty"`
	VHeadDim      int `json:"vHeadDim,omitempty"`

	// DeepSeek sparse attention (DeepSeek-V3.2, GLM-5): a lightning indexer of IndexHeads heads of
	// IndexHeadDim scores every cached token (fp8 keys, one per token and layer) and the MLA core
	// attends to the IndexTopK best. 0: dense attention.
	IndexHeads   int `json:"indexHeads,omitempty"`
	IndexHeadDim int `json:"indexHeadDim,omitempty"`
	IndexTopK    int `json:"indexTopK,omitempty"`

	// SlidingWindow is the attention window of windowed layers (0: none); SlidingLayers how many layers use it.
	SlidingWindow int `json:"slidingWindow,omitempty"`
	SlidingLayers int `json:"slidingLayers,omitempty"`

	// Linear attention (Qwen3-Next, Qwen3.5: Gated DeltaNet): LinearLayers of the Layers replace softmax
	// attention by a recurrence over a fixed per-sequence state (LinearValueHeads matrices of
	// LinearKeyDim × LinearValueDim, after a causal convolution of LinearConvKernel taps); they keep no
	// KV cache. AttnGate: the softmax layers' query projection also emits an output gate.
	// MTPLayers is the number of multi-token-prediction modules the checkpoint ships (DeepSeek-V3's
	// num_nextn_predict_layers, Qwen3.5's mtp_num_hidden_layers), usable as speculative-decoding drafters.
	MTPLayers int `json:"mtpLayers,omitempty"`

	LinearLayers     int  `json:"linearLayers,omitempty"`
	LinearKeyHeads   int  `json:"linearKeyHeads,omitempty"`
	LinearValueHeads int  `json:"linearValueHeads,omitempty"`
	LinearKeyDim     int  `json:"linearKeyDim,omitempty"`
	LinearValueDim   int  `json:"linearValueDim,omitempty"`
	LinearConvKernel int  `json:"linearConvKernel,omitempty"`
	AttnGate         bool `json:"attnGate,omitempty"`

	// Dtype is the checkpoint's compute dtype (bf16, fp16); WeightQuant the weight quantization
	// from quantization_config ("" for none, fp8, mxfp4, nvfp4, …).
	Dtype       string `json:"dtype"`
	WeightQuant string `json:"weightQuant,omitempty"`
	// GEMMQuant and MoEQuant are the quantization of the non-expert linear layers (attention,
	// dense MLP) and of the routed experts, in the calibration table's gemm_quant_mode /
	// moe_quant_mode vocabulary: "" (unquantized, Dtype), fp8 (per-tensor/channel), fp8_block
	// (128×128 block scales, DeepSeek/Qwen FP8), nvfp4, mxfp4, int4 (AWQ/GPTQ/w4a16), int8.
	// They differ when a checkpoint leaves some layers unquantized (gpt-oss: MXFP4 experts, BF16
	// attention). KVQuant is the KV cache format a checkpoint prescribes ("" for Dtype, fp8, nvfp4).
	GEMMQuant string `json:"gemmQuant,omitempty"`
	MoEQuant  string `json:"moeQuant,omitempty"`
	KVQuant   string `json:"kvQuant,omitempty"`

	// CatalogID is the embedded catalog entry LookupModel resolved ID to ("" when parsed from a
	// config.json).
	CatalogID string `json:"catalogID,omitempty"`
}

// IsMoE reports whether the model has routed experts.
func (m Model) IsMoE() bool { return m.Experts > 0 }

// ArchKey names the model's architecture by its shape (layers, hidden size, experts): re-uploads and
// quantizations of one model share it. It is the unit calibration rows are grouped and left out by.
func (m Model) ArchKey() string { return fmt.Sprintf("L%d-H%d-E%d", m.Layers, m.Hidden, m.Experts) }

// IsMLA reports whether attention is DeepSeek's multi-head latent attention.
func (m Model) IsMLA() bool { return m.KVLoraRank > 0 }

// ffnLayers is the number of FFN blocks, dense and MoE.
func (m Model) ffnLayers() int {
	if m.FFNLayers > 0 {
		return m.FFNLayers
	}
	return m.Layers
}

// MoELayers is the number of FFN blocks that are routed-expert blocks.
func (m Model) MoELayers() int {
	if !m.IsMoE() {
		return 0
	}
	return m.ffnLayers() - m.DenseLayers
}

// mlpMats is the weight matrices of one MLP or expert: gate, up and down, or up and down.
func (m Model) mlpMats() float64 {
	if m.MLPUngated {
		return 2
	}
	return 3
}

// expertIn is the width routed experts take: the latent where there is one, else the hidden state.
func (m Model) expertIn() float64 {
	if m.MoELatent > 0 {
		return float64(m.MoELatent)
	}
	return float64(m.Hidden)
}

// LinearAttnParams is the weight count of one linear-attention layer's projections: q, k, v and the
// output gate z, the decay and update gates (a, b), the convolution and the output.
func (m Model) LinearAttnParams() float64 {
	h := float64(m.Hidden)
	qk := 2 * float64(m.LinearKeyHeads*m.LinearKeyDim)
	v := float64(m.LinearValueHeads * m.LinearValueDim)
	conv := (qk + v) * float64(m.LinearConvKernel)
	return h*(qk+2*v+2*float64(m.LinearValueHeads)) + conv + v*h
}

// attnParamsAll is the attention weights of all layers, softmax and linear.
func (m Model) attnParamsAll() float64 {
	return float64(m.Layers-m.LinearLayers)*m.AttnParams() + float64(m.LinearLayers)*m.LinearAttnParams()
}

// AttnParams is the weight count of one softmax-attention layer's projections (biases and norms left out).
func (m Model) AttnParams() float64 {
	h := float64(m.Hidden)
	if m.IsMLA() {
		heads := float64(m.Heads)
		qk := float64(m.QKNopeHeadDim + m.QKRopeHeadDim)
		q := h * heads * qk // no query compression (DeepSeek-V2-Lite)
		if m.QLoraRank > 0 {
			q = h*float64(m.QLoraRank) + float64(m.QLoraRank)*heads*qk
		}
		kv := h*float64(m.KVLoraRank+m.QKRopeHeadDim) +
			float64(m.KVLoraRank)*heads*float64(m.QKNopeHeadDim+m.VHeadDim)
		o := heads * float64(m.VHeadDim) * h
		return q + kv + o + m.indexerParams()
	}
	q := h * float64(m.Heads*m.HeadDim)
	kv := 2 * h * float64(m.KVHeads*m.HeadDim)
	if m.AttnGate {
		return 3*q + kv // the gate doubles the query projection
	}
	return 2*q + kv // q and o are the same size
}

// indexerParams is a DSA indexer's projections: its queries from the compressed query (or the
// hidden state), one key and the per-head weights from the hidden state.
func (m Model) indexerParams() float64 {
	if m.IndexHeads <= 0 {
		return 0
	}
	qIn := float64(m.QLoraRank)
	if qIn <= 0 {
		qIn = float64(m.Hidden)
	}
	ih, id, h := float64(m.IndexHeads), float64(m.IndexHeadDim), float64(m.Hidden)
	return qIn*ih*id + h*id + h*ih
}

// ExpertParams is the weight count of one routed expert (gate, up and down projections).
func (m Model) ExpertParams() float64 { return m.mlpMats() * m.expertIn() * float64(m.ExpertFFN) }

// embedParams is the input embedding plus the LM head when it is not tied to it.
func (m Model) embedParams() (input, head float64) {
	input = float64(m.Vocab) * float64(m.Hidden)
	if m.TiedEmbed {
		return input, 0
	}
	return input, input
}

// mlpParams sums the dense MLPs and the MoE blocks, with `experts` routed experts counted per
// MoE layer (all of them for the size, top-k for the active share).
func (m Model) mlpParams(experts int) float64 {
	h := float64(m.Hidden)
	dense := float64(m.ffnLayers()-m.MoELayers()) * m.mlpMats() * h * float64(m.FFN)
	shared := float64(m.SharedExperts) * m.mlpMats() * h * float64(m.ExpertFFN) // on the hidden state
	moe := float64(m.MoELayers()) * (float64(experts)*m.ExpertParams() + shared +
		h*float64(m.Experts) + 2*h*float64(m.MoELatent)) // + router, + latent down and up projections
	return dense + moe
}

// Params is the total parameter count (embeddings, attention, MLP/experts, norms; biases and
// DeepSeek's multi-token-prediction layer are left out).
func (m Model) Params() float64 {
	in, head := m.embedParams()
	return in + head + m.normParams() + m.attnParamsAll() + m.mlpParams(m.Experts)
}

// ActiveParams is the weight count one token multiplies through: attention, dense MLPs, the
// top-k and shared experts, the router and the LM head. The input embedding table is a lookup and
// is left out (as in OpenAI's gpt-oss figures; Qwen and Mistral's "active" figures include it).
func (m Model) ActiveParams() float64 {
	_, head := m.embedParams()
	if m.TiedEmbed {
		head = float64(m.Vocab) * float64(m.Hidden)
	}
	return head + m.normParams() + m.attnParamsAll() + m.mlpParams(m.TopK)
}

// normParams is one norm before each mixer and FFN block, and the final one.
func (m Model) normParams() float64 {
	return float64(m.Layers+m.ffnLayers()+1) * float64(m.Hidden)
}

// KVCacheElems is the number of KV cache elements one sequence of seqLen tokens holds across all
// layers: the compressed latent plus the rope key for MLA, K and V per KV head otherwise, with
// windowed layers capped at their window and linear-attention layers holding none (their fixed
// state is LinearStateElems).
func (m Model) KVCacheElems(seqLen int) float64 {
	perTok := float64(2 * m.KVHeads * m.HeadDim)
	if m.IsMLA() {
		perTok = float64(m.KVLoraRank + m.QKRopeHeadDim + m.IndexHeadDim) // DSA adds the index key
	}
	full := float64(m.Layers-m.SlidingLayers-m.LinearLayers) * float64(seqLen)
	windowed := float64(m.SlidingLayers) * float64(min(seqLen, m.SlidingWindow))
	return perTok * (full + windowed)
}

// LinearStateElems is the recurrent state one sequence holds across the linear-attention layers,
// whatever its length: the DeltaNet matrices and the convolution's last taps.
func (m Model) LinearStateElems() float64 {
	if m.LinearLayers == 0 {
		return 0
	}
	rec := float64(m.LinearValueHeads * m.LinearKeyDim * m.LinearValueDim)
	conv := float64(2*m.LinearKeyHeads*m.LinearKeyDim+m.LinearValueHeads*m.LinearValueDim) * float64(max(m.LinearConvKernel-1, 0))
	return float64(m.LinearLayers) * (rec + conv)
}
