package thorough

import (
	"fmt"
	"strings"

	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// Ranking is the outcome of a sweep: the measured points ranked as rapid ranks predictions.
type Ranking struct {
	// Result ranks the measured points (configurations of the whole budget); its Explanation says why the
	// selection was made. Empty when nothing was measured.
	Result profile.SearchResult
	// Selected is the selected (or closest) configuration.
	Selected profile.Config
	// Predicted is the prediction for each measured point, by profile.Describe.
	Predicted map[string]Figures
	// Points is the number of measured points; Summary counts the candidates' outcomes and says why
	// those that failed did.
	Points  int
	Summary string
}

// Rank ranks the measured loads of the candidates that did not fail.
func (p Planner) Rank(rec *Record) Ranking {
	var points []profile.Candidate
	r := Ranking{Predicted: map[string]Figures{}}
	var failed []string
	n := map[string]int{}
	for _, c := range rec.Candidates {
		n[c.State]++
		if c.State == StateFailed {
			failed = append(failed, c.Name+": "+c.Reason)
		}
		if c.State != StateMeasured {
			continue
		}
		for _, m := range c.Measurements {
			if m.Requests == 0 {
				continue
			}
			cfg := p.pointConfig(c, m)
			points = append(points, profile.Candidate{Config: cfg, Predicted: true})
			r.Predicted[profile.Describe(cfg)] = m.Predicted
		}
	}
	r.Points = len(points)
	r.Summary = fmt.Sprintf("%d candidates (%d measured, %d failed, %d pruned, %d skipped)",
		len(rec.Candidates), n[StateMeasured], n[StateFailed], n[StatePruned], n[StateSkipped])
	if len(failed) > 0 {
		r.Summary += "; failed: " + strings.Join(failed, "; ")
	}
	if len(points) == 0 {
		return r
	}
	r.Result = profile.Rank(p.Request, points)
	r.Selected, _ = r.Result.SelectedConfig()
	r.Result.Explanation = p.explain(r.Result, r.Selected, len(points))
	return r
}

// pointConfig is a measured load as a configuration of the budget: c's layout with the load's batch,
// as many replicas as the budget holds, and the measured figures (which hold per replica).
func (p Planner) pointConfig(c *Candidate, m Measurement) profile.Config {
	cfg := withServingBatch(c.Config, m.Batch)
	per := cfg.GPUsPerReplica()
	cfg.Replicas = max(p.Request.TotalGPUs/max(per, 1), 1)
	cfg.GPUs = cfg.Replicas * per
	cfg.TTFTMs, cfg.ITLMs = m.Measured.TTFTMs, m.Measured.ITLMs
	cfg.TokensPerSecondPerGPU, cfg.TokensPerSecondPerUser = m.Measured.TokensPerSecondPerGPU, m.Measured.TokensPerSecondPerUser
	return cfg
}

// explain says why the measured selection was made.
func (p Planner) explain(res profile.SearchResult, sel profile.Config, n int) string {
	sla := p.Request.SLA
	target := fmt.Sprintf("TTFT ≤ %s ms and ITL ≤ %s ms", trimFloat(sla.TTFTMs), trimFloat(sla.ITLMs))
	if res.MeetsSLA {
		meeting := 0
		for _, c := range res.Candidates {
			if c.Config.MeetsSLA {
				meeting++
			}
		}
		return fmt.Sprintf("%s has the highest measured tokens/s/GPU (%.1f) of the %d measured points meeting %s (%d measured)",
			profile.Describe(sel), sel.TokensPerSecondPerGPU, meeting, target, n)
	}
	var miss []string
	for _, m := range res.Misses {
		miss = append(miss, m.String())
	}
	return fmt.Sprintf("no measured configuration meets %s; the closest, %s, misses %s (%d measured)",
		target, profile.Describe(sel), strings.Join(miss, " and "), n)
}
