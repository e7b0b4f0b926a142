package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// noServiceAccount: a DGDR in a namespace without the profiler's kit is admitted with a warning; the
// profiling Job cannot create its pod, and create --wait fails at once with that cause and what to install.
func noServiceAccount(t *testing.T, c *cluster, u *user, assets string) {
	began := time.Now()
	const ns = "no-kit"
	c.profilerNamespace(t, u.root, assets, ns, true)
	stdout, stderr, err := u.dgdr(ns, "create", "-f", "examples/quick-start.yaml", "--wait", "--timeout", "3m")
	t.Logf("kubectl dgdr create --wait in a namespace without the kit:\n%s%s", stdout, stderr)
	require.Error(t, err, "create --wait fails")
	assert.Contains(t, stderr, "dgdr-profiler", "the admission warning names the missing ServiceAccount")
	assert.Contains(t, stderr, v1alpha1.ReasonServiceAccountMissing)
	assert.Contains(t, stderr, "manifests/profiler-namespace", "the error says what to install")
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	must(t, c.client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "quick-start"}, d), "reading the DGDR")
	assert.Equal(t, v1alpha1.PhaseFailed, d.Status.Phase)
	found := false
	for _, cond := range d.Status.Conditions {
		found = found || cond.Reason == v1alpha1.ReasonServiceAccountMissing
	}
	assert.True(t, found, "a condition records the cause: %+v", d.Status.Conditions)
	c.timed("fault: no ServiceAccount", began)
}

// profilerPodDeleted: the profiler's pod is deleted while it waits for the DGD it applied; the Job's
// retry starts a new pod, which resumes from the stored status, and the DGDR still reaches Deployed with
// one DGD.
func profilerPodDeleted(t *testing.T, c *cluster, u *user, op *dynamoStandIn, assets string) {
	began := time.Now()
	const ns = "retry"
	c.profilerNamespace(t, u.root, assets, ns, false)
	op.hold(ns)
	_, stderr, err := u.dgdr(ns, "create", "-f", "examples/quick-start.yaml")
	require.NoError(t, err, stderr)
	key := types.NamespacedName{Namespace: ns, Name: "quick-start"}
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	c.waitFor(t, "the DGDR Deploying (the profiler waiting for its DGD)", 2*time.Minute, func() (bool, error) {
		err := c.client.Get(t.Context(), key, d)
		return err == nil && d.Status.Phase == v1alpha1.PhaseDeploying, fmt.Errorf("phase %q: %v", d.Status.Phase, err)
	})
	var first *corev1.Pod
	c.waitFor(t, "the profiler's pod running", time.Minute, func() (bool, error) {
		first = runningProfiler(t, c, ns)
		return first != nil, nil
	})
	must(t, c.client.Delete(t.Context(), first), "deleting the profiler's pod %s", first.Name)
	t.Logf("deleted profiler pod %s while the DGDR was %s", first.Name, d.Status.Phase)
	var second *corev1.Pod
	c.waitFor(t, "a new profiler pod running", 2*time.Minute, func() (bool, error) {
		second = runningProfiler(t, c, ns)
		return second != nil && second.UID != first.UID, fmt.Errorf("no new pod yet%s", c.podTrouble(t.Context(), ns))
	})
	op.release(ns)
	c.waitFor(t, "the DGDR Deployed after the retry", 3*time.Minute, func() (bool, error) {
		err := c.client.Get(t.Context(), key, d)
		return err == nil && d.Status.Phase == v1alpha1.PhaseDeployed, fmt.Errorf("phase %q: %v%s", d.Status.Phase, err, c.podTrouble(t.Context(), ns))
	})
	job := &batchv1.Job{}
	c.waitFor(t, "the profiling Job complete", time.Minute, func() (bool, error) {
		err := c.client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: d.Status.ProfilingJobName}, job)
		return err == nil && job.Status.Succeeded == 1, fmt.Errorf("succeeded %d failed %d: %v", job.Status.Succeeded, job.Status.Failed, err)
	})
	dgds := &unstructured.UnstructuredList{}
	dgds.SetGroupVersionKind(dgdGVK.GroupVersion().WithKind("DynamoGraphDeploymentList"))
	must(t, c.client.List(t.Context(), dgds, client.InNamespace(ns)), "listing DGDs")
	assert.Len(t, dgds.Items, 1, "the retry applied the same DGD, not a second one")
	out, _, err := u.dgdr(ns, "logs", "quick-start")
	require.NoError(t, err)
	t.Logf("kubectl dgdr logs after the retry:\n%s", tailString(out, 6))
	c.timed("fault: profiler pod deleted", began)
}

