// Command accuracy reports the performance model's error on testdata/calibration's measured serving
// table: with the shipped calibration (training error) and leave-one-model-out (each model predicted
// by a calibration refitted without it), the coverage of the p10–p90 intervals left one model out,
// and the few-shot table (a left-out model refitted with K of its own rows). `make bench-accuracy`
// runs it with -write docs/accuracy.md, which rewrites the tables between that file's markers.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dgdr-dev/dgdr/internal/calib"
	"github.com/dgdr-dev/dgdr/internal/tools/toolutil"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// targetSystems are the GPUs the project's accuracy target names.
var targetSystems = []string{"h100_sxm", "h200_sxm", "b200_sxm"}

func main() {
	data := flag.String("testdata", toolutil.Testdata(), "the folder that holds calibration/ and gpu-data/")
	evals := flag.Int("evals", 400, "Nelder-Mead evaluations per backend in each leave-one-model-out refit")
	residuals := flag.String("residuals", "", "write each row's predicted/measured TTFT and ITL to this CSV and stop")
	lomo := flag.Bool("lomo", false, "with -residuals: predict each row with the leave-one-model-out fit instead of the shipped calibration")
	campaigns := flag.Int("campaigns", 0, "print the aggregated campaigns of at least this many rows (shipped calibration against a TTFT fitted to each) and stop")
	write := flag.String("write", "", "also rewrite the region between the bench-accuracy markers of this Markdown file (docs/accuracy.md) with the tables")
	flag.Parse()
	if *campaigns > 0 {
		if err := runCampaigns(*data, *campaigns); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		return
	}
	if *residuals != "" {
		if err := writeResiduals(*data, *residuals, *lomo, *evals); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		return
	}
	var out bytes.Buffer
	err := run(io.MultiWriter(os.Stdout, &out), *data, *evals)
	if err == nil && *write != "" {
		err = toolutil.WriteRegion(*write, "make bench-accuracy", out.Bytes())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// fewShotKs are the few-shot table's K: how many of a left-out model's own rows the refit gets.
var fewShotKs = []int{1, 3, 5}

// load reads the calibration table and the shipped calibration.
func load(data string) ([]*profile.ServingRow, profile.Calib, error) {
	rows, err := toolutil.ReadCalibration(data)
	if err != nil {
		return nil, profile.Calib{}, err
	}
	cal, err := profile.EmbeddedCalibration()
	return rows, cal, err
}

func run(w io.Writer, data string, evals int) error {
	rows, cal, err := load(data)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Absolute %% error of mean TTFT and ITL on %d measured configurations (%s; %d Nelder–Mead evaluations per backend in each refit).\n",
		len(rows), toolutil.CalibrationFile, evals)
	train := calib.NewEvaluator(rows).Run(cal)
	toolutil.PrintTable(w, "Training (shipped calibration)", calib.Summarize(train))
	start := profile.DefaultCalibration()
	start.GlueUsPerLayer = cal.GlueUsPerLayer
	cv, fits := calib.CrossValidateFits(rows, start, evals)
	toolutil.PrintTable(w, "Leave one model out (each model predicted by a fit that never saw it)", calib.Summarize(cv))
	toolutil.PrintTable(w, "Leave one model out, H100/H200/B200 only", calib.Summarize(toolutil.OnSystems(cv, targetSystems...)))
	toolutil.PrintTable(w, "Leave one model out, by model (first column: the model left out)",
		calib.SummarizeBy(cv, func(r *profile.ServingRow) string { return r.Fields["model_path"] }))
	printCoverage(w, calib.IntervalCoverage(cv, calib.NestedCrossValidate(rows, start, evals), 1))
	printFewShot(w, calib.FewShot(rows, fits, fewShotKs))
	return nil
}

// printCoverage writes the interval coverage table.
func printCoverage(w io.Writer, lines []calib.CoverageLine) {
	fmt.Fprintln(w, "\nCoverage of the nominal 80% (p10–p90) interval, left one model out: each model's leave-one-out")
	fmt.Fprintln(w, "predictions with intervals fitted as make calibrate fits them, on the other models' residuals under fits")
	fmt.Fprintln(w, "that saw neither them nor the model left out (target 75–85%; request = TTFT + (OSL−1)·ITL, from which")
	fmt.Fprintln(w, "the throughput interval comes; width: median (p90 − p10)/prediction)")
	fmt.Fprintln(w, "\n| group | mode | rows | TTFT inside | ITL inside | request inside | TTFT width | ITL width |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|")
	for _, l := range lines {
		fmt.Fprintf(w, "| %s | %s | %d | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %.0f%% |\n", l.Backend, l.Mode, l.Rows,
			100*l.TTFT, 100*l.ITL, 100*l.E2E, 100*l.TTFTWidth, 100*l.ITLWidth)
	}
}

// printFewShot writes the few-shot table.
func printFewShot(w io.Writer, lines []calib.FewShotLine) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "\nFew-shot: each model's leave-one-out fit corrected by K of its own rows as kubectl dgdr calibrate corrects")
	fmt.Fprintln(w, "it (TTFT and ITL factors per GPU, backend and mode measured, shrunk toward 1), the rows chosen by a fixed")
	fmt.Fprintln(w, "rule (ordered by mode, backend, system, concurrency; the middles of K equal slices); median absolute error")
	fmt.Fprintln(w, "on its other rows (K = 0: the leave-one-out fit on all its rows)")
	var head, sep strings.Builder
	head.WriteString("\n| model left out | rows |")
	sep.WriteString("|---|---:|")
	for _, k := range lines[0].Ks {
		fmt.Fprintf(&head, " TTFT K=%d | ITL K=%d |", k, k)
		sep.WriteString("---:|---:|")
	}
	fmt.Fprintln(w, head.String())
	fmt.Fprintln(w, sep.String())
	for _, l := range lines {
		fmt.Fprintf(w, "| %s | %d |", l.Name, l.Rows)
		for j := range l.Ks {
			fmt.Fprintf(w, " %.1f%% | %.1f%% |", 100*l.TTFT[j], 100*l.ITL[j])
		}
		fmt.Fprintln(w)
	}
}

