package expand

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// The package's -update flag (rewrite golden files) may be declared by another test file of the package;
// package-level variables initialise before init functions, so this registers it only when nobody did.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata/")
	}
}

func updateGolden() bool {
	v, _ := flag.Lookup("update").Value.(flag.Getter).Get().(bool)
	return v
}

const dgdGoldenDir = "testdata/dgd"

// dgdTestImage is what the webhook defaults spec.image to on a Dynamo cluster.
const dgdTestImage = "nvcr.io/nvidia/ai-dynamo/dynamo-planner:1.3.0"

func dgdTestDGDR(name, model, backend string, mutate ...func(*v1alpha1.DynamoGraphDeploymentRequest)) *v1alpha1.DynamoGraphDeploymentRequest {
	d := &v1alpha1.DynamoGraphDeploymentRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "inference"},
		Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{
			Model:   model,
			Backend: v1alpha1.Backend(backend),
		},
	}
	d.Default(dgdTestImage)
	for _, m := range mutate {
		m(d)
	}
	return d
}

func planner(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.EnableAutoScaling = true }

// Configurations shaped like the recipes' topologies for each backend.
var (
	dgdQwenAgg = profile.Config{Backend: "vllm", Mode: profile.ModeAgg, Replicas: 4,
		Workers: []profile.Worker{{Role: profile.RoleAgg, Count: 2, TP: 2, PP: 1, EP: 1, DP: 1, Batch: 128}}}
	dgdQwenDisagg = profile.Config{Backend: "vllm", Mode: profile.ModeDisagg, Replicas: 2,
		Workers: []profile.Worker{
			{Role: profile.RolePrefill, Count: 3, TP: 2, PP: 1, EP: 1, DP: 1, Batch: 8},
			{Role: profile.RoleDecode, Count: 1, TP: 2, PP: 1, EP: 1, DP: 1, Batch: 256},
		}}
	dgdDeepSeekSGLangAgg = profile.Config{Backend: "sglang", Mode: profile.ModeAgg, Replicas: 1,
		Workers: []profile.Worker{{Role: profile.RoleAgg, Count: 1, TP: 8, PP: 1, EP: 8, DP: 1, Batch: 256}}}
	dgdDeepSeekSGLangDisagg = profile.Config{Backend: "sglang", Mode: profile.ModeDisagg, Replicas: 1, KVDtype: "fp8",
		Workers: []profile.Worker{
			{Role: profile.RolePrefill, Count: 1, TP: 8, PP: 1, EP: 8, DP: 1, Batch: 16},
			{Role: profile.RoleDecode, Count: 1, TP: 1, PP: 1, EP: 8, DP: 8, Batch: 512},
		}}
	dgdGPTOSSTRTLLMAgg = profile.Config{Backend: "trtllm", Mode: profile.ModeAgg, Replicas: 1,
		Workers: []profile.Worker{{Role: profile.RoleAgg, Count: 1, TP: 1, PP: 1, EP: 4, DP: 4, Batch: 800}}}
	dgdGPTOSSTRTLLMDisagg = profile.Config{Backend: "trtllm", Mode: profile.ModeDisagg, Replicas: 1,
		Workers: []profile.Worker{
			{Role: profile.RolePrefill, Count: 1, TP: 1, PP: 1, EP: 1, DP: 1, Batch: 64},
			{Role: profile.RoleDecode, Count: 1, TP: 4, PP: 1, EP: 1, DP: 1, Batch: 1280},
		}}
	// 16 GPUs per worker on 8-GPU nodes: multinode prefill and decode, as the DeepSeek-R1 vLLM recipe.
	dgdDeepSeekVLLMDEP16 = profile.Config{Backend: "vllm", Mode: profile.ModeDisagg, Replicas: 1,
		Workers: []profile.Worker{
			{Role: profile.RolePrefill, Count: 1, TP: 1, PP: 1, EP: 16, DP: 16, Batch: 512},
			{Role: profile.RoleDecode, Count: 1, TP: 1, PP: 1, EP: 16, DP: 16, Batch: 512},
		}}
)

