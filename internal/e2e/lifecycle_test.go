// Package e2e runs the whole lifecycle on a real control plane: the webhook (in this process, as the
// manifests install it), the profiler binary (run with a kubeconfig, since a test control plane has no
// kubelet to run the Job), and the plugin's commands, with fake GPU nodes and the real Dynamo DGD CRD.
package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/cli"
	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/profiler"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/internal/testenv/withwebhook"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

type world struct {
	env      *testenv.Env
	profiler string // the built dgdr-profiler binary
	root     string
}

func setUp(t *testing.T) *world {
	t.Helper()
	w := &world{env: withwebhook.Start(t), root: testenv.RepoRoot(t)}
	w.profiler = filepath.Join(t.TempDir(), "dgdr-profiler")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", w.profiler, "./cmd/dgdr-profiler")
	build.Dir = w.root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building the profiler: %s", out)
	for _, n := range []string{"gpu-a", "gpu-b"} {
		gpuNode(t, w.env.Client, n)
	}
	return w
}

// gpuNode adds a node labelled as GPU feature discovery and the device plugin do (8× H200).
func gpuNode(t *testing.T, c client.Client, name string) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"nvidia.com/gpu.product": "NVIDIA-H200", "nvidia.com/gpu.count": "8", "nvidia.com/gpu.present": "true",
	}}}
	require.NoError(t, c.Create(t.Context(), n))
	n.Spec.Taints = nil // the not-ready taint the API server adds; no node controller runs here
	require.NoError(t, c.Update(t.Context(), n))
	n.Status.Allocatable = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("8")}
	n.Status.Capacity = n.Status.Allocatable
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	require.NoError(t, c.Status().Update(t.Context(), n))
}

func (w *world) namespace(t *testing.T, name string) string {
	require.NoError(t, w.env.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	require.NoError(t, w.env.Client.Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.ProfilerServiceAccount, Namespace: name}}))
	return name
}

// kubectlDGDR runs a plugin command in-process against the control plane.
func (w *world) kubectlDGDR(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := cli.NewRootCmd(genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	root.SetArgs(append(args, "--kubeconfig", w.env.Kubeconfig))
	root.SetContext(t.Context())
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func (w *world) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := w.kubectlDGDR(t, "", args...)
	require.NoError(t, err, "kubectl dgdr %s: %s", strings.Join(args, " "), errOut)
	return out
}

// runProfiler runs the profiler binary as the profiling Job would, with a kubeconfig instead of a
// ServiceAccount.
func (w *world) runProfiler(t *testing.T, ns, name string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), w.profiler, "--namespace", ns, "--name", name, "--deploy-wait", "0")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+w.env.Kubeconfig)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "dgdr-profiler: %s", out)
}

func (w *world) dgdr(t *testing.T, ns, name string) *v1alpha1.DynamoGraphDeploymentRequest {
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	require.NoError(t, w.env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, d))
	return d
}

func (w *world) dgd(t *testing.T, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
	require.NoError(t, w.env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, u))
	return u
}

