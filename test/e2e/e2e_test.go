// Package e2e runs dgdr on a real single-node Kubernetes built on this machine (`make e2e`): etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler on the host, and containerd, kube-proxy and
// the kubelet in a network namespace of their own; the project's images written here as OCI archives
// (no container engine, nothing pulled); the project installed the way the README says; and a test-only
// stand-in for the Dynamo operator. Each scenario asserts what a user would see.
//
// It needs root and the node's binaries and packages (hack/install-node.sh, which make e2e runs); without
// -e2e the test skips, so `go test ./...` does not start a cluster.
package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

var e2eFlag = flag.Bool("e2e", false, "run the end-to-end suite on a single-node cluster (make e2e; needs root)")

func assetsDir(t *testing.T) string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	must(t, err, "finding the envtest assets")
	return filepath.Join(home, ".cache", "envtest-assets")
}

func TestE2E(t *testing.T) {
	if !*e2eFlag {
		t.Skip("the end-to-end suite starts a cluster as root: run `make e2e`")
	}
	assets := assetsDir(t)
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			t.Fatalf("no %s in %s: run `make e2e` (hack/install-node.sh builds it)", b, assets)
		}
	}
	root := testenv.RepoRoot(t)
	began := time.Now()
	bin := buildAll(t, root, t.TempDir())
	t.Logf("built the binaries and images in %s", time.Since(began).Round(time.Second))

	c := startCluster(t, assets)
	c.install(t, root, assets)
	c.labelGPUNode(t)
	op := &dynamoStandIn{c: c.client, seen: map[string]bool{}, held: map[string]bool{}}
	ctx, stop := context.WithCancel(context.Background())
	opDone := make(chan struct{})
	go func() { op.run(ctx); close(opDone) }()
	t.Cleanup(func() { stop(); <-opDone })
	u := &user{c: c, bin: filepath.Join(bin, "kubectl-dgdr"), root: root}
	defer func() {
		for _, tm := range c.timings {
			t.Logf("%-34s %s", tm.what, tm.d.Round(time.Millisecond))
		}
	}()

	t.Run("quick-start", func(t *testing.T) { quickStart(t, c, u, assets) })
	t.Run("thorough", func(t *testing.T) { thorough(t, c, u, assets) })
	t.Run("fault/no-profiler-serviceaccount", func(t *testing.T) { noServiceAccount(t, c, u, assets) })
	t.Run("fault/profiler-pod-deleted", func(t *testing.T) { profilerPodDeleted(t, c, u, op, assets) })
	t.Run("promote-delete", func(t *testing.T) { promoteDelete(t, c, u, assets) })
	t.Run("fault/webhook-pod-deleted-in-burst", func(t *testing.T) { webhookPodDeleted(t, c, u, assets) })
}

// user runs the plugin as a user would, with the admin kubeconfig.
type user struct {
	c    *cluster
	bin  string
	root string
}

