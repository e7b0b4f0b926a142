package profile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/dgdr-dev/dgdr/internal/numfmt"
	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/pareto"
)

// SearchRequest is what a rapid search holds fixed.
type SearchRequest struct {
	Model Model  `json:"model"`
	GPU   hw.GPU `json:"gpu"`
	// Backends to search; empty means all of Backends.
	Backends []string `json:"backends,omitempty"`
	// Modes to search; empty means agg and disagg.
	Modes    []Mode   `json:"modes,omitempty"`
	Workload Workload `json:"workload"`
	SLA      SLA      `json:"sla"`
	// TotalGPUs bounds the GPUs of the whole deployment (all replicas).
	TotalGPUs int `json:"totalGPUs"`
	// GPUsPerNode is the node size; 0 takes the GPU catalog's.
	GPUsPerNode int `json:"gpusPerNode,omitempty"`
	// MultiNode also tries workers spanning whole nodes even when single-node workers fit.
	MultiNode bool `json:"multiNode,omitempty"`
	// WeightDtype and KVDtype override the precisions (see Target).
	WeightDtype string `json:"weightDtype,omitempty"`
	KVDtype     string `json:"kvDtype,omitempty"`
	// Calibration replaces the embedded calibration (a cluster's refit, see kubectl dgdr calibrate);
	// nil uses the embedded one.
	Calibration *Calib `json:"-"`
}

// RejectReason says why a candidate was not recommended.
type RejectReason string

const (
	// RejectMemory: the weights (or one sequence's KV cache) do not fit in the worker's GPUs.
	RejectMemory RejectReason = "memory"
	// RejectGPUBudget: one replica needs more GPUs than the budget.
	RejectGPUBudget RejectReason = "gpuBudget"
	// RejectUnsupported: the backend or the model's shape rules the layout out.
	RejectUnsupported RejectReason = "unsupported"
	// RejectTTFT and RejectITL: predicted, but over the SLA's target.
	RejectTTFT RejectReason = "ttft"
	RejectITL  RejectReason = "itl"
)

// RejectReasons lists the reasons in the order reports show them.
var RejectReasons = []RejectReason{RejectMemory, RejectGPUBudget, RejectUnsupported, RejectTTFT, RejectITL}

// Candidate is one configuration the search considered.
type Candidate struct {
	Config Config `json:"config"`
	// Predicted is true when the performance model costed the configuration (it fits and is within
	// the budget); Config then carries the predicted TTFT, ITL and throughputs.
	Predicted bool `json:"predicted"`
	// Reasons are why it is not recommendable: memory/gpuBudget/unsupported (not predicted), or
	// ttft/itl (predicted, misses the SLA). Empty for a candidate meeting the SLA.
	Reasons []RejectReason `json:"reasons,omitempty"`
	// Detail explains the reasons in words.
	Detail string `json:"detail,omitempty"`
	// Misses are the SLA targets a predicted candidate exceeds.
	Misses []pareto.Miss `json:"misses,omitempty"`
	// severity orders examples of one reason, closest to acceptable first.
	severity float64
}

// Rejections summarises the candidates rejected for one reason.
type Rejections struct {
	Count int `json:"count"`
	// Examples are up to three of them, the closest to acceptable first.
	Examples []Candidate `json:"examples,omitempty"`
}

