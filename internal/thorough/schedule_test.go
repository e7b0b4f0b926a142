package thorough

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// fig is a point with tokens/s/user derived from ITL, as the model and the benchmark give it.
func fig(ttft, itl, perGPU float64) Figures {
	return Figures{TTFTMs: ttft, ITLMs: itl, TokensPerSecondPerGPU: perGPU, TokensPerSecondPerUser: 1000 / itl}
}

// aggConfig is a one-replica aggregated vLLM deployment on gpus GPUs at serving batch batch.
func aggConfig(gpus, batch int) profile.Config {
	return profile.Config{Backend: "vllm", Mode: profile.ModeAgg, Replicas: 1, GPUs: gpus,
		Workers: []profile.Worker{{Role: profile.RoleAgg, Count: 1, TP: gpus, PP: 1, EP: 1, DP: 1, Batch: batch}}}
}

// planned is a planned candidate on gpus GPUs whose loads are predicted at fs.
func planned(name string, gpus int, fs ...Figures) *Candidate {
	c := &Candidate{Name: name, Config: aggConfig(gpus, 8), State: StatePlanned}
	for i, f := range fs {
		c.Levels = append(c.Levels, LevelPlan{Concurrency: 1 << i, Batch: 1 << i, Predicted: f})
	}
	return c
}

// measuredAs is a candidate in state measured at fs, predicted exactly (a correction of 1).
func measuredAs(name, state string, fs ...Figures) *Candidate {
	c := &Candidate{Name: name, Config: aggConfig(1, 8), State: state}
	for i, f := range fs {
		c.Measurements = append(c.Measurements, Measurement{Concurrency: 1 << i, Batch: 1 << i, Requests: 10, Measured: f, Predicted: f})
		c.Levels = append(c.Levels, LevelPlan{Concurrency: 1 << i, Batch: 1 << i, Predicted: f})
	}
	return c
}

func names(cs []*Candidate) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

var testSLA = profile.SLA{TTFTMs: 100, ITLMs: 10}

func TestStartable(t *testing.T) {
	// c1 predicts the most tokens/s/GPU under the SLA, c2 misses the SLA everywhere.
	plan := func() []*Candidate {
		return []*Candidate{
			planned("c0", 2, fig(50, 8, 500)),
			planned("c1", 4, fig(50, 8, 900)),
			planned("c2", 2, fig(50, 20, 2000)),
		}
	}
	tests := []struct {
		name            string
		cands           []*Candidate
		corrected       bool // corrections fitted to a measurement
		used, running   int
		total, parallel int
		want            []string
	}{
		{"the plan's order while nothing is measured", plan(), false, 0, 0, 8, 3, []string{"c0", "c1", "c2"}},
		{"as many as run at once", plan(), false, 0, 0, 8, 2, []string{"c0", "c1"}},
		{"the parallelism is full", plan(), false, 2, 2, 8, 2, []string{}},
		{"the next does not fit the free GPUs: nothing skips ahead", plan(), false, 4, 1, 8, 3, []string{"c0"}},
		{"no GPU free", plan(), false, 8, 1, 8, 3, []string{}},
		{"by corrected merit once measured; missing the SLA last", plan(), true, 0, 0, 8, 3, []string{"c1", "c0", "c2"}},
		{"only planned candidates", append(plan()[:1], measuredAs("c3", StateMeasured, fig(50, 8, 100))), false, 0, 0, 8, 3, []string{"c0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &Record{Candidates: tt.cands}
			if tt.corrected {
				rec.Corrections = FitCorrections([]*Candidate{measuredAs("m", StateMeasured, fig(50, 8, 100))})
			}
			pl := Planner{Request: profile.SearchRequest{SLA: testSLA, TotalGPUs: tt.total}, Settings: Settings{MaxParallel: tt.parallel}}
			assert.Equal(t, tt.want, names(pl.Startable(rec, tt.used, tt.running)))
		})
	}
}

