// Command fit reproduces the performance model's calibration (pkg/profile/tables/calib.json): the
// per-layer glue from testdata/gpu-data's whole-step table, then each backend's serving constants from
// testdata/calibration/serving_measurements_train.csv. internal/calib documents the method.
package main

import (
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/dgdr-dev/dgdr/internal/calib"
	"github.com/dgdr-dev/dgdr/internal/tools/toolutil"
	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

func main() {
	data := flag.String("testdata", toolutil.Testdata(), "the folder that holds calibration/ and gpu-data/")
	out := flag.String("out", "pkg/profile/tables/calib.json", "where to write the calibration")
	evals := flag.Int("evals", 400, "Nelder-Mead evaluations per backend")
	intervals := flag.String("intervals", "pkg/profile/tables/intervals.json", "where to write the interval table")
	intervalsOnly := flag.Bool("intervals-only", false, "keep the embedded calibration and refit only the interval table")
	flag.Parse()
	if *intervalsOnly {
		rows, err := toolutil.ReadCalibration(*data)
		if err == nil {
			var cal profile.Calib
			if cal, err = profile.EmbeddedCalibration(); err == nil {
				err = writeIntervals(rows, cal, *intervals, *evals)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*data, *out, *intervals, *evals); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(data, out, intervals string, evals int) error {
	pts, err := readE2E(filepath.Join(data, "gpu-data", "h100_sxm", "e2e_llama3.1-8b_bf16.csv"))
	if err != nil {
		return err
	}
	g, err := hw.Lookup("h100_sxm")
	if err != nil {
		return err
	}
	glue, err := calib.FitGlue(g, pts)
	if err != nil {
		return err
	}
	fmt.Printf("glue per layer: %.2f µs (fit on %d CUDA-graph decode steps)\n", glue, len(pts))
	rows, err := toolutil.ReadCalibration(data)
	if err != nil {
		return err
	}
	start := profile.DefaultCalibration()
	start.GlueUsPerLayer = glue
	cal := calib.Fit(calib.NewEvaluator(rows), start, evals)
	cal.Method = fmt.Sprintf("go run ./internal/tools/fit: glue on testdata/gpu-data/h100_sxm/e2e_llama3.1-8b_bf16.csv, "+
		"backends by Nelder-Mead (%d evaluations each, mean |log error| of TTFT and ITL) on the %d rows of "+
		"testdata/calibration/serving_measurements_train.csv", evals, len(rows))
	b, err := json.MarshalIndent(cal, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write calibration: %w", err)
	}
	fmt.Println("wrote", out)
	toolutil.PrintTable(os.Stdout, "training", calib.Summarize(calib.NewEvaluator(rows).Run(cal)))
	return writeIntervals(rows, cal, intervals, evals)
}

// writeIntervals fits the interval table: the residuals of cal on every row (architectures with
// calibration rows) and those of each model predicted by a fit without it (the others).
func writeIntervals(rows []*profile.ServingRow, cal profile.Calib, out string, evals int) error {
	start := profile.DefaultCalibration()
	start.GlueUsPerLayer = cal.GlueUsPerLayer
	lomo, fits := calib.CrossValidateFits(rows, start, evals)
	shots := map[int][]calib.RowResult{}
	for _, k := range profile.ShotBuckets {
		shots[k] = calib.FewShotHeldOut(rows, fits, k, calib.Situation)
	}
	t := calib.FitIntervals(calib.NewEvaluator(rows).Run(cal), lomo, shots,
		fmt.Sprintf("go run ./internal/tools/fit: p10 and p90 of ln(measured/predicted) on the %d rows of %s, "+
			"calibrated cells with the shipped calibration, uncalibrated ones left one model out (%d evaluations per refit), "+
			"corrected ones left one model out after corrections on 1, 3 or 5 rows of each situation",
			len(rows), toolutil.CalibrationFile, evals))
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write intervals: %w", err)
	}
	fmt.Println("wrote", out)
	return nil
}

func readE2E(p string) ([]profile.DecodeStepPoint, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open whole-step table: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	var pts []profile.DecodeStepPoint
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return pts, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		if rec[col["phase"]] != "decode" || rec[col["graph"]] != "1" {
			continue
		}
		b, err1 := strconv.Atoi(rec[col["batch"]])
		kv, err2 := strconv.Atoi(rec[col["isl_or_kv"]])
		ms, err3 := strconv.ParseFloat(rec[col["ms"]], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("%s: malformed row %v", p, rec)
		}
		pts = append(pts, profile.DecodeStepPoint{Batch: b, KV: kv, Ms: ms})
	}
}
