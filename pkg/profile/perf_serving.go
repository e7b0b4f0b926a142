package profile

import "math"

// fixedPointIters is the damped fixed-point iterations that close the serving loop (package doc,
// Serving model).
const fixedPointIters = 25

// engineLoad is the fixed part of one engine's serving problem.
type engineLoad struct {
	s      *shard
	isl    float64
	osl    float64
	chunk  float64
	kvMean float64 // mean cached tokens of a decoding sequence
}

// decodeMs is the time per emitted token of the decode iterations at nd sequences per rank: GPU time
// of all stages plus overheads. With speculative decoding (Target.SpecDraft) an iteration also runs the
// MTP module once per draft token and emits MTPAccept tokens on average; the verification pass is
// costed as an ordinary decode step (costing its 1+k tokens a sequence, which touch more experts,
// over-predicted the measured speed-up ×2).
func (p *Predictor) decodeMs(e *engineLoad, nd float64) float64 {
	nd = math.Max(nd, 1)
	pp := float64(e.s.pp)
	b := batchLoad{decodeSeqs: nd / pp, decodeKV: e.kvMean}
	emitted := 1.0
	var draft float64
	if k := float64(p.t.SpecDraft); k > 0 && p.model.mtp > 0 {
		// A draft pass is one decoder layer (and the logits) at one token a sequence.
		draft = k * pp * p.stepMs(e.s, b) / p.model.layers
		emitted = math.Min(math.Max(p.cal.MTPAccept, 1), 1+k)
	}
	gpu := pp*p.stepMs(e.s, b) + draft
	step := p.cal.DecodeScale*p.gpuScale()*gpu + p.cal.StepMs + p.cal.LayerUs/1000*p.model.layers +
		(p.cal.SeqUs+p.cal.SeqLayerUs*e.s.layers)/1000*nd
	return step / emitted
}

// gpuScale is RooflineScale where the kernel times come from the roofline, else 1.
func (p *Predictor) gpuScale() float64 {
	if p.k.method == MethodRoofline && p.cal.RooflineScale > 0 {
		return p.cal.RooflineScale
	}
	return 1
}

// prefillStepMs is the fixed cost of an iteration that runs prompt tokens: the engine's step cost and
// the eager launch of every kernel of every layer.
func (p *Predictor) prefillStepMs() float64 {
	return p.cal.StepMs + p.cal.PrefillKernelUs/1000*p.model.kernelsPerPass
}

// prefillTokenMs is the marginal time of one prompt token when pt prompt tokens (in whole prompts of
// isl, chunked) share an iteration with nd decoding sequences.
func (p *Predictor) prefillTokenMs(e *engineLoad, pt, nd float64) float64 {
	pt = math.Max(pt, 1)
	seqs := math.Max(pt/e.isl, 1e-3)
	ctx := math.Max(e.isl-pt/seqs, 0) / 2 // mean prefix already cached when a prompt is chunked
	pp := float64(e.s.pp)
	with := pp * p.stepMs(e.s, batchLoad{prefillTokens: pt / pp, prefillSeqs: seqs / pp, prefillCtx: ctx,
		decodeSeqs: nd / pp, decodeKV: e.kvMean})
	without := 0.0
	if nd > 0 {
		without = pp * p.stepMs(e.s, batchLoad{decodeSeqs: nd / pp, decodeKV: e.kvMean})
	}
	return p.cal.PrefillScale * p.gpuScale() * math.Max(with-without, 0) / pt
}

// aggResult is one engine's steady state.
type aggResult struct {
	ttft, itl, x, decode, prefill1 float64
}

