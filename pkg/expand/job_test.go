package expand

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// update rewrites the golden files of this package: go test ./pkg/expand -update
var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const (
	testDefaultImage  = "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.3.0"
	testProfilerImage = "ghcr.io/dgdr-dev/dgdr:v0.1.0"
)

// TestProfilingJobGolden expands every testdata/job/<case>/dgdr.yaml (defaulted as the webhook does)
// and compares the Job with job.golden.yaml beside it.
func TestProfilingJobGolden(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "job", "*", "dgdr.yaml"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(dirs), 5, "expected the five golden cases")
	for _, in := range dirs {
		dir := filepath.Dir(in)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			d := readDGDR(t, in)
			d.Default(testDefaultImage)
			job, err := ProfilingJob(d, JobOptions{ProfilerImage: testProfilerImage})
			require.NoError(t, err)
			got, err := yaml.Marshal(job)
			require.NoError(t, err)

			golden := filepath.Join(dir, "job.golden.yaml")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./pkg/expand -update to create it")
			assert.Equal(t, string(want), string(got))
		})
	}
}

func readDGDR(t *testing.T, path string) *v1alpha1.DynamoGraphDeploymentRequest {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	require.NoError(t, yaml.UnmarshalStrict(data, d))
	return d
}

func dgdr(name string, mutate func(*v1alpha1.DynamoGraphDeploymentRequest)) *v1alpha1.DynamoGraphDeploymentRequest {
	d := &v1alpha1.DynamoGraphDeploymentRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec:       v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-0.6B"},
	}
	if mutate != nil {
		mutate(d)
	}
	d.Default(testDefaultImage)
	return d
}

func TestProfilingJobShape(t *testing.T) {
	tests := map[string]struct {
		dgdr     *v1alpha1.DynamoGraphDeploymentRequest
		deadline int64
		backoff  int32
		memLimit string
		model    string // DGDR_MODEL_PATH, empty when no cache
	}{
		"rapid": {
			dgdr:     dgdr("r", nil),
			deadline: RapidDeadlineSeconds, backoff: RapidBackoffLimit, memLimit: "1Gi",
		},
		"thorough": {
			dgdr:     dgdr("t", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.SearchStrategy = v1alpha1.SearchThorough }),
			deadline: ThoroughDeadlineSeconds, backoff: ThoroughBackoffLimit, memLimit: "2Gi",
		},
		"cache at the PVC root": {
			dgdr: dgdr("c", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
				d.Spec.ModelCache = &v1alpha1.ModelCache{PVCName: "weights"}
			}),
			deadline: RapidDeadlineSeconds, backoff: RapidBackoffLimit, memLimit: "1Gi", model: "/models",
		},
		"cache in a folder": {
			dgdr: dgdr("c", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
				d.Spec.ModelCache = &v1alpha1.ModelCache{PVCName: "weights", PVCPath: "qwen/0.6b/"}
			}),
			deadline: RapidDeadlineSeconds, backoff: RapidBackoffLimit, memLimit: "1Gi", model: "/models/qwen/0.6b",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			job, err := ProfilingJob(tc.dgdr, JobOptions{ProfilerImage: testProfilerImage})
			require.NoError(t, err)
			assert.Equal(t, tc.dgdr.Name+"-profile", job.Name)
			assert.Equal(t, "ns", job.Namespace)
			assert.Empty(t, job.OwnerReferences, "never an owner reference")
			assert.NotContains(t, job.Annotations, v1alpha1.AnnotationDGDRUID, "no UID yet")
			assert.Equal(t, tc.dgdr.Name, job.Labels[v1alpha1.LabelDGDRName])
			assert.Equal(t, tc.dgdr.Name, job.Spec.Template.Labels[v1alpha1.LabelDGDRName])
			assert.Equal(t, tc.deadline, *job.Spec.ActiveDeadlineSeconds)
			assert.Equal(t, tc.backoff, *job.Spec.BackoffLimit)
			assert.Equal(t, TTLSecondsAfterFinished, *job.Spec.TTLSecondsAfterFinished)

			pod := job.Spec.Template.Spec
			assert.Equal(t, v1alpha1.ProfilerServiceAccount, pod.ServiceAccountName)
			assert.Equal(t, corev1.RestartPolicyNever, pod.RestartPolicy)
			assert.True(t, *pod.SecurityContext.RunAsNonRoot)
			require.Len(t, pod.Containers, 1)
			c := pod.Containers[0]
			assert.Equal(t, testProfilerImage, c.Image)
			assert.Equal(t, []string{ProfilerBinary}, c.Command)
			assert.Equal(t, []string{"--namespace", "ns", "--name", tc.dgdr.Name}, c.Args)
			assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
			assert.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
			assert.Equal(t, tc.memLimit, ptrString(c.Resources.Limits.Memory()))
			_, gpu := c.Resources.Requests["nvidia.com/gpu"]
			assert.False(t, gpu, "profiling itself needs no GPU")

			var cacheMount *corev1.VolumeMount
			for i := range c.VolumeMounts {
				if c.VolumeMounts[i].Name == modelCacheVolume {
					cacheMount = &c.VolumeMounts[i]
				}
			}
			if tc.model == "" {
				assert.Nil(t, cacheMount)
				assert.Empty(t, c.Env)
				return
			}
			require.NotNil(t, cacheMount)
			assert.True(t, cacheMount.ReadOnly)
			assert.Equal(t, []corev1.EnvVar{{Name: EnvModelPath, Value: tc.model}}, c.Env)
			assert.Equal(t, "weights", pod.Volumes[1].PersistentVolumeClaim.ClaimName)
			assert.True(t, pod.Volumes[1].PersistentVolumeClaim.ReadOnly)
		})
	}
}

