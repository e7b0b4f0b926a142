package webhook

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

// FuzzJobOverrideDryRun builds overrides.profilingJob from fuzzed values of every allowlisted field, and
// for each one that validation admits sends the merged Job to the real API server as a dry run: it must be
// accepted, or refused as a 422 that the webhook reports under spec.overrides.profilingJob, and never
// otherwise (a Job dgdr cannot even encode); an accepted Job still runs the profiler as dgdr-profiler.
// The seed corpus is in testdata/fuzz/FuzzJobOverrideDryRun.
func FuzzJobOverrideDryRun(f *testing.F) {
	f.Add("pool", "cpu", "dedicated", "Exists", "", "NoSchedule", "low", "HF_HOME", "/tmp/hf", "500m", "2Gi", int64(60), int32(0))
	f.Add("a/b", "x", "k", "Equal", "v", "", "", "A", "1", "2", "1Gi", int64(1), int32(6))
	f.Add("Bad Key", "v", "", "Exists", "x", "Sometimes", "Not_A_Name", "=", "", "-1", "1Gi", int64(0), int32(-1))
	f.Add("k", "", "k", "Lt", "3", "NoExecute", "p", "1X", "v", "4", "1Mi", int64(3600), int32(2))
	cl := startCluster(f)
	require.NoError(f, cl.env.Client.Create(f.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fuzz"}}))
	f.Fuzz(func(t *testing.T, selKey, selVal, tolKey, tolOp, tolVal, tolEffect, priority, envName, envVal, cpu, mem string, deadline int64, backoff int32) {
		override := map[string]any{
			"activeDeadlineSeconds": deadline,
			"backoffLimit":          backoff,
			"template": map[string]any{"spec": map[string]any{
				"nodeSelector":      map[string]string{selKey: selVal},
				"tolerations":       []map[string]string{{"key": tolKey, "operator": tolOp, "value": tolVal, "effect": tolEffect}},
				"priorityClassName": priority,
				"imagePullSecrets":  []map[string]string{{"name": "pull"}},
				"containers": []map[string]any{{"name": "profiler",
					"env":       []map[string]string{{"name": envName, "value": envVal}},
					"resources": map[string]any{"requests": map[string]string{"cpu": cpu, "memory": mem}}}},
			}},
		}
		raw, err := json.Marshal(override)
		require.NoError(t, err)
		d := newDGDR("fuzz", "f", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
			d.Spec.Overrides = &v1alpha1.Overrides{ProfilingJob: &runtime.RawExtension{Raw: raw}}
		})
		d.Default(DefaultImage)
		if len(cl.handler.staticErrors(d)) > 0 {
			return // refused before the API server is asked
		}
		job, err := expand.ProfilingJob(d, expand.JobOptions{ProfilerImage: testProfilerImage})
		require.NoError(t, err, "admitted overrides build a Job: %s", raw)
		err = cl.handler.Client.Create(t.Context(), job, client.DryRunAll)
		if err != nil {
			require.True(t, apierrors.IsInvalid(err), "the API server refuses the Job only as invalid: %v (%s)", err, raw)
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: admissionv1.Create, Namespace: "fuzz",
				UserInfo: authenticationv1.UserInfo{Username: "dgdr-test-admin", Groups: []string{"system:masters"}}}}
			errs, cerr := cl.handler.checkJobOverride(admission.NewContextWithRequest(t.Context(), req), req, d, false)
			require.NoError(t, cerr)
			require.NotEmpty(t, errs, "the webhook refuses what the API server refuses: %s", raw)
			for _, e := range errs {
				require.True(t, strings.HasPrefix(e.Field, "spec.overrides.profilingJob"), e.Field)
			}
			return
		}
		pod := job.Spec.Template.Spec
		require.Equal(t, v1alpha1.ProfilerServiceAccount, pod.ServiceAccountName)
		require.Len(t, pod.Containers, 1)
		require.Equal(t, testProfilerImage, pod.Containers[0].Image)
		require.Equal(t, []string{expand.ProfilerBinary}, pod.Containers[0].Command)
		require.IsType(t, &batchv1.Job{}, job)
	})
}