func TestPrune(t *testing.T) {
	// c0 measured 1000 tokens/s/GPU at ITL 5 ms, meeting the SLA.
	tests := []struct {
		name   string
		cand   *Candidate
		pruned bool
	}{
		{"dominated at every load even with the benefit of the doubt", planned("c1", 1, fig(50, 10, 200), fig(60, 12, 400)), true},
		{"may beat the best measured under the SLA", planned("c1", 1, fig(50, 9, 1200)), false},
		{"faster per user than anything measured", planned("c1", 1, fig(50, 3, 100)), false},
		{"just beyond the tolerance: dominated", planned("c1", 1, fig(50, 6.5, 790)), true},
		{"within the tolerance: kept", planned("c1", 1, fig(50, 6, 810)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed := measuredAs("c9", StateFailed, fig(10, 1, 90000))
			rec := &Record{Candidates: []*Candidate{measuredAs("c0", StateMeasured, fig(50, 5, 1000)), failed, tt.cand}}
			Planner{Request: profile.SearchRequest{SLA: testSLA}, Settings: Settings{Tolerance: 0.25}}.Prune(rec)
			require.Contains(t, rec.Corrections, "vllm/agg", "the corrections are re-fitted")
			assert.Equal(t, StateFailed, failed.State, "only planned candidates are pruned")
			if !tt.pruned {
				assert.Equal(t, StatePlanned, tt.cand.State)
				assert.Empty(t, tt.cand.Reason)
				return
			}
			assert.Equal(t, StatePruned, tt.cand.State)
			assert.Contains(t, tt.cand.Reason, "dominated by c0's measured points")
			assert.Contains(t, tt.cand.Reason, "25% benefit of the doubt")
		})
	}
}

func TestStopEarly(t *testing.T) {
	other := measuredAs("c1", StateMeasured, fig(40, 4, 2000))
	tests := []struct {
		name string
		c    *Candidate
		next int
		stop string // part of the reason; "" to go on
	}{
		{"TTFT over the target and its tolerance", withLevels(measuredAs("c0", StateRunning, fig(130, 8, 100)), fig(150, 9, 300)), 1, "its TTFT 130 ms is over the target 100 ms"},
		{"TTFT over the target within the tolerance", withLevels(measuredAs("c0", StateRunning, fig(120, 3, 100)), fig(60, 9, 3000)), 1, ""},
		{"dominated, and so are the remaining loads", withLevels(measuredAs("c0", StateRunning, fig(50, 8, 100)), fig(60, 9, 300)), 1,
			"dominated by c1's, and so are its remaining loads"},
		{"dominated, but a remaining load may beat the best", withLevels(measuredAs("c0", StateRunning, fig(50, 8, 100)), fig(60, 9, 3000)), 1, ""},
		{"dominated, but a remaining load is within the tolerance of the best", withLevels(measuredAs("c0", StateRunning, fig(50, 8, 100)), fig(60, 9, 1800)), 1, ""},
		{"the loads before next are not judged", withLevels(measuredAs("c0", StateRunning, fig(50, 8, 100)), fig(60, 9, 3000), fig(60, 9, 300)), 2,
			"dominated by c1's, and so are its remaining loads"},
		{"not dominated", withLevels(measuredAs("c0", StateRunning, fig(50, 3, 100)), fig(60, 9, 300)), 1, ""},
		{"dominated with no load left: nothing to stop", measuredAs("c0", StateRunning, fig(50, 8, 100)), 1, ""},
		{"nothing measured", planned("c0", 1, fig(50, 8, 100)), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &Record{Candidates: []*Candidate{tt.c, other}}
			stop, why := Planner{Request: profile.SearchRequest{SLA: testSLA}}.StopEarly(rec, tt.c, tt.next)
			assert.Equal(t, tt.stop != "", stop, why)
			if tt.stop != "" {
				assert.Contains(t, why, tt.stop)
			}
		})
	}
}

// withLevels adds planned loads predicted at fs after c's measured ones.
func withLevels(c *Candidate, fs ...Figures) *Candidate {
	for _, f := range fs {
		c.Levels = append(c.Levels, LevelPlan{Concurrency: 100, Batch: 100, Predicted: f})
	}
	return c
}

