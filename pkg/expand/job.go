// Package expand turns a DynamoGraphDeploymentRequest into the Kubernetes objects that serve it:
// the profiling Job (this file) and the DynamoGraphDeployment.
package expand

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// Names and paths inside the profiling Job. The image ghcr.io/dgdr-dev/dgdr carries the binary.
const (
	ProfilerBinary        = "/usr/local/bin/dgdr-profiler"
	ProfilerContainerName = v1alpha1.ProfilerContainerName
	// ProfilingJobSuffix ends the Job's name: <dgdr>-profile.
	ProfilingJobSuffix = "-profile"
	// ModelCacheMountPath is where the model-cache PVC is mounted (read-only).
	ModelCacheMountPath = "/models"
	// EnvModelPath tells the profiler where the model is when spec.modelCache is set.
	EnvModelPath = "DGDR_MODEL_PATH"
	// ProfilerUID is the non-root user the profiler runs as (the distroless "nonroot" user).
	ProfilerUID int64 = 65532

	modelCacheVolume = "model-cache"
	tmpVolume        = "tmp"
)

// Job lifetimes. A rapid search is sub-second but the pod may wait for scheduling and an image pull;
// a thorough search deploys and measures real candidates, which takes hours.
const (
	RapidDeadlineSeconds    int64 = 15 * 60
	ThoroughDeadlineSeconds int64 = 6 * 60 * 60
	RapidBackoffLimit       int32 = 3
	// ThoroughBackoffLimit is low: a retry repeats hours of measurements.
	ThoroughBackoffLimit int32 = 1
	// TTLSecondsAfterFinished keeps a finished Job (and its logs) for a day. (The Job of a DGDR that never
	// got stored is removed sooner, by its own profiler, which finds no DGDR of its UID to claim it for.)
	TTLSecondsAfterFinished int32 = 24 * 60 * 60
)

// JobOptions are the cluster-wide settings of the profiling Job.
type JobOptions struct {
	// ProfilerImage runs dgdr-profiler (the webhook's --profiler-image).
	ProfilerImage string
}

// ProfilingJobName is the deterministic name of the profiling Job of the first run of the DGDR named
// dgdrName with UID uid: <name>-profile-<first 5 characters of the UID>. The UID part keeps creates of the
// same name apart: two creates in flight at once, or a DGDR deleted and created again while its old Job
// lingers, never meet on one Job. When the name would exceed 63 characters (the Job controller copies it
// into a label), the DGDR name is truncated and a hash of it added, so that two long names sharing a
// prefix still differ. Without a UID (a DGDR built outside the API server) the name is <name>-profile.
func ProfilingJobName(dgdrName string, uid types.UID) string {
	return RunJobName(dgdrName, uid, 1, "")
}

// RunJobName names the profiling Job of run (generation) gen of a DGDR: ProfilingJobName for the first
// run, <name>-profile-<uid5>-<gen>-<first 4 of inputsHash> after it. The hash keeps apart two updates in
// flight at one generation (only one is stored; the other's Job is released by its claim).
func RunJobName(dgdrName string, uid types.UID, gen int64, inputsHash string) string {
	suffix := ProfilingJobSuffix
	if part := uidPart(uid); part != "" {
		suffix += "-" + part
	}
	if gen > 1 {
		suffix += fmt.Sprintf("-%d-%s", gen, inputsHash[:min(4, len(inputsHash))])
	}
	return suffixedName(dgdrName, suffix, validation.DNS1123LabelMaxLength)
}

// suffixedName is dgdrName+suffix, at most maxLen characters: a longer DGDR name is truncated and a hash
// of it added, so that two long names sharing a prefix still differ.
func suffixedName(dgdrName, suffix string, maxLen int) string {
	if len(dgdrName)+len(suffix) <= maxLen {
		return dgdrName + suffix
	}
	sum := sha256.Sum256([]byte(dgdrName))
	hash := hex.EncodeToString(sum[:])[:8]
	keep := max(maxLen-len(suffix)-len(hash)-1, 1)
	prefix := strings.TrimRight(dgdrName[:min(keep, len(dgdrName))], "-.")
	return prefix + "-" + hash + suffix
}

