package thorough

import (
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// simTarget is the model, GPU and workload of the tests: a small model with short outputs.
func simTarget(t *testing.T) profile.Target {
	m, err := profile.LookupModel("Qwen/Qwen3-8B")
	require.NoError(t, err)
	g, err := hw.Lookup("h200_sxm")
	require.NoError(t, err)
	return profile.Target{Model: m, GPU: g, Workload: profile.Workload{ISL: 512, OSL: 16}}
}

func TestPlan(t *testing.T) {
	target := simTarget(t)
	settings := Settings{MaxCandidates: 8, MaxLevels: 4, Tolerance: 0.25}
	tests := []struct {
		name     string
		backends []string
		total    int
		sla      profile.SLA
	}{
		{"one backend", []string{"vllm"}, 8, profile.SLA{TTFTMs: 110, ITLMs: 12}},
		{"any backend", nil, 8, profile.SLA{TTFTMs: 110, ITLMs: 12}},
		{"a small budget", nil, 2, profile.SLA{TTFTMs: 200, ITLMs: 20}},
		{"an SLA nothing meets", []string{"sglang"}, 4, profile.SLA{TTFTMs: 1, ITLMs: 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := profile.SearchRequest{Model: target.Model, GPU: target.GPU, Backends: tt.backends, Workload: target.Workload,
				SLA: tt.sla, TotalGPUs: tt.total, GPUsPerNode: 8}
			res, err := profile.Search(t.Context(), req)
			require.NoError(t, err)
			cands := Plan(req, res, settings)
			require.NotEmpty(t, cands)
			assert.LessOrEqual(t, len(cands), settings.MaxCandidates)

			sel, ok := res.SelectedConfig()
			require.True(t, ok)
			assert.Equal(t, LayoutKey(sel), LayoutKey(cands[0].Config), "the rapid selection is measured first")
			assert.Contains(t, levelBatches(cands[0]), servingBatch(sel), "at the load rapid selected")

			layouts := map[string]bool{}
			for i, c := range cands {
				assert.Equal(t, "c"+strconv.Itoa(i), c.Name)
				assert.Equal(t, StatePlanned, c.State)
				assert.NotEmpty(t, c.Why)
				assert.False(t, layouts[LayoutKey(c.Config)], "each layout once")
				layouts[LayoutKey(c.Config)] = true
				assert.Equal(t, 1, c.Config.Replicas, "one replica is measured")
				assert.Equal(t, c.Config.GPUsPerReplica(), c.Config.GPUs)
				assert.LessOrEqual(t, c.Config.GPUs, tt.total, "within the GPU budget")
				require.NotEmpty(t, c.Levels)
				assert.LessOrEqual(t, len(c.Levels), settings.MaxLevels)
				for k, l := range c.Levels {
					assert.Positive(t, l.Predicted.ITLMs)
					assert.Equal(t, Slots(withServingBatch(c.Config, l.Batch)), l.Concurrency, "a load fills the batch slots")
					if k > 0 {
						assert.Greater(t, l.Concurrency, c.Levels[k-1].Concurrency, "ascending")
					}
				}
				assert.Equal(t, c.Levels[len(c.Levels)-1].Batch, servingBatch(c.Config), "the engine holds the largest load")
			}
			if tt.backends == nil && tt.total == 8 {
				kinds := map[string]bool{}
				for _, c := range cands {
					kinds[c.key()] = true
				}
				assert.GreaterOrEqual(t, len(kinds), 3, "several backends and modes: %v", kinds)
			}
		})
	}
}

func levelBatches(c *Candidate) []int {
	var out []int
	for _, l := range c.Levels {
		out = append(out, l.Batch)
	}
	return out
}

func TestChooseLevels(t *testing.T) {
	var all []LevelPlan
	for c := 1; c <= 10; c++ {
		all = append(all, LevelPlan{Concurrency: c, Batch: c})
	}
	conc := func(ls []LevelPlan) []int {
		var out []int
		for _, l := range ls {
			out = append(out, l.Concurrency)
		}
		return out
	}
	assert.Equal(t, []int{1, 4, 7, 10}, conc(chooseLevels(all, nil, 4)), "evenly spread with both ends")
	assert.Equal(t, []int{1, 6, 10}, conc(chooseLevels(all, []LevelPlan{all[5]}, 3)), "a must-have load first")
	assert.Len(t, chooseLevels(all, nil, 0), 10, "no limit")
	assert.Equal(t, []int{1, 2}, conc(chooseLevels(append(all[:2:2], all[1]), nil, 4)), "duplicates dropped")
	assert.Equal(t, []int{1}, conc(chooseLevels(all, []LevelPlan{all[0]}, 1)))
}

func TestFitCorrections(t *testing.T) {
	meas := func(ratio float64) Measurement {
		p := Figures{TTFTMs: 10, ITLMs: 10, TokensPerSecondPerGPU: 100}
		return Measurement{Requests: 1, Predicted: p,
			Measured: Figures{TTFTMs: 10 * ratio, ITLMs: 10 * ratio, TokensPerSecondPerGPU: 100 / ratio}}
	}
	cfg := func(backend string, mode profile.Mode) profile.Config {
		return profile.Config{Backend: backend, Mode: mode}
	}
	cands := []*Candidate{
		{Name: "c0", Config: cfg("vllm", profile.ModeAgg), Measurements: []Measurement{meas(2), meas(2)}},
		{Name: "c1", Config: cfg("vllm", profile.ModeDisagg), Measurements: []Measurement{{Requests: 0}}}, // nothing usable
	}
	corr := FitCorrections(cands)
	// Global: 2 samples of ln 2 shrunk by 2 prior samples → ln2/2; vllm/agg: (2 ln2 + 2·ln2/2)/4 = 3ln2/4.
	assert.InDelta(t, math.Pow(2, 0.5), corr[""].ITL, 1e-9)
	assert.InDelta(t, math.Pow(2, 0.75), corr["vllm/agg"].ITL, 1e-9)
	assert.InDelta(t, math.Pow(2, -0.75), corr["vllm/agg"].TokensPerSecondPerGPU, 1e-9)
	assert.Equal(t, 2, corr["vllm/agg"].Samples)
	_, ok := corr["vllm/disagg"]
	assert.False(t, ok)
	assert.Equal(t, corr[""], correctionFor(corr, cands[1]), "unmeasured backends and modes take the global one")
	assert.Equal(t, Correction{TTFT: 1, ITL: 1, TokensPerSecondPerGPU: 1}, correctionFor(FitCorrections(nil), cands[1]).withoutSamples())

	f := corr["vllm/agg"].apply(Figures{TTFTMs: 10, ITLMs: 10, TokensPerSecondPerGPU: 100}, 1.25)
	assert.InDelta(t, 10*math.Pow(2, 0.75)/1.25, f.ITLMs, 1e-9)
	assert.InDelta(t, 1000/f.ITLMs, f.TokensPerSecondPerUser, 1e-9)
	assert.InDelta(t, 100*math.Pow(2, -0.75)*1.25, f.TokensPerSecondPerGPU, 1e-9)
}

func (k Correction) withoutSamples() Correction { k.Samples = 0; return k }

func TestJudge(t *testing.T) {
	sla := profile.SLA{TTFTMs: 100, ITLMs: 10}
	pt := func(ttft, itl, perGPU float64) Figures {
		return Figures{TTFTMs: ttft, ITLMs: itl, TokensPerSecondPerGPU: perGPU, TokensPerSecondPerUser: 1000 / itl}
	}
	measured := func(name, state string, fs ...Figures) *Candidate {
		c := &Candidate{Name: name, State: state}
		for _, f := range fs {
			c.Measurements = append(c.Measurements, Measurement{Requests: 1, Measured: f})
		}
		return c
	}
	cands := []*Candidate{
		measured("c0", StateMeasured, pt(50, 5, 100), pt(60, 9, 500), pt(300, 20, 2000)),
		measured("c1", StateFailed, pt(10, 1, 9000)), // a failed candidate's points do not count
	}
	j := newJudge(sla, cands, "")
	assert.Equal(t, 500.0, j.best)
	require.Len(t, j.front, 2, "the TTFT miss is not on the front")

	tests := []struct {
		name     string
		fs       []Figures
		hopeless bool
	}{
		{"dominated everywhere", []Figures{pt(50, 6, 90), pt(60, 12, 400)}, true},
		{"faster than anything measured", []Figures{pt(50, 4, 50)}, false},
		{"more throughput under the SLA", []Figures{pt(50, 9.5, 600)}, false},
		{"beyond the TTFT target counts for nothing", []Figures{pt(50, 6, 90), pt(150, 2, 5000)}, true},
		{"nothing to judge", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, by := j.hopeless(tt.fs)
			assert.Equal(t, tt.hopeless, h)
			if h {
				assert.Equal(t, "c0", by)
			}
		})
	}
	empty := newJudge(sla, nil, "")
	h, _ := empty.hopeless([]Figures{pt(500, 50, 1)})
	assert.False(t, h, "nothing measured: everything may still matter")
	skipSelf := newJudge(sla, cands, "c0")
	assert.Empty(t, skipSelf.front)
}

