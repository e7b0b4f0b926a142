package pareto

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cand is a serving candidate: throughput per GPU and the two latencies.
type cand struct {
	Name      string
	PerGPU    float64
	TTFT, ITL float64
}

func sla(ttft, itl float64) []Bound[cand] {
	return []Bound[cand]{
		{Name: "TTFT", Unit: "ms", Limit: ttft, Value: func(c cand) float64 { return c.TTFT }},
		{Name: "ITL", Unit: "ms", Limit: itl, Value: func(c cand) float64 { return c.ITL }},
	}
}

func perGPU(c cand) float64 { return c.PerGPU }
func speed(c cand) float64  { return 1000 / c.ITL }

func TestSelect(t *testing.T) {
	cands := []cand{
		{"fast-but-slow-ttft", 900, 150, 10},
		{"ok-low", 300, 80, 12},
		{"ok-high", 500, 90, 14},
		{"ok-high-faster", 500, 95, 13},
		{"itl-miss", 800, 50, 20},
	}
	tests := []struct {
		name      string
		ttft, itl float64
		want      string
		meets     bool
		feasible  int
		misses    []string
	}{
		{"best per GPU within SLA, tie to faster user", 100, 15, "ok-high-faster", true, 3, nil},
		{"loose SLA picks the top", 1000, 100, "fast-but-slow-ttft", true, 5, nil},
		{"nothing meets: closest relative miss", 40, 9, "ok-low", false, 0,
			[]string{"TTFT 80 ms > 40 ms (+40 ms, +100%)", "ITL 12 ms > 9 ms (+3 ms, +33%)"}},
		{"single-constraint miss", 100, 12.5, "ok-low", true, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Select(cands, sla(tt.ttft, tt.itl), perGPU, speed)
			require.GreaterOrEqual(t, s.Index, 0)
			assert.Equal(t, tt.want, cands[s.Index].Name)
			assert.Equal(t, tt.meets, s.Meets)
			assert.Equal(t, tt.feasible, s.Feasible)
			var got []string
			for _, m := range s.Misses {
				got = append(got, m.String())
			}
			assert.Equal(t, tt.misses, got)
		})
	}
}

func TestSelectEmpty(t *testing.T) {
	s := Select(nil, sla(1, 1), perGPU)
	assert.Equal(t, -1, s.Index)
	assert.False(t, s.Meets)
}

func TestSelectNearestMissTieBreaksByKey(t *testing.T) {
	// Both are 50 % over the ITL; the one with more throughput per GPU is the closer offer.
	cands := []cand{{"a", 100, 10, 15}, {"b", 200, 10, 15}, {"c", 200, 10, 15}}
	s := Select(cands, sla(100, 10), perGPU)
	assert.Equal(t, 1, s.Index, "ties after the keys go to input order")
	require.Len(t, s.Misses, 1)
	assert.Equal(t, "ITL", s.Misses[0].Name)
	assert.InDelta(t, 5, s.Misses[0].Over(), 1e-9)
	assert.InDelta(t, 0.5, s.Misses[0].Relative(), 1e-9)
}

func TestSelectNaNIsAMiss(t *testing.T) {
	cands := []cand{{"nan", 1000, math.NaN(), 1}, {"ok", 1, 1, 1}}
	s := Select(cands, sla(10, 10), perGPU)
	assert.Equal(t, "ok", cands[s.Index].Name)
}

// TestSelectProperties checks on random candidates that the selection meets the SLA whenever any
// candidate does, that nothing within the SLA beats it, and that it is deterministic.
func TestSelectProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		cands := make([]cand, 1+r.IntN(40))
		for i := range cands {
			cands[i] = cand{PerGPU: float64(r.IntN(20)), TTFT: float64(10 + r.IntN(200)), ITL: float64(2 + r.IntN(30))}
		}
		bounds := sla(float64(20+r.IntN(150)), float64(3+r.IntN(20)))
		s := Select(cands, bounds, perGPU, speed)
		require.Equal(t, s, Select(cands, bounds, perGPU, speed))
		any := false
		for _, c := range cands {
			if len(Misses(c, bounds)) == 0 {
				any = true
				require.LessOrEqual(t, c.PerGPU, cands[s.Index].PerGPU)
			}
		}
		require.Equal(t, any, s.Meets)
		if !s.Meets {
			for _, c := range cands {
				require.GreaterOrEqual(t, Distance(c, bounds), Distance(cands[s.Index], bounds))
			}
		}
	}
}

func TestMissString(t *testing.T) {
	tests := []struct {
		m    Miss
		want string
	}{
		{Miss{Name: "ITL", Unit: "ms", Value: 18.24, Limit: 15}, "ITL 18.2 ms > 15 ms (+3.2 ms, +22%)"},
		{Miss{Name: "ITL", Unit: "ms", Value: 15.004, Limit: 15}, "ITL 15.004 ms > 15 ms (+0.004 ms, +0%)"},
		{Miss{Name: "TTFT", Unit: "ms", Value: 1174.26, Limit: 100}, "TTFT 1174.3 ms > 100 ms (+1074.3 ms, +1074%)"},
		{Miss{Name: "GPUs", Value: 3, Limit: 0}, "GPUs 3 > 0 (+3)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.m.String())
	}
}