// runningProfiler is the profiling Job's running pod in ns (nil when none).
func runningProfiler(t *testing.T, c *cluster, ns string) *corev1.Pod {
	pods := &corev1.PodList{}
	must(t, c.client.List(t.Context(), pods, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/name": "dgdr-profiler"}), "listing profiler pods")
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			return p
		}
	}
	return nil
}

// webhookPodDeleted: one webhook pod is deleted during a burst of creates; the other replica keeps
// admission up (the Service's endpoints follow the pods), every create succeeds, and each DGDR has
// exactly one profiling Job — none orphaned, none twice.
func webhookPodDeleted(t *testing.T, c *cluster, u *user, assets string) {
	began := time.Now()
	const ns, n = "burst", 24
	c.profilerNamespace(t, u.root, assets, ns, false)
	pods := &corev1.PodList{}
	must(t, c.client.List(t.Context(), pods, client.InNamespace("dgdr-system"), client.MatchingLabels{"app.kubernetes.io/name": "dgdr-webhook"}), "listing webhook pods")
	require.Len(t, pods.Items, 2)
	victim := pods.Items[0]

	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 100 * time.Millisecond)
			d := &v1alpha1.DynamoGraphDeploymentRequest{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("burst-%02d", i), Namespace: ns},
				Spec:       v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-32B", Image: "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.3.0"},
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			errs[i] = c.client.Create(ctx, d)
		}()
	}
	time.Sleep(time.Duration(n/3) * 100 * time.Millisecond)
	must(t, c.client.Delete(t.Context(), &victim), "deleting webhook pod %s", victim.Name)
	t.Logf("deleted webhook pod %s after %d of %d creates had started", victim.Name, n/3, n)
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Sprintf("burst-%02d: %v", i, err))
		}
	}
	assert.Empty(t, failed, "every create was admitted")

	jobs := &batchv1.JobList{}
	must(t, c.client.List(t.Context(), jobs, client.InNamespace(ns)), "listing Jobs")
	byName := map[string]int{}
	for _, j := range jobs.Items {
		byName[j.Labels[v1alpha1.LabelDGDRName]]++
	}
	for i := range n {
		if errs[i] == nil {
			assert.Equal(t, 1, byName[fmt.Sprintf("burst-%02d", i)], "burst-%02d has one profiling Job", i)
		}
	}
	assert.Len(t, jobs.Items, n-len(failed), "no Job without its DGDR")

	c.waitFor(t, "the webhook back at 2 ready replicas", 2*time.Minute, func() (bool, error) {
		pods := &corev1.PodList{}
		err := c.client.List(t.Context(), pods, client.InNamespace("dgdr-system"), client.MatchingLabels{"app.kubernetes.io/name": "dgdr-webhook"})
		ready := 0
		for _, p := range pods.Items {
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
					ready++
				}
			}
		}
		return err == nil && ready == 2, fmt.Errorf("%d ready: %v", ready, err)
	})
	// The burst's profilers would queue on the node's two CPUs: the namespace goes, and with it their Jobs.
	if err := c.client.Delete(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting namespace %s: %v", ns, err)
	}
	c.timed("fault: webhook pod deleted in burst", began)
}
