// Command accuracy reports the performance model's error on testdata/calibration's measured serving
// table: with the shipped calibration (training error) and leave-one-model-out (each model predicted
// by a calibration refitted without it). `make bench-accuracy` runs it.
package main

import (
	"flag"
	"fmt"
	"os"

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
	if err := run(*data, *evals); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// load reads the calibration table and the shipped calibration.
func load(data string) ([]*profile.ServingRow, profile.Calib, error) {
	rows, err := toolutil.ReadCalibration(data)
	if err != nil {
		return nil, profile.Calib{}, err
	}
	cal, err := profile.EmbeddedCalibration()
	return rows, cal, err
}

func run(data string, evals int) error {
	rows, cal, err := load(data)
	if err != nil {
		return err
	}
	fmt.Printf("Absolute %% error of mean TTFT and ITL on %d measured configurations (%s).\n", len(rows), toolutil.CalibrationFile)
	train := calib.NewEvaluator(rows).Run(cal)
	toolutil.PrintTable(os.Stdout, "Training (shipped calibration)", calib.Summarize(train))
	start := profile.DefaultCalibration()
	start.GlueUsPerLayer = cal.GlueUsPerLayer
	cv := calib.CrossValidate(rows, start, evals)
	toolutil.PrintTable(os.Stdout, "Leave one model out (each model predicted by a fit that never saw it)", calib.Summarize(cv))
	toolutil.PrintTable(os.Stdout, "Leave one model out, H100/H200/B200 only", calib.Summarize(toolutil.OnSystems(cv, targetSystems...)))
	toolutil.PrintTable(os.Stdout, "Leave one model out, by model (first column: the model left out)",
		calib.SummarizeBy(cv, func(r *profile.ServingRow) string { return r.Fields["model_path"] }))
	return nil
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
