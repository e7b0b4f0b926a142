package calibstore_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/dgdr-dev/dgdr/internal/calibstore"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

var at = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func aggMeasurement(conc int, ttft, itl float64) calibstore.Measurement {
	return calibstore.Measurement{Model: "Qwen/Qwen3-32B", GPU: "h200_sxm", Source: "bench --record qwen", At: at,
		Config: profile.Config{Backend: "vllm", Mode: profile.ModeAgg, Replicas: 2,
			Workers: []profile.Worker{{Role: profile.RoleAgg, Count: 1, TP: 2, PP: 1, DP: 1, EP: 1, Batch: 64}}},
		ISL: 4000, OSL: 500, Concurrency: conc, TTFTMs: ttft, ITLMs: itl}
}

// csvOf writes measurements as the store does (Columns, then their records).
func csvOf(t *testing.T, ms ...calibstore.Measurement) string {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	require.NoError(t, w.Write(calibstore.Columns))
	for _, m := range ms {
		require.NoError(t, w.Write(m.Record()))
	}
	w.Flush()
	return b.String()
}

// A stored measurement reads back as the configuration that was measured.
func TestRecordRoundTrip(t *testing.T) {
	disagg := calibstore.Measurement{Model: "Qwen/Qwen3-32B", GPU: "h100_sxm", At: at, Concurrency: 32, TTFTMs: 300, ITLMs: 20, ISL: 1000, OSL: 200,
		Config: profile.Config{Backend: "sglang", Mode: profile.ModeDisagg, Replicas: 1, Workers: []profile.Worker{
			{Role: profile.RolePrefill, Count: 2, TP: 2, PP: 1, DP: 1, EP: 1, Batch: 1},
			{Role: profile.RoleDecode, Count: 1, TP: 4, PP: 1, DP: 1, EP: 1, Batch: 128}}}}
	tests := []struct {
		name    string
		m       calibstore.Measurement
		workers []profile.Worker
	}{
		{"agg, two replicas", aggMeasurement(16, 250, 12), []profile.Worker{{Role: profile.RoleAgg, Count: 2, TP: 2, PP: 1, DP: 1, EP: 1, Batch: 64}}},
		{"disagg", disagg, disagg.Config.Workers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := calibstore.Parse(map[string]string{calibstore.KeyRows: csvOf(t, tt.m)}, profile.LookupModel)
			require.NoError(t, err)
			require.Len(t, s.Rows, 1)
			r := s.Rows[0]
			require.NoError(t, r.Err)
			assert.Equal(t, tt.m.Config.Mode, r.Config.Mode)
			assert.Equal(t, tt.workers, r.Config.Workers)
			assert.Equal(t, tt.m.Concurrency, r.Concurrency)
			assert.Equal(t, tt.m.TTFTMs, r.MeasuredTTFTMs)
			assert.Equal(t, tt.m.ITLMs, r.MeasuredITLMs)
			assert.Equal(t, tt.m.GPU, r.Target.GPU.Name)
			assert.Equal(t, tt.m.Source, r.Fields["source"])
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		data map[string]string
		err  string
	}{
		{"empty", map[string]string{}, ""},
		{"bad csv", map[string]string{calibstore.KeyRows: "a,b\n\"x"}, "key rows.csv"},
		{"bad fit", map[string]string{calibstore.KeyFit: "{"}, "key fit.json"},
		{"zero factor", map[string]string{calibstore.KeyFit: `{"corrections":[{"arch":"L1-H1-E0","ttft":0,"itl":1}]}`}, "positive factors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := calibstore.Parse(tt.data, profile.LookupModel)
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.err)
		})
	}
}

