package profiler

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dgdr-dev/dgdr/pkg/profile"
)

func TestThinKeepsEndsAndSelection(t *testing.T) {
	front := make([]profile.Config, 200)
	for i := range front {
		front[i].TokensPerSecondPerUser = float64(i)
	}
	for _, sel := range []int{-1, 0, 1, 57, 100, 198, 199} {
		out, idx := thin(front, sel, 64)
		assert.Len(t, out, 64)
		assert.Equal(t, 0.0, out[0].TokensPerSecondPerUser, "the first point stays")
		for i := 1; i < len(out); i++ {
			assert.Less(t, out[i-1].TokensPerSecondPerUser, out[i].TokensPerSecondPerUser, "order kept, no repeats")
		}
		if sel < 0 {
			assert.Equal(t, -1, idx)
			continue
		}
		assert.Equal(t, float64(sel), out[idx].TokensPerSecondPerUser, "the selection stays (selected %d)", sel)
	}
}
