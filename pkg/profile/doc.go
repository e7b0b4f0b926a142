// Package profile predicts how a model serves on a GPU under a configuration (the performance model),
// enumerates and ranks configurations (the rapid search), estimates what measuring them would cost
// (the thorough search's budget) and describes models (config.json).
//
// # Performance model
//
// How fast a Config serves a Target, without a GPU:
//
//	p, err := profile.NewPredictor(profile.Target{Model: m, GPU: g, Backend: "vllm", Workload: w})
//	pred, err := p.Predict(cfg, concurrency)   // fast, no allocation; call it thousands of times
//	n, err := p.MaxBatch(worker)               // the largest Batch whose KV cache fits (ErrNoFit if none)
//	err := p.Fit(worker)                       // nil, or a *FitError (errors.Is(err, ErrNoFit)) saying why not
//	mem := p.Memory(worker, batch)             // per-GPU memory breakdown
//
// Predict(t, c, n) is the one-shot form (it builds a Predictor each call: keep a Predictor per target
// in loops). A Predictor is immutable and safe for concurrent use.
//
// Conventions:
//   - Config.Workers is one RoleAgg worker for ModeAgg, or one RolePrefill and one RoleDecode worker for
//     ModeDisagg; Worker.Count is per replica; Config.Replicas ≥ 1 copies of that set.
//   - Worker.Batch is the most sequences one worker (all its attention-DP ranks together) runs at once;
//     for a prefill worker, the most prompts it prefills in one step. Worker.EP is the expert-parallel
//     degree of the MoE layers; the experts are also split TP×DP/EP ways (MoE tensor parallelism).
//   - concurrency is the benchmark's concurrent requests across the whole Config (closed loop: each
//     finished request is replaced at once). concurrency ≤ 0 means "as many as the batch slots":
//     Σ Count·Batch of the agg workers, or of the decode workers.
//   - TTFT includes queueing under that concurrency; ITL (= TPOT) is the mean time between output
//     tokens of one request. Tokens/s/GPU counts output tokens over all GPUs of the Config.
//   - Method says where the kernel times came from: "kernel-table" (the GPU's measured tables in
//     tables/, interpolated) or "roofline" (the catalog's peak figures with the reference GPU's measured
//     utilisation curves; communication always uses the interconnect's published figures).
//
// # What the performance model computes
//
// A forward step of a worker is composed per GPU from operators: the GEMMs of attention and MLP (or
// routed and shared experts), prefill attention (FLOPs), decode attention (KV bytes, GQA or MLA),
// norms/elementwise (bytes) plus a per-kernel glue cost fitted on the measured whole-model decode steps,
// the logits GEMM, and communication: TP all-reduce, EP all-to-all (attention-DP), PP send/recv. Each
// kernel time is roofline/utilisation with the utilisation interpolated in the GPU's kernel table.
// Serving turns steps into TTFT and ITL with a closed-loop mean-field model (the next section):
// continuous batching with chunked prefill sharing the step with decode (agg), or prefill and decode
// pools joined by a KV transfer over the interconnect (disagg), both with a prefill queue under the
// concurrency. The backend-specific constants (per-step and per-sequence overheads, engine
// efficiency, queue burstiness) are fitted on testdata/calibration by `make calibrate` and embedded
// (tables/calib.json); see Calib, and internal/calib for the method.
//
// # Serving model
//
// From step times to TTFT and ITL under a closed-loop concurrency.
//
// Every attention-DP rank of every worker is an engine with n requests in a closed loop (a finished
// request is replaced at once) and b batch slots. Mean field, per engine:
//
//   - ρ, the share of time spent prefilling, is X·I·τ, where X is the request rate, I the prompt
//     length and τ the marginal GPU time of one prompt token (in a step already carrying the decode
//     batch when the backend mixes them, alone otherwise);
//   - ITL = D(N_d)/(1−ρ): prefill work stretches the decode step D of the N_d decoding sequences;
//   - TTFT = S + W_burst + W_queue + the per-request cost, where S is one prompt's prefill (its chunks
//     and the decode work riding in them), W_burst = Burst·(n−1)/2·I·τ_full the wait behind prompts
//     arriving together (closed-loop benchmarks start all requests at once and fixed output lengths keep
//     them in waves), and W_queue = S·ρ/(2(1−ρ)) the ordinary queueing of a busy server;
//   - N_d is every admitted sequence (min(n, b)) and X = n/(TTFT + (O−1)·ITL) closes the loop
//     (Little's law); a few damped fixed-point iterations converge.
//
// Requests beyond the batch slots (or the KV capacity) wait outside: TTFT grows by their count over X.
// Disaggregated serving runs the same loop over a prefill pool (capacity μ_p from batched prefill steps)
// and a decode pool joined by a KV transfer over the interconnect; TTFT is the larger of the light-load
// value and the saturation bound C/μ_p − (O−1)·ITL of a closed network whose prefill pool is the
// bottleneck.
//
// # Rapid search
//
// Search enumerates deployable configurations, predicts each with the performance model, keeps the
// Pareto front of tokens/s/GPU against tokens/s/user and selects one under the SLA.
//
// The search space, for every backend (one, or all of Backends) and mode (agg, disagg):
//   - worker shapes: TP (and for MoE models attention DP and EP) over powers of two up to the GPUs
//     of a node, so a worker never spans nodes; multinode workers take whole nodes (TP = GPUs per
//     node, PP or DP across the nodes) and are tried when SearchRequest.MultiNode is set or when no
//     single-node worker of a role fits the model in memory;
//   - batch (max concurrent sequences per worker) on a roughly √2-spaced ladder from 1 to 1024,
//     capped at the largest batch whose KV cache fits (a batch above it only queues);
//   - disagg: prefill workers batch whole prompts up to the engine's per-step token budget; the
//     prefill and decode worker counts of one replica (xPyD) are searched around the rate-matched
//     ratio (prefill capacity against decode capacity) and above it (spare prefill lowers TTFT);
//   - replicas: as many copies of the worker set as the GPU budget holds (floor(total/per-replica)).
//
// Disagg prunes before pairing: each prefill option is probed alone (its capacity and idle TTFT,
// with ample decode behind it) and each decode option alone (its ITL and tokens/s/GPU at full
// batch, with ample prefill in front); only the options on each role's own Pareto front are paired.
//
// Selection: every predicted candidate is checked against the SLA (TTFT and ITL upper bounds). The
// front is computed over the predicted candidates that meet the TTFT target (all predicted ones when
// none does): x = tokens/s/user (= 1000/ITL), y = tokens/s/GPU. The selection is the candidate with the
// highest tokens/s/GPU among those meeting both targets, ties to the higher tokens/s/user and then
// to enumeration order; when none meets them it is the closest (smallest sum of relative excesses)
// with what it misses. Tokens/s/GPU counts the GPUs the configuration uses; GPUs of the budget
// left over by floor(total/per-replica) are not charged (AIC divides by the whole budget instead).
//
// The result is deterministic: backends are searched concurrently but merged in a fixed order,
// and every loop runs over ordered slices.
//
// # Thorough-search budget
//
// EstimateBudget says what measuring candidate deployments on the cluster is expected to
// cost in GPU-hours and wall time, computed before anything is deployed so that the user sees it
// first. The estimate is a schedule: candidates start in the order given, each as soon as enough
// GPUs of the budget are free (and fewer than MaxParallel run), hold their GPUs from creation until
// they are deleted, and are dropped from the plan when they would end after the deadline.
//
// # Estimating benchmark rows
//
// EstimateCSV and ReadServingRows read the column layout of testdata/calibration's
// serving_measurements_train.csv (system, backend, model_path, precision, gemm_quant_mode,
// moe_quant_mode, mode, isl, osl, batch_size, tp_size, pp_size, attention_dp_size, moe_ep_size,
// prefill_*/decode_* with *_num_workers and *_batch_size, concurrency; measured silicon_ttft_ms and
// silicon_tpot_ms may be absent).
//
// How a row becomes a query:
//   - precision: gemm_quant_mode for the linear layers and moe_quant_mode for the routed experts
//     (either empty: the checkpoint's); precision alone stands for both; none: the checkpoint's.
//   - agg: one worker of tp_size × attention_dp_size × pp_size GPUs; its Batch is batch_size per
//     attention-DP rank times the ranks.
//   - disagg: a prefill and a decode worker from the prefill_*/decode_* columns. Their counts
//     (*_num_workers) default to what the concurrency needs: as many decode workers as it takes to
//     hold the concurrency in their KV cache (at least one), and as many prefill workers as match the
//     decode pool's request rate (rate matching, at least one). A missing decode batch is the
//     concurrency over the decode workers.
//   - MoE workers recorded with the GPU count squared (tp_size or attention_dp_size g², moe_tp_size =
//     moe_ep_size = g) are read as g GPUs.
//   - concurrency: the concurrency column when present; else batch_size × attention_dp_size (agg) or
//     decode batch × decode workers (disagg).
package profile
