package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/dgdr-dev/dgdr/internal/calibstore"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/bench"
	"github.com/dgdr-dev/dgdr/pkg/expand"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// Defaults of `bench`: one user, 100 measured requests per level.
const (
	defaultBenchRequests = 100
	defaultBenchTimeout  = 10 * time.Minute
)

// BenchOptions benchmarks an OpenAI-compatible endpoint.
type BenchOptions struct {
	genericiooptions.IOStreams

	URL            string
	Model          string
	APIKey         string
	Endpoint       string
	ISL, OSL       int
	Concurrency    []int
	Rates          []float64
	Requests       int
	Duration       time.Duration
	Warmup         int
	Seed           uint64
	NoCalibration  bool
	ExtraBody      string
	RequestTimeout time.Duration
	Output         string
	// Record names the DGDR whose deployment is measured: the closed-loop levels are added to the
	// namespace's calibration store.
	Record string

	opts bench.Options
	// cluster is set with --record.
	cluster *cluster
}

// NewCmdBench is `kubectl dgdr bench`.
func NewCmdBench(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &BenchOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "bench --url URL",
		Short: "Measure TTFT, ITL and throughput of an OpenAI-compatible endpoint",
		Long: `Benchmark a serving endpoint that speaks the OpenAI API (Dynamo's frontend, vLLM, SGLang,
TensorRT-LLM serve) at one or more load levels, the way an SLA is stated: time to first token
(TTFT), inter-token latency (ITL) and end-to-end latency (mean, p50, p90, p99), output tokens/s,
tokens/s per user, requests/s and errors.

Every request streams /v1/chat/completions (or /v1/completions) with a prompt of --isl tokens and
exactly --osl output tokens (max_tokens = min_tokens, ignore_eos). Prompts are random common
English words, about one token each; two probe requests first fit the word count to the server's
tokenizer and chat template, and the ISL the server reports is what is shown.

--concurrency runs closed-loop levels (N users, each sending its next request when the previous
one ends); --rate runs open-loop levels (Poisson arrivals, seeded). The first --warmup requests of
each level are left out of its statistics. ITL is each request's (last token − first token) /
(output tokens − 1), summarised over requests; -o wide adds the distribution of single token gaps
and the client's own parsing cost per chunk. Progress goes to stderr; Ctrl-C prints the levels
finished so far.

--record NAME adds each closed-loop level (mean TTFT and ITL, the measured ISL and OSL) as a row
of the calibration store of the namespace, the ConfigMap dgdr-calibration, against the configuration
DGDR NAME selected (model, GPU, backend and workers): deploy that configuration, benchmark its
frontend, then run kubectl dgdr calibrate.`,
		Example: `  # Four concurrency levels against a port-forwarded Dynamo frontend
  kubectl dgdr bench --url http://localhost:8000 --model Qwen/Qwen3-32B --isl 4000 --osl 500 --concurrency 1,4,16,64

  # Open loop: Poisson arrivals at 2 and 8 requests/s for one minute each, as JSON
  kubectl dgdr bench --url http://localhost:8000 --rate 2,8 --duration 1m -o json

  # Raw completions endpoint, model name taken from /v1/models
  kubectl dgdr bench --url http://vllm:8000/v1 --endpoint completions --requests 200

  # Measure the deployment of DGDR qwen and add the levels to the namespace's calibration store
  kubectl dgdr bench --url http://localhost:8000 --isl 4000 --osl 500 --concurrency 1,8,32 --record qwen -n team-a`,
		Args: withUsageHint(cobra.NoArgs),
		RunE: runCommand(getter, o),
	}
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", "", "base URL of the OpenAI-compatible server, e.g. http://localhost:8000")
	f.StringVar(&o.Model, "model", "", "served model name (default: the first model /v1/models lists)")
	f.StringVar(&o.APIKey, "api-key", "", "bearer token to send (default: $OPENAI_API_KEY when set)")
	f.StringVar(&o.Endpoint, "endpoint", string(bench.EndpointChat), "API to call: chat or completions")
	f.IntVar(&o.ISL, "isl", int(v1alpha1.DefaultISL), "input sequence length, tokens")
	f.IntVar(&o.OSL, "osl", int(v1alpha1.DefaultOSL), "output sequence length, tokens")
	f.IntSliceVar(&o.Concurrency, "concurrency", []int{1}, "closed-loop levels: concurrent users, comma-separated")
	f.Float64SliceVar(&o.Rates, "rate", nil, "open-loop levels: requests per second (Poisson arrivals), comma-separated")
	f.IntVar(&o.Requests, "requests", defaultBenchRequests, "measured requests per level")
	f.DurationVar(&o.Duration, "duration", 0, "send measured requests for this long per level, instead of --requests")
	f.IntVar(&o.Warmup, "warmup", -1, "requests per level left out of the statistics (-1: one per user, or one second of arrivals)")
	f.Uint64Var(&o.Seed, "seed", 1, "seed of the prompts and the arrival times")
	f.BoolVar(&o.NoCalibration, "no-calibration", false, "send --isl words without fitting them to the tokenizer first")
	f.StringVar(&o.ExtraBody, "extra-body", "", `JSON object merged into every request body, e.g. '{"nvext":{"ignore_eos":true}}'`)
	f.DurationVar(&o.RequestTimeout, "request-timeout", defaultBenchTimeout, "limit for one request (0: none)")
	f.StringVarP(&o.Output, "output", "o", "table", "output format: table, wide, json or yaml")
	f.StringVar(&o.Record, "record", "", "DGDR whose selected configuration is deployed at --url: add the measured levels to the namespace's calibration store")
	return cmd
}

