package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

func TestCreate(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ctx := t.Context()
	ns := h.namespace("create")

	t.Run("from flags sets only what was given", func(t *testing.T) {
		h := h.with(t)
		r := h.ok("create", "demo", "-n", ns, "--model", "Qwen/Qwen3-0.6B", "--isl", "1024", "--ttft", "200",
			"--backend", "sglang", "--auto-apply", "--total-gpus", "8", "--model-cache-pvc", "models", "--model-cache-path", "qwen")
		assert.Equal(t, "dynamographdeploymentrequest.nvidia.com/demo created\n", r.out)
		d := h.get(ns, "demo")
		assert.Equal(t, "Qwen/Qwen3-0.6B", d.Spec.Model)
		assert.Equal(t, v1alpha1.BackendSGLang, d.Spec.Backend)
		assert.True(t, d.Spec.AutoApply)
		assert.Equal(t, &v1alpha1.Workload{ISL: ptr.To[int32](1024)}, d.Spec.Workload, "unset OSL stays unset for the webhook to default")
		assert.Equal(t, &v1alpha1.SLA{TTFT: ptr.To(200.0)}, d.Spec.SLA)
		assert.Equal(t, &v1alpha1.Hardware{TotalGPUs: ptr.To[int32](8)}, d.Spec.Hardware)
		assert.Equal(t, &v1alpha1.ModelCache{PVCName: "models", PVCPath: "qwen"}, d.Spec.ModelCache)
		assert.Empty(t, d.Spec.SearchStrategy)
		assert.Equal(t, v1alpha1.FieldManager, d.ManagedFields[0].Manager)
	})

	t.Run("from a YAML file", func(t *testing.T) {
		h := h.with(t)
		r := h.ok("create", "-f", filepath.Join("testdata", "create", "qwen.yaml"), "-n", ns, "-o", "name")
		assert.Equal(t, "dynamographdeploymentrequest.nvidia.com/qwen\n", r.out)
		d := h.get(ns, "qwen")
		assert.Equal(t, v1alpha1.BackendTRTLLM, d.Spec.Backend)
		assert.Equal(t, 512, d.Spec.OSL())
		assert.Equal(t, 150.0, d.Spec.TTFT())
	})

	t.Run("from JSON on stdin, in the file's namespace", func(t *testing.T) {
		h := h.with(t)
		h.namespace("json-ns")
		data, err := os.ReadFile(filepath.Join("testdata", "create", "qwen.json"))
		require.NoError(t, err)
		r := h.run(strings.NewReader(string(data)), "create", "-f", "-", "-o", "jsonpath={.metadata.namespace}/{.metadata.name}")
		require.NoError(t, r.err, r.errOut)
		assert.Equal(t, "json-ns/qwen-json", r.out)
		assert.Equal(t, v1alpha1.SearchRapid, h.get("json-ns", "qwen-json").Spec.SearchStrategy)
	})

	t.Run("client dry run prints the object and sends nothing", func(t *testing.T) {
		h := h.with(t)
		r := h.ok("create", "preview", "-n", ns, "--model", "Qwen/Qwen3-0.6B", "--osl", "64", "--dry-run=client", "-o", "yaml")
		var d v1alpha1.DynamoGraphDeploymentRequest
		require.NoError(t, yaml.UnmarshalStrict([]byte(r.out), &d))
		assert.Equal(t, "DynamoGraphDeploymentRequest", d.Kind)
		assert.Equal(t, "nvidia.com/v1alpha1", d.APIVersion)
		assert.Equal(t, ns, d.Namespace)
		assert.Equal(t, 64, d.Spec.OSL())
		err := h.env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "preview"}, &v1alpha1.DynamoGraphDeploymentRequest{})
		assert.True(t, apierrors.IsNotFound(err), "a client dry run creates nothing: %v", err)

		r = h.ok("create", "preview", "-n", ns, "--model", "Qwen/Qwen3-0.6B", "--dry-run=client")
		assert.Equal(t, "dynamographdeploymentrequest.nvidia.com/preview created (dry run)\n", r.out)
	})

	t.Run("server dry run is checked by the API server and stores nothing", func(t *testing.T) {
		h := h.with(t)
		r := h.ok("create", "preview", "-n", ns, "--model", "Qwen/Qwen3-0.6B", "--dry-run=server")
		assert.Equal(t, "dynamographdeploymentrequest.nvidia.com/preview created (server dry run)\n", r.out)
		err := h.env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "preview"}, &v1alpha1.DynamoGraphDeploymentRequest{})
		assert.True(t, apierrors.IsNotFound(err), "a server dry run stores nothing: %v", err)

		r = h.ok("create", "preview", "-n", ns, "--model", "Qwen/Qwen3-0.6B", "--dry-run=server", "-o", "json")
		assert.Contains(t, r.out, `"uid"`, "the server's answer is printed, with server-set fields")
	})

	t.Run("an existing DGDR is not replaced", func(t *testing.T) {
		h := h.with(t)
		r := h.fail("create", "demo", "-n", ns, "--model", "Qwen/Qwen3-8B")
		assert.Contains(t, r.errLine, `dynamographdeploymentrequest "demo" already exists in namespace "create"`)
		assert.Contains(t, r.errLine, "(hint: change its spec with `kubectl edit dgdr demo -n create` (a new profiling run)")
		assert.Equal(t, "Qwen/Qwen3-0.6B", h.get(ns, "demo").Spec.Model)
	})

	t.Run("a status in the file is dropped with a warning", func(t *testing.T) {
		h := h.with(t)
		in := `apiVersion: nvidia.com/v1alpha1
kind: DynamoGraphDeploymentRequest
metadata: {name: with-status}
spec: {model: Qwen/Qwen3-0.6B}
status: {phase: Ready}
`
		r := h.run(strings.NewReader(in), "create", "-n", ns, "-f", "-")
		require.NoError(t, r.err)
		assert.Contains(t, r.errOut, "Warning: stdin has a status; it is ignored")
		assert.Empty(t, h.get(ns, "with-status").Status.Phase)
	})
}

