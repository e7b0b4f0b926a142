package profile

import "github.com/dgdr-dev/dgdr/pkg/dist"

// Mode is aggregated (prefill and decode in the same worker) or disaggregated (separate pools).
type Mode string

const (
	ModeAgg    Mode = "agg"
	ModeDisagg Mode = "disagg"
)

// Role is what a pool of workers does.
type Role string

const (
	RoleAgg     Role = "agg"
	RolePrefill Role = "prefill"
	RoleDecode  Role = "decode"
)

// Backend names, as in the DGDR's spec.backend.
const (
	BackendVLLM   = "vllm"
	BackendSGLang = "sglang"
	BackendTRTLLM = "trtllm"
)

// Backends are the engines the model knows, in a fixed order (determinism).
var Backends = []string{BackendSGLang, BackendTRTLLM, BackendVLLM}

// Worker is a pool of identical engine workers.
type Worker struct {
	Role Role `json:"role"`
	// Count is the number of workers of this role in one replica of the configuration.
	Count int `json:"count"`
	// TP, PP are tensor and pipeline parallelism; DP is attention data parallelism (1 when unused);
	// EP is expert parallelism of the MoE layers (1 for dense models). A worker uses TP×PP×DP GPUs.
	TP int `json:"tp"`
	PP int `json:"pp"`
	EP int `json:"ep"`
	DP int `json:"dp,omitempty"`
	// Batch is the maximum number of concurrent sequences in one worker.
	Batch int `json:"batch"`
}

// GPUs is the number of GPUs one worker uses.
func (w Worker) GPUs() int { return w.TP * w.PP * max(w.DP, 1) }

// Config is one deployable configuration with its predicted (or measured) performance.
// Its JSON form is the `kubectl dgdr plan -o json` contract: other tools read it.
type Config struct {
	Backend string `json:"backend"`
	Mode    Mode   `json:"mode"`
	// GPUs is the total for all replicas: Replicas × Σ worker.Count × worker.GPUs().
	GPUs int `json:"gpus"`
	// Replicas is the number of copies of the worker set (for disagg, of the xPyD unit).
	Replicas int      `json:"replicas"`
	Workers  []Worker `json:"workers"`
	// WeightDtype and KVDtype are the precisions the prediction assumed (bf16, fp8, fp4).
	WeightDtype string `json:"weightDtype,omitempty"`
	KVDtype     string `json:"kvDtype,omitempty"`

	TTFTMs                 float64 `json:"ttftMs"`
	ITLMs                  float64 `json:"itlMs"`
	TokensPerSecondPerGPU  float64 `json:"tokensPerSecondPerGPU"`
	TokensPerSecondPerUser float64 `json:"tokensPerSecondPerUser"`
	// Bands are the p10–p90 intervals of TTFT, ITL and tokens/s/GPU (see IntervalTable).
	Bands
	MeetsSLA bool `json:"meetsSLA"`
}

// GPUsPerReplica is the GPUs of one replica.
func (c Config) GPUsPerReplica() int {
	n := 0
	for _, w := range c.Workers {
		n += w.Count * w.GPUs()
	}
	return n
}

// Workload is the traffic shape: one input and output length, or their distributions.
type Workload struct {
	// ISL and OSL are the lengths in tokens; with a distribution, Search sets them to its mean.
	ISL int `json:"isl"`
	OSL int `json:"osl"`
	// ISLDist and OSLDist, when set, are the lengths' distributions (see Search's "Workload
	// distributions"); unset, the length is ISL (OSL) for every request.
	ISLDist dist.Quantiles `json:"islDist,omitempty"`
	OSLDist dist.Quantiles `json:"oslDist,omitempty"`
	// SLAQuantile is the quantile of the input lengths, in (0, 1), whose requests must meet TTFT with
	// a distribution (0: DefaultSLAQuantile).
	SLAQuantile float64 `json:"slaQuantile,omitempty"`
}

// DefaultSLAQuantile: nine requests in ten must meet TTFT.
const DefaultSLAQuantile = 0.9

// SLA is the latency target in milliseconds.
type SLA struct {
	TTFTMs float64 `json:"ttftMs"`
	ITLMs  float64 `json:"itlMs"`
	// Confidence is the probability, in (0, 1), with which a configuration must meet both targets: it
	// meets the SLA when the Confidence-quantile of its predicted TTFT and ITL do (see Quantile).
	// 0 means DefaultConfidence, the point prediction (the median).
	Confidence float64 `json:"confidence,omitempty"`
}

// DefaultConfidence takes the point predictions as they are.
const DefaultConfidence = 0.5

// SLAProbability is the probability that a configuration meets each SLA target, under the
// distribution its intervals give (see Probability).
type SLAProbability struct {
	TTFT float64 `json:"ttft"`
	ITL  float64 `json:"itl"`
}

// Probabilities are c's probabilities of meeting sla's targets.
func (c Config) Probabilities(sla SLA) SLAProbability {
	return SLAProbability{
		TTFT: Probability(c.TTFTMs, c.TTFTP10Ms, c.TTFTP90Ms, sla.TTFTMs),
		ITL:  Probability(c.ITLMs, c.ITLP10Ms, c.ITLP90Ms, sla.ITLMs),
	}
}
