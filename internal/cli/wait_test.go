package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

var t0 = time.Date(2026, 1, 23, 12, 0, 0, 0, time.UTC)

// walk feeds the progress display the phases of a typical request.
func walk(p *progress) {
	p.observe(t0, "Pending", "")
	p.observe(t0.Add(time.Second), "Pending", "") // nothing new: nothing printed (plain), spinner turns (terminal)
	p.observe(t0.Add(3*time.Second), "Profiling", "rapid search running")
	p.redraw(t0.Add(4 * time.Second))
	p.observe(t0.Add(38*time.Second), "Ready", "rapid search evaluated 41 configurations")
	p.finish(t0.Add(38*time.Second), "qwen is Ready. Next: run `kubectl dgdr results qwen`")
}

func TestProgressPlain(t *testing.T) {
	var out bytes.Buffer
	walk(&progress{w: &out, name: "qwen"})
	assert.Equal(t, `2026-01-23T12:00:00Z qwen Pending
2026-01-23T12:00:03Z qwen Profiling: rapid search running
2026-01-23T12:00:38Z qwen Ready: rapid search evaluated 41 configurations
2026-01-23T12:00:38Z qwen is Ready. Next: run `+"`kubectl dgdr results qwen`"+`
`, out.String())
}

func TestProgressTerminal(t *testing.T) {
	var out bytes.Buffer
	walk(&progress{w: &out, terminal: true, name: "qwen", width: 40})
	const clear = "\r\x1b[K"
	assert.Equal(t, ""+
		"⠋ qwen Pending (0s)"+
		clear+"⠙ qwen Pending (1s)"+
		clear+"✓ qwen Pending (3s)\n"+
		"⠹ qwen Profiling (0s) rapid search run…"+ // cut to the terminal's width
		clear+"⠸ qwen Profiling (1s) rapid search run…"+
		clear+"✓ qwen Profiling (35s)\n"+
		"⠼ qwen Ready (0s) rapid search evaluat…"+
		clear+"✓ qwen Ready (0s)\n"+
		"qwen is Ready. Next: run `kubectl dgdr results qwen`\n", out.String())
}

func TestDone(t *testing.T) {
	sel := func(meets bool) *v1alpha1.ProfilingResults {
		return &v1alpha1.ProfilingResults{SelectedConfig: &v1alpha1.SelectedConfig{ParetoPoint: v1alpha1.ParetoPoint{MeetsSLA: meets}}}
	}
	for _, tt := range []struct {
		name      string
		phase     v1alpha1.Phase
		autoApply bool
		results   *v1alpha1.ProfilingResults
		done      bool
	}{
		{name: "pending", phase: "", done: false},
		{name: "profiling", phase: v1alpha1.PhaseProfiling, done: false},
		{name: "ready", phase: v1alpha1.PhaseReady, results: sel(true), done: true},
		{name: "ready, the profiler deploys next", phase: v1alpha1.PhaseReady, autoApply: true, results: sel(true), done: false},
		{name: "ready, SLA missed: left to the user", phase: v1alpha1.PhaseReady, autoApply: true, results: sel(false), done: true},
		{name: "deploying", phase: v1alpha1.PhaseDeploying, autoApply: true, done: false},
		{name: "deployed", phase: v1alpha1.PhaseDeployed, done: true},
		{name: "failed", phase: v1alpha1.PhaseFailed, done: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &v1alpha1.DynamoGraphDeploymentRequest{}
			d.Spec.AutoApply, d.Status.Phase, d.Status.ProfilingResults = tt.autoApply, tt.phase, tt.results
			assert.Equal(t, tt.done, done(d))
		})
	}
}