// jobUIDChars of the DGDR's UID end its Job's name: 20 random bits (UIDs are random UUIDs), so that two
// Jobs of one DGDR name that exist at once differ; a clash is refused as a conflict, never shared.
const jobUIDChars = 5

// uidPart is the first jobUIDChars letters and digits of uid, lower-cased (a UUID's first five are hex).
func uidPart(uid types.UID) string {
	var b strings.Builder
	for _, r := range strings.ToLower(string(uid)) {
		if b.Len() == jobUIDChars {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ProfilingJob builds the batch/v1 Job that profiles d. d should be defaulted (an empty searchStrategy is
// treated as rapid). spec.overrides.profilingJob is merged into the JobSpec with strategic-merge semantics,
// so containers, volumes, env and imagePullSecrets merge by name and other fields replace.
//
// When d has a UID (the API server assigns it before validating admission), the Job carries it in the
// annotation nvidia.com/dgdr-uid and passes it to the profiler (--uid), which claims the Job for the stored
// DGDR of that UID or deletes it. The Job has no owner reference: the garbage collector would judge an owner
// that is not stored yet dangling and delete the Job (or drop the reference) before the DGDR is stored.
// The annotation nvidia.com/dgdr-spec-hash is the sha256 of the JobSpec built here (the --uid argument
// included): a Job is reused only when it matches.
func ProfilingJob(d *v1alpha1.DynamoGraphDeploymentRequest, opts JobOptions) (*batchv1.Job, error) {
	if d.Name == "" || d.Namespace == "" {
		return nil, fmt.Errorf("expected a DGDR with a name and a namespace, got %q/%q", d.Namespace, d.Name)
	}
	if opts.ProfilerImage == "" {
		return nil, fmt.Errorf("expected a profiler image")
	}
	labels := map[string]string{
		v1alpha1.LabelDGDRName:      d.Name,
		"app.kubernetes.io/name":    "dgdr-profiler",
		"app.kubernetes.io/part-of": "dgdr",
	}

	deadline, backoff := RapidDeadlineSeconds, RapidBackoffLimit
	// The rapid search evaluates a performance model in memory; the thorough one drives and
	// benchmarks candidate deployments, so it gets more headroom. Neither needs a GPU itself.
	requests := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")}
	limits := corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}
	if d.Spec.SearchStrategy == v1alpha1.SearchThorough {
		deadline, backoff = ThoroughDeadlineSeconds, ThoroughBackoffLimit
		requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}
		limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}
	}

	pod := profilerPod(opts.ProfilerImage, profilerArgs(d, RunJobName(d.Name, d.UID, jobGeneration(d), v1alpha1.InputsHash(&d.Spec))),
		corev1.ResourceRequirements{Requests: requests, Limits: limits}, labels)
	container := &pod.Spec.Containers[0]
	if mc := d.Spec.ModelCache; mc != nil && mc.PVCName != "" {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name: modelCacheVolume,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: mc.PVCName, ReadOnly: true,
			}},
		})
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{
			Name: modelCacheVolume, MountPath: ModelCacheMountPath, ReadOnly: true,
		})
		container.Env = append(container.Env, corev1.EnvVar{
			Name: EnvModelPath, Value: path.Join(ModelCacheMountPath, mc.PVCPath),
		})
	}

	spec := batchv1.JobSpec{
		BackoffLimit:            ptr.To(backoff),
		ActiveDeadlineSeconds:   ptr.To(deadline),
		TTLSecondsAfterFinished: ptr.To(TTLSecondsAfterFinished),
		// A replacement pod starts only once the old one has ended: two profilers never share candidates.
		PodReplacementPolicy: ptr.To(batchv1.Failed),
		// A disruption (node drain, preemption, eviction) does not use up a retry; the profiler's own
		// failures (non-zero exits) do.
		PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
			Action:          batchv1.PodFailurePolicyActionIgnore,
			OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
		}, {
			Action:      batchv1.PodFailurePolicyActionCount,
			OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{0}},
		}}},
		Template: pod,
	}
	if o := d.Spec.Overrides; o != nil && o.ProfilingJob != nil && len(o.ProfilingJob.Raw) > 0 {
		merged, err := mergeJobSpec(spec, o.ProfilingJob.Raw)
		if err != nil {
			return nil, err
		}
		spec = merged
	}

	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encoding the profiling JobSpec: %w", err)
	}
	sum := sha256.Sum256(specJSON)
	inputs := v1alpha1.InputsHash(&d.Spec)
	annotations := map[string]string{
		v1alpha1.AnnotationSpecHash:   hex.EncodeToString(sum[:]),
		v1alpha1.AnnotationGeneration: strconv.FormatInt(jobGeneration(d), 10),
		v1alpha1.AnnotationInputsHash: inputs,
	}
	if d.UID != "" {
		annotations[v1alpha1.AnnotationDGDRUID] = string(d.UID)
	}
	job := &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: batchv1.SchemeGroupVersion.String(), Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        RunJobName(d.Name, d.UID, jobGeneration(d), inputs),
			Namespace:   d.Namespace,
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: spec,
	}
	return job, nil
}

