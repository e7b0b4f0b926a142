// Package simengine is a simulated OpenAI-compatible LLM engine for tests: a streaming HTTP
// server whose latencies follow a small, configurable model, so that a test knows the TTFT and
// ITL a client should measure.
//
// It is test support code, not a product feature: no shipped binary serves it and no production
// code path imports it. Tests of any package in this module may import it (pkg/bench checks its
// accuracy against it; the thorough search uses it to stand in for candidate deployments), and
// test/e2e/cmd/simengine serves it in the pods of make e2e's stand-in Dynamo operator.
//
// The latency model, per request:
//
//	queue    waits for one of MaxBatch running slots (unlimited when MaxBatch is 0)
//	TTFT   = queue wait + PrefillBaseMs + PrefillMsPerToken × prompt tokens
//	ITL    = DecodeBaseMs + DecodeMsPerSeq × running sequences (read at every token)
//
// each delay multiplied by a uniform noise factor in [1−NoiseFrac, 1+NoiseFrac]. Tokens are due
// at absolute times (the previous due time plus one ITL), so timer jitter does not accumulate. A
// real engine's prefill also stalls the decode of the others in its batch; this model does not
// simulate that, only queueing and batch-size-dependent decode speed. Everything runs on the
// request's own goroutine with one timer: thousands of streams are cheap.
//
// Randomness (noise, injected errors) comes from a generator seeded with Seed and the request's
// arrival number, so a run is deterministic given the seed and the order in which requests
// arrive.
package simengine