func ptrString(q interface{ String() string }) string { return q.String() }

// TestProfilingJobOverrides checks the strategic-merge semantics users rely on.
func TestProfilingJobOverrides(t *testing.T) {
	d := dgdr("o", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		d.Spec.ModelCache = &v1alpha1.ModelCache{PVCName: "weights"}
		d.Spec.Overrides = &v1alpha1.Overrides{ProfilingJob: &runtime.RawExtension{Raw: []byte(`{
			"activeDeadlineSeconds": 60,
			"template": {"spec": {
				"securityContext": {"fsGroup": 2000},
				"imagePullSecrets": [{"name": "pull"}],
				"tolerations": [{"key": "k", "operator": "Exists"}],
				"volumes": [{"name": "extra", "emptyDir": {}}],
				"containers": [{"name": "profiler", "env": [{"name": "A", "value": "1"}], "resources": {"requests": {"cpu": "2"}}}]
			}}}`)}}
	})
	job, err := ProfilingJob(d, JobOptions{ProfilerImage: testProfilerImage})
	require.NoError(t, err)
	pod := job.Spec.Template.Spec

	assert.Equal(t, int64(60), *job.Spec.ActiveDeadlineSeconds, "a scalar replaces the default")
	assert.Equal(t, RapidBackoffLimit, *job.Spec.BackoffLimit, "what the override leaves out stays")
	assert.Equal(t, int64(2000), *pod.SecurityContext.FSGroup)
	assert.True(t, *pod.SecurityContext.RunAsNonRoot, "structs merge field by field")
	assert.Equal(t, []corev1.LocalObjectReference{{Name: "pull"}}, pod.ImagePullSecrets)
	assert.Len(t, pod.Tolerations, 1)
	assert.ElementsMatch(t, []string{tmpVolume, modelCacheVolume, "extra"}, volumeNames(pod.Volumes), "volumes merge by name")
	require.Len(t, pod.Containers, 1, "containers merge by name")
	c := pod.Containers[0]
	assert.Equal(t, []string{ProfilerBinary}, c.Command)
	assert.Equal(t, []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: EnvModelPath, Value: "/models"}}, c.Env)
	assert.Equal(t, "2", ptrString(c.Resources.Requests.Cpu()))
	assert.Equal(t, "512Mi", ptrString(c.Resources.Requests.Memory()), "resources merge key by key")
}

func volumeNames(vs []corev1.Volume) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

