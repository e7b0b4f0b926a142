package expand

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dgdr-dev/dgdr/pkg/profile"
)

func TestParetoPointRoundTrip(t *testing.T) {
	c := profile.Config{
		Backend: "sglang", Mode: profile.ModeDisagg, GPUs: 16, Replicas: 2,
		Workers: []profile.Worker{
			{Role: profile.RolePrefill, Count: 1, TP: 2, PP: 1, EP: 1, DP: 1, Batch: 1},
			{Role: profile.RoleDecode, Count: 3, TP: 2, PP: 1, EP: 1, DP: 1, Batch: 64},
		},
		TTFTMs: 80, ITLMs: 12, TokensPerSecondPerGPU: 1000, TokensPerSecondPerUser: 83, MeetsSLA: true,
	}
	p := ParetoPoint(c)
	assert.Equal(t, int32(8), p.Parallelization, "one replica is 1×2 + 3×2 GPUs")
	assert.InDelta(t, 16000, p.Throughput, 1e-9, "throughput is tokens/s/GPU × GPUs")
	assert.Equal(t, c, ConfigFromPoint(p))
}
