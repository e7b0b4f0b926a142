package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// ResultsOptions shows what profiling found.
type ResultsOptions struct {
	clusterOptions

	Name   string
	Output string
	// RunNumber (--run), when set, shows that run's full results (kept for the last v1alpha1.KeptRunResults runs).
	RunNumber int64
}

// RunResults is `kubectl dgdr results --run N -o json|yaml`: the run's record and its stored report.
type RunResults struct {
	Name      string              `json:"name"`
	Namespace string              `json:"namespace"`
	Run       *v1alpha1.RunRecord `json:"run"`
	Search    *profile.Report     `json:"search"`
}

// Results is `kubectl dgdr results -o json|yaml`: the stored front (whose indices --pick takes) and, when
// the <name>-profiling ConfigMap is there, the whole search document.
type Results struct {
	Name             string                     `json:"name"`
	Namespace        string                     `json:"namespace"`
	Phase            v1alpha1.Phase             `json:"phase"`
	ProfilingResults *v1alpha1.ProfilingResults `json:"profilingResults"`
	// Search is the report stored in the <name>-profiling ConfigMap, as `kubectl dgdr plan -o json` prints
	// it plus every costed candidate (absent when the ConfigMap is).
	Search *profile.Report `json:"search,omitempty"`
}

// NewCmdResults is `kubectl dgdr results NAME`.
func NewCmdResults(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &ResultsOptions{clusterOptions: clusterOptions{IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "results NAME",
		Short: "Show a DGDR's Pareto front, the selected configuration and why",
		Long: `Show what profiling found: the Pareto front of configurations (tokens/s/GPU against tokens/s/user)
as a table with the selected row marked "*", a terminal plot, the selected configuration with the reason,
and why the other configurations were rejected. The "#" column is what promote --pick and export --pick take.`,
		Example: `  # Inspect the trade-offs, then deploy row 2
  kubectl dgdr results qwen
  kubectl dgdr promote qwen --pick 2

  # The front for a spreadsheet
  kubectl dgdr results qwen -o csv > qwen.csv

  # The full results of run 3 (one of the last 3; see kubectl dgdr history)
  kubectl dgdr results qwen --run 3`,
		Args:              exactName,
		ValidArgsFunction: completeDGDRNames(getter, 1),
		RunE:              runCommand(getter, o),
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "table", "Output format: table, json, yaml or csv")
	cmd.Flags().Int64Var(&o.RunNumber, "run", 0, "Show the full results of this run (its generation, as kubectl dgdr history lists; the last 3 runs keep theirs)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml", "csv"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete takes the name and builds the client.
func (o *ResultsOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, args []string) error {
	o.Name = args[0]
	return o.complete(getter)
}

// Validate checks the flags.
func (o *ResultsOptions) Validate() error {
	if o.RunNumber < 0 {
		return WithHint(fmt.Errorf("--run %d: expected a run number of 1 or more", o.RunNumber), "list the runs with `kubectl dgdr history %s`", o.Name)
	}
	if o.RunNumber > 0 && o.Output == "csv" {
		return WithHint(fmt.Errorf("-o csv shows the current run's front only, not --run %d", o.RunNumber), "use -o table, json or yaml with --run")
	}
	switch o.Output {
	case "table", "json", "yaml", "csv":
		return nil
	}
	return WithHint(fmt.Errorf("unsupported output format %q", o.Output), "use -o table, json, yaml or csv")
}

// Run prints the results.
func (o *ResultsOptions) Run(ctx context.Context) error {
	d, err := o.cluster.getDGDR(ctx, o.Name)
	if err != nil {
		return err
	}
	if o.RunNumber > 0 {
		return o.runResults(ctx, d)
	}
	if _, err := pickPoint(d, -1); err != nil {
		return err
	}
	search, err := o.cluster.resultsDocument(ctx, d)
	if err != nil {
		// The status alone is enough for the table; say what is missing.
		fmt.Fprintf(o.ErrOut, "Warning: %v; showing the results stored in the DGDR's status\n", err)
	}
	res := Results{Name: d.Name, Namespace: d.Namespace, Phase: d.Status.Phase, ProfilingResults: d.Status.ProfilingResults, Search: search}
	switch o.Output {
	case "json", "yaml":
		return printObject(o.Out, o.Output, res)
	case "csv":
		return writeResultsCSV(o.Out, d.Status.ProfilingResults)
	}
	return writeResults(o.Out, d, search)
}

// runResults prints the full results kept for run o.RunNumber.
func (o *ResultsOptions) runResults(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) error {
	rec := d.Status.Run(o.RunNumber)
	if rec == nil {
		return WithHint(fmt.Errorf("dynamographdeploymentrequest %s has no run %d", d.Name, o.RunNumber), "list the runs with `kubectl dgdr history %s`", d.Name)
	}
	cm, err := lifecycle.GetRunResults(ctx, o.cluster.client, d, o.RunNumber)
	if errors.Is(err, lifecycle.ErrRunResultsGone) {
		return WithHint(err, "only the last %d runs keep their full results; `kubectl dgdr history %s` shows every run's pick", v1alpha1.KeptRunResults, d.Name)
	}
	if err != nil {
		return apiError(err, "")
	}
	report, err := lifecycle.ReadResults(cm)
	if err != nil {
		return err
	}
	switch o.Output {
	case "json", "yaml":
		return printObject(o.Out, o.Output, RunResults{Name: d.Name, Namespace: d.Namespace, Run: rec, Search: report})
	}
	fmt.Fprintf(o.Out, "Run %d (%s), from ConfigMap %s\n", rec.Generation, cmp.Or(string(rec.Outcome), "running"), cm.Name)
	return RenderPlan(o.Out, *report)
}

// resultsDocument reads the search report the profiler stored in the <name>-profiling ConfigMap; nil, nil
// when there is none.
func (c *cluster) resultsDocument(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) (*profile.Report, error) {
	return lifecycle.GetResults(ctx, c.client, d)
}

// resultsPlotSize is the plot's size in characters (the same as plan's).
const (
	resultsPlotWidth  = planPlotWidth
	resultsPlotHeight = planPlotHeight
)

// writeResults renders the table view. The front is the DGDR's stored one, so that its row numbers are
// what --pick takes; the search document adds the hardware, the counts and the rejections.
func writeResults(w io.Writer, d *v1alpha1.DynamoGraphDeploymentRequest, search *profile.Report) error {
	pr := d.Status.ProfilingResults
	s := d.Spec
	configs := make([]profile.Config, len(pr.Pareto))
	for i, p := range pr.Pareto {
		configs[i] = expand.ConfigFromPoint(p)
	}
	sel := pr.SelectedConfig
	selected := int(sel.Index)
	if selected >= len(configs) {
		selected = -1
	}

	head := fmt.Sprintf("%s, ISL %d, OSL %d; SLA: TTFT <= %s ms, ITL <= %s ms", s.Model, s.ISL(), s.OSL(), planNum(s.TTFT()), planNum(s.ITL()))
	if search != nil && search.GPU != "" {
		head = fmt.Sprintf("%s on %d x %s (%d per node), ISL %d, OSL %d; SLA: TTFT <= %s ms, ITL <= %s ms",
			s.Model, search.TotalGPUs, search.GPU, search.GPUsPerNode, s.ISL(), s.OSL(), planNum(s.TTFT()), planNum(s.ITL()))
	}
	fmt.Fprintln(w, head)
	if search != nil && search.Calibration != "" {
		fmt.Fprintf(w, "Calibration: %s\n", search.Calibration)
	}
	fmt.Fprintln(w)
	count := fmt.Sprintf("Pareto front (%d configurations", len(configs))
	if search != nil && search.Predicted > 0 {
		count += fmt.Sprintf(" of %d predicted", search.Predicted)
	}
	if search != nil && len(search.Pareto) > len(configs) {
		count += fmt.Sprintf("; %d stored of %d on the front, all in -o json", len(configs), len(search.Pareto))
	}
	fmt.Fprintln(w, count+"):")
	if err := writeIndexedTable(w, configs, selected); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(configs) > 0 {
		if err := RenderPlot(w, PlotPoints(configs), selected, resultsPlotWidth, resultsPlotHeight); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}

	which := "Selected"
	if selected >= 0 {
		which = fmt.Sprintf("Selected (#%d)", selected)
	}
	if !sel.MeetsSLA {
		which = "No configuration meets the SLA. Closest"
	}
	fmt.Fprintf(w, "%s: %s\n", which, planSummary(expand.ConfigFromPoint(sel.ParetoPoint)))
	if sel.Reason != "" {
		fmt.Fprintln(w, oneLine(sel.Reason))
	}
	if search != nil {
		for _, r := range profile.RejectReasons {
			if rj, ok := search.Rejected[r]; ok && rj.Count > 0 {
				ex := ""
				if len(rj.Examples) > 0 {
					e := rj.Examples[0]
					ex = fmt.Sprintf(" (e.g. %s %s: %s)", e.Config.Backend, e.Config.Layout(), e.Detail)
				}
				fmt.Fprintf(w, "  rejected for %s: %d%s\n", r, rj.Count, ex)
			}
		}
	}
	ns := nsFlag(d.Namespace)
	_, err := fmt.Fprintf(w, "\nNext: `kubectl dgdr promote %s%s` deploys the selected configuration; --pick N deploys row N; `kubectl dgdr export %s%s` prints its DGD\n",
		d.Name, ns, d.Name, ns)
	return err
}

// writeIndexedTable is the plan's Pareto table with a leading "#" column: the row numbers --pick takes.
func writeIndexedTable(w io.Writer, configs []profile.Config, selected int) error {
	var buf bytes.Buffer
	if err := RenderParetoTable(&buf, configs, selected); err != nil {
		return err
	}
	width := max(len("#"), len(strconv.Itoa(len(configs)-1)))
	for i, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		idx := "#"
		if i > 0 {
			idx = strconv.Itoa(i - 1)
		}
		if _, err := fmt.Fprintf(w, "%-*s   %s\n", width, idx, line); err != nil {
			return err
		}
	}
	return nil
}

// writeResultsCSV writes the stored front, one row per configuration, with the row number --pick takes.
func writeResultsCSV(w io.Writer, pr *v1alpha1.ProfilingResults) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"index", "selected", "backend", "mode", "gpus", "replicas", "layout", "ttft_ms", "itl_ms",
		"tokens_per_s", "tokens_per_s_per_gpu", "tokens_per_s_per_user", "meets_sla"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for i, p := range pr.Pareto {
		_ = cw.Write([]string{
			strconv.Itoa(i), strconv.FormatBool(pr.SelectedConfig != nil && int(pr.SelectedConfig.Index) == i), p.Backend, p.Mode,
			strconv.Itoa(int(p.GPUs)), strconv.Itoa(int(p.Replicas)), expand.ConfigFromPoint(p).Layout(),
			f(p.TTFT), f(p.ITL), f(p.Throughput), f(p.TokensPerSecondPerGPU), f(p.TokensPerSecondPerUser), strconv.FormatBool(p.MeetsSLA),
		})
	}
	cw.Flush()
	return cw.Error()
}
