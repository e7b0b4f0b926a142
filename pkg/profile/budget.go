package profile

import (
	"fmt"
	"math"
	"time"
)

// BudgetLevel is one load level of a candidate's benchmark: a closed loop of Concurrency users
// sending Requests requests (warm-up included), each lasting about E2E.
type BudgetLevel struct {
	Concurrency int           `json:"concurrency"`
	Requests    int           `json:"requests"`
	E2E         time.Duration `json:"e2e"`
}

// Duration is the level's expected length: ⌈Requests/Concurrency⌉ rounds of one request each.
func (l BudgetLevel) Duration() time.Duration {
	if l.Concurrency < 1 || l.Requests < 1 {
		return 0
	}
	rounds := (l.Requests + l.Concurrency - 1) / l.Concurrency
	return time.Duration(rounds) * l.E2E
}

// BudgetCandidate is one deployment the thorough search plans to measure.
type BudgetCandidate struct {
	// GPUs the deployment holds.
	GPUs int `json:"gpus"`
	// Startup is from creating the deployment to its being ready (see StartupEstimate).
	Startup time.Duration `json:"startup"`
	Levels  []BudgetLevel `json:"levels"`
}

// Duration is how long the candidate holds its GPUs: startup, every level, and teardown.
func (c BudgetCandidate) Duration(teardown time.Duration) time.Duration {
	d := c.Startup + teardown
	for _, l := range c.Levels {
		d += l.Duration()
	}
	return d
}

// BudgetParams bound the schedule.
type BudgetParams struct {
	// TotalGPUs is the most GPUs the candidates may hold at once.
	TotalGPUs int `json:"totalGPUs"`
	// MaxParallel is the most candidates deployed at once (0 or 1: one at a time).
	MaxParallel int `json:"maxParallel"`
	// Teardown is from deleting a deployment until its GPUs are free again.
	Teardown time.Duration `json:"teardown"`
	// Available is the time until the deadline; 0 means no deadline.
	Available time.Duration `json:"available"`
}

// BudgetEstimate is the expected cost of the planned candidates.
type BudgetEstimate struct {
	// Candidates is how many of the given candidates are planned: the longest prefix that fits the
	// GPUs and ends before the deadline.
	Candidates int     `json:"candidates"`
	GPUHours   float64 `json:"gpuHours"`
	// WallTime is from the first deployment to the last candidate's teardown.
	WallTime time.Duration `json:"wallTime"`
	// Start and Finish are each planned candidate's expected times, from the start of the sweep.
	Start  []time.Duration `json:"start"`
	Finish []time.Duration `json:"finish"`
	// Cut says why the plan stops before the last candidate ("" when every candidate fits).
	Cut string `json:"cut,omitempty"`
}

// EstimateBudget schedules the candidates in order and sums their GPU time.
func EstimateBudget(p BudgetParams, cands []BudgetCandidate) BudgetEstimate {
	maxPar := max(p.MaxParallel, 1)
	type slot struct {
		gpus int
		end  time.Duration
	}
	var running []slot
	var est BudgetEstimate
	var gpuSeconds float64
	prevStart := time.Duration(0)
	for i, c := range cands {
		if c.GPUs > p.TotalGPUs {
			est.Cut = fmt.Sprintf("candidate %d needs %d GPUs, the budget is %d", i, c.GPUs, p.TotalGPUs)
			break
		}
		// The earliest time, not before the previous start, when the candidate fits beside the
		// ones still running.
		start := prevStart
		for {
			used, n := 0, 0
			next := time.Duration(math.MaxInt64)
			for _, r := range running {
				if r.end > start {
					used += r.gpus
					n++
					next = min(next, r.end)
				}
			}
			if used+c.GPUs <= p.TotalGPUs && n < maxPar {
				break
			}
			start = next
		}
		d := c.Duration(p.Teardown)
		end := start + d
		if p.Available > 0 && end > p.Available {
			est.Cut = fmt.Sprintf("candidate %d would end %s after the start, past the deadline %s after it",
				i, end.Round(time.Second), p.Available.Round(time.Second))
			break
		}
		running = append(running, slot{gpus: c.GPUs, end: end})
		prevStart = start
		est.Candidates++
		est.Start = append(est.Start, start)
		est.Finish = append(est.Finish, end)
		est.WallTime = max(est.WallTime, end)
		gpuSeconds += float64(c.GPUs) * d.Seconds()
	}
	est.GPUHours = gpuSeconds / 3600
	return est
}

// Startup figures: rough, for planning only. A candidate is scheduled, pulls its image (cached on
// the node after the first), loads the weights into GPU memory and warms the engine up (CUDA graphs,
// KV-cache allocation); without a model cache it first downloads the weights.
const (
	startupBase      = 3 * time.Minute
	loadGiBPerSecond = 1.5  // weights from local disk or a PVC into GPU memory
	downloadGiBPerS  = 0.25 // weights from Hugging Face (about 2 Gbit/s)
)

// StartupEstimate is how long a deployment of a model with weightsGiB of weights takes to become
// ready; cached says the weights come from a model cache rather than a download.
func StartupEstimate(weightsGiB float64, cached bool) time.Duration {
	s := weightsGiB / loadGiBPerSecond
	if !cached {
		s += weightsGiB / downloadGiBPerS
	}
	return startupBase + time.Duration(s*float64(time.Second))
}
