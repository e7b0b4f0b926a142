package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// JobDeath is why a profiling Job died, or cannot run: a reason of the API package and a message in the
// Job's and pod's own words, with what to do.
type JobDeath struct {
	Reason  string
	Message string
}

func (d *JobDeath) Error() string { return d.Reason + ": " + d.Message }

// UnschedulableGrace is how long a profiling pod may stay unschedulable before its DGDR is failed: the
// cluster autoscaler may be adding a node.
const UnschedulableGrace = 5 * time.Minute

// DiagnoseJob says why a profiling Job died or is stuck for good, from the Job's conditions, its pods'
// statuses and the Job's events (the Job controller reports a pod it cannot create only there). nil
// while the Job runs, may still run, or succeeded.
func DiagnoseJob(job *batchv1.Job, pods []corev1.Pod, events []corev1.Event, now time.Time) *JobDeath {
	if job == nil {
		return nil
	}
	for _, c := range job.Status.Conditions {
		if c.Status == corev1.ConditionTrue && c.Type == batchv1.JobComplete {
			return nil
		}
	}
	if c := failedCondition(job); c != nil {
		// The pods say more than "BackoffLimitExceeded": an OOM kill, or the profiler's last words.
		if c.Reason != batchv1.JobReasonDeadlineExceeded {
			if oom := lastTermination(pods, "OOMKilled"); oom != nil {
				return &JobDeath{Reason: v1alpha1.ReasonOOMKilled, Message: fmt.Sprintf(
					"profiling Job %s failed: its pod ran out of memory (OOMKilled, limit %s); raise the profiler container's memory in spec.overrides.profilingJob",
					job.Name, memoryLimit(pods))}
			}
		}
		switch c.Reason {
		case batchv1.JobReasonDeadlineExceeded:
			return &JobDeath{Reason: v1alpha1.ReasonDeadlineExceeded, Message: fmt.Sprintf(
				"profiling Job %s ran past its activeDeadlineSeconds (%s); raise spec.overrides.profilingJob.activeDeadlineSeconds or narrow the search",
				job.Name, oneLine(c.Message))}
		case batchv1.JobReasonBackoffLimitExceeded:
			msg := fmt.Sprintf("profiling Job %s failed %d times (backoffLimit reached)", job.Name, job.Status.Failed)
			if t := lastTermination(pods, ""); t != nil {
				msg += fmt.Sprintf("; the last run exited %d (%s)", t.ExitCode, oneLine(cmpOr(t.Message, t.Reason)))
			}
			return &JobDeath{Reason: v1alpha1.ReasonBackoffLimitExceeded, Message: msg + "; see kubectl dgdr logs"}
		}
		return &JobDeath{Reason: v1alpha1.ReasonJobFailed, Message: fmt.Sprintf("profiling Job %s failed: %s: %s", job.Name, c.Reason, oneLine(c.Message))}
	}
	// Alive, but stuck where no retry helps.
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
			if w := cs.State.Waiting; w != nil {
				switch w.Reason {
				case "ImagePullBackOff", "ErrImagePull", "InvalidImageName":
					return &JobDeath{Reason: v1alpha1.ReasonImagePullBackOff, Message: fmt.Sprintf(
						"profiling pod %s cannot pull image %s (%s: %s); check the image name and imagePullSecrets",
						p.Name, cs.Image, w.Reason, oneLine(w.Message))}
				}
			}
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable &&
				now.Sub(c.LastTransitionTime.Time) >= UnschedulableGrace {
				return &JobDeath{Reason: v1alpha1.ReasonUnschedulable, Message: fmt.Sprintf(
					"profiling pod %s cannot be scheduled for %s: %s; adjust nodeSelector, tolerations or resources in spec.overrides.profilingJob",
					p.Name, now.Sub(c.LastTransitionTime.Time).Round(time.Second), oneLine(c.Message))}
			}
		}
	}
	if len(activePods(pods)) == 0 {
		for _, e := range slices.Backward(events) {
			if e.Reason == "FailedCreate" && strings.Contains(e.Message, "serviceaccount") && strings.Contains(e.Message, "not found") {
				return &JobDeath{Reason: v1alpha1.ReasonServiceAccountMissing, Message: fmt.Sprintf(
					"profiling Job %s cannot create its pod: %s; install the profiler's ServiceAccount in this namespace (manifests/profiler-namespace)",
					job.Name, oneLine(e.Message))}
			}
		}
	}
	return nil
}

