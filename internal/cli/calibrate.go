package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/dgdr-dev/dgdr/internal/calibstore"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// CalibrateOptions shows the namespace's calibration store and refits on it.
type CalibrateOptions struct {
	clusterOptions
	Output string
	// DryRun shows the refit without storing it (nor the rows of Add).
	DryRun bool
	// Add is a CSV file in the calibration layout ("-": standard input) whose rows join the store first.
	Add string
}

// Calibration is what calibrate prints as JSON or YAML.
type Calibration struct {
	Namespace string `json:"namespace"`
	ConfigMap string `json:"configMap"`
	// Rows are the stored measurements; Unusable those the model cannot predict, with why.
	Rows     []CalibrationRow `json:"rows"`
	Unusable int              `json:"unusable"`
	// Fit is the refit (stored unless --dry-run).
	Fit    *calibstore.Fit `json:"fit"`
	Stored bool            `json:"stored"`
}

// CalibrationRow is one stored measurement and the predictions before and after the refit.
type CalibrationRow struct {
	Model       string  `json:"model"`
	GPU         string  `json:"gpu"`
	Backend     string  `json:"backend"`
	Mode        string  `json:"mode"`
	Layout      string  `json:"layout,omitempty"`
	ISL         int     `json:"isl"`
	OSL         int     `json:"osl"`
	Concurrency int     `json:"concurrency"`
	TTFTMs      float64 `json:"ttftMs"`
	ITLMs       float64 `json:"itlMs"`
	Source      string  `json:"source,omitempty"`
	// BeforeTTFTMs … are the predictions with the shipped calibration and with the refit.
	BeforeTTFTMs float64 `json:"beforeTtftMs,omitempty"`
	BeforeITLMs  float64 `json:"beforeItlMs,omitempty"`
	AfterTTFTMs  float64 `json:"afterTtftMs,omitempty"`
	AfterITLMs   float64 `json:"afterItlMs,omitempty"`
	Error        string  `json:"error,omitempty"`
}

// NewCmdCalibrate is `kubectl dgdr calibrate`.
func NewCmdCalibrate(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &CalibrateOptions{clusterOptions: clusterOptions{IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "calibrate",
		Short: "Refit the performance model on the namespace's own measurements",
		Long: `Show the namespace's calibration store (the ConfigMap dgdr-calibration: rows that
kubectl dgdr bench --record and thorough searches added), refit the performance model on it and store
the refit, which rapid searches in the namespace then use (the profiling Job, and plan
--cluster-calibration). The refit corrects the shipped calibration by TTFT and ITL factors per model
architecture, weight precision, GPU, backend and mode measured, each shrunk toward the shipped fit (one
stored row moves a factor half-way to what it measured), so a few rows cannot wreck it; it applies only
where it was measured, and predictions it corrects take the intervals measured after such
corrections. The table shows each row's measured TTFT and ITL against the predictions before and after,
and the median error over the rows.`,
		Example: `  # Show the store and refit on it
  kubectl dgdr calibrate -n team-a

  # Add measurements of your own (CSV in the calibration layout: model_path, system, backend, mode,
  # isl, osl, concurrency, the worker columns, silicon_ttft_ms, silicon_tpot_ms), then refit
  kubectl dgdr calibrate -n team-a --add measured.csv

  # Only show what the refit would be, as JSON
  kubectl dgdr calibrate -n team-a --dry-run -o json`,
		Args: withUsageHint(cobra.NoArgs),
		RunE: runCommand(getter, o),
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "table", "output format: table, json or yaml")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "show the refit without storing it (nor the rows of --add)")
	cmd.Flags().StringVar(&o.Add, "add", "", "add the rows of this CSV file in the calibration layout (- for standard input) to the store before refitting")
	_ = cmd.MarkFlagFilename("add", "csv")
	return cmd
}

// Complete builds the client.
func (o *CalibrateOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, _ []string) error {
	return o.complete(getter)
}

// Validate checks the flags.
func (o *CalibrateOptions) Validate() error {
	switch o.Output {
	case "table", "json", "yaml":
		return nil
	}
	return WithHint(fmt.Errorf("unsupported output format %q", o.Output), "use -o table, json or yaml")
}

// Run reads the store, refits, stores the refit and prints.
func (o *CalibrateOptions) Run(ctx context.Context) error {
	ns := o.cluster.namespace
	added, err := o.readAdd()
	if err != nil {
		return err
	}
	if len(added.recs) > 0 && !o.DryRun {
		if err := calibstore.AppendRecords(ctx, o.cluster.client, ns, added.recs); err != nil {
			return apiError(err, "fix or delete the ConfigMap "+calibstore.Name)
		}
		fmt.Fprintf(o.ErrOut, "added %d rows from %s to %s/%s\n", len(added.recs), o.Add, ns, calibstore.Name)
	}
	s, err := calibstore.Load(ctx, o.cluster.client, ns)
	if err != nil {
		return apiError(err, "fix or delete the ConfigMap "+calibstore.Name)
	}
	if o.DryRun {
		s.Rows = append(s.Rows, added.rows...)
	}
	base, err := profile.EmbeddedCalibration()
	if err != nil {
		return err
	}
	out := Calibration{Namespace: ns, ConfigMap: calibstore.Name}
	fit, err := s.Refit(base, time.Now())
	switch {
	case errors.Is(err, calibstore.ErrEmpty):
		return WithHint(fmt.Errorf("%w in namespace %s (%d rows, none predictable)", err, ns, len(s.Rows)),
			"add measurements with kubectl dgdr bench --record DGDR, or run a thorough search")
	case err != nil:
		return err
	}
	out.Fit = fit
	after := fit.Calibration(base)
	for i := range s.Rows {
		r := &s.Rows[i]
		row := CalibrationRow{Model: r.Fields["model_path"], GPU: r.Fields["system"], Backend: r.Fields["backend"], Mode: r.Fields["mode"],
			Concurrency: r.Concurrency, TTFTMs: r.MeasuredTTFTMs, ITLMs: r.MeasuredITLMs, Source: r.Fields["source"],
			ISL: r.Target.Workload.ISL, OSL: r.Target.Workload.OSL}
		if err := predictRow(r, base, after, &row); err != nil {
			row.Error = err.Error()
			out.Unusable++
		}
		out.Rows = append(out.Rows, row)
	}
	if !o.DryRun {
		if err := calibstore.SaveFit(ctx, o.cluster.client, ns, fit); err != nil {
			return apiError(err, "")
		}
		out.Stored = true
	}
	if o.Output == "json" || o.Output == "yaml" {
		return printObject(o.Out, o.Output, out)
	}
	return renderCalibration(o.Out, out)
}

