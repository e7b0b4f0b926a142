package numfmt_test

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/internal/numfmt"
)

func TestFixed(t *testing.T) {
	tests := []struct {
		v        float64
		decimals int
		want     string
	}{
		{81.254, 2, "81.25"},
		{15, 2, "15"},
		{0.5, 2, "0.5"},
		{100, 0, "100"},
		{120.4, 0, "120"},
		{6.2049, 1, "6.2"},
		{6.96, 1, "7"},
		{0.004, 2, "0"},
		{-3.10, 2, "-3.1"},
		{1e21, 1, "1000000000000000000000"},
		{math.Nextafter(0.3, 1), -1, "0.30000000000000004"},
		{2.5, -1, "2.5"},
		{math.Inf(1), 2, "+Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, numfmt.Fixed(tt.v, tt.decimals))
		})
	}
}

// FuzzFixed: the printed number is v rounded to the precision, with no trailing zero or point.
func FuzzFixed(f *testing.F) {
	f.Add(81.254, 2)
	f.Add(100.0, 0)
	f.Add(-0.5, 3)
	f.Fuzz(func(t *testing.T, v float64, decimals int) {
		if math.IsNaN(v) || math.IsInf(v, 0) || decimals < -1 || decimals > 12 {
			t.Skip()
		}
		s := numfmt.Fixed(v, decimals)
		got, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err, s)
		want, err := strconv.ParseFloat(strconv.FormatFloat(v, 'f', decimals, 64), 64)
		require.NoError(t, err)
		assert.Equal(t, want, got, s)
		if strings.Contains(s, ".") {
			assert.False(t, strings.HasSuffix(s, "0") || strings.HasSuffix(s, "."), s)
		}
	})
}

func TestNiceCeil(t *testing.T) {
	quarters := []float64{1, 2, 5}
	halves := []float64{1, 2, 2.5, 5}
	tests := []struct {
		v     float64
		steps []float64
		want  float64
	}{
		{1, quarters, 1},
		{1.01, quarters, 2},
		{2100, quarters, 5000},
		{5000, quarters, 5000},
		{5001, quarters, 10000},
		{0.3, quarters, 0.5},
		{2100, halves, 2500},
		{2600, halves, 5000},
		{0, quarters, 1},
		{-5, quarters, 1},
		{math.NaN(), quarters, 1},
		{math.Inf(1), halves, 1},
	}
	for _, tt := range tests {
		assert.InDelta(t, tt.want, numfmt.NiceCeil(tt.v, tt.steps...), tt.want*1e-12, "NiceCeil(%v, %v)", tt.v, tt.steps)
	}
}

// FuzzNiceCeil: the axis end is at or above v and less than ten times it.
func FuzzNiceCeil(f *testing.F) {
	f.Add(2100.0)
	f.Add(0.003)
	f.Fuzz(func(t *testing.T, v float64) {
		if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) || v > 1e300 || v < 1e-300 {
			t.Skip()
		}
		for _, steps := range [][]float64{{1, 2, 5}, {1, 2, 2.5, 5}} {
			got := numfmt.NiceCeil(v, steps...)
			require.GreaterOrEqual(t, got*(1+1e-12), v)
			require.Less(t, got, 10*v*(1+1e-12))
		}
	})
}
