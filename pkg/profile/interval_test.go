package profile_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

func TestQuantile(t *testing.T) {
	tests := []struct {
		name               string
		point, p10, p90, q float64
		want               float64
	}{
		{"median is the point prediction", 100, 50, 300, 0.5, 100},
		{"p10 bound", 100, 50, 300, 0.1, 50},
		{"p90 bound", 100, 50, 300, 0.9, 300},
		// ln q = ln 100 + ln 3 · Φ⁻¹(0.95)/Φ⁻¹(0.9).
		{"beyond p90, log-normal tail", 100, 50, 300, 0.95, 100 * math.Exp(math.Log(3)*1.6448536269514722/1.2815515655446004)},
		{"between median and p90", 100, 50, 300, 0.7, 100 * math.Exp(math.Log(3)*0.5244005127080407/1.2815515655446004)},
		{"lower side uses p10", 100, 50, 300, 0.3, 100 * math.Exp(-math.Log(2)*0.5244005127080407/1.2815515655446004)},
		{"no interval: the point at any quantile", 100, 0, 0, 0.9, 100},
		{"degenerate interval", 100, 100, 100, 0.99, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := profile.Quantile(tt.point, tt.p10, tt.p90, tt.q)
			assert.InDelta(t, tt.want, got, 1e-9*tt.want)
			if tt.p10 > 0 && tt.p90 > tt.p10 {
				// Probability inverts Quantile.
				assert.InDelta(t, tt.q, profile.Probability(tt.point, tt.p10, tt.p90, got), 1e-9)
			}
		})
	}
	// Monotone in q.
	prev := 0.0
	for q := 0.01; q < 1; q += 0.01 {
		v := profile.Quantile(100, 60, 250, q)
		assert.Greater(t, v, prev, "q=%v", q)
		prev = v
	}
}

func TestProbability(t *testing.T) {
	tests := []struct {
		name                   string
		point, p10, p90, limit float64
		want                   float64
	}{
		{"limit at the point", 100, 50, 300, 100, 0.5},
		{"limit at p90", 100, 50, 300, 300, 0.9},
		{"limit at p10", 100, 50, 300, 50, 0.1},
		{"no interval, met", 100, 0, 0, 120, 1},
		{"no interval, missed", 100, 0, 0, 80, 0},
		{"point on p90, above", 100, 50, 100, 101, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.want, profile.Probability(tt.point, tt.p10, tt.p90, tt.limit), 1e-9)
		})
	}
}

// Every prediction carries its interval: the cell of its backend, mode, kernel source and whether
// the architecture has calibration rows, with the point inside.
func TestPredictionBands(t *testing.T) {
	iv, err := profile.EmbeddedIntervals()
	require.NoError(t, err)
	require.NotEmpty(t, iv.Cells)
	g, err := hw.Lookup("h200_sxm")
	require.NoError(t, err)
	for _, id := range []string{"meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-32B"} {
		m, err := profile.LookupModel(id)
		require.NoError(t, err)
		p, err := profile.NewPredictor(profile.Target{Model: m, GPU: g, Backend: profile.BackendVLLM, Workload: profile.Workload{ISL: 1024, OSL: 256}})
		require.NoError(t, err)
		pr, err := p.Predict(profile.Config{Mode: profile.ModeAgg, Workers: []profile.Worker{{Role: profile.RoleAgg, TP: 2, Batch: 32}}}, 32)
		require.NoError(t, err)
		cell, ok := iv.Lookup(profile.IntervalKey{Backend: profile.BackendVLLM, Mode: profile.ModeAgg, Method: pr.Method, Calibrated: iv.IsCalibrated(m)})
		require.True(t, ok)
		assert.Equal(t, cell.Bands(pr), pr.Bands, id)
		assert.Equal(t, id == "meta-llama/Llama-3.1-8B-Instruct", iv.IsCalibrated(m), id)
		assert.LessOrEqual(t, pr.TTFTP10Ms, pr.TTFTMs)
		assert.GreaterOrEqual(t, pr.TTFTP90Ms, pr.TTFTMs)
		assert.Less(t, pr.ITLP10Ms, pr.ITLP90Ms)
		assert.Less(t, pr.TokensPerSecondPerGPUP10, pr.TokensPerSecondPerGPUP90)
		assert.LessOrEqual(t, pr.TokensPerSecondPerGPUP10, pr.TokensPerSecondPerGPU)
	}
}

// Lookup pools: a situation without its own cell takes the next broader one.
func TestIntervalLookupPools(t *testing.T) {
	broad := profile.IntervalCell{Mode: profile.ModeAgg, Calibrated: false, Rows: 50, ITL: [2]float64{-0.2, 0.2}}
	own := profile.IntervalCell{Backend: "vllm", Mode: profile.ModeAgg, Method: profile.MethodRoofline, Rows: 45, ITL: [2]float64{-0.1, 0.1}}
	tab := profile.IntervalTable{Cells: []profile.IntervalCell{broad, own}}
	c, ok := tab.Lookup(profile.IntervalKey{Backend: "vllm", Mode: profile.ModeAgg, Method: profile.MethodRoofline})
	require.True(t, ok)
	assert.Equal(t, own, c)
	c, ok = tab.Lookup(profile.IntervalKey{Backend: "sglang", Mode: profile.ModeAgg, Method: profile.MethodRoofline})
	require.True(t, ok)
	assert.Equal(t, broad, c)
	_, ok = tab.Lookup(profile.IntervalKey{Backend: "sglang", Mode: profile.ModeDisagg})
	assert.False(t, ok)

	// A corrected situation takes its backend and mode's corrected cell, its mode's, all modes', then the plain levels.
	shot := profile.IntervalCell{Mode: profile.ModeAgg, Shots: 3, Rows: 60, ITL: [2]float64{-0.05, 0.05}}
	anyMode := profile.IntervalCell{Shots: 3, Rows: 90, ITL: [2]float64{-0.07, 0.07}}
	tab.Cells = append(tab.Cells, shot, anyMode)
	c, ok = tab.Lookup(profile.IntervalKey{Backend: "vllm", Mode: profile.ModeAgg, Shots: 3})
	require.True(t, ok)
	assert.Equal(t, shot, c)
	c, ok = tab.Lookup(profile.IntervalKey{Mode: profile.ModeDisagg, Shots: 3})
	require.True(t, ok)
	assert.Equal(t, anyMode, c)
	c, ok = tab.Lookup(profile.IntervalKey{Mode: profile.ModeAgg, Shots: 5})
	require.True(t, ok)
	assert.Equal(t, broad, c, "no cell for 5 shots: the uncorrected levels")
}

