package profile_test

import (
	"testing"

	"github.com/dgdr-dev/dgdr/pkg/dist"
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

// BenchmarkSearchDistribution is BenchmarkSearch with heavy-tailed input and output lengths given as
// percentiles: every candidate is predicted at three mass slices and the SLA quantile's prompt.
func BenchmarkSearchDistribution(b *testing.B) {
	req := searchReq(b, "Qwen/Qwen3-32B", "h200_sxm", 32)
	isl, err := dist.FromPercentiles([]float64{50, 90, 99}, []float64{512, 4096, 16384})
	if err != nil {
		b.Fatal(err)
	}
	osl, err := dist.FromPercentiles([]float64{50, 90, 99}, []float64{128, 512, 2048})
	if err != nil {
		b.Fatal(err)
	}
	req.Workload = profile.Workload{ISLDist: isl, OSLDist: osl}
	for b.Loop() {
		if _, err := profile.Search(b.Context(), req); err != nil {
			b.Fatal(err)
		}
	}
}
