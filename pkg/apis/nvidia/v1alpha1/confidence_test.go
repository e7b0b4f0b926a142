package v1alpha1

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"
)

func TestValidateSLAConfidence(t *testing.T) {
	tests := map[string]struct {
		confidence *float64
		ok         bool
	}{
		"unset":        {nil, true},
		"median":       {ptr.To(0.5), true},
		"high":         {ptr.To(0.95), true},
		"low":          {ptr.To(0.01), true},
		"zero":         {ptr.To(0.0), false},
		"one":          {ptr.To(1.0), false},
		"negative":     {ptr.To(-0.5), false},
		"above one":    {ptr.To(1.5), false},
		"not a number": {ptr.To(math.NaN()), false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := &DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-32B", SLA: &SLA{Confidence: tc.confidence}}
			var onField []string
			for _, e := range ValidateSpec(s) {
				if e.Field == "spec.sla.confidence" {
					onField = append(onField, e.Detail)
				}
			}
			if tc.ok {
				assert.Empty(t, onField)
				want := DefaultConfidence
				if tc.confidence != nil {
					want = *tc.confidence
				}
				assert.Equal(t, want, s.Confidence())
				return
			}
			require.Len(t, onField, 1)
			assert.Contains(t, onField[0], "strictly between 0 and 1")
		})
	}
}
