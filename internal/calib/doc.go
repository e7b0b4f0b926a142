// Package calib fits the performance model's calibration (pkg/profile's Calib) on measured serving
// rows and measures how well it predicts them. It is tooling: `make calibrate` (internal/tools/fit)
// writes the embedded pkg/profile/tables/calib.json with it, `make bench-accuracy`
// (internal/tools/accuracy) reports the error; the binaries only read the result.
//
// # Method
//
//  1. GlueUsPerLayer: the cost the kernel tables leave out or double count (norm, residual, RoPE and
//     KV-write kernels, launch costs that back-to-back CUDA-graph replay hides), per layer of the
//     reference dense decoder (profile.E2EModel) and applied per kernel, is chosen so the composed
//     decode step of that Llama-3.1-8B-shaped model matches
//     testdata/gpu-data/h100_sxm/e2e_llama3.1-8b_bf16.csv (CUDA-graph decode rows) in least squares
//     (FitGlue).
//  2. The fitted parameters of profile.BackendCalib are found by Nelder–Mead in log space on
//     testdata/calibration/serving_measurements_train.csv (read at fit time, never embedded) (Fit). The
//     loss is the absolute log error of TTFT plus that of ITL, averaged per (model, mode) group and
//     weighted by √rows of the group, plus 0.02 × the squared log distance of each parameter from its
//     prior (profile.DefaultCalibration), so that constants the rows barely inform stay physical.
//  3. Parameters are never per model or per GPU. Kernel physics (decode/prefill/MoE/MLA scales, the
//     per-collective cost) is global, one value for all backends; each backend has its overheads (per
//     step, per layer, per sequence, per request) and how its scheduler queues (burst). Two rounds
//     alternate: global parameters on all aggregated rows, each backend's on its aggregated rows, then
//     the disaggregation parameters (KV transfer, prefill provisioning) on the disaggregated rows —
//     which give neither worker counts nor speculative-decoding settings, so they inform nothing
//     else. CrossValidate refits with each model left out to measure how this carries to models the
//     fit never saw.
//  4. The memory policy is not fitted: it is the backends' documented defaults (see profile.Calib).
//
// The fit is deterministic to the last bit: rows are summed in a fixed order and groups in key order,
// so `make calibrate` reproduces the committed calib.json exactly.
package calib
