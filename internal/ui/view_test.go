package ui

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

var t0 = time.Date(2026, 1, 23, 12, 0, 0, 0, time.UTC)

func at(s int) metav1.Time { return metav1.NewTime(t0.Add(time.Duration(s) * time.Second)) }

func cond(typ string, status metav1.ConditionStatus, s int) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: "R", Message: typ + " message", LastTransitionTime: at(s)}
}

func states(steps []Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.Phase + ":" + s.State
	}
	return out
}

func TestTimeline(t *testing.T) {
	profiled := &v1alpha1.ProfilingResults{StartTime: ptrTime(at(5)), CompletionTime: ptrTime(at(35))}
	tests := []struct {
		name      string
		phase     v1alpha1.Phase
		autoApply bool
		results   *v1alpha1.ProfilingResults
		conds     []metav1.Condition
		want      []string
		times     map[string]string
	}{
		{name: "just created", want: []string{"Pending:current", "Profiling:todo", "Ready:todo", "Deploying:todo", "Deployed:todo"},
			times: map[string]string{"Pending": "2026-01-23T12:00:00Z"}},
		{name: "profiling", phase: v1alpha1.PhaseProfiling, results: &v1alpha1.ProfilingResults{StartTime: ptrTime(at(5))},
			want:  []string{"Pending:done", "Profiling:current", "Ready:todo", "Deploying:todo", "Deployed:todo"},
			times: map[string]string{"Pending": "2026-01-23T12:00:00Z", "Profiling": "2026-01-23T12:00:05Z"}},
		{name: "ready without autoApply rests there", phase: v1alpha1.PhaseReady, results: profiled,
			want:  []string{"Pending:done", "Profiling:done", "Ready:current", "Deploying:skipped", "Deployed:skipped"},
			times: map[string]string{"Ready": "2026-01-23T12:00:35Z"}},
		{name: "ready with autoApply goes on", phase: v1alpha1.PhaseReady, autoApply: true, results: profiled,
			want: []string{"Pending:done", "Profiling:done", "Ready:current", "Deploying:todo", "Deployed:todo"}},
		{name: "deploying", phase: v1alpha1.PhaseDeploying, results: profiled,
			conds: []metav1.Condition{cond(v1alpha1.ConditionDeploymentReady, metav1.ConditionFalse, 40)},
			want:  []string{"Pending:done", "Profiling:done", "Ready:done", "Deploying:current", "Deployed:todo"},
			times: map[string]string{"Deploying": "2026-01-23T12:00:40Z"}},
		{name: "deployed", phase: v1alpha1.PhaseDeployed, results: profiled,
			conds: []metav1.Condition{cond(v1alpha1.ConditionDeploymentReady, metav1.ConditionTrue, 90)},
			want:  []string{"Pending:done", "Profiling:done", "Ready:done", "Deploying:done", "Deployed:done"},
			times: map[string]string{"Deployed": "2026-01-23T12:01:30Z"}},
		{name: "failed validating", phase: v1alpha1.PhaseFailed,
			conds: []metav1.Condition{cond(v1alpha1.ConditionValidated, metav1.ConditionFalse, 2)},
			want:  []string{"Pending:failed", "Profiling:todo", "Ready:todo", "Deploying:todo", "Deployed:todo"}},
		{name: "failed profiling", phase: v1alpha1.PhaseFailed, results: &v1alpha1.ProfilingResults{StartTime: ptrTime(at(5))},
			conds: []metav1.Condition{cond(v1alpha1.ConditionValidated, metav1.ConditionTrue, 2), cond(v1alpha1.ConditionProfilingComplete, metav1.ConditionFalse, 9)},
			want:  []string{"Pending:done", "Profiling:failed", "Ready:todo", "Deploying:todo", "Deployed:todo"},
			times: map[string]string{"Profiling": "2026-01-23T12:00:05Z"}},
		{name: "failed deploying", phase: v1alpha1.PhaseFailed, results: profiled,
			conds: []metav1.Condition{cond(v1alpha1.ConditionValidated, metav1.ConditionTrue, 2), cond(v1alpha1.ConditionDeploymentReady, metav1.ConditionFalse, 50)},
			want:  []string{"Pending:done", "Profiling:done", "Ready:done", "Deploying:failed", "Deployed:todo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "q", CreationTimestamp: at(0)}}
			d.Spec.AutoApply = tt.autoApply
			d.Status.Phase, d.Status.ProfilingResults, d.Status.Conditions = tt.phase, tt.results, tt.conds
			steps := timeline(d)
			assert.Equal(t, tt.want, states(steps))
			for _, s := range steps {
				if want, ok := tt.times[s.Phase]; ok {
					assert.Equal(t, want, s.Time, s.Phase)
				}
				if s.State == "todo" || s.State == "skipped" {
					assert.Empty(t, s.Time, "a step not reached has no time")
				}
			}
		})
	}
}

