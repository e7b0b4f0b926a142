package profiler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// plan is what the Pending phase learned: the model, the GPUs and the budget.
type plan struct {
	model       profile.Model
	gpu         hw.GPU
	gpusPerNode int
	totalGPUs   int
	// hardware says where the GPU figures came from, for the Validated condition.
	hardware string
}

// pending re-validates the spec, resolves the model, discovers the GPUs and checks the prerequisites.
func (r *run) pending(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) (*plan, error) {
	// The run was recorded Pending by walk (StartRun); a retry of a run that got further validates again
	// without moving the phase back.
	// The webhook defaulted and validated the spec; the profiler works from the defaulted values too, so a
	// DGDR stored while the webhook was bypassed behaves the same.
	spec := d.DeepCopy()
	spec.Default("")
	if errs := v1alpha1.ValidateSpec(&spec.Spec); len(errs) > 0 {
		return nil, specError(v1alpha1.ConditionValidated, v1alpha1.ReasonInvalidSpec, "%s; delete and recreate the DGDR with a corrected spec", errs.ToAggregate().Error())
	}

	p := &plan{}
	var err error
	if r.ModelPath != "" {
		p.model, err = profile.LoadConfigDir(r.ModelPath)
		if err == nil {
			p.model.ID = d.Spec.Model
		}
	} else {
		p.model, err = profile.LookupModel(d.Spec.Model)
	}
	if err != nil {
		return nil, specError(v1alpha1.ConditionValidated, v1alpha1.ReasonUnknownModel,
			"model %q: %v; set spec.modelCache so the profiler can read the model's config.json", d.Spec.Model, err)
	}

	if err := r.discoverHardware(ctx, d, p); err != nil {
		return nil, err
	}

	installed, err := r.dgdCRDInstalled(ctx)
	if err != nil {
		return nil, err
	}
	note := ""
	if !installed {
		if d.Spec.AutoApply {
			return nil, specError(v1alpha1.ConditionValidated, v1alpha1.ReasonDynamoNotInstalled,
				"autoApply is set but the DynamoGraphDeployment CRD is not installed; install the Dynamo operator, then delete and recreate the DGDR")
		}
		note = "; the DynamoGraphDeployment CRD is not installed yet: install the Dynamo operator before promoting"
	}

	_, err = lifecycle.RecordCondition(ctx, r.Client, r.ref, metav1.Condition{
		Type: v1alpha1.ConditionValidated, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonValidated,
		Message: fmt.Sprintf("model %s (%s, %.1fB parameters); %s%s", p.model.ID, p.model.Arch, p.model.Params()/1e9, p.hardware, note),
	}, nil)
	return p, err
}

