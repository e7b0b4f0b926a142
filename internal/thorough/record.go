package thorough

import (
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// Candidate states.
const (
	StatePlanned  = "planned"  // not deployed yet
	StateRunning  = "running"  // deployed (or being deployed) and measured now
	StateMeasured = "measured" // measured at one load or more
	StateFailed   = "failed"   // crashed, ran out of memory, never became ready or errored under load
	StatePruned   = "pruned"   // not deployed: the corrected prediction cannot beat what was measured
	StateSkipped  = "skipped"  // not deployed: past the budget (deadline)
)

// Record is the thorough search's whole state, stored as measurements.json: the plan, every candidate's
// outcome and measurements, the corrections and the budget.
type Record struct {
	// UID is the DGDR's: a record of an earlier DGDR of the same name is not resumed.
	UID types.UID `json:"uid"`
	// Generation is the DGDR generation (run) measured: another run's measurements are not resumed.
	Generation int64            `json:"generation,omitempty"`
	Model      string           `json:"model"`
	GPU        string           `json:"gpu"`
	Workload   profile.Workload `json:"workload"`
	SLA        profile.SLA      `json:"sla"`
	Started    time.Time        `json:"started"`
	Budget     Budget           `json:"budget"`
	// Corrections are measured ÷ predicted per backend/mode ("" for all), as last fitted.
	Corrections map[string]Correction `json:"corrections,omitempty"`
	Candidates  []*Candidate          `json:"candidates"`
}

// Budget is the recorded budget and its estimate.
type Budget struct {
	TotalGPUs         int            `json:"totalGPUs"`
	GPUsPerNode       int            `json:"gpusPerNode,omitempty"`
	Deadline          *time.Time     `json:"deadline,omitempty"`
	EstimatedGPUHours float64        `json:"estimatedGpuHours"`
	EstimatedWallTime time.Duration  `json:"estimatedWallTime"`
	Cut               string         `json:"cut,omitempty"`
	Estimate          []BudgetDetail `json:"estimate,omitempty"`
}

// BudgetDetail is one planned candidate in the estimate.
type BudgetDetail struct {
	Name    string        `json:"name"`
	GPUs    int           `json:"gpus"`
	Startup time.Duration `json:"startup"`
	Start   time.Duration `json:"start"`
	Finish  time.Duration `json:"finish"`
}

// Figures are the four numbers a point is judged by.
type Figures struct {
	TTFTMs                 float64 `json:"ttftMs"`
	ITLMs                  float64 `json:"itlMs"`
	TokensPerSecondPerGPU  float64 `json:"tokensPerSecondPerGPU"`
	TokensPerSecondPerUser float64 `json:"tokensPerSecondPerUser"`
}

func figuresOf(c profile.Config) Figures {
	return Figures{TTFTMs: c.TTFTMs, ITLMs: c.ITLMs, TokensPerSecondPerGPU: c.TokensPerSecondPerGPU, TokensPerSecondPerUser: c.TokensPerSecondPerUser}
}

// LevelPlan is one load a candidate is measured at: the rapid configuration with worker batch Batch,
// whose batch slots make Concurrency closed-loop users on one replica.
type LevelPlan struct {
	Concurrency int     `json:"concurrency"`
	Batch       int     `json:"batch"`
	Predicted   Figures `json:"predicted"`
	// Refined marks a load added during the sweep to find where the candidate crosses the SLA.
	Refined bool `json:"refined,omitempty"`
}

// Measurement is what one load level measured, with the prediction for the same configuration and load.
type Measurement struct {
	Concurrency int     `json:"concurrency"`
	Batch       int     `json:"batch"`
	Measured    Figures `json:"measured"`
	Predicted   Figures `json:"predicted"`
	// TTFTP90Ms and ITLP90Ms are the 90th percentiles, for users whose SLA is a tail.
	TTFTP90Ms float64 `json:"ttftP90Ms"`
	ITLP90Ms  float64 `json:"itlP90Ms"`
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	// Bench is the benchmark's whole record of the level.
	Bench any `json:"bench,omitempty"`
}

// Candidate is one deployment of the plan and what became of it.
type Candidate struct {
	// Name is c<k>, k its position in the plan; DGD the candidate DGD's name.
	Name string `json:"name"`
	DGD  string `json:"dgd,omitempty"`
	// Config is what is deployed: one replica, the agg or decode worker's batch the largest level's.
	Config profile.Config `json:"config"`
	// Why it was chosen.
	Why    string      `json:"why"`
	Levels []LevelPlan `json:"levels"`

	State string `json:"state"`
	// Reason says why it failed, was pruned or skipped, or why its sweep stopped early.
	Reason       string        `json:"reason,omitempty"`
	Measurements []Measurement `json:"measurements,omitempty"`
	Started      *time.Time    `json:"started,omitempty"`
	Ready        *time.Time    `json:"ready,omitempty"`
	Finished     *time.Time    `json:"finished,omitempty"`
	// GPUSeconds is GPUs × the time the deployment existed.
	GPUSeconds float64 `json:"gpuSeconds,omitempty"`
}

// key is the backend and mode, the unit of the prediction corrections.
func (c *Candidate) key() string { return c.Config.Backend + "/" + string(c.Config.Mode) }

// Resume takes over what an earlier run of the same DGDR recorded in old: finished candidates of the
// same configuration keep their outcome, and the one being measured is measured again (it keeps its
// start and GPU time). It returns the names of those measured again.
func Resume(rec, old *Record) []string {
	if old == nil || old.UID != rec.UID || max(old.Generation, 1) != max(rec.Generation, 1) {
		return nil
	}
	rec.Started = old.Started
	byName := map[string]*Candidate{}
	for _, c := range old.Candidates {
		if c != nil {
			byName[c.Name] = c
		}
	}
	var again []string
	for i, c := range rec.Candidates {
		o := byName[c.Name]
		if o == nil || profile.Describe(o.Config) != profile.Describe(c.Config) {
			continue
		}
		switch o.State {
		case StateMeasured, StateFailed, StatePruned:
			rec.Candidates[i] = o
		case StateRunning:
			c.Started, c.GPUSeconds = o.Started, o.GPUSeconds
			again = append(again, c.Name)
		}
	}
	rec.Corrections = FitCorrections(rec.Candidates)
	return again
}

// Slots is the concurrency that fills the batch slots of one replica of c (agg or decode workers).
func Slots(c profile.Config) int {
	n := 0
	for _, w := range c.Workers {
		if w.Role != profile.RolePrefill {
			n += w.Count * w.Batch
		}
	}
	return n
}

// withServingBatch returns c with the agg or decode workers' batch set to b.
func withServingBatch(c profile.Config, b int) profile.Config {
	c.Workers = slices.Clone(c.Workers)
	for i := range c.Workers {
		if c.Workers[i].Role != profile.RolePrefill {
			c.Workers[i].Batch = b
		}
	}
	return c
}

// servingBatch is the agg or decode workers' batch.
func servingBatch(c profile.Config) int {
	for _, w := range c.Workers {
		if w.Role != profile.RolePrefill {
			return w.Batch
		}
	}
	return 0
}

// LayoutKey names a deployment: backend, mode and workers without the serving batch (the prefill batch,
// fixed per layout, is part of it).
func LayoutKey(c profile.Config) string {
	return profile.Describe(withServingBatch(oneReplica(c), 0))
}

// oneReplica is c scaled to one replica, without figures.
func oneReplica(c profile.Config) profile.Config {
	o := profile.Config{Backend: c.Backend, Mode: c.Mode, Replicas: 1, Workers: slices.Clone(c.Workers),
		WeightDtype: c.WeightDtype, KVDtype: c.KVDtype}
	o.GPUs = o.GPUsPerReplica()
	return o
}
