package webhook

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// FuzzDefaultAndValidate feeds arbitrary names and specs through what admission does without a cluster:
// nothing panics, Default is idempotent, defaulting never makes a valid request invalid, and every request
// that passes validation expands to a Job the API server can take.
func FuzzDefaultAndValidate(f *testing.F) {
	for _, seed := range []struct{ name, spec string }{
		{"quick-start", `{"model":"Qwen/Qwen3-32B","backend":"any","autoApply":true}`},
		{"sla", `{"model":"Qwen/Qwen3-32B","backend":"trtllm","workload":{"isl":2048,"osl":512},"sla":{"ttft":150,"itl":20}}`},
		{"alias", `{"model":"m","backend":"auto","searchStrategy":"thorough","hardware":{"gpuType":"H100_SXM","gpusPerNode":8}}`},
		{"cache", `{"model":"deepseek-r1","modelCache":{"pvcName":"c","pvcPath":"a/b"}}`},
		{"overrides", `{"model":"m","overrides":{"profilingJob":{"backoffLimit":0,"template":{"spec":{"containers":[{"name":"profiler","env":[{"name":"A","value":"b"}]}]}}},"dgd":{"spec":{"components":[{"name":"Frontend"}]}}}}`},
		{"bad", `{"model":"","workload":{"isl":-1},"sla":{"ttft":"NaN"},"overrides":{"profilingJob":{"template":{"spec":{"containers":"x"}}}}}`},
		{"Upper_Case", `{"model":"m"}`},
		{"x.y", `{"model":"m","workload":{}}`},
	} {
		f.Add(seed.name, []byte(seed.spec))
	}
	h := &Handler{DefaultImage: DefaultImage, ProfilerImage: testProfilerImage}
	f.Fuzz(func(t *testing.T, name string, spec []byte) {
		d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
		if json.Unmarshal(spec, &d.Spec) != nil {
			return
		}
		before := h.staticErrors(d.DeepCopy())

		d.Default(DefaultImage)
		once := d.DeepCopy()
		d.Default(DefaultImage)
		require.True(t, equality.Semantic.DeepEqual(once, d), "Default is idempotent")

		after := h.staticErrors(d)
		if len(before) == 0 {
			require.Empty(t, after, "defaults are valid")
		}
		if len(after) > 0 {
			return
		}
		job, err := expand.ProfilingJob(d, expand.JobOptions{ProfilerImage: testProfilerImage})
		require.NoError(t, err)
		require.Empty(t, validation.IsDNS1123Subdomain(job.Name), job.Name)
		require.LessOrEqual(t, len(job.Name), validation.DNS1123LabelMaxLength)
		require.Empty(t, validation.IsValidLabelValue(job.Labels[v1alpha1.LabelDGDRName]))
	})
}

// FuzzOverridesDGDGenerates: whatever spec.overrides.dgd validation admits (it trial-generates with
// representative configurations) generates a DGD for any configuration the search can pick: agg or disagg,
// one node or many, with or without the Planner. Seeds: testdata/fuzz/FuzzOverridesDGDGenerates.
func FuzzOverridesDGDGenerates(f *testing.F) {
	for _, s := range []string{
		`{"spec":{"components":[{"name":"Frontend","replicas":2}]}}`,
		`{"metadata":{"name":"serving"},"spec":{"components":[{"name":"decode","extraPodSpec":{"mainContainer":{"image":"x"}}}]}}`,
		`{"metadata":{"name":"a-rather-long-deployment-name-x"}}`,
		`{"apiVersion":"nvidia.com/v1alpha1","spec":{"services":{"Frontend":{}}}}`,
		`{"metadata":{"labels":{"team":"a"},"annotations":{"x":"y"}}}`,
		`{"spec":{"envs":[{"name":"A","value":"b"}]}}`,
	} {
		f.Add([]byte(s), uint8(1), false, false)
		f.Add([]byte(s), uint8(32), true, true)
	}
	h := &Handler{DefaultImage: DefaultImage, ProfilerImage: testProfilerImage}
	f.Fuzz(func(t *testing.T, raw []byte, tp uint8, disagg, autoscale bool) {
		d := &v1alpha1.DynamoGraphDeploymentRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "fuzz-dgdr", Namespace: "ns"},
			Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-0.6B", EnableAutoScaling: autoscale,
				Overrides: &v1alpha1.Overrides{DGD: &runtime.RawExtension{Raw: raw}}},
		}
		d.Default(DefaultImage)
		if len(h.staticErrors(d)) > 0 {
			return
		}
		w := func(role profile.Role) profile.Worker {
			return profile.Worker{Role: role, Count: 1, TP: max(1, int(tp)%65), PP: 1, EP: 1, DP: 1, Batch: 32}
		}
		cfg := profile.Config{Backend: "sglang", Mode: profile.ModeAgg, Replicas: 1, Workers: []profile.Worker{w(profile.RoleAgg)}}
		if disagg {
			cfg = profile.Config{Backend: "trtllm", Mode: profile.ModeDisagg, Replicas: 1, Workers: []profile.Worker{w(profile.RolePrefill), w(profile.RoleDecode)}}
		}
		_, err := expand.GenerateDGD(d, cfg, expand.DGDOptions{GPUsPerNode: 8})
		require.NoError(t, err, "admitted overrides.dgd %s must generate", raw)
	})
}