// TestPromoteWait follows a promoted DGDR until the Dynamo operator (played here) reports its DGD ready.
func TestPromoteWait(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ns := h.namespace("wait-deploy")
	d := h.profiled(ns, "qwen")
	key := types.NamespacedName{Namespace: ns, Name: d.Status.DGDName}
	go func() {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
		for h.env.Client.Get(t.Context(), key, u) != nil {
			select {
			case <-t.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		u.Object["status"] = map[string]any{"state": "successful", "components": map[string]any{
			"decode": map[string]any{"componentKind": "Deployment", "replicas": int64(4), "updatedReplicas": int64(4), "availableReplicas": int64(4)},
		}}
		if err := h.env.Client.Status().Update(t.Context(), u); err != nil {
			t.Errorf("playing the Dynamo operator: %v", err)
		}
	}()

	r := h.ok("promote", "qwen", "-n", ns, "--wait")
	assert.Contains(t, r.errOut, "qwen is Deployed. Next: the DGD "+d.Status.DGDName+" serves the model")
	got := h.get(ns, "qwen")
	require.Equal(t, v1alpha1.PhaseDeployed, got.Status.Phase)
	assert.Equal(t, &v1alpha1.DeploymentInfo{Replicas: 4, AvailableReplicas: 4}, got.Status.DeploymentInfo)
}

// TestWaitJobDeath: a profiling Job that died (here past its deadline, as the Job controller records
// it) ends `create --wait` at once with the cause, and the DGDR is recorded Failed for everyone else.
func TestWaitJobDeath(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ns := h.namespace("death")
	// deadJob plays the webhook and the Job controller: once the DGDR is stored, its Job (named after
	// its UID) exists and has died.
	deadJob := func(dgdr string) {
		d := &v1alpha1.DynamoGraphDeploymentRequest{}
		require.Eventually(t, func() bool {
			return h.env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: dgdr}, d) == nil
		}, 30*time.Second, 20*time.Millisecond)
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: expand.ProfilingJobName(dgdr, d.UID), Namespace: ns, Labels: map[string]string{v1alpha1.LabelDGDRName: dgdr}},
			Spec: batchv1.JobSpec{ActiveDeadlineSeconds: ptr.To[int64](60), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "profiler", Image: "dgdr-profiler"}},
			}}},
		}
		require.NoError(t, h.env.Client.Create(t.Context(), job))
		at := metav1.Now()
		job.Status = batchv1.JobStatus{StartTime: ptr.To(metav1.NewTime(at.Add(-2 * time.Minute))), Conditions: []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonDeadlineExceeded, Message: "Job was active longer than specified deadline", LastTransitionTime: at, LastProbeTime: at},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonDeadlineExceeded, Message: "Job was active longer than specified deadline", LastTransitionTime: at, LastProbeTime: at},
		}}
		require.NoError(t, h.env.Client.Status().Update(t.Context(), job))
	}
	died := make(chan struct{})
	go func() {
		defer close(died)
		deadJob("dead")
	}()

	r := h.fail("create", "dead", "-n", ns, "--model", "Qwen/Qwen3-0.6B", "--wait", "--timeout", "10m")
	<-died
	assert.Regexp(t, "error: DGDR dead failed: DeadlineExceeded: profiling Job dead-profile-[0-9a-f]{5} ran past its activeDeadlineSeconds", r.errLine)
	assert.Contains(t, r.errLine, "`kubectl dgdr status dead -n death`")
	assert.NotContains(t, r.errLine, "timed out")

	d := h.get(ns, "dead")
	assert.Equal(t, v1alpha1.PhaseFailed, d.Status.Phase)
	c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionProfilingComplete)
	require.NotNil(t, c)
	assert.Equal(t, v1alpha1.ReasonDeadlineExceeded, c.Reason)

	// status reads the same Job: the cause stays recorded, nothing new is written.
	rv := d.ResourceVersion
	out := h.ok("status", "dead", "-n", ns).out
	assert.Contains(t, out, "DeadlineExceeded")
	assert.Equal(t, rv, h.get(ns, "dead").ResourceVersion)

	// get is the first to read this one's dead Job.
	h.dgdr(ns, "gone", v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-0.6B"}, nil)
	deadJob("gone")
	assert.Equal(t, "Failed", h.ok("get", "gone", "-n", ns, "-o", "jsonpath={.status.phase}").out)
}
