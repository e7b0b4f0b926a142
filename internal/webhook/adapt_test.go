package webhook

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

// testAdaptCronJob runs in TestGarbageCollection (the garbage collector on, short claims): the adaptation
// CronJob the webhook creates for a DGDR with spec.adaptation, through the real API server.
func testAdaptCronJob(t *testing.T, cl *cluster) {
	c := cl.env.Client
	adaptation := func(window string) func(*v1alpha1.DynamoGraphDeploymentRequest) {
		return func(d *v1alpha1.DynamoGraphDeploymentRequest) {
			d.Spec.Adaptation = &v1alpha1.Adaptation{PrometheusURL: "http://prometheus.monitoring:9090", Window: window}
		}
	}
	cronJobs := func(t *testing.T, ns string) []batchv1.CronJob {
		t.Helper()
		list := &batchv1.CronJobList{}
		require.NoError(t, c.List(t.Context(), list, client.InNamespace(ns)))
		return list.Items
	}
	ownedBy := func(t *testing.T, ns string, d *v1alpha1.DynamoGraphDeploymentRequest) batchv1.CronJob {
		t.Helper()
		var cjs []batchv1.CronJob
		require.Eventually(t, func() bool {
			cjs = cronJobs(t, ns)
			return len(cjs) == 1 && metav1.GetControllerOf(&cjs[0]) != nil && metav1.GetControllerOf(&cjs[0]).UID == d.UID
		}, testClaimWait+30*time.Second, 100*time.Millisecond, "one CronJob, owned by the stored DGDR: %v", cjs)
		return cjs[0]
	}
	update := func(t *testing.T, d *v1alpha1.DynamoGraphDeploymentRequest, mutate func(*v1alpha1.DynamoGraphDeploymentRequest)) {
		t.Helper()
		require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(d), d))
		mutate(d)
		require.NoError(t, c.Update(t.Context(), d))
	}

	t.Run("adaptation: one CronJob with the expected contents, owned once stored; none without; updated, removed and collected with the spec", func(t *testing.T) {
		ns := cl.namespace(t, "adapt", false)
		_, err := cl.create(t, newDGDR(ns, "plain", nil))
		require.NoError(t, err)
		d := newDGDR(ns, "watched", adaptation("10m"))
		_, err = cl.create(t, d)
		require.NoError(t, err)

		cj := ownedBy(t, ns, d)
		want, err := expand.AdaptCronJob(d, expand.JobOptions{ProfilerImage: testProfilerImage})
		require.NoError(t, err)
		assert.Equal(t, "watched-adapt-"+string(d.UID)[:5], cj.Name)
		assert.Equal(t, want.Annotations, cj.Annotations, "built from the stored (defaulted) spec, for its UID and generation")
		assert.Equal(t, want.Spec.Schedule, cj.Spec.Schedule)
		assert.Regexp(t, `^\d+-59/10 \* \* \* \*$`, cj.Spec.Schedule, "every window")
		assert.Equal(t, batchv1.ForbidConcurrent, cj.Spec.ConcurrencyPolicy)
		pod := cj.Spec.JobTemplate.Spec.Template.Spec
		assert.Equal(t, v1alpha1.ProfilerServiceAccount, pod.ServiceAccountName)
		assert.True(t, *pod.SecurityContext.RunAsNonRoot)
		require.Len(t, pod.Containers, 1)
		assert.Equal(t, testProfilerImage, pod.Containers[0].Image)
		assert.True(t, *pod.Containers[0].SecurityContext.ReadOnlyRootFilesystem)
		assert.Equal(t, []string{"drift", "--namespace", ns, "--name", "watched", "--uid", string(d.UID)}, pod.Containers[0].Args)

		// A changed window: the same CronJob, rescheduled for the new generation.
		update(t, d, adaptation("30m"))
		require.Eventually(t, func() bool {
			cjs := cronJobs(t, ns)
			return len(cjs) == 1 && cjs[0].Name == cj.Name && cjs[0].Annotations[v1alpha1.AnnotationGeneration] == "2"
		}, 10*time.Second, 100*time.Millisecond)
		assert.Regexp(t, `^\d+-59/30 \* \* \* \*$`, ownedBy(t, ns, d).Spec.Schedule)

		// A spec without adaptation: the CronJob goes once that spec is stored.
		update(t, d, func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.Adaptation = nil })
		require.Eventually(t, func() bool { return len(cronJobs(t, ns)) == 0 }, testClaimWait+30*time.Second, 100*time.Millisecond,
			"removing spec.adaptation removes the CronJob")

		// Set again, then the DGDR deleted: the collector deletes its CronJob (it is the owner).
		update(t, d, adaptation("1h"))
		ownedBy(t, ns, d)
		require.NoError(t, c.Delete(t.Context(), d))
		require.Eventually(t, func() bool { return len(cronJobs(t, ns)) == 0 }, 60*time.Second, 200*time.Millisecond,
			"the collector deletes the CronJob of the deleted DGDR")
	})

	t.Run("adaptation: a dry run creates no CronJob; a create refused after the webhook leaves none for long", func(t *testing.T) {
		ns := cl.namespace(t, "adapt-refused", false)
		_, err := cl.create(t, newDGDR(ns, "dry", adaptation("1h")), client.DryRunAll)
		require.NoError(t, err)
		assert.Empty(t, cronJobs(t, ns), "a dry run has no side effect")

		q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "dgdrs", Namespace: ns},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/dynamographdeploymentrequests.nvidia.com": resource.MustParse("0")}}}
		require.NoError(t, c.Create(t.Context(), q))
		q.Status = corev1.ResourceQuotaStatus{Hard: q.Spec.Hard, Used: corev1.ResourceList{"count/dynamographdeploymentrequests.nvidia.com": resource.MustParse("0")}}
		require.NoError(t, c.Status().Update(t.Context(), q))
		_, err = cl.create(t, newDGDR(ns, "refused", adaptation("1h")))
		require.True(t, apierrors.IsForbidden(err), "%v", err)
		cjs := cronJobs(t, ns)
		require.Len(t, cjs, 1, "the webhook created the CronJob before the quota refused the DGDR")
		assert.Nil(t, metav1.GetControllerOf(&cjs[0]))
		require.Eventually(t, func() bool { return len(cronJobs(t, ns)) == 0 }, testClaimWait+30*time.Second, 200*time.Millisecond,
			"the refused create's CronJob is deleted by the webhook's claim")
	})
}