func TestBudgetWarning(t *testing.T) {
	d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "qwen", Namespace: "ns"},
		Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-8B", SearchStrategy: v1alpha1.SearchThorough,
			Hardware: &v1alpha1.Hardware{GPUType: "h200_sxm", GPUsPerNode: ptr.To[int32](8), TotalGPUs: ptr.To[int32](8)}}}
	d.Default("nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.3.0")
	job := &batchv1.Job{Spec: batchv1.JobSpec{ActiveDeadlineSeconds: ptr.To[int64](2 * 3600)}}

	w := BudgetWarning(t.Context(), d, job)
	assert.Contains(t, w, "up to 8 GPUs for up to 2h0m0s")
	assert.Contains(t, w, "at most 16 GPU-hours")
	assert.Regexp(t, `expected: [0-9.]+ GPU-hours and [0-9hm]+ of wall time for [1-8] candidate deployments`, w)
	assert.Contains(t, w, "kubectl dgdr status qwen")

	// Without the hardware (discovered at profiling time) only what is certain.
	d.Spec.Hardware = nil
	w = BudgetWarning(t.Context(), d, nil)
	assert.Contains(t, w, "up to every free GPU for up to 6h0m0s")
	assert.NotContains(t, w, "expected:")
	assert.Contains(t, w, "once the profiler has planned")
}

