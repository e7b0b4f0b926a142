package profile

import (
	"fmt"
	"math"
)

const gib = 1 << 30

// MemoryUse is one GPU's memory for a worker running batch sequences of isl+osl tokens.
type MemoryUse struct {
	WeightsGiB    float64 `json:"weightsGiB"`
	KVCacheGiB    float64 `json:"kvCacheGiB"`
	ActivationGiB float64 `json:"activationGiB"`
	// OverheadGiB is the engine's fixed share: CUDA context, graphs, NCCL buffers.
	OverheadGiB float64 `json:"overheadGiB"`
	TotalGiB    float64 `json:"totalGiB"`
	// KVBudgetGiB is what the backend's memory policy leaves for the KV cache on this GPU;
	// CapacityGiB the GPU's memory.
	KVBudgetGiB float64 `json:"kvBudgetGiB"`
	CapacityGiB float64 `json:"capacityGiB"`
	// KVTokens is how many tokens of KV cache one attention-DP rank holds.
	KVTokens float64 `json:"kvTokens"`
}

// weightBytesGPU is the weight bytes of the most loaded GPU of the worker (one pipeline stage).
func (p *Predictor) weightBytesGPU(s *shard) float64 {
	m := &p.model
	tp := float64(s.tp)
	wb, eb := p.wd.bytes(), p.ed.bytes()
	attn := m.attnParams / tp
	if m.mla {
		// q_a, kv_a and the DSA indexer are replicated on every TP rank.
		rep := m.h*(m.kvLora+m.qkRope) + m.idxParams
		if m.qLora > 0 {
			rep += m.h * m.qLora
		}
		attn = rep + (m.attnParams-rep)/tp
	}
	total := s.mixL*attn*wb + s.denseL*m.mlpParams/tp*wb
	if s.moeL > 0 {
		total += s.moeL * (m.sharedParams/tp*wb + m.experts*m.h*2 + 2*m.h*m.latent*wb +
			s.experts*m.expertParams/float64(s.moeTP)*eb)
	}
	embed := m.embedParams / tp * 2
	if s.pp > 1 && embed > 0 {
		embed /= 2 // embedding on the first stage, LM head on the last
	}
	return total + embed
}

// kvBytesPerTokenGPU is the KV-cache bytes one GPU stores per token of a sequence it serves.
func (p *Predictor) kvBytesPerTokenGPU(s *shard) float64 {
	m := &p.model
	per := p.kvElemsGPU(s) * p.kvd.bytes()
	if m.idxDim > 0 {
		per += m.idxDim + idxScaleBytes // DSA's fp8 index key, on every rank
	}
	if m.linLayers > 0 {
		per *= 1 - m.linLayers/m.layers // linear-attention layers keep a fixed state instead (seqStateBytesGPU)
	}
	if m.window > 0 && m.windowLayers > 0 {
		// Windowed layers keep at most the window; counted at the workload's context below.
		ctx := float64(p.t.Workload.ISL + p.t.Workload.OSL)
		frac := m.windowLayers / m.layers
		return per * s.layers * ((1 - frac) + frac*math.Min(1, m.window/ctx))
	}
	return per * s.layers
}

// seqStateBytesGPU is the fixed recurrent state one sequence holds on one GPU in the linear-attention
// layers of its pipeline stage: fp32 DeltaNet matrices and the convolution taps in bf16.
func (p *Predictor) seqStateBytesGPU(s *shard) float64 {
	m := &p.model
	if m.linLayers == 0 {
		return 0
	}
	tp := float64(s.tp)
	kh, vh := math.Ceil(m.lkh/tp), math.Ceil(m.lvh/tp)
	rec := vh * m.lkd * m.lvd * 4
	conv := (2*kh*m.lkd + vh*m.lvd) * math.Max(m.conv-1, 0) * 2
	return math.Ceil(m.linLayers/float64(s.pp)) * (rec + conv)
}

// seqKVTokens is the KV-cache tokens one sequence holds: its prompt on a prefill worker; else its
// prompt and output, or where the backend allocates on demand, the prompt and half the output (the
// mean over a closed loop's sequences, spread evenly over their generation).
func (p *Predictor) seqKVTokens(role Role) float64 {
	I, O := float64(p.t.Workload.ISL), float64(p.t.Workload.OSL)
	switch {
	case role == RolePrefill:
		return I
	case p.cal.KVOnDemand:
		return I + O/2
	}
	return I + O
}