type dgdCase struct {
	name string
	dgdr *v1alpha1.DynamoGraphDeploymentRequest
	cfg  profile.Config
	opts DGDOptions
}

func dgdCases(t *testing.T) []dgdCase {
	t.Helper()
	var cases []dgdCase
	// Every backend × agg/disagg × with and without the Planner, v1beta1.
	matrix := []struct {
		backend, model string
		agg, disagg    profile.Config
	}{
		{"vllm", "Qwen/Qwen3-32B", dgdQwenAgg, dgdQwenDisagg},
		{"sglang", "deepseek-ai/DeepSeek-R1", dgdDeepSeekSGLangAgg, dgdDeepSeekSGLangDisagg},
		{"trtllm", "openai/gpt-oss-120b", dgdGPTOSSTRTLLMAgg, dgdGPTOSSTRTLLMDisagg},
	}
	for _, m := range matrix {
		for _, mode := range []string{"agg", "disagg"} {
			cfg := m.agg
			if mode == "disagg" {
				cfg = m.disagg
			}
			for _, withPlanner := range []bool{false, true} {
				name := m.backend + "-" + mode
				var mut []func(*v1alpha1.DynamoGraphDeploymentRequest)
				if withPlanner {
					name += "-planner"
					mut = append(mut, planner)
				}
				cases = append(cases, dgdCase{name: name, dgdr: dgdTestDGDR(name, m.model, m.backend, mut...), cfg: cfg,
					opts: DGDOptions{GPUsPerNode: 8, HFTokenSecret: "hf-token-secret"}})
			}
		}
	}
	v1a := DGDOptions{APIVersion: DGDAPIVersionV1Alpha1, GPUsPerNode: 8, HFTokenSecret: "hf-token-secret"}
	modelCache := func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		d.Spec.ModelCache = &v1alpha1.ModelCache{PVCName: "model-cache", PVCPath: "hub/models--Qwen--Qwen3-32B/snapshots/main"}
	}
	override := func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		d.Spec.Overrides = &v1alpha1.Overrides{DGD: &runtime.RawExtension{Raw: []byte(`{
			"apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeployment",
			"metadata": {"annotations": {"nvidia.com/enable-grove": "false"}, "labels": {"team": "search"}},
			"spec": {"components": [
				{"name": "Frontend", "podTemplate": {"spec": {"containers": [{"name": "main",
					"args": ["--router-mode", "kv"], "env": [{"name": "DYN_LOG", "value": "debug"}]}]}}},
				{"name": "decode", "replicas": 3, "podTemplate": {"spec": {"tolerations": [
					{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}}}
			]}}`)}}
	}
	cases = append(cases,
		dgdCase{"vllm-disagg-planner-v1alpha1", dgdTestDGDR("vllm-disagg-planner", "Qwen/Qwen3-32B", "vllm", planner), dgdQwenDisagg, v1a},
		dgdCase{"sglang-disagg-v1alpha1", dgdTestDGDR("sglang-disagg", "deepseek-ai/DeepSeek-R1", "sglang"), dgdDeepSeekSGLangDisagg, v1a},
		dgdCase{"trtllm-agg-planner-v1alpha1", dgdTestDGDR("trtllm-agg-planner", "openai/gpt-oss-120b", "trtllm", planner), dgdGPTOSSTRTLLMAgg, v1a},
		dgdCase{"vllm-agg-model-cache", dgdTestDGDR("qwen-cached", "Qwen/Qwen3-32B", "vllm", modelCache), dgdQwenAgg,
			DGDOptions{GPUsPerNode: 8}},
		dgdCase{"vllm-agg-model-cache-v1alpha1", dgdTestDGDR("qwen-cached", "Qwen/Qwen3-32B", "vllm", modelCache), dgdQwenAgg,
			DGDOptions{APIVersion: DGDAPIVersionV1Alpha1, GPUsPerNode: 8}},
		dgdCase{"vllm-disagg-multinode", dgdTestDGDR("dsr1", "deepseek-ai/DeepSeek-R1", "vllm"), dgdDeepSeekVLLMDEP16,
			DGDOptions{GPUsPerNode: 8, HFTokenSecret: "hf-token-secret"}},
		dgdCase{"vllm-disagg-multinode-planner-v1alpha1", dgdTestDGDR("dsr1", "deepseek-ai/DeepSeek-R1", "vllm", planner,
			func(d *v1alpha1.DynamoGraphDeploymentRequest) {
				d.Spec.Hardware = &v1alpha1.Hardware{GPUsPerNode: ptr.To[int32](8), TotalGPUs: ptr.To[int32](64)}
			}),
			dgdDeepSeekVLLMDEP16, DGDOptions{APIVersion: DGDAPIVersionV1Alpha1}},
		dgdCase{"vllm-disagg-long-name", dgdTestDGDR("a-very-long-request-name-for-the-qwen3-32b-rollout", "Qwen/Qwen3-32B", "vllm"), dgdQwenDisagg,
			DGDOptions{GPUsPerNode: 8}},
		dgdCase{"vllm-disagg-override", dgdTestDGDR("qwen-tuned", "Qwen/Qwen3-32B", "vllm", override), dgdQwenDisagg,
			DGDOptions{GPUsPerNode: 8, HFTokenSecret: "hf-token-secret"}},
		dgdCase{"vllm-disagg-override-export", dgdTestDGDR("qwen-tuned", "Qwen/Qwen3-32B", "vllm", override), dgdQwenDisagg,
			DGDOptions{GPUsPerNode: 8, HFTokenSecret: "hf-token-secret", Export: true}},
		dgdCase{"sglang-agg-custom-image", dgdTestDGDR("sglang-custom", "deepseek-ai/DeepSeek-R1", "sglang",
			func(d *v1alpha1.DynamoGraphDeploymentRequest) {
				d.Spec.Image = "registry.example.com/ml/dynamo-sglang:nightly"
			}),
			dgdDeepSeekSGLangAgg, DGDOptions{GPUsPerNode: 8, RuntimeVersion: "1.3.0"}},
	)
	return cases
}

