package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/adaptrun"
	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/internal/testenv/promtest"
	"github.com/dgdr-dev/dgdr/pkg/adapt"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// TestDrift runs `kubectl dgdr drift` against the real API server and a real Prometheus scraping a fake
// Dynamo frontend whose prompts are three times the DGDR's ISL and whose answers are half its OSL.
func TestDrift(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ns := h.namespace("drift")
	h.profiled(ns, "qwen")
	doc := searchDoc()
	cm, err := lifecycle.ResultsConfigMap(h.get(ns, "qwen"), &doc, "<svg/>")
	require.NoError(t, err)
	testenv.Must(t, h.env.Client.Create(t.Context(), cm), "creating the results ConfigMap as the profiler does")

	t.Run("without a Prometheus URL: one line with a hint", func(t *testing.T) {
		h := h.with(t)
		r := h.fail("drift", "qwen", "-n", ns)
		assert.Contains(t, r.errLine, "DGDR qwen has no spec.adaptation.prometheusURL (hint: pass --prometheus-url http://PROMETHEUS:9090)")
	})

	// spec(): ISL 2048, OSL 256. The frontend's prompts are all in (4096, 8192], answers in (64, 128].
	bounds := []float64{64, 128, 256, 512, 1024, 2048, 4096, 8192}
	fe := promtest.Frontend(t, promtest.Traffic{Model: spec().Model, Bounds: bounds,
		ISL: []float64{0, 0, 0, 0, 0, 0, 0, 20}, OSL: []float64{0, 20, 0, 0, 0, 0, 0, 0}, TTFTSec: 0.2, ITLSec: 0.01})
	url := promtest.Start(t, time.Second, strings.TrimPrefix(fe.URL, "http://"))
	args := []string{"drift", "qwen", "-n", ns, "--prometheus-url", url, "--window", "20s"}

	var r result
	require.Eventually(t, func() bool {
		r = h.run(nil, append(args, "-o", "json")...)
		return r.err == nil
	}, 90*time.Second, time.Second, "drift never read enough traffic: %s", r.errLine)
	var rep adapt.Report
	require.NoError(t, json.Unmarshal([]byte(r.out), &rep))
	assert.True(t, rep.Drifted)
	require.NotNil(t, rep.Baseline, "the live configuration, predicted under the observed traffic")
	require.NotNil(t, rep.Proposed)
	require.NotNil(t, rep.Workload)
	assert.NotNil(t, rep.Workload.ISLDistribution, "the re-plan uses the observed distribution")
	for _, f := range rep.Figures {
		if strings.HasPrefix(f.Figure, "isl") {
			assert.Greater(t, f.Change, 1.0, "%s: prompts more than doubled", f.Figure)
			assert.True(t, f.Drifted, f.Figure)
		}
	}

	h = h.with(t)
	r = h.ok(append(args, "--record")...)
	assert.Contains(t, r.out, spec().Model+": ")
	assert.Regexp(t, `isl p50\s+\S+\s+\S+\s+\+\d+%\s+yes`, r.out)
	assert.Contains(t, r.out, "Live:     ")
	assert.Contains(t, r.out, "Re-plan:  ")
	c := meta.FindStatusCondition(h.get(ns, "qwen").Status.Conditions, v1alpha1.ConditionImprovementAvailable)
	require.NotNil(t, c, "--record writes the condition")
	want := metav1.ConditionFalse
	if rep.ImprovementAvailable {
		want = metav1.ConditionTrue
	}
	assert.Equal(t, want, c.Status)
	assert.NotEmpty(t, c.Message)
	assert.NotEqual(t, v1alpha1.ReasonNoDrift, c.Reason)

	assert.Equal(t, int64(1), h.get(ns, "qwen").Generation, "mode Recommend (the default) changes no spec")

	// spec.adaptation.mode Apply: --record also re-profiles with the observed workload (a spec change is a
	// new run) when the re-plan gains enough.
	d := h.get(ns, "qwen")
	d.Spec.Adaptation = &v1alpha1.Adaptation{PrometheusURL: url, Window: "20s", Mode: v1alpha1.AdaptApply, MinImprovement: ptr.To(0.01)}
	testenv.Must(t, h.env.Client.Update(t.Context(), d), "setting spec.adaptation")
	r = h.ok("drift", "qwen", "-n", ns, "--record", "-o", "json")
	var applied adapt.Report
	require.NoError(t, json.Unmarshal([]byte(r.out), &applied))
	got := h.get(ns, "qwen")
	// Prompts three times longer: the live configuration misses the SLA, the re-plan meets it.
	require.True(t, applied.ImprovementAvailable, applied.Summary)
	assert.Equal(t, d.Generation+1, got.Generation, "a new run")
	assert.Equal(t, applied.Workload.ISLDistribution, got.Spec.Workload.ISLDistribution, "the observed workload")
	assert.Contains(t, r.errOut, "a new profiling run starts")

	// What the adaptation CronJob runs (dgdr-profiler drift): the same evaluation, with spec.adaptation.
	key := client.ObjectKeyFromObject(got)
	out, err := adaptrun.Scheduled(t.Context(), h.env.Client, key, got.UID, logr.Discard())
	require.NoError(t, err)
	assert.Empty(t, out.Report.Figures, "a run in flight (the one Apply started) is judged when it is done")
	assert.Equal(t, got.Generation, h.get(ns, "qwen").Generation)

	out, err = adaptrun.Scheduled(t.Context(), h.env.Client, key, "another-create", logr.Discard())
	require.NoError(t, err)
	assert.Empty(t, out.Report.Figures, "another create's CronJob leaves this DGDR alone")

	st := h.get(ns, "qwen").Status
	st.ObservedGeneration = got.Generation // the new run is done
	h.setStatus(ns, "qwen", st)
	out, err = adaptrun.Scheduled(t.Context(), h.env.Client, key, got.UID, logr.Discard())
	require.NoError(t, err)
	require.NotEmpty(t, out.Report.Figures, "evaluated")
	for _, f := range out.Report.Figures {
		if strings.HasPrefix(f.Figure, "isl") {
			assert.False(t, f.Drifted, "%s: spec.workload is now the observed workload (%+.2f)", f.Figure, f.Change)
		}
	}
	c = meta.FindStatusCondition(h.get(ns, "qwen").Status.Conditions, v1alpha1.ConditionImprovementAvailable)
	require.NotNil(t, c)
	assert.Contains(t, c.Message, out.Report.Summary, "recorded")
}
