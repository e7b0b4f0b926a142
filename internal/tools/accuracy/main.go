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
	"slices"
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

// fewShotKs are the few-shot table's K: how many of a left-out model's own rows the refit gets (and
// all of them, the bound).
var fewShotKs = []int{1, 3, 5, calib.AllRows}

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
	printDistance(w, cv)
	nested := calib.NestedCrossValidate(rows, start, evals)
	printCoverage(w, coverageIntro, calib.IntervalCoverage(cv, nested, 1))
	printCoverage(w, gpuCoverageIntro, calib.GPUCoverage(cv, profile.ModeDisagg, 1))
	var corrected, correctedGPU []calib.CoverageLine
	for _, k := range profile.ShotBuckets {
		corrected = append(corrected, calib.CorrectedCoverage(rows, fits, nested, k, 1)...)
		correctedGPU = append(correctedGPU, calib.CorrectedGPUCoverage(rows, fits, k, profile.ModeDisagg, 1)...)
	}
	printCoverage(w, correctedCoverageIntro, corrected)
	printCoverage(w, correctedGPUCoverageIntro, correctedGPU)
	printFewShot(w, fewShotIntro, calib.FewShot(rows, fits, fewShotKs, nil))
	printFewShot(w, fewShotSituationIntro, calib.FewShot(rows, fits, fewShotKs, calib.Situation))
	return nil
}

const (
	coverageIntro = `Coverage of the nominal 80% (p10–p90) interval, left one model out: each model's leave-one-out
predictions with intervals fitted as make calibrate fits them, on the other models' residuals under fits
that saw neither them nor the model left out (target 75–85%; request = TTFT + (OSL−1)·ITL, from which
the throughput interval comes; width: median (p90 − p10)/prediction)`
	gpuCoverageIntro = `Coverage of the disaggregated rows left one GPU out (every disaggregated row is DeepSeek-R1's, so
left one model out they have no other model's to learn from): each GPU's disaggregated rows, predicted
left one model out, with intervals fitted as make calibrate fits them on every row not on that GPU`
	correctedCoverageIntro = `Coverage after a correction (intervals shrink where measurements exist): each model's rows left after
correcting its leave-one-out fit with K of its rows in their situation (precision, GPU, backend, mode; as kubectl
dgdr calibrate does), with the corrected intervals fitted on the other models' corrected rows under
fits that saw neither them nor the model`
	correctedGPUCoverageIntro = `Coverage after a correction of the disaggregated rows, left one GPU out (as above, for the one model
with disaggregated rows): each GPU's corrected disaggregated rows against the corrected intervals fitted
on the corrected rows not on that GPU`
	fewShotIntro = `Few-shot, K rows of the model: each model's leave-one-out fit corrected by K of its own rows as kubectl
dgdr calibrate corrects it (TTFT and ITL factors per GPU, backend and mode measured, shrunk toward 1),
the rows chosen by a fixed rule (ordered by mode, backend, system, concurrency; the middles of K equal
slices); median absolute error on its other rows (K = 0: the leave-one-out fit on all its rows; K = all:
corrected on all its rows and checked on them, the best any correction on K of them can do)`
	fewShotSituationIntro = `Few-shot, K rows of each situation (a cluster's store: one GPU, backend and mode): as above, but K rows
chosen by the same rule in each situation (weight precision, GPU, backend, mode) of at least 10
measured rows, and the error on that
situation's other rows — what a cluster that measured K points of one kind of deployment gets on the
rest of it (K = 0: the leave-one-out fit on every row of those situations; K = all: each situation
corrected on all its rows and checked on them)`
)

// printCoverage writes an interval coverage table (with a K column when the lines are corrected).
func printCoverage(w io.Writer, intro string, lines []calib.CoverageLine) {
	shots := slices.ContainsFunc(lines, func(l calib.CoverageLine) bool { return l.Shots > 0 })
	k, sep := "", ""
	if shots {
		k, sep = " K |", "---:|"
	}
	fmt.Fprintf(w, "\n%s\n", intro)
	fmt.Fprintf(w, "\n|%s group | mode | rows | TTFT inside | ITL inside | request inside | TTFT width | ITL width |\n", k)
	fmt.Fprintf(w, "|%s---|---|---:|---:|---:|---:|---:|---:|\n", sep)
	for _, l := range lines {
		if shots {
			fmt.Fprintf(w, "| %d ", l.Shots)
		}
		fmt.Fprintf(w, "| %s | %s | %d | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %.0f%% |\n", l.Backend, l.Mode, l.Rows,
			100*l.TTFT, 100*l.ITL, 100*l.E2E, 100*l.TTFTWidth, 100*l.ITLWidth)
	}
}

// printFewShot writes a few-shot table.
func printFewShot(w io.Writer, intro string, lines []calib.FewShotLine) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s\n", intro)
	var head, sep strings.Builder
	head.WriteString("\n| model left out | rows |")
	sep.WriteString("|---|---:|")
	for _, k := range lines[0].Ks {
		n := fmt.Sprint(k)
		if k == calib.AllRows {
			n = "all"
		}
		fmt.Fprintf(&head, " TTFT K=%s | ITL K=%s |", n, n)
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
