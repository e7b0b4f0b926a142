package profile

import (
	"math"
	"slices"
)

// Correction multiplies the predictions of one architecture (Model.ArchKey) on one GPU, backend and
// mode by factors fitted on its own measurements there: the in-cluster calibration (kubectl dgdr
// calibrate) and the few-shot table of make bench-accuracy. It applies only where it was measured:
// a model's errors differ in sign between situations (left out, DeepSeek-R1's ITL is under-predicted
// aggregated and over-predicted disaggregated on TRT-LLM), so factors carried elsewhere did harm.
type Correction struct {
	Arch    string `json:"arch"`
	GPU     string `json:"gpu,omitempty"`
	Backend string `json:"backend,omitempty"`
	Mode    Mode   `json:"mode,omitempty"`
	// TTFT and ITL multiply the predicted TTFT and ITL; Rows are the measurements behind them.
	TTFT float64 `json:"ttft"`
	ITL  float64 `json:"itl"`
	Rows int     `json:"rows"`
}

// correctionFor returns the factors of t in mode m: the entry of t's architecture, GPU, backend and
// mode, else none (1, 1).
func (c *Calib) correctionFor(t Target, m Mode) (ttft, itl float64) {
	want := Correction{Arch: t.Model.ArchKey(), GPU: t.GPU.Name, Backend: t.Backend, Mode: m}
	i := slices.IndexFunc(c.Corrections, func(x Correction) bool {
		return x.Arch == want.Arch && x.GPU == want.GPU && x.Backend == want.Backend && x.Mode == want.Mode
	})
	if i >= 0 && c.Corrections[i].TTFT > 0 && c.Corrections[i].ITL > 0 {
		return c.Corrections[i].TTFT, c.Corrections[i].ITL
	}
	return 1, 1
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
