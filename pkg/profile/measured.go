package profile

import "fmt"

// Rank checks costed candidates against req's SLA, computes the Pareto front and selects, exactly as
// Search does with its predictions. The thorough search ranks measured configurations with it, so a
// measured selection follows the same rules as a predicted one. A candidate counts when Predicted is
// true (its figures are costed: predicted or measured); its Reasons, Misses and MeetsSLA are
// recomputed (those of the others are kept). Only req's SLA and budget (for the explanation) are read.
func Rank(req SearchRequest, cands []Candidate) SearchResult {
	res := SearchResult{Selected: -1}
	for _, c := range cands {
		if c.Predicted {
			c.Reasons, c.Misses, c.Detail = nil, nil, ""
		}
		res.Candidates = append(res.Candidates, c)
	}
	finish(&req, &res)
	return res
}

// Predictor is the performance model Search uses for one backend of req (the GPU adjusted to the
// request's node size, the request's precisions and calibration), so that a caller predicts configurations and loads
// the search did not enumerate exactly as the search would have.
func (req SearchRequest) Predictor(backend string) (*Predictor, error) {
	req.Backends = []string{backend}
	n, err := normSearch(req)
	if err != nil {
		return nil, err
	}
	p, err := NewPredictor(Target{Model: n.Model, GPU: n.GPU, Backend: n.Backends[0], Workload: n.Workload,
		WeightDtype: n.WeightDtype, KVDtype: n.KVDtype})
	if err == nil && req.Calibration != nil {
		return p.WithCalibration(*req.Calibration)
	}
	return p, err
}

// Cost predicts configuration c — its workers and replicas as given, on c.Backend — for req's
// workload exactly as Search predicts its candidates (a distribution included), and checks it against
// req's SLA as Rank does. It is how a configuration already deployed is compared with a new search.
func Cost(req SearchRequest, c Config) (Candidate, error) {
	req.Backends = []string{c.Backend}
	n, err := normSearch(req)
	if err != nil {
		return Candidate{}, err
	}
	p, err := newMixPredictor(Target{Model: n.Model, GPU: n.GPU, Backend: n.Backends[0], Workload: n.Workload,
		WeightDtype: n.WeightDtype, KVDtype: n.KVDtype}, n.Calibration)
	if err != nil {
		return Candidate{}, err
	}
	c.Backend = n.Backends[0]
	c.Replicas = max(c.Replicas, 1)
	c.GPUs = c.Replicas * c.GPUsPerReplica()
	pr, err := p.Predict(c, 0)
	if err != nil {
		return Candidate{}, fmt.Errorf("predicting %s: %w", Describe(c), err)
	}
	c.setPrediction(pr)
	return Rank(n, []Candidate{{Config: c, Predicted: true}}).Candidates[0], nil
}
