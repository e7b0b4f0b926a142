package profile_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// A correction scales the predictions of its architecture, GPU, backend and mode, and only those; the
// throughput follows a request's whole latency.
func TestCorrection(t *testing.T) {
	base, err := profile.EmbeddedCalibration()
	require.NoError(t, err)
	m, err := profile.LookupModel("Qwen/Qwen3-32B")
	require.NoError(t, err)
	cfg := profile.Config{Mode: profile.ModeAgg, Workers: []profile.Worker{{Role: profile.RoleAgg, TP: 2, Batch: 32}}}
	predict := func(gpu string, c profile.Calib) profile.Prediction {
		g, err := hw.Lookup(gpu)
		require.NoError(t, err)
		p, err := profile.NewPredictor(profile.Target{Model: m, GPU: g, Backend: profile.BackendVLLM, Workload: profile.Workload{ISL: 1024, OSL: 256}})
		require.NoError(t, err)
		p, err = p.WithCalibration(c)
		require.NoError(t, err)
		pr, err := p.Predict(cfg, 32)
		require.NoError(t, err)
		return pr
	}
	corrected := base
	corrected.Corrections = []profile.Correction{{Arch: m.ArchKey(), GPU: "h200_sxm", Backend: profile.BackendVLLM, Mode: profile.ModeAgg, TTFT: 2, ITL: 1.5, Rows: 3}}
	before, after := predict("h200_sxm", base), predict("h200_sxm", corrected)
	assert.InDelta(t, 2*before.TTFTMs, after.TTFTMs, 1e-9)
	assert.InDelta(t, 1.5*before.ITLMs, after.ITLMs, 1e-9)
	assert.InDelta(t, 1000/after.ITLMs, after.TokensPerSecondPerUser, 1e-9)
	req := func(p profile.Prediction) float64 { return p.TTFTMs + 255*p.ITLMs }
	assert.InDelta(t, before.TokensPerSecondPerGPU*req(before)/req(after), after.TokensPerSecondPerGPU, 1e-6)
	// The corrected prediction takes the interval measured after corrections of as many rows; for
	// ITL here it is narrower than the uncorrected one: the measurements took out the bias it allowed
	// for (TTFT's is about as wide).
	iv, err := profile.EmbeddedIntervals()
	require.NoError(t, err)
	cell, ok := iv.Lookup(profile.IntervalKey{Backend: profile.BackendVLLM, Mode: profile.ModeAgg, Shots: 3})
	require.True(t, ok)
	require.Equal(t, 3, cell.Shots)
	assert.Equal(t, cell.Bands(after), after.Bands)
	width := func(p profile.Prediction) (float64, float64) {
		return (p.TTFTP90Ms - p.TTFTP10Ms) / p.TTFTMs, (p.ITLP90Ms - p.ITLP10Ms) / p.ITLMs
	}
	_, bi := width(before)
	_, ai := width(after)
	assert.Less(t, ai, bi, "corrected ITL interval narrower")
	assert.Equal(t, predict("h100_sxm", base), predict("h100_sxm", corrected), "another GPU is not corrected")

	// A search with the calibration predicts with it and says so.
	r := searchReq(t, "Qwen/Qwen3-32B", "h200_sxm", 8)
	r.Backends = []string{profile.BackendVLLM}
	plain, err := profile.Search(t.Context(), r)
	require.NoError(t, err)
	corrected.Method = "team-a/dgdr-calibration: 3 measured rows"
	r.Calibration = &corrected
	res, err := profile.Search(t.Context(), r)
	require.NoError(t, err)
	assert.Empty(t, plain.Calibration)
	assert.Equal(t, corrected.Method, res.Calibration)
	pc, rc := plain.Candidates[0].Config, res.Candidates[0].Config
	require.Equal(t, pc.Layout(), rc.Layout())
	assert.InDelta(t, 1.5*pc.ITLMs, rc.ITLMs, 1e-6)
}
