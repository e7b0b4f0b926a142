package v1alpha1

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"
)

func pcts(kv ...float64) *LengthDistribution {
	d := &LengthDistribution{}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Percentiles = append(d.Percentiles, LengthPercentile{Percentile: kv[i], Tokens: int32(kv[i+1])})
	}
	return d
}

func hist(bounds []int32, counts []float64) *LengthDistribution {
	return &LengthDistribution{Histogram: &LengthHistogram{UpperBounds: bounds, Counts: counts}}
}

// fieldErrors maps each refused field to its details.
func fieldErrors(s *DynamoGraphDeploymentRequestSpec) map[string][]string {
	out := map[string][]string{}
	for _, e := range ValidateSpec(s) {
		out[e.Field] = append(out[e.Field], e.Detail)
	}
	return out
}

func TestValidateWorkloadDistribution(t *testing.T) {
	tests := map[string]struct {
		w     Workload
		field string // "" when valid
		says  string
	}{
		"single lengths":      {Workload{ISL: ptr.To[int32](2048), OSL: ptr.To[int32](256)}, "", ""},
		"percentiles":         {Workload{ISLDistribution: pcts(50, 1000, 90, 4000, 99, 16000)}, "", ""},
		"histogram":           {Workload{OSLDistribution: hist([]int32{128, 512, 2048}, []float64{10, 0, 2.5})}, "", ""},
		"with sla percentile": {Workload{ISLDistribution: pcts(50, 100), SLAPercentile: ptr.To(99.0)}, "", ""},
		"both isl and its distribution": {Workload{ISL: ptr.To[int32](10), ISLDistribution: pcts(50, 100)},
			"spec.workload.islDistribution", "not both"},
		"neither form": {Workload{OSLDistribution: &LengthDistribution{}}, "spec.workload.oslDistribution", "percentiles"},
		"both forms": {Workload{ISLDistribution: &LengthDistribution{Percentiles: pcts(50, 1).Percentiles,
			Histogram: &LengthHistogram{UpperBounds: []int32{1}, Counts: []float64{1}}}}, "spec.workload.islDistribution", "not both"},
		"percentiles not increasing": {Workload{ISLDistribution: pcts(90, 100, 50, 200)},
			"spec.workload.islDistribution.percentiles[1].percentile", "strictly increasing"},
		"percentile out of range": {Workload{ISLDistribution: pcts(100, 100)},
			"spec.workload.islDistribution.percentiles[0].percentile", "between 0 and 100"},
		"lengths decreasing": {Workload{ISLDistribution: pcts(50, 200, 90, 100)},
			"spec.workload.islDistribution.percentiles[1].tokens", "non-decreasing"},
		"zero tokens": {Workload{ISLDistribution: pcts(50, 0)},
			"spec.workload.islDistribution.percentiles[0].tokens", "1 to"},
		"buckets not increasing": {Workload{ISLDistribution: hist([]int32{100, 100}, []float64{1, 1})},
			"spec.workload.islDistribution.histogram.upperBounds[1]", "strictly increasing"},
		"negative count": {Workload{ISLDistribution: hist([]int32{100, 200}, []float64{1, -1})},
			"spec.workload.islDistribution.histogram.counts[1]", "at least 0"},
		"all counts zero": {Workload{ISLDistribution: hist([]int32{100}, []float64{0})},
			"spec.workload.islDistribution.histogram.counts", "at least one request"},
		"counts missing": {Workload{ISLDistribution: hist([]int32{100, 200}, []float64{1})},
			"spec.workload.islDistribution.histogram.counts", "one count per bucket"},
		"sla percentile out of range": {Workload{ISLDistribution: pcts(50, 1), SLAPercentile: ptr.To(0.0)},
			"spec.workload.slaPercentile", "between 0 and 100"},
		"request rate zero": {Workload{RequestRate: ptr.To(0.0)}, "spec.workload.requestRate", "greater than 0"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := &DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-32B", Workload: &tc.w}
			errs := fieldErrors(s)
			if tc.field == "" {
				assert.Empty(t, errs)
				return
			}
			require.Contains(t, errs, tc.field, "errors: %v", errs)
			assert.Contains(t, errs[tc.field][0], tc.says)
		})
	}
}