func TestRefine(t *testing.T) {
	target := simTarget(t)
	req := profile.SearchRequest{Model: target.Model, GPU: target.GPU, Workload: target.Workload, SLA: profile.SLA{TTFTMs: 100, ITLMs: 12}, TotalGPUs: 8, GPUsPerNode: 8}
	at := func(batch int, ttft, itl, perGPU float64) Measurement {
		return Measurement{Concurrency: batch, Batch: batch, Requests: batch,
			Measured: Figures{TTFTMs: ttft, ITLMs: itl, TokensPerSecondPerGPU: perGPU, TokensPerSecondPerUser: 1000 / itl}}
	}
	cfg := profile.Config{Backend: "vllm", Mode: profile.ModeAgg, Replicas: 1, GPUs: 1,
		Workers: []profile.Worker{{Role: profile.RoleAgg, Count: 1, TP: 1, PP: 1, EP: 1, DP: 1, Batch: 24}}}
	tests := []struct {
		name   string
		meas   []Measurement
		others []Measurement // another candidate's
		want   int           // batch proposed, 0 for none
		levels []LevelPlan   // c's loads so far
	}{
		{"between a load that meets and one that misses", []Measurement{at(1, 30, 8, 100), at(12, 40, 14, 900), at(24, 60, 20, 1200)}, nil, 8, nil},
		{"ITL crossed just below the missing load", []Measurement{at(1, 30, 8, 100), at(12, 40, 12.2, 900)}, nil, 11, nil},
		{"TTFT is the bound", []Measurement{at(4, 30, 8, 300), at(12, 220, 9, 900)}, nil, 6, nil},
		{"adjacent loads: pinned down", []Measurement{at(10, 30, 11, 700), at(11, 40, 12.5, 750)}, nil, 0, nil},
		{"nothing meets the SLA", []Measurement{at(1, 30, 13, 100), at(12, 40, 20, 900)}, nil, 0, nil},
		{"everything meets it", []Measurement{at(1, 30, 8, 100), at(24, 40, 11, 900)}, nil, 0, nil},
		{"cannot beat another candidate", []Measurement{at(1, 30, 8, 100), at(12, 40, 14, 900)}, []Measurement{at(8, 30, 9, 5000)}, 0, nil},
		{"one load added so far: one more", []Measurement{at(1, 30, 8, 100), at(12, 40, 14, 900)}, nil, 8,
			[]LevelPlan{{Batch: 1}, {Batch: 24}, {Batch: 12, Refined: true}}},
		{"MaxRefinements loads added: no more", []Measurement{at(1, 30, 8, 100), at(12, 40, 14, 900)}, nil, 0,
			[]LevelPlan{{Batch: 1}, {Batch: 24, Refined: true}, {Batch: 12, Refined: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Candidate{Name: "c0", Config: cfg, State: StateRunning, Measurements: tt.meas, Levels: tt.levels}
			other := &Candidate{Name: "c1", Config: cfg, State: StateMeasured, Measurements: tt.others}
			l := Planner{Request: req}.Refine(&Record{Candidates: []*Candidate{c, other}}, c)
			if tt.want == 0 {
				assert.Nil(t, l)
				return
			}
			require.NotNil(t, l)
			assert.Equal(t, tt.want, l.Batch)
			assert.Equal(t, tt.want, l.Concurrency)
			assert.True(t, l.Refined)
			assert.Positive(t, l.Predicted.ITLMs, "the prediction for the same load")
		})
	}
}