// TestDGDGolden generates every case and compares it with testdata/dgd/<case>.yaml (go test -update rewrites).
func TestDGDGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range dgdCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DGDYAML(tc.dgdr, tc.cfg, tc.opts)
			require.NoError(t, err)
			file := filepath.Join(dgdGoldenDir, tc.name+".yaml")
			seen[filepath.Base(file)] = true
			if updateGolden() {
				require.NoError(t, os.MkdirAll(dgdGoldenDir, 0o755))
				require.NoError(t, os.WriteFile(file, got, 0o644))
			}
			want, err := os.ReadFile(file)
			require.NoError(t, err, "missing golden file: run go test ./pkg/expand -run TestDGDGolden -update")
			assert.Equal(t, string(want), string(got))
		})
	}
	// A golden file without a case is stale: it would still be checked against the CRD, but nothing makes it.
	entries, err := os.ReadDir(dgdGoldenDir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.True(t, seen[e.Name()], "stale golden file %s: delete it", e.Name())
	}
}

func dgdComponentsByName(t *testing.T, u *unstructured.Unstructured) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	comps, _, err := unstructured.NestedSlice(u.Object, "spec", "components")
	require.NoError(t, err)
	for _, c := range comps {
		m := c.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

func dgdMain(t *testing.T, comp map[string]any) map[string]any {
	t.Helper()
	containers, _, err := unstructured.NestedSlice(comp, "podTemplate", "spec", "containers")
	require.NoError(t, err)
	for _, c := range containers {
		if m := c.(map[string]any); m["name"] == DGDMainContainer {
			return m
		}
	}
	t.Fatalf("component %v has no main container", comp["name"])
	return nil
}

func dgdArgs(t *testing.T, comp map[string]any) []string {
	t.Helper()
	args, _, err := unstructured.NestedStringSlice(dgdMain(t, comp), "args")
	require.NoError(t, err)
	return args
}

// flagValue returns the value after flag in args, and whether the flag is present.
func flagValue(args []string, flag string) (string, bool) {
	for i, a := range args {
		if a == flag {
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
				return args[i+1], true
			}
			return "", true
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v, true
		}
	}
	return "", false
}

