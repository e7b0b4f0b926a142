package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/testenv/withwebhook"
	"github.com/dgdr-dev/dgdr/internal/webhook"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

// withWebhook starts the control plane with the webhook as manifests/base/webhooks.yaml installs it.
func withWebhook(t *testing.T) *harness {
	t.Helper()
	return newHarness(t, withwebhook.Options(t))
}

func TestCreateWithWebhook(t *testing.T) {
	h := withWebhook(t)
	ctx := t.Context()
	ns := h.namespace("hooked")

	t.Run("server dry run shows the webhook's defaults and starts nothing", func(t *testing.T) {
		h := h.with(t)
		r := h.ok("create", "preview", "-n", ns, "--model", "Qwen/Qwen3-0.6B", "--dry-run=server", "-o", "yaml")
		var d v1alpha1.DynamoGraphDeploymentRequest
		require.NoError(t, yaml.Unmarshal([]byte(r.out), &d))
		assert.Equal(t, v1alpha1.DynamoGraphDeploymentRequestSpec{
			Model: "Qwen/Qwen3-0.6B", Backend: v1alpha1.BackendAny, SearchStrategy: v1alpha1.SearchRapid, Image: webhook.DefaultImage,
			Workload: &v1alpha1.Workload{ISL: ptr.To(v1alpha1.DefaultISL), OSL: ptr.To(v1alpha1.DefaultOSL)},
			SLA:      &v1alpha1.SLA{TTFT: ptr.To(v1alpha1.DefaultTTFT), ITL: ptr.To(v1alpha1.DefaultITL)},
		}, d.Spec)
		jobs := &batchv1.JobList{}
		require.NoError(t, h.env.Client.List(ctx, jobs, client.InNamespace(ns)))
		assert.Empty(t, jobs.Items, "a dry run creates no profiling Job")
	})

	t.Run("create starts profiling; status, logs and delete follow the Job", func(t *testing.T) {
		h := h.with(t)
		h.ok("create", "qwen", "-n", ns, "--model", "Qwen/Qwen3-0.6B", "--backend", "auto")
		d := h.get(ns, "qwen")
		assert.Equal(t, v1alpha1.BackendAny, d.Spec.Backend, "auto is stored as any")
		jobName := expand.ProfilingJobName(d.Name, d.UID)

		r := h.ok("status", "qwen", "-n", ns)
		assert.Regexp(t, `Profiling Job:\s+`+jobName+` \(waiting for a pod\)\n`, r.out)
		assert.Contains(t, r.out, "Next: wait for the profiling Job to start; follow it with `kubectl dgdr logs qwen -n hooked -f`")
		assert.Contains(t, h.fail("logs", "qwen", "-n", ns).errLine, "the profiling Job "+jobName+" has no pod yet")

		// delete removes the Job too (no garbage collector runs here), and the request can be made again.
		r = h.ok("delete", "qwen", "-n", ns, "--wait")
		assert.Contains(t, r.out, "job.batch/"+jobName+" deleted\n")
		err := h.env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: jobName}, &batchv1.Job{})
		assert.True(t, apierrors.IsNotFound(err), "the Job is gone: %v", err)
		h.ok("create", "qwen", "-n", ns, "--model", "Qwen/Qwen3-0.6B")
		again := h.get(ns, "qwen")
		require.NoError(t, h.env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: expand.ProfilingJobName(again.Name, again.UID)}, &batchv1.Job{}),
			"the new create has its own Job")
	})

	t.Run("the webhook's refusal is one line with a hint", func(t *testing.T) {
		h := h.with(t)
		r := h.fail("create", "cached", "-n", ns, "--model", "Qwen/Qwen3-0.6B", "--model-cache-pvc", "weights")
		assert.Contains(t, r.errLine, `PersistentVolumeClaim "weights" does not exist in namespace "hooked"`)
		assert.Contains(t, r.errLine, "(hint: fix the spec; `kubectl dgdr create --dry-run=server -o yaml` shows what the webhook makes of it)")
	})
}
