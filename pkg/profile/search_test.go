package profile_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/pareto"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

func searchReq(t testing.TB, model, gpu string, total int) profile.SearchRequest {
	t.Helper()
	m, err := profile.LookupModel(model)
	require.NoError(t, err)
	g, err := hw.Lookup(gpu)
	require.NoError(t, err)
	return profile.SearchRequest{Model: m, GPU: g, Workload: profile.Workload{ISL: 512, OSL: 128},
		SLA: profile.SLA{TTFTMs: 100, ITLMs: 15}, TotalGPUs: total}
}

// checkLayout asserts the budget and node rules on every candidate of a result.
func checkLayout(t *testing.T, req profile.SearchRequest, res profile.SearchResult) {
	t.Helper()
	gpn := req.GPUsPerNode
	if gpn == 0 {
		gpn = req.GPU.GPUsPerNode
	}
	for _, c := range res.Candidates {
		cfg := c.Config
		for _, w := range cfg.Workers {
			// A worker stays in a node, or takes whole nodes with TP inside one.
			if g := w.GPUs(); g > gpn {
				assert.Zerof(t, g%gpn, "%s: a multinode worker takes whole nodes", profile.Describe(cfg))
				assert.LessOrEqualf(t, w.TP, gpn, "%s: TP stays inside a node", profile.Describe(cfg))
			}
		}
		if !c.Predicted {
			require.NotEmpty(t, c.Reasons)
			require.NotEmpty(t, c.Detail)
			if slices.Contains(c.Reasons, profile.RejectGPUBudget) {
				assert.Greater(t, cfg.GPUsPerReplica(), req.TotalGPUs, c.Detail)
			}
			continue
		}
		assert.GreaterOrEqual(t, cfg.Replicas, 1)
		assert.Equal(t, cfg.Replicas*cfg.GPUsPerReplica(), cfg.GPUs, profile.Describe(cfg))
		assert.LessOrEqualf(t, cfg.GPUs, req.TotalGPUs, "%s exceeds the budget", profile.Describe(cfg))
		assert.Greater(t, cfg.GPUs+cfg.GPUsPerReplica(), req.TotalGPUs, "%s: replicas fill the budget", profile.Describe(cfg))
		for _, w := range cfg.Workers {
			assert.Positive(t, w.Batch)
			assert.Positive(t, w.Count)
		}
	}
}

func TestSearchRespectsBudgetAndNodes(t *testing.T) {
	tests := []struct {
		name        string
		model, gpu  string
		total, node int
		multinode   bool
	}{
		{"dense one GPU", "Qwen/Qwen3-8B", "h100_sxm", 1, 0, false},
		{"dense odd budget", "Qwen/Qwen3-32B", "h200_sxm", 6, 0, false},
		{"dense small nodes", "Qwen/Qwen3-32B", "h100_sxm", 12, 4, false},
		{"dense forced multinode", "Qwen/Qwen3-8B", "h100_sxm", 16, 4, true},
		{"moe", "Qwen/Qwen3-30B-A3B", "h200_sxm", 8, 0, false},
		{"too big for a node", "deepseek-ai/DeepSeek-R1", "h100_sxm", 16, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := searchReq(t, tt.model, tt.gpu, tt.total)
			req.GPUsPerNode, req.MultiNode = tt.node, tt.multinode
			res, err := profile.Search(t.Context(), req)
			require.NoError(t, err)
			require.Positive(t, res.Predicted, res.Explanation)
			checkLayout(t, req, res)
		})
	}
}

func TestSearchMultinodeOnlyWhenNeeded(t *testing.T) {
	spans := func(res profile.SearchResult, gpn int) (n int) {
		for _, c := range res.Candidates {
			for _, w := range c.Config.Workers {
				if w.GPUs() > gpn {
					n++
				}
			}
		}
		return n
	}
	req := searchReq(t, "Qwen/Qwen3-8B", "h100_sxm", 16)
	res, err := profile.Search(t.Context(), req)
	require.NoError(t, err)
	assert.Zero(t, spans(res, 8), "a model that fits a node gets single-node workers")

	req = searchReq(t, "deepseek-ai/DeepSeek-R1", "h100_sxm", 16)
	res, err = profile.Search(t.Context(), req)
	require.NoError(t, err)
	assert.Positive(t, spans(res, 8), "a model too big for a node gets whole-node workers")
	assert.Positive(t, res.Rejected[profile.RejectMemory].Count, "the single-node layouts are rejected for memory")
	sel, ok := res.SelectedConfig()
	require.True(t, ok)
	assert.Greater(t, sel.Workers[0].GPUs(), 8)
}