// TestDGDTopology checks the properties the golden files encode, so a wrong -update cannot hide them:
// GPU limits = GPUs per worker, replicas = replicas × count, Planner and scaling adapters iff autoscaling.
func TestDGDTopology(t *testing.T) {
	for _, tc := range dgdCases(t) {
		if tc.opts.APIVersion == DGDAPIVersionV1Alpha1 || tc.dgdr.Spec.Overrides != nil {
			continue // v1alpha1 is covered by TestDGDV1Alpha1MatchesV1Beta1; overrides change replicas
		}
		t.Run(tc.name, func(t *testing.T) {
			u, err := GenerateDGD(tc.dgdr, tc.cfg, tc.opts)
			require.NoError(t, err)
			comps := dgdComponentsByName(t, u)
			_, hasPlanner := comps[DGDPlannerName]
			assert.Equal(t, tc.dgdr.Spec.EnableAutoScaling, hasPlanner, "Planner iff enableAutoScaling")
			require.Contains(t, comps, DGDFrontendName)
			totalGPUs := 0
			for _, w := range tc.cfg.Workers {
				name := map[profile.Role]string{profile.RoleAgg: DGDWorkerName, profile.RolePrefill: DGDPrefillName, profile.RoleDecode: DGDDecodeName}[w.Role]
				c := comps[name]
				require.NotNil(t, c, "component %s", name)
				assert.EqualValues(t, tc.cfg.Replicas*w.Count, c["replicas"])
				gpuStr, _, _ := unstructured.NestedString(dgdMain(t, c), "resources", "limits", "nvidia.com/gpu")
				nodes, found, _ := unstructured.NestedInt64(c, "multinode", "nodeCount")
				if !found {
					nodes = 1
				}
				perPod := atoi(t, gpuStr)
				assert.Equal(t, w.GPUs(), perPod*int(nodes), "GPUs per worker = per-node limit × nodes")
				assert.LessOrEqual(t, perPod, tc.opts.GPUsPerNode)
				totalGPUs += tc.cfg.Replicas * w.Count * w.GPUs()
				_, adapter := c["scalingAdapter"]
				assert.Equal(t, tc.dgdr.Spec.EnableAutoScaling, adapter, "scalingAdapter iff enableAutoScaling")
				cmd, _, _ := unstructured.NestedStringSlice(dgdMain(t, c), "command")
				assert.Equal(t, []string{"python3", "-m", "dynamo." + tc.cfg.Backend}, cmd)
				if w.Role != profile.RoleAgg {
					mode, _ := flagValue(dgdArgs(t, c), "--disaggregation-mode")
					assert.Equal(t, string(w.Role), mode)
				} else {
					_, ok := flagValue(dgdArgs(t, c), "--disaggregation-mode")
					assert.False(t, ok, "aggregated worker has no disaggregation mode")
				}
			}
			assert.Equal(t, tc.cfg.GPUsPerReplica()*tc.cfg.Replicas, totalGPUs)
			assert.Equal(t, tc.dgdr.Name, u.GetLabels()[v1alpha1.LabelDGDRName])
			assert.LessOrEqual(t, len(u.GetName()), DGDNameLimit)
		})
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, r := range s {
		require.True(t, r >= '0' && r <= '9', "not a number: %q", s)
		n = n*10 + int(r-'0')
	}
	return n
}

// TestDGDV1Alpha1MatchesV1Beta1 generates both versions of each case and checks they describe the same
// graph: same components, types, replicas, GPUs, command lines, multinode and scaling adapters.
func TestDGDV1Alpha1MatchesV1Beta1(t *testing.T) {
	for _, tc := range dgdCases(t) {
		if tc.dgdr.Spec.Overrides != nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			b := tc.opts
			b.APIVersion = DGDAPIVersionV1Beta1
			a := tc.opts
			a.APIVersion = DGDAPIVersionV1Alpha1
			ub, err := GenerateDGD(tc.dgdr, tc.cfg, b)
			require.NoError(t, err)
			ua, err := GenerateDGD(tc.dgdr, tc.cfg, a)
			require.NoError(t, err)
			assert.Equal(t, ub.GetName(), ua.GetName())
			comps := dgdComponentsByName(t, ub)
			services, _, err := unstructured.NestedMap(ua.Object, "spec", "services")
			require.NoError(t, err)
			require.Len(t, services, len(comps))
			for name, c := range comps {
				s, ok := services[name].(map[string]any)
				require.True(t, ok, "service %s", name)
				typ := c["type"].(string)
				if sub, ok := s["subComponentType"]; ok {
					assert.Equal(t, "worker", s["componentType"])
					assert.Equal(t, typ, sub)
				} else {
					assert.Equal(t, typ, s["componentType"])
				}
				assert.Equal(t, c["replicas"], s["replicas"])
				assert.Equal(t, c["multinode"], s["multinode"])
				_, betaAdapter := c["scalingAdapter"]
				enabled, _, _ := unstructured.NestedBool(s, "scalingAdapter", "enabled")
				assert.Equal(t, betaAdapter, enabled)
				main := dgdMain(t, c)
				mc, _, _ := unstructured.NestedMap(s, "extraPodSpec", "mainContainer")
				for _, k := range []string{"image", "command", "args", "workingDir", "volumeMounts"} {
					assert.Equal(t, main[k], mc[k], "%s.%s", name, k)
				}
				betaGPU, _, _ := unstructured.NestedString(main, "resources", "limits", "nvidia.com/gpu")
				alphaGPU, _, _ := unstructured.NestedString(s, "resources", "limits", "gpu")
				assert.Equal(t, betaGPU, alphaGPU)
			}
		})
	}
}

