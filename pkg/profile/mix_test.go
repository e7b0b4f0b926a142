package profile_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/pkg/dist"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

func percentiles(t *testing.T, kv ...float64) dist.Quantiles {
	t.Helper()
	var ps, vs []float64
	for i := 0; i+1 < len(kv); i += 2 {
		ps, vs = append(ps, kv[i]), append(vs, kv[i+1])
	}
	q, err := dist.FromPercentiles(ps, vs)
	require.NoError(t, err)
	return q
}

// TestDistributionChangesThePick: a heavy-tailed workload is searched differently from a workload of
// its mean lengths — its tail requests must meet TTFT and its throughput mixes the slices — and a
// degenerate distribution (every request alike) is searched exactly like the single lengths.
func TestDistributionChangesThePick(t *testing.T) {
	tests := map[string]struct {
		model    string
		total    int
		isl, osl dist.Quantiles
		ttft     float64
		differs  bool
	}{
		"heavy-tailed prompts, dense": {model: "Qwen/Qwen3-32B", total: 16, ttft: 300,
			isl: percentiles(t, 50, 1000, 90, 6000, 99, 30000), osl: percentiles(t, 50, 200, 90, 600, 99, 2000), differs: true},
		"heavy-tailed prompts, MoE": {model: "Qwen/Qwen3-30B-A3B", total: 8, ttft: 200,
			isl: percentiles(t, 50, 500, 90, 8000, 99, 32000), osl: percentiles(t, 50, 100, 99, 1000), differs: true},
		"every request alike": {model: "Qwen/Qwen3-32B", total: 16, ttft: 300,
			isl: dist.Point(2048), osl: dist.Point(256), differs: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := searchReq(t, tc.model, "h200_sxm", tc.total)
			req.SLA = profile.SLA{TTFTMs: tc.ttft, ITLMs: 30}
			req.Workload = profile.Workload{ISLDist: tc.isl, OSLDist: tc.osl}
			withDist, err := profile.Search(t.Context(), req)
			require.NoError(t, err)

			mean := req
			mean.Workload = profile.Workload{ISL: int(tc.isl.Mean() + 0.5), OSL: int(tc.osl.Mean() + 0.5)}
			atMean, err := profile.Search(t.Context(), mean)
			require.NoError(t, err)

			a, ok := withDist.SelectedConfig()
			require.True(t, ok)
			b, ok := atMean.SelectedConfig()
			require.True(t, ok)
			t.Logf("distribution: %s (%.0f tok/s/GPU, TTFT %.0f ms, meets %v); mean %d/%d: %s (%.0f tok/s/GPU, TTFT %.0f ms)",
				profile.Describe(a), a.TokensPerSecondPerGPU, a.TTFTMs, withDist.MeetsSLA,
				mean.Workload.ISL, mean.Workload.OSL, profile.Describe(b), b.TokensPerSecondPerGPU, b.TTFTMs)
			if !tc.differs {
				assert.Equal(t, atMean.Candidates, withDist.Candidates)
				return
			}
			assert.NotEqual(t, profile.Describe(b), profile.Describe(a), "the tail changes the pick")
			// The mean's pick, costed under the distribution, is what the tail makes of it: it
			// misses TTFT for the SLA quantile's requests, or it serves less than the distribution's pick.
			c, err := profile.Cost(req, b)
			require.NoError(t, err)
			assert.True(t, !c.Config.MeetsSLA || c.Config.TokensPerSecondPerGPU < a.TokensPerSecondPerGPU,
				"the mean's pick under the distribution: %+v", c.Config)
		})
	}
}

// TestCostMatchesSearch: Cost predicts a candidate of a search exactly as the search did.
func TestCostMatchesSearch(t *testing.T) {
	req := searchReq(t, "Qwen/Qwen3-32B", "h200_sxm", 8)
	req.Workload = profile.Workload{ISLDist: percentiles(t, 50, 1000, 90, 4000), OSLDist: percentiles(t, 50, 200, 99, 800)}
	res, err := profile.Search(t.Context(), req)
	require.NoError(t, err)
	for _, i := range res.Front {
		want := res.Candidates[i]
		got, err := profile.Cost(req, want.Config)
		require.NoError(t, err)
		assert.Equal(t, want.Config, got.Config)
		assert.Equal(t, want.Reasons, got.Reasons)
	}
}

func TestDistributionErrors(t *testing.T) {
	req := searchReq(t, "Qwen/Qwen3-32B", "h200_sxm", 8)
	req.Workload = profile.Workload{ISLDist: dist.Quantiles{{U: 0.5, Value: 10}, {U: 0.2, Value: 20}}, OSL: 100}
	_, err := profile.Search(t.Context(), req)
	require.ErrorContains(t, err, "workload isl distribution")
	req.Workload = profile.Workload{ISLDist: dist.Point(100), OSL: 100, SLAQuantile: 1.5}
	_, err = profile.Search(t.Context(), req)
	require.ErrorContains(t, err, "sla quantile")
}
