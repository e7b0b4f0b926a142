package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/dgdr-dev/dgdr/internal/calibstore"
	"github.com/dgdr-dev/dgdr/internal/numfmt"
	"github.com/dgdr-dev/dgdr/internal/ui"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// Defaults of `plan`: the design's workload and SLA, and one 8-GPU H200 node.
const (
	defaultPlanGPU       = "h200_sxm"
	defaultPlanTotalGPUs = 8
)

// Size of the terminal plot: 80 columns, 16 rows of plotting area.
const planPlotWidth, planPlotHeight = 80, 16

// PlanOptions runs the rapid search offline.
type PlanOptions struct {
	genericiooptions.IOStreams

	Model       string
	ModelConfig string
	Backend     string
	GPU         string
	TotalGPUs   int
	GPUsPerNode int
	MultiNode   bool
	ISL, OSL    int
	TTFT, ITL   float64
	// SLAConfidence is the probability with which the pick must meet both targets (spec.sla.confidence).
	SLAConfidence float64
	Output        string
	// UI serves the results as a web page (internal/ui) instead of printing them.
	UI    bool
	Serve ServeFlags
	// ClusterCalibration predicts with the namespace's refit (kubectl dgdr calibrate) instead of the
	// shipped calibration.
	ClusterCalibration bool

	req    profile.SearchRequest
	getter genericclioptions.RESTClientGetter
}

// NewCmdPlan is `kubectl dgdr plan`.
func NewCmdPlan(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &PlanOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "plan --model MODEL",
		Short: "Search configurations offline and recommend one (no cluster needed)",
		Long: `Run the rapid search on this machine: enumerate backends, aggregated and disaggregated
serving, parallelism, batch sizes and worker counts within the GPU budget, predict each with the
performance model, and print the Pareto front of tokens/s/GPU against tokens/s/user, a plot of it
and the recommended configuration: the highest tokens/s/GPU meeting both the TTFT and the ITL target.
When nothing meets them, the closest configuration is shown with what it misses and why the others
were rejected. Defaults: the design's workload and SLA (ISL 512, OSL 128, TTFT 100 ms, ITL 15 ms),
one node of 8 H200 SXM GPUs.`,
		Example: `  # Plan Qwen3-32B on one 8-GPU H200 node with the default SLA
  kubectl dgdr plan --model Qwen/Qwen3-32B

  # Only vLLM, 32 H100s, a long-prompt workload and a looser SLA, as JSON
  kubectl dgdr plan --model Qwen/Qwen3-32B --backend vllm --gpu h100_sxm --total-gpus 32 \
      --isl 4000 --osl 500 --ttft 600 --itl 20 -o json

  # A model outside the catalog: pass its Hugging Face config.json (or the folder holding it)
  kubectl dgdr plan --model my-org/my-model --model-config ./my-model/config.json`,
		Args: withUsageHint(cobra.NoArgs),
		RunE: runCommand(getter, o),
	}
	f := cmd.Flags()
	f.StringVar(&o.Model, "model", "", "Hugging Face id of the model (looked up in the embedded catalog)")
	f.StringVar(&o.ModelConfig, "model-config", "", "a config.json, or a folder holding one, for models not in the catalog")
	f.StringVar(&o.Backend, "backend", string(v1alpha1.BackendAny), "serving backend: any, sglang, trtllm or vllm")
	f.StringVar(&o.GPU, "gpu", defaultPlanGPU, "GPU type, a catalog name: "+strings.Join(hw.Names(), ", "))
	f.IntVar(&o.TotalGPUs, "total-gpus", defaultPlanTotalGPUs, "GPUs the deployment may use, all replicas together")
	f.IntVar(&o.GPUsPerNode, "gpus-per-node", 0, "GPUs in one node (0: the GPU type's usual node)")
	f.BoolVar(&o.MultiNode, "multinode", false, "also try workers spanning whole nodes when single-node workers fit")
	f.IntVar(&o.ISL, "isl", int(v1alpha1.DefaultISL), "input sequence length, tokens")
	f.IntVar(&o.OSL, "osl", int(v1alpha1.DefaultOSL), "output sequence length, tokens")
	f.Float64Var(&o.TTFT, "ttft", v1alpha1.DefaultTTFT, "time-to-first-token target, ms")
	f.Float64Var(&o.ITL, "itl", v1alpha1.DefaultITL, "inter-token latency target, ms")
	f.Float64Var(&o.SLAConfidence, "sla-confidence", profile.DefaultConfidence,
		"probability with which a configuration must meet both targets, in (0,1): 0.5 takes the predictions as they are, 0.9 requires their p90")
	f.StringVarP(&o.Output, "output", "o", "table", "output format: table, json or yaml")
	f.BoolVar(&o.UI, "ui", false, "explore the results in the browser: serve the web UI (see `kubectl dgdr ui`) until interrupted")
	f.BoolVar(&o.ClusterCalibration, "cluster-calibration", false,
		"predict with the namespace's refit (kubectl dgdr calibrate, ConfigMap dgdr-calibration; -n picks the namespace) instead of the shipped calibration")
	o.Serve.AddFlags(f)
	return cmd
}

