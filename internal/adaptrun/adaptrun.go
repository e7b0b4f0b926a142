// Package adaptrun is one drift evaluation of a deployed DGDR: observe its traffic in Prometheus, evaluate
// it against spec.workload, and, when asked to record, write the ImprovementAvailable condition and (mode
// Apply) set spec.workload to the observed workload. `kubectl dgdr drift` and `dgdr-profiler drift` (the
// adaptation CronJob) both run it.
package adaptrun

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/thorough"
	"github.com/dgdr-dev/dgdr/pkg/adapt"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// The reasons an evaluation cannot be made; callers attach their own advice.
var (
	// ErrNoPrometheus: neither the caller nor spec.adaptation names a Prometheus.
	ErrNoPrometheus = errors.New("no Prometheus URL")
	// ErrBadWindow: the window is not a Prometheus duration.
	ErrBadWindow = errors.New("bad window")
	// ErrNotProfiled: the DGDR has no selected configuration yet (nothing deployed to compare).
	ErrNotProfiled = errors.New("no selected configuration yet")
	// ErrNoSearch: the search profiling ran (GPU type and budget) cannot be read back.
	ErrNoSearch = errors.New("the search profiling ran cannot be read")
	// ErrObserve: Prometheus could not be read (adapt.ErrNoTraffic also matches when it saw too little traffic).
	ErrObserve = errors.New("reading the traffic")
	// ErrApply: mode Apply's spec change was refused (a conflict: the DGDR changed since it was read).
	ErrApply = errors.New("applying the observed workload")
)

// Options tune one evaluation.
type Options struct {
	// PrometheusURL and Window override spec.adaptation's (the CLI's flags).
	PrometheusURL, Window string
	// Threshold is the relative change that counts as drift [adapt.DefaultThreshold].
	Threshold float64
	// Record writes the condition and acts on mode Apply.
	Record bool
	// Now is the clock [time.Now].
	Now func() time.Time
}

// Outcome is what one evaluation found and did.
type Outcome struct {
	Report adapt.Report
	// Applied says spec.workload was set to the observed workload (a new profiling run).
	Applied bool
}

// Run evaluates the drift of d (as read by the caller) once.
func Run(ctx context.Context, c client.Client, d *v1alpha1.DynamoGraphDeploymentRequest, o Options) (Outcome, error) {
	a := v1alpha1.Adaptation{}
	if d.Spec.Adaptation != nil {
		a = *d.Spec.Adaptation
	}
	a.PrometheusURL = cmp.Or(o.PrometheusURL, a.PrometheusURL)
	a.Window = cmp.Or(o.Window, a.Window)
	a.Default()
	if o.Now == nil {
		o.Now = time.Now
	}
	if a.PrometheusURL == "" {
		return Outcome{}, fmt.Errorf("%w: DGDR %s has no spec.adaptation.prometheusURL", ErrNoPrometheus, d.Name)
	}
	window, err := v1alpha1.ParseWindow(a.Window)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: spec.adaptation.window: %w", ErrBadWindow, err)
	}
	pr := d.Status.ProfilingResults
	if pr == nil || pr.SelectedConfig == nil {
		return Outcome{}, fmt.Errorf("%w: DGDR %s has no selected configuration yet (phase %s)", ErrNotProfiled, d.Name, d.Status.Phase)
	}
	req, err := searchRequest(ctx, c, d)
	if err != nil {
		return Outcome{}, err
	}
	obs, err := adapt.Observe(ctx, &adapt.Prometheus{BaseURL: a.PrometheusURL}, d.Spec.Model, window, o.Now(), adapt.DefaultMinRequests)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: %w", ErrObserve, err)
	}
	live := expand.ConfigFromPoint(pr.SelectedConfig.ParetoPoint)
	r, err := adapt.Evaluate(ctx, &d.Spec, req, live, obs, adapt.Options{Threshold: cmp.Or(o.Threshold, adapt.DefaultThreshold), MinImprovement: *a.MinImprovement})
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Report: r}
	if !o.Record {
		return out, nil
	}
	if err := record(ctx, c, d, r); err != nil {
		return out, err
	}
	if a.Mode == v1alpha1.AdaptApply && r.ImprovementAvailable && r.Workload != nil {
		if err := apply(ctx, c, d, r); err != nil {
			return out, err
		}
		out.Applied = true
	}
	return out, nil
}

// searchRequest is the DGDR's search as the profiler ran it: the hardware from its stored report.
func searchRequest(ctx context.Context, c client.Client, d *v1alpha1.DynamoGraphDeploymentRequest) (profile.SearchRequest, error) {
	rep, err := lifecycle.GetResults(ctx, c, d)
	if err != nil || rep == nil || rep.GPU == "" {
		return profile.SearchRequest{}, fmt.Errorf("%w: reading the search of DGDR %s from its %s ConfigMap: %v", ErrNoSearch, d.Name, lifecycle.ResultsConfigMapName(d.Name), err)
	}
	m, err := profile.LookupModel(d.Spec.Model)
	if err != nil {
		return profile.SearchRequest{}, fmt.Errorf("%w: %w", ErrNoSearch, err)
	}
	g, err := hw.Lookup(rep.GPU)
	if err != nil {
		return profile.SearchRequest{}, err
	}
	return thorough.SearchRequest(d, m, g, rep.GPUsPerNode, rep.TotalGPUs), nil
}

// record writes ImprovementAvailable: True with the gain and the change, False saying why not.
func record(ctx context.Context, c client.Client, d *v1alpha1.DynamoGraphDeploymentRequest, r adapt.Report) error {
	cond := metav1.Condition{Type: v1alpha1.ConditionImprovementAvailable, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonSmallGain, Message: r.Summary}
	switch {
	case r.ImprovementAvailable:
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonReplanGains
		cond.Message = fmt.Sprintf("%s (live %s)", r.Summary, profile.Describe(*r.Baseline))
	case !r.Drifted:
		cond.Reason = v1alpha1.ReasonNoDrift
	}
	if _, err := lifecycle.RecordCondition(ctx, c, lifecycle.RefOf(d), cond, nil); err != nil {
		return fmt.Errorf("recording %s on DGDR %s: %w", cond.Type, d.Name, err)
	}
	return nil
}

// apply sets spec.workload to the observed workload (optimistic lock: a DGDR changed since it was read
// is not overwritten); the webhook admits the change as a new run.
func apply(ctx context.Context, c client.Client, d *v1alpha1.DynamoGraphDeploymentRequest, r adapt.Report) error {
	patch := client.MergeFromWithOptions(d.DeepCopy(), client.MergeFromWithOptimisticLock{})
	w := r.Workload.DeepCopy()
	if old := d.Spec.Workload; old != nil {
		// What the drift does not measure stays as specified.
		w.SLAPercentile = cmp.Or(w.SLAPercentile, old.SLAPercentile)
		w.RequestRate = cmp.Or(w.RequestRate, old.RequestRate)
	}
	d.Spec.Workload = w
	if err := c.Patch(ctx, d, patch, client.FieldOwner(v1alpha1.FieldManager)); err != nil {
		return fmt.Errorf("%w: setting spec.workload of DGDR %s to the observed workload: %w", ErrApply, d.Name, err)
	}
	return nil
}
