package simengine_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/internal/simengine"
)

// chunk is an OpenAI stream chunk, decoded in full with encoding/json so that these tests check
// the engine's format independently of pkg/bench's minimal parser.
type chunk struct {
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Text  *string `json:"text"`
		Delta *struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

type transcript struct {
	status     int
	chunks     []chunk
	textChunks []string
	done       bool
}

func post(t *testing.T, url string, body map[string]any) transcript {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(raw))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	tr := transcript{status: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		return tr
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		require.True(t, ok, "every non-blank line is a data line: %q", line)
		require.False(t, tr.done, "nothing follows [DONE]")
		if data == "[DONE]" {
			tr.done = true
			continue
		}
		var c chunk
		require.NoError(t, json.Unmarshal([]byte(data), &c), "chunk is JSON: %s", data)
		tr.chunks = append(tr.chunks, c)
		for _, ch := range c.Choices {
			if ch.Text != nil && *ch.Text != "" {
				tr.textChunks = append(tr.textChunks, *ch.Text)
			}
			if ch.Delta != nil && ch.Delta.Content != nil && *ch.Delta.Content != "" {
				tr.textChunks = append(tr.textChunks, *ch.Delta.Content)
			}
		}
	}
	require.NoError(t, sc.Err())
	return tr
}

func words(n int) string { return strings.TrimSpace(strings.Repeat("the ", n)) }

func TestStreamFormat(t *testing.T) {
	tests := []struct {
		name           string
		chat           bool
		tokensPerChunk int
		maxTokens      int
		includeUsage   bool
		wantChunks     int
	}{
		{name: "chat one token per chunk", chat: true, tokensPerChunk: 1, maxTokens: 5, includeUsage: true, wantChunks: 5},
		{name: "chat three tokens per chunk", chat: true, tokensPerChunk: 3, maxTokens: 8, includeUsage: true, wantChunks: 4}, // 1+3+3+1
		{name: "completions", chat: false, tokensPerChunk: 1, maxTokens: 4, includeUsage: true, wantChunks: 4},
		{name: "chat without usage", chat: true, tokensPerChunk: 1, maxTokens: 3, includeUsage: false, wantChunks: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(simengine.New(simengine.Config{Model: "m", TokensPerChunk: tt.tokensPerChunk, ChatTemplateTokens: 5}))
			defer srv.Close()
			body := map[string]any{"model": "m", "max_tokens": tt.maxTokens, "stream": true,
				"stream_options": map[string]any{"include_usage": tt.includeUsage}}
			path := "/v1/completions"
			wantPrompt := 7
			if tt.chat {
				path = "/v1/chat/completions"
				body["messages"] = []map[string]string{{"role": "user", "content": words(7)}}
				wantPrompt += 5
			} else {
				body["prompt"] = words(7)
			}
			tr := post(t, srv.URL+path, body)
			require.Equal(t, http.StatusOK, tr.status)
			assert.True(t, tr.done, "stream ends with [DONE]")
			assert.Len(t, tr.textChunks, tt.wantChunks)
			assert.Equal(t, tt.maxTokens, countWordsIn(tr.textChunks), "one word per generated token")
			if tt.chat {
				require.NotNil(t, tr.chunks[0].Choices[0].Delta)
				assert.Equal(t, "assistant", tr.chunks[0].Choices[0].Delta.Role, "first chunk has the role and no text")
				assert.Equal(t, "chat.completion.chunk", tr.chunks[0].Object)
			}
			last := tr.chunks[len(tr.chunks)-1]
			if tt.includeUsage {
				require.NotNil(t, last.Usage)
				assert.Empty(t, last.Choices, "the usage chunk has no choices")
				assert.Equal(t, wantPrompt, last.Usage.PromptTokens)
				assert.Equal(t, tt.maxTokens, last.Usage.CompletionTokens)
				assert.Equal(t, wantPrompt+tt.maxTokens, last.Usage.TotalTokens)
				last = tr.chunks[len(tr.chunks)-2]
			} else {
				for _, c := range tr.chunks {
					assert.Nil(t, c.Usage)
				}
			}
			require.NotNil(t, last.Choices[0].FinishReason)
			assert.Equal(t, "length", *last.Choices[0].FinishReason)
		})
	}
}