func ptrTime(t metav1.Time) *metav1.Time { return &t }

// storedDGDR is a Ready DGDR whose status holds the front as the profiler stores it: every other point
// (a thinned front), with the selected configuration's index into that.
func storedDGDR(t *testing.T, rep *profile.Report, keep func(i int) bool) *v1alpha1.DynamoGraphDeploymentRequest {
	t.Helper()
	d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "qwen", Namespace: "team", CreationTimestamp: at(0)}}
	d.Spec.Model = "Qwen/Qwen3-32B"
	d.Status.Phase = v1alpha1.PhaseReady
	pr := &v1alpha1.ProfilingResults{StartTime: ptrTime(at(1)), CompletionTime: ptrTime(at(2))}
	sel := rep.Selected
	if sel == nil {
		sel = rep.Closest
	}
	require.NotNil(t, sel)
	index := int32(-1)
	for i, c := range rep.Pareto {
		if keep(i) {
			if reflect.DeepEqual(c, *sel) {
				index = int32(len(pr.Pareto))
			}
			pr.Pareto = append(pr.Pareto, expand.ParetoPoint(c))
		}
	}
	pr.SelectedConfig = &v1alpha1.SelectedConfig{ParetoPoint: expand.ParetoPoint(*sel), Index: index, Reason: "stored reason"}
	d.Status.ProfilingResults = pr
	return d
}

func TestDGDRViewPicks(t *testing.T) {
	req, res := planSearch(t)
	rep := profile.NewReport(&req, &res, true)
	require.Greater(t, len(rep.Pareto), 4)
	selOnFront := rep.SelectedIndex

	tests := []struct {
		name string
		keep func(int) bool
	}{
		{"whole front", func(int) bool { return true }},
		{"thinned, selected kept", func(i int) bool { return i%2 == 0 || i == selOnFront }},
		{"thinned, selected dropped", func(i int) bool { return i != selOnFront }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := storedDGDR(t, &rep, tt.keep)
			pr := d.Status.ProfilingResults
			v := DGDRView(d, &rep, "")
			assert.True(t, v.CanAct)
			assert.Equal(t, ModeCluster, v.Mode)
			require.GreaterOrEqual(t, v.Selected, 0)
			picks := map[int]bool{}
			for _, c := range v.Candidates {
				if c.Pick == nil {
					continue
				}
				if *c.Pick == -1 {
					assert.Equal(t, expand.ParetoPoint(c.Config), pr.SelectedConfig.ParetoPoint, "-1 is the selected configuration")
					continue
				}
				assert.True(t, c.Front, "only the front is stored")
				assert.Equal(t, pr.Pareto[*c.Pick], expand.ParetoPoint(c.Config), "--pick %d is this configuration", *c.Pick)
				picks[*c.Pick] = true
			}
			assert.Len(t, picks, len(pr.Pareto), "every stored point can be picked")
			selPick := v.Candidates[v.Selected].Pick
			require.NotNil(t, selPick, "the selected configuration can always be exported")
			if pr.SelectedConfig.Index >= 0 {
				assert.Equal(t, int(pr.SelectedConfig.Index), *selPick)
			} else {
				assert.Equal(t, -1, *selPick)
			}
		})
	}
}

func TestDGDRViewWithoutReport(t *testing.T) {
	req, res := planSearch(t)
	rep := profile.NewReport(&req, &res, true)
	d := storedDGDR(t, &rep, func(i int) bool { return i != rep.SelectedIndex })
	v := DGDRView(d, nil, "showing the stored Pareto front only: gone")
	assert.Equal(t, "showing the stored Pareto front only: gone", v.Note)
	assert.Equal(t, "stored reason", v.Explanation)
	pr := d.Status.ProfilingResults
	require.Len(t, v.Candidates, len(pr.Pareto)+1, "the stored front and the selected configuration off it")
	for j := range pr.Pareto {
		require.NotNil(t, v.Candidates[j].Pick)
		assert.Equal(t, j, *v.Candidates[j].Pick)
		assert.True(t, v.Candidates[j].Front)
	}
	assert.Equal(t, len(pr.Pareto), v.Selected)
	assert.Equal(t, -1, *v.Candidates[v.Selected].Pick)
	assert.Equal(t, expand.ConfigFromPoint(pr.SelectedConfig.ParetoPoint), v.Candidates[v.Selected].Config)
}

