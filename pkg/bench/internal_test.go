package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name    string
		samples []time.Duration
		want    Latency
	}{
		{"empty", nil, Latency{}},
		{"one", ms(5), Latency{Mean: 5, P50: 5, P90: 5, P99: 5, Min: 5, Max: 5}},
		{"even count interpolates the median", ms(4, 1, 3, 2), Latency{Mean: 2.5, P50: 2.5, P90: 3.7, P99: 3.97, Min: 1, Max: 4}},
		{"eleven", ms(0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100), Latency{Mean: 50, P50: 50, P90: 90, P99: 99, Min: 0, Max: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summarize(tt.samples)
			assert.InDelta(t, tt.want.Mean, got.Mean, 1e-9)
			assert.InDelta(t, tt.want.P50, got.P50, 1e-9)
			assert.InDelta(t, tt.want.P90, got.P90, 1e-9)
			assert.InDelta(t, tt.want.P99, got.P99, 1e-9)
			assert.InDelta(t, tt.want.Min, got.Min, 1e-9)
			assert.InDelta(t, tt.want.Max, got.Max, 1e-9)
		})
	}
}

func TestFitWords(t *testing.T) {
	tests := []struct {
		name      string
		isl       int
		w, p      []int
		wantWords int
		wantNote  string
	}{
		{"chat template overhead", 1000, []int{1000, 500}, []int{1012, 512}, 988, ""},
		{"more than one token per word", 1000, []int{1000, 500}, []int{1260, 635}, 792, ""}, // 10 + 1.25/word
		{"single probe fits the overhead", 3, []int{3}, []int{5}, 1, ""},
		{"overhead reaches the ISL", 10, []int{10, 5}, []int{40, 35}, 1, "overhead"},
		{"flat probes", 100, []int{100, 50}, []int{7, 7}, 100, "no usable"},
		{"negative slope", 100, []int{100, 50}, []int{50, 90}, 100, "non-positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fitWords(tt.isl, tt.w, tt.p)
			assert.Equal(t, tt.wantWords, c.Words)
			if tt.wantNote == "" {
				assert.Empty(t, c.Note)
			} else {
				assert.Contains(t, c.Note, tt.wantNote)
			}
		})
	}
}

func TestPoissonArrivals(t *testing.T) {
	draw := func(seed uint64) []time.Duration {
		rng := rand.New(rand.NewPCG(seed, 0))
		out := make([]time.Duration, 20000)
		for i := range out {
			out[i] = poissonGap(rng, 50)
		}
		return out
	}
	a, b := draw(3), draw(3)
	require.Equal(t, a, b, "the same seed gives the same arrivals")
	require.NotEqual(t, a, draw(4))
	var sum time.Duration
	for _, d := range a {
		sum += d
	}
	mean := sum / time.Duration(len(a))
	// 20000 exponential gaps: the mean's standard error is 0.7%; this seed is fixed.
	assert.InEpsilon(t, float64(20*time.Millisecond), float64(mean), 0.03)
	sorted := summarize(a)
	// The median of an exponential is ln 2 × mean.
	assert.InEpsilon(t, 20*0.6931, sorted.P50, 0.03)
}

func TestPromptIsCommonWords(t *testing.T) {
	known := map[string]bool{}
	for _, w := range words {
		require.False(t, known[w], "duplicate word %q", w)
		require.NotEmpty(t, w)
		known[w] = true
	}
	rng := rand.New(rand.NewPCG(1, 2))
	p := string(appendPrompt(nil, rng, 300))
	fields := strings.Fields(p)
	assert.Len(t, fields, 300)
	for _, f := range fields {
		assert.True(t, known[f], f)
	}
	assert.Equal(t, p, string(appendPrompt(nil, rand.New(rand.NewPCG(1, 2)), 300)), "seeded")
}

func TestBodyTemplate(t *testing.T) {
	decode := func(t *testing.T, b []byte) map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m), string(b))
		return m
	}
	t.Run("chat", func(t *testing.T) {
		tmpl, err := newBodyTemplate(EndpointChat, "llama", 128, map[string]any{"temperature": 0, "nvext": map[string]any{"ignore_eos": true}})
		require.NoError(t, err)
		m := decode(t, tmpl.build(rand.New(rand.NewPCG(1, 1)), 7))
		assert.Equal(t, "llama", m["model"])
		assert.EqualValues(t, 128, m["max_tokens"])
		assert.EqualValues(t, 128, m["min_tokens"])
		assert.Equal(t, true, m["ignore_eos"])
		assert.Equal(t, true, m["stream"])
		assert.Equal(t, map[string]any{"include_usage": true}, m["stream_options"])
		assert.EqualValues(t, 0, m["temperature"])
		assert.Equal(t, map[string]any{"ignore_eos": true}, m["nvext"])
		msgs := m["messages"].([]any)
		require.Len(t, msgs, 1)
		assert.Equal(t, "user", msgs[0].(map[string]any)["role"])
		assert.Len(t, strings.Fields(msgs[0].(map[string]any)["content"].(string)), 7)
	})
	t.Run("completions with an override", func(t *testing.T) {
		tmpl, err := newBodyTemplate(EndpointCompletions, "m", 4, map[string]any{"ignore_eos": false})
		require.NoError(t, err)
		m := decode(t, tmpl.build(rand.New(rand.NewPCG(1, 1)), 3))
		assert.Len(t, strings.Fields(m["prompt"].(string)), 3)
		assert.Equal(t, false, m["ignore_eos"])
		assert.NotContains(t, m, "messages")
	})
	t.Run("extra body must not replace the prompt", func(t *testing.T) {
		_, err := newBodyTemplate(EndpointChat, "m", 4, map[string]any{"messages": []any{}})
		require.ErrorContains(t, err, `leave "messages" out`)
	})
}