func TestEstimate(t *testing.T) {
	target := simTarget(t)
	req := profile.SearchRequest{Model: target.Model, GPU: target.GPU, Workload: target.Workload, SLA: testSLA, TotalGPUs: 8, GPUsPerNode: 8}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cands := func(extra ...*Candidate) []*Candidate {
		return append([]*Candidate{planned("c0", 2, fig(50, 8, 500), fig(60, 9, 800)), planned("c1", 4, fig(50, 8, 900))}, extra...)
	}
	spent := measuredAs("c2", StateMeasured, fig(50, 8, 100))
	spent.GPUSeconds = 3600
	tests := []struct {
		name     string
		cands    []*Candidate
		deadline time.Time
		kept     int
		minHours float64
	}{
		{"no deadline: everything", cands(), time.Time{}, 2, 0},
		{"a deadline nothing fits: one is tried while nothing is measured", cands(), now.Add(time.Minute), 1, 0},
		{"a deadline nothing fits once something is measured", cands(spent), now.Add(time.Minute), 0, 1},
		{"the GPU-hours spent count", cands(spent), time.Time{}, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &Record{Candidates: tt.cands}
			pl := Planner{Request: req, Settings: Settings{MaxParallel: 2}}
			pl.Estimate(rec, now, tt.deadline)
			b := rec.Budget
			assert.Equal(t, 8, b.TotalGPUs)
			assert.Equal(t, 8, b.GPUsPerNode)
			assert.Equal(t, tt.deadline.IsZero(), b.Deadline == nil)
			require.Len(t, b.Estimate, tt.kept)
			for i, e := range b.Estimate {
				assert.Equal(t, tt.cands[i].Name, e.Name)
				assert.Equal(t, tt.cands[i].Config.GPUs, e.GPUs)
				assert.Equal(t, pl.Startup(tt.cands[i]), e.Startup)
				assert.Greater(t, e.Finish, e.Start)
			}
			assert.GreaterOrEqual(t, b.EstimatedGPUHours, tt.minHours)
			if tt.kept > 0 {
				assert.Greater(t, b.EstimatedGPUHours, tt.minHours)
				assert.Positive(t, b.EstimatedWallTime)
			}
			for i, c := range tt.cands[:2] {
				if i < tt.kept {
					assert.Equal(t, StatePlanned, c.State)
				} else {
					assert.Equal(t, StateSkipped, c.State)
					assert.Contains(t, c.Reason, "the budget ends first")
				}
			}
		})
	}
	// Weights held in fp8 load in about half the time of bf16.
	pl := Planner{Request: req}
	bf16, fp8 := planned("c0", 1), planned("c1", 1)
	fp8.Config.WeightDtype = "fp8"
	assert.Less(t, pl.Startup(fp8), pl.Startup(bf16))
}

func TestBudgetStatus(t *testing.T) {
	now := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	started := now.Add(-30 * time.Minute)
	running := planned("c1", 4)
	running.State, running.Started = StateRunning, &started
	done := measuredAs("c0", StateMeasured, fig(50, 8, 100))
	done.GPUSeconds = 7200
	skipped := planned("c4", 1)
	skipped.State = StateSkipped
	pruned := planned("c3", 1)
	pruned.State = StatePruned
	deadline := now.Add(time.Hour)
	rec := &Record{Budget: Budget{TotalGPUs: 8, EstimatedGPUHours: 5, EstimatedWallTime: time.Hour, Deadline: &deadline},
		Candidates: []*Candidate{done, running, measuredAs("c2", StateFailed), pruned, skipped}}
	b := BudgetStatus(rec, now)
	assert.Equal(t, int32(8), b.GPUs)
	assert.InDelta(t, 2+4*0.5, b.UsedGPUHours, 1e-9, "finished candidates' GPU time and the running ones' so far")
	assert.Equal(t, int32(4), b.Candidates, "skipped ones are not counted")
	assert.Equal(t, []int32{1, 1, 1}, []int32{b.Measured, b.Failed, b.Pruned})
	assert.Equal(t, deadline, b.Deadline.Time)
	assert.Equal(t, time.Hour, b.EstimatedWallTime.Duration)
}