// Complete turns flags into benchmark options; bench asks no cluster unless --record is given.
func (o *BenchOptions) Complete(getter genericclioptions.RESTClientGetter, cmd *cobra.Command, _ []string) error {
	f := cmd.Flags()
	// --rate replaces the default concurrency level; --duration the default request count.
	if f.Changed("rate") && !f.Changed("concurrency") {
		o.Concurrency = nil
	}
	if f.Changed("duration") && !f.Changed("requests") {
		o.Requests = 0
	}
	if o.APIKey == "" {
		o.APIKey = os.Getenv("OPENAI_API_KEY")
	}
	var extra map[string]any
	if o.ExtraBody != "" {
		if err := json.Unmarshal([]byte(o.ExtraBody), &extra); err != nil {
			return WithHint(fmt.Errorf("--extra-body is not a JSON object: %w", err), `pass e.g. --extra-body '{"temperature":0}'`)
		}
	}
	o.opts = bench.Options{
		URL: o.URL, Model: o.Model, APIKey: o.APIKey, Endpoint: bench.Endpoint(o.Endpoint),
		ISL: o.ISL, OSL: o.OSL, Concurrency: o.Concurrency, Rates: o.Rates,
		Requests: o.Requests, Duration: o.Duration, Warmup: o.Warmup, Seed: o.Seed,
		SkipCalibration: o.NoCalibration, ExtraBody: extra, RequestTimeout: o.RequestTimeout,
		Progress: o.progress,
	}
	if o.Record != "" {
		c, err := newCluster(getter, o.IOStreams)
		if err != nil {
			return err
		}
		o.cluster = c
	}
	return nil
}

// Validate checks the flags.
func (o *BenchOptions) Validate() error {
	switch o.Output {
	case "table", "wide", "json", "yaml":
	default:
		return WithHint(fmt.Errorf("unsupported output format %q", o.Output), "use -o table, wide, json or yaml")
	}
	if err := o.opts.Validate(); err != nil {
		return WithHint(err, "see kubectl dgdr bench --help for the flags")
	}
	if o.Record != "" && len(o.Rates) > 0 {
		return WithHint(errors.New("--record takes closed-loop levels only: the calibration layout is a concurrency"), "pass --concurrency instead of --rate")
	}
	return nil
}

// Run benchmarks every level and prints the results. Ctrl-C (which cancels the root's context) stops the
// run and prints the levels finished so far.
func (o *BenchOptions) Run(ctx context.Context) error {
	var target *recordTarget
	if o.Record != "" {
		// Before measuring: a wrong name should not cost a benchmark.
		t, err := o.cluster.recordTarget(ctx, o.Record)
		if err != nil {
			return err
		}
		target = t
	}
	res, runErr := bench.Run(ctx, o.opts)
	if runErr != nil && len(res.Levels) == 0 {
		return WithHint(runErr, "check --url and --model: %s/v1/models should answer", strings.TrimSuffix(strings.TrimRight(o.URL, "/"), "/v1"))
	}
	if err := printBench(o.Out, res, o.Output); err != nil {
		return err
	}
	if target != nil {
		if err := o.record(ctx, target, res); err != nil {
			return err
		}
	}
	if runErr != nil {
		return WithHint(runErr, "the levels finished before the interruption are printed above")
	}
	return nil
}

// progress reports a finished level on stderr, with its errors.
func (o *BenchOptions) progress(lv bench.LevelResult) {
	fmt.Fprintf(o.ErrOut, "%s: %d requests, %d errors, TTFT p50 %.1f ms, ITL p50 %.2f ms, %.1f output tokens/s\n",
		levelName(lv), lv.Requests, lv.Errors, lv.TTFT.P50, lv.ITL.P50, lv.OutputTokensPerSecond)
	for _, m := range lv.ErrorMessages {
		fmt.Fprintf(o.ErrOut, "warning: %s: request failed: %s\n", levelName(lv), m)
	}
}

func levelName(lv bench.LevelResult) string {
	if lv.Rate > 0 {
		return "rate " + strconv.FormatFloat(lv.Rate, 'g', -1, 64) + "/s"
	}
	return "concurrency " + strconv.Itoa(lv.Concurrency)
}

// printBench writes res in the output format.
func printBench(w io.Writer, res bench.Result, output string) error {
	switch output {
	case "json", "yaml":
		return printObject(w, output, res)
	case "table", "wide":
		return renderBenchTable(w, res, output == "wide")
	}
	return errors.New("unsupported output format " + strconv.Quote(output))
}