// Complete resolves the model and the GPU into a search request. plan asks no cluster, unless
// --cluster-calibration reads the namespace's refit (in Run).
func (o *PlanOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, _ []string) error {
	o.getter = getter
	var err error
	var m profile.Model
	switch {
	case o.ModelConfig != "":
		if m, err = loadModelConfig(o.ModelConfig); err != nil {
			return err
		}
		if o.Model != "" {
			m.ID = o.Model
		}
	case o.Model == "":
		return WithHint(errors.New("no model: --model is required"), "pass --model ORG/NAME, e.g. --model Qwen/Qwen3-32B")
	default:
		if m, err = profile.LookupModel(o.Model); err != nil {
			return WithHint(err, "pass --model-config PATH to the model's Hugging Face config.json")
		}
	}
	g, err := hw.Lookup(o.GPU)
	if err != nil {
		return WithHint(err, "--gpu takes a catalog name, as spec.hardware.gpuType does")
	}
	var backends []string
	switch b := strings.ToLower(strings.TrimSpace(o.Backend)); b {
	case string(v1alpha1.BackendAny), string(v1alpha1.BackendAuto):
	default:
		backends = []string{b}
	}
	o.req = profile.SearchRequest{
		Model: m, GPU: g, Backends: backends,
		Workload:  profile.Workload{ISL: o.ISL, OSL: o.OSL},
		SLA:       profile.SLA{TTFTMs: o.TTFT, ITLMs: o.ITL, Confidence: o.SLAConfidence},
		TotalGPUs: o.TotalGPUs, GPUsPerNode: o.GPUsPerNode, MultiNode: o.MultiNode,
	}
	return nil
}

// loadModelConfig reads a config.json, or the folder holding one.
func loadModelConfig(path string) (profile.Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return profile.Model{}, WithHint(fmt.Errorf("read --model-config: %w", err), "pass a config.json or the folder that holds it")
	}
	var m profile.Model
	if st.IsDir() {
		m, err = profile.LoadConfigDir(path)
	} else {
		m, err = profile.LoadConfigFile(path)
	}
	if err != nil {
		return profile.Model{}, WithHint(err, "pass a Hugging Face config.json of a supported architecture")
	}
	return m, nil
}

// Validate checks the flags.
func (o *PlanOptions) Validate() error {
	if err := o.Serve.Validate(); err != nil {
		return err
	}
	switch o.Output {
	case "table", "json", "yaml":
	default:
		return WithHint(fmt.Errorf("unsupported output format %q", o.Output), "use -o table, -o json or -o yaml")
	}
	if b := o.req.Backends; len(b) == 1 && !slices.Contains(profile.Backends, b[0]) {
		return WithHint(fmt.Errorf("unknown backend %q", o.Backend), "use --backend any, sglang, trtllm or vllm")
	}
	switch {
	case o.TotalGPUs < 1:
		return WithHint(fmt.Errorf("--total-gpus must be at least 1, got %d", o.TotalGPUs), "pass the GPUs the deployment may use")
	case o.GPUsPerNode < 0:
		return WithHint(fmt.Errorf("--gpus-per-node must not be negative, got %d", o.GPUsPerNode), "pass the GPUs of one node, or 0 for the GPU type's usual node")
	case o.ISL < 1 || o.OSL < 1:
		return WithHint(fmt.Errorf("--isl and --osl must be at least 1 token, got %d and %d", o.ISL, o.OSL), "pass the typical prompt and answer lengths")
	case !(o.TTFT > 0) || !(o.ITL > 0):
		return WithHint(fmt.Errorf("--ttft and --itl must be positive milliseconds, got %v and %v", o.TTFT, o.ITL), "pass the latency targets in ms")
	case !(o.SLAConfidence > 0 && o.SLAConfidence < 1):
		return WithHint(fmt.Errorf("--sla-confidence must be strictly between 0 and 1, got %v", o.SLAConfidence), "pass a probability such as 0.5 (the predictions as they are) or 0.9")
	}
	return nil
}

// Run searches and prints.
func (o *PlanOptions) Run(ctx context.Context) error {
	if o.ClusterCalibration {
		cal, err := clusterCalibration(ctx, o.getter, o.IOStreams)
		if err != nil {
			return err
		}
		o.req.Calibration = cal
	}
	start := time.Now()
	res, err := profile.Search(ctx, o.req)
	if err != nil {
		return WithHint(fmt.Errorf("search: %w", err), "try another --backend or --gpu")
	}
	if res.Selected < 0 {
		return WithHint(errors.New(res.Explanation), "raise --total-gpus (workers then span whole nodes) or pick a GPU with more memory")
	}
	fmt.Fprintf(o.ErrOut, "predicted %d configurations (%d probes) in %s\n",
		res.Predicted, res.Probes, time.Since(start).Round(time.Millisecond))
	if res.Method == profile.MethodRoofline {
		fmt.Fprintf(o.ErrOut, "warning: no measured kernel tables for %s: predictions scale another GPU's measurements by datasheet figures\n", o.req.GPU.Name)
	}
	if o.UI {
		return o.Serve.Serve(ctx, o.IOStreams, ui.Options{Plan: ui.PlanView(o.req, res)})
	}
	out := profile.NewReport(&o.req, &res, false)
	if o.Output == "json" || o.Output == "yaml" {
		return printObject(o.Out, o.Output, out)
	}
	return RenderPlan(o.Out, out)
}