func TestDGDModelCache(t *testing.T) {
	for _, tc := range []struct {
		pvcPath, want string
	}{
		{"", "/models"},
		{"llama-3-70b", "/models/llama-3-70b"},
		{"hub/models--Qwen--Qwen3-32B/snapshots/abc/", "/models/hub/models--Qwen--Qwen3-32B/snapshots/abc"},
		{"./models/llama", "/models/models/llama"},
	} {
		t.Run(tc.pvcPath, func(t *testing.T) {
			d := dgdTestDGDR("cached", "meta-llama/Llama-3.3-70B-Instruct", "vllm", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
				d.Spec.ModelCache = &v1alpha1.ModelCache{PVCName: "weights", PVCPath: tc.pvcPath}
			})
			u, err := GenerateDGD(d, dgdQwenAgg, DGDOptions{})
			require.NoError(t, err)
			comps := dgdComponentsByName(t, u)
			args := dgdArgs(t, comps[DGDWorkerName])
			model, _ := flagValue(args, "--model")
			served, _ := flagValue(args, "--served-model-name")
			assert.Equal(t, tc.want, model)
			assert.Equal(t, "meta-llama/Llama-3.3-70B-Instruct", served)
			for _, name := range []string{DGDFrontendName, DGDWorkerName} {
				mounts, _, _ := unstructured.NestedSlice(dgdMain(t, comps[name]), "volumeMounts")
				require.Len(t, mounts, 1, name)
				assert.Equal(t, map[string]any{"name": DGDModelVolume, "mountPath": DGDModelMountPath, "readOnly": true}, mounts[0])
				vols, _, _ := unstructured.NestedSlice(comps[name], "podTemplate", "spec", "volumes")
				require.Len(t, vols, 1)
				assert.Equal(t, map[string]any{"claimName": "weights", "readOnly": true}, vols[0].(map[string]any)["persistentVolumeClaim"])
			}
		})
	}
	for _, bad := range []string{"/models/llama", "../other", "a/../../b"} {
		d := dgdTestDGDR("cached", "m", "vllm", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
			d.Spec.ModelCache = &v1alpha1.ModelCache{PVCName: "weights", PVCPath: bad}
		})
		_, err := GenerateDGD(d, dgdQwenAgg, DGDOptions{})
		assert.ErrorContains(t, err, "expected a relative path inside the PVC", bad)
	}
}

