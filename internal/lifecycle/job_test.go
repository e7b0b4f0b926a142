package lifecycle_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// jobFailed is a Job as the Job controller leaves it when it gives up for reason.
func jobFailed(reason, message string) batchv1.JobStatus {
	at := metav1.NewTime(now.Add(-time.Minute))
	return batchv1.JobStatus{
		StartTime: ptr.To(metav1.NewTime(now.Add(-time.Hour))),
		Failed:    2,
		Conditions: []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: reason, Message: message, LastTransitionTime: at, LastProbeTime: at},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: reason, Message: message, LastTransitionTime: at, LastProbeTime: at},
		},
	}
}

// terminated is a profiler pod that ended as the kubelet reports it.
func terminated(reason string, code int32, message string) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "profiler", Image: "dgdr-profiler:dev", ImageID: "sha256:0",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			Reason: reason, ExitCode: code, Message: message, StartedAt: metav1.NewTime(now.Add(-10 * time.Minute)), FinishedAt: metav1.NewTime(now.Add(-2 * time.Minute)),
		}},
	}}}
}

// waiting is a pending profiler pod whose container waits for reason.
func waiting(reason, message string) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "profiler", Image: "registry.example/dgdr-profiler:typo",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
		}}}
}

// unschedulable is a pod the scheduler could not place since `since`.
func unschedulable(since time.Duration) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.", LastTransitionTime: metav1.NewTime(now.Add(-since)),
	}}}
}

const saMissing = `Error creating: pods "qwen-profile-" is forbidden: error looking up service account ns/dgdr-profiler: serviceaccount "dgdr-profiler" not found`

func TestDiagnoseJob(t *testing.T) {
	running := batchv1.JobStatus{Active: 1, StartTime: ptr.To(metav1.NewTime(now.Add(-time.Minute)))}
	tests := []struct {
		name   string
		job    batchv1.JobStatus
		pods   []corev1.PodStatus
		events []corev1.Event
		reason string
		says   string
	}{
		{name: "running", job: running, pods: []corev1.PodStatus{{Phase: corev1.PodRunning}}},
		{name: "succeeded", job: batchv1.JobStatus{Succeeded: 1, Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}},
		{name: "a failed try with retries left", job: running, pods: []corev1.PodStatus{terminated("Error", 1, "boom"), {Phase: corev1.PodRunning}}},
		{name: "deadline", job: jobFailed(batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline"),
			pods: []corev1.PodStatus{terminated("OOMKilled", 137, "")}, reason: v1alpha1.ReasonDeadlineExceeded, says: "activeDeadlineSeconds"},
		{name: "backoff limit", job: jobFailed(batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit"),
			pods: []corev1.PodStatus{terminated("Error", 1, "reading DGDR: connection refused")}, reason: v1alpha1.ReasonBackoffLimitExceeded, says: "exited 1 (reading DGDR: connection refused)"},
		{name: "out of memory", job: jobFailed(batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit"),
			pods: []corev1.PodStatus{terminated("Error", 1, ""), terminated("OOMKilled", 137, "")}, reason: v1alpha1.ReasonOOMKilled, says: "limit 2Gi"},
		{name: "pod failure policy", job: jobFailed(batchv1.JobReasonPodFailurePolicy, "Container profiler for pod ns/x failed with exit code 3 matching FailJob rule at index 1"),
			reason: v1alpha1.ReasonJobFailed, says: "exit code 3"},
		{name: "image pull back-off", job: running, pods: []corev1.PodStatus{waiting("ImagePullBackOff", `Back-off pulling image "registry.example/dgdr-profiler:typo"`)},
			reason: v1alpha1.ReasonImagePullBackOff, says: "imagePullSecrets"},
		{name: "image pull error", job: running, pods: []corev1.PodStatus{waiting("ErrImagePull", "manifest unknown")}, reason: v1alpha1.ReasonImagePullBackOff, says: "manifest unknown"},
		{name: "crash loop is not an image problem", job: running, pods: []corev1.PodStatus{waiting("ContainerCreating", "")}},
		{name: "unschedulable for long", job: running, pods: []corev1.PodStatus{unschedulable(10 * time.Minute)}, reason: v1alpha1.ReasonUnschedulable, says: "node affinity"},
		{name: "unschedulable for a moment: an autoscaler may add a node", job: running, pods: []corev1.PodStatus{unschedulable(time.Minute)}},
		{name: "missing ServiceAccount", job: batchv1.JobStatus{StartTime: running.StartTime},
			events: []corev1.Event{{Reason: "SuccessfulCreate", Message: "Created pod: x"}, {Type: corev1.EventTypeWarning, Reason: "FailedCreate", Message: saMissing}},
			reason: v1alpha1.ReasonServiceAccountMissing, says: `serviceaccount "dgdr-profiler" not found`},
		{name: "another FailedCreate (quota) is not a missing ServiceAccount", job: batchv1.JobStatus{StartTime: running.StartTime},
			events: []corev1.Event{{Reason: "FailedCreate", Message: `pods "x" is forbidden: exceeded quota: compute`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "qwen-profile", Namespace: "ns"}, Status: tt.job}
			var pods []corev1.Pod
			for i, st := range tt.pods {
				pods = append(pods, corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: "qwen-profile-" + string(rune('a'+i))},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "profiler", Resources: corev1.ResourceRequirements{
						Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}}}},
					Status: st,
				})
			}
			death := lifecycle.DiagnoseJob(job, pods, tt.events, now)
			if tt.reason == "" {
				assert.Nil(t, death)
				return
			}
			require.NotNil(t, death)
			assert.Equal(t, tt.reason, death.Reason)
			assert.Contains(t, death.Message, tt.says)
			assert.Contains(t, death.Message, "qwen-profile")
		})
	}
}