func TestSearchNothingFits(t *testing.T) {
	req := searchReq(t, "deepseek-ai/DeepSeek-R1", "h100_sxm", 8)
	res, err := profile.Search(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, -1, res.Selected)
	assert.Zero(t, res.Predicted)
	assert.Empty(t, res.Front)
	mem := res.Rejected[profile.RejectMemory]
	require.Positive(t, mem.Count)
	require.NotEmpty(t, mem.Examples)
	assert.Contains(t, mem.Examples[0].Detail, "GiB")
	assert.Positive(t, res.Rejected[profile.RejectGPUBudget].Count, "whole-node workers need more than 8 GPUs")
	assert.Contains(t, res.Explanation, "no configuration could be predicted within 8 GPUs")
	assert.Contains(t, res.Explanation, "memory")
	assert.Contains(t, res.Explanation, "the closest, ")
	assert.Contains(t, res.Explanation, "does not fit in GPU memory")
}

func TestSearchSelection(t *testing.T) {
	for _, sla := range []profile.SLA{{TTFTMs: 100, ITLMs: 15}, {TTFTMs: 300, ITLMs: 40}, {TTFTMs: 80, ITLMs: 10}} {
		req := searchReq(t, "Qwen/Qwen3-32B", "h200_sxm", 16)
		req.SLA = sla
		res, err := profile.Search(t.Context(), req)
		require.NoError(t, err)

		any := false
		best := 0.0
		for _, c := range res.Candidates {
			if c.Predicted && c.Config.TTFTMs <= sla.TTFTMs && c.Config.ITLMs <= sla.ITLMs {
				any = true
				best = max(best, c.Config.TokensPerSecondPerGPU)
				assert.True(t, c.Config.MeetsSLA)
				assert.Empty(t, c.Reasons)
			}
		}
		require.True(t, any, "the SLA %+v is reachable", sla)
		sel, ok := res.SelectedConfig()
		require.True(t, ok)
		assert.True(t, res.MeetsSLA)
		assert.True(t, sel.MeetsSLA)
		assert.Equal(t, best, sel.TokensPerSecondPerGPU, "the selection has the most tokens/s/GPU within the SLA")
		assert.GreaterOrEqual(t, res.SelectedOnFront(), 0, "a selection meeting the SLA is on the front")
		assert.Contains(t, res.Explanation, "has the highest tokens/s/GPU")

		// The front: candidates meeting TTFT, none dominated by another such candidate.
		for _, i := range res.Front {
			f := res.Candidates[i].Config
			require.LessOrEqual(t, f.TTFTMs, sla.TTFTMs)
			for _, c := range res.Candidates {
				if c.Predicted && c.Config.TTFTMs <= sla.TTFTMs {
					require.False(t, pareto.Dominates(c.Config.TokensPerSecondPerUser, c.Config.TokensPerSecondPerGPU,
						f.TokensPerSecondPerUser, f.TokensPerSecondPerGPU), "%s dominates front point %s", profile.Describe(c.Config), profile.Describe(f))
				}
			}
		}
	}
}

func TestSearchNearestMiss(t *testing.T) {
	req := searchReq(t, "Qwen/Qwen3-32B", "h200_sxm", 8)
	req.SLA = profile.SLA{TTFTMs: 5, ITLMs: 2}
	res, err := profile.Search(t.Context(), req)
	require.NoError(t, err)
	require.False(t, res.MeetsSLA)
	sel, ok := res.SelectedConfig()
	require.True(t, ok)
	assert.False(t, sel.MeetsSLA)
	require.Len(t, res.Misses, 2, "both targets are out of reach")
	assert.Equal(t, "TTFT", res.Misses[0].Name)
	assert.InDelta(t, sel.TTFTMs-5, res.Misses[0].Over(), 1e-9)
	assert.Equal(t, "ITL", res.Misses[1].Name)
	assert.InDelta(t, sel.ITLMs-2, res.Misses[1].Over(), 1e-9)

	// The closest is the smallest summed relative excess over everything predicted.
	bounds := []pareto.Bound[profile.Config]{
		{Name: "TTFT", Limit: 5, Value: func(c profile.Config) float64 { return c.TTFTMs }},
		{Name: "ITL", Limit: 2, Value: func(c profile.Config) float64 { return c.ITLMs }},
	}
	d := pareto.Distance(sel, bounds)
	for _, c := range res.Candidates {
		if c.Predicted {
			require.GreaterOrEqual(t, pareto.Distance(c.Config, bounds), d)
		}
	}
	assert.Equal(t, res.Predicted, res.Rejected[profile.RejectTTFT].Count)
	assert.Equal(t, res.Predicted, res.Rejected[profile.RejectITL].Count)
	assert.Contains(t, res.Explanation, "no configuration meets TTFT ≤ 5 ms and ITL ≤ 2 ms; the closest, ")
	assert.Contains(t, res.Explanation, res.Misses[0].String())
	assert.Contains(t, res.Explanation, "ttft")
	for _, r := range []profile.RejectReason{profile.RejectTTFT, profile.RejectITL} {
		ex := res.Rejected[r].Examples
		require.Len(t, ex, 3)
		assert.Contains(t, ex[0].Detail, "ms >")
	}
}

