package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

func asThorough(d *v1alpha1.DynamoGraphDeploymentRequest) *v1alpha1.DynamoGraphDeploymentRequest {
	d.Spec.SearchStrategy = v1alpha1.SearchThorough
	return d
}

// TestWriteStatusGolden pins the report for each phase (clock fixed, no cluster).
func TestWriteStatusGolden(t *testing.T) {
	now := time.Date(2026, 1, 23, 12, 5, 0, 0, time.UTC)
	created := metav1.NewTime(now.Add(-5 * time.Minute))
	base := func(status v1alpha1.DynamoGraphDeploymentRequestStatus) *v1alpha1.DynamoGraphDeploymentRequest {
		return &v1alpha1.DynamoGraphDeploymentRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "qwen", Namespace: "ml", CreationTimestamp: created},
			Spec:       spec(),
			Status:     status,
		}
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "qwen-profile", Namespace: "ml"},
		Status:     batchv1.JobStatus{Active: 1},
	}
	done := job.DeepCopy()
	done.Status = batchv1.JobStatus{Succeeded: 1, Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}
	events := []corev1.Event{{
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "qwen-profile-x7k2p"},
		Type:           corev1.EventTypeWarning, Reason: "FailedScheduling", LastTimestamp: metav1.NewTime(now.Add(-4 * time.Minute)),
		Message: "0/3 nodes are available:\n3 Insufficient nvidia.com/gpu.",
	}}

	deployed := readyStatus("qwen")
	deployed.Phase = v1alpha1.PhaseDeployed
	deployed.DeploymentInfo = &v1alpha1.DeploymentInfo{Replicas: 5, AvailableReplicas: 5}
	failed := v1alpha1.DynamoGraphDeploymentRequestStatus{
		Phase: v1alpha1.PhaseFailed,
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionProfilingComplete, Status: metav1.ConditionFalse, Reason: "NoConfiguration",
			Message: "no configuration fits 16 h100_sxm GPUs", LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))}},
	}

	// A thorough search in progress shows its budget; done, the prediction beside the measured selection.
	deadline := metav1.NewTime(now.Add(5 * time.Hour))
	budget := &v1alpha1.ProfilingBudget{GPUs: 8, Deadline: &deadline, EstimatedGPUHours: 3.25, EstimatedWallTime: metav1.Duration{Duration: 35 * time.Minute},
		Candidates: 6, Measured: 2, Failed: 1, Pruned: 1, UsedGPUHours: 1.5}
	thorough := v1alpha1.DynamoGraphDeploymentRequestStatus{Phase: v1alpha1.PhaseProfiling, ProfilingResults: &v1alpha1.ProfilingResults{Budget: budget}}
	measured := readyStatus("qwen")
	measured.ProfilingResults.Budget = budget
	measured.ProfilingResults.SelectedConfig.Measured = true
	measured.ProfilingResults.SelectedConfig.Predicted = &v1alpha1.PredictedPerformance{TTFT: 80, ITL: 9.5, TokensPerSecondPerGPU: 1200}

	tests := []struct {
		name   string
		d      *v1alpha1.DynamoGraphDeploymentRequest
		job    *batchv1.Job
		dgd    *lifecycle.DGDState
		events []corev1.Event
	}{
		{name: "thorough-profiling", d: asThorough(base(thorough)), job: job},
		{name: "thorough-ready", d: asThorough(base(measured)), job: done},
		{name: "pending-without-webhook", d: base(v1alpha1.DynamoGraphDeploymentRequestStatus{})},
		{name: "profiling", d: base(v1alpha1.DynamoGraphDeploymentRequestStatus{Phase: v1alpha1.PhaseProfiling}), job: job, events: events},
		{name: "ready", d: base(readyStatus("qwen")), job: done},
		{name: "deployed", d: base(deployed), job: done, dgd: &lifecycle.DGDState{Found: true, Ready: true, Replicas: 5, AvailableReplicas: 5}},
		{name: "failed", d: base(failed), job: done},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, writeStatus(&out, tt.d, tt.job, tt.dgd, tt.events, now))
			golden(t, "status/"+tt.name+".txt", out.Bytes())
		})
	}
}