// SearchResult is the outcome of Search.
type SearchResult struct {
	// Candidates are every configuration considered, in enumeration order.
	Candidates []Candidate `json:"candidates"`
	// Front indexes Candidates: the Pareto front, by tokens/s/user ascending.
	Front []int `json:"front"`
	// Selected indexes Candidates: the recommendation, or the closest miss when MeetsSLA is false;
	// −1 when no candidate could be predicted at all.
	Selected int  `json:"selected"`
	MeetsSLA bool `json:"meetsSLA"`
	// Misses are the SLA targets the selected candidate exceeds (empty when MeetsSLA).
	Misses []pareto.Miss `json:"misses,omitempty"`
	// Explanation says in one sentence why the selection was made, or what was missed and why.
	Explanation string `json:"explanation"`
	// Rejected counts the candidates per reason (a candidate missing both TTFT and ITL counts twice).
	Rejected map[RejectReason]Rejections `json:"rejected"`
	// Predicted is the number of candidates the performance model costed; Probes the extra
	// predictions made to prune the disagg space.
	Predicted int `json:"predicted"`
	Probes    int `json:"probes"`
	// Method is where the kernel times came from (measured tables of the GPU, or roofline).
	Method Method `json:"method,omitempty"`
	// Calibration names the calibration the predictions used when it is not the embedded one (its
	// Method).
	Calibration string `json:"calibration,omitempty"`
	// Confidence is the SLA's confidence the search used; SLAProbability the selected candidate's
	// probability of meeting each target (nil without a selection).
	Confidence     float64         `json:"confidence"`
	SLAProbability *SLAProbability `json:"slaProbability,omitempty"`
}

// Pareto returns the configurations of the front, by tokens/s/user ascending.
func (r *SearchResult) Pareto() []Config {
	out := make([]Config, len(r.Front))
	for i, c := range r.Front {
		out[i] = r.Candidates[c].Config
	}
	return out
}

// SelectedConfig returns the selected configuration (false when there is none).
func (r *SearchResult) SelectedConfig() (Config, bool) {
	if r.Selected < 0 {
		return Config{}, false
	}
	return r.Candidates[r.Selected].Config, true
}

// SelectedOnFront is the selected candidate's position in Front, or −1.
func (r *SearchResult) SelectedOnFront() int {
	return slices.Index(r.Front, r.Selected)
}

// batchLadder is the batch sizes tried per attention rank, roughly √2 apart.
var batchLadder = []int{1, 2, 3, 4, 6, 8, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 640, 768, 1024}

// maxNodesPerWorker bounds multinode workers.
const maxNodesPerWorker = 16

// maxLadderBatch bounds the batch of one worker: engines' max-num-seqs rarely go beyond.
const maxLadderBatch = 1024

