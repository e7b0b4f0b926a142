package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/thorough"
	"github.com/dgdr-dev/dgdr/pkg/adapt"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// DriftOptions compares a deployed DGDR's live traffic with its workload.
type DriftOptions struct {
	clusterOptions

	Name          string
	PrometheusURL string
	Window        string
	Threshold     float64
	Record        bool
	Output        string

	now func() time.Time
}

// NewCmdDrift is `kubectl dgdr drift NAME`.
func NewCmdDrift(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &DriftOptions{clusterOptions: clusterOptions{IOStreams: streams}, now: time.Now}
	cmd := &cobra.Command{
		Use:   "drift NAME [--prometheus-url URL]",
		Short: "Compare a DGDR's live traffic with its workload and show what a re-plan would change",
		Long: `Read the model's traffic over the adaptation window from Prometheus (the Dynamo frontend's
input and output length histograms, request counter, TTFT and ITL), compare the lengths' median and
p90 and the request rate with spec.workload, and when they drift beyond --threshold re-plan with the
observed workload: the new pick, the live configuration predicted under the same traffic, and the gain.
--record acts on spec.adaptation: it writes the ImprovementAvailable condition to the DGDR's status and,
with mode Apply and an improvement available, sets spec.workload to the observed workload, which starts a
new profiling run.`,
		Example: `  # With spec.adaptation.prometheusURL set
  kubectl dgdr drift qwen

  # Any Prometheus that scrapes the frontend, over the last 30 minutes
  kubectl dgdr drift qwen --prometheus-url http://localhost:9090 --window 30m -o yaml`,
		Args:              exactName,
		ValidArgsFunction: completeDGDRNames(getter, 1),
		RunE:              runCommand(getter, o),
	}
	cmd.Flags().StringVar(&o.PrometheusURL, "prometheus-url", "", "Prometheus base URL (default: spec.adaptation.prometheusURL)")
	cmd.Flags().StringVar(&o.Window, "window", "", "How far back to read, a Prometheus duration (default: spec.adaptation.window, else 1h)")
	cmd.Flags().Float64Var(&o.Threshold, "threshold", adapt.DefaultThreshold, "Relative change of a workload figure that counts as drift")
	cmd.Flags().BoolVar(&o.Record, "record", false, "Write the ImprovementAvailable condition and, with spec.adaptation.mode Apply, re-profile with the observed workload")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "Output format: json or yaml (default: a report)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete takes the name and builds the client.
func (o *DriftOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, args []string) error {
	o.Name = args[0]
	return o.complete(getter)
}

// Validate checks the flags.
func (o *DriftOptions) Validate() error {
	switch o.Output {
	case "", "json", "yaml":
	default:
		return WithHint(fmt.Errorf("unsupported output format %q", o.Output), "use -o json or -o yaml, or leave -o out for the report")
	}
	if !(o.Threshold > 0) {
		return WithHint(fmt.Errorf("--threshold %v: expected a fraction above 0", o.Threshold), "use e.g. --threshold 0.25 for 25%%")
	}
	if o.Window != "" {
		if _, err := v1alpha1.ParseWindow(o.Window); err != nil {
			return WithHint(fmt.Errorf("--window: %w", err), "use e.g. --window 30m")
		}
	}
	return nil
}

// Run reads the traffic, evaluates it and prints the report.
func (o *DriftOptions) Run(ctx context.Context) error {
	d, err := o.cluster.getDGDR(ctx, o.Name)
	if err != nil {
		return err
	}
	a := v1alpha1.Adaptation{}
	if d.Spec.Adaptation != nil {
		a = *d.Spec.Adaptation
	}
	a.PrometheusURL = cmp.Or(o.PrometheusURL, a.PrometheusURL)
	a.Window = cmp.Or(o.Window, a.Window)
	a.Default()
	if a.PrometheusURL == "" {
		return WithHint(fmt.Errorf("DGDR %s has no spec.adaptation.prometheusURL", d.Name), "pass --prometheus-url http://PROMETHEUS:9090")
	}
	window, err := v1alpha1.ParseWindow(a.Window)
	if err != nil {
		return WithHint(fmt.Errorf("spec.adaptation.window: %w", err), "pass --window 1h")
	}
	pr := d.Status.ProfilingResults
	if pr == nil || pr.SelectedConfig == nil {
		return WithHint(fmt.Errorf("DGDR %s has no selected configuration yet (phase %s)", d.Name, d.Status.Phase),
			"wait for profiling: `kubectl dgdr status %s%s`", d.Name, nsFlag(d.Namespace))
	}
	req, err := o.searchRequest(ctx, d)
	if err != nil {
		return err
	}
	prom := &adapt.Prometheus{BaseURL: a.PrometheusURL}
	obs, err := adapt.Observe(ctx, prom, d.Spec.Model, window, o.now(), adapt.DefaultMinRequests)
	if err != nil {
		return WithHint(err, "check --prometheus-url and that Prometheus scrapes the DGD's frontend")
	}
	live := expand.ConfigFromPoint(pr.SelectedConfig.ParetoPoint)
	r, err := adapt.Evaluate(ctx, &d.Spec, req, live, obs, adapt.Options{Threshold: o.Threshold, MinImprovement: *a.MinImprovement})
	if err != nil {
		return err
	}
	if o.Record {
		if err := o.record(ctx, d, r); err != nil {
			return err
		}
		if a.Mode == v1alpha1.AdaptApply && r.ImprovementAvailable && r.Workload != nil {
			if err := o.apply(ctx, d, r); err != nil {
				return err
			}
			fmt.Fprintf(o.ErrOut, "spec.adaptation.mode is Apply: spec.workload is now the observed workload; a new profiling run starts (`kubectl dgdr history %s%s`)\n",
				d.Name, nsFlag(d.Namespace))
		}
	}
	switch o.Output {
	case "json":
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "yaml":
		b, err := yaml.Marshal(r)
		if err != nil {
			return err
		}
		_, err = o.Out.Write(b)
		return err
	}
	return writeDrift(o.Out, d, r)
}

// searchRequest is the DGDR's search as the profiler ran it: the hardware from its stored report.
func (o *DriftOptions) searchRequest(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) (profile.SearchRequest, error) {
	rep, err := lifecycle.GetResults(ctx, o.cluster.client, d)
	if err != nil || rep == nil || rep.GPU == "" {
		return profile.SearchRequest{}, WithHint(fmt.Errorf("reading the search of DGDR %s from its %s ConfigMap: %v", d.Name, lifecycle.ResultsConfigMapName(d.Name), err),
			"the re-plan needs the GPU type and budget profiling used")
	}
	m, err := profile.LookupModel(d.Spec.Model)
	if err != nil {
		return profile.SearchRequest{}, WithHint(err, "drift re-plans models of the embedded catalog (`kubectl dgdr plan --help`)")
	}
	g, err := hw.Lookup(rep.GPU)
	if err != nil {
		return profile.SearchRequest{}, err
	}
	return thorough.SearchRequest(d, m, g, rep.GPUsPerNode, rep.TotalGPUs), nil
}

// record writes ImprovementAvailable: True with the gain and the change, False saying why not.
func (o *DriftOptions) record(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest, r adapt.Report) error {
	cond := metav1.Condition{Type: v1alpha1.ConditionImprovementAvailable, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonSmallGain, Message: r.Summary}
	switch {
	case r.ImprovementAvailable:
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonReplanGains
		cond.Message = fmt.Sprintf("%s (live %s)", r.Summary, profile.Describe(*r.Baseline))
	case !r.Drifted:
		cond.Reason = v1alpha1.ReasonNoDrift
	}
	_, err := lifecycle.RecordCondition(ctx, o.cluster.client, lifecycle.RefOf(d), cond, nil)
	if err != nil {
		return apiError(fmt.Errorf("recording %s on DGDR %s: %w", cond.Type, d.Name, err), "")
	}
	return nil
}

// apply sets spec.workload to the observed workload (optimistic lock: a DGDR changed since it was read
// is not overwritten); the webhook admits the change as a new run.
func (o *DriftOptions) apply(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest, r adapt.Report) error {
	patch := client.MergeFromWithOptions(d.DeepCopy(), client.MergeFromWithOptimisticLock{})
	w := r.Workload.DeepCopy()
	if old := d.Spec.Workload; old != nil {
		// What the drift does not measure stays as specified.
		w.SLAPercentile = cmp.Or(w.SLAPercentile, old.SLAPercentile)
		w.RequestRate = cmp.Or(w.RequestRate, old.RequestRate)
	}
	d.Spec.Workload = w
	if err := o.cluster.client.Patch(ctx, d, patch, client.FieldOwner(v1alpha1.FieldManager)); err != nil {
		return apiError(fmt.Errorf("setting spec.workload of DGDR %s to the observed workload: %w", d.Name, err),
			"run `kubectl dgdr drift "+d.Name+nsFlag(d.Namespace)+" --record` again")
	}
	return nil
}

// writeDrift is the report: observed against specified, the SLA, and the re-plan.
func writeDrift(w io.Writer, d *v1alpha1.DynamoGraphDeploymentRequest, r adapt.Report) error {
	fmt.Fprintf(w, "%s: %.0f requests over %s (%.2f/s)\n\n", d.Spec.Model, r.Observed.Requests, r.Observed.Window, r.Observed.RequestRate)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tSPECIFIED\tOBSERVED\tCHANGE\tDRIFT")
	for _, f := range r.Figures {
		mark := ""
		if f.Drifted {
			mark = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%+.0f%%\t%s\n", f.Figure, planNum(f.Specified), planNum(f.Observed), 100*f.Change, mark)
	}
	fmt.Fprintf(tw, "TTFT p90 (ms)\t<= %s\t%s\t\t\n", planNum(r.SLA.TTFTMs), planNum(r.SLA.ObservedP90.TTFTMs))
	fmt.Fprintf(tw, "ITL p90 (ms)\t<= %s\t%s\t\t\n", planNum(r.SLA.ITLMs), planNum(r.SLA.ObservedP90.ITLMs))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if r.Baseline != nil {
		fmt.Fprintf(w, "Live:     %s\n", planSummary(*r.Baseline))
	}
	if r.Proposed != nil {
		fmt.Fprintf(w, "Re-plan:  %s\n", planSummary(*r.Proposed))
	}
	_, err := fmt.Fprintln(w, oneLine(r.Summary))
	return err
}
