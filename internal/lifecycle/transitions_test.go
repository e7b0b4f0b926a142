package lifecycle_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

func TestLegal(t *testing.T) {
	P := func(s string) v1alpha1.Phase { return v1alpha1.Phase(s) }
	for _, tt := range []struct {
		from, to string
		ok       bool
	}{
		{"", "Pending", true}, {"Pending", "Profiling", true}, {"Profiling", "Ready", true},
		{"Ready", "Deploying", true}, {"Deploying", "Deployed", true}, {"Deployed", "Deploying", true},
		{"Failed", "Deploying", true}, {"Profiling", "Failed", true},
		{"Pending", "Ready", false}, {"Ready", "Profiling", false}, {"Failed", "Failed", false},
		{"Deployed", "Failed", false}, {"Failed", "Pending", false}, {"Profiling", "Deployed", false},
	} {
		assert.Equal(t, tt.ok, lifecycle.Legal(P(tt.from), P(tt.to)), "%q → %q", tt.from, tt.to)
	}
}

func TestIsTransient(t *testing.T) {
	gr := schema.GroupResource{Group: "nvidia.com", Resource: "dynamographdeployments"}
	fieldConflict := apierrors.NewApplyConflict([]metav1.StatusCause{{Type: metav1.CauseTypeFieldManagerConflict, Field: ".spec", Message: `conflict with "kubectl"`}}, "Apply failed")
	for _, tt := range []struct {
		err       error
		transient bool
	}{
		{apierrors.NewInternalError(errors.New("etcd")), true},
		{apierrors.NewServiceUnavailable("restarting"), true},
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewServerTimeout(gr, "patch", 1), true},
		{apierrors.NewTimeoutError("timeout", 1), true},
		{apierrors.NewGenericServerResponse(http.StatusBadGateway, "patch", gr, "x", "", 0, true), true},
		{apierrors.NewConflict(gr, "x", errors.New("the object has been modified")), true},
		{fmt.Errorf("applying DGD x: %w", apierrors.NewInternalError(errors.New("etcd"))), true},
		{fieldConflict, false},
		{apierrors.NewInvalid(schema.GroupKind{Group: "nvidia.com", Kind: "DynamoGraphDeployment"}, "x", nil), false},
		{apierrors.NewForbidden(gr, "x", errors.New("no")), false},
		{apierrors.NewBadRequest("bad"), false},
		{apierrors.NewNotFound(gr, "x"), false},
		{errors.New("no matches for kind"), false},
	} {
		assert.Equal(t, tt.transient, lifecycle.IsTransient(tt.err), "%v", tt.err)
	}
}

