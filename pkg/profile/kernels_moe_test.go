package profile

import (
	"encoding/csv"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/internal/repo"
)

// The expert block is costed as dense GEMMs of the routed shape (fused MoE kernels), not from the torch
// grouped-GEMM measurement, which only checks it here: a fused kernel is never slower than torch's
// grouped_mm of the same block, and the dense-GEMM costing stays within a small factor of it.
func TestMoEBlockAgainstGroupedGEMM(t *testing.T) {
	shapes := map[string][2]float64{"deepseek-v3": {7168, 2048}, "qwen3-235b-a22b": {4096, 1536}, "gpt-oss-120b": {2880, 2880}}
	for _, name := range []string{"h100_sxm", "h200_sxm"} {
		k, err := newKernels(gpu(t, name))
		require.NoError(t, err)
		require.Equal(t, MethodKernelTable, k.method)
		f, err := os.Open(repo.TestPath(t, "gpu-data", name, "moe.csv"))
		require.NoError(t, err)
		recs, err := csv.NewReader(f).ReadAll()
		f.Close()
		require.NoError(t, err)
		require.Greater(t, len(recs), 10)
		for _, r := range recs[1:] {
			sh, ok := shapes[r[0]]
			require.True(t, ok, "moe.csv: unknown model %q", r[0])
			rows, _ := strconv.ParseFloat(r[5], 64)
			el, _ := strconv.ParseFloat(r[4], 64)
			ms, err := strconv.ParseFloat(r[6], 64)
			require.NoError(t, err)
			got := k.moe(rows, el, sh[0], sh[1], 2, dtBF16)
			t.Logf("%s %s ep=%s rows=%v: dense-GEMM %.3f ms, grouped_mm %.3f ms (×%.2f)", name, r[0], r[1], rows, got, ms, got/ms)
			assert.LessOrEqual(t, got, ms*1.05, "%s %s rows %v: slower than torch's grouped_mm", name, r[0], rows)
			assert.GreaterOrEqual(t, got, ms*0.4, "%s %s rows %v: implausibly faster than torch's grouped_mm", name, r[0], rows)
		}
	}
}