// discoverHardware fills the GPU, node size and budget from spec.hardware, then from the Nodes' labels.
func (r *run) discoverHardware(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest, p *plan) error {
	nodes, err := r.listNodes(ctx)
	if err != nil {
		return err
	}
	pods, err := r.listPods(ctx)
	if err != nil {
		return err
	}
	disc := hw.Discover(nodes, pods)
	h := d.Spec.Hardware
	if h == nil {
		h = &v1alpha1.Hardware{}
	}

	var found hw.GPUType
	var ok bool
	if h.GPUType != "" {
		p.gpu, err = hw.Lookup(h.GPUType)
		if err != nil {
			return specError(v1alpha1.ConditionValidated, v1alpha1.ReasonUnknownGPU, "spec.hardware.gpuType: %v", err)
		}
		found, ok = disc.Find(h.GPUType)
		p.hardware = "GPU " + p.gpu.Name + " from spec.hardware"
	} else {
		found, ok = disc.Best()
		if !ok {
			var unknown []string
			for _, t := range disc.Types {
				unknown = append(unknown, fmt.Sprintf("%q", t.Product))
			}
			if len(unknown) > 0 {
				return specError(v1alpha1.ConditionValidated, v1alpha1.ReasonUnknownGPU,
					"the cluster's GPUs (%s) are not in dgdr's catalog; set spec.hardware.gpuType to one of %s", strings.Join(unknown, ", "), strings.Join(hw.Names(), ", "))
			}
			skipped := ""
			for _, s := range disc.Skipped {
				skipped += fmt.Sprintf("; GPU node %s left out: %s", s.Name, s.Reason)
			}
			return specError(v1alpha1.ConditionValidated, v1alpha1.ReasonNoGPUs,
				"no schedulable GPU nodes found (nvidia.com/gpu.product labels or nvidia.com/gpu allocatable)%s; set spec.hardware.gpuType, gpusPerNode and totalGpus", skipped)
		}
		p.gpu = *found.Spec
		p.hardware = fmt.Sprintf("GPU %s discovered on %d node(s)", p.gpu.Name, found.Nodes)
	}

	switch {
	case h.GPUsPerNode != nil:
		p.gpusPerNode = int(*h.GPUsPerNode)
	case ok && found.GPUsPerNode > 0:
		p.gpusPerNode = found.GPUsPerNode
	default:
		p.gpusPerNode = p.gpu.GPUsPerNode
	}
	switch {
	case h.TotalGPUs != nil:
		p.totalGPUs = int(*h.TotalGPUs)
	case ok && found.FreeGPUs > 0:
		p.totalGPUs = found.FreeGPUs
	case ok:
		return specError(v1alpha1.ConditionValidated, v1alpha1.ReasonNoFreeGPUs,
			"all %d %s GPUs are in use; free some, or set spec.hardware.totalGpus to plan for a budget anyway", found.TotalGPUs, p.gpu.Name)
	default:
		return specError(v1alpha1.ConditionValidated, v1alpha1.ReasonNoGPUBudget,
			"spec.hardware.gpuType %s is not on any schedulable node; set spec.hardware.totalGpus to plan for it anyway", p.gpu.Name)
	}
	p.hardware += fmt.Sprintf(", %d per node, budget %d GPUs", p.gpusPerNode, p.totalGPUs)
	return nil
}

// profile runs the search and records the results: status, the <name>-profiling ConfigMap and the DGD
// generated from the selected configuration.
func (r *run) profile(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest, p *plan) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	start := metav1.NewTime(r.Now())
	if _, err := lifecycle.MarkProfiling(ctx, r.Client, r.ref, start, fmt.Sprintf("%s search running", d.Spec.SearchStrategy)); err != nil {
		return nil, err
	}
	if err := r.AfterPhase(v1alpha1.PhaseProfiling); err != nil {
		return nil, err
	}
	if d.Spec.SearchStrategy == v1alpha1.SearchThorough {
		return r.thorough(ctx, d, p)
	}

	req := searchRequest(d, p)
	calNote := r.useCalibration(ctx, d, &req)
	res, err := profile.Search(ctx, req)
	if err != nil {
		return nil, specError(v1alpha1.ConditionProfilingComplete, v1alpha1.ReasonSearchFailed, "%v", err)
	}
	sel, ok := res.SelectedConfig()
	if !ok {
		return nil, specError(v1alpha1.ConditionProfilingComplete, v1alpha1.ReasonNoConfiguration,
			"%s; raise spec.hardware.totalGpus or choose a GPU with more memory", res.Explanation)
	}
	dgd, err := generateDGD(d, sel, p)
	if err != nil {
		return nil, specError(v1alpha1.ConditionDGDGenerated, v1alpha1.ReasonGenerationFailed, "%v", err)
	}
	cm, err := r.writeConfigMap(ctx, d, &req, res)
	if err != nil {
		return nil, err
	}

	done := metav1.NewTime(r.Now())
	results := &v1alpha1.ProfilingResults{StartTime: &start, CompletionTime: &done}
	results.Pareto, results.SelectedConfig = storedResults(res, sel)
	results.SelectedConfig.DGD = &runtime.RawExtension{Raw: dgd.raw}
	return lifecycle.MarkReady(ctx, r.Client, r.ref, lifecycle.Profiled{
		Results: results, DGDName: dgd.name, MeetsSLA: sel.MeetsSLA, ResultsConfigMap: cm,
		Message: fmt.Sprintf("rapid search evaluated %d configurations in %s: %s%s", len(res.Candidates), done.Sub(start.Time).Round(time.Millisecond), res.Explanation, calNote),
	})
}

