package profile

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// sharedDir is $DGDR_SHARED, else ../shared beside the repository root; missing is a failure.
func sharedDir(t *testing.T) string {
	t.Helper()
	if s := os.Getenv("DGDR_SHARED"); s != "" {
		return s
	}
	dir, err := os.Getwd()
	require.NoError(t, err)
	for d := dir; filepath.Dir(d) != d; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			s := filepath.Join(filepath.Dir(d), "shared")
			_, err := os.Stat(s)
			require.NoError(t, err, "shared/ must sit beside the repository (or set DGDR_SHARED)")
			return s
		}
	}
	t.Fatal("repository root (go.mod) not found")
	return ""
}

func readE2EPoints(t *testing.T) []DecodeStepPoint {
	t.Helper()
	f, err := os.Open(filepath.Join(sharedDir(t), "gpu-data", "h100_sxm", "e2e_llama3.1-8b_bf16.csv"))
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