func TestDGDHFTokenSecret(t *testing.T) {
	d := dgdTestDGDR("qwen", "Qwen/Qwen3-32B", "vllm")
	u, err := GenerateDGD(d, dgdQwenDisagg, DGDOptions{})
	require.NoError(t, err)
	for name, c := range dgdComponentsByName(t, u) {
		_, has := dgdMain(t, c)["envFrom"]
		assert.False(t, has, "%s: no Secret unless asked", name)
	}
	u, err = GenerateDGD(d, dgdQwenDisagg, DGDOptions{HFTokenSecret: "my-hf"})
	require.NoError(t, err)
	for name, c := range dgdComponentsByName(t, u) {
		assert.Equal(t, []any{map[string]any{"secretRef": map[string]any{"name": "my-hf"}}}, dgdMain(t, c)["envFrom"], name)
	}

	// The DGDR's annotation configures it wherever the DGD is generated (profiler, promote, export, UI).
	d.Annotations = map[string]string{v1alpha1.AnnotationHFTokenSecret: "from-annotation"}
	u, err = GenerateDGD(d, dgdQwenDisagg, DGDOptions{})
	require.NoError(t, err)
	for name, c := range dgdComponentsByName(t, u) {
		assert.Equal(t, []any{map[string]any{"secretRef": map[string]any{"name": "from-annotation"}}}, dgdMain(t, c)["envFrom"], name)
	}
}

func TestDGDExport(t *testing.T) {
	d := dgdTestDGDR("qwen", "Qwen/Qwen3-32B", "vllm", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		d.Spec.Overrides = &v1alpha1.Overrides{DGD: &runtime.RawExtension{Raw: []byte(`{"metadata": {
			"labels": {"nvidia.com/dgdr-name": "other", "dgdr.nvidia.com/name": "x", "app": "chat"},
			"annotations": {"nvidia.com/dgdr-profiling-job": "j"}, "uid": "123", "resourceVersion": "9",
			"managedFields": [{"manager": "m"}], "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "u"}]},
			"status": {"state": "successful"}}`)}}
	})
	linked, err := GenerateDGD(d, dgdQwenAgg, DGDOptions{})
	require.NoError(t, err)
	assert.Equal(t, "inference", linked.GetNamespace())
	assert.Equal(t, "qwen", linked.GetLabels()[v1alpha1.LabelDGDRName], "the DGDR's own name wins over an override")

	u, err := GenerateDGD(d, dgdQwenAgg, DGDOptions{Export: true})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"app": "chat"}, u.GetLabels())
	assert.Empty(t, u.GetAnnotations())
	assert.Empty(t, u.GetNamespace())
	assert.Empty(t, u.GetOwnerReferences())
	assert.Empty(t, u.GetManagedFields())
	assert.Empty(t, u.GetUID())
	assert.Empty(t, u.GetResourceVersion())
	_, hasStatus := u.Object["status"]
	assert.False(t, hasStatus)
	y, err := EncodeDGDYAML(u.Object)
	require.NoError(t, err)
	assert.NotContains(t, string(y), "dgdr")
}

