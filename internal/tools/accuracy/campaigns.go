package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/dgdr-dev/dgdr/internal/calib"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// A campaign is the rows one benchmark run produced: one model, system, backend version and mode.
func campaignKey(r *profile.ServingRow) string {
	f := r.Fields
	return strings.Join([]string{f["model_path"], f["system"], f["backend"], cmp.Or(f["backend_version"], "-"), f["mode"]}, " ")
}

// printCampaigns prints, per aggregated campaign of at least minRows rows, the median absolute error
// of the shipped calibration's TTFT and ITL, and that of the best TTFT of the form
// A·prefill·(1 + B·(n−1)/2) fitted to the campaign alone (prefill: the model's idle-engine prefill of
// one prompt; n: requests per attention-DP rank) — how far one calibration for all campaigns is
// from what each campaign's own queueing would allow.
func printCampaigns(w io.Writer, res []calib.RowResult, minRows int) {
	by := map[string][]calib.RowResult{}
	for _, r := range res {
		if r.Err != nil || r.Row.Config.Mode != profile.ModeAgg || r.Row.MeasuredTTFTMs <= 0 || r.Row.MeasuredITLMs <= 0 {
			continue
		}
		k := campaignKey(r.Row)
		by[k] = append(by[k], r)
	}
	keys := make([]string, 0, len(by))
	for k, v := range by {
		if len(v) >= minRows {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(len(by[b])-len(by[a]), strings.Compare(a, b)) })
	fmt.Fprintln(w, "\nAggregated campaigns: shipped calibration against a TTFT fitted to each campaign alone")
	fmt.Fprintln(w, "\n| campaign (model system backend version mode) | rows | TTFT median | ITL median | fitted TTFT median | A | B |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	// Every listed row, and those on the target's GPUs: the shipped errors and each row's error under
	// its own campaign's fit.
	type pool struct{ te, ie, fe []float64 }
	var all, target pool
	for _, k := range keys {
		rs := by[k]
		var te, ie []float64
		for _, r := range rs {
			t, i := r.AbsErr()
			te, ie = append(te, t), append(ie, i)
		}
		best, bestA, bestB := math.Inf(1), 0.0, 0.0
		var bestE []float64
		for _, a := range []float64{0.5, 0.7, 1, 1.4, 2, 3} {
			for _, b := range []float64{0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.8, 1.2} {
				var e []float64
				for _, r := range rs {
					n := math.Max(float64(r.Row.Concurrency)/float64(max(r.Row.Config.Workers[0].DP, 1)), 1)
					pred := a * r.Pred.PrefillMs * (1 + b*(n-1)/2)
					e = append(e, math.Abs(pred/r.Row.MeasuredTTFTMs-1))
				}
				if m := median(e); m < best {
					best, bestA, bestB, bestE = m, a, b, e
				}
			}
		}
		fmt.Fprintf(w, "| %s | %d | %.1f%% | %.1f%% | %.1f%% | %.1f | %.2f |\n", k, len(rs), 100*median(te), 100*median(ie), 100*best, bestA, bestB)
		pools := []*pool{&all}
		if slices.Contains(targetSystems, rs[0].Row.Fields["system"]) {
			pools = append(pools, &target)
		}
		for _, p := range pools {
			p.te, p.ie, p.fe = append(p.te, te...), append(p.ie, ie...), append(p.fe, bestE...)
		}
	}
	for _, p := range []struct {
		name string
		pool
	}{{"all rows listed", all}, {"rows listed on H100/H200/B200", target}} {
		fmt.Fprintf(w, "| %s | %d | %.1f%% | %.1f%% | %.1f%% | | |\n", p.name, len(p.te), 100*median(p.te), 100*median(p.ie), 100*median(p.fe))
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	return s[len(s)/2]
}