// profilerPod is the pod of the profiling Job and of the adaptation CronJob's Jobs: dgdr-profiler with args
// as the dgdr-profiler ServiceAccount, non-root, read-only root filesystem, no capabilities, a small /tmp.
func profilerPod(image string, args []string, res corev1.ResourceRequirements, labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			RestartPolicy:      corev1.RestartPolicyNever,
			ServiceAccountName: v1alpha1.ProfilerServiceAccount,
			// No fsGroup: a recursive ownership change of a large model cache would delay every start.
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To(ProfilerUID),
				RunAsGroup:     ptr.To(ProfilerUID),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            ProfilerContainerName,
				Image:           image,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{ProfilerBinary},
				Args:            args,
				Resources:       res,
				VolumeMounts:    []corev1.VolumeMount{{Name: tmpVolume, MountPath: "/tmp"}},
				// On failure `kubectl describe` shows the end of the log when the profiler wrote no message.
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					RunAsNonRoot:             ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			Volumes: []corev1.Volume{{
				Name: tmpVolume,
				VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
					SizeLimit: ptr.To(resource.MustParse("1Gi")),
				}},
			}},
		},
	}
}

// profilerArgs name the DGDR the profiler works for and, once it has one, the UID of the create the Job
// was made for (the profiler claims the Job only for the stored DGDR of that UID) and the generation it
// profiles (it stops when a newer one is stored).
func profilerArgs(d *v1alpha1.DynamoGraphDeploymentRequest, jobName string) []string {
	args := []string{"--namespace", d.Namespace, "--name", d.Name}
	if d.UID != "" {
		args = append(args, "--uid", string(d.UID), "--generation", strconv.FormatInt(jobGeneration(d), 10), "--job", jobName)
	}
	return args
}

// jobGeneration is the run a Job profiles: metadata.generation (the API server sets 1 on create and
// raises it on every spec change before validating admission), 1 for an object built outside it.
func jobGeneration(d *v1alpha1.DynamoGraphDeploymentRequest) int64 {
	return max(d.Generation, 1)
}

// mergeJobSpec applies patch (a partial batch/v1 JobSpec as JSON) to base with strategic-merge semantics.
func mergeJobSpec(base batchv1.JobSpec, patch []byte) (batchv1.JobSpec, error) {
	orig, err := json.Marshal(base)
	if err != nil {
		return batchv1.JobSpec{}, fmt.Errorf("encoding the profiling JobSpec: %w", err)
	}
	merged, err := strategicpatch.StrategicMergePatch(orig, patch, batchv1.JobSpec{})
	if err != nil {
		return batchv1.JobSpec{}, fmt.Errorf("merging overrides.profilingJob into the profiling JobSpec: %w", err)
	}
	var out batchv1.JobSpec
	if err := json.Unmarshal(merged, &out); err != nil {
		return batchv1.JobSpec{}, fmt.Errorf("expected overrides.profilingJob to merge into a batch/v1 JobSpec: %w", err)
	}
	return out, nil
}
