package cli

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// harness runs the plugin in-process against a real control plane, as a user would from a shell.
type harness struct {
	t   *testing.T
	env *testenv.Env
}

func newHarness(t *testing.T, opts testenv.Options) *harness {
	t.Helper()
	return &harness{t: t, env: testenv.Start(t, opts)}
}

// with is the harness for a subtest: failures are reported on (and stop) the subtest.
func (h *harness) with(t *testing.T) *harness { return &harness{t: t, env: h.env} }

// result is what one invocation printed, and its error as main prints it (one line, with the hint).
type result struct {
	out, errOut string
	err         error
	errLine     string
}

// run executes `kubectl dgdr ARGS` with the harness's kubeconfig, stdin reading from in.
func (h *harness) run(in io.Reader, args ...string) result {
	h.t.Helper()
	if in == nil {
		in = strings.NewReader("")
	}
	var out, errOut bytes.Buffer
	root := NewRootCmd(genericiooptions.IOStreams{In: in, Out: &out, ErrOut: &errOut})
	root.SetArgs(append([]string{"--kubeconfig", h.env.Kubeconfig}, args...))
	err := root.ExecuteContext(h.t.Context())
	r := result{out: out.String(), errOut: errOut.String(), err: err}
	if err != nil {
		var line bytes.Buffer
		PrintError(&line, err)
		r.errLine = line.String()
	}
	return r
}

// ok runs the command and requires success.
func (h *harness) ok(args ...string) result {
	h.t.Helper()
	r := h.run(nil, args...)
	require.NoError(h.t, r.err, "kubectl dgdr %s: stderr: %s", strings.Join(args, " "), r.errOut)
	return r
}

// fail runs the command, requires an error and checks that main would print it as one line.
func (h *harness) fail(args ...string) result {
	h.t.Helper()
	r := h.run(nil, args...)
	require.Error(h.t, r.err, "kubectl dgdr %s should fail; stdout: %s", strings.Join(args, " "), r.out)
	require.Equal(h.t, 1, strings.Count(r.errLine, "\n"), "errors are one line: %q", r.errLine)
	return r
}

// namespace creates a fresh namespace so that subtests do not see each other's objects.
func (h *harness) namespace(name string) string {
	h.t.Helper()
	testenv.Must(h.t, h.env.Client.Create(h.t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}), "creating namespace %s", name)
	return name
}

// dgdr creates a DGDR with explicit fields (no webhook runs in most tests) and, when status is given,
// writes it as the profiler would.
func (h *harness) dgdr(ns, name string, spec v1alpha1.DynamoGraphDeploymentRequestSpec, status *v1alpha1.DynamoGraphDeploymentRequestStatus) *v1alpha1.DynamoGraphDeploymentRequest {
	h.t.Helper()
	d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	testenv.Must(h.t, h.env.Client.Create(h.t.Context(), d), "creating DGDR %s/%s", ns, name)
	if status != nil {
		h.setStatus(ns, name, *status)
	}
	return h.get(ns, name)
}

func (h *harness) setStatus(ns, name string, status v1alpha1.DynamoGraphDeploymentRequestStatus) {
	h.t.Helper()
	_, err := lifecycle.UpdateStatus(h.t.Context(), h.env.Client, types.NamespacedName{Namespace: ns, Name: name},
		func(d *v1alpha1.DynamoGraphDeploymentRequest) error {
			d.Status = status
			return nil
		})
	testenv.Must(h.t, err, "setting the status of %s/%s", ns, name)
}

func (h *harness) get(ns, name string) *v1alpha1.DynamoGraphDeploymentRequest {
	h.t.Helper()
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	testenv.Must(h.t, h.env.Client.Get(h.t.Context(), types.NamespacedName{Namespace: ns, Name: name}, d), "reading %s/%s", ns, name)
	return d
}

// dgd creates a DGD as the Dynamo operator would see it, with the status the operator would report.
func (h *harness) dgd(ns, name string, status map[string]any) *unstructured.Unstructured {
	h.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
	u.SetNamespace(ns)
	u.SetName(name)
	require.NoError(h.t, unstructured.SetNestedSlice(u.Object, []any{
		map[string]any{"name": "Frontend", "type": "frontend", "replicas": int64(1)},
	}, "spec", "components"))
	testenv.Must(h.t, h.env.Client.Create(h.t.Context(), u), "creating DGD %s/%s", ns, name)
	if status != nil {
		u.Object["status"] = status
		testenv.Must(h.t, h.env.Client.Status().Update(h.t.Context(), u), "setting the status of DGD %s/%s", ns, name)
	}
	return u
}