// markReady plays the Dynamo operator: it reports every component of the DGD available.
func (w *world) markReady(t *testing.T, ns, name string) {
	u := w.dgd(t, ns, name)
	comps := map[string]any{}
	list, _, _ := unstructured.NestedSlice(u.Object, "spec", "components")
	for _, c := range list {
		m := c.(map[string]any)
		replicas, _, _ := unstructured.NestedInt64(m, "replicas")
		comps[m["name"].(string)] = map[string]any{"componentKind": "Deployment", "replicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas}
	}
	require.NoError(t, unstructured.SetNestedField(u.Object, "successful", "status", "state"))
	require.NoError(t, unstructured.SetNestedMap(u.Object, comps, "status", "components"))
	require.NoError(t, w.env.Client.Status().Update(t.Context(), u))
}

func componentNames(u *unstructured.Unstructured) []string {
	list, _, _ := unstructured.NestedSlice(u.Object, "spec", "components")
	var names []string
	for _, c := range list {
		names = append(names, c.(map[string]any)["name"].(string))
	}
	return names
}

func TestLifecycle(t *testing.T) {
	w := setUp(t)
	ctx := t.Context()

	t.Run("exploratory: Ready with a Pareto front, results, promote, then Deployed", func(t *testing.T) {
		ns := w.namespace(t, "explore")
		w.ok(t, "create", "-f", filepath.Join(w.root, "examples", "exploratory.yaml"), "-n", ns)
		w.runProfiler(t, ns, "exploratory")

		d := w.dgdr(t, ns, "exploratory")
		require.Equal(t, v1alpha1.PhaseReady, d.Status.Phase, "%+v", d.Status.Conditions)
		require.GreaterOrEqual(t, len(d.Status.ProfilingResults.Pareto), 2)
		job := &batchv1.Job{}
		require.NoError(t, w.env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: expand.ProfilingJobName(d.Name, d.UID)}, job))
		require.Len(t, job.OwnerReferences, 1, "the profiler made the DGDR own its Job")
		assert.Equal(t, d.UID, job.OwnerReferences[0].UID)

		out := w.ok(t, "results", "exploratory", "-n", ns)
		assert.Contains(t, out, "trtllm")
		assert.Contains(t, out, "*", "the selected row is marked")
		got := w.ok(t, "get", "-n", ns)
		assert.Regexp(t, `exploratory\s+Qwen/Qwen3-32B\s+trtllm\s+rapid\s+Ready`, got)

		w.ok(t, "promote", "exploratory", "-n", ns)
		d = w.dgdr(t, ns, "exploratory")
		assert.Equal(t, v1alpha1.PhaseDeploying, d.Status.Phase)
		dgd := w.dgd(t, ns, d.Status.DGDName)
		assert.Equal(t, "exploratory", dgd.GetLabels()[v1alpha1.LabelDGDRName])
		assert.NotContains(t, componentNames(dgd), "Planner", "no Planner without enableAutoScaling")

		w.markReady(t, ns, d.Status.DGDName)
		out = w.ok(t, "status", "exploratory", "-n", ns)
		assert.Contains(t, out, "Deployed")
		d = w.dgdr(t, ns, "exploratory")
		assert.Equal(t, v1alpha1.PhaseDeployed, d.Status.Phase)
		require.NotNil(t, d.Status.DeploymentInfo)
		assert.Positive(t, d.Status.DeploymentInfo.AvailableReplicas)

		// export: a DGD with no link to the DGDR, which the API server takes as a new object.
		exported := w.ok(t, "export", "exploratory", "-n", ns)
		assert.NotContains(t, exported, v1alpha1.LabelDGDRName)
		u := &unstructured.Unstructured{}
		require.NoError(t, yaml.Unmarshal([]byte(exported), &u.Object))
		other := w.namespace(t, "kept-in-git")
		u.SetNamespace(other)
		u.SetName("from-git")
		require.NoError(t, w.env.Client.Create(ctx, u))
	})

	t.Run("autoApply with the Planner: Deploying, then Deployed", func(t *testing.T) {
		ns := w.namespace(t, "auto")
		// The example's flags, with an SLA loose enough that any performance-model revision meets it.
		w.ok(t, "create", "autoscaling", "-n", ns, "--model", "Qwen/Qwen3-32B", "--backend", "trtllm",
			"--isl", "2048", "--osl", "512", "--ttft", "5000", "--itl", "200", "--enable-autoscaling", "--auto-apply")
		w.runProfiler(t, ns, "autoscaling")
		d := w.dgdr(t, ns, "autoscaling")
		require.Equal(t, v1alpha1.PhaseDeploying, d.Status.Phase, "%+v", d.Status.Conditions)
		dgd := w.dgd(t, ns, d.Status.DGDName)
		assert.Contains(t, componentNames(dgd), "Planner")
		assert.Empty(t, dgd.GetOwnerReferences(), "the DGD outlives the DGDR")

		w.markReady(t, ns, d.Status.DGDName)
		assert.Contains(t, w.ok(t, "status", "autoscaling", "-n", ns), "Deployed")
		assert.Equal(t, v1alpha1.PhaseDeployed, w.dgdr(t, ns, "autoscaling").Status.Phase)
	})

	t.Run("model cache and token Secret: in the Job and in the DGD", func(t *testing.T) {
		ns := w.namespace(t, "cache")
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "model-cache", Namespace: ns},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("100Gi")}},
			},
		}
		require.NoError(t, w.env.Client.Create(ctx, pvc))
		w.ok(t, "create", "cached", "-n", ns, "--model", "Qwen/Qwen3-8B", "--backend", "vllm",
			"--model-cache-pvc", "model-cache", "--model-cache-path", "qwen3-8b", "--hf-token-secret", "hf-token-secret")
		d := w.dgdr(t, ns, "cached")
		job := &batchv1.Job{}
		require.NoError(t, w.env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: expand.ProfilingJobName(d.Name, d.UID)}, job))
		var claims []string
		for _, v := range job.Spec.Template.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				claims = append(claims, v.PersistentVolumeClaim.ClaimName)
			}
		}
		assert.Equal(t, []string{"model-cache"}, claims)

		w.runProfiler(t, ns, "cached")
		out := w.ok(t, "export", "cached", "-n", ns)
		assert.Contains(t, out, "claimName: model-cache")
		assert.Contains(t, out, "/models/qwen3-8b")
		assert.Contains(t, out, "name: hf-token-secret", "the token Secret reaches the workers")
	})

	t.Run("an impossible SLA is explained", func(t *testing.T) {
		ns := w.namespace(t, "strict")
		w.ok(t, "create", "strict", "-n", ns, "--model", "Qwen/Qwen3-32B", "--ttft", "1", "--itl", "0.5", "--auto-apply")
		w.runProfiler(t, ns, "strict")
		d := w.dgdr(t, ns, "strict")
		assert.Equal(t, v1alpha1.PhaseReady, d.Status.Phase)
		assert.False(t, d.Status.ProfilingResults.SelectedConfig.MeetsSLA)
		out := w.ok(t, "status", "strict", "-n", ns)
		assert.Contains(t, out, "SLANotMet")
		assert.Contains(t, out, "closest")
	})

	t.Run("a profiler crash and the Job's retry lose and double nothing", func(t *testing.T) {
		ns := w.namespace(t, "crash")
		w.ok(t, "create", "quick-start", "-n", ns, "--model", "Qwen/Qwen3-32B", "--ttft", "5000", "--itl", "200", "--auto-apply")
		crash := errors.New("killed")
		err := profiler.Run(ctx, profiler.Options{Namespace: ns, Name: "quick-start", Client: w.env.Client,
			AfterPhase: func(p v1alpha1.Phase) error {
				if p == v1alpha1.PhaseDeploying {
					return crash
				}
				return nil
			}})
		require.ErrorIs(t, err, crash)
		before := w.dgdr(t, ns, "quick-start")
		w.runProfiler(t, ns, "quick-start")
		after := w.dgdr(t, ns, "quick-start")
		assert.Equal(t, v1alpha1.PhaseDeploying, after.Status.Phase)
		assert.Equal(t, before.Status.ProfilingResults.SelectedConfig.ParetoPoint, after.Status.ProfilingResults.SelectedConfig.ParetoPoint)

		dgds := &unstructured.UnstructuredList{}
		dgds.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
		require.NoError(t, w.env.Client.List(ctx, dgds, client.InNamespace(ns)))
		assert.Len(t, dgds.Items, 1)
		jobs := &batchv1.JobList{}
		require.NoError(t, w.env.Client.List(ctx, jobs, client.InNamespace(ns)))
		assert.Len(t, jobs.Items, 1)
	})
}
