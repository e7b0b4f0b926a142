package profiler

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
)

// FuzzDecodeRecord feeds the measurements record reader arbitrary bytes: it never panics, refuses what
// is over its bound, and what it accepts encodes and reads back the same (a resumed search sees what
// was recorded).
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"uid":"u1","model":"Qwen/Qwen3-8B","gpu":"h200_sxm","budget":{"totalGPUs":8,"gpusPerNode":8},"candidates":[{"name":"c0","state":"measured"}]}`))
	f.Add([]byte(`{"candidates":[null,{"name":"c1","levels":[{"concurrency":4}],"measurements":[{}]}]}`))
	f.Add([]byte(`{"budget":{"deadline":"2026-01-01T00:00:00Z","estimatedWallTime":-1}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"uid":` + strings.Repeat(" ", lifecycle.MeasurementsReserve) + `"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := decodeRecord(data)
		if err != nil {
			require.Nil(t, rec)
			return
		}
		require.LessOrEqual(t, len(data), lifecycle.MeasurementsReserve)
		enc, err := json.Marshal(rec)
		require.NoError(t, err)
		back, err := decodeRecord(enc)
		if len(enc) > lifecycle.MeasurementsReserve {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		again, err := json.Marshal(back)
		require.NoError(t, err)
		require.JSONEq(t, string(enc), string(again))
	})
}