// The refit on a deployment that runs 1.5× slower than predicted moves the predictions toward the
// measurements, shrunk toward the shipped fit (n/(n+1) of the log ratio).
func TestRefit(t *testing.T) {
	base, err := profile.EmbeddedCalibration()
	require.NoError(t, err)
	var ms []calibstore.Measurement
	for _, conc := range []int{1, 4, 16, 64} {
		m := aggMeasurement(conc, 1, 1)
		s, err := calibstore.Parse(map[string]string{calibstore.KeyRows: csvOf(t, m)}, profile.LookupModel)
		require.NoError(t, err)
		p, err := profile.NewPredictor(s.Rows[0].Target)
		require.NoError(t, err)
		pred, err := p.PredictRow(&s.Rows[0])
		require.NoError(t, err)
		m.TTFTMs, m.ITLMs = 1.5*pred.TTFTMs, 1.5*pred.ITLMs
		ms = append(ms, m)
	}
	s, err := calibstore.Parse(map[string]string{calibstore.KeyRows: csvOf(t, ms...)}, profile.LookupModel)
	require.NoError(t, err)
	s.Namespace = "team-a"
	f, err := s.Refit(base, at)
	require.NoError(t, err)
	assert.Equal(t, 4, f.Rows)
	assert.Contains(t, f.Method, "team-a/dgdr-calibration: 4 measured rows")
	assert.InDelta(t, 1.0/3, f.Before.ITL, 0.01, "1.5× slower: predictions a third low")
	assert.Less(t, f.After.ITL, 0.1)
	require.NotEmpty(t, f.Corrections)
	assert.InDelta(t, 1.5, f.Corrections[0].ITL, 0.2)

	_, err = (&calibstore.Store{}).Refit(base, at)
	require.ErrorIs(t, err, calibstore.ErrEmpty)
}

// Through the real API server: append creates the store, keeps it bounded, rewrites an older header,
// and the fit is stored beside the rows.
func TestStoreInCluster(t *testing.T) {
	env := testenv.Start(t, testenv.Options{WithoutDynamoCRD: true})
	ctx := t.Context()
	ns := "team-a"
	require.NoError(t, env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))

	s, err := calibstore.Load(ctx, env.Client, ns)
	require.NoError(t, err)
	assert.Empty(t, s.Rows)

	require.NoError(t, calibstore.Append(ctx, env.Client, ns, []calibstore.Measurement{aggMeasurement(1, 100, 10)}))
	var many []calibstore.Measurement
	for i := range calibstore.MaxRows {
		many = append(many, aggMeasurement(2+i, 100, 10))
	}
	require.NoError(t, calibstore.Append(ctx, env.Client, ns, many))
	s, err = calibstore.Load(ctx, env.Client, ns)
	require.NoError(t, err)
	require.Len(t, s.Rows, calibstore.MaxRows, "bounded")
	assert.Equal(t, 2, s.Rows[0].Concurrency, "the oldest row went first")

	// A store written under another column order is rewritten under Columns.
	var cm corev1.ConfigMap
	require.NoError(t, env.Client.Get(ctx, keyOf(ns), &cm))
	cm.Data[calibstore.KeyRows] = "concurrency,model_path,system,backend,mode,isl,osl,tp_size,silicon_ttft_ms,silicon_tpot_ms\n7,Qwen/Qwen3-32B,h200_sxm,vllm,agg,4000,500,2,90,9\n"
	require.NoError(t, env.Client.Update(ctx, &cm))
	require.NoError(t, calibstore.Append(ctx, env.Client, ns, []calibstore.Measurement{aggMeasurement(8, 100, 10)}))
	s, err = calibstore.Load(ctx, env.Client, ns)
	require.NoError(t, err)
	require.Len(t, s.Rows, 2)
	assert.Equal(t, calibstore.Columns, s.Header)
	assert.Equal(t, []int{7, 8}, []int{s.Rows[0].Concurrency, s.Rows[1].Concurrency})

	base, err := profile.EmbeddedCalibration()
	require.NoError(t, err)
	f, err := s.Refit(base, at)
	require.NoError(t, err)
	require.NoError(t, calibstore.SaveFit(ctx, env.Client, ns, f))
	s, err = calibstore.Load(ctx, env.Client, ns)
	require.NoError(t, err)
	require.NotNil(t, s.Fit)
	assert.Equal(t, f.Corrections, s.Fit.Corrections)
	assert.Len(t, s.Rows, 2, "saving the fit keeps the rows")
}

func keyOf(ns string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: calibstore.Name}
}

