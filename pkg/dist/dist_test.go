package dist

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuantilesFromPercentiles(t *testing.T) {
	q, err := FromPercentiles([]float64{50, 90, 99}, []float64{1000, 4000, 16000})
	require.NoError(t, err)
	tests := map[string]struct{ u, want float64 }{
		"below the first is the first": {0.1, 1000},
		"the median":                   {0.5, 1000},
		"between p50 and p90":          {0.7, 2500},
		"p99":                          {0.99, 16000},
		"above the last is the last":   {1, 16000},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { assert.InDelta(t, tc.want, q.Quantile(tc.u), 1e-9) })
	}
	// Mass 0–0.5 at 1000, 0.5–0.9 linear to 4000 (mean 2500), 0.9–0.99 to 16000 (mean 10000), 0.99–1 at 16000.
	want := 0.5*1000 + 0.4*2500 + 0.09*10000 + 0.01*16000
	assert.InDelta(t, want, q.Mean(), 1e-9)
	assert.InDelta(t, 2500, q.MeanBetween(0.5, 0.9), 1e-9)
}

func TestQuantilesFromHistogram(t *testing.T) {
	// 100 in (0,100], none in (100,200], 100 in (200,400]: uniform inside each.
	q, err := FromHistogram([]float64{100, 200, 400}, []float64{100, 0, 100})
	require.NoError(t, err)
	assert.InDelta(t, 50, q.Quantile(0.25), 1e-9)
	assert.InDelta(t, 300, q.Quantile(0.75), 1e-9)
	assert.InDelta(t, (50.0+300)/2, q.Mean(), 1e-9)
	// The empty bucket is a jump: the upper half's mass lies at 200–400 only.
	assert.InDelta(t, 300, q.MeanBetween(0.5, 1), 1e-9)
	assert.InDelta(t, 50, q.MeanBetween(0, 0.5), 1e-9)
}

func TestQuantilesErrors(t *testing.T) {
	tests := map[string]struct {
		make func() (Quantiles, error)
		want string
	}{
		"percentiles decreasing": {func() (Quantiles, error) { return FromPercentiles([]float64{90, 50}, []float64{1, 2}) }, "non-decreasing"},
		"values decreasing":      {func() (Quantiles, error) { return FromPercentiles([]float64{50, 90}, []float64{2, 1}) }, "non-decreasing"},
		"length mismatch":        {func() (Quantiles, error) { return FromPercentiles([]float64{50}, nil) }, "as many values"},
		"all zero":               {func() (Quantiles, error) { return FromHistogram([]float64{1, 2}, []float64{0, 0}) }, "every count is zero"},
		"negative count":         {func() (Quantiles, error) { return FromHistogram([]float64{1, 2}, []float64{1, -1}) }, "at least 0"},
		"bounds not increasing":  {func() (Quantiles, error) { return FromHistogram([]float64{2, 2}, []float64{1, 1}) }, "strictly increasing"},
		"infinite bound":         {func() (Quantiles, error) { return FromHistogram([]float64{2, math.Inf(1)}, []float64{1, 1}) }, "finite"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := tc.make()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestPoint(t *testing.T) {
	q := Point(512)
	assert.Equal(t, 512.0, q.Quantile(0.9))
	assert.Equal(t, 512.0, q.Mean())
}

// FuzzFromHistogram: any histogram is either refused or a quantile function whose quantiles stay
// inside its bounds and whose slice means are ordered.
func FuzzFromHistogram(f *testing.F) {
	f.Add(100.0, 200.0, 400.0, 1.0, 0.0, 3.0)
	f.Add(1.0, 2.0, 3.0, 0.0, 0.0, 0.0)
	f.Add(5.0, 3.0, 9.0, 1.0, 1.0, 1.0)
	f.Fuzz(func(t *testing.T, b0, b1, b2, c0, c1, c2 float64) {
		q, err := FromHistogram([]float64{b0, b1, b2}, []float64{c0, c1, c2})
		if err != nil {
			return
		}
		require.NoError(t, q.Check())
		lo, mid, hi := q.MeanBetween(0, 0.5), q.MeanBetween(0.5, 0.9), q.MeanBetween(0.9, 1)
		assert.LessOrEqual(t, lo, mid*(1+1e-9)+1e-9)
		assert.LessOrEqual(t, mid, hi*(1+1e-9)+1e-9)
		assert.LessOrEqual(t, q.Quantile(1), b2)
		assert.GreaterOrEqual(t, q.Quantile(0), 0.0)
	})
}
