package adapt_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/internal/testenv/promtest"
	"github.com/dgdr-dev/dgdr/pkg/adapt"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/dist"
	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

var (
	bounds    = []float64{128, 512, 1024, 2048, 4096, 8192, 16384, 32768}
	steadyISL = []float64{10, 30, 30, 20, 8, 2, 0, 0}
	steadyOSL = []float64{40, 40, 15, 5, 0, 0, 0, 0}
	// Prompts four times longer with a heavy tail, answers longer.
	driftISL = []float64{2, 5, 8, 15, 25, 25, 15, 5}
	driftOSL = []float64{10, 20, 30, 30, 10, 0, 0, 0}
)

func histogramOf(counts []float64) *v1alpha1.LengthDistribution {
	h := &v1alpha1.LengthHistogram{Counts: counts}
	for _, b := range bounds {
		h.UpperBounds = append(h.UpperBounds, int32(b))
	}
	return &v1alpha1.LengthDistribution{Histogram: h}
}

// dgdrSearch is the DGDR's search on 8 H200s, as the profiler builds it.
func dgdrSearch(t *testing.T, spec *v1alpha1.DynamoGraphDeploymentRequestSpec) profile.SearchRequest {
	t.Helper()
	m, err := profile.LookupModel(spec.Model)
	require.NoError(t, err)
	g, err := hw.Lookup("h200_sxm")
	require.NoError(t, err)
	w, err := profile.SpecWorkload(spec)
	require.NoError(t, err)
	return profile.SearchRequest{Model: m, GPU: g, Workload: w, TotalGPUs: 8,
		SLA: profile.SLA{TTFTMs: spec.TTFT(), ITLMs: spec.ITL(), Confidence: spec.Confidence()}}
}

