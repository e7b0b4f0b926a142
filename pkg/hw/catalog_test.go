package hw_test

import (
	"encoding/csv"
	"errors"
	"io"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/internal/repo"
	"github.com/dgdr-dev/dgdr/pkg/hw"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "h100_sxm", want: "h100_sxm"},
		{in: "H200_SXM", want: "h200_sxm"},
		{in: " gb200 ", want: "gb200"},
		{in: "l4", want: "l4"},
		{in: "h100", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			g, err := hw.Lookup(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "h100_sxm, h200_sxm", "the error lists the known names")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, g.Name)
		})
	}
}

func TestNamesSortedAndComplete(t *testing.T) {
	names := hw.Names()
	assert.True(t, slices.IsSorted(names))
	assert.ElementsMatch(t, []string{"h100_sxm", "h100_pcie", "h200_sxm", "b200_sxm", "b300_sxm", "gb200",
		"gb300", "a100_sxm", "a100_pcie", "l40s", "l4"}, names)
}

// TestCatalogConsistency checks relations every datasheet obeys, so a typo in one figure shows.
func TestCatalogConsistency(t *testing.T) {
	for _, g := range hw.All() {
		t.Run(g.Name, func(t *testing.T) {
			assert.NotEmpty(t, g.Product)
			assert.Positive(t, g.MemoryGiB)
			assert.Positive(t, g.MemBandwidthGBs)
			assert.Positive(t, g.BF16TFLOPS)
			assert.Positive(t, g.IntraNodeGBs)
			assert.Positive(t, g.InterNodeGBs)
			assert.Positive(t, g.GPUsPerNode)
			assert.Positive(t, g.NVLinkDomain)
			if g.FP8TFLOPS > 0 {
				assert.InDelta(t, 2*g.BF16TFLOPS, g.FP8TFLOPS, 0.02*g.FP8TFLOPS, "FP8 doubles BF16")
			}
			if g.FP4TFLOPS > 0 {
				assert.GreaterOrEqual(t, g.FP4TFLOPS, 2*g.FP8TFLOPS, "FP4 at least doubles FP8")
			}
			assert.GreaterOrEqual(t, g.IntraNodeGBs, g.InterNodeGBs/2, "scale-up is not slower than scale-out")
			// Machine balance (FLOP per byte of HBM) sits between 100 and 1000 for every datacenter GPU.
			balance := g.BF16TFLOPS * 1e12 / (g.MemBandwidthGBs * 1e9)
			assert.Greater(t, balance, 100.0)
			assert.Less(t, balance, 1000.0)
		})
	}
}

func TestTFLOPSFallback(t *testing.T) {
	a100, err := hw.Lookup("a100_sxm")
	require.NoError(t, err)
	h100, err := hw.Lookup("h100_sxm")
	require.NoError(t, err)
	b200, err := hw.Lookup("b200_sxm")
	require.NoError(t, err)
	tests := []struct {
		g         hw.GPU
		precision string
		want      float64
		native    bool
	}{
		{a100, "bf16", a100.BF16TFLOPS, true},
		{a100, "fp8", a100.BF16TFLOPS, false},
		{a100, "nvfp4", a100.BF16TFLOPS, false},
		{h100, "fp8_block", h100.FP8TFLOPS, true},
		{h100, "nvfp4", h100.FP8TFLOPS, false},
		{b200, "nvfp4", b200.FP4TFLOPS, true},
		{b200, "FP8", b200.FP8TFLOPS, true},
		{b200, "fp16", b200.BF16TFLOPS, true},
	}
	for _, tt := range tests {
		t.Run(tt.g.Name+"/"+tt.precision, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.g.TFLOPS(tt.precision))
			assert.Equal(t, tt.native, tt.g.Supports(tt.precision))
		})
	}
}

func TestLinkGBs(t *testing.T) {
	gb200, err := hw.Lookup("gb200")
	require.NoError(t, err)
	h200, err := hw.Lookup("h200_sxm")
	require.NoError(t, err)
	l40s, err := hw.Lookup("l40s")
	require.NoError(t, err)
	assert.Equal(t, gb200.IntraNodeGBs, gb200.LinkGBs(32), "NVL72 keeps 32 GPUs on NVLink across trays")
	assert.Equal(t, gb200.InterNodeGBs, gb200.LinkGBs(144))
	assert.Equal(t, h200.IntraNodeGBs, h200.LinkGBs(8))
	assert.Equal(t, h200.InterNodeGBs, h200.LinkGBs(16))
	assert.Equal(t, l40s.IntraNodeGBs, l40s.LinkGBs(4), "PCIe within the node")
}

// TestCatalogCoversMeasuredData checks that every system of the calibration table and every kernel
// table folder has a catalog entry of the same name, and that the measured memory bandwidth of
// the kernel tables stays under the catalog's peak.
func TestCatalogCoversMeasuredData(t *testing.T) {
	f, err := os.Open(repo.TestPath(t, "calibration", "serving_measurements_train.csv"))
	require.NoError(t, err)
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	require.NoError(t, err)
	col := slices.Index(header, "system")
	require.GreaterOrEqual(t, col, 0)
	systems := map[string]bool{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		systems[rec[col]] = true
	}
	require.NotEmpty(t, systems)
	for s := range systems {
		_, err := hw.Lookup(s)
		assert.NoError(t, err, "calibration system %s", s)
	}

	entries, err := os.ReadDir(repo.TestPath(t, "gpu-data"))
	require.NoError(t, err)
	folders := 0
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "collector" {
			continue
		}
		folders++
		g, err := hw.Lookup(e.Name())
		require.NoError(t, err, "gpu-data folder %s", e.Name())
		peak := maxMeasuredGBs(t, repo.TestPath(t, "gpu-data", e.Name(), "membw.csv"))
		assert.Less(t, peak, g.MemBandwidthGBs, "%s: a copy kernel cannot beat the datasheet", g.Name)
		assert.Greater(t, peak, 0.7*g.MemBandwidthGBs, "%s: the datasheet is not far above what is measured", g.Name)
	}
	assert.Positive(t, folders)
}

func maxMeasuredGBs(t *testing.T, path string) float64 {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	col := slices.Index(recs[0], "gbps")
	require.GreaterOrEqual(t, col, 0)
	peak := 0.0
	for _, rec := range recs[1:] {
		v, err := strconv.ParseFloat(rec[col], 64)
		require.NoError(t, err)
		peak = max(peak, v)
	}
	return peak
}