func TestOptionsValidate(t *testing.T) {
	valid := func() Options {
		return Options{URL: "http://x:8000", ISL: 10, OSL: 10, Concurrency: []int{1}, Requests: 5}
	}
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"valid", func(*Options) {}, ""},
		{"valid rate and duration", func(o *Options) {
			o.Concurrency = nil
			o.Rates = []float64{0.5}
			o.Requests = 0
			o.Duration = time.Second
		}, ""},
		{"no url", func(o *Options) { o.URL = "" }, "url is required"},
		{"bad scheme", func(o *Options) { o.URL = "x:8000" }, "must start with http://"},
		{"bad endpoint", func(o *Options) { o.Endpoint = "embeddings" }, `endpoint "embeddings"`},
		{"isl", func(o *Options) { o.ISL = 0 }, "isl must be at least 1"},
		{"osl", func(o *Options) { o.OSL = -1 }, "osl must be at least 1"},
		{"no load", func(o *Options) { o.Concurrency = nil }, "set concurrency levels or request rates"},
		{"both loads", func(o *Options) { o.Rates = []float64{1} }, "not both"},
		{"zero concurrency", func(o *Options) { o.Concurrency = []int{4, 0} }, "concurrency must be at least 1, got 0"},
		{"zero rate", func(o *Options) { o.Concurrency = nil; o.Rates = []float64{0} }, "rate must be a positive"},
		{"no amount", func(o *Options) { o.Requests = 0 }, "set a number of requests or a duration"},
		{"both amounts", func(o *Options) { o.Duration = time.Second }, "not both"},
		{"negative timeout", func(o *Options) { o.RequestTimeout = -1 }, "request timeout must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid()
			tt.edit(&o)
			err := o.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// sseBody is a canned chat stream: a role chunk, n one-token chunks, a finish chunk, usage, [DONE].
func sseBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n")
	for range n {
		b.WriteString(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" the"},"logprobs":null,"finish_reason":null}]}` + "\n\n")
	}
	b.WriteString(`data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}` + "\n\n")
	fmt.Fprintf(&b, `data: {"id":"c","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":%d,"total_tokens":%d}}`+"\n\n", n, n+12)
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

func TestStreamRead(t *testing.T) {
	s := newStream(4)
	st, err := s.read(bytes.NewReader(sseBody(100)), time.Now())
	require.NoError(t, err)
	assert.True(t, st.done)
	assert.True(t, st.hasUsage)
	assert.Equal(t, 12, st.promptTokens)
	assert.Equal(t, 100, st.completionTokens)
	assert.Len(t, s.stamps, 100, "the role chunk is not a token")
	assert.Equal(t, 104, s.lines)
	for i := 1; i < len(s.stamps); i++ {
		assert.GreaterOrEqual(t, s.stamps[i], s.stamps[i-1], "stamps are monotonic")
	}
	assert.LessOrEqual(t, s.stamps[len(s.stamps)-1], st.end)
}

func TestStreamReadFailures(t *testing.T) {
	long := `data: {"choices":[{"delta":{"content":"` + strings.Repeat("x", 3*readBufferSize) + `"}}]}` + "\n\ndata: [DONE]\n\n"
	tests := []struct {
		name    string
		body    string
		wantErr string
		tokens  int
	}{
		{"line longer than the buffer", long, "", 1},
		{"no trailing newline", `data: {"choices":[{"delta":{"content":"a"}}]}` + "\n\ndata: [DONE]", "", 1},
		{"usage but no [DONE]", `data: {"choices":[{"delta":{"content":"a"}}]}` + "\n\n" + `data: {"usage":{"prompt_tokens":1,"completion_tokens":1}}` + "\n\n", "", 1},
		{"error chunk", `data: {"choices":[{"delta":{"content":"a"}}]}` + "\n\n" + `data: {"error":{"message":"engine died"}}` + "\n\n", "server error in stream: engine died", 1},
		{"no text", "data: [DONE]\n\n", "without generated text", 0},
		{"truncated", `data: {"choices":[{"delta":{"content":"a"}}]}` + "\n\n", "truncated", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStream(1)
			_, err := s.read(strings.NewReader(tt.body), time.Now())
			if tt.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.wantErr)
			}
			assert.Len(t, s.stamps, tt.tokens)
		})
	}
}

// TestStreamReadAllocationsDoNotGrowWithTokens proves the hot path allocates nothing per token:
// reading a 2,000-token stream allocates no more than reading a 10-token one (both zero once the
// stream's buffers exist).
func TestStreamReadAllocationsDoNotGrowWithTokens(t *testing.T) {
	allocs := func(n int) float64 {
		body := sseBody(n)
		s := newStream(n)
		r := bytes.NewReader(body)
		return testing.AllocsPerRun(20, func() {
			r.Reset(body)
			_, err := s.read(r, time.Now())
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	small, large := allocs(10), allocs(2000)
	assert.Equal(t, small, large)
	assert.Zero(t, large)
}

func BenchmarkParseLine(b *testing.B) {
	line := []byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":" the"},"logprobs":null,"finish_reason":null}]}` + "\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		_ = ParseLine(line)
	}
}

// BenchmarkStreamRead is the client's whole per-token cost outside the network: reading a line,
// stamping it with the monotonic clock, parsing it. Reported per token.
func BenchmarkStreamRead(b *testing.B) {
	const tokens = 1000
	body := sseBody(tokens)
	s := newStream(tokens)
	r := bytes.NewReader(body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r.Reset(body)
		if _, err := s.read(r, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/token")
}
