// Command tables derives the performance model's embedded kernel tables (pkg/profile/tables/<gpu>.json)
// from the measured kernel figures in testdata/gpu-data. It keeps achieved-efficiency curves against
// problem size (see profile.KernelTable), not the measurements: `make tables` reruns it.
package main

import (
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/dgdr-dev/dgdr/internal/tools/toolutil"
	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

func main() {
	data := flag.String("testdata", toolutil.Testdata(), "the folder that holds gpu-data/")
	out := flag.String("out", "pkg/profile/tables", "where to write <gpu>.json")
	flag.Parse()
	for _, gpu := range []string{"h100_sxm", "h200_sxm"} {
		t, err := build(filepath.Join(*data, "gpu-data", gpu), gpu)
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		b, err := json.MarshalIndent(t, "", " ")
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		p := filepath.Join(*out, gpu+".json")
		if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		fmt.Println("wrote", p)
	}
}

// point is one measured utilisation at a log2 size (x, and y for grids).
type point struct{ x, y, util, ms float64 }

func build(dir, gpu string) (*profile.KernelTable, error) {
	g, err := hw.Lookup(gpu)
	if err != nil {
		return nil, err
	}
	t := &profile.KernelTable{
		GPU:        gpu,
		Source:     "derived by internal/tools/tables from testdata/gpu-data/" + gpu + " (membw, gemm, attention)",
		BF16TFLOPS: g.BF16TFLOPS, FP8TFLOPS: g.FP8TFLOPS, MemGBs: g.MemBandwidthGBs,
		GEMM: map[string]profile.Grid{},
	}
	bw := g.MemBandwidthGBs * 1e6 // bytes per ms
	peak := map[string]float64{"bf16": g.BF16TFLOPS * 1e9, "fp8": g.FP8TFLOPS * 1e9}

	// Memory bandwidth.
	rows, err := readCSV(filepath.Join(dir, "membw.csv"))
	if err != nil {
		return nil, err
	}
	var pts []point
	for _, r := range rows {
		by, ms := num(r, "bytes"), num(r, "ms")
		pts = append(pts, point{x: math.Log2(by), util: by / bw / ms, ms: ms})
	}
	t.MemBW = curve(pts, 1, 0.5)

	// GEMM: util on log2(m) × log2(n·k) per dtype.
	rows, err = readCSV(filepath.Join(dir, "gemm.csv"))
	if err != nil {
		return nil, err
	}
	byDtype := map[string][]point{}
	for _, r := range rows {
		dt := r["dtype"]
		m, n, k, ms := num(r, "m"), num(r, "n"), num(r, "k"), num(r, "ms")
		eb := 2.0
		if dt == "fp8" {
			eb = 1
		}
		sol := math.Max(2*m*n*k/peak[dt], (eb*(m*k+n*k)+2*m*n)/bw)
		byDtype[dt] = append(byDtype[dt], point{x: math.Log2(m), y: math.Log2(n * k), util: sol / ms, ms: ms})
	}
	for dt, pts := range byDtype {
		t.GEMM[dt] = grid(pts)
	}

	// Attention: prefill against FLOPs, decode against KV bytes.
	rows, err = readCSV(filepath.Join(dir, "attention.csv"))
	if err != nil {
		return nil, err
	}
	var pre, dec []point
	for _, r := range rows {
		ms := num(r, "ms")
		b, q, kv, hq, hkv, d := num(r, "batch"), num(r, "q_len"), num(r, "kv_len"), num(r, "q_heads"), num(r, "kv_heads"), num(r, "head_dim")
		switch r["phase"] {
		case "prefill":
			fl := 4 * hq * q * kv * d / 2 // causal half
			pre = append(pre, point{x: math.Log2(fl), util: fl / peak["bf16"] / ms, ms: ms})
		case "decode":
			by := 2 * 2 * b * hkv * kv * d
			dec = append(dec, point{x: math.Log2(by), util: by / bw / ms, ms: ms})
		}
	}
	t.PrefillAttn = curve(pre, 1, 0.6)
	t.DecodeAttn = curve(dec, 1, 0.6)

	return t, nil
}

// curve smooths log(util) with a Gaussian kernel of width sigma (in log2 units) onto nodes every
// step from the smallest to the largest measured x; the floor is the smallest measured time.
func curve(pts []point, step, sigma float64) profile.Curve {
	lo, hi := math.Inf(1), math.Inf(-1)
	floor := math.Inf(1)
	for _, p := range pts {
		lo, hi = math.Min(lo, p.x), math.Max(hi, p.x)
		floor = math.Min(floor, p.ms)
	}
	var c profile.Curve
	for x := math.Floor(lo); x <= math.Ceil(hi)+1e-9; x += step {
		c.X = append(c.X, x)
		c.Y = append(c.Y, round(smooth(pts, func(p point) float64 { return (p.x - x) / sigma })))
	}
	c.Floor = round(floor)
	return c
}

// grid: nodes at every integer log2(m) measured and every integer log2(n·k) in range; each node is the
// kernel-weighted geometric mean of the utilisations measured at that m (nearest m for the fp8 rows
// that start at m = 16, so small m holds the m = 16 utilisation).
func grid(pts []point) profile.Grid {
	ylo, yhi := math.Inf(1), math.Inf(-1)
	var ms []float64
	floor := math.Inf(1)
	for _, p := range pts {
		ylo, yhi = math.Min(ylo, p.y), math.Max(yhi, p.y)
		if !slices.Contains(ms, p.x) {
			ms = append(ms, p.x)
		}
		floor = math.Min(floor, p.ms)
	}
	slices.Sort(ms)
	var g profile.Grid
	g.X = ms
	for y := math.Floor(ylo); y <= math.Ceil(yhi)+1e-9; y++ {
		g.Y = append(g.Y, y)
	}
	for _, m := range ms {
		row := make([]float64, len(g.Y))
		for j, y := range g.Y {
			row[j] = round(smooth(pts, func(p point) float64 {
				if p.x != m {
					return math.Inf(1)
				}
				return (p.y - y) / 0.6
			}))
		}
		g.V = append(g.V, row)
	}
	g.Floor = round(floor)
	return g
}

func smooth(pts []point, dist func(point) float64) float64 {
	var sw, s float64
	for _, p := range pts {
		d := dist(p)
		if math.IsInf(d, 0) {
			continue
		}
		w := math.Exp(-0.5 * d * d)
		sw += w
		s += w * math.Log(p.util)
	}
	if sw == 0 {
		return math.NaN()
	}
	return math.Exp(s / sw)
}

func round(v float64) float64 { return math.Round(v*1e5) / 1e5 }

func readCSV(p string) ([]map[string]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open kernel figures: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	var out []map[string]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		m := map[string]string{}
		for i, h := range head {
			m[h] = rec[i]
		}
		out = append(out, m)
	}
}

func num(r map[string]string, k string) float64 {
	v, err := strconv.ParseFloat(r[k], 64)
	if err != nil {
		panic(fmt.Sprintf("column %s: %q is not a number", k, r[k]))
	}
	return v
}