func countWordsIn(chunks []string) int {
	n := 0
	for _, c := range chunks {
		n += len(strings.Fields(c))
	}
	return n
}

func TestNonStreaming(t *testing.T) {
	srv := httptest.NewServer(simengine.New(simengine.Config{}))
	defer srv.Close()
	for _, path := range []string{"/v1/chat/completions", "/v1/completions"} {
		t.Run(path, func(t *testing.T) {
			raw := fmt.Sprintf(`{"model":"sim-model","max_tokens":6,"messages":[{"role":"user","content":[{"type":"text","text":%q}]}],"prompt":["a b c"]}`, words(3))
			resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(raw))
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			var out struct {
				Choices []struct {
					Text    string `json:"text"`
					Message struct {
						Content string `json:"content"`
					} `json:"message"`
				} `json:"choices"`
				Usage struct {
					PromptTokens     int `json:"prompt_tokens"`
					CompletionTokens int `json:"completion_tokens"`
				} `json:"usage"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
			require.Len(t, out.Choices, 1)
			assert.Len(t, strings.Fields(out.Choices[0].Text+out.Choices[0].Message.Content), 6)
			assert.Equal(t, 3, out.Usage.PromptTokens)
			assert.Equal(t, 6, out.Usage.CompletionTokens)
		})
	}
}

func TestModelsHealthAndFailStart(t *testing.T) {
	get := func(t *testing.T, url string) (int, string) {
		resp, err := http.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	ok, err := simengine.Start(simengine.Config{Model: "qwen", HealthPath: "/healthz"})
	require.NoError(t, err)
	defer ok.Close()
	code, body := get(t, ok.URL+"/v1/models")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"object":"list","data":[{"id":"qwen","object":"model","created":0,"owned_by":"simengine"}]}`, body)
	code, _ = get(t, ok.URL+"/healthz")
	assert.Equal(t, http.StatusOK, code)

	broken, err := simengine.Start(simengine.Config{FailStart: true})
	require.NoError(t, err)
	defer broken.Close()
	for _, path := range []string{"/health", "/v1/models"} {
		code, body := get(t, broken.URL+path)
		assert.Equal(t, http.StatusServiceUnavailable, code, path)
		assert.Contains(t, body, "failed to start")
	}
	assert.Equal(t, http.StatusServiceUnavailable, post(t, broken.URL+"/v1/chat/completions", map[string]any{}).status)
}

func TestRejectsUnknownModelAndBadBodies(t *testing.T) {
	s := simengine.New(simengine.Config{Model: "m"})
	srv := httptest.NewServer(s)
	defer srv.Close()
	tests := []struct {
		name string
		path string
		body string
		code int
	}{
		{"unknown model", "/v1/chat/completions", `{"model":"other","messages":[{"role":"user","content":"x"}]}`, http.StatusNotFound},
		{"not json", "/v1/chat/completions", `{`, http.StatusBadRequest},
		{"no messages", "/v1/chat/completions", `{"model":"m","messages":[]}`, http.StatusBadRequest},
		{"prompt of numbers", "/v1/completions", `{"model":"m","prompt":{"a":1}}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+tt.path, "application/json", strings.NewReader(tt.body))
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tt.code, resp.StatusCode)
			var e struct {
				Error struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
			assert.NotEmpty(t, e.Error.Message)
		})
	}
	assert.Equal(t, int64(len(tests)), s.Stats().Errors)
}

func TestEOSAndMinTokens(t *testing.T) {
	srv := httptest.NewServer(simengine.New(simengine.Config{EOSAfter: 3}))
	defer srv.Close()
	tests := []struct {
		name       string
		extra      map[string]any
		wantOut    int
		wantReason string
	}{
		{"stops at EOS", map[string]any{}, 3, "stop"},
		{"min_tokens holds EOS back", map[string]any{"min_tokens": 5}, 5, "stop"},
		{"ignore_eos runs to max_tokens", map[string]any{"ignore_eos": true}, 8, "length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{"model": "sim-model", "max_tokens": 8, "stream": true, "prompt": "a b",
				"stream_options": map[string]any{"include_usage": true}}
			for k, v := range tt.extra {
				body[k] = v
			}
			tr := post(t, srv.URL+"/v1/completions", body)
			require.Equal(t, http.StatusOK, tr.status)
			usage := tr.chunks[len(tr.chunks)-1].Usage
			require.NotNil(t, usage)
			assert.Equal(t, tt.wantOut, usage.CompletionTokens)
			assert.Len(t, tr.textChunks, tt.wantOut)
			assert.Equal(t, tt.wantReason, *tr.chunks[len(tr.chunks)-2].Choices[0].FinishReason)
		})
	}
}

func TestInjectedErrorsAreSeeded(t *testing.T) {
	run := func(t *testing.T, cfg simengine.Config) (fails int, stats simengine.Stats) {
		s := simengine.New(cfg)
		srv := httptest.NewServer(s)
		defer srv.Close()
		for range 40 {
			tr := post(t, srv.URL+"/v1/chat/completions", map[string]any{"model": "sim-model", "stream": true, "max_tokens": 4,
				"messages": []map[string]string{{"role": "user", "content": "hi"}}})
			switch {
			case tr.status == http.StatusInternalServerError:
				fails++
			case tr.status == http.StatusOK && !tr.done:
				last := tr.chunks[len(tr.chunks)-1]
				require.NotNil(t, last.Error, "a stream without [DONE] ends with an error chunk")
				assert.Contains(t, last.Error.Message, "mid-stream")
				assert.Len(t, tr.textChunks, 2, "the error comes halfway")
				fails++
			}
		}
		return fails, s.Stats()
	}
	for _, mid := range []bool{false, true} {
		t.Run(fmt.Sprintf("midStream=%v", mid), func(t *testing.T) {
			cfg := simengine.Config{ErrorRate: 0.3, ErrorMidStream: mid, Seed: 7}
			a, stats := run(t, cfg)
			b, _ := run(t, cfg)
			assert.Equal(t, a, b, "same seed, same arrival order: same failures")
			assert.Greater(t, a, 3)
			assert.Less(t, a, 25)
			assert.Equal(t, int64(a), stats.Errors)
			assert.Equal(t, int64(40), stats.Requests)
		})
	}
}

func TestQueueingHoldsRequestsBeyondMaxBatch(t *testing.T) {
	s := simengine.New(simengine.Config{MaxBatch: 2, PrefillBaseMs: 20, DecodeBaseMs: 2})
	srv := httptest.NewServer(s)
	defer srv.Close()
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			tr := post(t, srv.URL+"/v1/completions", map[string]any{"model": "sim-model", "prompt": "x", "max_tokens": 3, "stream": true})
			assert.True(t, tr.done)
		})
	}
	wg.Wait()
	st := s.Stats()
	assert.Equal(t, int64(2), st.MaxRunning, "never more than MaxBatch running")
	assert.GreaterOrEqual(t, st.MaxWaiting, int64(1), "the others queued")
}

func TestLatenciesAreLowerBounds(t *testing.T) {
	// Sleeps never end early, so the injected latencies are floors a client must not beat.
	srv := httptest.NewServer(simengine.New(simengine.Config{PrefillBaseMs: 30, PrefillMsPerToken: 1, DecodeBaseMs: 5}))
	defer srv.Close()
	start := time.Now()
	tr := post(t, srv.URL+"/v1/completions", map[string]any{"model": "sim-model", "prompt": words(10), "max_tokens": 5, "stream": true})
	require.True(t, tr.done)
	assert.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond+4*5*time.Millisecond)
}

func TestCloseEndsStreams(t *testing.T) {
	s, err := simengine.Start(simengine.Config{PrefillBaseMs: 60_000})
	require.NoError(t, err)
	result := make(chan error, 1)
	go func() {
		resp, err := http.Post(s.URL+"/v1/completions", "application/json", strings.NewReader(`{"model":"sim-model","prompt":"x","stream":true}`))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		result <- err
	}()
	require.Eventually(t, func() bool { return s.Stats().MaxRunning == 1 }, 5*time.Second, time.Millisecond)
	s.Close()
	select {
	case <-result:
	case <-time.After(10 * time.Second):
		t.Fatal("a stream outlived Close")
	}
}
