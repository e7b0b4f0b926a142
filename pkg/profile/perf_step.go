package profile

import (
	"fmt"
	"math"
)

// modelShape is the model's dimensions as floats, validated once per target.
type modelShape struct {
	mla, moe                             bool
	layers, moeLayers, denseLayers       float64 // mixer layers; MoE and dense FFN blocks
	mats, expertIn, latent               float64 // MLP matrices (3 gated, 2 not); experts' input width; MoE latent (0: none)
	h, heads, kvHeads, hd, ffn, vocab    float64
	experts, topK, expertFFN, shared     float64
	qLora, kvLora, qkNope, qkRope, vHead float64
	window, windowLayers                 float64
	// Linear attention: linLayers of layers; key and value heads, their dims, the state bytes.
	linLayers, lkh, lvh, lkd, lvd, conv float64
	gate                                float64 // 1 when the query projection also emits an output gate
	mtp                                 float64 // multi-token-prediction modules
	idxHeads, idxDim, idxTopK           float64 // DSA indexer heads and dim, tokens attended (0: dense attention)
	idxParams                           float64 // DSA indexer weights of a layer, replicated on every TP rank
	kernelsPerPass                      float64 // kernels an eager (prefill) pass launches in all its layers
	attnParams, mlpParams, expertParams float64 // per layer (one expert for expertParams; attention averaged over softmax and linear layers)
	sharedParams, embedParams           float64
	kvElemsPerTokenLayer                float64 // K+V (or MLA latent) elements per token per layer, unsharded
}

func newModelShape(m Model) (modelShape, error) {
	if m.Layers <= 0 || m.Hidden <= 0 || m.Heads <= 0 || m.Vocab <= 0 {
		return modelShape{}, fmt.Errorf("model %q: layers, hidden size, heads and vocab must be positive", m.ID)
	}
	s := modelShape{
		layers: float64(m.Layers), h: float64(m.Hidden), heads: float64(m.Heads),
		kvHeads: float64(max(m.KVHeads, 1)), hd: float64(m.HeadDim), ffn: float64(m.FFN), vocab: float64(m.Vocab),
		window: float64(m.SlidingWindow), windowLayers: float64(m.SlidingLayers),
	}
	if m.KVHeads <= 0 {
		s.kvHeads = s.heads
	}
	if m.LinearLayers > 0 {
		if m.LinearLayers >= m.Layers || m.LinearKeyHeads <= 0 || m.LinearValueHeads <= 0 || m.LinearKeyDim <= 0 || m.LinearValueDim <= 0 {
			return modelShape{}, fmt.Errorf("model %q: linear attention needs key and value heads and dims, and a softmax layer", m.ID)
		}
		s.linLayers = float64(m.LinearLayers)
		s.lkh, s.lvh = float64(m.LinearKeyHeads), float64(m.LinearValueHeads)
		s.lkd, s.lvd, s.conv = float64(m.LinearKeyDim), float64(m.LinearValueDim), float64(m.LinearConvKernel)
	}
	if m.AttnGate {
		s.gate = 1
	}
	s.mtp = float64(m.MTPLayers)
	if s.hd <= 0 {
		s.hd = s.h / s.heads
	}
	switch m.Arch {
	case ArchDense, "":
	case ArchMoE, ArchMLAMoE:
		if m.Experts <= 0 || m.TopK <= 0 || m.ExpertFFN <= 0 {
			return modelShape{}, fmt.Errorf("model %q: an MoE model needs experts, top-k and expert FFN size", m.ID)
		}
		s.moe = true
		s.experts, s.topK, s.expertFFN, s.shared = float64(m.Experts), float64(m.TopK), float64(m.ExpertFFN), float64(m.SharedExperts)
		s.denseLayers = float64(min(m.DenseLayers, m.ffnLayers()))
	default:
		return modelShape{}, fmt.Errorf("model %q: architecture %q: %w", m.ID, m.Arch, ErrUnsupported)
	}
	if m.Arch == ArchMLAMoE || m.KVLoraRank > 0 {
		if m.KVLoraRank <= 0 || m.QKRopeHeadDim <= 0 || m.QKNopeHeadDim <= 0 || m.VHeadDim <= 0 {
			return modelShape{}, fmt.Errorf("model %q: MLA needs kv_lora_rank and the qk/v head dims", m.ID)
		}
		s.mla = true
		s.qLora, s.kvLora = float64(m.QLoraRank), float64(m.KVLoraRank)
		s.qkNope, s.qkRope, s.vHead = float64(m.QKNopeHeadDim), float64(m.QKRopeHeadDim), float64(m.VHeadDim)
	}
	if s.moe {
		s.moeLayers = float64(m.ffnLayers()) - s.denseLayers
	} else {
		s.denseLayers = float64(m.ffnLayers())
	}
	s.mats, s.expertIn, s.latent = m.mlpMats(), m.expertIn(), float64(m.MoELatent)
	if s.denseLayers > 0 && s.ffn <= 0 {
		return modelShape{}, fmt.Errorf("model %q: dense MLP layers need an intermediate size", m.ID)
	}
	if m.IndexHeads > 0 {
		if !s.mla || m.IndexHeadDim <= 0 || m.IndexTopK <= 0 {
			return modelShape{}, fmt.Errorf("model %q: sparse attention needs MLA, the indexer's heads and dim, and its top-k", m.ID)
		}
		s.idxHeads, s.idxDim, s.idxTopK = float64(m.IndexHeads), float64(m.IndexHeadDim), float64(m.IndexTopK)
		s.idxParams = m.indexerParams()
	}
	s.attnParams = m.AttnParams()
	if s.mla {
		s.kvElemsPerTokenLayer = s.kvLora + s.qkRope
	} else {
		s.kvElemsPerTokenLayer = 2 * s.kvHeads * s.hd
	}
	if s.linLayers > 0 {
		full := (s.layers - s.linLayers) / s.layers
		s.attnParams = full*s.attnParams + (1-full)*m.LinearAttnParams()
	}
	// Kernels of a pass: a dense decoder layer runs refKernelsPerLayer, four in its mixer and three
	// in its MLP; MLA adds its low-rank projections, an MoE block runs the router, permutation, the
	// expert GEMMs and the combine (and the shared expert's two, the latent projections' two).
	mixK := float64(refKernelsPerLayer - 3)
	if s.mla {
		mixK += 3
	}
	moeK := 6.0
	if s.shared > 0 {
		moeK += 2
	}
	if s.latent > 0 {
		moeK += 2
	}
	s.kernelsPerPass = mixK*s.layers + 3*s.denseLayers + moeK*s.moeLayers
	s.mlpParams = s.mats * s.h * s.ffn
	s.expertParams = s.mats * s.expertIn * s.expertFFN
	s.sharedParams = s.shared * s.mats * s.h * s.expertFFN
	s.embedParams = s.vocab * s.h
	if !m.TiedEmbed {
		s.embedParams *= 2
	}
	return s, nil
}