// RenderPlan writes the plan for a terminal: a heading, the front as a table with the selected row
// marked, the plot, and the recommendation (or the closest miss and the rejections).
func RenderPlan(w io.Writer, out profile.Report) error {
	conf := ""
	if c := out.SLA.Confidence; c != 0 && c != profile.DefaultConfidence {
		conf = fmt.Sprintf(" at %s%% confidence", planNum(100*c))
	}
	fmt.Fprintf(w, "%s on %d x %s (%d per node), ISL %d, OSL %d; SLA: TTFT <= %s ms, ITL <= %s ms%s\n\n",
		out.Model, out.TotalGPUs, out.GPU, out.GPUsPerNode, out.Workload.ISL, out.Workload.OSL,
		planNum(out.SLA.TTFTMs), planNum(out.SLA.ITLMs), conf)
	if out.Calibration != "" {
		fmt.Fprintf(w, "Calibration: %s\n\n", out.Calibration)
	}
	fmt.Fprintf(w, "Pareto front (%d of %d configurations predicted):\n", len(out.Pareto), out.Predicted)
	if err := RenderParetoTable(w, out.Pareto, out.SelectedIndex); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := RenderPlot(w, PlotPoints(out.Pareto), out.SelectedIndex, planPlotWidth, planPlotHeight); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if p := out.SLAProbability; p != nil {
		fmt.Fprintf(w, "Probability of meeting the SLA (from the p10–p90 intervals): TTFT <= %s ms %.0f%%, ITL <= %s ms %.0f%%\n",
			planNum(out.SLA.TTFTMs), 100*p.TTFT, planNum(out.SLA.ITLMs), 100*p.ITL)
	}
	if out.Selected != nil {
		fmt.Fprintf(w, "Recommended: %s\n", planSummary(*out.Selected))
		_, err := fmt.Fprintln(w, out.Explanation)
		return err
	}
	if out.Closest != nil {
		fmt.Fprintf(w, "No configuration meets the SLA. Closest: %s\n", planSummary(*out.Closest))
		for _, m := range out.Misses {
			fmt.Fprintf(w, "  misses %s: %s ms > %s ms (+%s ms)\n", m.Target, planNum(m.Value), planNum(m.Limit), planNum(m.Over))
		}
		for _, r := range profile.RejectReasons {
			rj, ok := out.Rejected[r]
			if !ok {
				continue
			}
			ex := ""
			if len(rj.Examples) > 0 {
				ex = fmt.Sprintf(" (e.g. %s %s: %s)", rj.Examples[0].Config.Backend, rj.Examples[0].Config.Layout(), rj.Examples[0].Detail)
			}
			fmt.Fprintf(w, "  rejected for %s: %d%s\n", r, rj.Count, ex)
		}
		return nil
	}
	_, err := fmt.Fprintln(w, out.Explanation)
	return err
}

// planSummary is one configuration with its figures on one line.
func planSummary(c profile.Config) string {
	return fmt.Sprintf("%s %s %s on %d GPUs: TTFT %s ms, ITL %s ms, %.1f tokens/s/GPU, %.1f tokens/s/user",
		c.Backend, c.Mode, c.Layout(), c.GPUs, withBand(c.TTFTMs, c.TTFTP10Ms, c.TTFTP90Ms, 1),
		withBand(c.ITLMs, c.ITLP10Ms, c.ITLP90Ms, 2), c.TokensPerSecondPerGPU, c.TokensPerSecondPerUser)
}

// withBand is a prediction with its p10–p90 interval, "120.0 (95.2–160.4)", or the prediction alone
// when it has none.
func withBand(v, p10, p90 float64, prec int) string {
	if p10 <= 0 || p90 <= 0 {
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, v, prec, p10, prec, p90)
}

func planNum(v float64) string { return numfmt.Fixed(v, 2) }

// clusterCalibration is the shipped calibration amended by the namespace's stored refit.
func clusterCalibration(ctx context.Context, getter genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams) (*profile.Calib, error) {
	c, err := newCluster(getter, streams)
	if err != nil {
		return nil, err
	}
	s, err := calibstore.Load(ctx, c.client, c.namespace)
	if err != nil {
		return nil, apiError(err, "fix or delete the ConfigMap "+calibstore.Name)
	}
	if s.Fit == nil {
		return nil, WithHint(fmt.Errorf("namespace %s has no refit in configmap %s", c.namespace, calibstore.Name),
			"record measurements with kubectl dgdr bench --record, then run kubectl dgdr calibrate")
	}
	base, err := profile.EmbeddedCalibration()
	if err != nil {
		return nil, err
	}
	cal := s.Fit.Calibration(base)
	return &cal, nil
}