// TestTransitions walks a DGDR through the state machine on the real API server: each Mark writes its
// phase and conditions, an illegal move is refused and changes nothing, a recreated DGDR is not written.
func TestTransitions(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	c := env.Client
	ctx := t.Context()
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "sm"}}))
	d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "qwen", Namespace: "sm"},
		Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-8B"}}
	d.Default("img")
	require.NoError(t, c.Create(ctx, d))
	ref := lifecycle.RefOf(d)

	got, err := lifecycle.MarkPending(ctx, c, ref, "qwen-profile")
	require.NoError(t, err)
	assert.Equal(t, "qwen-profile", got.Status.ProfilingJobName)
	_, err = lifecycle.MarkReady(ctx, c, ref, lifecycle.Profiled{Results: &v1alpha1.ProfilingResults{}})
	var te *lifecycle.TransitionError
	require.ErrorAs(t, err, &te, "Pending → Ready skips Profiling")
	assert.Equal(t, v1alpha1.PhasePending, te.From)

	_, err = lifecycle.MarkProfiling(ctx, c, ref, metav1.Now(), "rapid search running")
	require.NoError(t, err)
	got, err = lifecycle.MarkReady(ctx, c, ref, lifecycle.Profiled{Results: &v1alpha1.ProfilingResults{}, DGDName: "qwen-dgd", MeetsSLA: false, Message: "closest"})
	require.NoError(t, err)
	assert.Equal(t, v1alpha1.ReasonSLANotMet, findCondition(got, v1alpha1.ConditionProfilingComplete).Reason)
	assert.Equal(t, v1alpha1.ReasonGenerated, findCondition(got, v1alpha1.ConditionDGDGenerated).Reason)

	got, err = lifecycle.MarkDeploying(ctx, c, ref, "qwen-dgd", "Pareto point 2", nil)
	require.NoError(t, err)
	assert.Equal(t, v1alpha1.ReasonPromoted, findCondition(got, v1alpha1.ConditionDGDGenerated).Reason)

	// Deploying → Deployed is RecordDGDState's, and it writes only on change.
	got, wrote, err := lifecycle.RecordDGDState(ctx, c, got, lifecycle.DGDState{Found: true, Message: "state pending"})
	require.NoError(t, err)
	assert.True(t, wrote)
	assert.Equal(t, v1alpha1.PhaseDeploying, got.Status.Phase)
	_, wrote, err = lifecycle.RecordDGDState(ctx, c, got, lifecycle.DGDState{Found: true, Message: "state pending"})
	require.NoError(t, err)
	assert.False(t, wrote, "nothing new")
	got, _, err = lifecycle.RecordDGDState(ctx, c, got, lifecycle.DGDState{Found: true, Ready: true, Replicas: 2, AvailableReplicas: 2})
	require.NoError(t, err)
	assert.Equal(t, v1alpha1.PhaseDeployed, got.Status.Phase)
	assert.Equal(t, int32(2), got.Status.DeploymentInfo.AvailableReplicas)

	_, err = lifecycle.MarkFailed(ctx, c, ref, v1alpha1.ConditionDeploymentReady, v1alpha1.ReasonApplyFailed, "x")
	require.True(t, lifecycle.IsTransitionError(err), "a Deployed DGDR is not failed: %v", err)

	// A DGDR deleted and created again under the name is another request.
	require.NoError(t, c.Delete(ctx, got))
	again := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "qwen", Namespace: "sm"}, Spec: d.Spec}
	require.NoError(t, c.Create(ctx, again))
	_, err = lifecycle.MarkFailed(ctx, c, ref, v1alpha1.ConditionProfilingComplete, v1alpha1.ReasonProfilerError, "old run")
	require.True(t, lifecycle.IsGone(err), "%v", err)
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(again), again))
	assert.Empty(t, again.Status.Phase, "the new DGDR was not written")

	// The first cause stands.
	_, err = lifecycle.MarkFailed(ctx, c, lifecycle.RefOf(again), v1alpha1.ConditionProfilingComplete, v1alpha1.ReasonOOMKilled, "first")
	require.NoError(t, err)
	_, err = lifecycle.MarkFailed(ctx, c, lifecycle.RefOf(again), v1alpha1.ConditionProfilingComplete, v1alpha1.ReasonProfilerError, "second")
	require.True(t, lifecycle.IsTransitionError(err))
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(again), again))
	assert.Equal(t, v1alpha1.ReasonOOMKilled, findCondition(again, v1alpha1.ConditionProfilingComplete).Reason)
}

// TestApplySelected: the one apply path refuses a DGD that is not the DGDR's, and records Deploying.
func TestApplySelected(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	c := env.Client
	ctx := t.Context()
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apply"}}))
	d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "qwen", Namespace: "apply"},
		Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-8B"}}
	d.Default("img")
	require.NoError(t, c.Create(ctx, d))
	ref := lifecycle.RefOf(d)
	_, err := lifecycle.MarkProfiling(ctx, c, ref, metav1.Now(), "")
	require.NoError(t, err)
	d, err = lifecycle.MarkReady(ctx, c, ref, lifecycle.Profiled{Results: &v1alpha1.ProfilingResults{}, DGDName: "mine", MeetsSLA: true})
	require.NoError(t, err)

	dgd := func(name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
		u.SetName(name)
		u.SetNamespace("apply")
		u.Object["spec"] = map[string]any{"components": []any{map[string]any{"name": "Frontend", "type": "frontend", "replicas": int64(1)}}}
		return u
	}
	theirs := dgd("theirs")
	require.NoError(t, c.Create(ctx, theirs, client.FieldOwner("kubectl")))
	_, err = lifecycle.ApplySelected(ctx, c, d, dgd("theirs"), lifecycle.SelectedOptions{})
	require.True(t, lifecycle.IsOwnerError(err), "%v", err)
	live, err := lifecycle.GetDGD(ctx, c, "apply", "theirs")
	require.NoError(t, err)
	assert.Empty(t, live.GetLabels(), "untouched")

	out, err := lifecycle.ApplySelected(ctx, c, d, dgd("mine"), lifecycle.SelectedOptions{})
	require.NoError(t, err)
	assert.True(t, out.Changed)
	assert.Equal(t, v1alpha1.PhaseDeploying, out.DGDR.Status.Phase)
	assert.Equal(t, "qwen", out.Stored.GetLabels()[v1alpha1.LabelDGDRName])
}