// shard is a worker's parallel layout seen from one GPU.
type shard struct {
	tp, pp, dp, ep, moeTP int
	heads, kvHeads        float64 // attention heads and KV heads held by one GPU
	layers                float64 // layers of one pipeline stage
	mixL, denseL, moeL    float64 // mixers, dense and MoE FFN blocks of one stage (mean over stages)
	experts, expertFFN    float64 // local routed experts and their split intermediate size
	tpCross               bool    // the TP group spans nodes (beyond the NVLink domain)
	ppCross               bool
}

func (p *Predictor) shard(w Worker) (shard, error) {
	m := &p.model
	s := shard{tp: w.TP, pp: max(w.PP, 1), dp: max(w.DP, 1), ep: max(w.EP, 1)}
	if float64(s.pp) > m.layers {
		return shard{}, fmt.Errorf("pp %d exceeds the model's %d layers: %w", s.pp, int(m.layers), ErrUnsupported)
	}
	s.heads = math.Ceil(m.heads / float64(s.tp))
	if m.mla {
		s.kvHeads = 1 // the latent cache is replicated on every TP rank
	} else {
		s.kvHeads = math.Ceil(m.kvHeads / float64(s.tp))
	}
	s.layers = math.Ceil(m.layers / float64(s.pp))
	s.mixL = m.layers / float64(s.pp)
	s.denseL = m.denseLayers / float64(s.pp)
	s.moeL = m.moeLayers / float64(s.pp)
	if m.moe {
		gpus := s.tp * s.dp
		if s.ep > gpus {
			return shard{}, fmt.Errorf("ep %d exceeds the worker's tp×dp = %d GPUs: %w", s.ep, gpus, ErrUnsupported)
		}
		if float64(s.ep) > m.experts {
			return shard{}, fmt.Errorf("ep %d exceeds the model's %d experts: %w", s.ep, int(m.experts), ErrUnsupported)
		}
		s.moeTP = max(gpus/s.ep, 1) // an ep that does not divide tp×dp leaves GPUs idle in the MoE layers
		s.experts = m.experts / float64(s.ep)
		s.expertFFN = m.expertFFN / float64(s.moeTP)
	} else if s.ep > 1 {
		return shard{}, fmt.Errorf("ep %d on a dense model: %w", s.ep, ErrUnsupported)
	}
	s.tpCross = s.tp > p.k.domain
	s.ppCross = s.tp*s.dp >= p.t.GPU.GPUsPerNode && s.pp > 1
	return s, nil
}