func runCampaigns(data string, minRows int) error {
	rows, cal, err := load(data)
	if err != nil {
		return err
	}
	printCampaigns(os.Stdout, calib.NewEvaluator(rows).Run(cal), minRows)
	return nil
}

// writeResiduals writes the row's identifying columns and the ratios predicted/measured (for finding
// the structure the serving model misses; the file holds measured rows, so keep it out of the repo).
func writeResiduals(data, path string, lomo bool, evals int) error {
	rows, cal, err := load(data)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create residuals file: %w", err)
	}
	defer f.Close()
	cols := []string{"model_path", "system", "backend", "backend_version", "mode", "isl", "osl", "concurrency",
		"batch_size", "tp_size", "attention_dp_size", "moe_ep_size", "gemm_quant_mode"}
	for _, c := range cols {
		fmt.Fprintf(f, "%s,", c)
	}
	fmt.Fprintln(f, "meas_ttft,meas_itl,pred_ttft,pred_itl,ttft_ratio,itl_ratio,pred_batch,decode_step,prefill_ms")
	res := calib.NewEvaluator(rows).Run(cal)
	if lomo {
		start := profile.DefaultCalibration()
		start.GlueUsPerLayer = cal.GlueUsPerLayer
		res = calib.CrossValidate(rows, start, evals)
	}
	for _, r := range res {
		if r.Err != nil || r.Row.MeasuredITLMs <= 0 {
			continue
		}
		for _, c := range cols {
			fmt.Fprintf(f, "%s,", r.Row.Fields[c])
		}
		fmt.Fprintf(f, "%g,%g,%g,%g,%g,%g,%d,%g,%g\n", r.Row.MeasuredTTFTMs, r.Row.MeasuredITLMs, r.Pred.TTFTMs, r.Pred.ITLMs,
			r.Pred.TTFTMs/r.Row.MeasuredTTFTMs, r.Pred.ITLMs/r.Row.MeasuredITLMs, r.Pred.RunningBatch, r.Pred.DecodeStepMs, r.Pred.PrefillMs)
	}
	return f.Close()
}