func TestResume(t *testing.T) {
	started := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	plan := func() *Record {
		return &Record{UID: "u1", Candidates: []*Candidate{planned("c0", 1), planned("c1", 1), planned("c2", 2), planned("c3", 1)}}
	}
	old := &Record{UID: "u1", Started: started, Candidates: []*Candidate{
		measuredAs("c0", StateMeasured, fig(50, 8, 100)),
		{Name: "c1", Config: aggConfig(1, 8), State: StateRunning, Started: &started, GPUSeconds: 60},
		measuredAs("c2", StateMeasured, fig(50, 8, 100)), // planned on 2 GPUs now: another configuration
		nil, // a record this version cannot fully read
	}}

	rec := plan()
	again := Resume(rec, old)
	assert.Equal(t, []string{"c1"}, again)
	assert.Equal(t, started, rec.Started)
	assert.Same(t, old.Candidates[0], rec.Candidates[0], "a finished candidate keeps its outcome")
	assert.Equal(t, StatePlanned, rec.Candidates[1].State, "the one being measured is measured again")
	assert.Equal(t, &started, rec.Candidates[1].Started)
	assert.Equal(t, 60.0, rec.Candidates[1].GPUSeconds)
	assert.Equal(t, StatePlanned, rec.Candidates[2].State, "another configuration starts over")
	assert.Equal(t, 1, rec.Corrections["vllm/agg"].Samples, "corrected by what was kept")

	other := plan()
	old.UID = "u0"
	assert.Empty(t, Resume(other, old), "an earlier DGDR's record is not resumed")
	assert.True(t, other.Started.IsZero())
	assert.Equal(t, StatePlanned, other.Candidates[0].State)
	assert.Empty(t, Resume(plan(), nil))
}

func TestRank(t *testing.T) {
	req := profile.SearchRequest{SLA: testSLA, TotalGPUs: 8}
	pl := Planner{Request: req}

	none := pl.Rank(&Record{Candidates: []*Candidate{
		{Name: "c0", State: StateFailed, Reason: "it crashed"}, planned("c1", 1),
	}})
	assert.Zero(t, none.Points)
	assert.Equal(t, "2 candidates (0 measured, 1 failed, 0 pruned, 0 skipped); failed: c0: it crashed", none.Summary)

	c0 := measuredAs("c0", StateMeasured, fig(50, 5, 800), fig(80, 9, 1500), fig(150, 12, 2500))
	c0.Config = aggConfig(2, 4)
	c0.Measurements[1].Predicted = fig(70, 8, 1700)
	failed := measuredAs("c1", StateFailed, fig(10, 1, 9000)) // a failed candidate's points do not count
	r := pl.Rank(&Record{Candidates: []*Candidate{c0, failed}})
	require.Equal(t, 3, r.Points)
	assert.True(t, r.Result.MeetsSLA)
	assert.Equal(t, 1500.0, r.Selected.TokensPerSecondPerGPU, "the most measured tokens/s/GPU under the SLA")
	assert.Equal(t, 4, r.Selected.Replicas, "as many replicas as the budget holds")
	assert.Equal(t, 8, r.Selected.GPUs)
	assert.Equal(t, 2, servingBatch(r.Selected), "at the load measured")
	assert.Equal(t, fig(70, 8, 1700), r.Predicted[profile.Describe(r.Selected)], "the prediction beside it")
	assert.Contains(t, r.Result.Explanation, "has the highest measured tokens/s/GPU (1500.0) of the 2 measured points meeting TTFT ≤ 100 ms and ITL ≤ 10 ms (3 measured)")

	strict := Planner{Request: profile.SearchRequest{SLA: profile.SLA{TTFTMs: 10, ITLMs: 1}, TotalGPUs: 8}}
	miss := strict.Rank(&Record{Candidates: []*Candidate{c0}})
	assert.False(t, miss.Result.MeetsSLA)
	assert.Contains(t, miss.Result.Explanation, "no measured configuration meets TTFT ≤ 10 ms and ITL ≤ 1 ms; the closest")
}

func TestTooManyErrors(t *testing.T) {
	for _, tt := range []struct {
		errors, requests int
		want             bool
	}{{0, 10, false}, {1, 19, false}, {2, 19, true}, {1, 0, true}, {0, 0, false}} {
		assert.Equal(t, tt.want, TooManyErrors(tt.errors, tt.requests), "%d errors, %d requests", tt.errors, tt.requests)
	}
}

func TestDescribeFigures(t *testing.T) {
	assert.Equal(t, "TTFT 81.2 ms, ITL 6.25 ms, 2100 tokens/s/GPU", DescribeFigures(Figures{TTFTMs: 81.24, ITLMs: 6.254, TokensPerSecondPerGPU: 2100.4}))
	for v, want := range map[float64]string{0: "0", 0.5: "0.5", 6.2: "6.2", 9.999: "10", 10: "10", 12.04: "12", 100: "100", 1234.56: "1234.6"} {
		assert.Equal(t, want, trimFloat(v), "%v", v)
	}
}