// batchLoad is what one step of one attention-DP rank processes.
type batchLoad struct {
	prefillTokens float64 // new prompt tokens in the step
	prefillSeqs   float64 // prompts those tokens belong to (their last chunk emits logits)
	prefillCtx    float64 // mean tokens already cached before each prompt chunk (chunked prefill)
	decodeSeqs    float64 // sequences generating one token
	decodeKV      float64 // mean cached tokens of the decoding sequences
}

// stepMs is the GPU time of one forward step of one pipeline stage plus the logits, for the load of
// one attention-DP rank (all ranks run in lock step). It is the plain sum of the operators: engines
// overlap little inside a step.
func (p *Predictor) stepMs(s *shard, b batchLoad) float64 {
	m := &p.model
	k := &p.k
	wd, awd := p.wd, p.wd
	T := b.prefillTokens + b.decodeSeqs
	if T <= 0 {
		return 0
	}
	tp := float64(s.tp)

	// Attention projections. nk counts the kernels of the attention part of a layer (projections,
	// attention core, norms) for the glue below.
	var attn float64
	nk := 3.0 // the elementwise pass and two projections (QKV and O; MLA adds kv_a and q_b below)
	if m.mla {
		if m.qLora > 0 {
			nk++
			attn += k.gemm(T, m.qLora, m.h, awd) // q_a, replicated across TP
			attn += k.gemm(T, s.heads*(m.qkNope+m.qkRope), m.qLora, awd)
		} else {
			attn += k.gemm(T, s.heads*(m.qkNope+m.qkRope), m.h, awd)
		}
		// kv_a, replicated across TP
		attn += k.gemm(T, m.kvLora+m.qkRope, m.h, awd)
		nk++
		// Decode absorbs the up-projections into the query and the output (two batched GEMMs) and
		// attends to the latent cache; so does sparse (DSA) prefill. Dense prefill instead expands
		// the latent cache to per-head K and V over the whole context.
		absorbed := b.decodeSeqs
		if m.idxTopK > 0 {
			absorbed += b.prefillTokens
		} else if b.prefillTokens > 0 {
			nk++
			attn += k.gemm(b.prefillTokens+b.prefillSeqs*b.prefillCtx, s.heads*(m.qkNope+m.vHead), m.kvLora, awd)
		}
		if absorbed > 0 {
			nk += 2
			attn += k.gemm(absorbed, s.heads*m.kvLora, m.qkNope, dtBF16)
			attn += k.gemm(absorbed, s.heads*m.vHead, m.kvLora, dtBF16)
		}
		attn += k.gemm(T, m.h, s.heads*m.vHead, awd)
		if m.idxHeads > 0 {
			// DSA indexer projections (replicated across TP) and the top-k selection.
			nk += 4
			qIn := m.qLora
			if qIn <= 0 {
				qIn = m.h
			}
			attn += k.gemm(T, m.idxHeads*m.idxDim, qIn, awd) + k.gemm(T, m.idxDim, m.h, awd) + k.gemm(T, m.idxHeads, m.h, dtBF16)
		}
	} else {
		attn += k.gemm(T, ((1+m.gate)*s.heads+2*s.kvHeads)*m.hd, m.h, awd)
		attn += k.gemm(T, m.h, s.heads*m.hd, awd)
	}

	// Attention core. Windowed layers see at most the window.
	kvb := p.kvd.bytes()
	core := func(ctx, kv float64) float64 {
		var t float64
		if b.prefillTokens > 0 {
			chunk := b.prefillTokens / math.Max(b.prefillSeqs, 1)
			c := math.Min(ctx, kv)
			pairs := b.prefillSeqs * (chunk*c + chunk*chunk/2)
			if kv < ctx+chunk {
				pairs = b.prefillSeqs * chunk * math.Min(kv, ctx+chunk)
			}
			qk, v := m.hd, m.hd
			switch {
			case m.idxTopK > 0:
				qk, v = m.kvLora+m.qkRope, m.kvLora // on the latent
			case m.mla:
				qk, v = m.qkNope+m.qkRope, m.vHead
			}
			t += k.prefillAttn(2 * s.heads * (qk + v) * pairs)
		}
		if b.decodeSeqs > 0 {
			L := math.Min(b.decodeKV, kv)
			bytes := b.decodeSeqs * L * kvb * p.kvElemsGPU(s)
			var flops float64
			if m.mla {
				flops = 2 * b.decodeSeqs * L * s.heads * (2*m.kvLora + m.qkRope)
			}
			dt := k.decodeAttn(bytes, flops)
			if m.mla {
				dt *= p.cal.MLAScale // latent-attention decode kernels against the dense stand-in
			}
			t += dt
		}
		return t
	}
	full := math.Inf(1)
	var attnCore float64
	switch {
	case m.window > 0 && m.windowLayers > 0:
		fw := m.windowLayers / m.layers
		attnCore = fw*core(b.prefillCtx, m.window) + (1-fw)*core(b.prefillCtx, full)
	case m.idxTopK > 0:
		// Sparse attention: the core attends to the top-k tokens (costed like a window of k), and the
		// indexer scores every cached token against each query in fp8: 2·heads·dim FLOPs a pair at
		// twice the bf16 rate, so costed as heads·dim bf16 FLOPs.
		attnCore = core(b.prefillCtx, m.idxTopK)
		if b.prefillTokens > 0 {
			chunk := b.prefillTokens / math.Max(b.prefillSeqs, 1)
			pairs := b.prefillSeqs * (chunk*b.prefillCtx + chunk*chunk/2)
			attnCore += k.prefillAttn(m.idxHeads * m.idxDim * pairs)
		}
		if b.decodeSeqs > 0 {
			keys := b.decodeSeqs * b.decodeKV
			attnCore += k.decodeAttn(keys*(m.idxDim+idxScaleBytes), keys*m.idxHeads*m.idxDim)
		}
	default:
		attnCore = core(b.prefillCtx, full)
	}

	if b.prefillTokens > 0 {
		nk++
	}
	if b.decodeSeqs > 0 {
		nk++
	}
	if m.linLayers > 0 {
		// Hybrid models: the layer's attention part is the softmax layers' and the linear layers' in
		// proportion (the same count per pipeline stage).
		lf := m.linLayers / m.layers
		attn = (1-lf)*attn + lf*p.linearAttnMs(s, b, T, awd)
		attnCore *= 1 - lf
		nk = (1-lf)*nk + lf*5 // in-projections, convolution, recurrence, gated norm, out-projection
	}
	// Norms, residuals, activation, RoPE, KV write: bytes moved. The glue (fitted per layer of the
	// reference dense decoder, refKernelsPerLayer kernels) is a cost per kernel: mostly the launch and
	// synchronisation that the isolated kernel timings carry and CUDA-graph replay hides, so a layer of
	// many small kernels (MLA, routed and shared experts) sheds more of it than a dense layer.
	ew := k.memop(T * m.h * 2 * 8)
	glueK := p.glue / refKernelsPerLayer

	// Communication: all-reduce after attention and after the MLP over TP.
	// The engine's own cost per collective (synchronisation, its all-reduce kernel) comes on top.
	coll := p.cal.CollectiveUs / 1000
	cs := p.cal.CommScale
	ar := k.allReduce(T*m.h*2*cs, s.tp)
	if s.tp > 1 {
		ar += coll
	}

	// A layer is its mixer (attention or linear attention, with the all-reduce after it) and its FFN
	// block (dense MLP or MoE, with theirs); NemotronH's pattern has them as layers of their own.
	total := s.mixL * (attn + attnCore + ew + ar + glueK*nk)
	if s.denseL > 0 {
		ffn := m.ffn / tp
		mlp := k.gemm(T, (m.mats-1)*ffn, m.h, wd) + k.gemm(T, m.h, ffn, wd) + k.memop(T*ffn*2*3)
		total += s.denseL * (mlp + ar + glueK*3)
	}
	if s.moeL > 0 {
		nm := 4.0                                // router, and the expert block's gate-up, activation and down kernels
		moe := k.gemm(T, m.experts, m.h, dtBF16) // router
		if m.shared > 0 {
			nm += 2
			sf := m.shared * m.expertFFN / tp
			moe += k.gemm(T, (m.mats-1)*sf, m.h, wd) + k.gemm(T, m.h, sf, wd)
		}
		if m.latent > 0 {
			nm += 2 // down to the latent before dispatch, back up after
			moe += k.gemm(T, m.latent, m.h, wd) + k.gemm(T, m.h, m.latent, wd)
		}
		// Tokens entering the experts: every DP rank's tokens meet in the expert layer.
		rows := T * float64(s.dp) * m.topK / float64(s.ep)
		moe += p.cal.MoEScale * k.moe(rows, s.experts, m.expertIn, s.expertFFN, m.mats-1, p.ed)
		if s.dp > 1 {
			// Attention-DP: dispatch the routed tokens to their experts and combine them back.
			ab := 2.0
			if p.ed != dtBF16 {
				ab = 1
			}
			g := s.tp * s.dp
			moe += k.allToAll(T*m.topK*m.expertIn*ab*cs, g) + k.allToAll(T*m.topK*m.expertIn*2*cs, g) + 2*coll
		} else {
			moe += ar
		}
		total += s.moeL * (moe + glueK*nm)
	}

	// Logits for the sequences that emit a token, vocab split over TP; embedding lookup.
	logits := b.decodeSeqs + b.prefillSeqs
	total += k.gemm(logits, m.vocab/tp, m.h, dtBF16) + k.memop(logits*m.vocab/tp*4) + k.memop(T*m.h*2)
	if s.pp > 1 {
		total += k.p2p(T*m.h*2, s.ppCross)
	}
	return total
}

