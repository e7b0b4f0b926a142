package adapt

import (
	"cmp"
	"context"
	"fmt"
	"math"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// DefaultThreshold is the relative change of a workload figure (ISL or OSL median or p90, request
// rate) that counts as drift.
const DefaultThreshold = 0.25

// DefaultMinRequests is the fewest requests in a window that drift is judged on.
const DefaultMinRequests = 20

// Options tune Evaluate.
type Options struct {
	// Threshold is the relative change that counts as drift (0: DefaultThreshold).
	Threshold float64
	// MinImprovement is the predicted tokens/s/GPU gain, as a fraction, worth reporting
	// (spec.adaptation.minImprovement).
	MinImprovement float64
}

// Drift is one workload figure, specified and observed.
type Drift struct {
	Figure    string  `json:"figure"`
	Specified float64 `json:"specified"`
	Observed  float64 `json:"observed"`
	// Change is (observed − specified) / specified.
	Change  float64 `json:"change"`
	Drifted bool    `json:"drifted"`
}

// Report is what Evaluate finds.
type Report struct {
	Observed Observed `json:"observed"`
	// Figures compares the specified and observed ISL and OSL (median, p90) and, when the spec gives
	// one, the request rate.
	Figures []Drift `json:"figures"`
	Drifted bool    `json:"drifted"`
	// SLA is the spec's targets in ms beside the observed p90 TTFT and ITL.
	SLA ObservedSLA `json:"sla"`
	// Workload is the spec.workload a re-plan uses: the observed histograms (set when Drifted).
	Workload *v1alpha1.Workload `json:"workload,omitempty"`
	// Baseline is the live configuration predicted under the observed workload; Proposed the
	// re-plan's selection (both set when Drifted).
	Baseline *profile.Config `json:"baseline,omitempty"`
	Proposed *profile.Config `json:"proposed,omitempty"`
	// Plan is the re-plan's explanation.
	Plan string `json:"plan,omitempty"`
	// Gain is Proposed's tokens/s/GPU over Baseline's, minus one.
	Gain float64 `json:"gain"`
	// ImprovementAvailable: drifted, and the re-plan meets the SLA and gains at least MinImprovement
	// (or the live configuration no longer meets the SLA and the re-plan does).
	ImprovementAvailable bool `json:"improvementAvailable"`
	// Summary says the outcome in one sentence.
	Summary string `json:"summary"`
}

// ObservedSLA sets the targets beside what the frontend measured.
type ObservedSLA struct {
	TTFTMs      float64 `json:"ttftMs"`
	ITLMs       float64 `json:"itlMs"`
	ObservedP90 struct {
		TTFTMs float64 `json:"ttftMs"`
		ITLMs  float64 `json:"itlMs"`
	} `json:"observedP90"`
}

// Evaluate compares the observed traffic with spec's workload and, when it drifted, re-plans with
// the observed workload: req is the DGDR's search (its hardware and SLA; its workload is replaced)
// and live the deployed configuration, predicted under the observed workload as the baseline.
func Evaluate(ctx context.Context, spec *v1alpha1.DynamoGraphDeploymentRequestSpec, req profile.SearchRequest, live profile.Config, obs Observed, o Options) (Report, error) {
	r := Report{Observed: obs}
	r.SLA.TTFTMs, r.SLA.ITLMs = spec.TTFT(), spec.ITL()
	r.SLA.ObservedP90.TTFTMs, r.SLA.ObservedP90.ITLMs = obs.TTFT.P90Ms, obs.ITL.P90Ms
	isl, err := spec.ISLQuantiles()
	if err != nil {
		return r, fmt.Errorf("spec.workload.islDistribution: %w", err)
	}
	osl, err := spec.OSLQuantiles()
	if err != nil {
		return r, fmt.Errorf("spec.workload.oslDistribution: %w", err)
	}
	threshold := cmp.Or(o.Threshold, DefaultThreshold)
	add := func(name string, spec, seen float64) {
		d := Drift{Figure: name, Specified: spec, Observed: seen, Change: seen/spec - 1}
		d.Drifted = math.Abs(d.Change) > threshold
		r.Drifted = r.Drifted || d.Drifted
		r.Figures = append(r.Figures, d)
	}
	add("isl p50", isl.Quantile(0.5), obs.ISL.P50)
	add("isl p90", isl.Quantile(0.9), obs.ISL.P90)
	add("osl p50", osl.Quantile(0.5), obs.OSL.P50)
	add("osl p90", osl.Quantile(0.9), obs.OSL.P90)
	if w := spec.Workload; w != nil && w.RequestRate != nil {
		add("requests/s", *w.RequestRate, obs.RequestRate)
	}
	if !r.Drifted {
		r.Summary = fmt.Sprintf("no drift: every figure is within %.0f%% of the spec", 100*threshold)
		return r, nil
	}

	// The re-plan: the spec with the observed histograms as its workload, searched as the profiler would.
	w := ObservedWorkload(spec, obs)
	r.Workload = w
	replanned := spec.DeepCopy()
	replanned.Workload = w
	req.Workload, err = profile.SpecWorkload(replanned)
	if err != nil {
		return r, fmt.Errorf("the observed workload: %w", err)
	}
	res, err := profile.Search(ctx, req)
	if err != nil {
		return r, fmt.Errorf("re-planning with the observed workload: %w", err)
	}
	r.Plan = res.Explanation
	base, err := profile.Cost(req, live)
	if err != nil {
		return r, fmt.Errorf("predicting the live configuration under the observed workload: %w", err)
	}
	r.Baseline = &base.Config
	sel, ok := res.SelectedConfig()
	if !ok {
		r.Summary = "drifted, but the re-plan found no configuration: " + res.Explanation
		return r, nil
	}
	r.Proposed = &sel
	if base.Config.TokensPerSecondPerGPU > 0 {
		r.Gain = sel.TokensPerSecondPerGPU/base.Config.TokensPerSecondPerGPU - 1
	}
	same := profile.Describe(sel) == profile.Describe(base.Config)
	switch {
	case same:
		r.Summary = "drifted, but the re-plan picks the live configuration again"
	case !res.MeetsSLA:
		r.Summary = "drifted, but no configuration meets the SLA under the observed workload: " + res.Explanation
	case !base.Config.MeetsSLA:
		r.ImprovementAvailable = true
		r.Summary = fmt.Sprintf("the live configuration misses the SLA under the observed workload; %s meets it", profile.Describe(sel))
	case r.Gain >= o.MinImprovement:
		r.ImprovementAvailable = true
		r.Summary = fmt.Sprintf("%s would serve %+.0f%% tokens/s/GPU under the observed workload", profile.Describe(sel), 100*r.Gain)
	default:
		r.Summary = fmt.Sprintf("drifted; the re-plan's gain (%+.1f%%) is below the %.0f%% asked for", 100*r.Gain, 100*o.MinImprovement)
	}
	return r, nil
}

// ObservedWorkload is spec's workload with the observed histograms for the lengths (the SLA
// percentile kept, the request rate the observed one).
func ObservedWorkload(spec *v1alpha1.DynamoGraphDeploymentRequestSpec, obs Observed) *v1alpha1.Workload {
	isl, osl := obs.ISL.Histogram, obs.OSL.Histogram
	rate := obs.RequestRate
	w := &v1alpha1.Workload{
		ISLDistribution: &v1alpha1.LengthDistribution{Histogram: &isl},
		OSLDistribution: &v1alpha1.LengthDistribution{Histogram: &osl},
		RequestRate:     &rate,
	}
	if spec.Workload != nil && spec.Workload.SLAPercentile != nil {
		p := *spec.Workload.SLAPercentile
		w.SLAPercentile = &p
	}
	return w
}