// dgdr runs kubectl-dgdr; it returns stdout, stderr and the error.
func (u *user) dgdr(ns string, args ...string) (string, string, error) {
	cmd := exec.Command(u.bin, append([]string{"--kubeconfig", u.c.kubeconfig, "-n", ns}, args...)...)
	cmd.Dir = u.root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// quickStart is the README's first five minutes: create the quick-start example with --wait (rapid,
// autoApply) in a namespace with the profiler's kit and Pod Security restricted; the profiling Job's pod
// runs the real image and deploys; the stand-in makes the DGD ready; results, logs and export work.
func quickStart(t *testing.T, c *cluster, u *user, assets string) {
	began := time.Now()
	const ns = "quick"
	c.profilerNamespace(t, u.root, assets, ns, false)
	stdout, stderr, err := u.dgdr(ns, "create", "-f", "examples/quick-start.yaml", "--wait", "--timeout", "5m")
	t.Logf("kubectl dgdr create -f examples/quick-start.yaml --wait:\n%s%s", stdout, stderr)
	if err != nil {
		t.Fatalf("create --wait: %v%s", err, c.podTrouble(t.Context(), ns))
	}
	c.timed("quick-start: create --wait", began)
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	must(t, c.client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "quick-start"}, d), "reading the DGDR")
	assert.Equal(t, v1alpha1.PhaseDeployed, d.Status.Phase)
	require.NotEmpty(t, d.Status.DGDName, "the DGDR names its DGD")

	// The profiling Job ran the release image, non-root, to completion.
	job := &batchv1.Job{}
	must(t, c.client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: d.Status.ProfilingJobName}, job), "reading the profiling Job")
	assert.Equal(t, serverImage, job.Spec.Template.Spec.Containers[0].Image)
	// The profiler exits after it has written Deployed.
	c.waitFor(t, "the profiling Job complete", time.Minute, func() (bool, error) {
		err := c.client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: d.Status.ProfilingJobName}, job)
		return err == nil && job.Status.Succeeded == 1, fmt.Errorf("succeeded %d, failed %d: %v%s", job.Status.Succeeded, job.Status.Failed, err, c.podTrouble(t.Context(), ns))
	})

	// The DGD the profiler applied is served by the stand-in's pods.
	dgd := &unstructured.Unstructured{}
	dgd.SetGroupVersionKind(dgdGVK)
	must(t, c.client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: d.Status.DGDName}, dgd), "reading the DGD")
	state, _, _ := unstructured.NestedString(dgd.Object, "status", "state")
	assert.Equal(t, "successful", state)

	out, errOut, err := u.dgdr(ns, "results", "quick-start")
	require.NoError(t, err, errOut)
	t.Logf("kubectl dgdr results quick-start:\n%s", out)
	assert.Contains(t, out, "Qwen/Qwen3-32B")

	out, errOut, err = u.dgdr(ns, "logs", "quick-start")
	require.NoError(t, err, errOut)
	t.Logf("kubectl dgdr logs quick-start (%d bytes):\n%s", len(out), tailString(out, 12))
	assert.Contains(t, out, `"dgdr":"quick/quick-start"`, "the profiler's log, read through the kubelet")

	out, errOut, err = u.dgdr(ns, "export", "quick-start")
	require.NoError(t, err, errOut)
	exported := &unstructured.Unstructured{}
	require.NoError(t, yaml.Unmarshal([]byte(out), &exported.Object), "export prints YAML")
	assert.Equal(t, "DynamoGraphDeployment", exported.GetKind())
	assert.Equal(t, d.Status.DGDName, exported.GetName())
	c.timed("quick-start: total", began)
}

// thorough: a thorough search on a small GPU budget: the candidates become DGDs, the stand-in runs them
// as pods, the profiler benchmarks each through its frontend Service (by its cluster DNS name), deletes it,
// and stores the measured front.
func thorough(t *testing.T, c *cluster, u *user, assets string) {
	began := time.Now()
	const ns = "thorough"
	c.profilerNamespace(t, u.root, assets, ns, false)
	f := filepath.Join(t.TempDir(), "thorough.yaml")
	must(t, os.WriteFile(f, []byte(`apiVersion: nvidia.com/v1alpha1
kind: DynamoGraphDeploymentRequest
metadata:
  name: thorough
spec:
  model: Qwen/Qwen3-32B
  backend: vllm
  searchStrategy: thorough
  hardware:
    totalGpus: 4
  autoApply: false
`), 0o644), "writing the DGDR")
	stdout, stderr, err := u.dgdr(ns, "create", "-f", f, "--wait", "--timeout", "10m")
	t.Logf("kubectl dgdr create --wait (thorough, 4 GPUs):\n%s%s", stdout, stderr)
	if err != nil {
		t.Fatalf("create --wait: %v%s", err, c.podTrouble(t.Context(), ns))
	}
	c.timed("thorough: create --wait", began)
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	must(t, c.client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "thorough"}, d), "reading the DGDR")
	assert.Equal(t, v1alpha1.PhaseReady, d.Status.Phase)
	out, errOut, err := u.dgdr(ns, "results", "thorough")
	require.NoError(t, err, errOut)
	t.Logf("kubectl dgdr results thorough:\n%s", out)
	require.NotNil(t, d.Status.ProfilingResults, "results stored")
	measured := 0
	for _, p := range d.Status.ProfilingResults.Pareto {
		if p.Measured {
			measured++
		}
	}
	assert.Positive(t, measured, "the front holds measured points")
	// Every candidate was deleted after its benchmark.
	dgds := &unstructured.UnstructuredList{}
	dgds.SetGroupVersionKind(dgdGVK.GroupVersion().WithKind("DynamoGraphDeploymentList"))
	must(t, c.client.List(t.Context(), dgds, client.InNamespace(ns)), "listing DGDs")
	assert.Empty(t, dgds.Items, "no candidate DGD left")
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