// serveAgg solves the closed loop of one aggregated engine with n requests and b slots.
func (p *Predictor) serveAgg(e *engineLoad, n, b float64) aggResult {
	c := &p.cal
	I, O := e.isl, e.osl
	// Every admitted sequence is in the decode batch: the engines schedule a prompt's chunks with the
	// decoders, and fixed-length requests keep their slots (counting only the share of a request's
	// life spent decoding, X·(O−1)·ITL, fitted left-out ITL worse: 10.1% against 9.7%).
	nr := math.Max(math.Min(n, b), 1)
	steps := math.Ceil(I / e.chunk)
	// An idle engine: the prompt alone, then the first token.
	tauAlone := p.prefillTokenMs(e, math.Min(I, e.chunk), 0)
	prefill1 := I*tauAlone + steps*p.prefillStepMs() + c.PrefillReqMs

	d := p.decodeMs(e, nr)
	itl := d
	ttft := prefill1
	// A step carries at most a budget of prompt tokens (beside the decoders where the backend mixes
	// them): beyond that share of time, prompts queue.
	avail := e.chunk
	rhoMax := 0.95
	if c.MixedPrefill {
		avail = math.Max(e.chunk-nr, e.chunk/8)
		full := avail * p.prefillTokenMs(e, avail, nr)
		rhoMax = math.Min(full/(d+full), rhoMax)
	}
	tauFull := p.prefillTokenMs(e, avail, 0)
	var x float64
	for i := 0; i < fixedPointIters; i++ {
		x = nr / (ttft + (O-1)*itl)
		// Prompts are prefilled in chunks of at least one prompt (or the budget), whatever the mean rate.
		pt := math.Min(math.Max(x*I*itl, I), avail)
		var tau float64
		if c.MixedPrefill {
			tau = p.prefillTokenMs(e, pt, nr)
		} else {
			tau = p.prefillTokenMs(e, pt, 0) + c.StepMs/pt
		}
		rho := math.Min(x*I*tau, rhoMax)
		newITL := d / (1 - rho)
		svc := I*tau + math.Ceil(I/avail)*(d+p.prefillStepMs()-c.StepMs) + 0.5*newITL
		wait := c.Burst*(nr-1)/2*I*tauFull + svc*rho/(2*(1-rho))
		// Closed-loop saturation: the engine admits at most rhoMax/(I·τ) prompts per ms.
		sat := nr*I*tau/rhoMax - (O-1)*newITL
		newTTFT := math.Max(svc+wait, sat) + c.PrefillReqMs
		itl = 0.5*itl + 0.5*newITL
		ttft = 0.5*ttft + 0.5*newTTFT
	}
	x = nr / (ttft + (O-1)*itl)
	if n > nr {
		// The excess waits outside the batch: one slot frees every 1/x.
		ttft += (n - nr) / x
	}
	return aggResult{ttft: ttft, itl: itl, x: x, decode: d, prefill1: prefill1}
}

func (p *Predictor) newEngine(s *shard) engineLoad {
	I, O := float64(p.t.Workload.ISL), float64(p.t.Workload.OSL)
	return engineLoad{s: s, isl: I, osl: O, chunk: float64(p.cal.ChunkTokens), kvMean: I + O/2}
}

func (p *Predictor) predictAgg(w Worker, replicas, concurrency int) (Prediction, error) {
	s, err := p.shard(w)
	if err != nil {
		return Prediction{}, err
	}
	maxB, _, err := p.maxBatch(&s, RoleAgg)
	if err != nil {
		return Prediction{}, err
	}
	batch := w.Batch
	if batch <= 0 {
		batch = maxB
	}
	if concurrency <= 0 {
		concurrency = replicas * w.Count * batch
	}
	run := min(batch, maxB)
	engines := float64(replicas * w.Count * s.dp)
	n := float64(concurrency) / engines
	b := math.Max(float64(run)/float64(s.dp), 1)
	e := p.newEngine(&s)
	r := p.serveAgg(&e, n, b)
	gpus := float64(replicas * w.Count * w.GPUs())
	xTotal := r.x * engines * 1000 // requests per second
	mu := p.memory(&s, RoleAgg, int(math.Ceil(math.Min(n, b)))*s.dp)
	return Prediction{
		TTFTMs: r.ttft, ITLMs: r.itl,
		TokensPerSecondPerGPU: xTotal * e.osl / gpus,
		RequestsPerSecond:     xTotal,
		Concurrency:           concurrency,
		RunningBatch:          int(math.Round(math.Min(n, b) * float64(s.dp))),
		BatchLimited:          maxB < batch && n > b,
		PrefillMs:             r.prefill1,
		DecodeStepMs:          r.decode,
		MemoryGiB:             mu.TotalGiB,
	}, nil
}

