package withwebhook

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

func TestWebhookDefaultsAndStartsProfiling(t *testing.T) {
	env := Start(t)
	d := &v1alpha1.DynamoGraphDeploymentRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default"},
		Spec:       v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-0.6B"},
	}
	require.NoError(t, env.Client.Create(t.Context(), d))
	assert.Equal(t, v1alpha1.BackendAny, d.Spec.Backend)
	require.NoError(t, env.Client.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: expand.ProfilingJobName(d.Name, d.UID)}, &batchv1.Job{}),
		"the webhook created the profiling Job")

	// An UPDATE goes through the mutating webhook too, which leaves it as it is.
	spec := d.Spec.DeepCopy()
	d.Labels = map[string]string{"team": "serving"}
	require.NoError(t, env.Client.Update(t.Context(), d))
	assert.Equal(t, "serving", d.Labels["team"])
	assert.Equal(t, *spec, d.Spec)
}