// memory is the per-GPU memory of worker w with batch sequences per worker.
func (p *Predictor) memory(s *shard, role Role, batch int) MemoryUse {
	c := &p.cal
	capB := p.t.GPU.MemoryGiB * gib
	weights := p.weightBytesGPU(s)
	// Activations: the step's token budget through the widest layer (gate/up or experts) in bf16,
	// plus logits in fp32 for the sequences of a step.
	tokens := float64(c.ChunkTokens)
	if role == RoleDecode {
		tokens = math.Max(float64(batch)/float64(s.dp), 1)
	}
	widest := math.Max(2*p.model.ffn/float64(s.tp), 2*p.model.h)
	if s.moeL > 0 {
		widest = math.Max(widest, 2*s.expertFFN*p.model.topK)
	}
	act := tokens*(widest+4*p.model.h)*2 + math.Min(tokens, 1024)*p.model.vocab/float64(s.tp)*4
	overhead := c.ReserveGiB * gib
	if s.tp*s.dp > 1 {
		overhead += 0.4 * gib // NCCL communicators and buffers
	}
	var budget float64
	if c.FractionOfFree {
		budget = c.MemFraction * (capB - weights - act - overhead)
	} else {
		budget = c.MemFraction*capB - weights - act - overhead
	}
	budget = math.Max(budget, 0)
	kvTok := p.kvBytesPerTokenGPU(s)
	ctx := p.seqKVTokens(role)
	perRank := math.Ceil(float64(batch) / float64(s.dp))
	kv := perRank * (ctx*kvTok + p.seqStateBytesGPU(s))
	return MemoryUse{
		WeightsGiB: weights / gib, KVCacheGiB: kv / gib, ActivationGiB: act / gib, OverheadGiB: overhead / gib,
		TotalGiB:    (weights + kv + act + overhead) / gib,
		KVBudgetGiB: budget / gib, CapacityGiB: p.t.GPU.MemoryGiB,
		KVTokens: budget / kvTok,
	}
}

// Memory is the per-GPU memory breakdown of worker w running batch sequences.
func (p *Predictor) Memory(w Worker, batch int) (MemoryUse, error) {
	w, err := normWorker(w)
	if err != nil {
		return MemoryUse{}, err
	}
	s, err := p.shard(w)
	if err != nil {
		return MemoryUse{}, err
	}
	return p.memory(&s, w.Role, batch), nil
}

// maxBatch is how many sequences worker w holds (see seqKVTokens), or a FitError.
func (p *Predictor) maxBatch(s *shard, role Role) (int, MemoryUse, error) {
	mu := p.memory(s, role, 1)
	if mu.KVBudgetGiB <= 0 {
		return 0, mu, &FitError{Role: role, What: fmt.Sprintf("weights (%.1f GiB) and engine overhead", mu.WeightsGiB),
			NeedGiB: mu.WeightsGiB + mu.ActivationGiB + mu.OverheadGiB, HaveGiB: mu.CapacityGiB * p.cal.MemFraction}
	}
	// One sequence must fit whole (alone, it reaches its full length); many hold seqKVTokens each.
	full := float64(p.t.Workload.ISL)
	if role != RolePrefill {
		full += float64(p.t.Workload.OSL)
	}
	state := p.seqStateBytesGPU(s) / p.kvBytesPerTokenGPU(s) // a sequence's fixed state, in tokens
	perRank := math.Floor(mu.KVTokens / (p.seqKVTokens(role) + state))
	if mu.KVTokens < full+state {
		return 0, mu, &FitError{Role: role, What: fmt.Sprintf("the kv cache of one %d-token sequence", int(full)),
			NeedGiB: mu.WeightsGiB + mu.ActivationGiB + mu.OverheadGiB + full*p.kvBytesPerTokenGPU(s)/gib,
			HaveGiB: mu.CapacityGiB * p.cal.MemFraction}
	}
	return int(math.Min(perRank*float64(s.dp), 1<<20)), mu, nil
}

// MaxBatch is the largest Batch (sequences per worker, all DP ranks) whose KV cache fits next to the
// weights under the backend's memory policy — isl+osl tokens a sequence, or isl+osl/2 on average where
// the backend allocates the cache on demand (Calib KVOnDemand); a *FitError (errors.Is ErrNoFit) when
// not even one sequence fits.
func (p *Predictor) MaxBatch(w Worker) (int, error) {
	w, err := normWorker(w)
	if err != nil {
		return 0, err
	}
	s, err := p.shard(w)
	if err != nil {
		return 0, err
	}
	n, _, err := p.maxBatch(&s, w.Role)
	return n, err
}

// Fit says whether worker w with its Batch fits: nil, or a *FitError with the reason. A Batch above
// MaxBatch fits too (the engine queues the excess; Predict charges the wait), so Fit fails only when
// the weights or a single sequence do not fit.
func (p *Predictor) Fit(w Worker) error {
	_, err := p.MaxBatch(w)
	return err
}

func normWorker(w Worker) (Worker, error) {
	c := Config{Mode: ModeAgg, Workers: []Worker{w}}
	if w.Role == "" {
		w.Role = RoleAgg
	}
	c.Workers[0].Role = w.Role
	return c.worker(w.Role)
}