func TestShotsBucket(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 1, 2: 1, 3: 3, 4: 3, 5: 5, 400: 5} {
		assert.Equal(t, want, profile.ShotsBucket(n), "n=%d", n)
	}
}

// A higher confidence can only shrink the set of configurations meeting the SLA, so the pick's
// throughput never rises and its quantiles at that confidence stay within the targets.
func TestSearchConfidenceMonotone(t *testing.T) {
	prevTput, prevFeasible := math.Inf(1), math.MaxInt
	var picks []string
	for _, conf := range []float64{0.5, 0.6, 0.75, 0.9, 0.97} {
		req := searchReq(t, "Qwen/Qwen3-32B", "h200_sxm", 16)
		req.SLA = profile.SLA{TTFTMs: 400, ITLMs: 25, Confidence: conf}
		res, err := profile.Search(t.Context(), req)
		require.NoError(t, err)
		assert.Equal(t, conf, res.Confidence)
		feasible := 0
		for _, c := range res.Candidates {
			if c.Predicted && c.Config.MeetsSLA {
				feasible++
				assert.LessOrEqual(t, c.Config.TTFTQuantile(conf), req.SLA.TTFTMs)
				assert.LessOrEqual(t, c.Config.ITLQuantile(conf), req.SLA.ITLMs)
			}
		}
		assert.LessOrEqual(t, feasible, prevFeasible, "confidence %v", conf)
		prevFeasible = feasible
		sel, ok := res.SelectedConfig()
		require.True(t, ok)
		require.NotNil(t, res.SLAProbability)
		if !res.MeetsSLA {
			break
		}
		assert.LessOrEqual(t, sel.TokensPerSecondPerGPU, prevTput, "confidence %v", conf)
		prevTput = sel.TokensPerSecondPerGPU
		// The pick meets each target with at least the confidence asked.
		assert.GreaterOrEqual(t, res.SLAProbability.TTFT, conf-1e-9)
		assert.GreaterOrEqual(t, res.SLAProbability.ITL, conf-1e-9)
		picks = append(picks, profile.Describe(sel))
		if conf == 0.5 {
			assert.Contains(t, res.Explanation, "TTFT ≤ 400 ms and ITL ≤ 25 ms (")
		} else {
			assert.Contains(t, res.Explanation, "confidence")
		}
	}
	t.Logf("picks: %q", picks)
	assert.NotEqual(t, picks[0], picks[len(picks)-1], "a high confidence should change the pick on this target")
}

func TestSearchRejectsConfidence(t *testing.T) {
	for _, c := range []float64{-0.1, 1, 1.5, math.NaN()} {
		req := searchReq(t, "Qwen/Qwen3-32B", "h200_sxm", 8)
		req.SLA.Confidence = c
		_, err := profile.Search(t.Context(), req)
		require.Error(t, err, "confidence %v", c)
		assert.Contains(t, err.Error(), "sla confidence must be strictly between 0 and 1")
	}
}

// Quantile and Probability are inverse and monotone for any interval around the point.
func FuzzQuantile(f *testing.F) {
	f.Add(100.0, 50.0, 300.0, 0.9)
	f.Add(1.0, 1.0, 1.0, 0.3)
	f.Add(5.0, 0.1, 5.0, 0.99)
	f.Fuzz(func(t *testing.T, point, p10, p90, q float64) {
		if !(point > 1e-6 && point < 1e9) || !(p10 > 0 && p10 <= point) || !(p90 >= point && p90 < 1e12) || !(q > 1e-6 && q < 1-1e-6) {
			t.Skip()
		}
		v := profile.Quantile(point, p10, p90, q)
		if math.IsNaN(v) || v <= 0 {
			t.Fatalf("Quantile(%v, %v, %v, %v) = %v", point, p10, p90, q, v)
		}
		if (q < 0.5 && v > point) || (q > 0.5 && v < point) {
			t.Fatalf("quantile %v = %v on the wrong side of the point %v", q, v, point)
		}
		pr := profile.Probability(point, p10, p90, v)
		if pr < 0 || pr > 1 || math.IsNaN(pr) {
			t.Fatalf("probability %v out of [0, 1]", pr)
		}
		// Where the side has a spread, Probability inverts Quantile.
		if (q < 0.5 && p10 < point*(1-1e-9)) || (q > 0.5 && p90 > point*(1+1e-9)) {
			if math.Abs(pr-q) > 1e-6 {
				t.Fatalf("Probability(Quantile(%v)) = %v", q, pr)
			}
		}
	})
}
