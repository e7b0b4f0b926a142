package profiler

import (
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

func TestPlanCandidates(t *testing.T) {
	target := simTarget(t)
	settings := sweepSettings{maxCandidates: 8, maxLevels: 4, tolerance: 0.25, diversitySlack: 2}
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
			cands := planCandidates(req, res, settings)
			require.NotEmpty(t, cands)
			assert.LessOrEqual(t, len(cands), settings.maxCandidates)

			sel, ok := res.SelectedConfig()
			require.True(t, ok)
			assert.Equal(t, layoutKey(sel), layoutKey(cands[0].Config), "the rapid selection is measured first")
			assert.Contains(t, levelBatches(cands[0]), servingBatch(sel), "at the load rapid selected")

			layouts := map[string]bool{}
			for i, c := range cands {
				assert.Equal(t, "c"+strconv.Itoa(i), c.Name)
				assert.Equal(t, statePlanned, c.State)
				assert.NotEmpty(t, c.Why)
				assert.False(t, layouts[layoutKey(c.Config)], "each layout once")
				layouts[layoutKey(c.Config)] = true
				assert.Equal(t, 1, c.Config.Replicas, "one replica is measured")
				assert.Equal(t, c.Config.GPUsPerReplica(), c.Config.GPUs)
				assert.LessOrEqual(t, c.Config.GPUs, tt.total, "within the GPU budget")
				require.NotEmpty(t, c.Levels)
				assert.LessOrEqual(t, len(c.Levels), settings.maxLevels)
				for k, l := range c.Levels {
					assert.Positive(t, l.Predicted.ITLMs)
					assert.Equal(t, slots(withServingBatch(c.Config, l.Batch)), l.Concurrency, "a load fills the batch slots")
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

func levelBatches(c *candidate) []int {
	var out []int
	for _, l := range c.Levels {
		out = append(out, l.Batch)
	}
	return out
}

func TestChooseLevels(t *testing.T) {
	var all []levelPlan
	for c := 1; c <= 10; c++ {
		all = append(all, levelPlan{Concurrency: c, Batch: c})
	}
	conc := func(ls []levelPlan) []int {
		var out []int
		for _, l := range ls {
			out = append(out, l.Concurrency)
		}
		return out
	}
	assert.Equal(t, []int{1, 4, 7, 10}, conc(chooseLevels(all, nil, 4)), "evenly spread with both ends")
	assert.Equal(t, []int{1, 6, 10}, conc(chooseLevels(all, []levelPlan{all[5]}, 3)), "a must-have load first")
	assert.Len(t, chooseLevels(all, nil, 0), 10, "no limit")
	assert.Equal(t, []int{1, 2}, conc(chooseLevels(append(all[:2:2], all[1]), nil, 4)), "duplicates dropped")
	assert.Equal(t, []int{1}, conc(chooseLevels(all, []levelPlan{all[0]}, 1)))
}

func TestFitCorrections(t *testing.T) {
	meas := func(ratio float64) measurement {
		p := figures{TTFTMs: 10, ITLMs: 10, TokensPerSecondPerGPU: 100}
		return measurement{Requests: 1, Predicted: p,
			Measured: figures{TTFTMs: 10 * ratio, ITLMs: 10 * ratio, TokensPerSecondPerGPU: 100 / ratio}}
	}
	cfg := func(backend string, mode profile.Mode) profile.Config {
		return profile.Config{Backend: backend, Mode: mode}
	}
	cands := []*candidate{
		{Name: "c0", Config: cfg("vllm", profile.ModeAgg), Measurements: []measurement{meas(2), meas(2)}},
		{Name: "c1", Config: cfg("vllm", profile.ModeDisagg), Measurements: []measurement{{Requests: 0}}}, // nothing usable
	}
	corr := fitCorrections(cands)
	// Global: 2 samples of ln 2 shrunk by 2 prior samples → ln2/2; vllm/agg: (2 ln2 + 2·ln2/2)/4 = 3ln2/4.
	assert.InDelta(t, math.Pow(2, 0.5), corr[""].ITL, 1e-9)
	assert.InDelta(t, math.Pow(2, 0.75), corr["vllm/agg"].ITL, 1e-9)
	assert.InDelta(t, math.Pow(2, -0.75), corr["vllm/agg"].TokensPerSecondPerGPU, 1e-9)
	assert.Equal(t, 2, corr["vllm/agg"].Samples)
	_, ok := corr["vllm/disagg"]
	assert.False(t, ok)
	assert.Equal(t, corr[""], correctionFor(corr, cands[1]), "unmeasured backends and modes take the global one")
	assert.Equal(t, correction{TTFT: 1, ITL: 1, TokensPerSecondPerGPU: 1}, correctionFor(fitCorrections(nil), cands[1]).withoutSamples())

	f := corr["vllm/agg"].apply(figures{TTFTMs: 10, ITLMs: 10, TokensPerSecondPerGPU: 100}, 1.25)
	assert.InDelta(t, 10*math.Pow(2, 0.75)/1.25, f.ITLMs, 1e-9)
	assert.InDelta(t, 1000/f.ITLMs, f.TokensPerSecondPerUser, 1e-9)
	assert.InDelta(t, 100*math.Pow(2, -0.75)*1.25, f.TokensPerSecondPerGPU, 1e-9)
}

func (k correction) withoutSamples() correction { k.Samples = 0; return k }

func TestJudge(t *testing.T) {
	sla := profile.SLA{TTFTMs: 100, ITLMs: 10}
	pt := func(ttft, itl, perGPU float64) figures {
		return figures{TTFTMs: ttft, ITLMs: itl, TokensPerSecondPerGPU: perGPU, TokensPerSecondPerUser: 1000 / itl}
	}
	measured := func(name, state string, fs ...figures) *candidate {
		c := &candidate{Name: name, State: state}
		for _, f := range fs {
			c.Measurements = append(c.Measurements, measurement{Requests: 1, Measured: f})
		}
		return c
	}
	cands := []*candidate{
		measured("c0", stateMeasured, pt(50, 5, 100), pt(60, 9, 500), pt(300, 20, 2000)),
		measured("c1", stateFailed, pt(10, 1, 9000)), // a failed candidate's points do not count
	}
	j := newJudge(sla, cands, "")
	assert.Equal(t, 500.0, j.best)
	require.Len(t, j.front, 2, "the TTFT miss is not on the front")

	tests := []struct {
		name     string
		fs       []figures
		hopeless bool
	}{
		{"dominated everywhere", []figures{pt(50, 6, 90), pt(60, 12, 400)}, true},
		{"faster than anything measured", []figures{pt(50, 4, 50)}, false},
		{"more throughput under the SLA", []figures{pt(50, 9.5, 600)}, false},
		{"beyond the TTFT target counts for nothing", []figures{pt(50, 6, 90), pt(150, 2, 5000)}, true},
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
	h, _ := empty.hopeless([]figures{pt(500, 50, 1)})
	assert.False(t, h, "nothing measured: everything may still matter")
	skipSelf := newJudge(sla, cands, "c0")
	assert.Empty(t, skipSelf.front)
}

func TestCandidateName(t *testing.T) {
	tests := []struct{ def, suffix, want string }{
		{"qwen-dgd", "-c0", "qwen-c0"},
		{"qwen-dgd", "-c12", "qwen-c12"},
		{"qwen-dgd", "-c123", "qwe-c123"},
		// A shortened default (prefix + hash) keeps its length.
		{"a-very-long-request-name-that-was-cu-1a2b3c", "-c3", "a-very-long-request-name-that-was-cu-1a2-c3"},
		{"x-dgd", "-c1", "x-c1"},
	}
	for _, tt := range tests {
		got := candidateName(tt.def, tt.suffix)
		assert.Equal(t, tt.want, got)
		assert.LessOrEqual(t, len(got), len(tt.def), "no longer than the name that fits Dynamo's limit")
	}
}

func TestBudgetWarning(t *testing.T) {
	d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "qwen", Namespace: "ns"},
		Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-8B", SearchStrategy: v1alpha1.SearchThorough,
			Hardware: &v1alpha1.Hardware{GPUType: "h200_sxm", GPUsPerNode: ptr.To[int32](8), TotalGPUs: ptr.To[int32](8)}}}
	d.Default("nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.3.0")
	job := &batchv1.Job{Spec: batchv1.JobSpec{ActiveDeadlineSeconds: ptr.To[int64](2 * 3600)}}

	w := BudgetWarning(d, job)
	assert.Contains(t, w, "up to 8 GPUs for up to 2h0m0s")
	assert.Contains(t, w, "at most 16 GPU-hours")
	assert.Regexp(t, `expected: [0-9.]+ GPU-hours and [0-9hm]+ of wall time for [1-8] candidate deployments`, w)
	assert.Contains(t, w, "kubectl dgdr status qwen")

	// Without the hardware (discovered at profiling time) only what is certain.
	d.Spec.Hardware = nil
	w = BudgetWarning(d, nil)
	assert.Contains(t, w, "up to every free GPU for up to 6h0m0s")
	assert.NotContains(t, w, "expected:")
	assert.Contains(t, w, "once the profiler has planned")
}

func TestRefine(t *testing.T) {
	target := simTarget(t)
	req := profile.SearchRequest{Model: target.Model, GPU: target.GPU, Workload: target.Workload, SLA: profile.SLA{TTFTMs: 100, ITLMs: 12}, TotalGPUs: 8, GPUsPerNode: 8}
	at := func(batch int, ttft, itl, perGPU float64) measurement {
		return measurement{Concurrency: batch, Batch: batch, Requests: batch,
			Measured: figures{TTFTMs: ttft, ITLMs: itl, TokensPerSecondPerGPU: perGPU, TokensPerSecondPerUser: 1000 / itl}}
	}
	cfg := profile.Config{Backend: "vllm", Mode: profile.ModeAgg, Replicas: 1, GPUs: 1,
		Workers: []profile.Worker{{Role: profile.RoleAgg, Count: 1, TP: 1, PP: 1, EP: 1, DP: 1, Batch: 24}}}
	tests := []struct {
		name   string
		meas   []measurement
		others []measurement // another candidate's
		want   int           // batch proposed, 0 for none
	}{
		{"between a load that meets and one that misses", []measurement{at(1, 30, 8, 100), at(12, 40, 14, 900), at(24, 60, 20, 1200)}, nil, 8},
		{"ITL crossed just below the missing load", []measurement{at(1, 30, 8, 100), at(12, 40, 12.2, 900)}, nil, 11},
		{"TTFT is the bound", []measurement{at(4, 30, 8, 300), at(12, 220, 9, 900)}, nil, 6},
		{"adjacent loads: pinned down", []measurement{at(10, 30, 11, 700), at(11, 40, 12.5, 750)}, nil, 0},
		{"nothing meets the SLA", []measurement{at(1, 30, 13, 100), at(12, 40, 20, 900)}, nil, 0},
		{"everything meets it", []measurement{at(1, 30, 8, 100), at(24, 40, 11, 900)}, nil, 0},
		{"cannot beat another candidate", []measurement{at(1, 30, 8, 100), at(12, 40, 14, 900)}, []measurement{at(8, 30, 9, 5000)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &candidate{Name: "c0", Config: cfg, State: stateRunning, Measurements: tt.meas}
			other := &candidate{Name: "c1", Config: cfg, State: stateMeasured, Measurements: tt.others}
			s := &sweep{req: req, rec: &thoroughRecord{Candidates: []*candidate{c, other}}}
			l := s.refine(c)
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

// TestOurs: only a DGD labelled as this DGDR's candidate and owned by its UID is reused or deleted; a
// leftover of an earlier DGDR of the name may be removed; anything else is left alone.
func TestOurs(t *testing.T) {
	d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "qwen", Namespace: "ns", UID: "u1"}}
	s := &sweep{d: d}
	owner := func(name string, uid types.UID) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind, Name: name, UID: uid}}
	}
	labels := map[string]string{v1alpha1.LabelDGDRName: "qwen", v1alpha1.LabelCandidate: "c0"}
	for _, tt := range []struct {
		name           string
		labels         map[string]string
		owners         []metav1.OwnerReference
		ours, leftover bool
	}{
		{"our candidate", labels, owner("qwen", "u1"), true, true},
		{"an earlier DGDR's candidate", labels, owner("qwen", "u0"), false, true},
		{"labels copied, no owner", labels, nil, false, false},
		{"another DGDR's", map[string]string{v1alpha1.LabelDGDRName: "llama", v1alpha1.LabelCandidate: "c0"}, owner("llama", "u2"), false, false},
		{"ours by owner but not a candidate", map[string]string{v1alpha1.LabelDGDRName: "qwen"}, owner("qwen", "u1"), false, false},
		{"a user's DGD", nil, nil, false, false},
	} {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetLabels(tt.labels)
		u.SetOwnerReferences(tt.owners)
		assert.Equal(t, tt.ours, s.ours(u), tt.name)
		assert.Equal(t, tt.leftover, s.leftover(u), tt.name)
	}
}
