package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
)

// words are common English words that the BPE tokenizers of current LLMs (GPT-2/cl100k-style
// byte-level BPE used by Llama 3, Qwen, Mistral Nemo, DeepSeek; SentencePiece BPE of Llama 2 and
// Mistral) encode as one token each when preceded by a space. Byte-level BPE pre-splits text at
// spaces, so a random sequence of them is close to one token per word; the residue (the chat
// template, a BOS token, an odd word split in two) is measured by the calibration probes and
// the actual count is taken from the server's usage.prompt_tokens. The list has 128 entries so
// that a word is picked with one bounded random draw.
var words = [128]string{
	"the", "of", "and", "to", "in", "is", "you", "that", "it", "he",
	"was", "for", "on", "are", "as", "with", "his", "they", "at", "be",
	"this", "have", "from", "or", "one", "had", "by", "word", "but", "not",
	"what", "all", "were", "we", "when", "your", "can", "said", "there", "use",
	"an", "each", "which", "she", "do", "how", "their", "if", "will", "up",
	"other", "about", "out", "many", "then", "them", "these", "so", "some", "her",
	"would", "make", "like", "him", "into", "time", "has", "look", "two", "more",
	"go", "see", "number", "no", "way", "could", "people", "my", "than", "first",
	"water", "been", "call", "who", "its", "now", "find", "long", "down", "day",
	"did", "get", "come", "made", "may", "part", "over", "new", "work", "year",
	"back", "give", "most", "very", "after", "thing", "our", "just", "name", "good",
	"place", "where", "help", "through", "much", "before", "line", "right", "too", "mean",
	"old", "any", "same", "tell", "small", "set", "three", "want",
}

// appendPrompt appends n random words separated by spaces. The words need no JSON escaping, so
// the result can be spliced into a pre-encoded request body.
func appendPrompt(dst []byte, rng *rand.Rand, n int) []byte {
	for i := range n {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, words[rng.IntN(len(words))]...)
	}
	return dst
}

// promptSentinel marks where the prompt goes in the encoded request body.
const promptSentinel = "\x00dgdr-bench-prompt\x00"

// bodyTemplate is a request body encoded once, split around the prompt.
type bodyTemplate struct {
	prefix, suffix []byte
}

// newBodyTemplate encodes the request for endpoint: streaming with usage, maxTokens output tokens
// forced by min_tokens and ignore_eos (vLLM, SGLang, TensorRT-LLM and Dynamo's frontend accept
// both), then extra's fields on top.
func newBodyTemplate(endpoint Endpoint, model string, maxTokens int, extra map[string]any) (bodyTemplate, error) {
	body := map[string]any{
		"model":          model,
		"max_tokens":     maxTokens,
		"min_tokens":     maxTokens,
		"ignore_eos":     true,
		"stream":         true,
		"stream_options": map[string]any{"include_usage": true},
	}
	if endpoint == EndpointCompletions {
		body["prompt"] = promptSentinel
	} else {
		body["messages"] = []map[string]string{{"role": "user", "content": promptSentinel}}
	}
	for k, v := range extra {
		body[k] = v
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return bodyTemplate{}, fmt.Errorf("encoding the request body: %w", err)
	}
	// json.Marshal escapes the NUL bytes of the sentinel.
	marker, _ := json.Marshal(promptSentinel)
	marker = marker[1 : len(marker)-1]
	before, after, ok := bytes.Cut(raw, marker)
	if !ok {
		field := "messages"
		if endpoint == EndpointCompletions {
			field = "prompt"
		}
		return bodyTemplate{}, fmt.Errorf("extra body fields replace the prompt: leave %q out of them", field)
	}
	return bodyTemplate{prefix: before, suffix: after}, nil
}

// build returns a request body with a prompt of n random words.
func (t bodyTemplate) build(rng *rand.Rand, n int) []byte {
	b := make([]byte, 0, len(t.prefix)+len(t.suffix)+n*6)
	b = append(b, t.prefix...)
	b = appendPrompt(b, rng, n)
	return append(b, t.suffix...)
}

// Calibration is how prompt words were fitted to the requested ISL. Two probe requests with
// different word counts give prompt_tokens = Overhead + TokensPerWord × words; the benchmark then
// sends Words = (ISL − Overhead) / TokensPerWord words. Overhead is the chat template and special
// tokens; TokensPerWord is near 1 for the word list.
type Calibration struct {
	// Words is the number of words each prompt has.
	Words int `json:"words"`
	// ProbeWords and ProbeTokens are the probes' word counts and the prompt_tokens they reported.
	ProbeWords  []int `json:"probeWords,omitempty"`
	ProbeTokens []int `json:"probeTokens,omitempty"`
	// Overhead and TokensPerWord are the fitted line (zero when not calibrated).
	Overhead      float64 `json:"overhead,omitempty"`
	TokensPerWord float64 `json:"tokensPerWord,omitempty"`
	// Note says why calibration was skipped or clamped, if it was.
	Note string `json:"note,omitempty"`
}

// fitWords solves the calibration line for isl tokens, given probes (w[i] words → p[i] tokens).
func fitWords(isl int, w, p []int) Calibration {
	c := Calibration{Words: isl, ProbeWords: w, ProbeTokens: p}
	switch {
	case len(w) == 1:
		// One probe (ISL too small to halve): assume one token per word, fit the overhead only.
		c.TokensPerWord = 1
		c.Overhead = float64(p[0] - w[0])
	case len(w) == 2 && w[0] != w[1] && p[0] != p[1]:
		c.TokensPerWord = float64(p[0]-p[1]) / float64(w[0]-w[1])
		c.Overhead = float64(p[0]) - c.TokensPerWord*float64(w[0])
	default:
		c.Note = "probes gave no usable token counts; sending one word per requested token"
		return c
	}
	if c.TokensPerWord <= 0 {
		c.Note = "probes gave a non-positive tokens-per-word slope; sending one word per requested token"
		return c
	}
	n := int(math.Round((float64(isl) - c.Overhead) / c.TokensPerWord))
	if n < 1 {
		c.Note = fmt.Sprintf("the prompt overhead (%.0f tokens) alone reaches the requested ISL; sending one word", c.Overhead)
		n = 1
	}
	c.Words = n
	return c
}
