package cli

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

	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// TestKubectlPluginDiscovery builds kubectl-dgdr and runs it as users do, through kubectl's plugin
// mechanism (`kubectl dgdr …` finds kubectl-dgdr on PATH), against the real control plane.
func TestKubectlPluginDiscovery(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ns := h.namespace("plugin")
	bin := t.TempDir()
	build := exec.CommandContext(t.Context(), "go", "build", "-o", filepath.Join(bin, "kubectl-dgdr"), "./cmd/kubectl-dgdr")
	build.Dir = testenv.RepoRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building the plugin: %s", out)

	kubectl := func(args ...string) (string, string, int) {
		cmd := exec.CommandContext(t.Context(), testenv.Kubectl(t), args...)
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+h.env.Kubeconfig)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		return stdout.String(), stderr.String(), code
	}

	plugins, _, code := kubectl("plugin", "list", "--name-only")
	require.Equal(t, 0, code)
	assert.Contains(t, plugins, "kubectl-dgdr")

	stdout, stderr, code := kubectl("dgdr", "create", "qwen", "-n", ns, "--model", "Qwen/Qwen3-0.6B", "--isl", "4096")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "dynamographdeploymentrequest.nvidia.com/qwen created\n", stdout)
	assert.Equal(t, int32(4096), *h.get(ns, "qwen").Spec.Workload.ISL)

	stdout, stderr, code = kubectl("dgdr", "get", "-n", ns, "-o", "wide")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, []string{"qwen", "Qwen/Qwen3-0.6B", "<none>", "<none>", "Pending", "1", "<none>"}, rows(stdout)[1][:7])
	assert.Contains(t, stdout, "4096")

	// kubectl also finds the DGDR by its short name, and prints the CRD's printer columns.
	stdout, _, code = kubectl("get", "dgdr", "-n", ns)
	require.Equal(t, 0, code)
	assert.Equal(t, "qwen", rows(stdout)[1][0])

	_, stderr, code = kubectl("dgdr", "status", "nope", "-n", ns)
	assert.Equal(t, 1, code)
	assert.Equal(t, "error: dynamographdeploymentrequest \"nope\" not found in namespace \"plugin\" (hint: list them with `kubectl dgdr get -n plugin`, or all namespaces with `kubectl dgdr get -A`)\n", stderr)

	// Dynamic completion of DGDR names through cobra's __complete, as kubectl_complete-dgdr calls it.
	stdout, _, code = kubectl("dgdr", "__complete", "status", "-n", ns, "")
	require.Equal(t, 0, code)
	assert.Equal(t, "qwen\tPending", strings.Split(stdout, "\n")[0])

	_, _, code = kubectl("dgdr", "delete", "qwen", "-n", ns)
	require.Equal(t, 0, code)
	list := &v1alpha1.DynamoGraphDeploymentRequestList{}
	require.NoError(t, h.env.Client.List(t.Context(), list))
	assert.Empty(t, list.Items)
}
