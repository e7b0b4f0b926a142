package calib_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/internal/calib"
	"github.com/dgdr-dev/dgdr/internal/tools/toolutil"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

func calibrationRows(t *testing.T) []*profile.ServingRow {
	t.Helper()
	rows, err := toolutil.ReadCalibration(toolutil.Testdata())
	require.NoError(t, err)
	require.Greater(t, len(rows), 2000)
	return rows
}

// accuracyBound is a regression guard: the error one group of rows must stay under.
type accuracyBound struct {
	backend, mode      string
	coverage           float64
	ttftMedian, itlMed float64
}

func checkBounds(t *testing.T, lines []calib.AccuracyLine, bounds []accuracyBound) {
	t.Helper()
	for _, b := range bounds {
		found := false
		for _, l := range lines {
			if l.Backend != b.backend || l.Mode != b.mode {
				continue
			}
			found = true
			t.Logf("%s/%s: %d rows, coverage %.0f%%, TTFT median %.1f%% p90 %.1f%%, ITL median %.1f%% p90 %.1f%%",
				l.Backend, l.Mode, l.Rows, 100*l.Coverage, 100*l.TTFTMedian, 100*l.TTFTP90, 100*l.ITLMedian, 100*l.ITLP90)
			assert.GreaterOrEqual(t, l.Coverage, b.coverage, "%s/%s coverage", b.backend, b.mode)
			assert.LessOrEqual(t, l.TTFTMedian, b.ttftMedian, "%s/%s TTFT median error", b.backend, b.mode)
			assert.LessOrEqual(t, l.ITLMedian, b.itlMed, "%s/%s ITL median error", b.backend, b.mode)
		}
		assert.True(t, found, "no rows for %s/%s", b.backend, b.mode)
	}
}

// The shipped calibration on the rows it was fitted on.
func TestTrainingAccuracy(t *testing.T) {
	cal, err := profile.EmbeddedCalibration()
	require.NoError(t, err)
	lines := calib.Summarize(calib.NewEvaluator(calibrationRows(t)).Run(cal))
	checkBounds(t, lines, trainingBounds)
}

// Each model predicted by a calibration refitted without it: the generalisation the search relies on.
func TestCrossValidatedAccuracy(t *testing.T) {
	checkBounds(t, calib.Summarize(leaveOneModelOut(t).res), crossValidatedBounds)
}

// Bounds: the measured figures (README "Accuracy") with a margin, so a regression fails. They are
// regression guards, not the project's target (median ITL ≤ 10%, TTFT ≤ 20% on unseen models), which
// the model does not reach yet for TTFT; see README.
var trainingBounds = []accuracyBound{
	{"vllm", "agg", 0.95, 0.22, 0.08},
	{"sglang", "agg", 0.95, 0.50, 0.10},
	{"trtllm", "agg", 0.95, 0.55, 0.11},
	{"sglang", "disagg", 0.85, 0.56, 0.33},
	{"trtllm", "disagg", 0.95, 0.72, 0.38},
}

// Leave one model out with a smaller refit budget than make bench-accuracy (120 evaluations).
var crossValidatedBounds = []accuracyBound{
	{"sglang", "agg", 0.95, 0.72, 0.15},
	{"trtllm", "agg", 0.95, 0.64, 0.14},
	{"all", "agg", 0.95, 0.60, 0.13},
	{"all", "disagg", 0.9, 0.72, 0.37},
}