func TestValidateAdaptation(t *testing.T) {
	ok := Adaptation{PrometheusURL: "http://prometheus.monitoring:9090"}
	tests := map[string]struct {
		mut   func(a *Adaptation)
		field string
	}{
		"minimal":               {func(*Adaptation) {}, ""},
		"full":                  {func(a *Adaptation) { a.Window, a.MinImprovement, a.Mode = "1d12h", ptr.To(0.05), AdaptApply }, ""},
		"url missing":           {func(a *Adaptation) { a.PrometheusURL = "" }, "spec.adaptation.prometheusURL"},
		"url without scheme":    {func(a *Adaptation) { a.PrometheusURL = "prometheus:9090" }, "spec.adaptation.prometheusURL"},
		"window not a duration": {func(a *Adaptation) { a.Window = "an hour" }, "spec.adaptation.window"},
		"window too short":      {func(a *Adaptation) { a.Window = "30s" }, "spec.adaptation.window"},
		"window too long":       {func(a *Adaptation) { a.Window = "1y" }, "spec.adaptation.window"},
		"negative improvement":  {func(a *Adaptation) { a.MinImprovement = ptr.To(-0.1) }, "spec.adaptation.minImprovement"},
		"unknown mode":          {func(a *Adaptation) { a.Mode = "Auto" }, "spec.adaptation.mode"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := ok
			tc.mut(&a)
			errs := fieldErrors(&DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-32B", Adaptation: &a})
			if tc.field == "" {
				assert.Empty(t, errs)
				return
			}
			assert.Contains(t, errs, tc.field, "errors: %v", errs)
		})
	}
}

func TestDefaultsWithDistributions(t *testing.T) {
	// An existing spec is defaulted as before.
	d := &DynamoGraphDeploymentRequest{Spec: DynamoGraphDeploymentRequestSpec{Model: "m"}}
	d.Default("img")
	assert.Equal(t, &Workload{ISL: ptr.To(DefaultISL), OSL: ptr.To(DefaultOSL)}, d.Spec.Workload)
	assert.Nil(t, d.Spec.Adaptation)

	// A distribution is not joined by a defaulted single length (that would be invalid), and the
	// accessors read its median.
	d = &DynamoGraphDeploymentRequest{Spec: DynamoGraphDeploymentRequestSpec{Model: "m",
		Workload:   &Workload{ISLDistribution: pcts(50, 1000, 90, 4000)},
		Adaptation: &Adaptation{PrometheusURL: "http://p:9090"}}}
	d.Default("img")
	assert.Nil(t, d.Spec.Workload.ISL)
	assert.Equal(t, DefaultOSL, *d.Spec.Workload.OSL)
	assert.Equal(t, 1000, d.Spec.ISL())
	assert.Equal(t, DefaultSLAPercentile, d.Spec.SLAPercentile())
	assert.Equal(t, Adaptation{PrometheusURL: "http://p:9090", Window: "1h", MinImprovement: ptr.To(0.1), Mode: AdaptRecommend}, *d.Spec.Adaptation)
	assert.Empty(t, ValidateSpec(&d.Spec))
	again := d.DeepCopy()
	again.Default("img")
	assert.Equal(t, d, again, "defaulting twice changes nothing")
}

// FuzzValidateWorkload: validation never panics, and a workload it accepts has distributions that
// convert to quantile functions (what the search and drift read).
func FuzzValidateWorkload(f *testing.F) {
	seeds := []Workload{
		{ISLDistribution: pcts(50, 1000, 90, 4000, 99, 16000)},
		{OSLDistribution: hist([]int32{128, 512, 2048}, []float64{10, 0, 2.5}), SLAPercentile: ptr.To(95.0)},
		{ISLDistribution: hist([]int32{100, 100}, []float64{1, -1})},
		{ISLDistribution: pcts(90, 100, 50, 200)},
	}
	for _, s := range seeds {
		b, _ := json.Marshal(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var w Workload
		if json.Unmarshal(raw, &w) != nil {
			return
		}
		s := &DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-32B", Workload: &w}
		if len(ValidateSpec(s)) > 0 {
			return
		}
		isl, err := s.ISLQuantiles()
		require.NoError(t, err, "an accepted islDistribution converts")
		osl, err := s.OSLQuantiles()
		require.NoError(t, err, "an accepted oslDistribution converts")
		assert.GreaterOrEqual(t, isl.Quantile(0), 0.0)
		assert.LessOrEqual(t, osl.Quantile(1), float64(MaxSequenceLength))
		assert.GreaterOrEqual(t, s.ISL(), 1)
		assert.GreaterOrEqual(t, s.OSL(), 1)
	})
}
