package profile_test

import (
	"testing"

	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// BenchmarkSearch is the whole rapid search of the issue: Qwen/Qwen3-32B on 32 H200s, every backend,
// agg and disagg, the design's workload and SLA. AIC's equivalent `cli default` takes about 6.5 s.
func BenchmarkSearch(b *testing.B) {
	bench(b, "Qwen/Qwen3-32B", "h200_sxm", 32)
}

// BenchmarkSearchMoE is the same for a MoE model, whose attention-DP and EP layouts widen the space.
func BenchmarkSearchMoE(b *testing.B) {
	bench(b, "Qwen/Qwen3-30B-A3B", "h200_sxm", 32)
}

func bench(b *testing.B, model, gpu string, total int) {
	req := searchReq(b, model, gpu, total)
	var res profile.SearchResult
	for b.Loop() {
		var err error
		if res, err = profile.Search(b.Context(), req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(res.Predicted), "predicted/op")
	b.ReportMetric(float64(res.Probes), "probes/op")
}
