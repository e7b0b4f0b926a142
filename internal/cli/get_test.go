package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// rows splits table output into lines of whitespace-separated fields.
func rows(out string) [][]string {
	var r [][]string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		r = append(r, strings.Fields(l))
	}
	return r
}

func TestGet(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	a, b := h.namespace("team-a"), h.namespace("team-b")
	h.namespace("empty")
	h.dgdr(a, "qwen", spec(), ptr.To(readyStatus("qwen")))
	h.dgdr(a, "bare", v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-8B"}, nil)
	h.dgdr(b, "llama", v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "meta-llama/Llama-3.1-8B", Backend: v1alpha1.BackendSGLang},
		&v1alpha1.DynamoGraphDeploymentRequestStatus{Phase: v1alpha1.PhaseProfiling})

	t.Run("table of the namespace, sorted by name", func(t *testing.T) {
		h := h.with(t)
		r := h.ok("get", "-n", a)
		got := rows(r.out)
		require.Len(t, got, 3)
		assert.Equal(t, []string{"NAME", "MODEL", "BACKEND", "STRATEGY", "PHASE", "RUN", "DGD", "AGE"}, got[0])
		assert.Equal(t, []string{"bare", "Qwen/Qwen3-8B", "<none>", "<none>", "Pending", "1", "<none>"}, got[1][:7])
		assert.Equal(t, []string{"qwen", "Qwen/Qwen3-0.6B", "vllm", "rapid", "Ready", "1", "qwen-dgd"}, got[2][:7])
		assert.Empty(t, r.errOut)
	})

	t.Run("wide adds workload, SLA and the selected configuration", func(t *testing.T) {
		h := h.with(t)
		r := h.ok("get", "qwen", "-n", a, "-o", "wide")
		lines := strings.Split(strings.TrimRight(r.out, "\n"), "\n")
		require.Len(t, lines, 2)
		assert.Equal(t, []string{"NAME", "MODEL", "BACKEND", "STRATEGY", "PHASE", "RUN", "DGD", "AGE", "ISL", "OSL", "TTFT", "ITL", "GPUS", "SELECTED"}, strings.Fields(lines[0]))
		assert.Contains(t, lines[1], "2048   256   300ms   20ms   6      vllm disagg 2x (1P tp1 bs1 + 2D tp1 bs128)")
	})

	t.Run("defaults show for unset fields in wide", func(t *testing.T) {
		h := h.with(t)
		got := rows(h.ok("get", "bare", "-n", a, "-o", "wide").out)
		assert.Equal(t, []string{"512", "128", "100ms", "15ms", "<none>", "<none>"}, got[1][8:])
	})

	t.Run("all namespaces adds the namespace column", func(t *testing.T) {
		h := h.with(t)
		got := rows(h.ok("get", "-A").out)
		require.Len(t, got, 4)
		assert.Equal(t, "NAMESPACE", got[0][0])
		assert.Equal(t, []string{"team-a", "bare"}, got[1][:2])
		assert.Equal(t, []string{"team-b", "llama", "meta-llama/Llama-3.1-8B", "sglang"}, got[3][:4])
	})

	t.Run("no headers", func(t *testing.T) {
		h := h.with(t)
		got := rows(h.ok("get", "-n", b, "--no-headers").out)
		require.Len(t, got, 1)
		assert.Equal(t, "llama", got[0][0])
	})

	t.Run("name", func(t *testing.T) {
		h := h.with(t)
		assert.Equal(t, "dynamographdeploymentrequest.nvidia.com/bare\ndynamographdeploymentrequest.nvidia.com/qwen\n", h.ok("get", "-n", a, "-o", "name").out)
	})

	t.Run("jsonpath", func(t *testing.T) {
		h := h.with(t)
		assert.Equal(t, "Ready", h.ok("get", "qwen", "-n", a, "-o", "jsonpath={.status.phase}").out)
		assert.Equal(t, "bare qwen", h.ok("get", "-n", a, "-o", "jsonpath={.items[*].metadata.name}").out)
	})

	t.Run("custom columns", func(t *testing.T) {
		h := h.with(t)
		got := rows(h.ok("get", "-n", a, "-o", "custom-columns=N:.metadata.name,SEL:.status.profilingResults.selectedConfig.index").out)
		assert.Equal(t, [][]string{{"N", "SEL"}, {"bare", "<none>"}, {"qwen", "1"}}, got)
	})

	t.Run("json of one object keeps every stored field", func(t *testing.T) {
		h := h.with(t)
		r := h.ok("get", "qwen", "-n", a, "-o", "json")
		u := &unstructured.Unstructured{}
		require.NoError(t, json.Unmarshal([]byte(r.out), &u.Object))
		assert.Equal(t, v1alpha1.Kind, u.GetKind())
		var d v1alpha1.DynamoGraphDeploymentRequest
		require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d))
		assert.Equal(t, readyStatus("qwen").ProfilingResults.Pareto, d.Status.ProfilingResults.Pareto)
		assert.Empty(t, u.GetManagedFields(), "managedFields are hidden as kubectl hides them")
	})

	t.Run("yaml of the namespace is a List", func(t *testing.T) {
		h := h.with(t)
		r := h.ok("get", "-n", a, "-o", "yaml")
		assert.True(t, strings.HasPrefix(r.out, "apiVersion: v1\nitems:\n"), r.out)
		assert.Contains(t, r.out, "kind: List\n")
	})

	t.Run("empty namespace is a notice on stderr", func(t *testing.T) {
		h := h.with(t)
		r := h.ok("get", "-n", "empty")
		assert.Empty(t, r.out)
		assert.Equal(t, "No resources found in empty namespace.\n", r.errOut)
	})

	errs := []struct {
		name string
		args []string
		want string
	}{
		{"not found", []string{"get", "nope", "-n", a}, `error: dynamographdeploymentrequest "nope" not found in namespace "team-a" (hint: list them with ` + "`kubectl dgdr get -n team-a`"},
		{"bad output", []string{"get", "-o", "chart"}, `unsupported output format "chart"`},
		{"name with -A", []string{"get", "qwen", "-A"}, "a name cannot be combined with -A"},
		{"two names", []string{"get", "a", "b"}, "accepts at most 1 arg(s), received 2"},
		{"unknown flag", []string{"get", "--watch"}, "unknown flag: --watch"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			h := h.with(t)
			r := h.fail(tt.args...)
			assert.Contains(t, r.errLine, tt.want)
		})
	}
}

func TestDGDRTableAge(t *testing.T) {
	created := time.Date(2026, 1, 23, 12, 0, 0, 0, time.UTC)
	d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "x", CreationTimestamp: metav1.NewTime(created)}}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	require.NoError(t, err)
	table, err := dgdrTable([]unstructured.Unstructured{{Object: obj}}, created.Add(90*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, "90m", table.Rows[0].Cells[7])
}
