package thorough

import (
	"context"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// SearchRequest is the rapid search for the DGDR's spec on the given hardware: the search the profiler
// runs for rapid, and plans the thorough sweep from (also at admission, for the budget warning).
func SearchRequest(d *v1alpha1.DynamoGraphDeploymentRequest, model profile.Model, gpu hw.GPU, gpusPerNode, totalGPUs int) profile.SearchRequest {
	req := profile.SearchRequest{
		Model:       model,
		GPU:         gpu,
		Workload:    specWorkload(&d.Spec),
		SLA:         profile.SLA{TTFTMs: d.Spec.TTFT(), ITLMs: d.Spec.ITL(), Confidence: d.Spec.Confidence()},
		TotalGPUs:   totalGPUs,
		GPUsPerNode: gpusPerNode,
	}
	if b := d.Spec.Backend; b != "" && b != v1alpha1.BackendAny && b != v1alpha1.BackendAuto {
		req.Backends = []string{string(b)}
	}
	return req
}

// specWorkload is the spec's workload; a distribution the search cannot read (admission refuses
// those) falls back to its medians, so that the search still says what is wrong with the rest.
func specWorkload(s *v1alpha1.DynamoGraphDeploymentRequestSpec) profile.Workload {
	w, err := profile.SpecWorkload(s)
	if err != nil {
		return profile.Workload{ISL: s.ISL(), OSL: s.OSL()}
	}
	return w
}

// estimateGuard bounds the admission-time estimate (a rapid search of a large MoE model takes seconds).
const estimateGuard = 2 * time.Second

// BudgetWarning is the admission warning of a thorough DGDR: the expected GPU-hours and wall time of its
// sweep when spec.hardware names the GPU type and budget of a catalogued model (the same plan and
// estimate the profiler makes, within estimateGuard of ctx), and in any case the ceiling the GPU budget
// and the profiling Job's deadline put on it. job is the profiling Job the webhook creates (nil: the
// default deadline).
func BudgetWarning(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest, job *batchv1.Job) string {
	deadline := time.Duration(expand.ThoroughDeadlineSeconds) * time.Second
	if job != nil && job.Spec.ActiveDeadlineSeconds != nil {
		deadline = time.Duration(*job.Spec.ActiveDeadlineSeconds) * time.Second
	}
	gpus, ceiling := "every free GPU", ""
	h := d.Spec.Hardware
	if h != nil && h.TotalGPUs != nil {
		gpus = fmt.Sprintf("%d GPUs", *h.TotalGPUs)
		ceiling = fmt.Sprintf(", at most %.0f GPU-hours", float64(*h.TotalGPUs)*deadline.Hours())
	}
	msg := fmt.Sprintf("searchStrategy thorough deploys and benchmarks candidate configurations on the cluster: up to %s for up to %s (the profiling Job's activeDeadlineSeconds)%s",
		gpus, deadline, ceiling)
	if est, ok := admissionEstimate(ctx, d, deadline-DefaultDeadlineMargin); ok {
		return fmt.Sprintf("%s; expected: %.1f GPU-hours and %s of wall time for %d candidate deployments; kubectl dgdr status %s follows it",
			msg, est.EstimatedGPUHours, strings.TrimSuffix(est.EstimatedWallTime.Round(time.Minute).String(), "0s"), len(est.Estimate), d.Name)
	}
	return fmt.Sprintf("%s; kubectl dgdr status %s shows the expected GPU-hours and wall time once the profiler has planned, before any candidate is deployed", msg, d.Name)
}

// admissionEstimate plans and estimates the sweep from spec alone, within estimateGuard.
func admissionEstimate(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest, available time.Duration) (Budget, bool) {
	h := d.Spec.Hardware
	if h == nil || h.GPUType == "" || h.TotalGPUs == nil || d.Spec.ModelCache != nil {
		return Budget{}, false
	}
	m, err := profile.LookupModel(d.Spec.Model)
	if err != nil {
		return Budget{}, false
	}
	g, err := hw.Lookup(h.GPUType)
	if err != nil {
		return Budget{}, false
	}
	perNode := g.GPUsPerNode
	if h.GPUsPerNode != nil {
		perNode = int(*h.GPUsPerNode)
	}
	ctx, cancel := context.WithTimeout(ctx, estimateGuard)
	defer cancel()
	pl := Planner{Request: SearchRequest(d, m, g, perNode, int(*h.TotalGPUs))}
	res, err := profile.Search(ctx, pl.Request)
	if err != nil {
		return Budget{}, false
	}
	rec := &Record{Candidates: Plan(pl.Request, res, pl.Settings)}
	if len(rec.Candidates) == 0 {
		return Budget{}, false
	}
	now := time.Now()
	pl.Estimate(rec, now, now.Add(available))
	return rec.Budget, true
}
