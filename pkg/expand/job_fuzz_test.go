package expand

import (
	"testing"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// FuzzProfilingJobOverride: every overrides.profilingJob that validation admits builds a Job, and that Job
// differs from the one built without the override only in the allowlisted scheduling and sizing fields.
// Whoever may create a DGDR cannot change what the pod runs, as whom, or with what access to the node.
// (testdata/fuzz/FuzzProfilingJobOverride holds the seed corpus beside the seeds below.)
func FuzzProfilingJobOverride(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"activeDeadlineSeconds":60,"backoffLimit":0}`,
		`{"template":{"spec":{"nodeSelector":{"pool":"cpu"},"tolerations":[{"key":"k","operator":"Exists"}],"priorityClassName":"low"}}}`,
		`{"template":{"spec":{"containers":[{"name":"profiler","env":[{"name":"A","value":"1"}],"resources":{"limits":{"memory":"4Gi"}}}]}}}`,
		`{"template":{"spec":{"containers":[{"name":"profiler","$patch":"replace"}]}}}`,
		`{"template":{"spec":{"serviceAccountName":"admin","hostNetwork":true}}}`,
		`{"template":{"spec":{"imagePullSecrets":[{"name":"a"}],"affinity":{"podAntiAffinity":{}}}}}`,
	} {
		f.Add([]byte(s))
	}
	opts := JobOptions{ProfilerImage: testProfilerImage}
	base, err := ProfilingJob(dgdr("fuzz", nil), opts)
	require.NoError(f, err)

	f.Fuzz(func(t *testing.T, raw []byte) {
		d := dgdr("fuzz", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
			d.Spec.Overrides = &v1alpha1.Overrides{ProfilingJob: &runtime.RawExtension{Raw: raw}}
		})
		if errs := v1alpha1.ValidateSpec(&d.Spec); len(errs) > 0 {
			return
		}
		job, err := ProfilingJob(d, opts)
		require.NoError(t, err, "an admitted override builds a Job: %s", raw)
		require.Equal(t, base.Name, job.Name)
		require.Equal(t, base.Labels, job.Labels)
		require.Equal(t, base.OwnerReferences, job.OwnerReferences)
		require.Equal(t, withoutAllowed(base.Spec.DeepCopy()), withoutAllowed(job.Spec.DeepCopy()),
			"the override %s changed a field outside the allowlist", raw)
	})
}

// withoutAllowed clears what overrides.profilingJob may set (v1alpha1.JobOverrideAllowlist).
func withoutAllowed(s *batchv1.JobSpec) *batchv1.JobSpec {
	s.ActiveDeadlineSeconds, s.BackoffLimit = nil, nil
	p := &s.Template.Spec
	p.NodeSelector, p.Tolerations, p.Affinity, p.PriorityClassName, p.ImagePullSecrets = nil, nil, nil, "", nil
	for i := range p.Containers {
		if p.Containers[i].Name == ProfilerContainerName {
			p.Containers[i].Env, p.Containers[i].Resources = nil, corev1.ResourceRequirements{}
		}
	}
	return s
}
