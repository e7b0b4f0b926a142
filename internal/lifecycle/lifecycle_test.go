package lifecycle

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestReadDGDState(t *testing.T) {
	tests := []struct {
		name      string
		status    map[string]any
		ready     bool
		failed    bool
		replicas  int32
		available int32
		message   string
	}{
		{name: "no status yet", status: nil, message: "the Dynamo operator has not reported a state yet"},
		{name: "pending", status: map[string]any{"state": "pending"}, message: "state pending"},
		{name: "failed", status: map[string]any{"state": "failed"}, failed: true, message: "state failed"},
		{
			name: "successful with components",
			status: map[string]any{"state": "successful", "components": map[string]any{
				"Frontend":         map[string]any{"replicas": int64(1), "availableReplicas": int64(1)},
				"VllmDecodeWorker": map[string]any{"replicas": int64(2), "readyReplicas": int64(1)}, // a PodClique
			}},
			ready: true, replicas: 3, available: 2, message: "state successful",
		},
		{
			name: "ready condition on v1alpha1 services",
			status: map[string]any{
				"conditions": []any{map[string]any{"type": "Ready", "status": "True", "message": "all services ready"}},
				"services":   map[string]any{"Frontend": map[string]any{"replicas": int64(1), "availableReplicas": int64(1)}},
			},
			ready: true, replicas: 1, available: 1, message: "all services ready",
		},
		{
			name:    "ready condition false",
			status:  map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "False", "message": "waiting for pods"}}},
			message: "waiting for pods",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &unstructured.Unstructured{Object: map[string]any{}}
			if tt.status != nil {
				u.Object["status"] = tt.status
			}
			st := ReadDGDState(u)
			assert.True(t, st.Found)
			assert.Equal(t, tt.ready, st.Ready)
			assert.Equal(t, tt.failed, st.Failed)
			assert.Equal(t, tt.replicas, st.Replicas)
			assert.Equal(t, tt.available, st.AvailableReplicas)
			assert.Equal(t, tt.message, st.Message)
		})
	}
}