func failedCondition(job *batchv1.Job) *batchv1.JobCondition {
	for i, c := range job.Status.Conditions {
		// FailureTarget comes first: the Job controller is still terminating the pods.
		if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobFailed || c.Type == batchv1.JobFailureTarget) {
			return &job.Status.Conditions[i]
		}
	}
	return nil
}

// lastTermination is the newest terminated state of a profiler container (with reason, when set).
func lastTermination(pods []corev1.Pod, reason string) *corev1.ContainerStateTerminated {
	var best *corev1.ContainerStateTerminated
	for i := range pods {
		for _, cs := range pods[i].Status.ContainerStatuses {
			for _, t := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
				if t == nil || (reason != "" && t.Reason != reason) {
					continue
				}
				if best == nil || t.FinishedAt.After(best.FinishedAt.Time) {
					best = t
				}
			}
		}
	}
	return best
}

func memoryLimit(pods []corev1.Pod) string {
	for _, p := range pods {
		for _, c := range p.Spec.Containers {
			if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
				return q.String()
			}
		}
	}
	return "none set"
}

func activePods(pods []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p)
		}
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// JobPods lists the pods of a Job through its selector, oldest first.
func JobPods(ctx context.Context, c client.Reader, job *batchv1.Job) ([]corev1.Pod, error) {
	if job.Spec.Selector == nil {
		return nil, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("reading the selector of Job %s: %w", job.Name, err)
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(job.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing the pods of Job %s: %w", job.Name, err)
	}
	slices.SortFunc(pods.Items, func(a, b corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	return pods.Items, nil
}

// ObjectEvents lists the events about one object.
func ObjectEvents(ctx context.Context, c client.Reader, namespace, kind, name string) ([]corev1.Event, error) {
	list := &corev1.EventList{}
	if err := c.List(ctx, list, client.InNamespace(namespace),
		client.MatchingFields{"involvedObject.kind": kind, "involvedObject.name": name}); err != nil {
		return nil, fmt.Errorf("listing the events of %s %s: %w", kind, name, err)
	}
	return list.Items, nil
}

// ObserveJob is the plugin's half of "every death is reported": it diagnoses the DGDR's profiling Job
// and, when it died while the DGDR was still profiling, records the DGDR Failed with the cause. It
// returns the DGDR as stored and the cause (nil when the Job is alive or the DGDR is past profiling).
// A user who may not write the DGDR's status still gets the cause, with the write's error.
func ObserveJob(ctx context.Context, c client.Client, d *v1alpha1.DynamoGraphDeploymentRequest, job *batchv1.Job, now time.Time) (*v1alpha1.DynamoGraphDeploymentRequest, *JobDeath, error) {
	if job == nil || !slices.Contains(profilingPhases, d.Status.Phase) {
		return d, nil, nil
	}
	if owner := metav1.GetControllerOf(job); owner != nil && owner.UID != d.UID {
		return d, nil, nil // the Job of an earlier DGDR of the same name: its death is not this one's
	}
	pods, err := JobPods(ctx, c, job)
	if err != nil {
		return d, nil, err
	}
	var events []corev1.Event
	if len(activePods(pods)) == 0 {
		if events, err = ObjectEvents(ctx, c, job.Namespace, "Job", job.Name); err != nil && !apierrors.IsForbidden(err) {
			return d, nil, err
		}
	}
	death := DiagnoseJob(job, pods, events, now)
	if death == nil {
		return d, nil, nil
	}
	updated, err := MarkJobDied(ctx, c, RefOf(d), death)
	switch {
	case IsTransitionError(err):
		// The profiler recorded an outcome first: that one stands.
		if err := c.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return d, nil, err
		}
		return d, nil, nil
	case err != nil:
		return d, death, err
	}
	return updated, death, nil
}