// TestDriftAgainstPrometheus runs a real Prometheus scraping a fake Dynamo frontend that serves two
// models: one whose traffic is the DGDR's workload, one whose prompts and answers grew. Drift is found
// for the second only, and its re-plan is the plan of its true workload.
func TestDriftAgainstPrometheus(t *testing.T) {
	fe := promtest.Frontend(t,
		promtest.Traffic{Model: "steady", Bounds: bounds, ISL: steadyISL, OSL: steadyOSL, TTFTSec: 0.2, ITLSec: 0.02},
		promtest.Traffic{Model: "drifted", Bounds: bounds, ISL: driftISL, OSL: driftOSL, TTFTSec: 0.9, ITLSec: 0.03},
	)
	prom := &adapt.Prometheus{BaseURL: promtest.Start(t, time.Second, strings.TrimPrefix(fe.URL, "http://"))}

	spec := &v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-32B",
		Workload: &v1alpha1.Workload{ISLDistribution: histogramOf(steadyISL), OSLDistribution: histogramOf(steadyOSL)},
		SLA:      &v1alpha1.SLA{TTFT: ptr.To(1500.0), ITL: ptr.To(30.0)}}
	require.Empty(t, v1alpha1.ValidateSpec(spec))
	req := dgdrSearch(t, spec)
	planned, err := profile.Search(t.Context(), req)
	require.NoError(t, err)
	live, ok := planned.SelectedConfig()
	require.True(t, ok)

	const window = 15 * time.Second
	observe := func(model string) adapt.Observed {
		var obs adapt.Observed
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			var err error
			obs, err = adapt.Observe(t.Context(), prom, model, window, time.Now(), adapt.DefaultMinRequests)
			require.NoError(c, err)
			// The window filled with scrapes (100 requests each, one a second), so that rates are settled.
			require.GreaterOrEqual(c, obs.Requests, 0.9*100*window.Seconds())
		}, 50*time.Second, time.Second)
		return obs
	}

	t.Run("the specified traffic is no drift", func(t *testing.T) {
		obs := observe("steady")
		isl, err := spec.ISLQuantiles()
		require.NoError(t, err)
		// histogram_quantile and the spec's histogram interpolate the same buckets the same way.
		assert.InEpsilon(t, isl.Quantile(0.5), obs.ISL.P50, 1e-6)
		assert.InEpsilon(t, isl.Quantile(0.9), obs.ISL.P90, 1e-6)
		assert.InEpsilon(t, 200.0, obs.TTFT.P90Ms, 0.11, "all TTFTs in the one bucket up to 0.2 s")
		assert.InDelta(t, 100, obs.RequestRate, 15, "100 requests a scrape, a scrape a second")

		r, err := adapt.Evaluate(t.Context(), spec, req, live, obs, adapt.Options{MinImprovement: 0.1})
		require.NoError(t, err)
		assert.False(t, r.Drifted, "figures: %+v", r.Figures)
		assert.False(t, r.ImprovementAvailable)
		assert.Nil(t, r.Proposed)
		assert.Contains(t, r.Summary, "no drift")
	})

	t.Run("longer prompts drift and re-plan as a direct plan of the true workload", func(t *testing.T) {
		obs := observe("drifted")
		r, err := adapt.Evaluate(t.Context(), spec, req, live, obs, adapt.Options{MinImprovement: 0.1})
		require.NoError(t, err)
		require.True(t, r.Drifted)
		for _, f := range r.Figures {
			if f.Figure == "isl p50" {
				assert.True(t, f.Drifted)
				assert.Greater(t, f.Change, 1.0, "the median prompt more than doubled")
			}
		}
		require.NotNil(t, r.Proposed)
		require.NotNil(t, r.Baseline)

		// The direct plan: the fake frontend's true distributions, searched as `plan` does.
		isl, err := dist.FromHistogram(bounds, driftISL)
		require.NoError(t, err)
		osl, err := dist.FromHistogram(bounds, driftOSL)
		require.NoError(t, err)
		direct := req
		direct.Workload = profile.Workload{ISLDist: isl, OSLDist: osl}
		want, err := profile.Search(t.Context(), direct)
		require.NoError(t, err)
		sel, ok := want.SelectedConfig()
		require.True(t, ok)
		assert.Equal(t, profile.Describe(sel), profile.Describe(*r.Proposed))
		assert.InEpsilon(t, sel.TokensPerSecondPerGPU, r.Proposed.TokensPerSecondPerGPU, 1e-6)
		base, err := profile.Cost(direct, live)
		require.NoError(t, err)
		assert.InEpsilon(t, base.Config.TokensPerSecondPerGPU, r.Baseline.TokensPerSecondPerGPU, 1e-6)
		assert.InEpsilon(t, sel.TokensPerSecondPerGPU/base.Config.TokensPerSecondPerGPU-1, r.Gain, 1e-6)
		require.True(t, want.MeetsSLA, want.Explanation)
		better := profile.Describe(sel) != profile.Describe(live) && (r.Gain >= 0.1 || !base.Config.MeetsSLA)
		assert.Equal(t, better, r.ImprovementAvailable, r.Summary)
		t.Logf("live %s → %s: %s", profile.Describe(live), profile.Describe(*r.Proposed), r.Summary)

		// The proposed workload is a valid spec.workload.
		next := spec.DeepCopy()
		next.Workload = r.Workload
		assert.Empty(t, v1alpha1.ValidateSpec(next))
	})

	t.Run("a model without traffic is a clear error", func(t *testing.T) {
		_, err := adapt.Observe(t.Context(), prom, "absent", window, time.Now(), 1)
		require.ErrorContains(t, err, `no dynamo_frontend_requests_total for model "absent"`)
		require.ErrorIs(t, err, adapt.ErrNoTraffic, "nothing to compare yet, not a failure")
		_, err = adapt.Observe(t.Context(), prom, "steady", window, time.Now(), 1e9)
		require.ErrorContains(t, err, "expected at least 1000000000")
		require.ErrorIs(t, err, adapt.ErrNoTraffic)
	})

	t.Run("an unreachable Prometheus is an error worth a retry, not ErrNoTraffic", func(t *testing.T) {
		_, err := adapt.Observe(t.Context(), &adapt.Prometheus{BaseURL: "http://127.0.0.1:1"}, "steady", window, time.Now(), 1)
		require.Error(t, err)
		require.NotErrorIs(t, err, adapt.ErrNoTraffic)
	})

	t.Run("a bad query is prometheus's own error", func(t *testing.T) {
		_, err := prom.Query(t.Context(), "sum(", time.Now())
		require.ErrorContains(t, err, "prometheus refused")
	})
}

func TestPrometheusURLErrors(t *testing.T) {
	for name, u := range map[string]string{"no scheme": "prometheus:9090", "ftp": "ftp://p:1", "empty": ""} {
		t.Run(name, func(t *testing.T) {
			_, err := (&adapt.Prometheus{BaseURL: u}).Query(t.Context(), "up", time.Now())
			require.ErrorContains(t, err, "expected an http or https URL")
		})
	}
	// A server that is not Prometheus.
	_, err := (&adapt.Prometheus{BaseURL: promtest.Frontend(t).URL}).Query(t.Context(), "up", time.Now())
	require.ErrorContains(t, err, "is it the Prometheus base URL")
}
