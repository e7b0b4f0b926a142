package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/dgdr-dev/dgdr/internal/adaptrun"
	"github.com/dgdr-dev/dgdr/pkg/adapt"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
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

// Run reads the traffic, evaluates it (adaptrun.Run, which the adaptation CronJob also runs) and prints
// the report.
func (o *DriftOptions) Run(ctx context.Context) error {
	d, err := o.cluster.getDGDR(ctx, o.Name)
	if err != nil {
		return err
	}
	out, err := adaptrun.Run(ctx, o.cluster.client, d, adaptrun.Options{
		PrometheusURL: o.PrometheusURL, Window: o.Window, Threshold: o.Threshold, Record: o.Record, Now: o.now,
	})
	if err != nil {
		return driftError(d, err)
	}
	if out.Applied {
		fmt.Fprintf(o.ErrOut, "spec.adaptation.mode is Apply: spec.workload is now the observed workload; a new profiling run starts (`kubectl dgdr history %s%s`)\n",
			d.Name, nsFlag(d.Namespace))
	}
	r := out.Report
	if o.Output == "json" || o.Output == "yaml" {
		return printObject(o.Out, o.Output, r)
	}
	return writeDrift(o.Out, d, r)
}

// driftError adds the command line's advice to an evaluation that could not be made.
func driftError(d *v1alpha1.DynamoGraphDeploymentRequest, err error) error {
	switch {
	case errors.Is(err, adaptrun.ErrNoPrometheus):
		return WithHint(err, "pass --prometheus-url http://PROMETHEUS:9090")
	case errors.Is(err, adaptrun.ErrBadWindow):
		return WithHint(err, "pass --window 1h")
	case errors.Is(err, adaptrun.ErrNotProfiled):
		return WithHint(err, "wait for profiling: `kubectl dgdr status %s%s`", d.Name, nsFlag(d.Namespace))
	case errors.Is(err, adaptrun.ErrNoSearch):
		return WithHint(err, "the re-plan needs the GPU type and budget profiling used, and a model of the embedded catalog (`kubectl dgdr plan --help`)")
	case errors.Is(err, adaptrun.ErrObserve):
		return WithHint(err, "check --prometheus-url and that Prometheus scrapes the DGD's frontend")
	case errors.Is(err, adaptrun.ErrApply):
		return apiError(err, "run `kubectl dgdr drift "+d.Name+nsFlag(d.Namespace)+" --record` again")
	}
	return apiError(err, "")
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