// renderBenchTable writes one row per level. Latencies are in ms; wide adds means, p90s, single
// token gaps and the client's parsing cost.
func renderBenchTable(w io.Writer, res bench.Result, wide bool) error {
	tw := printers.GetNewTabWriter(w)
	load := "CONCURRENCY"
	if len(res.Levels) > 0 && res.Levels[0].Rate > 0 {
		load = "RATE(req/s)"
	}
	head := []string{load, "REQUESTS", "ERRORS", "ISL", "OSL", "TTFT-P50(ms)", "TTFT-P99(ms)", "ITL-P50(ms)", "ITL-P99(ms)",
		"E2E-P50(ms)", "OUTPUT-TOK/S", "TOK/S/USER", "REQ/S"}
	if wide {
		head = append(head, "TTFT-MEAN(ms)", "TTFT-P90(ms)", "ITL-MEAN(ms)", "ITL-P90(ms)", "GAP-P50(ms)", "GAP-P99(ms)",
			"E2E-P90(ms)", "E2E-P99(ms)", "PARSE(ns/chunk)")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, lv := range res.Levels {
		load := strconv.Itoa(lv.Concurrency)
		if lv.Rate > 0 {
			load = strconv.FormatFloat(lv.Rate, 'g', -1, 64)
		}
		isl := "<unknown>"
		if lv.ISL.Max > 0 {
			isl = strconv.FormatFloat(lv.ISL.Mean, 'f', 0, 64)
		}
		row := []string{load, strconv.Itoa(lv.Requests), strconv.Itoa(lv.Errors), isl, strconv.FormatFloat(lv.OSL.Mean, 'f', 0, 64),
			benchNum1(lv.TTFT.P50), benchNum1(lv.TTFT.P99), benchNum2(lv.ITL.P50), benchNum2(lv.ITL.P99), benchNum1(lv.E2E.P50),
			benchNum1(lv.OutputTokensPerSecond), benchNum1(lv.TokensPerSecondPerUser), benchNum2(lv.RequestsPerSecond)}
		if wide {
			row = append(row, benchNum1(lv.TTFT.Mean), benchNum1(lv.TTFT.P90), benchNum2(lv.ITL.Mean), benchNum2(lv.ITL.P90), benchNum2(lv.TokenGap.P50), benchNum2(lv.TokenGap.P99),
				benchNum1(lv.E2E.P90), benchNum1(lv.E2E.P99), benchNum1(lv.Overhead.ParseNsPerChunk))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// benchNum1 and benchNum2 format a measurement with one or two decimals.
func benchNum1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func benchNum2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// recordTarget is what a measured level is recorded against: the DGDR's selected configuration.
type recordTarget struct {
	dgdr       string
	model, gpu string
	config     profile.Config
}

// recordTarget reads the DGDR's selection, its model and GPU (from the stored report, else the spec).
func (c *cluster) recordTarget(ctx context.Context, name string) (*recordTarget, error) {
	d, err := c.getDGDR(ctx, name)
	if err != nil {
		return nil, err
	}
	p, err := pickPoint(d, -1)
	if err != nil {
		return nil, err
	}
	t := &recordTarget{dgdr: name, model: d.Spec.Model, gpu: d.Spec.Hardware.GPUType, config: expand.ConfigFromPoint(p)}
	if rep, err := c.resultsDocument(ctx, d); err == nil && rep != nil {
		t.model, t.gpu = cmp.Or(rep.Model, t.model), cmp.Or(rep.GPU, t.gpu)
	}
	if t.gpu == "" {
		return nil, WithHint(fmt.Errorf("dgdr %s: no GPU type in spec.hardware.gpuType nor in its stored results", name),
			"record against a DGDR whose profiling succeeded")
	}
	return t, nil
}

// record adds the measured closed-loop levels to the namespace's calibration store.
func (o *BenchOptions) record(ctx context.Context, t *recordTarget, res bench.Result) error {
	now := time.Now()
	var ms []calibstore.Measurement
	for _, lv := range res.Levels {
		if lv.Concurrency <= 0 || lv.Requests == 0 || !(lv.TTFT.Mean > 0) || !(lv.ITL.Mean > 0) {
			continue
		}
		isl, osl := res.ISL, res.OSL
		if lv.ISL.Max > 0 {
			isl = int(math.Round(lv.ISL.Mean))
		}
		if lv.OSL.Mean > 0 {
			osl = int(math.Round(lv.OSL.Mean))
		}
		ms = append(ms, calibstore.Measurement{Model: t.model, GPU: t.gpu, Config: t.config, ISL: isl, OSL: osl,
			Concurrency: lv.Concurrency, TTFTMs: lv.TTFT.Mean, ITLMs: lv.ITL.Mean, Source: "bench --record " + t.dgdr, At: now})
	}
	if len(ms) == 0 {
		return WithHint(errors.New("no level finished with a measurement to record"), "check the errors above")
	}
	if err := calibstore.Append(ctx, o.cluster.client, o.cluster.namespace, ms); err != nil {
		return apiError(err, "")
	}
	fmt.Fprintf(o.ErrOut, "recorded %d rows in %s/%s; run kubectl dgdr calibrate to refit\n", len(ms), o.cluster.namespace, calibstore.Name)
	return nil
}