func TestCreateErrors(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ns := h.namespace("errors")
	file := func(name string) string { return filepath.Join("testdata", "create", name) }

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "nothing to create", args: []string{"create"}, want: []string{"no DGDR to create", "hint: pass -f FILE"}},
		{name: "name without model", args: []string{"create", "x"}, want: []string{"--model is required", "hint: pass a Hugging Face id"}},
		{name: "file and name", args: []string{"create", "x", "-f", file("qwen.yaml")}, want: []string{"both -f and a NAME"}},
		{name: "file and spec flags", args: []string{"create", "-f", file("qwen.yaml"), "--isl", "10", "--backend", "vllm"}, want: []string{"--backend, --isl cannot be combined with -f"}},
		{name: "missing file", args: []string{"create", "-f", file("nope.yaml")}, want: []string{"reading testdata/create/nope.yaml", "no such file"}},
		{name: "unknown field", args: []string{"create", "-f", file("typo.yaml")}, want: []string{`unknown field "spec.worklaod"`, "kubectl explain"}},
		{name: "two objects", args: []string{"create", "-f", file("two.yaml")}, want: []string{"holds 2 objects, expected one DynamoGraphDeploymentRequest"}},
		{name: "not a DGDR", args: []string{"create", "-f", file("deployment.yaml")}, want: []string{`apiVersion "apps/v1" kind "Deployment"`, "hint: set apiVersion: nvidia.com/v1alpha1"}},
		{name: "invalid spec", args: []string{"create", "-f", file("invalid.yaml")}, want: []string{`spec.backend: Unsupported value: "tensorflow"`, "spec.sla.ttft: Invalid value: -1"}},
		{name: "invalid flags", args: []string{"create", "x", "--model", "Qwen/Qwen3-0.6B", "--strategy", "fast", "--isl", "0"}, want: []string{`spec.searchStrategy: Unsupported value: "fast"`, "spec.workload.isl"}},
		{name: "invalid name", args: []string{"create", "My_Model", "--model", "Qwen/Qwen3-0.6B"}, want: []string{`invalid name "My_Model"`}},
		{name: "namespace mismatch", args: []string{"create", "-f", file("qwen.json"), "-n", ns}, want: []string{`the file's namespace "json-ns" does not match -n "errors"`}},
		{name: "bad dry-run", args: []string{"create", "x", "--model", "a/b", "--dry-run=maybe"}, want: []string{`invalid --dry-run "maybe"`}},
		{name: "wait with dry-run", args: []string{"create", "x", "--model", "a/b", "--dry-run=server", "--wait"}, want: []string{"--wait cannot be combined with --dry-run"}},
		{name: "bad output", args: []string{"create", "x", "--model", "a/b", "-o", "table"}, want: []string{`unsupported output format "table"`, "hint: use -o yaml, json or name"}},
		{name: "unknown flag", args: []string{"create", "x", "--frobnicate"}, want: []string{"unknown flag: --frobnicate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h.with(t)
			r := h.fail(tt.args...)
			for _, w := range tt.want {
				assert.Contains(t, r.errLine, w)
			}
			assert.Empty(t, r.out)
		})
	}
	list := &v1alpha1.DynamoGraphDeploymentRequestList{}
	require.NoError(t, h.env.Client.List(t.Context(), list))
	assert.Empty(t, list.Items, "no failed create stored anything")
}

