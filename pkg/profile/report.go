package profile

// Report is the document of one search: the `kubectl dgdr plan -o json|yaml` output, and what the
// profiler stores (with Candidates) in the <name>-profiling ConfigMap. Other tools read it, so fields
// are only added.
type Report struct {
	Model       string   `json:"model"`
	GPU         string   `json:"gpu"`
	TotalGPUs   int      `json:"totalGPUs"`
	GPUsPerNode int      `json:"gpusPerNode"`
	Workload    Workload `json:"workload"`
	SLA         SLA      `json:"sla"`
	// Selected is the recommendation: the highest tokens/s/GPU meeting the SLA; null when nothing does.
	Selected *Config `json:"selected"`
	// SelectedIndex is Selected's position in Pareto (−1 when there is no selection).
	SelectedIndex int `json:"selectedIndex"`
	// Closest and Misses are set when nothing meets the SLA: the nearest configuration and the
	// targets it exceeds.
	Closest *Config      `json:"closest,omitempty"`
	Misses  []ReportMiss `json:"misses,omitempty"`
	// Explanation says why Selected was chosen, or what Closest misses and why the rest failed.
	Explanation string `json:"explanation"`
	// Pareto is the front of non-dominated configurations by tokens/s/user ascending.
	Pareto []Config `json:"pareto"`
	// Rejected counts the configurations per reason (memory, gpuBudget, unsupported, ttft, itl)
	// with up to three examples each, the closest to acceptable first.
	Rejected map[RejectReason]ReportRejections `json:"rejected"`
	// Predicted is the number of configurations the performance model costed.
	Predicted int `json:"predicted"`
	// Method is where the kernel times came from: kernel-table (measured on this GPU) or roofline.
	Method Method `json:"method,omitempty"`
	// Calibration names the calibration the predictions used when not the shipped one (a
	// namespace's refit, see kubectl dgdr calibrate).
	Calibration string `json:"calibration,omitempty"`
	// SLAProbability is the probability that Selected (or Closest) meets each SLA target at the
	// predicted intervals; SLA.Confidence is the confidence the search required.
	SLAProbability *SLAProbability `json:"slaProbability,omitempty"`
	// Candidates are every configuration the model costed, with why it is not recommended (empty
	// reasons: it meets the SLA). Only the profiler's stored report carries them (for the web UI's
	// dominated and infeasible points); plan's output leaves them out.
	Candidates []Candidate `json:"candidates,omitempty"`
	// CandidatesOmitted counts candidates left out of Candidates to keep the stored report small.
	CandidatesOmitted int `json:"candidatesOmitted,omitempty"`
}

// ThinCandidates keeps every other candidate, so a stored report fits its size bound; the front,
// the selection and the rejection examples are kept whole elsewhere in the report.
func (r *Report) ThinCandidates() {
	kept := r.Candidates[:0]
	for i, c := range r.Candidates {
		if i%2 == 0 {
			kept = append(kept, c)
		}
	}
	r.CandidatesOmitted += len(r.Candidates) - len(kept)
	r.Candidates = kept
}

// ReportMiss is one SLA target the closest configuration exceeds.
type ReportMiss struct {
	Target string  `json:"target"`
	Value  float64 `json:"value"`
	Limit  float64 `json:"limit"`
	Over   float64 `json:"over"`
}

// ReportRejections is the count of one rejection reason and examples.
type ReportRejections struct {
	Count    int             `json:"count"`
	Examples []ReportExample `json:"examples,omitempty"`
}

// ReportExample is one rejected configuration and why.
type ReportExample struct {
	Config Config `json:"config"`
	Detail string `json:"detail"`
}

// NewReport turns a search result into the report: the plan document, and with withCandidates every
// costed candidate too (what the profiler stores).
func NewReport(req *SearchRequest, res *SearchResult, withCandidates bool) Report {
	gpn := req.GPUsPerNode
	if gpn == 0 {
		gpn = req.GPU.GPUsPerNode
	}
	out := Report{
		Model: req.Model.ID, GPU: req.GPU.Name, TotalGPUs: req.TotalGPUs, GPUsPerNode: gpn,
		Workload: req.Workload, SLA: req.SLA,
		SelectedIndex:  -1,
		Explanation:    res.Explanation,
		Pareto:         res.Pareto(),
		Rejected:       map[RejectReason]ReportRejections{},
		Predicted:      res.Predicted,
		Method:         res.Method,
		Calibration:    res.Calibration,
		SLAProbability: res.SLAProbability,
	}
	if res.Confidence != 0 {
		out.SLA.Confidence = res.Confidence
	}
	if c, ok := res.SelectedConfig(); ok {
		if res.MeetsSLA {
			out.Selected = &c
			out.SelectedIndex = res.SelectedOnFront()
		} else {
			out.Closest = &c
			for _, m := range res.Misses {
				out.Misses = append(out.Misses, ReportMiss{Target: m.Name, Value: m.Value, Limit: m.Limit, Over: m.Over()})
			}
		}
	}
	for r, rj := range res.Rejected {
		pr := ReportRejections{Count: rj.Count}
		for _, e := range rj.Examples {
			pr.Examples = append(pr.Examples, ReportExample{Config: e.Config, Detail: e.Detail})
		}
		out.Rejected[r] = pr
	}
	if withCandidates {
		for _, c := range res.Candidates {
			if c.Predicted {
				out.Candidates = append(out.Candidates, c)
			}
		}
	}
	return out
}
