package testenv

import (
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// TestControlPlaneServesBothCRDs checks the harness itself: our CRD (with its CEL immutability rule) and
// the real Dynamo DGD CRD are installed and served.
func TestControlPlaneServesBothCRDs(t *testing.T) {
	env := Start(t, Options{})
	ctx := t.Context()

	d := &v1alpha1.DynamoGraphDeploymentRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default"},
		Spec:       v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-0.6B", Backend: v1alpha1.BackendVLLM},
	}
	require.NoError(t, env.Client.Create(ctx, d))
	d.Spec.Workload = &v1alpha1.Workload{ISL: ptr.To[int32](1024)}
	err := env.Client.Update(ctx, d)
	require.ErrorContains(t, err, "spec is immutable")

	dgd := &unstructured.Unstructured{}
	dgd.SetAPIVersion("nvidia.com/v1beta1")
	dgd.SetKind("DynamoGraphDeployment")
	dgd.SetName("probe")
	dgd.SetNamespace("default")
	require.NoError(t, unstructured.SetNestedSlice(dgd.Object, []any{
		map[string]any{"name": "Frontend", "type": "frontend", "replicas": int64(1)},
	}, "spec", "components"))
	require.NoError(t, env.Client.Create(ctx, dgd))
}
