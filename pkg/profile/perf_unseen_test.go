package profile

import (
	"encoding/csv"
	"math"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unseenShapes are dense decoders whose whole steps were measured for this project on an H100 SXM
// (testdata/e2e_unseen_h100_sxm.csv, made with the collector of /testdata/gpu-data method: random bf16
// weights, CUDA-graph decode, eager prefill, medians with the L2 flushed). No fit saw these whole steps
// (the kernel tables do hold Qwen3-32B's GEMM shapes, not Qwen3-8B's or Mistral-7B's).
var unseenShapes = map[string]Model{
	"qwen3-8b":   {ID: "qwen3-8b", Arch: ArchDense, Layers: 36, Hidden: 4096, Heads: 32, KVHeads: 8, HeadDim: 128, FFN: 12288, Vocab: 151936, Dtype: "bf16"},
	"mistral-7b": {ID: "mistral-7b", Arch: ArchDense, Layers: 32, Hidden: 4096, Heads: 32, KVHeads: 8, HeadDim: 128, FFN: 14336, Vocab: 32768, Dtype: "bf16"},
	"qwen3-32b":  {ID: "qwen3-32b", Arch: ArchDense, Layers: 64, Hidden: 5120, Heads: 64, KVHeads: 8, HeadDim: 128, FFN: 25600, Vocab: 151936, Dtype: "bf16"},
}

// TestComposedStepOnUnseenShapes checks the kernel composition (interpolated tables + fitted glue) on
// model shapes it was never fitted to: the decode steps a serving engine's ITL is built from.
func TestComposedStepOnUnseenShapes(t *testing.T) {
	cal, err := EmbeddedCalibration()
	require.NoError(t, err)
	g := gpu(t, "h100_sxm")
	f, err := os.Open("testdata/e2e_unseen_h100_sxm.csv")
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)

	var errs []float64
	for _, r := range rows[1:] {
		m, ok := unseenShapes[r[0]]
		require.True(t, ok, "shape %s", r[0])
		if r[1] != "decode" {
			continue
		}
		batch, _ := strconv.Atoi(r[2])
		kv, _ := strconv.Atoi(r[3])
		measured, _ := strconv.ParseFloat(r[4], 64)
		ms, err := ComposedDecodeMs(m, g, cal.GlueUsPerLayer, batch, kv)
		require.NoError(t, err)
		e := ms/measured - 1
		t.Logf("%-10s decode batch %3d kv %4d: composed %6.2f ms, measured %6.2f ms (%+.1f%%)", r[0], batch, kv, ms, measured, 100*e)
		errs = append(errs, math.Abs(e))
	}
	require.NotEmpty(t, errs)
	assert.Less(t, median(errs), 0.03, "median error of composed decode steps on unseen shapes")
	for _, e := range errs {
		assert.Less(t, e, 0.08, "every composed decode step on unseen shapes within 8%")
	}
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	return (s[(n-1)/2] + s[n/2]) / 2
}
