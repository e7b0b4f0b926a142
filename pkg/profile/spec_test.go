package profile_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

func TestSpecWorkload(t *testing.T) {
	// Single lengths stay single, defaulted.
	w, err := profile.SpecWorkload(&v1alpha1.DynamoGraphDeploymentRequestSpec{})
	require.NoError(t, err)
	assert.Equal(t, profile.Workload{ISL: 512, OSL: 128}, w)

	// A distribution: ISL is its mean, the SLA quantile the spec's percentile.
	s := &v1alpha1.DynamoGraphDeploymentRequestSpec{Workload: &v1alpha1.Workload{
		ISLDistribution: &v1alpha1.LengthDistribution{Histogram: &v1alpha1.LengthHistogram{
			UpperBounds: []int32{1000, 3000}, Counts: []float64{3, 1}}},
		OSL: ptr.To[int32](100), SLAPercentile: ptr.To(99.0)}}
	w, err = profile.SpecWorkload(s)
	require.NoError(t, err)
	assert.Equal(t, 0.75*500+0.25*2000, float64(w.ISL))
	assert.Equal(t, 100, w.OSL)
	assert.Equal(t, 0.99, w.SLAQuantile)
	assert.Empty(t, w.OSLDist)
	assert.InDelta(t, 3000, w.ISLDist.Quantile(1), 1e-9)
}
