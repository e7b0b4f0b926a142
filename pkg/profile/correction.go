package profile

import (
	"math"
	"slices"
)

// Correction multiplies the predictions of one architecture (Model.ArchKey) in one weight precision on
// one GPU, backend and mode by factors fitted on its own measurements there: the in-cluster
// calibration (kubectl dgdr calibrate) and the few-shot tables of make bench-accuracy. It applies only
// where it was measured: a model's errors differ in sign between situations (left out, DeepSeek-R1's
// ITL is under-predicted aggregated and over-predicted disaggregated on TRT-LLM) and between
// precisions (Llama-3.1-8B's fp8 checkpoint against its bf16 one), so factors carried elsewhere did harm.
type Correction struct {
	Arch string `json:"arch"`
	// Dtype is the weight precision predicted (Prediction.WeightDtype); empty matches any (fits
	// stored before it was recorded).
	Dtype   string `json:"dtype,omitempty"`
	GPU     string `json:"gpu,omitempty"`
	Backend string `json:"backend,omitempty"`
	Mode    Mode   `json:"mode,omitempty"`
	// TTFT and ITL multiply the predicted TTFT and ITL; Rows are the measurements behind them.
	TTFT float64 `json:"ttft"`
	ITL  float64 `json:"itl"`
	Rows int     `json:"rows"`
}

// correctionFor returns the entry of t's architecture, weight precision dtype, GPU, backend and mode m
// (false when c has none with positive factors).
func (c *Calib) correctionFor(t Target, dtype string, m Mode) (Correction, bool) {
	want := Correction{Arch: t.Model.ArchKey(), Dtype: dtype, GPU: t.GPU.Name, Backend: t.Backend, Mode: m}
	i := slices.IndexFunc(c.Corrections, func(x Correction) bool {
		return x.Arch == want.Arch && (x.Dtype == "" || x.Dtype == want.Dtype) && x.GPU == want.GPU && x.Backend == want.Backend && x.Mode == want.Mode
	})
	if i >= 0 && c.Corrections[i].TTFT > 0 && c.Corrections[i].ITL > 0 {
		return c.Corrections[i], true
	}
	return Correction{}, false
}

// correct applies the factors to a prediction. A closed loop's throughput follows a request's whole
// latency TTFT + (OSL−1)·ITL, so tokens/s/GPU and requests/s scale by its inverse.
func (pred *Prediction) correct(ttft, itl float64, osl int) {
	if ttft == 1 && itl == 1 {
		return
	}
	n := float64(max(osl-1, 0))
	before := pred.TTFTMs + n*pred.ITLMs
	pred.TTFTMs *= ttft
	pred.ITLMs *= itl
	if after := pred.TTFTMs + n*pred.ITLMs; after > 0 && !math.IsInf(after, 0) {
		pred.TokensPerSecondPerGPU *= before / after
		pred.RequestsPerSecond *= before / after
	}
}
