package calib_test

import (
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/internal/calib"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// lomoRun is the leave-one-model-out run the interval and few-shot tests share (120 evaluations per
// refit, as TestCrossValidatedAccuracy).
type lomoRun struct {
	rows   []*profile.ServingRow
	res    []calib.RowResult
	fits   map[string]profile.Calib
	nested map[string]calib.Nested
}

var lomoOnce struct {
	sync.Once
	run lomoRun
}

func leaveOneModelOut(t *testing.T) lomoRun {
	t.Helper()
	rows := calibrationRows(t)
	lomoOnce.Do(func() {
		cal, err := profile.EmbeddedCalibration()
		require.NoError(t, err)
		start := profile.DefaultCalibration()
		start.GlueUsPerLayer = cal.GlueUsPerLayer
		res, fits := calib.CrossValidateFits(rows, start, 120)
		lomoOnce.run = lomoRun{rows: rows, res: res, fits: fits, nested: calib.NestedCrossValidate(rows, start, 120)}
	})
	require.NotNil(t, lomoOnce.run.res)
	return lomoOnce.run
}

// coverageBound is a regression guard on one group's interval coverage (fraction of measured values
// inside p10–p90, nominal 0.8) left one model out: at least the minima, and the median widths at most.
type coverageBound struct {
	backend, mode             string
	ttft, itl                 float64
	maxTTFTWidth, maxITLWidth float64
}

// The measured coverage (docs/accuracy.md, at make bench-accuracy's 400 evaluations; these at 120)
// less a margin. Aggregated rows reach the nominal 80% (vLLM over it: its cells fall back to pooled
// ones); disaggregated rows, which only DeepSeek-R1 has, do not: left out, they get intervals from the
// Llama models' aggregated residuals. Intervals half as wide (scale 0.5) fail these bounds:
// TestIntervalCoverageDetectsNarrowing.
var coverageBounds = []coverageBound{
	{"vllm", "agg", 0.88, 0.85, 4, 0.8},
	{"trtllm", "agg", 0.75, 0.66, 4, 0.7},
	{"sglang", "agg", 0.64, 0.70, 4, 0.6},
	{"all", "agg", 0.76, 0.72, 4, 0.7},
	{"all", "disagg", 0.50, 0.25, 3.5, 0.55},
	{"all", "all", 0.64, 0.48, 3.5, 0.55},
}

func checkCoverage(t *testing.T, lines []calib.CoverageLine) (failed bool) {
	t.Helper()
	for _, b := range coverageBounds {
		found := false
		for _, l := range lines {
			if l.Backend != b.backend || l.Mode != b.mode {
				continue
			}
			found = true
			if l.TTFT < b.ttft || l.ITL < b.itl || l.TTFTWidth > b.maxTTFTWidth || l.ITLWidth > b.maxITLWidth {
				failed = true
			}
		}
		if !found {
			failed = true
		}
	}
	return failed
}

func TestIntervalCoverage(t *testing.T) {
	run := leaveOneModelOut(t)
	lines := calib.IntervalCoverage(run.res, run.nested, 1)
	for _, l := range lines {
		t.Logf("%s/%s: %d rows, inside TTFT %.0f%% ITL %.0f%% request %.0f%%, median width TTFT %.0f%% ITL %.0f%%",
			l.Backend, l.Mode, l.Rows, 100*l.TTFT, 100*l.ITL, 100*l.E2E, 100*l.TTFTWidth, 100*l.ITLWidth)
		assert.Positive(t, l.Rows)
		assert.InDelta(t, 0.5, l.TTFT, 0.5)
	}
	assert.False(t, checkCoverage(t, lines), "coverage below the regression bounds: %+v", lines)
}

// The bounds can fail: intervals half as wide (in log space) cover too little.
func TestIntervalCoverageDetectsNarrowing(t *testing.T) {
	run := leaveOneModelOut(t)
	assert.True(t, checkCoverage(t, calib.IntervalCoverage(run.res, run.nested, 0.5)), "halved intervals should fail the coverage bounds")
}

// The shipped table is what FitIntervals makes of the shipped calibration's residuals: the calibrated
// cells are reproduced exactly (the uncalibrated ones need make calibrate's 400-evaluation refits).
func TestShippedIntervalsCalibratedCells(t *testing.T) {
	cal, err := profile.EmbeddedCalibration()
	require.NoError(t, err)
	shipped, err := profile.EmbeddedIntervals()
	require.NoError(t, err)
	rows := calibrationRows(t)
	fitted := calib.FitIntervals(calib.NewEvaluator(rows).Run(cal), nil, nil, "")
	assert.Equal(t, shipped.Calibrated, fitted.Calibrated)
	var calibrated []profile.IntervalCell
	for _, c := range shipped.Cells {
		if c.Calibrated {
			calibrated = append(calibrated, c)
		}
	}
	assert.Equal(t, calibrated, fitted.Cells)
	for _, c := range shipped.Cells {
		assert.LessOrEqual(t, c.TTFT[0], c.TTFT[1])
		assert.GreaterOrEqual(t, c.Rows, 1)
	}
}

func TestFewShotRows(t *testing.T) {
	var rows []*profile.ServingRow
	for i := range 10 {
		rows = append(rows, &profile.ServingRow{Line: i + 2, Concurrency: 10 - i, MeasuredTTFTMs: 1, MeasuredITLMs: 1,
			Config: profile.Config{Mode: profile.ModeAgg}, Fields: map[string]string{}})
	}
	rows = append(rows, &profile.ServingRow{Line: 20, Concurrency: 1, Fields: map[string]string{}}) // unmeasured
	tests := []struct {
		k    int
		conc []int
	}{
		{1, []int{6}},
		{3, []int{2, 6, 9}},
		{5, []int{2, 4, 6, 8, 10}},
		{20, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
	}
	for _, tt := range tests {
		chosen, rest := calib.FewShotRows(rows, tt.k)
		var conc []int
		for _, r := range chosen {
			conc = append(conc, r.Concurrency)
		}
		assert.Equal(t, tt.conc, conc, "k=%d", tt.k)
		assert.Len(t, rest, 10-len(chosen), "k=%d: the unmeasured row is in neither", tt.k)
	}
}

// Few-shot with K = 5: regression bounds on the pooled error of the rows not refitted on.
func TestFewShot(t *testing.T) {
	run := leaveOneModelOut(t)
	lines := calib.FewShot(run.rows, run.fits, []int{5}, nil)
	require.Len(t, lines, len(run.fits)+3, "the models, then aggregated, disaggregated and all rows")
	all := lines[len(lines)-1]
	require.Equal(t, "all", all.Model)
	for _, l := range lines {
		t.Logf("%s: %d rows, K=0 TTFT %.1f%% ITL %.1f%%, K=5 TTFT %.1f%% ITL %.1f%%", l.Name, l.Rows, 100*l.TTFT[0], 100*l.ITL[0], 100*l.TTFT[1], 100*l.ITL[1])
		assert.False(t, math.IsNaN(l.TTFT[1]))
	}
	assert.LessOrEqual(t, all.TTFT[1], fewShotTTFTBound)
	assert.LessOrEqual(t, all.ITL[1], fewShotITLBound)

	// K rows of each situation (what a cluster's store holds) buy more than K rows of the model.
	sit := calib.FewShot(run.rows, run.fits, []int{5, calib.AllRows}, calib.Situation)
	sall := sit[len(sit)-1]
	t.Logf("per situation: %d rows, K=0 TTFT %.1f%% ITL %.1f%%, K=5 TTFT %.1f%% ITL %.1f%%, K=all TTFT %.1f%% ITL %.1f%%",
		sall.Rows, 100*sall.TTFT[0], 100*sall.ITL[0], 100*sall.TTFT[1], 100*sall.ITL[1], 100*sall.TTFT[2], 100*sall.ITL[2])
	assert.LessOrEqual(t, sall.TTFT[1], fewShotSituationTTFTBound)
	assert.LessOrEqual(t, sall.ITL[1], fewShotSituationITLBound)
	assert.Less(t, sall.TTFT[1], sall.TTFT[0], "five rows of the situation lower the TTFT error")
	// Corrected on all its rows, each situation does at least as well as on five of them.
	assert.LessOrEqual(t, sall.TTFT[2], sall.TTFT[1])
	assert.LessOrEqual(t, sall.ITL[2], sall.ITL[1])
}

// Few-shot regression bounds (K = 5, corrections fitted on the leave-one-out fits of 120 evaluations,
// every model's remaining rows pooled): the measured figures plus a margin. They are far from the
// issue's target (ITL ≤ 5%, TTFT ≤ 15%): a model's error varies within its own rows more than five
// rows can tell (docs/accuracy.md).
const (
	fewShotTTFTBound = 0.60
	fewShotITLBound  = 0.22
	// Per situation (weight precision, GPU, backend, mode), the same margin.
	fewShotSituationTTFTBound = 0.56
	fewShotSituationITLBound  = 0.20
)

// synthetic is n rows of one model (layers tell the models apart) in mode, whose measured TTFT and
// ITL are the prediction times exp of residuals spread evenly over ±spread.
func synthetic(layers int, mode profile.Mode, n int, spread float64) []calib.RowResult {
	var out []calib.RowResult
	for i := range n {
		r := spread * (2*float64(i)/float64(n-1) - 1)
		row := &profile.ServingRow{Line: i + 2, Concurrency: 8, MeasuredTTFTMs: 100 * math.Exp(r), MeasuredITLMs: 10 * math.Exp(r),
			Target: profile.Target{Model: profile.Model{Layers: layers, Hidden: 4096}, Backend: profile.BackendVLLM, Workload: profile.Workload{ISL: 128, OSL: 2}},
			Config: profile.Config{Mode: mode},
			Fields: map[string]string{}}
		out = append(out, calib.RowResult{Row: row, Pred: profile.Prediction{TTFTMs: 100, ITLMs: 10, Method: profile.MethodRoofline}})
	}
	return out
}

// A mode whose rows come from one model (every disaggregated row is DeepSeek-R1's) still gets a
// new-model cell at its mode level, from that model's errors, and never narrower than the cell of all
// modes; its more specific levels, one model each, stay unwritten.
func TestIntervalsOneModelMode(t *testing.T) {
	for _, tt := range []struct {
		name   string
		spread float64
		want   float64 // the disaggregated cell's ITL p90
	}{
		{"wide one-model mode keeps its own spread", 1.0, 0.8},
		{"narrow one-model mode widens to all modes", 0.01, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lomo := append(append(synthetic(32, profile.ModeAgg, 50, 0.1), synthetic(80, profile.ModeAgg, 50, 0.1)...),
				synthetic(61, profile.ModeDisagg, 50, tt.spread)...)
			tab := calib.FitIntervals(nil, lomo, nil, "")
			var dis, all *profile.IntervalCell
			for i, c := range tab.Cells {
				require.False(t, c.Mode == profile.ModeDisagg && (c.Backend != "" || c.Method != ""), "one model's specific levels: %+v", c)
				if c.Mode == profile.ModeDisagg && c.Backend == "" && c.Method == "" {
					dis = &tab.Cells[i]
				}
				if c.Mode == "" {
					all = &tab.Cells[i]
				}
			}
			require.NotNil(t, dis)
			require.NotNil(t, all)
			want := tt.want
			if want < 0 {
				want = all.ITL[1]
			}
			assert.InDelta(t, want, dis.ITL[1], 0.02)
			assert.GreaterOrEqual(t, dis.ITL[1], all.ITL[1])
			assert.LessOrEqual(t, dis.TTFT[0], all.TTFT[0])
		})
	}
}

// coverageLine is the line of group and mode (failing the test when there is none).
func coverageLine(t *testing.T, lines []calib.CoverageLine, group, mode string) calib.CoverageLine {
	t.Helper()
	for _, l := range lines {
		t.Logf("K=%d %s/%s: %d rows, inside TTFT %.0f%% ITL %.0f%%, median width TTFT %.0f%% ITL %.0f%%",
			l.Shots, l.Backend, l.Mode, l.Rows, 100*l.TTFT, 100*l.ITL, 100*l.TTFTWidth, 100*l.ITLWidth)
	}
	for _, l := range lines {
		if l.Backend == group && l.Mode == mode {
			return l
		}
	}
	require.Failf(t, "no coverage line", "%s/%s", group, mode)
	return calib.CoverageLine{}
}

// Disaggregated rows, which only DeepSeek-R1 has, are checked left one GPU out: there they reach the
// nominal 80% (docs/accuracy.md), and half-width intervals do not.
func TestGPUCoverage(t *testing.T) {
	run := leaveOneModelOut(t)
	l := coverageLine(t, calib.GPUCoverage(run.res, profile.ModeDisagg, 1), "all", "disagg")
	assert.GreaterOrEqual(t, l.TTFT, 0.74)
	assert.GreaterOrEqual(t, l.ITL, 0.72)
	assert.LessOrEqual(t, l.TTFTWidth, 8.0)
	assert.LessOrEqual(t, l.ITLWidth, 1.6)
	half := coverageLine(t, calib.GPUCoverage(run.res, profile.ModeDisagg, 0.5), "all", "disagg")
	assert.Less(t, half.ITL, 0.72, "halved intervals cover too little")
}

// After a correction on five rows of its situation, a new model's intervals (fitted on other models'
// corrected rows) still cover about 80%, and TTFT's are narrower than without the rows.
func TestCorrectedCoverage(t *testing.T) {
	run := leaveOneModelOut(t)
	plain := coverageLine(t, calib.IntervalCoverage(run.res, run.nested, 1), "all", "agg")
	agg := coverageLine(t, calib.CorrectedCoverage(run.rows, run.fits, run.nested, 5, 1), "all", "agg")
	assert.Equal(t, 5, agg.Shots)
	assert.GreaterOrEqual(t, agg.TTFT, 0.74)
	assert.GreaterOrEqual(t, agg.ITL, 0.72)
	assert.Less(t, agg.TTFTWidth, plain.TTFTWidth, "measurements narrow the aggregated TTFT interval")

	plainDis := coverageLine(t, calib.GPUCoverage(run.res, profile.ModeDisagg, 1), "all", "disagg")
	dis := coverageLine(t, calib.CorrectedGPUCoverage(run.rows, run.fits, 5, profile.ModeDisagg, 1), "all", "disagg")
	assert.GreaterOrEqual(t, dis.TTFT, 0.72)
	assert.GreaterOrEqual(t, dis.ITL, 0.72)
	assert.Less(t, dis.TTFTWidth, plainDis.TTFTWidth, "measurements narrow the disaggregated TTFT interval")
	assert.Less(t, dis.ITLWidth, plainDis.ITLWidth, "and the ITL one")
}
