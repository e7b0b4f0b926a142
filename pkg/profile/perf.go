package profile

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/dgdr-dev/dgdr/pkg/hw"
)

// Target is what a search holds fixed: the model, the GPU, the engine and the traffic.
type Target struct {
	Model    Model    `json:"model"`
	GPU      hw.GPU   `json:"gpu"`
	Backend  string   `json:"backend"`
	Workload Workload `json:"workload"`
	// WeightDtype overrides the checkpoint's precision of the linear layers (attention, dense MLP) and,
	// unless MoEDtype is set, of the routed experts: bf16, fp8 or fp4 ("" = from Model).
	WeightDtype string `json:"weightDtype,omitempty"`
	MoEDtype    string `json:"moeDtype,omitempty"`
	// KVDtype is the KV-cache precision, bf16 or fp8 ("" = the checkpoint's fp8 KV cache if it has
	// one, else the backend's usual choice: fp8 for TRT-LLM with quantized weights, bf16 otherwise).
	KVDtype string `json:"kvDtype,omitempty"`
	// SpecDraft is the draft tokens per decode step of speculative decoding with the model's own
	// multi-token-prediction modules (0: off; ignored for a model without them). The mean tokens a
	// step emits are the calibration's MTPAccept, capped at 1+SpecDraft.
	SpecDraft int `json:"specDraft,omitempty"`
}

// key identifies the target among a table's rows, for sharing one Predictor between them.
func (t Target) key() string {
	return fmt.Sprintf("%s|%s|%s|%s|%s|%s|%d|%d|%d", t.Model.ID, t.GPU.Name, t.Backend, t.WeightDtype, t.MoEDtype,
		t.KVDtype, t.Workload.ISL, t.Workload.OSL, t.SpecDraft)
}

// Method is where the kernel times of a prediction came from.
type Method string

const (
	MethodKernelTable Method = "kernel-table"
	MethodRoofline    Method = "roofline"
)

// Prediction is the predicted steady state of a Config under a concurrency.
type Prediction struct {
	TTFTMs                 float64 `json:"ttftMs"`
	ITLMs                  float64 `json:"itlMs"`
	TokensPerSecondPerGPU  float64 `json:"tokensPerSecondPerGPU"`
	TokensPerSecondPerUser float64 `json:"tokensPerSecondPerUser"`
	RequestsPerSecond      float64 `json:"requestsPerSecond"`
	// Concurrency is the concurrency the prediction used (the argument, or the default).
	Concurrency int `json:"concurrency"`
	// RunningBatch is the sequences one agg or decode worker runs per step in the steady state;
	// BatchLimited says the KV cache, not Worker.Batch, bounded it.
	RunningBatch int  `json:"runningBatch"`
	BatchLimited bool `json:"batchLimited,omitempty"`
	// PrefillMs is one request's prefill alone on an idle worker; DecodeStepMs the decode step at the
	// running batch (both GPU time plus engine overheads).
	PrefillMs    float64 `json:"prefillMs"`
	DecodeStepMs float64 `json:"decodeStepMs"`
	// MemoryGiB is the per-GPU memory the running batch needs (largest over the roles).
	MemoryGiB   float64 `json:"memoryGiB"`
	Method      Method  `json:"method"`
	WeightDtype string  `json:"weightDtype"`
	KVDtype     string  `json:"kvDtype"`
	// Bands are the p10–p90 intervals of TTFT, ITL and tokens/s/GPU.
	Bands
}

// ErrNoFit is the sentinel of every "does not fit in GPU memory" error (see FitError).
var ErrNoFit = errors.New("does not fit in GPU memory")

// ErrUnsupported marks a target or configuration the model cannot cost (unknown backend, a precision
// the GPU lacks, a parallelism the model's shape forbids).
var ErrUnsupported = errors.New("unsupported")

// FitError says why a worker does not fit: what was needed against what the GPU offers.
type FitError struct {
	Role    Role    `json:"role"`
	What    string  `json:"what"`
	NeedGiB float64 `json:"needGiB"`
	HaveGiB float64 `json:"haveGiB"`
}

func (e *FitError) Error() string {
	return fmt.Sprintf("%s worker does not fit in GPU memory: %s needs %.1f GiB per GPU, %.1f GiB available",
		e.Role, e.What, e.NeedGiB, e.HaveGiB)
}

// Is makes errors.Is(err, ErrNoFit) true.
func (e *FitError) Is(target error) bool { return target == ErrNoFit }

// Predict predicts c under concurrency for t. It builds a Predictor: keep one per target in loops.
func Predict(t Target, c Config, concurrency int) (Prediction, error) {
	p, err := NewPredictor(t)
	if err != nil {
		return Prediction{}, err
	}
	return p.Predict(c, concurrency)
}

// Predictor holds what is fixed for a target, precomputed so that Predict is cheap.
type Predictor struct {
	t     Target
	model modelShape
	k     kernels
	cal   BackendCalib
	glue  float64 // ms per layer of fixed glue (norms, residuals, RoPE, small launches)
	wd    dtype   // linear layers (attention projections, dense MLP, shared experts)
	ed    dtype   // routed experts
	kvd   dtype
	// bands are the interval cells of this target's aggregated and disaggregated predictions.
	bands map[Mode]IntervalCell
	// corr are the calibration's correction factors (TTFT, ITL) of this target per mode, when not 1.
	corr map[Mode][2]float64
}

