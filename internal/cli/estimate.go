package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// EstimateOptions are the inputs of `kubectl dgdr estimate`.
type EstimateOptions struct {
	genericiooptions.IOStreams

	FromCSV     string
	ModelConfig string

	resolve profile.ModelResolver
}

// NewCmdEstimate predicts TTFT and ITL for every row of a benchmark table, offline.
func NewCmdEstimate(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &EstimateOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "estimate --from-csv FILE|-",
		Short: "Predict TTFT and ITL for the configurations of a benchmark table",
		Long: `Predict the mean TTFT and ITL (TPOT) of every row of a CSV in the column layout of the
calibration table (system, backend, model_path, precision, gemm_quant_mode, moe_quant_mode, mode,
isl, osl, batch_size, tp_size, pp_size, attention_dp_size, moe_ep_size, prefill_*/decode_*,
concurrency). The rows are written back unchanged, with predicted_ttft_ms, predicted_tpot_ms,
ttft_p10_ms, ttft_p90_ms, itl_p10_ms, itl_p90_ms and error appended; error is empty when the row was
predicted and says why when not (unknown model or GPU, does not fit in GPU memory). The p10 and p90
columns bound where 80% of measured values fell for predictions in the same situation (backend,
agg or disagg, kernel tables or roofline, whether the model's architecture has calibration rows;
see docs/accuracy.md). Measured columns may be absent; extra columns are kept.

The concurrency is the concurrency column when present, else batch_size × attention_dp_size (agg)
or the decode batch × decode workers (disagg). Disaggregated rows without worker counts get as many
decode workers as hold the concurrency in their KV cache and rate-matched prefill workers.`,
		Example: `  # Predict the calibration table
  kubectl dgdr estimate --from-csv testdata/calibration/serving_measurements_train.csv

  # A model that is not in the catalog, from its Hugging Face config.json
  kubectl dgdr estimate --from-csv rows.csv --model-config ./my-model/`,
		Args: withUsageHint(cobra.NoArgs),
		RunE: runCommand(getter, o),
	}
	cmd.Flags().StringVar(&o.FromCSV, "from-csv", "", "the CSV to predict, or - for standard input")
	cmd.Flags().StringVar(&o.ModelConfig, "model-config", "", "a config.json, or a folder holding one, for models not in the catalog")
	return cmd
}

// Complete builds the model resolver: the catalog, then the --model-config model. No cluster is asked.
func (o *EstimateOptions) Complete(genericclioptions.RESTClientGetter, *cobra.Command, []string) error {
	o.resolve = profile.LookupModel
	if o.ModelConfig == "" {
		return nil
	}
	extra, err := loadModelConfig(o.ModelConfig)
	if err != nil {
		return err
	}
	o.resolve = func(id string) (profile.Model, error) {
		m, err := profile.LookupModel(id)
		if err == nil {
			return m, nil
		}
		// The given config stands for every model the catalog does not know.
		extra.ID = id
		return extra, nil
	}
	return nil
}

// Validate checks the flags.
func (o *EstimateOptions) Validate() error {
	if o.FromCSV == "" {
		return WithHint(errors.New("no input: --from-csv is required"), "pass --from-csv FILE, or --from-csv - to read standard input")
	}
	return nil
}

// Run predicts the rows and writes the CSV to standard output, a summary to standard error.
func (o *EstimateOptions) Run(context.Context) error {
	var in io.Reader = o.In
	if o.FromCSV != "-" {
		f, err := os.Open(o.FromCSV)
		if err != nil {
			return WithHint(fmt.Errorf("open --from-csv: %w", err), "check the path, or pass - to read standard input")
		}
		defer f.Close()
		in = f
	}
	sum, err := profile.EstimateCSV(in, o.Out, o.resolve)
	if err != nil {
		return WithHint(err, "expected a CSV with a header row in the calibration table's layout")
	}
	if sum.Predicted < sum.Rows {
		fmt.Fprintf(o.ErrOut, "estimated %d of %d rows; the error column says why the others were not\n", sum.Predicted, sum.Rows)
	}
	return nil
}