func TestDGDRViewPending(t *testing.T) {
	d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "qwen", Namespace: "team"}}
	d.Spec.Model = "Qwen/Qwen3-32B"
	d.Spec.Hardware = &v1alpha1.Hardware{GPUType: "h100_sxm"}
	v := DGDRView(d, nil, "")
	assert.Equal(t, "Pending", v.Phase)
	assert.False(t, v.CanAct)
	assert.NotEmpty(t, v.Why)
	assert.Empty(t, v.Candidates)
	assert.Equal(t, -1, v.Selected)
	assert.Equal(t, refreshActive.Milliseconds(), v.RefreshMs, "polls fast while nothing is settled")
	// The request as the defaults make it.
	assert.Equal(t, Request{Model: "Qwen/Qwen3-32B", Backend: "any", ISL: 512, OSL: 128, TTFTMs: 100, ITLMs: 15, Confidence: 0.5, SearchStrategy: "rapid", GPU: "h100_sxm"}, v.Request)
	assert.Empty(t, v.Calibration, "no search document: the calibration is unknown, not claimed")
	assert.Nil(t, v.SLAProbability)

	before := v.Version
	d.Status.Phase = v1alpha1.PhaseProfiling
	v = DGDRView(d, nil, "")
	assert.NotEqual(t, before, v.Version, "a change of phase is a new version")
	assert.Equal(t, before, DGDRView(&v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: d.ObjectMeta, Spec: d.Spec}, nil, "").Version, "versions are deterministic")

	d.Status.Phase = v1alpha1.PhaseFailed
	assert.Equal(t, refreshSettled.Milliseconds(), DGDRView(d, nil, "").RefreshMs)
}

// The page says which calibration the predictions used and, for the pick, the probability of meeting
// each target, as the search document has them; without the document it claims neither.
func TestViewCalibrationAndSLAProbability(t *testing.T) {
	req, res := planSearch(t)
	require.NotNil(t, res.SLAProbability, "the search gives its pick's probabilities")
	rep := profile.NewReport(&req, &res, true)
	refit := "team/dgdr-calibration: 3 measured rows, fitted 2026-01-23T12:00:00Z"
	tests := []struct {
		name        string
		calibration string
		prob        *profile.SLAProbability
		want        string
	}{
		{name: "shipped", want: "shipped (make calibrate)", prob: res.SLAProbability},
		{name: "a namespace's refit", calibration: refit, want: refit, prob: res.SLAProbability},
		{name: "a document without probabilities", want: "shipped (make calibrate)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rep
			r.Calibration, r.SLAProbability = tt.calibration, tt.prob
			v := DGDRView(storedDGDR(t, &r, func(int) bool { return true }), &r, "")
			assert.Equal(t, tt.want, v.Calibration)
			assert.Equal(t, tt.prob, v.SLAProbability)
		})
	}
	t.Run("without the search document", func(t *testing.T) {
		v := DGDRView(storedDGDR(t, &rep, func(int) bool { return true }), nil, "gone")
		assert.Empty(t, v.Calibration)
		assert.Nil(t, v.SLAProbability)
	})
	t.Run("the confidence asked for", func(t *testing.T) {
		assert.Equal(t, 0.5, PlanView(req, res).Request.Confidence, "unset: the default")
		d := storedDGDR(t, &rep, func(int) bool { return true })
		d.Spec.SLA = &v1alpha1.SLA{Confidence: ptr.To(0.9)}
		assert.Equal(t, 0.9, DGDRView(d, &rep, "").Request.Confidence)

		req.SLA.Confidence = 0.9
		res, err := profile.Search(t.Context(), req)
		require.NoError(t, err)
		v := PlanView(req, res)
		assert.Equal(t, 0.9, v.Request.Confidence)
		assert.Equal(t, "shipped (make calibrate)", v.Calibration)
		require.NotNil(t, v.SLAProbability)
		assert.Equal(t, *res.SLAProbability, *v.SLAProbability)
	})
}
