package expand

import (
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// ParetoPoint is a configuration as stored in status.profilingResults: the design's fields (backend,
// parallelization, throughput, ttft, itl) plus mode, GPUs, replicas and workers.
func ParetoPoint(c profile.Config) v1alpha1.ParetoPoint {
	p := v1alpha1.ParetoPoint{
		Backend:                c.Backend,
		Mode:                   string(c.Mode),
		Parallelization:        int32(c.GPUsPerReplica()),
		Throughput:             c.TokensPerSecondPerGPU * float64(c.GPUs),
		TTFT:                   c.TTFTMs,
		ITL:                    c.ITLMs,
		GPUs:                   int32(c.GPUs),
		Replicas:               int32(c.Replicas),
		TokensPerSecondPerGPU:  c.TokensPerSecondPerGPU,
		TokensPerSecondPerUser: c.TokensPerSecondPerUser,
		MeetsSLA:               c.MeetsSLA,
	}
	for _, w := range c.Workers {
		p.Workers = append(p.Workers, v1alpha1.Worker{
			Role: string(w.Role), Count: int32(w.Count), TP: int32(w.TP), PP: int32(w.PP), EP: int32(w.EP), DP: int32(max(w.DP, 1)), Batch: int32(w.Batch),
		})
	}
	return p
}

// ConfigFromPoint is the inverse of ParetoPoint: the configuration to generate a DGD from when a user
// picks a stored Pareto point.
func ConfigFromPoint(p v1alpha1.ParetoPoint) profile.Config {
	c := profile.Config{
		Backend:                p.Backend,
		Mode:                   profile.Mode(p.Mode),
		GPUs:                   int(p.GPUs),
		Replicas:               int(p.Replicas),
		TTFTMs:                 p.TTFT,
		ITLMs:                  p.ITL,
		TokensPerSecondPerGPU:  p.TokensPerSecondPerGPU,
		TokensPerSecondPerUser: p.TokensPerSecondPerUser,
		MeetsSLA:               p.MeetsSLA,
	}
	for _, w := range p.Workers {
		c.Workers = append(c.Workers, profile.Worker{
			Role: profile.Role(w.Role), Count: int(w.Count), TP: int(w.TP), PP: int(w.PP), EP: int(w.EP), DP: int(w.DP), Batch: int(w.Batch),
		})
	}
	return c
}