// NewPredictor validates the target and precomputes its kernels and shapes.
func NewPredictor(t Target) (*Predictor, error) {
	t.Backend = strings.ToLower(strings.TrimSpace(t.Backend))
	if t.Workload.ISL <= 0 || t.Workload.OSL <= 0 {
		return nil, fmt.Errorf("workload isl and osl must be positive, got %d and %d", t.Workload.ISL, t.Workload.OSL)
	}
	cals, err := loadCalib()
	if err != nil {
		return nil, err
	}
	cal, ok := cals.Backends[t.Backend]
	if !ok {
		return nil, fmt.Errorf("backend %q: %w (expected one of %s)", t.Backend, ErrUnsupported, strings.Join(Backends, ", "))
	}
	ms, err := newModelShape(t.Model)
	if err != nil {
		return nil, err
	}
	wd, ed, err := resolveWeightDtypes(t.WeightDtype, t.MoEDtype, t.Model)
	if err != nil {
		return nil, err
	}
	kvd, err := resolveKVDtype(t.KVDtype, t.Model.KVQuant, t.Backend, wd, ms.mla, t.GPU)
	if err != nil {
		return nil, err
	}
	k, err := newKernels(t.GPU)
	if err != nil {
		return nil, err
	}
	iv, err := loadIntervals()
	if err != nil {
		return nil, err
	}
	bands := map[Mode]IntervalCell{}
	for _, m := range []Mode{ModeAgg, ModeDisagg} {
		if c, ok := iv.Lookup(IntervalKey{Backend: t.Backend, Mode: m, Method: k.method, Calibrated: iv.IsCalibrated(t.Model)}); ok {
			bands[m] = c
		}
	}
	return &Predictor{t: t, model: ms, k: k, cal: cal, glue: cals.GlueUsPerLayer / 1000, wd: wd, ed: ed, kvd: kvd, bands: bands}, nil
}

// Target returns the target the predictor was built for (with the backend name normalised).
func (p *Predictor) Target() Target { return p.t }

// Method is where this target's kernel times come from.
func (p *Predictor) Method() Method { return p.k.method }

// Predict predicts c under concurrency (≤ 0: as many requests as batch slots).
func (p *Predictor) Predict(c Config, concurrency int) (Prediction, error) {
	if c.Backend != "" && !strings.EqualFold(c.Backend, p.t.Backend) {
		return Prediction{}, fmt.Errorf("config backend %q differs from the target's %q", c.Backend, p.t.Backend)
	}
	replicas := max(c.Replicas, 1)
	var pred Prediction
	var err error
	switch c.Mode {
	case ModeAgg, "":
		w, werr := c.worker(RoleAgg)
		if werr != nil {
			return Prediction{}, werr
		}
		pred, err = p.predictAgg(w, replicas, concurrency)
	case ModeDisagg:
		pw, perr := c.worker(RolePrefill)
		if perr != nil {
			return Prediction{}, perr
		}
		dw, derr := c.worker(RoleDecode)
		if derr != nil {
			return Prediction{}, derr
		}
		pred, err = p.predictDisagg(pw, dw, replicas, concurrency)
	default:
		return Prediction{}, fmt.Errorf("mode %q: expected agg or disagg", c.Mode)
	}
	if err != nil {
		return Prediction{}, err
	}
	pred.Method = p.k.method
	pred.WeightDtype = p.wd.String()
	pred.KVDtype = p.kvd.String()
	if f, ok := p.corr[cmp.Or(c.Mode, ModeAgg)]; ok {
		pred.correct(f[0], f[1], p.t.Workload.OSL)
	}
	if pred.ITLMs > 0 {
		pred.TokensPerSecondPerUser = 1000 / pred.ITLMs
	}
	if math.IsNaN(pred.TTFTMs) || math.IsNaN(pred.ITLMs) || math.IsInf(pred.TTFTMs, 0) || pred.ITLMs <= 0 {
		return Prediction{}, fmt.Errorf("prediction diverged (ttft %v ms, itl %v ms)", pred.TTFTMs, pred.ITLMs)
	}
	if cell, ok := p.bands[cmp.Or(c.Mode, ModeAgg)]; ok {
		pred.Bands = cell.Bands(pred)
	}
	return pred, nil
}

// worker returns the config's single worker of role r, normalised (PP, DP, EP at least 1).
func (c Config) worker(r Role) (Worker, error) {
	found := -1
	for i, w := range c.Workers {
		if w.Role == r || (r == RoleAgg && w.Role == "") {
			if found >= 0 {
				return Worker{}, fmt.Errorf("config has more than one %s worker: expected one per role", r)
			}
			found = i
		}
	}
	if found < 0 {
		return Worker{}, fmt.Errorf("%s config has no %s worker", c.Mode, r)
	}
	w := c.Workers[found]
	w.Role = r
	w.Count = max(w.Count, 1)
	w.PP = max(w.PP, 1)
	w.DP = max(w.DP, 1)
	w.EP = max(w.EP, 1)
	if w.TP < 1 {
		return Worker{}, fmt.Errorf("%s worker tp must be at least 1, got %d", r, w.TP)
	}
	if w.Batch < 0 {
		return Worker{}, fmt.Errorf("%s worker batch must not be negative, got %d", r, w.Batch)
	}
	return w, nil
}