func TestCreateWait(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ns := h.namespace("wait")

	// profile plays the profiler: once the DGDR exists, it walks it to the given final status.
	profile := func(name string, final v1alpha1.DynamoGraphDeploymentRequestStatus) {
		go func() {
			key := types.NamespacedName{Namespace: ns, Name: name}
			for {
				if err := h.env.Client.Get(t.Context(), key, &v1alpha1.DynamoGraphDeploymentRequest{}); err == nil {
					break
				}
				select {
				case <-t.Context().Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
			for _, st := range []v1alpha1.DynamoGraphDeploymentRequestStatus{{Phase: v1alpha1.PhaseProfiling}, final} {
				if _, err := lifecycle.UpdateStatus(t.Context(), h.env.Client, key, func(d *v1alpha1.DynamoGraphDeploymentRequest) error {
					d.Status = st
					return nil
				}); err != nil {
					t.Errorf("playing the profiler: %v", err)
				}
			}
		}()
	}

	t.Run("until Ready", func(t *testing.T) {
		h := h.with(t)
		profile("ready", readyStatus("ready"))
		r := h.ok("create", "ready", "-n", ns, "--model", "Qwen/Qwen3-0.6B", "--wait")
		assert.Equal(t, "dynamographdeploymentrequest.nvidia.com/ready created\n", r.out, "progress stays off stdout")
		lines := strings.Split(strings.TrimSpace(r.errOut), "\n")
		last := lines[len(lines)-1]
		assert.Contains(t, last, "ready is Ready. Next: run `kubectl dgdr results ready -n wait`")
		for _, l := range lines {
			_, err := time.Parse(time.RFC3339, strings.Fields(l)[0])
			assert.NoError(t, err, "without a terminal every line starts with a timestamp: %q", l)
		}
	})

	t.Run("a failure is an error with the reason", func(t *testing.T) {
		h := h.with(t)
		profile("broken", v1alpha1.DynamoGraphDeploymentRequestStatus{
			Phase: v1alpha1.PhaseFailed,
			Conditions: []metav1.Condition{{
				Type: v1alpha1.ConditionProfilingComplete, Status: metav1.ConditionFalse, Reason: "NoConfiguration",
				Message: "no configuration of Qwen/Qwen3-0.6B fits 1 h100_sxm GPUs", LastTransitionTime: metav1.Now(),
			}},
		})
		r := h.fail("create", "broken", "-n", ns, "--model", "Qwen/Qwen3-0.6B", "--wait")
		assert.Contains(t, r.errLine, "error: DGDR broken failed: NoConfiguration: no configuration of Qwen/Qwen3-0.6B fits 1 h100_sxm GPUs")
		assert.Contains(t, r.errLine, "`kubectl dgdr status broken -n wait`")
	})

	t.Run("timeout", func(t *testing.T) {
		h := h.with(t)
		r := h.fail("create", "slow", "-n", ns, "--model", "Qwen/Qwen3-0.6B", "--wait", "--timeout", "1s")
		assert.Contains(t, r.errLine, "timed out after 1s waiting for DGDR slow, still Pending")
		assert.Contains(t, r.errLine, "hint: it goes on in the cluster")
	})
}

// FuzzReadDGDR feeds the manifest reader arbitrary input: it never panics, and what it accepts is one
// DGDR without status that reads back the same after encoding.
func FuzzReadDGDR(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "create", "*"))
	require.NoError(f, err)
	for _, file := range files {
		data, err := os.ReadFile(file)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte("---\n---\n"))
	f.Add([]byte(`{"apiVersion":"nvidia.com/v1alpha1","kind":"DynamoGraphDeploymentRequest","spec":{"model":"a/b","model":"c/d"}}`))
	read := func(data []byte) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
		o := &CreateOptions{Filename: "-"}
		o.In, o.ErrOut = bytes.NewReader(data), io.Discard
		return o.readFile()
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := read(data)
		if err != nil {
			return
		}
		assert.Equal(t, v1alpha1.Kind, d.Kind)
		assert.Empty(t, d.Status.Phase)
		again, err := json.Marshal(d)
		require.NoError(t, err)
		d2, err := read(again)
		require.NoError(t, err, "re-reading %s", again)
		assert.Equal(t, d, d2)
	})
}