func TestDGDNames(t *testing.T) {
	single := []DGDComponentName{{Name: "frontend"}, {Name: "prefill"}, {Name: "decode"}}
	multi := []DGDComponentName{{Name: "frontend"}, {Name: "prefill", Multinode: true}}
	for _, tc := range []struct {
		name, dgdr, explicit string
		comps                []DGDComponentName
		want, wantErr        string
	}{
		{name: "default", dgdr: "qwen", comps: single, want: "qwen-dgd"},
		{name: "dots become dashes", dgdr: "qwen.v2", comps: single, want: "qwen-v2-dgd"},
		{name: "exactly at the limit", dgdr: strings.Repeat("a", 33), comps: single, want: strings.Repeat("a", 33) + "-dgd"},
		{name: "shortened", dgdr: strings.Repeat("a", 34), comps: single, want: strings.Repeat("a", 30) + "-a27c89"},
		{name: "multinode counts the pod-clique name", dgdr: "a-long-request-name-for-dsr1", comps: multi, want: "a-long-request-name-af33bf"},
		{name: "explicit", explicit: "chat", dgdr: "qwen", comps: single, want: "chat"},
		{name: "explicit too long", explicit: strings.Repeat("b", 40), dgdr: "qwen", comps: single, wantErr: "choose a shorter name"},
		{name: "explicit invalid", explicit: "Chat_1", dgdr: "qwen", comps: single, wantErr: "RFC 1123"},
		{name: "component too long", dgdr: "qwen", comps: []DGDComponentName{{Name: strings.Repeat("c", 40)}}, wantErr: "shorten the component name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DGDName(tc.dgdr, tc.explicit, tc.comps)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			longest := 0
			for _, c := range tc.comps {
				longest = max(longest, c.nameCost())
			}
			assert.LessOrEqual(t, len(got)+longest, DGDNameLimit)
		})
	}
	// Shortening is deterministic and distinguishes names that share a prefix.
	a, err := DGDName(strings.Repeat("x", 50)+"-one", "", single)
	require.NoError(t, err)
	b, err := DGDName(strings.Repeat("x", 50)+"-two", "", single)
	require.NoError(t, err)
	a2, _ := DGDName(strings.Repeat("x", 50)+"-one", "", single)
	assert.NotEqual(t, a, b)
	assert.Equal(t, a, a2)
}

func TestDGDOverrideNameTooLong(t *testing.T) {
	d := dgdTestDGDR("qwen", "Qwen/Qwen3-32B", "vllm", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		d.Spec.Overrides = &v1alpha1.Overrides{DGD: &runtime.RawExtension{Raw: []byte(`{"metadata": {"name": "` + strings.Repeat("n", 40) + `"}}`)}}
	})
	_, err := GenerateDGD(d, dgdQwenDisagg, DGDOptions{})
	assert.ErrorContains(t, err, "choose a shorter name")

	d.Spec.Overrides.DGD.Raw = []byte(`{"metadata": {"name": "chat-qwen"}}`)
	u, err := GenerateDGD(d, dgdQwenDisagg, DGDOptions{})
	require.NoError(t, err)
	assert.Equal(t, "chat-qwen", u.GetName())
}