// addedRows are the rows of --add, as records for the store and parsed.
type addedRows struct {
	recs [][]string
	rows []profile.ServingRow
}

// readAdd reads and checks the --add file (none: no rows).
func (o *CalibrateOptions) readAdd() (addedRows, error) {
	if o.Add == "" {
		return addedRows{}, nil
	}
	in := o.In
	if o.Add != "-" {
		f, err := os.Open(o.Add)
		if err != nil {
			return addedRows{}, WithHint(fmt.Errorf("--add: %w", err), "give a CSV file in the calibration layout, or - for standard input")
		}
		defer f.Close()
		in = f
	}
	recs, rows, err := calibstore.ReadCSV(in, profile.LookupModel, "calibrate --add "+filepath.Base(o.Add), time.Now())
	if err != nil {
		return addedRows{}, WithHint(fmt.Errorf("--add %s: %w", o.Add, err),
			"fix the file: the calibration layout's columns are model_path, system, backend, mode, isl, osl, concurrency, the worker columns and silicon_ttft_ms, silicon_tpot_ms; nothing was added")
	}
	return addedRows{recs: recs, rows: rows}, nil
}

// predictRow fills the row's predictions under the shipped calibration and the refit.
func predictRow(r *profile.ServingRow, base, after profile.Calib, row *CalibrationRow) error {
	if r.Err != nil {
		return r.Err
	}
	row.Layout = r.Config.Layout()
	p, err := profile.NewPredictor(r.Target)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		cal       profile.Calib
		ttft, itl *float64
	}{{base, &row.BeforeTTFTMs, &row.BeforeITLMs}, {after, &row.AfterTTFTMs, &row.AfterITLMs}} {
		q, err := p.WithCalibration(c.cal)
		if err != nil {
			return err
		}
		pred, err := q.PredictRow(r)
		if err != nil {
			return err
		}
		*c.ttft, *c.itl = pred.TTFTMs, pred.ITLMs
	}
	return nil
}

// renderCalibration writes the rows, the corrections and the errors before and after.
func renderCalibration(w io.Writer, c Calibration) error {
	fmt.Fprintf(w, "Calibration store %s/%s: %d rows", c.Namespace, c.ConfigMap, len(c.Rows))
	if c.Unusable > 0 {
		fmt.Fprintf(w, " (%d not predictable)", c.Unusable)
	}
	fmt.Fprintln(w)
	tw := printers.GetNewTabWriter(w)
	fmt.Fprintln(tw, "MODEL\tGPU\tBACKEND\tLAYOUT\tISL\tOSL\tCONC\tTTFT(ms)\tBEFORE\tAFTER\tITL(ms)\tBEFORE\tAFTER\tSOURCE")
	for _, r := range c.Rows {
		layout := r.Layout
		if r.Error != "" {
			layout = "error: " + r.Error
		}
		fmt.Fprintln(tw, strings.Join([]string{r.Model, r.GPU, r.Backend, layout, strconv.Itoa(r.ISL), strconv.Itoa(r.OSL), strconv.Itoa(r.Concurrency),
			planNum(r.TTFTMs), planNum(r.BeforeTTFTMs), planNum(r.AfterTTFTMs), planNum(r.ITLMs), planNum(r.BeforeITLMs), planNum(r.AfterITLMs), r.Source}, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	f := c.Fit
	fmt.Fprintln(w, "\nCorrections (factors on the shipped calibration's predictions):")
	tw = printers.GetNewTabWriter(w)
	fmt.Fprintln(tw, "ARCH\tDTYPE\tGPU\tBACKEND\tMODE\tROWS\tTTFT\tITL")
	for _, k := range f.Corrections {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%.3f\t%.3f\n", k.Arch, cmp.Or(k.Dtype, "any"), k.GPU, k.Backend, k.Mode, k.Rows, k.TTFT, k.ITL)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nMedian error on the %d stored rows: TTFT %.1f%% -> %.1f%%, ITL %.1f%% -> %.1f%% (shipped -> refit)\n",
		f.Rows, 100*f.Before.TTFT, 100*f.After.TTFT, 100*f.Before.ITL, 100*f.After.ITL)
	if c.Stored {
		_, err := fmt.Fprintf(w, "Stored the refit in %s/%s: rapid searches in the namespace use it (%s).\n", c.Namespace, c.ConfigMap, f.Method)
		return err
	}
	_, err := fmt.Fprintln(w, "Not stored (--dry-run).")
	return err
}
