package profile

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestBudgetLevelDuration(t *testing.T) {
	tests := []struct {
		name string
		l    BudgetLevel
		want time.Duration
	}{
		{"one round", BudgetLevel{Concurrency: 8, Requests: 8, E2E: time.Second}, time.Second},
		{"a partial round counts whole", BudgetLevel{Concurrency: 8, Requests: 9, E2E: time.Second}, 2 * time.Second},
		{"fewer requests than users", BudgetLevel{Concurrency: 64, Requests: 16, E2E: time.Second}, time.Second},
		{"empty", BudgetLevel{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.l.Duration()) })
	}
}

func TestEstimateBudget(t *testing.T) {
	m := time.Minute
	cand := func(gpus int, startup time.Duration, levels ...time.Duration) BudgetCandidate {
		c := BudgetCandidate{GPUs: gpus, Startup: startup}
		for _, l := range levels {
			c.Levels = append(c.Levels, BudgetLevel{Concurrency: 1, Requests: 1, E2E: l})
		}
		return c
	}
	tests := []struct {
		name       string
		p          BudgetParams
		cands      []BudgetCandidate
		candidates int
		gpuHours   float64
		wall       time.Duration
		start      []time.Duration
		cut        string
	}{
		{
			name:  "one at a time when the GPUs hold only one",
			p:     BudgetParams{TotalGPUs: 8, MaxParallel: 4, Teardown: m},
			cands: []BudgetCandidate{cand(8, 9*m, 10*m, 20*m), cand(4, 4*m, 5*m)},
			// 8 GPUs × 40 min + 4 GPUs × 10 min
			candidates: 2, gpuHours: (8*40 + 4*10) / 60.0, wall: 50 * m, start: []time.Duration{0, 40 * m},
		},
		{
			name:       "side by side when the GPUs allow",
			p:          BudgetParams{TotalGPUs: 8, MaxParallel: 4},
			cands:      []BudgetCandidate{cand(4, 10*m), cand(4, 20*m), cand(2, 5*m)},
			candidates: 3, gpuHours: (4*10 + 4*20 + 2*5) / 60.0, wall: 20 * m, start: []time.Duration{0, 0, 10 * m},
		},
		{
			name:       "MaxParallel bounds what runs at once",
			p:          BudgetParams{TotalGPUs: 8, MaxParallel: 1},
			cands:      []BudgetCandidate{cand(1, 10*m), cand(1, 10*m)},
			candidates: 2, gpuHours: 20 / 60.0, wall: 20 * m, start: []time.Duration{0, 10 * m},
		},
		{
			name:       "a candidate never starts before the previous one",
			p:          BudgetParams{TotalGPUs: 8, MaxParallel: 4},
			cands:      []BudgetCandidate{cand(6, 30*m), cand(4, 10*m), cand(2, 5*m)},
			candidates: 3, gpuHours: (6*30 + 4*10 + 2*5) / 60.0, wall: 40 * m, start: []time.Duration{0, 30 * m, 30 * m},
		},
		{
			name:       "the deadline cuts the plan",
			p:          BudgetParams{TotalGPUs: 8, Available: 25 * m},
			cands:      []BudgetCandidate{cand(8, 10*m), cand(8, 10*m), cand(8, 10*m)},
			candidates: 2, gpuHours: 8 * 20 / 60.0, wall: 20 * m, start: []time.Duration{0, 10 * m},
			cut: "candidate 2 would end 30m0s after the start, past the deadline 25m0s after it",
		},
		{
			name:       "a candidate larger than the budget ends the plan",
			p:          BudgetParams{TotalGPUs: 4},
			cands:      []BudgetCandidate{cand(2, m), cand(8, m), cand(2, m)},
			candidates: 1, gpuHours: 2 / 60.0, wall: m, start: []time.Duration{0},
			cut: "candidate 1 needs 8 GPUs, the budget is 4",
		},
		{name: "nothing planned", p: BudgetParams{TotalGPUs: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := EstimateBudget(tt.p, tt.cands)
			assert.Equal(t, tt.candidates, e.Candidates)
			assert.InDelta(t, tt.gpuHours, e.GPUHours, 1e-9)
			assert.Equal(t, tt.wall, e.WallTime)
			assert.Equal(t, tt.start, e.Start)
			assert.Equal(t, tt.cut, e.Cut)
			for i := range e.Finish {
				assert.LessOrEqual(t, e.Finish[i], e.WallTime)
			}
		})
	}
}

func TestStartupEstimate(t *testing.T) {
	small, big := StartupEstimate(16, true), StartupEstimate(160, true)
	assert.Greater(t, big, small, "more weights load longer")
	assert.Greater(t, StartupEstimate(16, false), small, "a download comes on top")
	assert.GreaterOrEqual(t, small, 3*time.Minute, "an engine never starts instantly")
}

// FuzzEstimateBudget checks the schedule's invariants: GPUs and parallelism never exceeded, order
// kept, every planned candidate within the deadline, GPU-hours the sum of what was planned.
func FuzzEstimateBudget(f *testing.F) {
	f.Add(uint8(8), uint8(2), uint16(0), []byte{4, 10, 8, 3, 2, 7})
	f.Fuzz(func(t *testing.T, total, par uint8, avail uint16, spec []byte) {
		p := BudgetParams{TotalGPUs: int(total%16) + 1, MaxParallel: int(par % 5), Teardown: time.Minute, Available: time.Duration(avail) * time.Minute}
		var cands []BudgetCandidate
		for i := 0; i+1 < len(spec) && len(cands) < 20; i += 2 {
			cands = append(cands, BudgetCandidate{GPUs: int(spec[i]%16) + 1, Startup: time.Duration(spec[i+1]) * time.Minute})
		}
		e := EstimateBudget(p, cands)
		var hours float64
		for i := range e.Candidates {
			hours += float64(cands[i].GPUs) * cands[i].Duration(p.Teardown).Hours()
			if i > 0 {
				assert.GreaterOrEqual(t, e.Start[i], e.Start[i-1])
			}
			if p.Available > 0 {
				assert.LessOrEqual(t, e.Finish[i], p.Available)
			}
			used, n := 0, 0
			for j := range e.Candidates {
				if e.Start[j] <= e.Start[i] && e.Finish[j] > e.Start[i] {
					used += cands[j].GPUs
					n++
				}
			}
			assert.LessOrEqual(t, used, p.TotalGPUs)
			assert.LessOrEqual(t, n, max(p.MaxParallel, 1))
		}
		assert.InDelta(t, hours, e.GPUHours, 1e-6)
		if e.Candidates < len(cands) {
			assert.NotEmpty(t, e.Cut)
		}
	})
}
