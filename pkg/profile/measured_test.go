package profile

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/pkg/hw"
)

func TestRank(t *testing.T) {
	pt := func(ttft, itl, perGPU float64) Candidate {
		return Candidate{Predicted: true, Config: Config{Backend: "vllm", Mode: ModeAgg, Replicas: 1, GPUs: 1,
			Workers: []Worker{{Role: RoleAgg, Count: 1, TP: 1, PP: 1, EP: 1, Batch: 1}},
			TTFTMs:  ttft, ITLMs: itl, TokensPerSecondPerGPU: perGPU, TokensPerSecondPerUser: 1000 / itl}}
	}
	req := SearchRequest{SLA: SLA{TTFTMs: 100, ITLMs: 10}, TotalGPUs: 8, GPUsPerNode: 8}

	t.Run("the highest tokens/s/GPU meeting the SLA", func(t *testing.T) {
		cands := []Candidate{pt(50, 5, 100), pt(60, 8, 300), pt(70, 12, 500), pt(150, 6, 900),
			{Config: Config{Backend: "vllm"}, Reasons: []RejectReason{RejectMemory}, Detail: "too big"}}
		res := Rank(req, cands)
		require.True(t, res.MeetsSLA)
		assert.Equal(t, 1, res.Selected)
		assert.Equal(t, []RejectReason{RejectITL}, res.Candidates[2].Reasons)
		assert.Equal(t, []RejectReason{RejectTTFT}, res.Candidates[3].Reasons)
		assert.Equal(t, []RejectReason{RejectMemory}, res.Candidates[4].Reasons, "an uncosted candidate keeps its reason")
		assert.Equal(t, []int{2, 1, 0}, res.Front, "the front leaves out the TTFT miss")
		assert.Equal(t, 1, res.Rejected[RejectITL].Count)
		assert.Equal(t, 4, res.Predicted)
	})
	t.Run("the closest miss when nothing meets the SLA", func(t *testing.T) {
		res := Rank(req, []Candidate{pt(50, 20, 100), pt(50, 11, 50)})
		assert.False(t, res.MeetsSLA)
		assert.Equal(t, 1, res.Selected)
		require.Len(t, res.Misses, 1)
		assert.Equal(t, "ITL", res.Misses[0].Name)
		assert.Contains(t, res.Explanation, "no configuration meets")
	})
	t.Run("stale reasons are recomputed", func(t *testing.T) {
		c := pt(50, 5, 100)
		c.Reasons = []RejectReason{RejectITL}
		res := Rank(req, []Candidate{c})
		assert.Empty(t, res.Candidates[0].Reasons)
		assert.True(t, res.Candidates[0].Config.MeetsSLA)
	})
	t.Run("nothing costed", func(t *testing.T) {
		res := Rank(req, nil)
		assert.Equal(t, -1, res.Selected)
	})
}

func TestSearchRequestPredictor(t *testing.T) {
	m, err := LookupModel("Qwen/Qwen3-8B")
	require.NoError(t, err)
	g, err := hw.Lookup("h200_sxm")
	require.NoError(t, err)
	req := SearchRequest{Model: m, GPU: g, Workload: Workload{ISL: 512, OSL: 64}, SLA: SLA{TTFTMs: 200, ITLMs: 20}, TotalGPUs: 4, GPUsPerNode: 4}
	res, err := Search(t.Context(), req)
	require.NoError(t, err)
	p, err := req.Predictor("vllm")
	require.NoError(t, err)
	checked := 0
	for _, c := range res.Candidates {
		if !c.Predicted || c.Config.Backend != "vllm" {
			continue
		}
		pr, err := p.Predict(c.Config, 0)
		require.NoError(t, err)
		assert.InDelta(t, c.Config.ITLMs, pr.ITLMs, 1e-9, "the search's own prediction for %s", Describe(c.Config))
		assert.InDelta(t, c.Config.TTFTMs, pr.TTFTMs, 1e-9)
		checked++
	}
	assert.Positive(t, checked)
	_, err = req.Predictor("nope")
	assert.Error(t, err)
}