func TestStatus(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ctx := t.Context()
	ns := h.namespace("status")

	t.Run("a Deploying DGDR whose DGD is ready becomes Deployed", func(t *testing.T) {
		h := h.with(t)
		st := readyStatus("deploying")
		st.Phase = v1alpha1.PhaseDeploying
		h.dgdr(ns, "deploying", spec(), &st)
		h.dgd(ns, "deploying-dgd", map[string]any{
			"state": "successful",
			"components": map[string]any{
				"Frontend": map[string]any{"componentKind": "Deployment", "replicas": int64(1), "updatedReplicas": int64(1), "availableReplicas": int64(1)},
				"decode":   map[string]any{"componentKind": "Deployment", "replicas": int64(4), "updatedReplicas": int64(4), "availableReplicas": int64(3)},
			},
		})

		r := h.ok("status", "deploying", "-n", ns)
		assert.Regexp(t, `Phase:\s+Deployed\n`, r.out)
		assert.Regexp(t, `DGD:\s+deploying-dgd \(ready\)\n`, r.out)
		assert.Regexp(t, `Replicas:\s+4/5 available\n`, r.out)
		d := h.get(ns, "deploying")
		assert.Equal(t, v1alpha1.PhaseDeployed, d.Status.Phase)
		assert.Equal(t, &v1alpha1.DeploymentInfo{Replicas: 5, AvailableReplicas: 4}, d.Status.DeploymentInfo)
		c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionDeploymentReady)
		require.NotNil(t, c)
		assert.Equal(t, metav1.ConditionTrue, c.Status)
		assert.Equal(t, "Ready", c.Reason)
		assert.Equal(t, st.ProfilingResults.Pareto, d.Status.ProfilingResults.Pareto, "the profiler's results are kept")

		h.ok("status", "deploying", "-n", ns)
		assert.Equal(t, d.ResourceVersion, h.get(ns, "deploying").ResourceVersion, "nothing changed, nothing written")
	})

	t.Run("a DGD that is not ready leaves it Deploying with the reason", func(t *testing.T) {
		h := h.with(t)
		st := readyStatus("slow")
		st.Phase = v1alpha1.PhaseDeploying
		h.dgdr(ns, "slow", spec(), &st)
		h.dgd(ns, "slow-dgd", map[string]any{"state": "pending"})

		r := h.ok("status", "slow", "-n", ns)
		assert.Regexp(t, `DGD:\s+slow-dgd \(not ready: state pending\)\n`, r.out)
		assert.Contains(t, r.out, "Next: wait for the DGD to become ready: `kubectl get dynamographdeployment slow-dgd -n status`")
		d := h.get(ns, "slow")
		assert.Equal(t, v1alpha1.PhaseDeploying, d.Status.Phase)
		c := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionDeploymentReady)
		require.NotNil(t, c)
		assert.Equal(t, "DGD slow-dgd is not ready: state pending", c.Message)
	})

	t.Run("a deleted DGD is reported, the phase kept", func(t *testing.T) {
		h := h.with(t)
		st := readyStatus("gone")
		st.Phase = v1alpha1.PhaseDeployed
		h.dgdr(ns, "gone", spec(), &st)
		r := h.ok("status", "gone", "-n", ns)
		assert.Regexp(t, `DGD:\s+gone-dgd \(not found\)\n`, r.out)
		assert.Contains(t, r.out, "Next: the DGD gone-dgd was deleted: deploy it again with `kubectl dgdr promote gone -n status`")
		assert.Equal(t, v1alpha1.PhaseDeployed, h.get(ns, "gone").Status.Phase)
	})

	t.Run("the profiling Job, its state and the events", func(t *testing.T) {
		h := h.with(t)
		d := h.dgdr(ns, "profiling", spec(), &v1alpha1.DynamoGraphDeploymentRequestStatus{Phase: v1alpha1.PhaseProfiling, ProfilingJobName: "profiling-prof"})
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "profiling-prof", Namespace: ns, Labels: map[string]string{v1alpha1.LabelDGDRName: "profiling"}},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "profiler", Image: "dgdr-profiler"}},
			}}},
		}
		testenv.Must(t, h.env.Client.Create(ctx, job), "creating the Job")
		now := metav1.Now()
		job.Status = batchv1.JobStatus{Active: 1, StartTime: &now}
		testenv.Must(t, h.env.Client.Status().Update(ctx, job), "setting the Job's status")
		for i, ev := range []struct{ kind, name, reason, msg string }{
			{v1alpha1.Kind, "profiling", "Admitted", "profiling Job profiling-prof created"},
			{"Job", "profiling-prof", "SuccessfulCreate", "Created pod: profiling-prof-abcde"},
			{"ConfigMap", "profiling", "Unrelated", "an event about another kind of object with the same name"},
		} {
			e := &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: ev.name + "-" + string(rune('a'+i)), Namespace: ns},
				InvolvedObject: corev1.ObjectReference{Kind: ev.kind, Name: ev.name, Namespace: ns},
				Reason:         ev.reason, Message: ev.msg, Type: corev1.EventTypeNormal,
				LastTimestamp: metav1.NewTime(now.Add(time.Duration(i) * time.Second)),
			}
			testenv.Must(t, h.env.Client.Create(ctx, e), "creating an event")
		}

		r := h.ok("status", d.Name, "-n", ns)
		assert.Regexp(t, `Profiling Job:\s+profiling-prof \(active: 1 running, 0 failed\)\n`, r.out)
		assert.Contains(t, r.out, "Admitted           dynamographdeploymentrequest/profiling   profiling Job profiling-prof created")
		assert.Contains(t, r.out, "SuccessfulCreate   job/profiling-prof                       Created pod: profiling-prof-abcde")
		assert.NotContains(t, r.out, "Unrelated")
		assert.Contains(t, r.out, "Next: profiling is running; follow it with `kubectl dgdr logs profiling -n status -f`")
	})

	t.Run("errors", func(t *testing.T) {
		h := h.with(t)
		r := h.fail("status", "nope", "-n", ns)
		assert.Equal(t, "error: dynamographdeploymentrequest \"nope\" not found in namespace \"status\" (hint: list them with `kubectl dgdr get -n status`, or all namespaces with `kubectl dgdr get -A`)\n", r.errLine)
		r = h.fail("status")
		assert.Equal(t, "error: expected one DGDR name, got 0 arguments (hint: run `kubectl dgdr status NAME`; `kubectl dgdr get` lists the names)\n", r.errLine)
	})
}

