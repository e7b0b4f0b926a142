package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/internal/calibstore"
	"github.com/dgdr-dev/dgdr/internal/simengine"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// The in-cluster calibration end to end, through the real API server: bench --record measures a
// deployment (an engine simulator three times slower per token than the model predicts) and adds it
// to the namespace's store, calibrate refits and stores the refit, and the next plan with
// --cluster-calibration in that namespace predicts slower tokens for that model, GPU, backend and mode
// and says which calibration it used; another namespace's plan fails with a hint.
func TestCalibrateInCluster(t *testing.T) {
	h := newHarness(t, testenv.Options{WithoutDynamoCRD: true})
	ns := h.namespace("calib")
	other := h.namespace("calib-other")

	// The DGDR's selection: what plan would pick for Qwen3-32B on vLLM, 8 H200s.
	m, err := profile.LookupModel("Qwen/Qwen3-32B")
	require.NoError(t, err)
	g, err := hw.Lookup("h200_sxm")
	require.NoError(t, err)
	const isl, osl = 200, 24
	res, err := profile.Search(t.Context(), profile.SearchRequest{Model: m, GPU: g, Backends: []string{"vllm"}, Modes: []profile.Mode{profile.ModeAgg},
		Workload: profile.Workload{ISL: isl, OSL: osl}, SLA: profile.SLA{TTFTMs: 1000, ITLMs: 100}, TotalGPUs: 8})
	require.NoError(t, err)
	sel, ok := res.SelectedConfig()
	require.True(t, ok)
	h.dgdr(ns, "qwen", v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-32B", Hardware: &v1alpha1.Hardware{GPUType: "h200_sxm"}},
		&v1alpha1.DynamoGraphDeploymentRequestStatus{Phase: v1alpha1.PhaseReady, ProfilingResults: &v1alpha1.ProfilingResults{
			SelectedConfig: &v1alpha1.SelectedConfig{ParetoPoint: expand.ParetoPoint(sel), Index: -1}}})

	h.fail("calibrate", "-n", ns)

	itl := sel.ITLMs * 3
	sim := startBenchSim(t, simengine.Config{Model: "Qwen/Qwen3-32B", PrefillBaseMs: 5, DecodeBaseMs: itl})
	r := h.ok("bench", "--url", sim.URL, "--isl", "200", "--osl", "24", "--concurrency", "1,2", "--requests", "4", "--record", "qwen", "-n", ns)
	assert.Contains(t, r.errOut, "recorded 2 rows in calib/dgdr-calibration")
	r = h.fail("bench", "--url", sim.URL, "--rate", "2", "--record", "qwen", "-n", ns)
	assert.Contains(t, r.errLine, "--record takes closed-loop levels only")
	r = h.fail("bench", "--url", sim.URL, "--record", "nope", "-n", ns)
	assert.Contains(t, r.errLine, "nope")

	r = h.ok("calibrate", "-n", ns, "-o", "json")
	var c Calibration
	require.NoError(t, json.Unmarshal([]byte(r.out), &c))
	require.Len(t, c.Rows, 2)
	require.NotNil(t, c.Fit)
	assert.True(t, c.Stored)
	assert.Equal(t, 2, c.Fit.Rows)
	assert.Greater(t, c.Fit.Before.ITL, 0.5, "the simulator is three times slower per token")
	assert.Less(t, c.Fit.After.ITL, c.Fit.Before.ITL)
	for _, row := range c.Rows {
		assert.Equal(t, "bench --record qwen", row.Source)
		assert.Greater(t, row.AfterITLMs, row.BeforeITLMs)
	}
	table := h.ok("calibrate", "-n", ns, "--dry-run").out
	assert.Contains(t, table, "Median error on the 2 stored rows")
	assert.Contains(t, table, "Not stored (--dry-run).")

	plan := func(extra ...string) profile.Report {
		args := append([]string{"plan", "--model", "Qwen/Qwen3-32B", "--backend", "vllm", "--gpu", "h200_sxm", "--isl", "200", "--osl", "24",
			"--ttft", "1000", "--itl", "100", "-o", "json"}, extra...)
		var rep profile.Report
		require.NoError(t, json.Unmarshal([]byte(h.ok(args...).out), &rep))
		return rep
	}
	shipped, refit := plan(), plan("--cluster-calibration", "-n", ns)
	assert.Empty(t, shipped.Calibration)
	assert.Contains(t, refit.Calibration, "calib/dgdr-calibration: 2 measured rows")
	// The same configurations, predicted with the refit: aggregated ITL about three times the shipped
	// prediction, so aggregated points leave the front; disaggregated serving, never measured here, is
	// predicted as shipped.
	pairs := map[profile.Mode]int{}
	count := func(cs []profile.Config) (n int) {
		for _, c := range cs {
			if c.Mode == profile.ModeAgg {
				n++
			}
		}
		return n
	}
	require.Positive(t, count(shipped.Pareto), "aggregated points on the shipped front")
	assert.Less(t, count(refit.Pareto), count(shipped.Pareto), "fewer aggregated points on the refit's front")
	for _, a := range refit.Pareto {
		for _, b := range shipped.Pareto {
			if a.Layout() != b.Layout() || a.Mode != b.Mode || a.Replicas != b.Replicas {
				continue
			}
			pairs[a.Mode]++
			if a.Mode == profile.ModeAgg {
				assert.Greater(t, a.ITLMs, 1.5*b.ITLMs, a.Layout())
				// Measured rows narrow the interval: it is the one measured after corrections like it.
				width := func(c profile.Config) float64 { return (c.ITLP90Ms - c.ITLP10Ms) / c.ITLMs }
				assert.Less(t, width(a), width(b), a.Layout())
			} else {
				assert.InDelta(t, b.ITLMs, a.ITLMs, 1e-9, a.Layout())
			}
		}
	}
	assert.Positive(t, pairs[profile.ModeDisagg], "disaggregated configurations on both fronts")
	assert.Less(t, maxUserRate(refit.Pareto), maxUserRate(shipped.Pareto), "slower tokens: fewer tokens/s per user at the top of the front")

	// A CSV of one's own measurements joins the store; a file with a bad line adds nothing.
	dir := t.TempDir()
	const header = "model_path,system,backend,mode,isl,osl,concurrency,tp_size,batch_size,silicon_ttft_ms,silicon_tpot_ms\n"
	good, bad := filepath.Join(dir, "measured.csv"), filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(good, []byte(header+
		"Qwen/Qwen3-32B,h100_sxm,vllm,agg,1024,128,8,2,8,250,30\n"+
		"Qwen/Qwen3-32B,h100_sxm,vllm,agg,1024,128,16,2,16,400,35\n"), 0o600))
	require.NoError(t, os.WriteFile(bad, []byte(header+
		"Qwen/Qwen3-32B,h100_sxm,vllm,agg,1024,128,8,2,8,250,30\n"+
		"Qwen/Qwen3-32B,h100_sxm,vllm,agg,1024,128,16,2,16,400,\n"), 0o600))
	stored := func() int {
		var c Calibration
		require.NoError(t, json.Unmarshal([]byte(h.ok("calibrate", "-n", ns, "--dry-run", "-o", "json").out), &c))
		return len(c.Rows)
	}
	r = h.fail("calibrate", "-n", ns, "--add", bad)
	assert.Contains(t, r.errLine, "line 3: silicon_ttft_ms and silicon_tpot_ms must be positive")
	assert.Contains(t, r.errLine, "nothing was added")
	assert.Equal(t, 2, stored())
	r = h.ok("calibrate", "-n", ns, "--add", good, "--dry-run", "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(r.out), &c))
	assert.Len(t, c.Rows, 4, "the file's rows take part in the dry run")
	assert.False(t, c.Stored)
	assert.Equal(t, 2, stored(), "and are not stored by it")
	r = h.ok("calibrate", "-n", ns, "--add", good, "-o", "json")
	assert.Contains(t, r.errOut, "added 2 rows from "+good)
	c = Calibration{}
	require.NoError(t, json.Unmarshal([]byte(r.out), &c))
	require.Len(t, c.Rows, 4)
	assert.Equal(t, "calibrate --add measured.csv", c.Rows[3].Source)
	assert.True(t, slices.ContainsFunc(c.Fit.Corrections, func(k profile.Correction) bool { return k.GPU == "h100_sxm" && k.Rows == 2 }),
		"a correction for the file's GPU: %+v", c.Fit.Corrections)

	r = h.fail("plan", "--model", "Qwen/Qwen3-32B", "--cluster-calibration", "-n", other)
	assert.Contains(t, r.errLine, "no refit in configmap "+calibstore.Name)
}

func maxUserRate(cs []profile.Config) float64 {
	best := 0.0
	for _, c := range cs {
		best = max(best, c.TokensPerSecondPerUser)
	}
	return best
}

// results names the calibration the profiler's search used.
func TestResultsNamesCalibration(t *testing.T) {
	d := &v1alpha1.DynamoGraphDeploymentRequest{Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-32B"},
		Status: v1alpha1.DynamoGraphDeploymentRequestStatus{ProfilingResults: &v1alpha1.ProfilingResults{SelectedConfig: &v1alpha1.SelectedConfig{Index: -1}}}}
	for _, tt := range []struct{ calibration, want string }{
		{"team-a/dgdr-calibration: 4 measured rows", "Calibration: team-a/dgdr-calibration: 4 measured rows\n"},
		{"", ""},
	} {
		var b strings.Builder
		require.NoError(t, writeResults(&b, d, &profile.Report{GPU: "h200_sxm", Calibration: tt.calibration}))
		if tt.want == "" {
			assert.NotContains(t, b.String(), "Calibration:")
		} else {
			assert.Contains(t, b.String(), tt.want)
		}
	}
}
