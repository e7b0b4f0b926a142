// Package bench measures an OpenAI-compatible LLM endpoint (Dynamo's frontend, vLLM, SGLang,
// TensorRT-LLM serve) the way a serving SLA is stated: time to first token (TTFT), inter-token
// latency (ITL), end-to-end latency and throughput, per load level.
//
// A load level is either a closed loop of N concurrent users (each sends its next request when the
// previous one finishes) or an open loop of Poisson arrivals at a fixed rate. Every request streams
// (stream: true, stream_options.include_usage) with a prompt of the requested length and a fixed
// output length (max_tokens = min_tokens, ignore_eos).
//
// The package is a library: it has no flags and no global state, and the HTTP client is passed in
// (Options.HTTPClient), so the thorough search can measure candidate deployments with it.
// It is built to measure accurately: monotonic clocks, one timestamp per SSE chunk taken as the
// chunk is read, no allocation per token, keep-alive connections, and its own parsing cost
// reported in every result.
package bench