// Search enumerates, predicts and selects. It fails only on an invalid request or when no backend
// can cost the target at all; "nothing fits" and "nothing meets the SLA" are results (see
// SearchResult.Explanation). Cancelling ctx stops it between candidates with ctx's error.
func Search(ctx context.Context, req SearchRequest) (SearchResult, error) {
	req, err := normSearch(req)
	if err != nil {
		return SearchResult{}, err
	}
	parts := make([]backendSearch, len(req.Backends))
	var wg sync.WaitGroup
	for i, b := range req.Backends {
		wg.Go(func() { parts[i] = searchBackend(ctx, &req, b) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return SearchResult{}, fmt.Errorf("search stopped: %w", err)
	}

	res := SearchResult{Selected: -1, Rejected: map[RejectReason]Rejections{}}
	var errs []error
	for _, p := range parts {
		if p.err != nil {
			errs = append(errs, p.err)
		}
		res.Candidates = append(res.Candidates, p.cands...)
		res.Probes += p.probes
		res.Method = cmp.Or(res.Method, p.method)
	}
	if len(errs) == len(parts) {
		return SearchResult{}, errors.Join(errs...)
	}
	if req.Calibration != nil {
		res.Calibration = req.Calibration.Method
	}
	finish(&req, &res)
	return res, nil
}

// normSearch validates the request and fills its defaults.
func normSearch(req SearchRequest) (SearchRequest, error) {
	if req.TotalGPUs < 1 {
		return req, fmt.Errorf("total gpus must be at least 1, got %d", req.TotalGPUs)
	}
	if req.GPUsPerNode == 0 {
		req.GPUsPerNode = req.GPU.GPUsPerNode
	}
	if req.GPUsPerNode < 1 {
		return req, fmt.Errorf("gpus per node must be at least 1, got %d", req.GPUsPerNode)
	}
	w, err := normWorkload(req.Workload)
	if err != nil {
		return req, err
	}
	req.Workload = w
	if !(req.SLA.TTFTMs > 0) || !(req.SLA.ITLMs > 0) {
		return req, fmt.Errorf("sla ttft and itl must be positive milliseconds, got %v and %v", req.SLA.TTFTMs, req.SLA.ITLMs)
	}
	if req.SLA.Confidence == 0 {
		req.SLA.Confidence = DefaultConfidence
	}
	if !(req.SLA.Confidence > 0 && req.SLA.Confidence < 1) {
		return req, fmt.Errorf("sla confidence must be strictly between 0 and 1, got %v", req.SLA.Confidence)
	}
	// Copies: the caller's slices are not ours to rewrite.
	req.Backends, req.Modes = slices.Clone(req.Backends), slices.Clone(req.Modes)
	if len(req.Backends) == 0 {
		req.Backends = slices.Clone(Backends)
	}
	for i, b := range req.Backends {
		req.Backends[i] = strings.ToLower(strings.TrimSpace(b))
		if !slices.Contains(Backends, req.Backends[i]) {
			return req, fmt.Errorf("unknown backend %q: expected one of %s", b, strings.Join(Backends, ", "))
		}
	}
	req.Backends = slices.Compact(req.Backends)
	if len(req.Modes) == 0 {
		req.Modes = []Mode{ModeAgg, ModeDisagg}
	}
	for _, m := range req.Modes {
		if m != ModeAgg && m != ModeDisagg {
			return req, fmt.Errorf("unknown mode %q: expected agg or disagg", m)
		}
	}
	// The performance model reads the node size from the GPU: make it the one of this cluster. An
	// NVLink domain no larger than a node shrinks with it; a rack-scale domain (NVL72) does not.
	g := req.GPU
	if g.NVLinkDomain <= g.GPUsPerNode {
		g.NVLinkDomain = min(max(g.NVLinkDomain, 1), req.GPUsPerNode)
	}
	g.GPUsPerNode = req.GPUsPerNode
	req.GPU = g
	return req, nil
}

// backendSearch is one backend's share of the search.
type backendSearch struct {
	cands  []Candidate
	probes int
	method Method
	err    error
}

// searcher holds one backend's predictor and request.
type searcher struct {
	ctx     context.Context
	req     *SearchRequest
	backend string
	p       *mixPredictor
	out     backendSearch
	stop    bool // ctx was seen cancelled
}

func searchBackend(ctx context.Context, req *SearchRequest, backend string) backendSearch {
	s := &searcher{ctx: ctx, req: req, backend: backend}
	p, err := newMixPredictor(Target{Model: req.Model, GPU: req.GPU, Backend: backend, Workload: req.Workload,
		WeightDtype: req.WeightDtype, KVDtype: req.KVDtype}, req.Calibration)
	if err != nil {
		// The whole backend is out (a precision the GPU lacks, …): one rejection says so.
		s.reject(Config{Backend: backend}, RejectUnsupported, 0, fmt.Sprintf("%s: %v", backend, err))
		s.out.err = fmt.Errorf("%s: %w", backend, err)
		return s.out
	}
	s.p = p
	s.out.method = p.Method()
	for _, m := range req.Modes {
		if s.stopped() {
			break
		}
		switch m {
		case ModeAgg:
			s.searchAgg()
		case ModeDisagg:
			s.searchDisagg()
		}
	}
	return s.out
}

// stopped says the search was cancelled. It is checked before each candidate (a prediction costs a
// few µs), so a cancelled search ends within one.
func (s *searcher) stopped() bool {
	s.stop = s.stop || s.ctx.Err() != nil
	return s.stop
}

// reject records a candidate that was not predicted.
func (s *searcher) reject(c Config, r RejectReason, severity float64, detail string) {
	s.out.cands = append(s.out.cands, Candidate{Config: c, Reasons: []RejectReason{r}, Detail: detail, severity: severity})
}

// shapes lists the worker layouts of one role: single-node ones always, whole-node ones when asked
// for or when no single-node layout fits. Each comes with the reason it is out, if it is.
func (s *searcher) shapes(role Role) []shapeCheck {
	n := s.req.GPUsPerNode
	var out []shapeCheck
	fits := false
	for g := 1; g <= n; g *= 2 {
		for _, w := range s.layouts(role, g, 1) {
			c := s.check(w)
			fits = fits || c.reason == "" || c.reason == RejectGPUBudget
			out = append(out, c)
		}
	}
	if s.req.MultiNode || !fits {
		// Whole nodes: up to the budget, and at least two nodes so that a budget too small says so.
		for k := 2; k == 2 || (k*n <= s.req.TotalGPUs && k <= maxNodesPerWorker); k++ {
			for _, w := range s.layouts(role, n, k) {
				out = append(out, s.check(w))
			}
		}
	}
	return out
}

// layouts are the workers of role with g GPUs per node on k nodes. Dense models use TP inside a
// node and PP across nodes. MoE models also try attention data parallelism (TP×DP = g, all splits;
// TRT-LLM allows DP only with TP 1) and expert parallelism over all the worker's GPUs.
func (s *searcher) layouts(role Role, g, k int) []Worker {
	m := &s.req.Model
	base := Worker{Role: role, Count: 1, PP: 1, EP: 1, DP: 1}
	if !m.IsMoE() {
		w := base
		w.TP, w.PP = g, k
		return []Worker{w}
	}
	var out []Worker
	eps := func(gpus int) []int {
		if gpus > 1 && m.Experts%gpus == 0 {
			return []int{1, gpus}
		}
		return []int{1}
	}
	if k == 1 {
		for tp := g; tp >= 1; tp /= 2 {
			dp := g / tp
			if dp > 1 && tp > 1 && s.backend == BackendTRTLLM {
				continue
			}
			for _, ep := range eps(g) {
				w := base
				w.TP, w.DP, w.EP = tp, dp, ep
				out = append(out, w)
			}
		}
		return out
	}
	// Across nodes: pipeline stages of a node each, or attention DP over the nodes with the experts
	// spread over every GPU (wide EP).
	w := base
	w.TP, w.PP = g, k
	if m.Experts%g == 0 {
		w.EP = g
	}
	out = append(out, w)
	if m.Experts%(g*k) == 0 {
		w = base
		w.TP, w.DP, w.EP = g, k, g*k
		if s.backend == BackendTRTLLM {
			w.TP, w.DP = 1, g*k
		}
		out = append(out, w)
	}
	return out
}

// shapeCheck is a worker layout and whether it can run.
type shapeCheck struct {
	w        Worker
	maxBatch int
	reason   RejectReason // "" when it fits
	detail   string
	severity float64
}

// check tells whether w fits the budget, the model's shape and memory.
func (s *searcher) check(w Worker) shapeCheck {
	c := shapeCheck{w: w}
	m := &s.req.Model
	if w.GPUs() > s.req.TotalGPUs {
		c.reason, c.severity = RejectGPUBudget, float64(w.GPUs())
		c.detail = fmt.Sprintf("one %s worker needs %d GPUs, the budget is %d", w.Role, w.GPUs(), s.req.TotalGPUs)
		return c
	}
	if m.Heads > 0 && m.Heads%w.TP != 0 {
		c.reason = RejectUnsupported
		c.detail = fmt.Sprintf("tp %d does not divide the model's %d attention heads", w.TP, m.Heads)
		return c
	}
	n, err := s.p.MaxBatch(w)
	if err != nil {
		var fe *FitError
		switch {
		case errors.As(err, &fe):
			c.reason, c.severity = RejectMemory, fe.NeedGiB-fe.HaveGiB
		case errors.Is(err, ErrNoFit):
			c.reason = RejectMemory
		default:
			c.reason = RejectUnsupported
		}
		c.detail = err.Error()
		return c
	}
	c.maxBatch = min(n, maxLadderBatch*w.DP)
	return c
}

// batches is the ladder (per attention rank) up to the worker's largest batch, which is included.
func batches(w Worker, maxBatch int) []int {
	var out []int
	for _, b := range batchLadder {
		if b*w.DP > maxBatch {
			break
		}
		out = append(out, b*w.DP)
	}
	if len(out) == 0 || out[len(out)-1] < maxBatch {
		out = append(out, maxBatch)
	}
	return out
}

// predict costs c with the budget's replicas and records the candidate.
func (s *searcher) predict(c Config) {
	c.Backend = s.backend
	per := c.GPUsPerReplica()
	c.Replicas = s.req.TotalGPUs / per
	c.GPUs = c.Replicas * per
	pr, err := s.p.Predict(c, 0)
	if err != nil {
		r := RejectUnsupported
		if errors.Is(err, ErrNoFit) {
			r = RejectMemory
		}
		s.reject(c, r, 0, err.Error())
		return
	}
	c.setPrediction(pr)
	s.out.cands = append(s.out.cands, Candidate{Config: c, Predicted: true})
}

// setPrediction copies a prediction's figures into c.
func (c *Config) setPrediction(pr Prediction) {
	c.TTFTMs, c.ITLMs = pr.TTFTMs, pr.ITLMs
	c.TokensPerSecondPerGPU, c.TokensPerSecondPerUser = pr.TokensPerSecondPerGPU, pr.TokensPerSecondPerUser
	c.Bands = pr.Bands
	c.WeightDtype, c.KVDtype = pr.WeightDtype, pr.KVDtype
}

func (s *searcher) searchAgg() {
	for _, sc := range s.shapes(RoleAgg) {
		if sc.reason != "" {
			s.reject(Config{Backend: s.backend, Mode: ModeAgg, Replicas: 1, GPUs: sc.w.GPUs(), Workers: []Worker{sc.w}},
				sc.reason, sc.severity, sc.detail)
			continue
		}
		for _, b := range batches(sc.w, sc.maxBatch) {
			if s.stopped() {
				return
			}
			w := sc.w
			w.Batch = b
			s.predict(Config{Mode: ModeAgg, Workers: []Worker{w}})
		}
	}
}

// roleOption is one prefill or decode worker with what its probe measured.
type roleOption struct {
	w Worker
	// rate is requests per second one worker sustains; latency the TTFT (prefill) or ITL (decode)
	// it gives on its own, in ms.
	rate, latency float64
}

// ampleWorkers is the count of the other role in a probe: enough that it is never the bottleneck.
const ampleWorkers = 1024

// probeConcurrency saturates a prefill worker in its probe.
const probeConcurrency = 1 << 16

func (s *searcher) searchDisagg() {
	pre, dec := s.shapes(RolePrefill), s.shapes(RoleDecode)
	var preOK, decOK []shapeCheck
	for _, sc := range pre {
		if sc.reason == "" {
			preOK = append(preOK, sc)
		}
	}
	for _, sc := range dec {
		if sc.reason == "" {
			decOK = append(decOK, sc)
		}
	}
	// Layouts out on their own, then pairs too big for the budget even as 1P1D.
	for _, sc := range slices.Concat(pre, dec) {
		if sc.reason != "" {
			s.reject(Config{Backend: s.backend, Mode: ModeDisagg, Replicas: 1, GPUs: sc.w.GPUs(), Workers: []Worker{sc.w}},
				sc.reason, sc.severity, sc.detail)
		}
	}
	var pairsOK [][2]shapeCheck
	for _, p := range preOK {
		for _, d := range decOK {
			if n := p.w.GPUs() + d.w.GPUs(); n > s.req.TotalGPUs {
				s.reject(Config{Backend: s.backend, Mode: ModeDisagg, Replicas: 1, GPUs: n, Workers: []Worker{p.w, d.w}},
					RejectGPUBudget, float64(n), fmt.Sprintf("one prefill and one decode worker need %d GPUs, the budget is %d", n, s.req.TotalGPUs))
				continue
			}
			pairsOK = append(pairsOK, [2]shapeCheck{p, d})
		}
	}
	if len(pairsOK) == 0 {
		return
	}
	// The probes' partner on the other side: the first layout that fits (the fewest GPUs).
	refP, refD := preOK[0], decOK[0]

	var pOpts []roleOption
	for _, p := range preOK {
		if s.stopped() {
			return
		}
		w := p.w
		w.Batch = s.prefillBatch(w, p.maxBatch)
		d := refD.w
		d.Count, d.Batch = ampleWorkers, refD.maxBatch
		pr, err := s.p.Predict(Config{Backend: s.backend, Mode: ModeDisagg, Replicas: 1, Workers: []Worker{w, d}}, probeConcurrency)
		s.out.probes++
		if err != nil || !(pr.RequestsPerSecond > 0) || math.IsInf(pr.RequestsPerSecond, 0) {
			continue
		}
		pOpts = append(pOpts, roleOption{w: w, rate: pr.RequestsPerSecond, latency: pr.PrefillMs})
	}
	var dOpts []roleOption
	for _, d := range decOK {
		p := refP.w
		p.Count, p.Batch = ampleWorkers, s.prefillBatch(p, refP.maxBatch)
		for _, b := range batches(d.w, d.maxBatch) {
			if s.stopped() {
				return
			}
			w := d.w
			w.Batch = b
			pr, err := s.p.Predict(Config{Backend: s.backend, Mode: ModeDisagg, Replicas: 1, Workers: []Worker{p, w}}, b)
			s.out.probes++
			if err != nil || !(pr.RequestsPerSecond > 0) || math.IsInf(pr.RequestsPerSecond, 0) {
				continue
			}
			dOpts = append(dOpts, roleOption{w: w, rate: pr.RequestsPerSecond, latency: pr.ITLMs})
		}
	}
	// Keep each role's own front: faster (lower latency) against more requests/s per GPU.
	perGPU := func(o roleOption) float64 { return o.rate / float64(o.w.GPUs()) }
	speed := func(o roleOption) float64 { return 1 / o.latency }
	pOpts = pareto.Front(pOpts, speed, perGPU)
	dOpts = pareto.Front(dOpts, speed, perGPU)

	for _, po := range pOpts {
		for _, do := range dOpts {
			if po.w.GPUs()+do.w.GPUs() > s.req.TotalGPUs {
				continue // counted above as a budget rejection of the layout pair
			}
			for _, xy := range s.counts(po, do) {
				if s.stopped() {
					return
				}
				p, d := po.w, do.w
				p.Count, d.Count = xy[0], xy[1]
				s.predict(Config{Mode: ModeDisagg, Workers: []Worker{p, d}})
			}
		}
	}
}

// prefillBatch is how many whole prompts a prefill worker takes per step: the engine's token
// budget over the prompt length, per attention rank, within what fits.
func (s *searcher) prefillBatch(w Worker, maxBatch int) int {
	k := max(s.p.cal.ChunkTokens/s.req.Workload.ISL, 1) * w.DP
	return max(min(k, maxBatch), 1)
}

// counts are the (prefill, decode) worker counts of one replica to try for a pair: for a few decode
// counts y, the prefill counts at the rate-matched ratio (rounded down and up) and with 25 %, 50 %
// and 100 % spare prefill capacity, within the budget.
func (s *searcher) counts(po, do roleOption) [][2]int {
	ratio := do.rate / po.rate // prefill workers per decode worker at rate match
	gp, gd := po.w.GPUs(), do.w.GPUs()
	var out [][2]int
	for _, y := range []int{1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 48, 64} {
		if gp+y*gd > s.req.TotalGPUs {
			break
		}
		// Bounded so that the conversions below stay far from overflow.
		base := min(float64(y)*ratio, float64(s.req.TotalGPUs))
		xs := []int{int(math.Floor(base)), int(math.Ceil(base)), int(math.Ceil(1.25 * base)), int(math.Ceil(1.5 * base)), int(math.Ceil(2 * base))}
		for i := range xs {
			xs[i] = max(xs[i], 1)
		}
		slices.Sort(xs)
		for _, x := range slices.Compact(xs) {
			if x*gp+y*gd <= s.req.TotalGPUs {
				out = append(out, [2]int{x, y})
			}
		}
	}
	return out
}

// finish checks the SLA, computes the front, selects and explains.
func finish(req *SearchRequest, res *SearchResult) {
	// At a confidence above the median a configuration must meet the targets with its predicted
	// quantile, not its point prediction (identical at DefaultConfidence).
	q := req.SLA.Confidence
	res.Confidence = q
	bounds := []pareto.Bound[Config]{
		{Name: "TTFT", Unit: "ms", Limit: req.SLA.TTFTMs, Value: func(c Config) float64 { return c.TTFTQuantile(q) }},
		{Name: "ITL", Unit: "ms", Limit: req.SLA.ITLMs, Value: func(c Config) float64 { return c.ITLQuantile(q) }},
	}
	var predicted []int
	var configs []Config
	ttftOK := 0
	for i := range res.Candidates {
		c := &res.Candidates[i]
		if !c.Predicted {
			continue
		}
		c.Misses = pareto.Misses(c.Config, bounds)
		c.Config.MeetsSLA = len(c.Misses) == 0
		var words []string
		for _, m := range c.Misses {
			r := RejectITL
			if m.Name == "TTFT" {
				r = RejectTTFT
			}
			c.Reasons = append(c.Reasons, r)
			words = append(words, m.String())
		}
		if !slices.Contains(c.Reasons, RejectTTFT) {
			ttftOK++
		}
		c.Detail = strings.Join(words, "; ")
		predicted = append(predicted, i)
		configs = append(configs, c.Config)
	}
	res.Predicted = len(predicted)

	// The front: the trade-off among candidates that meet TTFT, or among all when none does.
	var eligible []int
	for _, i := range predicted {
		if ttftOK == 0 || !slices.Contains(res.Candidates[i].Reasons, RejectTTFT) {
			eligible = append(eligible, i)
		}
	}
	res.Front = pareto.Front(eligible,
		func(i int) float64 { return res.Candidates[i].Config.TokensPerSecondPerUser },
		func(i int) float64 { return res.Candidates[i].Config.TokensPerSecondPerGPU })

	sel := pareto.Select(configs, bounds,
		func(c Config) float64 { return c.TokensPerSecondPerGPU },
		func(c Config) float64 { return c.TokensPerSecondPerUser })
	if sel.Index >= 0 {
		res.Selected = predicted[sel.Index]
		res.MeetsSLA = sel.Meets
		res.Misses = sel.Misses
		p := res.Candidates[res.Selected].Config.Probabilities(req.SLA)
		res.SLAProbability = &p
	}
	res.Rejected = summarize(res.Candidates)
	res.Explanation = explain(req, res, sel.Feasible)
}

// summarize counts the rejections per reason and keeps the three closest examples of each.
func summarize(cands []Candidate) map[RejectReason]Rejections {
	type ex struct {
		i   int
		sev float64
	}
	by := map[RejectReason][]ex{}
	for i, c := range cands {
		for _, r := range c.Reasons {
			// SLA misses: the closest to meeting every target first.
			sev := c.severity
			if c.Predicted {
				sev = 0
				for _, m := range c.Misses {
					sev += m.Relative()
				}
			}
			by[r] = append(by[r], ex{i, sev})
		}
	}
	out := map[RejectReason]Rejections{}
	for r, list := range by {
		slices.SortStableFunc(list, func(a, b ex) int { return cmp.Compare(a.sev, b.sev) })
		rj := Rejections{Count: len(list)}
		for _, e := range list[:min(3, len(list))] {
			c := cands[e.i]
			c.Misses = nil
			rj.Examples = append(rj.Examples, c)
		}
		out[r] = rj
	}
	return out
}

// Describe names a configuration in a few words: "trtllm disagg 4x (2P tp2 bs8 + 1D tp4 bs64)".
func Describe(c Config) string {
	return fmt.Sprintf("%s %s %s", c.Backend, c.Mode, c.Layout())
}

// Layout describes how a configuration places its workers, as "8x tp1 bs32" (8 replicas of one
// aggregated TP1 worker with batch 32) or "2x (3P tp1 bs1 + 1D tp4 bs64)" (2 replicas of 3 prefill
// and 1 decode workers). Parallelism beyond TP (pp, dp, ep) appears only when it is used, the
// batch only when it is set.
func (c Config) Layout() string {
	parts := make([]string, 0, len(c.Workers))
	for _, w := range c.Workers {
		var b strings.Builder
		switch w.Role {
		case RolePrefill:
			fmt.Fprintf(&b, "%dP ", w.Count)
		case RoleDecode:
			fmt.Fprintf(&b, "%dD ", w.Count)
		default:
			if w.Count != 1 {
				fmt.Fprintf(&b, "%d ", w.Count)
			}
		}
		fmt.Fprintf(&b, "tp%d", w.TP)
		if w.PP > 1 {
			fmt.Fprintf(&b, " pp%d", w.PP)
		}
		if w.DP > 1 {
			fmt.Fprintf(&b, " dp%d", w.DP)
		}
		if w.EP > 1 {
			fmt.Fprintf(&b, " ep%d", w.EP)
		}
		if w.Batch > 0 {
			fmt.Fprintf(&b, " bs%d", w.Batch)
		}
		parts = append(parts, b.String())
	}
	unit := strings.Join(parts, " + ")
	if len(parts) > 1 {
		unit = "(" + unit + ")"
	}
	return fmt.Sprintf("%dx %s", c.Replicas, unit)
}

// explain writes the one-sentence reason for the selection.
func explain(req *SearchRequest, res *SearchResult, feasible int) string {
	target := fmt.Sprintf("TTFT ≤ %s ms and ITL ≤ %s ms", numfmt.Fixed(req.SLA.TTFTMs, 2), numfmt.Fixed(req.SLA.ITLMs, 2))
	if c := req.SLA.Confidence; c != DefaultConfidence {
		target += fmt.Sprintf(" at %s%% confidence", numfmt.Fixed(100*c, 1))
	}
	if res.Selected < 0 {
		closest := ""
		for _, r := range RejectReasons {
			if ex := res.Rejected[r].Examples; len(ex) > 0 {
				closest = fmt.Sprintf("; the closest, %s, is out: %s", Describe(ex[0].Config), ex[0].Detail)
				break
			}
		}
		return fmt.Sprintf("no configuration could be predicted within %d GPUs (%d per node): %s%s",
			req.TotalGPUs, req.GPUsPerNode, rejectedSummary(res.Rejected), closest)
	}
	c := res.Candidates[res.Selected].Config
	if res.MeetsSLA {
		return fmt.Sprintf("%s has the highest tokens/s/GPU (%.1f) of the %d configurations meeting %s (%d predicted)",
			Describe(c), c.TokensPerSecondPerGPU, feasible, target, res.Predicted)
	}
	var miss []string
	for _, m := range res.Misses {
		miss = append(miss, m.String())
	}
	return fmt.Sprintf("no configuration meets %s; the closest, %s, misses %s; rejected: %s",
		target, Describe(c), strings.Join(miss, " and "), rejectedSummary(res.Rejected))
}

// rejectedSummary reads "120 memory, 40 ttft, 300 itl, 12 gpuBudget".
func rejectedSummary(rej map[RejectReason]Rejections) string {
	var parts []string
	for _, r := range RejectReasons {
		if n := rej[r].Count; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, r))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