// deploy applies the selected DGD when autoApply is set, then waits for it to become ready.
func (r *run) deploy(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) error {
	if !d.Spec.AutoApply {
		return nil
	}
	sel := d.Status.ProfilingResults.SelectedConfig
	if !sel.MeetsSLA {
		// Deploying something that misses the SLA would surprise the user: they decide with promote.
		_, err := lifecycle.RecordCondition(ctx, r.Client, r.ref, metav1.Condition{
			Type: v1alpha1.ConditionDeploymentReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonSLANotMet,
			Message: fmt.Sprintf("not deployed automatically because no configuration meets the SLA (%s); run kubectl dgdr promote %s to deploy the closest one anyway", sel.Reason, d.Name),
		}, nil)
		return err
	}
	if d.Status.Phase != v1alpha1.PhaseDeploying {
		dgd, err := decodeDGD(sel.DGD)
		if err != nil {
			return specError(v1alpha1.ConditionDeploymentReady, v1alpha1.ReasonBadDGD, "the stored DGD cannot be read: %v", err)
		}
		// The same path as promote: owner checks, transient errors retried; a spec error fails the DGDR.
		applied, err := lifecycle.ApplySelected(ctx, r.Client, d, dgd, lifecycle.SelectedOptions{})
		var oe *lifecycle.OwnerError
		switch {
		case errors.As(err, &oe) && oe.Edited:
			// The DGD is ours but edited by hand: keep the edits, the DGDR stays Ready with the new pick.
			_, err := lifecycle.RecordCondition(ctx, r.Client, r.ref, metav1.Condition{
				Type: v1alpha1.ConditionDeploymentReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonDGDEdited,
				Message: fmt.Sprintf("%v: not updated in place, the edited DGD keeps serving; kubectl dgdr promote %s --force overwrites it with this run's configuration", err, d.Name),
			}, nil)
			return err
		case lifecycle.IsOwnerError(err):
			return specError(v1alpha1.ConditionDeploymentReady, v1alpha1.ReasonNotOwned,
				"%v: not overwritten; set another name in spec.overrides.dgd, or run kubectl dgdr promote %s --force to take it over", err, d.Name)
		case err != nil && (lifecycle.IsTransient(err) || applied != nil):
			return err // the Job retries; ApplySelected already retried for a while
		case err != nil:
			return specError(v1alpha1.ConditionDeploymentReady, v1alpha1.ReasonApplyFailed, "%v", err)
		}
		d = applied.DGDR
		if err := r.AfterPhase(v1alpha1.PhaseDeploying); err != nil {
			return err
		}
	}
	return r.waitDeployed(ctx, d)
}

// waitDeployed records the DGD's state (lifecycle.RecordDGDState, as the plugin does) until it is ready
// or DeployWait has passed; `kubectl dgdr status` finishes the move to Deployed after that.
func (r *run) waitDeployed(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) error {
	deadline := r.Now().Add(r.DeployWait)
	name := d.Status.DGDName
	for {
		st, err := lifecycle.GetDGDState(ctx, r.Client, d.Namespace, name)
		if err != nil {
			return err
		}
		if d, _, err = lifecycle.RecordDGDState(ctx, r.Client, d, st); err != nil {
			return err
		}
		if st.Ready {
			return nil
		}
		if !r.Now().Before(deadline) {
			r.Log.Info("the DGD is not ready yet; kubectl dgdr status finishes the move to Deployed", "dgd", name, "state", st.Message)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.PollInterval):
		}
	}
}
