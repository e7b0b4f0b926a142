package profile

import (
	"encoding/json"
	"fmt"
	"maps"
	"sync"

	"github.com/dgdr-dev/dgdr/pkg/hw"
)

// Calib is the calibration: the constants that turn composed kernel times into engine-level TTFT and
// ITL. The binary embeds one (tables/calib.json), fitted by `make calibrate` on measured serving rows;
// internal/calib holds the fit and documents its method. Parameters are never per model or per GPU.
// The memory policy (MemFraction, FractionOfFree, ReserveGiB, KVOnDemand, ChunkTokens) is not fitted:
// it is the backends' documented defaults (vLLM gpu_memory_utilization 0.9 of the total; SGLang
// mem_fraction_static ≈ 0.88 of the total; TRT-LLM free_gpu_memory_fraction 0.9 of what is free
// after the weights; 8192-token prefill budgets; paged on-demand KV in vLLM and SGLang, whole
// sequences reserved by TRT-LLM's default capacity scheduler).
type Calib struct {
	Method string `json:"method"`
	// GlueUsPerLayer is the cost the kernel tables leave out or double count (norm, residual, RoPE and
	// KV-write kernels, launch costs that back-to-back CUDA-graph replay hides), per layer of the
	// reference dense decoder (E2EModel) and applied per kernel (refKernelsPerLayer).
	GlueUsPerLayer float64                 `json:"glueUsPerLayer"`
	Backends       map[string]BackendCalib `json:"backends"`
	// Corrections are per-architecture factors fitted on a cluster's own measurements (see
	// Correction); the shipped calibration has none.
	Corrections []Correction `json:"corrections,omitempty"`
}

// BackendCalib is one backend's constants (the global ones repeated in each). The fitted ones are
// marked.
type BackendCalib struct {
	// StepMs is the engine's fixed cost per iteration (scheduling, sampling, launch) — fitted.
	StepMs float64 `json:"stepMs"`
	// LayerUs is the engine's cost per layer per iteration outside the captured graph (eager
	// attention, per-layer launches) — fitted.
	LayerUs float64 `json:"layerUs"`
	// SeqUs is the per-sequence cost per iteration (batch bookkeeping, detokenisation) — fitted.
	SeqUs float64 `json:"seqUs"`
	// PrefillKernelUs is the host-side cost per kernel of a prefill pass, which engines run eagerly
	// (outside CUDA graphs): launches, the MoE routing bookkeeping — fitted.
	PrefillKernelUs float64 `json:"prefillKernelUs"`
	// SeqLayerUs is the per-sequence cost per layer of a decode iteration outside the kernel tables
	// (RoPE, KV-cache writes, the paged-attention metadata of each sequence) — fitted.
	SeqLayerUs float64 `json:"seqLayerUs"`
	// DecodeScale and PrefillScale multiply composed GPU time: engine kernels against the measured
	// stand-ins (paged attention, fused MoE, quantisation overheads) — fitted.
	DecodeScale  float64 `json:"decodeScale"`
	PrefillScale float64 `json:"prefillScale"`
	// RooflineScale multiplies composed GPU time on GPUs without kernel tables (the catalog's peak
	// figures through the H200's efficiency curves): how far those GPUs' achieved efficiency falls
	// short of the H200's at the same fraction of peak — fitted.
	RooflineScale float64 `json:"rooflineScale"`
	// MoEScale multiplies the routed-expert time: the engine's fused MoE kernels against dense GEMMs
	// of the routed shape — fitted where MoE rows exist.
	MoEScale float64 `json:"moeScale"`
	// MLAScale multiplies MLA decode attention (latent-cache kernels such as FlashMLA against the
	// dense-cache stand-in of the kernel tables) — fitted where MLA rows exist.
	MLAScale float64 `json:"mlaScale"`
	// CollectiveUs is the engine's fixed cost per collective (all-reduce, all-to-all) on top of the
	// interconnect's published latency and bandwidth — fitted.
	CollectiveUs float64 `json:"collectiveUs"`
	// CommScale multiplies the bytes term of the collectives: the engines' achieved all-reduce and
	// all-to-all bandwidth against the published link figures at linkEfficiency — fitted.
	CommScale float64 `json:"commScale"`
	// PrefillReqMs is the per-request cost outside the GPU before the first token (tokenisation,
	// admission, first-token return) — fitted.
	PrefillReqMs float64 `json:"prefillReqMs"`
	// Burst is how synchronised the closed-loop arrivals are: 0 spreads them evenly, 1 has every
	// request of a batch arrive together and wait for the prefills ahead of it — fitted.
	Burst float64 `json:"burst"`
	// KVTransferScale multiplies the disaggregated KV transfer time over the interconnect — fitted
	// where disaggregated rows exist.
	KVTransferScale float64 `json:"kvTransferScale"`
	// MTPAccept is the mean tokens a decode step emits under speculative decoding with the model's
	// MTP modules (Target.SpecDraft) — fitted on the disaggregated rows, whose campaigns ran it.
	MTPAccept float64 `json:"mtpAccept"`
	// PrefillShare is the prefill capacity of a disaggregated deployment relative to rate matching,
	// used only when a benchmark row does not give the worker counts — fitted where disagg rows exist.
	PrefillShare float64 `json:"prefillShare"`

	// ChunkTokens is the prefill token budget of one iteration (max_num_batched_tokens and kin).
	ChunkTokens int `json:"chunkTokens"`
	// MixedPrefill: prefill chunks ride in the decode iterations (vLLM, TRT-LLM); otherwise prefill
	// runs in iterations of its own that stall decode (SGLang's default scheduler).
	MixedPrefill bool `json:"mixedPrefill"`
	// Memory policy: the fraction of the GPU (or of what is free after the weights) the KV cache may
	// use, and the engine's fixed memory (CUDA context, graphs, workspace).
	MemFraction    float64 `json:"memFraction"`
	FractionOfFree bool    `json:"fractionOfFree"`
	ReserveGiB     float64 `json:"reserveGiB"`
	// KVOnDemand: the KV cache is paged and allocated as tokens are generated (vLLM, SGLang), so the
	// sequences of a closed loop, spread evenly over their output, hold isl+osl/2 tokens on average;
	// otherwise each admitted sequence reserves isl+osl (TRT-LLM's default GUARANTEED_NO_EVICT).
	KVOnDemand bool `json:"kvOnDemand"`
}