// The store's reader takes whatever a user (or a broken writer) left in the ConfigMap: it errors or
// parses, never panics, and what parses has as many rows as records.
func FuzzParse(f *testing.F) {
	f.Add("model_path,system,backend,mode,isl,osl,concurrency,silicon_ttft_ms,silicon_tpot_ms\nQwen/Qwen3-32B,h200_sxm,vllm,agg,100,10,4,50,5\n", `{"corrections":[{"arch":"L64-H5120-E0","ttft":1.2,"itl":0.9,"rows":3}]}`)
	f.Add("a\n\"", "{")
	f.Add("", "")
	f.Add(strings.Join(calibstore.Columns, ",")+"\n,,,,,,,,,,,,,,,,,,,,,,,,,,,,,\n", "null")
	f.Fuzz(func(t *testing.T, rows, fit string) {
		s, err := calibstore.Parse(map[string]string{calibstore.KeyRows: rows, calibstore.KeyFit: fit}, profile.LookupModel)
		if err != nil {
			assert.True(t, strings.HasPrefix(err.Error(), "configmap "+calibstore.Name), "%v", err)
			return
		}
		assert.Len(t, s.Rows, len(s.Records), fmt.Sprintf("%q", rows))
		if s.Fit != nil {
			for _, c := range s.Fit.Corrections {
				assert.Positive(t, c.TTFT)
			}
		}
	})
}

func TestReadCSV(t *testing.T) {
	const header = "model_path,system,backend,mode,isl,osl,concurrency,tp_size,batch_size,silicon_ttft_ms,silicon_tpot_ms,source\n"
	const row = "Qwen/Qwen3-32B,h200_sxm,vllm,agg,1024,128,8,2,8,250,30,"
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, csv, err string
	}{
		{"two rows", header + row + "\n" + row + "lab\n", ""},
		{"header only", header, "no rows after the header"},
		{"unknown model", header + row + "\nnope/model,h200_sxm,vllm,agg,1024,128,8,2,8,250,30,\n", "line 3: "},
		{"unknown gpu", header + "Qwen/Qwen3-32B,z100,vllm,agg,1024,128,8,2,8,250,30,\n", "line 2: "},
		{"no measurement", header + "Qwen/Qwen3-32B,h200_sxm,vllm,agg,1024,128,8,2,8,,30,\n", "line 2: silicon_ttft_ms and silicon_tpot_ms must be positive"},
		{"bad number", header + "Qwen/Qwen3-32B,h200_sxm,vllm,agg,1024,128,8,two,8,250,30,\n", "line 2: column tp_size"},
		{"bad mode", header + "Qwen/Qwen3-32B,h200_sxm,vllm,both,1024,128,8,2,8,250,30,\n", "line 2: column mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, rows, err := calibstore.ReadCSV(strings.NewReader(tt.csv), profile.LookupModel, "calibrate --add x.csv", at)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				assert.Nil(t, recs)
				return
			}
			require.NoError(t, err)
			require.Len(t, recs, 2)
			require.Len(t, rows, 2)
			src, when := slices.Index(calibstore.Columns, "source"), slices.Index(calibstore.Columns, "recorded_at")
			assert.Equal(t, "calibrate --add x.csv", recs[0][src], "an empty source is filled")
			assert.Equal(t, "lab", recs[1][src], "a given source is kept")
			assert.Equal(t, "2026-12-04T12:00:00Z", recs[0][when])
			assert.Equal(t, "2", recs[0][slices.Index(calibstore.Columns, "tp_size")])
			assert.InDelta(t, 30, rows[0].MeasuredITLMs, 1e-9)
		})
	}
}

// Whatever the file, ReadCSV refuses it or returns as many records under Columns as measured rows.
func FuzzReadCSV(f *testing.F) {
	f.Add("model_path,system,backend,mode,isl,osl,concurrency,silicon_ttft_ms,silicon_tpot_ms\nQwen/Qwen3-32B,h200_sxm,vllm,agg,100,10,4,50,5\n")
	f.Add("a\n\"")
	f.Add("")
	f.Add(strings.Join(calibstore.Columns, ",") + "\n,,,,,,,,,,,,,,,,,,,,,,,,,,,,,\n")
	f.Fuzz(func(t *testing.T, in string) {
		recs, rows, err := calibstore.ReadCSV(strings.NewReader(in), profile.LookupModel, "fuzz", time.Unix(0, 0))
		if err != nil {
			assert.Nil(t, recs)
			return
		}
		require.Len(t, recs, len(rows))
		for i, r := range recs {
			assert.Len(t, r, len(calibstore.Columns))
			assert.NoError(t, rows[i].Err)
			assert.Positive(t, rows[i].MeasuredTTFTMs)
			assert.Positive(t, rows[i].MeasuredITLMs)
		}
	})
}
