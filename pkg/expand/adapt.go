package expand

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// The adaptation CronJob: `dgdr-profiler drift` on a schedule derived from spec.adaptation.window.
const (
	// AdaptCronJobSuffix (then the UID part) ends the CronJob's name: <dgdr>-adapt-<uid5>.
	AdaptCronJobSuffix = "-adapt"
	// CronJobNameMaxLength is the API server's limit: the CronJob controller appends 11 characters to
	// name each Job.
	CronJobNameMaxLength = 52
	// MinAdaptPeriod and MaxAdaptPeriod bound how often the drift is evaluated: every window, but not
	// more often than a pod start and a few Prometheus queries are worth, and not so rarely that a long
	// window (1d) hides a drift for a day (the window slides: an hourly look at a day of traffic).
	MinAdaptPeriod = 5 * time.Minute
	MaxAdaptPeriod = time.Hour
	// AdaptDeadlineSeconds bounds one evaluation (a few queries and an in-memory re-plan).
	AdaptDeadlineSeconds int64 = 5 * 60
	// AdaptStartingDeadlineSeconds skips a run that could not start within it: the next one comes.
	AdaptStartingDeadlineSeconds int64 = 2 * 60
)

// AdaptCronJobName is the deterministic name of the adaptation CronJob of the DGDR named dgdrName with
// UID uid, at most CronJobNameMaxLength characters (truncated and hashed as RunJobName).
func AdaptCronJobName(dgdrName string, uid types.UID) string {
	suffix := AdaptCronJobSuffix
	if part := uidPart(uid); part != "" {
		suffix += "-" + part
	}
	return suffixedName(dgdrName, suffix, CronJobNameMaxLength)
}

// AdaptSchedule is the cron schedule of a window: every window rounded down to a divisor of an hour,
// within [MinAdaptPeriod, MaxAdaptPeriod], at a minute offset drawn from uid so that the CronJobs of many
// DGDRs do not all query Prometheus at once.
func AdaptSchedule(window time.Duration, uid types.UID) string {
	period := 5
	for _, m := range []int{6, 10, 12, 15, 20, 30, 60} {
		if time.Duration(m)*time.Minute <= min(max(window, MinAdaptPeriod), MaxAdaptPeriod) {
			period = m
		}
	}
	sum := sha256.Sum256([]byte(uid))
	offset := int(sum[0]) % period
	if period == 60 {
		return fmt.Sprintf("%d * * * *", offset)
	}
	return fmt.Sprintf("%d-59/%d * * * *", offset, period)
}

// AdaptCronJob builds the CronJob that evaluates d's drift on a schedule (`dgdr-profiler drift`) when
// spec.adaptation is set; d should be defaulted. Its pod is the profiling Job's (profilerPod: same image,
// ServiceAccount and pod security); overrides.profilingJob does not apply to it. Like the profiling Job it
// is made with no owner and the annotation nvidia.com/dgdr-uid, and is owned by the DGDR once that is
// stored; nvidia.com/dgdr-generation says which spec it was made for and nvidia.com/dgdr-spec-hash is the
// sha256 of its CronJobSpec (an update replaces a CronJob only when it differs). One run at a time
// (Forbid); the next scheduled run is the retry.
func AdaptCronJob(d *v1alpha1.DynamoGraphDeploymentRequest, opts JobOptions) (*batchv1.CronJob, error) {
	if d.Name == "" || d.Namespace == "" {
		return nil, fmt.Errorf("expected a DGDR with a name and a namespace, got %q/%q", d.Namespace, d.Name)
	}
	if opts.ProfilerImage == "" {
		return nil, fmt.Errorf("expected a profiler image")
	}
	a := d.Spec.Adaptation
	if a == nil {
		return nil, fmt.Errorf("expected DGDR %s to have spec.adaptation", d.Name)
	}
	a = a.DeepCopy()
	a.Default()
	window, err := v1alpha1.ParseWindow(a.Window)
	if err != nil {
		return nil, fmt.Errorf("spec.adaptation.window: %w", err)
	}
	// Not the profiling Job's nvidia.com/dgdr-name label: that selects the Jobs of a DGDR's runs.
	labels := map[string]string{"app.kubernetes.io/name": "dgdr-adapt", "app.kubernetes.io/part-of": "dgdr"}
	args := []string{"drift", "--namespace", d.Namespace, "--name", d.Name}
	if d.UID != "" {
		args = append(args, "--uid", string(d.UID))
	}
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
	}
	spec := batchv1.CronJobSpec{
		Schedule:                   AdaptSchedule(window, d.UID),
		StartingDeadlineSeconds:    ptr.To(AdaptStartingDeadlineSeconds),
		ConcurrencyPolicy:          batchv1.ForbidConcurrent,
		SuccessfulJobsHistoryLimit: ptr.To[int32](1),
		FailedJobsHistoryLimit:     ptr.To[int32](3),
		JobTemplate: batchv1.JobTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: batchv1.JobSpec{
				BackoffLimit:          ptr.To[int32](0),
				ActiveDeadlineSeconds: ptr.To(AdaptDeadlineSeconds),
				Template:              profilerPod(opts.ProfilerImage, args, res, labels),
			},
		},
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encoding the adaptation CronJobSpec: %w", err)
	}
	sum := sha256.Sum256(specJSON)
	annotations := map[string]string{
		v1alpha1.AnnotationSpecHash:   hex.EncodeToString(sum[:]),
		v1alpha1.AnnotationGeneration: strconv.FormatInt(jobGeneration(d), 10),
	}
	if d.UID != "" {
		annotations[v1alpha1.AnnotationDGDRUID] = string(d.UID)
	}
	cronLabels := map[string]string{v1alpha1.LabelDGDRName: d.Name}
	for k, v := range labels {
		cronLabels[k] = v
	}
	return &batchv1.CronJob{
		TypeMeta: metav1.TypeMeta{APIVersion: batchv1.SchemeGroupVersion.String(), Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        AdaptCronJobName(d.Name, d.UID),
			Namespace:   d.Namespace,
			Labels:      cronLabels,
			Annotations: annotations,
		},
		Spec: spec,
	}, nil
}
