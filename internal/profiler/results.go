package profiler

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/thorough"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// maxStoredPareto bounds status.profilingResults.pareto (the CRD allows 64); the ConfigMap has everything.
const maxStoredPareto = 64

// searchRequest is the rapid search for the DGDR on the plan's hardware (the planner's, which the
// webhook's budget warning shares).
func searchRequest(d *v1alpha1.DynamoGraphDeploymentRequest, p *plan) profile.SearchRequest {
	return thorough.SearchRequest(d, p.model, p.gpu, p.gpusPerNode, p.totalGPUs)
}

// generated is the DGD made from the selected configuration.
type generated struct {
	name string
	raw  []byte
}

func generateDGD(d *v1alpha1.DynamoGraphDeploymentRequest, c profile.Config, p *plan) (generated, error) {
	u, err := expand.GenerateDGD(d, c, expand.DGDOptions{GPUsPerNode: p.gpusPerNode})
	if err != nil {
		return generated{}, err
	}
	raw, err := json.Marshal(u.Object)
	if err != nil {
		return generated{}, fmt.Errorf("encoding the DGD: %w", err)
	}
	return generated{name: u.GetName(), raw: raw}, nil
}

func decodeDGD(raw *runtime.RawExtension) (*unstructured.Unstructured, error) {
	if raw == nil || len(raw.Raw) == 0 {
		return nil, fmt.Errorf("status.profilingResults.selectedConfig.dgd is empty")
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw.Raw); err != nil {
		return nil, fmt.Errorf("decoding the stored DGD: %w", err)
	}
	return u, nil
}

// storedResults converts the search's front and selection into status form. The selected configuration's
// Index points into the stored front (−1 when the closest miss is not on it).
func storedResults(res profile.SearchResult, sel profile.Config) ([]v1alpha1.ParetoPoint, *v1alpha1.SelectedConfig) {
	front := res.Pareto()
	onFront := res.SelectedOnFront()
	if len(front) > maxStoredPareto {
		front, onFront = thin(front, onFront, maxStoredPareto)
	}
	points := make([]v1alpha1.ParetoPoint, len(front))
	for i, c := range front {
		points[i] = expand.ParetoPoint(c)
	}
	return points, &v1alpha1.SelectedConfig{
		ParetoPoint: expand.ParetoPoint(sel),
		Index:       int32(onFront),
		Reason:      res.Explanation,
	}
}

// thin keeps n evenly spaced points of a long front, always including the selected one.
func thin(front []profile.Config, selected, n int) ([]profile.Config, int) {
	out := make([]profile.Config, 0, n)
	newSel := -1
	for i := range n {
		j := i * (len(front) - 1) / (n - 1)
		if selected >= 0 && newSel < 0 && j >= selected {
			j, newSel = selected, len(out)
		}
		out = append(out, front[j])
	}
	return out, newSel
}

// writeConfigMap stores the report with every costed candidate and the plot in <name>-profiling, and
// returns its name. Server-side apply makes a re-run overwrite rather than duplicate.
func (r *run) writeConfigMap(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest, req *profile.SearchRequest, res profile.SearchResult) (string, error) {
	cm, err := resultsConfigMap(d, req, res)
	if err != nil {
		return "", err
	}
	// Which run's results these are: the next run copies them to <name>-profiling-g<gen> (KeepRunResults).
	cm.Annotations = map[string]string{v1alpha1.AnnotationGeneration: strconv.FormatInt(r.ref.Generation, 10)}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cm)
	if err != nil {
		return "", fmt.Errorf("encoding ConfigMap %s: %w", cm.Name, err)
	}
	u := &unstructured.Unstructured{Object: obj}
	if err := lifecycle.RetryTransient(ctx, func() error {
		return r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), client.FieldOwner(v1alpha1.FieldManager), client.ForceOwnership)
	}); err != nil {
		return "", fmt.Errorf("writing ConfigMap %s: %w", cm.Name, err)
	}
	return cm.Name, nil
}

// resultsConfigMap is <name>-profiling: the report with every costed candidate the size bound allows,
// and the plot.
func resultsConfigMap(d *v1alpha1.DynamoGraphDeploymentRequest, req *profile.SearchRequest, res profile.SearchResult) (*corev1.ConfigMap, error) {
	report := profile.NewReport(req, &res, true)
	var all []profile.Config
	for _, c := range report.Candidates {
		all = append(all, c.Config)
	}
	var sel *profile.Config
	if c, ok := res.SelectedConfig(); ok {
		sel = &c
	}
	title := fmt.Sprintf("%s: %s ISL %d OSL %d", d.Name, d.Spec.Model, d.Spec.ISL(), d.Spec.OSL())
	return lifecycle.ResultsConfigMap(d, &report, plotSVG(title, all, res.Pareto(), sel))
}
