package profile

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkPredict measures one prediction of a typical search candidate (the search makes thousands).
func BenchmarkPredict(b *testing.B) {
	for _, tc := range []struct {
		name  string
		id    string
		gpu   string
		cfg   Config
		dtype string
	}{
		{"dense-agg", "Qwen/Qwen3-32B", "h200_sxm", aggConfig(2, 64), "fp8"},
		{"moe-disagg", "Qwen/Qwen3-235B-A22B", "b200_sxm", Config{Mode: ModeDisagg, Replicas: 1, Workers: []Worker{
			{Role: RolePrefill, Count: 2, TP: 4, EP: 4, Batch: 1}, {Role: RoleDecode, Count: 1, TP: 8, EP: 8, Batch: 128}}}, "fp8"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m, err := LookupModel(tc.id)
			require.NoError(b, err)
			g := gpuB(b, tc.gpu)
			p, err := NewPredictor(Target{Model: m, GPU: g, Backend: BackendSGLang, WeightDtype: tc.dtype, Workload: Workload{ISL: 4096, OSL: 1024}})
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Predict(tc.cfg, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
