package bench

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Event
	}{
		{"blank", "\n", Event{}},
		{"comment keep-alive", ": ping\n", Event{}},
		{"event field", "event: message\n", Event{}},
		{"done", "data: [DONE]\n", Event{Kind: EventDone}},
		{"done without space, CRLF", "data:[DONE]\r\n", Event{Kind: EventDone}},
		{"non-object payload", "data: hello\n", Event{}},
		{"role chunk has no text",
			`data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
			Event{Kind: EventData}},
		{"chat token",
			`data: {"id":"x","choices":[{"index":0,"delta":{"content":" the"},"finish_reason":null}]}` + "\n",
			Event{Kind: EventData, Text: true}},
		{"chat token with spaces around colons",
			`data: {"choices" : [ { "delta" : { "content" : "a" } } ] }`,
			Event{Kind: EventData, Text: true}},
		{"null content", `data: {"choices":[{"delta":{"content":null}}]}`, Event{Kind: EventData}},
		{"reasoning_content", `data: {"choices":[{"delta":{"content":null,"reasoning_content":"hmm"}}]}`, Event{Kind: EventData, Text: true}},
		{"reasoning", `data: {"choices":[{"delta":{"reasoning":"hmm"}}]}`, Event{Kind: EventData, Text: true}},
		{"completions token", `data: {"object":"text_completion","choices":[{"index":0,"text":"x","finish_reason":null}]}`, Event{Kind: EventData, Text: true}},
		{"completions finish with empty text", `data: {"choices":[{"index":0,"text":"","finish_reason":"length"}]}`, Event{Kind: EventData}},
		{"generated text that looks like keys",
			`data: {"choices":[{"delta":{"content":"\"usage\":{\"prompt_tokens\":9},\"error\":\"x\""}}]}`,
			Event{Kind: EventData, Text: true}},
		{"escaped quote then key-like text",
			`data: {"choices":[{"delta":{"content":"\\\"content\":"}}]}`,
			Event{Kind: EventData, Text: true}},
		{"usage chunk",
			`data: {"id":"x","choices":[],"usage":{"prompt_tokens":512,"total_tokens":640,"completion_tokens":128,"prompt_tokens_details":null}}`,
			Event{Kind: EventData, HasUsage: true, PromptTokens: 512, CompletionTokens: 128}},
		{"continuous usage with a token",
			`data: {"choices":[{"delta":{"content":"a"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}`,
			Event{Kind: EventData, Text: true, HasUsage: true, PromptTokens: 3, CompletionTokens: 1}},
		{"usage null", `data: {"choices":[{"delta":{"content":"a"}}],"usage":null}`, Event{Kind: EventData, Text: true}},
		{"object value equal to a key name", `data: {"object":"text","text":"hi"}`, Event{Kind: EventData, Text: true}},
		{"error object", `data: {"error":{"message":"out of memory","type":"InternalServerError","code":500}}`,
			Event{Kind: EventData, Err: []byte("out of memory")}},
		{"error string", `data: {"error":"boom"}`, Event{Kind: EventData, Err: []byte("boom")}},
		{"error without message", `data: {"error":{"code":500}}`, Event{Kind: EventData, Err: []byte(`{"code":500}}`)}},
		{"error null is not an error", `data: {"choices":[{"delta":{"content":"a"}}],"error":null}`, Event{Kind: EventData, Text: true}},
		{"object error", `data: {"object":"error","message":"bad \"request\"","code":400}`, Event{Kind: EventData, Err: []byte(`bad \"request\"`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ParseLine([]byte(tt.line)))
		})
	}
}

func TestParseLineDoesNotAllocate(t *testing.T) {
	lines := [][]byte{
		[]byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" the"},"logprobs":null,"finish_reason":null}]}` + "\n"),
		[]byte(`data: {"id":"x","choices":[],"usage":{"prompt_tokens":512,"completion_tokens":128,"total_tokens":640}}` + "\n"),
		[]byte("data: [DONE]\n"),
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, l := range lines {
			_ = ParseLine(l)
		}
	})
	assert.Zero(t, allocs)
}

// FuzzParseLine feeds arbitrary bytes: the parser must not panic, must only report what the line
// could say, and must agree with encoding/json on every line that is valid JSON of the shape a
// server sends (checked in FuzzParseChunk).
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"data: [DONE]", `data: {"choices":[{"delta":{"content":"x"}}]}`, `data: {"usage":{"prompt_tokens":1`,
		`data: {"error":"`, `data: {"error":{"message":"\`, `data: {"usage":{"completion_tokens":99999999999999999999999}}`,
		"data:", ": c", `data: {"object":"error"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		ev := ParseLine(line)
		trimmed := bytes.TrimRight(line, "\r\n")
		if !bytes.HasPrefix(trimmed, []byte("data:")) {
			require.Equal(t, Event{}, ev)
		}
		if ev.Kind != EventData {
			require.False(t, ev.Text || ev.HasUsage || ev.Err != nil, "only data chunks carry content: %+v", ev)
		}
		require.GreaterOrEqual(t, ev.PromptTokens, 0)
		require.GreaterOrEqual(t, ev.CompletionTokens, 0)
		if ev.Err != nil {
			require.True(t, bytes.Contains(line, ev.Err), "the error message is a slice of the line")
		}
	})
}

// FuzzParseChunk builds real chunks with encoding/json from fuzzed text and counts, in compact
// and indented form, and checks the minimal parser reads them exactly as a full decoder would.
func FuzzParseChunk(f *testing.F) {
	f.Add("hello", "", uint32(10), uint32(3), true, false, false)
	f.Add("", "thinking", uint32(0), uint32(0), false, false, true)
	f.Add(`"usage":{"prompt_tokens":7}`, `"error":"x"`, uint32(1), uint32(2), true, true, false)
	f.Add("\\\"content\":\"", "", uint32(5), uint32(5), false, true, true)
	f.Fuzz(func(t *testing.T, content, reasoning string, prompt, completion uint32, withUsage, completions, indent bool) {
		choice := map[string]any{"index": 0, "finish_reason": nil}
		if completions {
			choice["text"] = content
		} else {
			delta := map[string]any{"content": content}
			if reasoning != "" {
				delta["reasoning_content"] = reasoning
			}
			choice["delta"] = delta
		}
		chunk := map[string]any{"id": "x", "object": "chat.completion.chunk", "model": "m", "choices": []any{choice}}
		if withUsage {
			chunk["usage"] = map[string]any{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": uint64(prompt) + uint64(completion)}
		}
		raw, err := json.Marshal(chunk)
		require.NoError(t, err)
		if indent {
			var buf bytes.Buffer
			require.NoError(t, json.Indent(&buf, raw, "", " "))
			// SSE data is one line: keep the spaces json.Indent adds, drop its newlines.
			raw = bytes.ReplaceAll(buf.Bytes(), []byte("\n"), []byte(" "))
		}
		ev := ParseLine(append([]byte("data: "), raw...))
		require.Equal(t, EventData, ev.Kind)
		wantText := content != "" || (!completions && reasoning != "")
		require.Equal(t, wantText, ev.Text)
		require.Equal(t, withUsage, ev.HasUsage)
		if withUsage {
			require.Equal(t, int(prompt), ev.PromptTokens)
			require.Equal(t, int(completion), ev.CompletionTokens)
		}
		require.Nil(t, ev.Err)
	})
}