// spec is a typical request with every field a user would set explicitly.
func spec() v1alpha1.DynamoGraphDeploymentRequestSpec {
	return v1alpha1.DynamoGraphDeploymentRequestSpec{
		Model: "Qwen/Qwen3-0.6B", Backend: v1alpha1.BackendVLLM, SearchStrategy: v1alpha1.SearchRapid,
		Image:    "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.0.0",
		Workload: &v1alpha1.Workload{ISL: ptr.To[int32](2048), OSL: ptr.To[int32](256)},
		SLA:      &v1alpha1.SLA{TTFT: ptr.To(300.0), ITL: ptr.To(20.0)},
		Hardware: &v1alpha1.Hardware{GPUType: "h100_sxm", GPUsPerNode: ptr.To[int32](8), TotalGPUs: ptr.To[int32](16)},
	}
}

// points are three configurations as the profiler stores them: an aggregated one, the selected
// disaggregated one, and a larger aggregated one that misses the ITL target.
func points() []v1alpha1.ParetoPoint {
	return []v1alpha1.ParetoPoint{
		{
			Backend: "vllm", Mode: "agg", Parallelization: 1, GPUs: 4, Replicas: 4, Throughput: 9600, TTFT: 95, ITL: 8.5,
			TokensPerSecondPerGPU: 2400, TokensPerSecondPerUser: 117.6, MeetsSLA: true,
			Workers: []v1alpha1.Worker{{Role: "agg", Count: 1, TP: 1, PP: 1, EP: 1, DP: 1, Batch: 64}},
		},
		{
			Backend: "vllm", Mode: "disagg", Parallelization: 3, GPUs: 6, Replicas: 2, Throughput: 16800, TTFT: 140, ITL: 12.5,
			TokensPerSecondPerGPU: 2800, TokensPerSecondPerUser: 80, MeetsSLA: true,
			Workers: []v1alpha1.Worker{
				{Role: "prefill", Count: 1, TP: 1, PP: 1, EP: 1, DP: 1, Batch: 1},
				{Role: "decode", Count: 2, TP: 1, PP: 1, EP: 1, DP: 1, Batch: 128},
			},
		},
		{
			Backend: "vllm", Mode: "agg", Parallelization: 2, GPUs: 16, Replicas: 8, Throughput: 56000, TTFT: 250, ITL: 24,
			TokensPerSecondPerGPU: 3500, TokensPerSecondPerUser: 41.7, MeetsSLA: false,
			Workers: []v1alpha1.Worker{{Role: "agg", Count: 1, TP: 2, PP: 1, EP: 1, DP: 1, Batch: 256}},
		},
	}
}

// readyStatus is what the profiler records when profiling is done (phase Ready, point 1 selected).
func readyStatus(name string) v1alpha1.DynamoGraphDeploymentRequestStatus {
	start := metav1.NewTime(time.Date(2026, 1, 23, 12, 0, 0, 0, time.UTC))
	end := metav1.NewTime(start.Add(35 * time.Second))
	pts := points()
	return v1alpha1.DynamoGraphDeploymentRequestStatus{
		Phase:   v1alpha1.PhaseReady,
		DGDName: name + "-dgd",
		Conditions: []metav1.Condition{
			{Type: v1alpha1.ConditionProfilingComplete, Status: metav1.ConditionTrue, Reason: "SLAMet", Message: "rapid search evaluated 3 configurations", LastTransitionTime: end},
			{Type: v1alpha1.ConditionDGDGenerated, Status: metav1.ConditionTrue, Reason: "Generated", Message: "DGD generated", LastTransitionTime: end},
		},
		ProfilingResults: &v1alpha1.ProfilingResults{
			Pareto:         pts,
			SelectedConfig: &v1alpha1.SelectedConfig{ParetoPoint: pts[1], Index: 1, Reason: "highest tokens/s/GPU meeting TTFT ≤ 300ms and ITL ≤ 20ms"},
			StartTime:      &start,
			CompletionTime: &end,
		},
	}
}

// dgdState reads a DGD's readiness as the plugin does.
func (h *harness) dgdState(ns, name string) lifecycle.DGDState {
	h.t.Helper()
	st, err := lifecycle.GetDGDState(h.t.Context(), h.env.Client, ns, name)
	testenv.Must(h.t, err, "reading DGD %s/%s", ns, name)
	return st
}
