package profile

import (
	"embed"
	"encoding/json"
	"fmt"
	"math"
	"path"
	"slices"
	"sync"
)

// KernelTable is the project's own compact digest of one GPU's measured kernel figures
// (testdata/gpu-data/<gpu>): achieved efficiency ("util" = roofline time / measured time) as a function
// of problem size, not the measurements themselves. `go run ./internal/tools/tables` (make tables)
// derives it; the performance model embeds it (tables/<gpu>.json).
//
// A kernel's time is then roofline(query) / util(size): inside the measured range that reproduces the
// measurement (interpolated between sizes), beyond it the utilisation of the nearest measured size is
// held, and below the smallest measured size the smallest measured time is held (launch floor).
type KernelTable struct {
	GPU    string `json:"gpu"`
	Source string `json:"source"`
	// Reference peaks the utilisations are relative to (the catalog's dense figures at generation time).
	BF16TFLOPS float64 `json:"bf16TFLOPS"`
	FP8TFLOPS  float64 `json:"fp8TFLOPS"`
	MemGBs     float64 `json:"memGBs"`

	// MemBW is device-to-device copy utilisation against log2(bytes moved).
	MemBW Curve `json:"memBW"`
	// GEMM holds, per dtype (bf16, fp8), utilisation on a grid of log2(m) × log2(n·k).
	GEMM map[string]Grid `json:"gemm"`
	// PrefillAttn: causal flash attention utilisation (of the bf16 peak) against log2(FLOPs).
	PrefillAttn Curve `json:"prefillAttn"`
	// DecodeAttn: decode attention utilisation (of the memory bandwidth) against log2(KV bytes read).
	DecodeAttn Curve `json:"decodeAttn"`
	// No MoE curve: the expert block is costed on the GEMM grids (kernels.moe); gpu-data's moe.csv
	// (torch grouped GEMM) only checks it (TestMoEBlockAgainstGroupedGEMM).
}

// Curve is a piecewise-linear function of X (a log2 size), with the smallest measured time Floor
// (ms) held below X[0].
type Curve struct {
	X     []float64 `json:"x"`
	Y     []float64 `json:"y"`
	Floor float64   `json:"floorMs"`
}

// Grid is a bilinear function on X × Y (log2 sizes): V[i][j] at (X[i], Y[j]).
type Grid struct {
	X     []float64   `json:"x"`
	Y     []float64   `json:"y"`
	V     [][]float64 `json:"v"`
	Floor float64     `json:"floorMs"`
}

// At interpolates linearly and holds the end values outside the range.
func (c Curve) At(x float64) float64 {
	return interp1(c.X, c.Y, x)
}

// At interpolates bilinearly and holds the edge values outside the grid.
func (g Grid) At(x, y float64) float64 {
	i, fx := bracket(g.X, x)
	j, fy := bracket(g.Y, y)
	v00, v01 := g.V[i][j], g.V[i][min(j+1, len(g.Y)-1)]
	i1 := min(i+1, len(g.X)-1)
	v10, v11 := g.V[i1][j], g.V[i1][min(j+1, len(g.Y)-1)]
	return (1-fx)*((1-fy)*v00+fy*v01) + fx*((1-fy)*v10+fy*v11)
}

// bracket returns the index i and fraction f so that x ≈ xs[i]·(1−f) + xs[i+1]·f, clamped.
func bracket(xs []float64, x float64) (int, float64) {
	n := len(xs)
	if n == 1 || x <= xs[0] {
		return 0, 0
	}
	if x >= xs[n-1] {
		return n - 1, 0
	}
	i := 0
	for i < n-2 && x > xs[i+1] {
		i++
	}
	return i, (x - xs[i]) / (xs[i+1] - xs[i])
}

func interp1(xs, ys []float64, x float64) float64 {
	i, f := bracket(xs, x)
	if f == 0 {
		return ys[i]
	}
	return ys[i]*(1-f) + ys[i+1]*f
}

func (t *KernelTable) validate() error {
	curves := map[string]Curve{"memBW": t.MemBW, "prefillAttn": t.PrefillAttn, "decodeAttn": t.DecodeAttn}
	for name, c := range curves {
		if len(c.X) == 0 || len(c.X) != len(c.Y) || !slices.IsSorted(c.X) {
			return fmt.Errorf("kernel table %s: curve %s must have sorted x and as many y", t.GPU, name)
		}
		for _, y := range c.Y {
			if !(y > 0) || math.IsInf(y, 0) {
				return fmt.Errorf("kernel table %s: curve %s has a non-positive utilisation", t.GPU, name)
			}
		}
	}
	for _, dt := range []string{"bf16", "fp8"} {
		g, ok := t.GEMM[dt]
		if !ok || len(g.X) == 0 || len(g.Y) == 0 || len(g.V) != len(g.X) {
			return fmt.Errorf("kernel table %s: gemm %s grid missing or malformed", t.GPU, dt)
		}
		for _, row := range g.V {
			if len(row) != len(g.Y) {
				return fmt.Errorf("kernel table %s: gemm %s grid row has %d values, expected %d", t.GPU, dt, len(row), len(g.Y))
			}
		}
	}
	if t.BF16TFLOPS <= 0 || t.FP8TFLOPS <= 0 || t.MemGBs <= 0 {
		return fmt.Errorf("kernel table %s: reference peaks must be positive", t.GPU)
	}
	return nil
}

//go:embed tables/*.json
var tableFS embed.FS

// ReferenceGPU is the measured GPU whose utilisation curves a GPU without its own table borrows
// (the newest measured part; its utilisations are then applied to the catalog's peak figures).
const ReferenceGPU = "h200_sxm"

var loadTables = sync.OnceValues(func() (map[string]*KernelTable, error) {
	entries, err := tableFS.ReadDir("tables")
	if err != nil {
		return nil, fmt.Errorf("read embedded kernel tables: %w", err)
	}
	out := map[string]*KernelTable{}
	for _, e := range entries {
		if path.Ext(e.Name()) != ".json" || e.Name() == calibFile || e.Name() == intervalFile {
			continue
		}
		b, err := tableFS.ReadFile("tables/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read kernel table %s: %w", e.Name(), err)
		}
		var t KernelTable
		if err := json.Unmarshal(b, &t); err != nil {
			return nil, fmt.Errorf("parse kernel table %s: %w", e.Name(), err)
		}
		if err := t.validate(); err != nil {
			return nil, err
		}
		out[t.GPU] = &t
	}
	if out[ReferenceGPU] == nil {
		return nil, fmt.Errorf("embedded kernel tables lack the reference gpu %s", ReferenceGPU)
	}
	return out, nil
})

// KernelTableGPUs lists the GPUs with a measured kernel table, sorted.
func KernelTableGPUs() []string {
	m, err := loadTables()
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