func TestProfilingJobErrors(t *testing.T) {
	tests := map[string]struct {
		dgdr    *v1alpha1.DynamoGraphDeploymentRequest
		opts    JobOptions
		wantErr string
	}{
		"no namespace": {
			dgdr:    dgdr("x", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Namespace = "" }),
			opts:    JobOptions{ProfilerImage: testProfilerImage},
			wantErr: "expected a DGDR with a name and a namespace",
		},
		"no profiler image": {
			dgdr:    dgdr("x", nil),
			wantErr: "expected a profiler image",
		},
		"override of the wrong type": {
			dgdr: dgdr("x", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
				d.Spec.Overrides = &v1alpha1.Overrides{ProfilingJob: &runtime.RawExtension{Raw: []byte(`{"template":{"spec":{"containers":"profiler"}}}`)}}
			}),
			opts:    JobOptions{ProfilerImage: testProfilerImage},
			wantErr: "overrides.profilingJob",
		},
		"override that is not an object": {
			dgdr: dgdr("x", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
				d.Spec.Overrides = &v1alpha1.Overrides{ProfilingJob: &runtime.RawExtension{Raw: []byte(`[1]`)}}
			}),
			opts:    JobOptions{ProfilerImage: testProfilerImage},
			wantErr: "overrides.profilingJob",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ProfilingJob(tc.dgdr, tc.opts)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestProfilingJobName(t *testing.T) {
	long := strings.Repeat("a", 63)
	const uid = types.UID("1f0c9e2a-7b3d-4c55-9e1a-2b3c4d5e6f70")
	tests := map[string]struct {
		in   string
		uid  types.UID
		want string
	}{
		"short":                      {in: "quick-start", uid: uid, want: "quick-start-profile-1f0c9"},
		"no UID":                     {in: "quick-start", want: "quick-start-profile"},
		"longest kept whole":         {in: strings.Repeat("b", 49), uid: uid, want: strings.Repeat("b", 49) + "-profile-1f0c9"},
		"one over: truncated+hash":   {in: strings.Repeat("b", 50), uid: uid, want: strings.Repeat("b", 40) + "-" + hash8(strings.Repeat("b", 50)) + "-profile-1f0c9"},
		"63 characters":              {in: long, uid: uid, want: strings.Repeat("a", 40) + "-" + hash8(long) + "-profile-1f0c9"},
		"63 characters, no UID":      {in: long, want: strings.Repeat("a", 46) + "-" + hash8(long) + "-profile"},
		"separator at the cut point": {in: strings.Repeat("c", 39) + "-" + strings.Repeat("d", 20), uid: uid, want: strings.Repeat("c", 39) + "-" + hash8(strings.Repeat("c", 39)+"-"+strings.Repeat("d", 20)) + "-profile-1f0c9"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := ProfilingJobName(tc.in, tc.uid)
			assert.Equal(t, tc.want, got)
			assert.LessOrEqual(t, len(got), 63)
		})
	}
	assert.NotEqual(t, ProfilingJobName(long, uid), ProfilingJobName(long[:62]+"b", uid), "long names sharing a prefix differ")
	assert.NotEqual(t, ProfilingJobName("x", uid), ProfilingJobName("x", "2a0c9e2a-7b3d-4c55-9e1a-2b3c4d5e6f70"), "two creates of one name differ")
}

func hash8(s string) string {
	// The expected hashes are recomputed here from their definition (first 8 hex digits of SHA-256).
	return sha256Hex(s)[:8]
}

// FuzzProfilingJobName: for every valid DGDR name (and a UID, as the API server makes them) the Job name
// is a valid Job name of at most 63 characters.
func FuzzProfilingJobName(f *testing.F) {
	for _, s := range []string{"a", "quick-start", strings.Repeat("x", 63), "a.b.c", strings.Repeat("a-", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if len(validation.IsDNS1123Subdomain(name)) > 0 {
			return
		}
		got := ProfilingJobName(name, types.UID(sha256Hex(name)))
		assert.LessOrEqual(t, len(got), validation.DNS1123LabelMaxLength)
		assert.Empty(t, validation.IsDNS1123Subdomain(got), "job name %q", got)
		assert.Empty(t, validation.IsValidLabelValue(got), "the Job controller copies the name into a label: %q", got)
	})
}