func TestDGDErrors(t *testing.T) {
	good := dgdTestDGDR("qwen", "Qwen/Qwen3-32B", "vllm")
	for _, tc := range []struct {
		name    string
		dgdr    *v1alpha1.DynamoGraphDeploymentRequest
		cfg     profile.Config
		opts    DGDOptions
		wantErr string
	}{
		{"no dgdr", nil, dgdQwenAgg, DGDOptions{}, "no DGDR"},
		{"no image", dgdTestDGDR("q", "m", "vllm", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.Image = "" }), dgdQwenAgg, DGDOptions{}, "spec.image is empty"},
		{"backend any", dgdTestDGDR("q", "m", "any"), profile.Config{Mode: profile.ModeAgg, Replicas: 1, Workers: dgdQwenAgg.Workers}, DGDOptions{}, `backend "any" cannot be deployed`},
		{"bad api version", good, dgdQwenAgg, DGDOptions{APIVersion: "nvidia.com/v2"}, "unsupported DGD apiVersion"},
		{"zero replicas", good, profile.Config{Backend: "vllm", Mode: profile.ModeAgg, Workers: dgdQwenAgg.Workers}, DGDOptions{}, "expected at least 1"},
		{"agg with disagg workers", good, profile.Config{Backend: "vllm", Mode: profile.ModeAgg, Replicas: 1, Workers: dgdQwenDisagg.Workers}, DGDOptions{}, "expected 1"},
		{"disagg without decode", good, profile.Config{Backend: "vllm", Mode: profile.ModeDisagg, Replicas: 1,
			Workers: []profile.Worker{dgdQwenDisagg.Workers[0], {Role: profile.RoleAgg, Count: 1, TP: 1}}}, DGDOptions{}, "no decode worker pool"},
		{"zero tp", good, profile.Config{Backend: "vllm", Mode: profile.ModeAgg, Replicas: 1, Workers: []profile.Worker{{Role: profile.RoleAgg, Count: 1}}}, DGDOptions{}, "expected count and tp of at least 1"},
		{"unknown mode", good, profile.Config{Backend: "vllm", Mode: "mixed", Replicas: 1, Workers: dgdQwenAgg.Workers}, DGDOptions{}, `mode "mixed"`},
		{"negative gpus per node", good, dgdQwenAgg, DGDOptions{GPUsPerNode: -1}, "expected a positive number"},
		{"dgdr name too long for the label", dgdTestDGDR(strings.Repeat("q", 64), "m", "vllm"), dgdQwenAgg, DGDOptions{}, "at most 63 characters"},
		{"bad secret name", good, dgdQwenAgg, DGDOptions{HFTokenSecret: "HF Token"}, "expected a Secret name"},
		{"bad runtime version", good, dgdQwenAgg, DGDOptions{RuntimeVersion: "1.3"}, "expected MAJOR.MINOR.PATCH"},
		{"override of the other version", dgdTestDGDR("q", "m", "vllm", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
			d.Spec.Overrides = &v1alpha1.Overrides{DGD: &runtime.RawExtension{Raw: []byte(`{"spec": {"services": {"Frontend": {"replicas": 2}}}}`)}}
		}), dgdQwenAgg, DGDOptions{}, "use spec.components"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := GenerateDGD(tc.dgdr, tc.cfg, tc.opts)
			assert.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestDGDSplitNodes(t *testing.T) {
	for _, tc := range []struct{ gpus, perNode, wantNodes, wantPer int }{
		{1, 8, 1, 1}, {8, 8, 1, 8}, {16, 8, 2, 8}, {12, 8, 2, 6}, {9, 8, 3, 3}, {32, 4, 8, 4}, {16, 0, 1, 16},
	} {
		n, p := dgdSplitNodes(tc.gpus, tc.perNode)
		assert.Equal(t, []int{tc.wantNodes, tc.wantPer}, []int{n, p}, "%d GPUs on %d-GPU nodes", tc.gpus, tc.perNode)
		assert.Equal(t, tc.gpus, n*p)
		if tc.perNode > 0 {
			assert.LessOrEqual(t, p, tc.perNode)
		}
	}
}

// TestDGDCaseNamesUnique keeps one golden file per case.
func TestDGDCaseNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range dgdCases(t) {
		assert.False(t, seen[tc.name], "duplicate case %s", tc.name)
		seen[tc.name] = true
	}
}

// BenchmarkDGDYAML measures one generation with a Planner and an overrides.dgd merge (the slowest path).
func BenchmarkDGDYAML(b *testing.B) {
	d := dgdTestDGDR("bench", "Qwen/Qwen3-32B", "vllm", planner, func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		d.Spec.Overrides = &v1alpha1.Overrides{DGD: &runtime.RawExtension{Raw: []byte(`{"spec": {"components": [{"name": "decode", "replicas": 3}]}}`)}}
	})
	opts := DGDOptions{GPUsPerNode: 8, HFTokenSecret: "hf-token-secret"}
	for b.Loop() {
		if _, err := DGDYAML(d, dgdQwenDisagg, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDGDYAMLNoOverride is the common path: no overrides.dgd.
func BenchmarkDGDYAMLNoOverride(b *testing.B) {
	d := dgdTestDGDR("bench", "Qwen/Qwen3-32B", "vllm")
	opts := DGDOptions{GPUsPerNode: 8}
	for b.Loop() {
		if _, err := DGDYAML(d, dgdQwenDisagg, opts); err != nil {
			b.Fatal(err)
		}
	}
}