// TestStatusReadOnlyUser: a user who may read but not write DGDR status still gets the report, and a
// warning that the move to Deployed was not recorded.
func TestStatusReadOnlyUser(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ctx := t.Context()
	ns := h.namespace("viewer")
	st := readyStatus("qwen")
	st.Phase = v1alpha1.PhaseDeploying
	h.dgdr(ns, "qwen", spec(), &st)
	h.dgd(ns, "qwen-dgd", map[string]any{"state": "successful"})

	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "dgdr-viewer"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"nvidia.com"}, Resources: []string{"dynamographdeploymentrequests", "dynamographdeployments"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{""}, Resources: []string{"pods", "events"}, Verbs: []string{"get", "list"}},
		},
	}
	testenv.Must(t, h.env.Client.Create(ctx, role), "creating the ClusterRole")
	testenv.Must(t, h.env.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "dgdr-viewer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "viewer"}},
	}), "binding the ClusterRole")
	user, err := h.env.Env.AddUser(envtest.User{Name: "viewer"}, nil)
	require.NoError(t, err)
	kc, err := user.KubeConfig()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "viewer")
	require.NoError(t, os.WriteFile(path, kc, 0o600))

	r := h.ok("status", "qwen", "-n", ns, "--kubeconfig", path)
	assert.Regexp(t, `Phase:\s+Deploying\n`, r.out)
	assert.Regexp(t, `DGD:\s+qwen-dgd \(ready\)\n`, r.out)
	assert.Contains(t, r.errOut, "Warning: could not record the deployment state in the DGDR's status")
	assert.Equal(t, v1alpha1.PhaseDeploying, h.get(ns, "qwen").Status.Phase)

	r = h.fail("delete", "qwen", "-n", ns, "--kubeconfig", path)
	assert.Contains(t, r.errLine, "is forbidden")
	assert.Contains(t, r.errLine, "(hint: your user lacks the RBAC permission; check with `kubectl auth can-i --list`)")
}