// TestObserveJob writes Job, pod and event status as the Job controller and the kubelet would, on the
// real API server, and checks the plugin's half records the cause once, and only while profiling.
func TestObserveJob(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	c := env.Client
	ctx := t.Context()
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "jobs"}}))

	setup := func(t *testing.T, name string, phase v1alpha1.Phase) (*v1alpha1.DynamoGraphDeploymentRequest, *batchv1.Job) {
		d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "jobs"},
			Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-8B"}}
		d.Default("img")
		require.NoError(t, c.Create(ctx, d))
		if phase != "" {
			d.Status.Phase = phase
			require.NoError(t, c.Status().Update(ctx, d))
		}
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-profile", Namespace: "jobs"},
			Spec: batchv1.JobSpec{BackoffLimit: ptr.To[int32](1), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "profiler", Image: "registry.example/dgdr-profiler:typo"}},
			}}},
		}
		require.NoError(t, c.Create(ctx, job))
		return d, job
	}
	pod := func(t *testing.T, job *batchv1.Job, st corev1.PodStatus) {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-x", Namespace: job.Namespace, Labels: job.Spec.Selector.MatchLabels},
			Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "profiler", Image: "registry.example/dgdr-profiler:typo"}}},
		}
		require.NoError(t, c.Create(ctx, p))
		p.Status = st
		require.NoError(t, c.Status().Update(ctx, p))
	}

	t.Run("deadline: the Job controller's Failed condition fails the DGDR", func(t *testing.T) {
		d, job := setup(t, "late", v1alpha1.PhaseProfiling)
		job.Status = jobFailed(batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline")
		job.Status.Failed = 0
		require.NoError(t, c.Status().Update(ctx, job))
		got, death, err := lifecycle.ObserveJob(ctx, c, d, job, now)
		require.NoError(t, err)
		require.NotNil(t, death)
		assert.Equal(t, v1alpha1.PhaseFailed, got.Status.Phase)
		cond := findCondition(got, v1alpha1.ConditionProfilingComplete)
		assert.Equal(t, v1alpha1.ReasonDeadlineExceeded, cond.Reason)

		// Seen again (another plugin, or the same one later): nothing changes.
		again, death, err := lifecycle.ObserveJob(ctx, c, got, job, now)
		require.NoError(t, err)
		assert.Nil(t, death, "a Failed DGDR is past profiling")
		assert.Equal(t, got.ResourceVersion, again.ResourceVersion)
	})

	t.Run("image pull back-off from the kubelet's pod status", func(t *testing.T) {
		d, job := setup(t, "typo", "")
		pod(t, job, waiting("ImagePullBackOff", `Back-off pulling image "registry.example/dgdr-profiler:typo"`))
		got, death, err := lifecycle.ObserveJob(ctx, c, d, job, now)
		require.NoError(t, err)
		require.NotNil(t, death)
		assert.Equal(t, v1alpha1.ReasonImagePullBackOff, death.Reason)
		assert.Equal(t, v1alpha1.PhaseFailed, got.Status.Phase)
	})

	t.Run("missing ServiceAccount from the Job controller's event", func(t *testing.T) {
		d, job := setup(t, "nosa", v1alpha1.PhasePending)
		require.NoError(t, c.Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "nosa-profile.1", Namespace: "jobs"},
			InvolvedObject: corev1.ObjectReference{Kind: "Job", Namespace: "jobs", Name: job.Name, UID: job.UID, APIVersion: "batch/v1"},
			Reason:         "FailedCreate", Message: saMissing, Type: corev1.EventTypeWarning, Source: corev1.EventSource{Component: "job-controller"},
		}))
		got, death, err := lifecycle.ObserveJob(ctx, c, d, job, now)
		require.NoError(t, err)
		require.NotNil(t, death)
		assert.Equal(t, v1alpha1.ReasonServiceAccountMissing, findCondition(got, v1alpha1.ConditionProfilingComplete).Reason)
	})

	t.Run("the dead Job of an earlier DGDR of the same name is not this one's death", func(t *testing.T) {
		d, job := setup(t, "reborn", v1alpha1.PhaseProfiling)
		job.OwnerReferences = []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind, Name: "reborn", UID: "0000-earlier", Controller: ptr.To(true)}}
		require.NoError(t, c.Update(ctx, job))
		job.Status = jobFailed(batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline")
		require.NoError(t, c.Status().Update(ctx, job))
		got, death, err := lifecycle.ObserveJob(ctx, c, d, job, now)
		require.NoError(t, err)
		assert.Nil(t, death)
		assert.Equal(t, v1alpha1.PhaseProfiling, got.Status.Phase)
	})

	t.Run("the profiler's outcome stands: a Ready DGDR is not failed by its finished Job", func(t *testing.T) {
		d, job := setup(t, "done", v1alpha1.PhaseProfiling)
		job.Status = jobFailed(batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit")
		require.NoError(t, c.Status().Update(ctx, job))
		// The profiler records Ready after the plugin read the DGDR.
		stale := d.DeepCopy()
		_, err := lifecycle.MarkReady(ctx, c, lifecycle.RefOf(d), lifecycle.Profiled{Results: &v1alpha1.ProfilingResults{}, DGDName: "done-dgd", MeetsSLA: true, Message: "done"})
		require.NoError(t, err)
		got, death, err := lifecycle.ObserveJob(ctx, c, stale, job, now)
		require.NoError(t, err)
		assert.Nil(t, death)
		assert.Equal(t, v1alpha1.PhaseReady, got.Status.Phase)
	})
}

func findCondition(d *v1alpha1.DynamoGraphDeploymentRequest, typ string) metav1.Condition {
	for _, c := range d.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}