func (p *Predictor) predictDisagg(pw, dw Worker, replicas, concurrency int) (Prediction, error) {
	c := &p.cal
	ps, err := p.shard(pw)
	if err != nil {
		return Prediction{}, err
	}
	ds, err := p.shard(dw)
	if err != nil {
		return Prediction{}, err
	}
	if _, _, err := p.maxBatch(&ps, RolePrefill); err != nil {
		return Prediction{}, err
	}
	maxD, _, err := p.maxBatch(&ds, RoleDecode)
	if err != nil {
		return Prediction{}, err
	}
	batch := dw.Batch
	if batch <= 0 {
		batch = maxD
	}
	if concurrency <= 0 {
		concurrency = replicas * dw.Count * batch
	}
	pe, de := p.newEngine(&ps), p.newEngine(&ds)
	I, O := pe.isl, pe.osl
	C := float64(concurrency)
	pRanks := float64(replicas * pw.Count * ps.dp)
	dRanks := float64(replicas * dw.Count * ds.dp)
	bD := math.Max(float64(min(batch, maxD))/float64(ds.dp), 1)

	// Prefill: prompts batched up to the token budget (or the worker's batch).
	k := math.Max(math.Floor(pe.chunk/I), 1)
	if pw.Batch > 0 {
		k = math.Min(k, float64(pw.Batch)/float64(ps.dp))
	}
	k = math.Max(k, 1)
	tau1 := p.prefillTokenMs(&pe, math.Min(I, pe.chunk), 0)
	tauK := p.prefillTokenMs(&pe, math.Min(k*I, math.Max(pe.chunk, I)), 0)
	steps := math.Ceil(I / pe.chunk)
	prefill1 := I*tau1 + steps*p.prefillStepMs() + c.PrefillReqMs
	perReq := I*tauK + steps*p.prefillStepMs()/k // busy prefill rank: time per request
	muP := pRanks / perReq                       // requests per ms

	// KV transfer: each prefill GPU ships its shard; the slower side's GPU count sets the parallel links.
	kvBytes := I * p.kvBytesPerTokenGPU(&ps) * float64(ps.pp)
	links := float64(min(pw.GPUs(), dw.GPUs()))
	bw, lat := p.k.inter, latInterMs
	if pw.GPUs()+dw.GPUs() <= p.k.domain {
		bw, lat = p.k.intra, latIntraMs
	}
	shardsPer := float64(pw.GPUs()) / links
	transfer := c.KVTransferScale * (lat + kvBytes*shardsPer/bw)

	itl := p.decodeMs(&de, math.Min(C/dRanks, bD))
	ttft := prefill1 + transfer
	var x, nd float64
	for i := 0; i < fixedPointIters; i++ {
		z := (O - 1) * itl
		x = C / (ttft + z)
		nd = math.Min(x*z/dRanks, bD)
		newITL := p.decodeMs(&de, math.Max(nd, 1))
		rho := math.Min(x/muP, 0.95)
		nP := C / pRanks
		wait := c.Burst*math.Max(nP/k-1, 0)/2*perReq*k*math.Min(1, float64(pw.Count*replicas)) + prefill1*rho/(2*(1-rho))
		light := prefill1 + transfer + wait
		// Saturation bounds: the prefill pool serves at most muP; the decode slots hold dRanks·bD.
		sat := C/muP - z
		xd := dRanks * bD / z
		if x > xd {
			sat = math.Max(sat, C/xd-z)
		}
		newTTFT := math.Max(light, sat)
		itl = 0.5*itl + 0.5*newITL
		ttft = 0.5*ttft + 0.5*newTTFT
	}
	x = C / (ttft + (O-1)*itl)
	gpus := float64(replicas * (pw.Count*pw.GPUs() + dw.Count*dw.GPUs()))
	mu := p.memory(&ds, RoleDecode, int(math.Ceil(math.Max(nd, 1)))*ds.dp)
	mp := p.memory(&ps, RolePrefill, int(k)*ps.dp)
	return Prediction{
		TTFTMs: ttft, ITLMs: itl,
		TokensPerSecondPerGPU: x * 1000 * O / gpus,
		RequestsPerSecond:     x * 1000,
		Concurrency:           concurrency,
		RunningBatch:          int(math.Round(nd * float64(ds.dp))),
		BatchLimited:          maxD < batch && C/dRanks > bD,
		PrefillMs:             prefill1,
		DecodeStepMs:          p.decodeMs(&de, bD),
		MemoryGiB:             math.Max(mu.TotalGiB, mp.TotalGiB),
	}, nil
}
