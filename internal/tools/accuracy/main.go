// Command accuracy reports the performance model's error on shared/calibration's measured serving
// table: with the shipped calibration (training error) and leave-one-model-out (each model predicted
// by a calibration refitted without it). `make bench-accuracy` runs it.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/dgdr-dev/dgdr/internal/tools/toolutil"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

func main() {
	shared := flag.String("shared", toolutil.SharedDir(), "the shared/ folder")
	evals := flag.Int("evals", 400, "Nelder-Mead evaluations per backend in each leave-one-model-out refit")
	flag.Parse()
	if err := run(*shared, *evals); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(shared string, evals int) error {
	rows, err := toolutil.ReadCalibration(shared)
	if err != nil {
		return err
	}
	cal, err := profile.EmbeddedCalibration()
	if err != nil {
		return err
	}
	fmt.Printf("Absolute %% error of mean TTFT and ITL on %d measured configurations (%s).\n", len(rows), toolutil.CalibrationFile)
	train := profile.NewEvaluator(rows).Run(cal)
	toolutil.PrintTable(os.Stdout, "Training (shipped calibration)", profile.Summarize(train))
	start := profile.DefaultCalibration()
	start.GlueUsPerLayer = cal.GlueUsPerLayer
	cv := profile.CrossValidate(rows, start, evals)
	toolutil.PrintTable(os.Stdout, "Leave one model out (each model predicted by a fit that never saw it)", profile.Summarize(cv))
	toolutil.PrintTable(os.Stdout, "Leave one model out, H100/H200/B200 only", profile.Summarize(toolutil.OnSystems(cv, "h100_sxm", "h200_sxm", "b200_sxm")))
	toolutil.PrintTable(os.Stdout, "Leave one model out, by model (first column: the model left out)",
		profile.SummarizeBy(cv, func(r *profile.ServingRow) string { return r.Fields["model_path"] }))
	return nil
}