// calibFile is the embedded calibration in tables/.
const calibFile = "calib.json"

// DefaultCalibration returns the priors the fit starts from (and the memory policy it keeps); the
// embedded calibration is read over it.
func DefaultCalibration() Calib {
	base := BackendCalib{StepMs: 1, LayerUs: 5, SeqUs: 10, SeqLayerUs: 0.2, PrefillKernelUs: 20, RooflineScale: 1, DecodeScale: 1, PrefillScale: 1, PrefillReqMs: 5, Burst: 0.3, MoEScale: 1, MLAScale: 1, CollectiveUs: 5, CommScale: 1,
		KVTransferScale: 1, PrefillShare: 1, MTPAccept: 1.8, ChunkTokens: 8192, MemFraction: 0.9, ReserveGiB: 2.5, MixedPrefill: true}
	vllm, sglang, trt := base, base, base
	vllm.KVOnDemand, sglang.KVOnDemand = true, true
	sglang.MixedPrefill = false
	sglang.MemFraction = 0.88
	trt.FractionOfFree = true
	return Calib{
		Method:         "priors (not fitted)",
		GlueUsPerLayer: 15,
		Backends:       map[string]BackendCalib{BackendVLLM: vllm, BackendSGLang: sglang, BackendTRTLLM: trt},
	}
}

var loadCalib = sync.OnceValues(func() (*Calib, error) {
	b, err := tableFS.ReadFile("tables/" + calibFile)
	if err != nil {
		return nil, fmt.Errorf("read embedded calibration (run go run ./internal/tools/fit): %w", err)
	}
	c := DefaultCalibration()
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("parse embedded calibration: %w", err)
	}
	for name, bc := range c.Backends {
		if bc.DecodeScale <= 0 || bc.PrefillScale <= 0 || bc.MemFraction <= 0 || bc.ChunkTokens <= 0 {
			return nil, fmt.Errorf("embedded calibration for %s has a non-positive scale, memory fraction or chunk", name)
		}
	}
	return &c, nil
})

// EmbeddedCalibration returns the calibration the binary ships.
func EmbeddedCalibration() (Calib, error) {
	c, err := loadCalib()
	if err != nil {
		return Calib{}, err
	}
	return *c, nil
}

// WithCalibration is p under calibration c (for fitting and cross-validation); p is unchanged.
func (p *Predictor) WithCalibration(c Calib) (*Predictor, error) {
	bc, ok := c.Backends[p.t.Backend]
	if !ok {
		return nil, fmt.Errorf("calibration lacks backend %q", p.t.Backend)
	}
	q := *p
	q.cal = bc
	q.glue = c.GlueUsPerLayer / 1000
	q.corr = map[Mode][2]float64{}
	if len(c.Corrections) == 0 {
		// The fit's hot path: every row under every candidate calibration.
		return &q, nil
	}
	iv, err := loadIntervals()
	if err != nil {
		return nil, err
	}
	q.bands = maps.Clone(p.bands)
	for _, m := range []Mode{ModeAgg, ModeDisagg} {
		corr, ok := c.correctionFor(p.t, p.wd.String(), m)
		if !ok {
			continue
		}
		q.corr[m] = [2]float64{corr.TTFT, corr.ITL}
		// A corrected prediction takes the interval measured after corrections of as many rows: its
		// own measurements have taken out the bias that the uncorrected interval had to allow for.
		if cell, ok := iv.Lookup(IntervalKey{Backend: p.t.Backend, Mode: m, Shots: ShotsBucket(corr.Rows)}); ok && cell.Shots > 0 {
			q.bands[m] = cell
		}
	}
	return &q, nil
}

// DecodeStepPoint is one measured whole-model decode step: what the glue is fitted to and checked
// against.
type DecodeStepPoint struct {
	Batch, KV int
	Ms        float64
}

// E2EModel is the reference dense decoder the glue is defined on: the Llama-3.1-8B shape of
// testdata/gpu-data's whole-step table (its README gives it: 32 layers, hidden 4096, 32 query / 8 KV
// heads, FFN 14336, vocab 128256, bf16).
var E2EModel = Model{ID: "e2e-llama3.1-8b", Arch: ArchDense, Layers: 32, Hidden: 4096, Heads: 32, KVHeads: 8,
	HeadDim: 128, FFN: 14336, Vocab: 128256, Dtype: "bf16"}

// ComposedDecodeMs is the composed GPU time of one decode step of m on g (TP 1) with the given glue
// (µs per layer): the kernel composition alone, without the serving model.
func ComposedDecodeMs(m Model, g hw.GPU, glueUs float64, batch, kv int) (float64, error) {
	p, err := NewPredictor(Target{Model: m, GPU: g, Backend: BackendVLLM, Workload: Workload{ISL: kv, OSL: 1}})
	if err != nil {
		return 0, err
	}
	p.glue = glueUs / 1000
	s, err := p.shard(Worker{TP: 1, PP: 1, DP: 1, EP: 1})
	if err != nil {
		return 0, err
	}
	return p.stepMs(&s, batchLoad{decodeSeqs: float64(batch), decodeKV: float64(kv)}), nil
}
