package testenv

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// TestControlPlaneServesBothCRDs checks the harness itself: our CRD and the real Dynamo DGD CRD are
// installed and served, and the API server bumps a DGDR's generation on a spec change only (one profiling
// run per generation relies on it).
func TestControlPlaneServesBothCRDs(t *testing.T) {
	env := Start(t, Options{})
	ctx := t.Context()

	d := &v1alpha1.DynamoGraphDeploymentRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default"},
		Spec:       v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-0.6B", Backend: v1alpha1.BackendVLLM},
	}
	require.NoError(t, env.Client.Create(ctx, d))
	assert.Equal(t, int64(1), d.Generation)
	d.Labels = map[string]string{"team": "a"}
	require.NoError(t, env.Client.Update(ctx, d))
	assert.Equal(t, int64(1), d.Generation, "a metadata change is no new generation")
	d.Spec.Workload = &v1alpha1.Workload{ISL: ptr.To[int32](1024)}
	require.NoError(t, env.Client.Update(ctx, d))
	assert.Equal(t, int64(2), d.Generation, "a spec change is")

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

// TestOwnerReferencesPermissionEnforcementAndGarbageCollector checks the two options that owner-reference
// tests rely on: the admission plugin is on by default (blockOwnerDeletion needs update on the owner's
// finalizers), and GarbageCollector runs kube-controller-manager's garbage collector (Start waits for it
// to delete a ConfigMap with a dangling owner).
func TestOwnerReferencesPermissionEnforcementAndGarbageCollector(t *testing.T) {
	env := Start(t, Options{GarbageCollector: true})
	ctx := t.Context()
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner", Namespace: "default"}}
	require.NoError(t, env.Client.Create(ctx, owner))
	require.NoError(t, env.Client.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "default"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create", "get"}}},
	}))
	require.NoError(t, env.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "default"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "cm"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "bob"}},
	}))
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "bob", Groups: []string{"system:authenticated"}}
	bob, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)

	ref := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}
	blocking := ref
	blocking.BlockOwnerDeletion = ptr.To(true)
	err = bob.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "blocking", Namespace: "default", OwnerReferences: []metav1.OwnerReference{blocking}}})
	require.True(t, apierrors.IsForbidden(err), "%v", err)
	assert.Contains(t, err.Error(), "blockOwnerDeletion")
	dep := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dependent", Namespace: "default", OwnerReferences: []metav1.OwnerReference{ref}}}
	require.NoError(t, bob.Create(ctx, dep), "an owner reference without blockOwnerDeletion needs no more rights")

	// The collector removes the dependent once its owner is gone.
	require.NoError(t, env.Client.Delete(ctx, owner))
	require.Eventually(t, func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(dep), &corev1.ConfigMap{}))
	}, 60*time.Second, 200*time.Millisecond)
}
