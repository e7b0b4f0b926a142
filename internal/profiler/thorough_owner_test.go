package profiler

import (
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

func TestCandidateName(t *testing.T) {
	tests := []struct{ def, suffix, want string }{
		{"qwen-dgd", "-c0", "qwen-c0"},
		{"qwen-dgd", "-c12", "qwen-c12"},
		{"qwen-dgd", "-c123", "qwe-c123"},
		// A shortened default (prefix + hash) keeps its length.
		{"a-very-long-request-name-that-was-cu-1a2b3c", "-c3", "a-very-long-request-name-that-was-cu-1a2-c3"},
		{"x-dgd", "-c1", "x-c1"},
	}
	for _, tt := range tests {
		got := candidateName(tt.def, tt.suffix)
		assert.Equal(t, tt.want, got)
		assert.LessOrEqual(t, len(got), len(tt.def), "no longer than the name that fits Dynamo's limit")
	}
}

// TestOurs: only a DGD labelled as this DGDR's candidate and owned by its UID is reused or deleted; a
// leftover of an earlier DGDR of the name may be removed; anything else is left alone.
func TestOurs(t *testing.T) {
	d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "qwen", Namespace: "ns", UID: "u1"}}
	s := &sweep{d: d}
	owner := func(name string, uid types.UID) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind, Name: name, UID: uid}}
	}
	labels := map[string]string{v1alpha1.LabelDGDRName: "qwen", v1alpha1.LabelCandidate: "c0"}
	for _, tt := range []struct {
		name           string
		labels         map[string]string
		owners         []metav1.OwnerReference
		ours, leftover bool
	}{
		{"our candidate", labels, owner("qwen", "u1"), true, true},
		{"an earlier DGDR's candidate", labels, owner("qwen", "u0"), false, true},
		{"labels copied, no owner", labels, nil, false, false},
		{"another DGDR's", map[string]string{v1alpha1.LabelDGDRName: "llama", v1alpha1.LabelCandidate: "c0"}, owner("llama", "u2"), false, false},
		{"ours by owner but not a candidate", map[string]string{v1alpha1.LabelDGDRName: "qwen"}, owner("qwen", "u1"), false, false},
		{"a user's DGD", nil, nil, false, false},
	} {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetLabels(tt.labels)
		u.SetOwnerReferences(tt.owners)
		assert.Equal(t, tt.ours, s.ours(u), tt.name)
		assert.Equal(t, tt.leftover, s.leftover(u), tt.name)
	}
}
