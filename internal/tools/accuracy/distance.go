package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/dgdr-dev/dgdr/internal/calib"
)

// distanceBuckets are the upper edges of the distance buckets printDistance groups rows into. The
// second, ln 2 (a factor of two in one of ISL, OSL or concurrency), is where intervals conditioned on
// the distance were tried (docs/accuracy.md says why they were dropped).
var distanceBuckets = []float64{0.01, math.Ln2, 1.5, math.Inf(1)}

// shapeDistance is how far row a's shape lies from b's: the L1 distance of ln ISL, ln OSL and
// ln concurrency (1 = a factor of e in one of them).
func shapeDistance(a, b *calib.RowResult) float64 {
	ln := func(n int) float64 { return math.Log(float64(max(n, 1))) }
	ra, rb := a.Row, b.Row
	return math.Abs(ln(ra.Target.Workload.ISL)-ln(rb.Target.Workload.ISL)) +
		math.Abs(ln(ra.Target.Workload.OSL)-ln(rb.Target.Workload.OSL)) + math.Abs(ln(ra.Concurrency)-ln(rb.Concurrency))
}

// printDistance writes whether the left-out error grows with the distance of a row's shape from the
// nearest shape of another model (what a new model is predicted from), per mode: the 80th percentile
// of |ln(measured/predicted)| per distance bucket (what an interval's half-width would be), and the
// share of the bucket's rows that its largest campaign holds — a bucket one campaign dominates says
// that campaign's error, not the distance's.
func printDistance(w io.Writer, cv []calib.RowResult) {
	type acc struct {
		t, i      []float64
		campaigns map[string]int
	}
	buckets := map[[2]string]*acc{}
	var ok []*calib.RowResult
	for i := range cv {
		if t, _ := cv[i].AbsErr(); !math.IsNaN(t) {
			ok = append(ok, &cv[i])
		}
	}
	for _, r := range ok {
		d := math.Inf(1)
		for _, o := range ok {
			if calib.ModelGroup(o.Row) != calib.ModelGroup(r.Row) {
				d = min(d, shapeDistance(r, o))
			}
		}
		b := slices.IndexFunc(distanceBuckets, func(e float64) bool { return d < e })
		key := [2]string{string(r.Row.Config.Mode), fmt.Sprint(b)}
		if buckets[key] == nil {
			buckets[key] = &acc{campaigns: map[string]int{}}
		}
		a := buckets[key]
		a.t = append(a.t, math.Abs(math.Log(r.Row.MeasuredTTFTMs/r.Pred.TTFTMs)))
		a.i = append(a.i, math.Abs(math.Log(r.Row.MeasuredITLMs/r.Pred.ITLMs)))
		a.campaigns[campaignKey(r.Row)]++
	}
	fmt.Fprintln(w, "\nLeft-out error by distance from the other models' shapes (L1 distance of ln ISL, ln OSL, ln concurrency")
	fmt.Fprintln(w, "to the nearest row of another model): 80th percentile of |ln(measured/predicted)|, and the share of the")
	fmt.Fprintln(w, "bucket's rows in its largest campaign")
	fmt.Fprintln(w, "\n| mode | distance | rows | TTFT \\|r\\| p80 | ITL \\|r\\| p80 | largest campaign |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|")
	keys := slices.SortedFunc(maps.Keys(buckets), func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
	for _, k := range keys {
		a := buckets[k]
		var b int
		fmt.Sscan(k[1], &b)
		lo := 0.0
		if b > 0 {
			lo = distanceBuckets[b-1]
		}
		top := slices.Max(slices.Collect(maps.Values(a.campaigns)))
		fmt.Fprintf(w, "| %s | %s | %d | %.2f | %.2f | %.0f%% |\n", k[0], bucketName(lo, distanceBuckets[b]), len(a.t),
			quantile80(a.t), quantile80(a.i), 100*float64(top)/float64(len(a.t)))
	}
}

func bucketName(lo, hi float64) string {
	switch {
	case lo == 0:
		return "same shape"
	case math.IsInf(hi, 1):
		return fmt.Sprintf("≥ %.2f", lo)
	}
	return fmt.Sprintf("%.2f–%.2f", lo, hi)
}

// quantile80 is the 80th percentile of xs (at least one): the value at 80% of the sorted positions.
func quantile80(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[int(0.8*float64(len(s)-1))]
}
