package profile

import (
	"encoding/csv"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/internal/repo"
)

func readE2EPoints(t *testing.T) []DecodeStepPoint {
	t.Helper()
	f, err := os.Open(repo.TestPath(t, "gpu-data", "h100_sxm", "e2e_llama3.1-8b_bf16.csv"))
	require.NoError(t, err)
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	var pts []DecodeStepPoint
	for _, r := range recs[1:] {
		if r[1] != "decode" {
			continue
		}
		b, _ := strconv.Atoi(r[2])
		kv, _ := strconv.Atoi(r[3])
		ms, err := strconv.ParseFloat(r[4], 64)
		require.NoError(t, err)
		pts = append(pts, DecodeStepPoint{Batch: b, KV: kv, Ms: ms})
	}
	require.NotEmpty(t, pts)
	return pts
}