// linearAttnMs is one Gated DeltaNet layer: the q/k/v/z and gate projections, the causal convolution,
// the recurrence and the output projection, heads split over TP. Decode reads and writes each
// sequence's state matrices (fp32, as the engines keep them); prefill runs the chunked form, whose
// work per token is a few state-sized products per head.
func (p *Predictor) linearAttnMs(s *shard, b batchLoad, T float64, wd dtype) float64 {
	m, k := &p.model, &p.k
	tp := float64(s.tp)
	kh, vh := math.Ceil(m.lkh/tp), math.Ceil(m.lvh/tp)
	qkv := 2*kh*m.lkd + vh*m.lvd
	t := k.gemm(T, qkv+vh*m.lvd+2*vh, m.h, wd) + k.gemm(T, m.h, vh*m.lvd, wd)
	t += k.memop(T * qkv * 2 * 2) // convolution: read and write the mixed projections
	state := vh * m.lkd * m.lvd
	if b.decodeSeqs > 0 {
		t += k.memop(b.decodeSeqs * state * 4 * 2)
	}
	if b.prefillTokens > 0 {
		const chunk = 64
		t += k.prefillAttn(b.prefillTokens * vh * (4*m.lkd*m.lvd + 2*chunk*(m.lkd+m.lvd)))
		t += k.memop(b.prefillSeqs * state * 4 * 2)
	}
	return t
}

// refKernelsPerLayer is the kernels of a decode step's layer of the reference dense decoder the glue
// is fitted on (E2EModel): QKV and O projections, decode attention, the elementwise pass, gate-up,
// activation and down.
const refKernelsPerLayer = 7

// idxScaleBytes is the fp32 scale the engines keep beside each fp8 DSA index key.
const idxScaleBytes = 4

// kvElemsGPU is the KV-cache elements one GPU holds per token per layer.
func (p *Predictor) kvElemsGPU(s *shard) float64 {
	if p.model.mla {
		return p.model.kvElemsPerTokenLayer
	}
	return 2 * s.kvHeads * p.model.hd
}