// TestProfilingJobDeterministic: expanding twice gives equal Jobs (the webhook relies on this for idempotency).
func TestProfilingJobDeterministic(t *testing.T) {
	d := readDGDR(t, filepath.Join("testdata", "job", "overrides", "dgdr.yaml"))
	d.Default(testDefaultImage)
	a, err := ProfilingJob(d, JobOptions{ProfilerImage: testProfilerImage})
	require.NoError(t, err)
	b, err := ProfilingJob(d.DeepCopy(), JobOptions{ProfilerImage: testProfilerImage})
	require.NoError(t, err)
	assert.Equal(t, a, b)
	assert.IsType(t, &batchv1.Job{}, a)
}

// TestProfilingJobUIDAndHash: a DGDR with a UID gets a Job that names that UID (annotation and the
// profiler's --uid) and has no owner reference (the garbage collector would delete a Job whose owner is not
// stored yet); the spec hash tells Jobs built from different specs apart.
func TestProfilingJobUIDAndHash(t *testing.T) {
	d := dgdr("owned", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.UID = "u-1" })
	job, err := ProfilingJob(d, JobOptions{ProfilerImage: testProfilerImage})
	require.NoError(t, err)
	assert.Empty(t, job.OwnerReferences, "owned only once the profiler claims it for the stored DGDR")
	assert.Equal(t, "u-1", job.Annotations[v1alpha1.AnnotationDGDRUID])
	assert.Equal(t, []string{"--namespace", "ns", "--name", "owned", "--uid", "u-1", "--generation", "1", "--job", "owned-profile-u1"}, job.Spec.Template.Spec.Containers[0].Args)
	specJSON, err := json.Marshal(job.Spec)
	require.NoError(t, err)
	assert.Equal(t, sha256Hex(string(specJSON)), job.Annotations[v1alpha1.AnnotationSpecHash])

	other := d.DeepCopy()
	other.UID = "u-2"
	otherJob, err := ProfilingJob(other, JobOptions{ProfilerImage: testProfilerImage})
	require.NoError(t, err)
	assert.NotEqual(t, job.Annotations[v1alpha1.AnnotationSpecHash], otherJob.Annotations[v1alpha1.AnnotationSpecHash], "the hash covers the --uid argument")
	changed := d.DeepCopy()
	changed.Spec.SearchStrategy = v1alpha1.SearchThorough
	changedJob, err := ProfilingJob(changed, JobOptions{ProfilerImage: testProfilerImage})
	require.NoError(t, err)
	assert.NotEqual(t, job.Annotations[v1alpha1.AnnotationSpecHash], changedJob.Annotations[v1alpha1.AnnotationSpecHash])
	image, err := ProfilingJob(d, JobOptions{ProfilerImage: testProfilerImage + "-next"})
	require.NoError(t, err)
	assert.NotEqual(t, job.Annotations[v1alpha1.AnnotationSpecHash], image.Annotations[v1alpha1.AnnotationSpecHash], "another profiler image is another Job")
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestRunJobName: run 1 keeps the create's name; later runs add the generation and the inputs hash, so two
// updates at one generation never meet on one Job; long names stay within 63 characters and distinct.
func TestRunJobName(t *testing.T) {
	const uid = "6f1c2d3e-0000-4000-8000-000000000001"
	assert.Equal(t, ProfilingJobName("qwen", uid), RunJobName("qwen", uid, 1, "abcdef"))
	assert.Equal(t, "qwen-profile-6f1c2-7-abcd", RunJobName("qwen", uid, 7, "abcdef"))
	assert.NotEqual(t, RunJobName("qwen", uid, 7, "abcdef"), RunJobName("qwen", uid, 7, "1234ef"))
	long := strings.Repeat("a", 63)
	for _, gen := range []int64{1, 2, 123456789} {
		name := RunJobName(long, uid, gen, "abcdef")
		assert.LessOrEqual(t, len(name), 63, name)
		assert.NotEqual(t, name, RunJobName(long[:62]+"b", uid, gen, "abcdef"))
	}
	d := dgdr("owned", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.UID = uid; d.Generation = 3 })
	job, err := ProfilingJob(d, JobOptions{ProfilerImage: testProfilerImage})
	require.NoError(t, err)
	assert.Equal(t, RunJobName("owned", uid, 3, v1alpha1.InputsHash(&d.Spec)), job.Name)
	assert.Equal(t, "3", job.Annotations[v1alpha1.AnnotationGeneration])
	assert.Equal(t, int64(3), v1alpha1.JobGeneration(job))
}