func TestSearchBackendsAndModes(t *testing.T) {
	req := searchReq(t, "Qwen/Qwen3-8B", "h200_sxm", 4)
	req.Backends = []string{"VLLM"}
	req.Modes = []profile.Mode{profile.ModeDisagg}
	res, err := profile.Search(t.Context(), req)
	require.NoError(t, err)
	require.Positive(t, res.Predicted)
	for _, c := range res.Candidates {
		assert.Equal(t, "vllm", c.Config.Backend)
		assert.Equal(t, profile.ModeDisagg, c.Config.Mode)
	}
	assert.Positive(t, res.Probes, "disagg prunes with probes")
	assert.Equal(t, []string{"VLLM"}, req.Backends, "the caller's request is left as it was")
}

func TestSearchDeterministic(t *testing.T) {
	req := searchReq(t, "Qwen/Qwen3-30B-A3B", "h100_sxm", 8)
	a, err := profile.Search(t.Context(), req)
	require.NoError(t, err)
	b, err := profile.Search(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, a, b)
}

// cancelAfter is a context that reports itself cancelled from its limit-th Err call on, so that a
// test stops a search part-way through without depending on timing.
type cancelAfter struct {
	context.Context
	calls atomic.Int64
	limit int64
}

func (c *cancelAfter) Err() error {
	if c.calls.Add(1) >= c.limit {
		return context.Canceled
	}
	return nil
}

func TestSearchCancelled(t *testing.T) {
	req := searchReq(t, "Qwen/Qwen3-30B-A3B", "h100_sxm", 8)
	want, err := profile.Search(t.Context(), req)
	require.NoError(t, err)
	backends := len(profile.Backends)

	t.Run("before it starts", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := profile.Search(ctx, req)
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("part-way: each backend stops at its next candidate", func(t *testing.T) {
		ctx := &cancelAfter{Context: t.Context(), limit: 50}
		_, err := profile.Search(ctx, req)
		require.ErrorIs(t, err, context.Canceled)
		assert.LessOrEqual(t, ctx.calls.Load(), ctx.limit+int64(backends)+1)
	})
	t.Run("never: checked between candidates, result unchanged", func(t *testing.T) {
		ctx := &cancelAfter{Context: t.Context(), limit: 1 << 40}
		got, err := profile.Search(ctx, req)
		require.NoError(t, err)
		assert.Equal(t, want, got)
		assert.GreaterOrEqual(t, ctx.calls.Load(), int64(got.Predicted))
	})
}

func TestSearchRequestErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*profile.SearchRequest)
		want string
	}{
		{"no budget", func(r *profile.SearchRequest) { r.TotalGPUs = 0 }, "total gpus must be at least 1"},
		{"bad node", func(r *profile.SearchRequest) { r.GPUsPerNode = -1 }, "gpus per node must be at least 1"},
		{"bad workload", func(r *profile.SearchRequest) { r.Workload.OSL = 0 }, "isl and osl must be at least 1"},
		{"bad sla", func(r *profile.SearchRequest) { r.SLA.ITLMs = 0 }, "sla ttft and itl must be positive"},
		{"unknown backend", func(r *profile.SearchRequest) { r.Backends = []string{"tgi"} }, `unknown backend "tgi"`},
		{"unknown mode", func(r *profile.SearchRequest) { r.Modes = []profile.Mode{"mixed"} }, `unknown mode "mixed"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := searchReq(t, "Qwen/Qwen3-8B", "h100_sxm", 8)
			tt.edit(&req)
			_, err := profile.Search(t.Context(), req)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, strings.ToLower(err.Error()[:1]), err.Error()[:1], "errors start lowercase")
		})
	}
}

func TestLayoutAndDescribe(t *testing.T) {
	c := profile.Config{Backend: "trtllm", Mode: profile.ModeDisagg, Replicas: 4, Workers: []profile.Worker{
		{Role: profile.RolePrefill, Count: 2, TP: 2, PP: 1, EP: 1, Batch: 16},
		{Role: profile.RoleDecode, Count: 1, TP: 4, PP: 1, DP: 1, EP: 1, Batch: 64}}}
	assert.Equal(t, "trtllm disagg 4x (2P tp2 bs16 + 1D tp4 bs64)", profile.Describe(c))
	c = profile.Config{Replicas: 1, Workers: []profile.Worker{{Role: profile.RoleAgg, Count: 1, TP: 8, PP: 2, DP: 2, EP: 16}}}
	assert.Equal(t, "1x tp8 pp2 dp2 ep16", c.Layout(), "no batch when unset")
}
