package bench

import (
	"bytes"
)

// EventKind says what one line of a server-sent-event stream is.
type EventKind uint8

const (
	// EventNone is a blank line, a comment (":…"), another SSE field (event:, id:, retry:) or a
	// "data:" line whose payload is not a JSON object: nothing the benchmark acts on.
	EventNone EventKind = iota
	// EventData is a "data:" line carrying a JSON object (a completion chunk, usage or an error).
	EventData
	// EventDone is the "data: [DONE]" sentinel that ends an OpenAI stream.
	EventDone
)

// Event is one SSE line of an OpenAI-compatible streaming response, decoded only as far as the
// benchmark needs. Err aliases the line, so it is valid only until the next read.
type Event struct {
	Kind EventKind
	// Text is true when the chunk carries generated text: a non-empty choices[].delta.content,
	// delta.reasoning_content / delta.reasoning (reasoning models) or choices[].text (completions).
	Text bool
	// HasUsage is true when the chunk has a usage object; PromptTokens and CompletionTokens are its
	// counts (vLLM with continuous usage stats sends one in every chunk; the last one wins).
	HasUsage         bool
	PromptTokens     int
	CompletionTokens int
	// Err is the message of an error chunk ({"error":{"message":…}}, {"error":"…"} or
	// {"object":"error","message":…}), still JSON-escaped; nil when the chunk is not an error.
	Err []byte
}

var (
	dataPrefix = []byte("data:")
	doneMarker = []byte("[DONE]")

	keyContent          = []byte(`"content"`)
	keyReasoningContent = []byte(`"reasoning_content"`)
	keyReasoning        = []byte(`"reasoning"`)
	keyText             = []byte(`"text"`)
	keyUsage            = []byte(`"usage"`)
	keyPromptTokens     = []byte(`"prompt_tokens"`)
	keyCompletionTokens = []byte(`"completion_tokens"`)
	keyError            = []byte(`"error"`)
	keyObject           = []byte(`"object"`)
	keyMessage          = []byte(`"message"`)
)

// ParseLine decodes one line of an SSE stream (with or without its line ending) without
// allocating. It does not build a JSON tree: it looks for the few keys the benchmark reads.
// That is exact for valid JSON, because an unescaped `"key"` followed by a colon can only be an
// object key (a quote inside a string is always escaped), so text the model generates can never
// be mistaken for a key. It assumes one choice per chunk (the benchmark asks for n=1) and that
// the keys it reads appear where OpenAI puts them; a "data:" event split over several lines is
// read line by line, which no OpenAI-compatible server emits.
func ParseLine(line []byte) Event {
	line = bytes.TrimRight(line, "\r\n")
	if !bytes.HasPrefix(line, dataPrefix) {
		return Event{}
	}
	payload := trimSpace(line[len(dataPrefix):])
	if bytes.Equal(payload, doneMarker) {
		return Event{Kind: EventDone}
	}
	if len(payload) == 0 || payload[0] != '{' {
		return Event{}
	}
	ev := Event{Kind: EventData}
	ev.Text = nonEmptyString(payload, keyContent) || nonEmptyString(payload, keyText) ||
		nonEmptyString(payload, keyReasoningContent) || nonEmptyString(payload, keyReasoning)
	if v := valueOf(payload, keyUsage); len(v) > 0 && v[0] == '{' {
		ev.HasUsage = true
		ev.PromptTokens = intOf(v, keyPromptTokens)
		ev.CompletionTokens = intOf(v, keyCompletionTokens)
	}
	ev.Err = errorMessage(payload)
	return ev
}

// errorMessage returns the message of an error chunk, or nil. A message-less error yields the
// raw error value so that the failure is still reported.
func errorMessage(payload []byte) []byte {
	if v := valueOf(payload, keyError); len(v) > 0 {
		switch v[0] {
		case '{':
			if m := stringOf(v, keyMessage); m != nil {
				return m
			}
			return v
		case '"':
			if s, ok := stringAt(v); ok {
				return s
			}
		}
	}
	if o := stringOf(payload, keyObject); bytes.Equal(o, keyError[1:len(keyError)-1]) {
		if m := stringOf(payload, keyMessage); m != nil {
			return m
		}
		return payload
	}
	return nil
}

// valueOf returns the bytes from the first value of key (a quoted key, e.g. `"usage"`) onwards,
// or nil when the key is absent. Whitespace around the colon is allowed, as JSON allows it.
func valueOf(doc, key []byte) []byte {
	for {
		i := bytes.Index(doc, key)
		if i < 0 {
			return nil
		}
		rest := trimSpace(doc[i+len(key):])
		if len(rest) > 0 && rest[0] == ':' {
			return trimSpace(rest[1:])
		}
		// A string value equal to the key text, e.g. "object":"text": keep looking after it.
		doc = doc[i+len(key):]
	}
}

// nonEmptyString reports whether key has a string value of at least one character.
func nonEmptyString(doc, key []byte) bool {
	v := valueOf(doc, key)
	return len(v) >= 2 && v[0] == '"' && v[1] != '"'
}

// stringOf returns the raw (still escaped) string value of key, or nil when it is absent or not
// a string.
func stringOf(doc, key []byte) []byte {
	v := valueOf(doc, key)
	if len(v) == 0 || v[0] != '"' {
		return nil
	}
	s, ok := stringAt(v)
	if !ok {
		return nil
	}
	return s
}

// stringAt returns the contents of the JSON string that v starts with, escapes left as they are.
func stringAt(v []byte) ([]byte, bool) {
	for i := 1; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return v[1:i], true
		}
	}
	return nil, false
}

// intOf returns key's non-negative integer value, or 0 when it is absent, negative or not a number.
func intOf(doc, key []byte) int {
	v := valueOf(doc, key)
	n := 0
	for i, c := range v {
		if c < '0' || c > '9' {
			if i == 0 {
				return 0
			}
			break
		}
		if n > (1<<62)/10 {
			return 0 // absurdly large: not a token count
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
