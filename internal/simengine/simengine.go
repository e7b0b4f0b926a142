package simengine

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Config is the simulated engine's behaviour. The zero value is an engine with no latency and no
// capacity limit serving the model "sim-model".
type Config struct {
	// Model is the served model name (default "sim-model"); requests for another get a 404.
	Model string
	// PrefillBaseMs + PrefillMsPerToken × prompt tokens is the prefill time (TTFT without queueing).
	PrefillBaseMs     float64
	PrefillMsPerToken float64
	// DecodeBaseMs + DecodeMsPerSeq × running sequences is the time per output token.
	DecodeBaseMs   float64
	DecodeMsPerSeq float64
	// MaxBatch is how many requests run at once; more wait in a FIFO queue. 0 is unlimited.
	MaxBatch int
	// NoiseFrac scales every delay by a uniform factor in [1−NoiseFrac, 1+NoiseFrac].
	NoiseFrac float64
	// Seed seeds the noise and the injected errors.
	Seed uint64
	// TokensPerWord (default 1) and ChatTemplateTokens make the prompt token count:
	// round(words × TokensPerWord), plus ChatTemplateTokens for chat requests.
	TokensPerWord      float64
	ChatTemplateTokens int
	// TokensPerChunk (default 1) groups output tokens into stream chunks after the first token,
	// which always comes alone (like an engine streaming every N tokens).
	TokensPerChunk int
	// DefaultMaxTokens is the output length when a request sets no max_tokens (default 16).
	DefaultMaxTokens int
	// EOSAfter, when positive, ends generation after that many tokens (but not before
	// min_tokens) unless the request sets ignore_eos.
	EOSAfter int
	// FailStart makes every endpoint, health included, answer 503: an engine that never starts.
	FailStart bool
	// ErrorRate is the fraction of completion requests that fail: with an HTTP 500 before
	// anything is streamed, or, with ErrorMidStream, with an error chunk halfway through.
	ErrorRate      float64
	ErrorMidStream bool
	// HealthPath is the health endpoint (default /health).
	HealthPath string
	// RecordTimings keeps when each streamed request arrived and when each of its text chunks
	// was written (see Timings): the ground truth a client's measurements are checked against,
	// free of the engine's own timer jitter.
	RecordTimings bool
}

// Timing is when one streamed request arrived at the handler and when each chunk carrying text
// was written to the connection.
type Timing struct {
	Arrived time.Time
	Chunks  []time.Time
}

// Stats counts what the engine did.
type Stats struct {
	// Requests counts completion requests received; Errors those answered with an error.
	Requests int64
	Errors   int64
	// MaxRunning and MaxWaiting are the peaks of running and queued requests.
	MaxRunning int64
	MaxWaiting int64
}

// Server is a simulated engine. It is an http.Handler (for httptest.NewServer); Start also
// serves it on a loopback port.
type Server struct {
	cfg       Config
	mux       *http.ServeMux
	modelJSON []byte
	slots     chan struct{} // nil: unlimited
	done      chan struct{}
	closeOnce sync.Once

	seq                    atomic.Uint64
	running, waiting       atomic.Int64
	requests, errs         atomic.Int64
	maxRunning, maxWaiting atomic.Int64

	timingsMu sync.Mutex
	timings   []Timing

	// URL is the base URL once Start has returned, e.g. http://127.0.0.1:41234.
	URL string
	srv *http.Server
}

// New returns a simulated engine with cfg (defaults filled in).
func New(cfg Config) *Server {
	if cfg.Model == "" {
		cfg.Model = "sim-model"
	}
	if cfg.TokensPerWord <= 0 {
		cfg.TokensPerWord = 1
	}
	if cfg.TokensPerChunk < 1 {
		cfg.TokensPerChunk = 1
	}
	if cfg.DefaultMaxTokens < 1 {
		cfg.DefaultMaxTokens = 16
	}
	if cfg.HealthPath == "" {
		cfg.HealthPath = "/health"
	}
	model, _ := json.Marshal(cfg.Model)
	s := &Server{cfg: cfg, mux: http.NewServeMux(), modelJSON: model, done: make(chan struct{})}
	if cfg.MaxBatch > 0 {
		s.slots = make(chan struct{}, cfg.MaxBatch)
	}
	s.mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { s.complete(w, r, true) })
	s.mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) { s.complete(w, r, false) })
	s.mux.HandleFunc("GET /v1/models", s.models)
	s.mux.HandleFunc("GET "+cfg.HealthPath, s.health)
	return s
}

// Start serves a new engine on 127.0.0.1 at a free port; Close stops it.
func Start(cfg Config) (*Server, error) {
	s := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening on loopback: %w", err)
	}
	s.URL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close ends every stream in progress and, after Start, stops serving.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	if s.srv != nil {
		_ = s.srv.Close()
	}
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	return Stats{
		Requests:   s.requests.Load(),
		Errors:     s.errs.Load(),
		MaxRunning: s.maxRunning.Load(),
		MaxWaiting: s.maxWaiting.Load(),
	}
}

// Timings returns the recorded timings of the streams finished so far (with RecordTimings).
func (s *Server) Timings() []Timing {
	s.timingsMu.Lock()
	defer s.timingsMu.Unlock()
	return append([]Timing(nil), s.timings...)
}

// ServeHTTP serves the OpenAI endpoints and health.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.FailStart {
		writeError(w, http.StatusServiceUnavailable, "the engine failed to start (simulated)")
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"healthy"}`))
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"object":"list","data":[{"id":%s,"object":"model","created":0,"owned_by":"simengine"}]}`, s.modelJSON)
}

// request is the part of an OpenAI completion request the engine reads.
type request struct {
	Model    string `json:"model"`
	Messages []struct {
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Prompt              json.RawMessage `json:"prompt"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	MinTokens           int             `json:"min_tokens"`
	IgnoreEOS           bool            `json:"ignore_eos"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request, chat bool) {
	arrived := time.Now()
	s.requests.Add(1)
	var req request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20)).Decode(&req); err != nil {
		s.fail(w, http.StatusBadRequest, "invalid request body: "+err.Error())
		return
	}
	if req.Model != s.cfg.Model {
		s.fail(w, http.StatusNotFound, fmt.Sprintf("The model `%s` does not exist.", req.Model))
		return
	}
	words, err := promptWords(chat, req)
	if err != nil {
		s.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	promptTokens := int(float64(words)*s.cfg.TokensPerWord + 0.5)
	if chat {
		promptTokens += s.cfg.ChatTemplateTokens
	}
	outTokens := s.outputTokens(req)

	n := s.seq.Add(1)
	rng := rand.New(rand.NewPCG(s.cfg.Seed, n))
	failMid := false
	if s.cfg.ErrorRate > 0 && rng.Float64() < s.cfg.ErrorRate {
		if !s.cfg.ErrorMidStream {
			s.fail(w, http.StatusInternalServerError, "simulated engine error")
			return
		}
		failMid = true
	}

	// Headers and the role chunk go out on arrival, before any queueing: a client's TTFT must not
	// stop at a chunk without text, however early it comes.
	out := newStreamWriter(w, s, n, chat, req, arrived)
	out.start()
	if !s.admit(r) {
		return
	}
	defer s.release()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	due := time.Now().Add(s.delay(rng, s.cfg.PrefillBaseMs+s.cfg.PrefillMsPerToken*float64(promptTokens)))
	for tok := 1; tok <= outTokens; tok++ {
		if tok > 1 {
			due = due.Add(s.delay(rng, s.cfg.DecodeBaseMs+s.cfg.DecodeMsPerSeq*float64(s.running.Load())))
		}
		// The first token goes out alone; later ones in groups of TokensPerChunk (and the rest).
		last := tok == outTokens
		if !last && tok > 1 && (tok-1)%s.cfg.TokensPerChunk != 0 {
			out.pending++
			continue
		}
		if !s.sleepUntil(r, timer, due) {
			return
		}
		if failMid && tok > outTokens/2 {
			s.errs.Add(1)
			out.error("simulated engine error mid-stream")
			return
		}
		out.tokens(out.pending + 1)
		out.pending = 0
	}
	out.finish(promptTokens, outTokens, outTokens < s.requestedMax(req))
	if s.cfg.RecordTimings && req.Stream {
		s.timingsMu.Lock()
		s.timings = append(s.timings, Timing{Arrived: arrived, Chunks: out.written})
		s.timingsMu.Unlock()
	}
}

// outputTokens is how many tokens the request generates.
func (s *Server) outputTokens(req request) int {
	n := s.requestedMax(req)
	if s.cfg.EOSAfter > 0 && !req.IgnoreEOS {
		n = min(n, max(req.MinTokens, s.cfg.EOSAfter))
	}
	return max(n, 1)
}

func (s *Server) requestedMax(req request) int {
	switch {
	case req.MaxCompletionTokens != nil:
		return *req.MaxCompletionTokens
	case req.MaxTokens != nil:
		return *req.MaxTokens
	}
	return s.cfg.DefaultMaxTokens
}

// admit waits for a running slot. It reports false when the client or the server went away.
func (s *Server) admit(r *http.Request) bool {
	if s.slots != nil {
		raise(&s.maxWaiting, s.waiting.Add(1))
		select {
		case s.slots <- struct{}{}:
			s.waiting.Add(-1)
		case <-r.Context().Done():
			s.waiting.Add(-1)
			return false
		case <-s.done:
			s.waiting.Add(-1)
			return false
		}
	}
	raise(&s.maxRunning, s.running.Add(1))
	return true
}

func (s *Server) release() {
	s.running.Add(-1)
	if s.slots != nil {
		<-s.slots
	}
}

// raise lifts peak to at least v.
func raise(peak *atomic.Int64, v int64) {
	for {
		p := peak.Load()
		if v <= p || peak.CompareAndSwap(p, v) {
			return
		}
	}
}

// delay is ms milliseconds with noise.
func (s *Server) delay(rng *rand.Rand, ms float64) time.Duration {
	if s.cfg.NoiseFrac > 0 {
		ms *= 1 + s.cfg.NoiseFrac*(2*rng.Float64()-1)
	}
	return time.Duration(max(ms, 0) * float64(time.Millisecond))
}

// sleepUntil waits for due; false when the client or the server went away first.
func (s *Server) sleepUntil(r *http.Request, timer *time.Timer, due time.Time) bool {
	d := time.Until(due)
	if d <= 0 {
		return true
	}
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-r.Context().Done():
	case <-s.done:
	}
	return false
}

func (s *Server) fail(w http.ResponseWriter, code int, msg string) {
	s.errs.Add(1)
	writeError(w, code, msg)
}

// writeError answers in the error shape vLLM and OpenAI use.
func writeError(w http.ResponseWriter, code int, msg string) {
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"message": msg, "type": http.StatusText(code), "code": code,
	}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// promptWords counts the words of the prompt: chat message contents (strings or text parts) or
// the completion prompt (a string or a list of strings).
func promptWords(chat bool, req request) (int, error) {
	n := 0
	if chat {
		if len(req.Messages) == 0 {
			return 0, errors.New("messages must not be empty")
		}
		for _, m := range req.Messages {
			var text string
			if json.Unmarshal(m.Content, &text) == nil {
				n += countWords(text)
				continue
			}
			var parts []struct {
				Text string `json:"text"`
			}
			if err := json.Unmarshal(m.Content, &parts); err != nil {
				return 0, fmt.Errorf("message content must be a string or a list of parts: %w", err)
			}
			for _, p := range parts {
				n += countWords(p.Text)
			}
		}
		return n, nil
	}
	var text string
	if json.Unmarshal(req.Prompt, &text) == nil {
		return countWords(text), nil
	}
	var texts []string
	if err := json.Unmarshal(req.Prompt, &texts); err != nil {
		return 0, fmt.Errorf("prompt must be a string or a list of strings: %w", err)
	}
	for _, t := range texts {
		n += countWords(t)
	}
	return n, nil
}

func countWords(s string) int {
	n, in := 0, false
	for i := 0; i < len(s); i++ {
		space := s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r'
		if !space && !in {
			n++
		}
		in = !space
	}
	return n
}

// streamWriter writes one response, streamed as SSE chunks or, for a non-streaming request,
// as one JSON body at the end.
type streamWriter struct {
	w       http.ResponseWriter
	flusher http.Flusher
	s       *Server
	chat    bool
	stream  bool
	usage   bool
	id      string
	created int64
	buf     []byte
	text    []byte // the whole completion, for a non-streaming answer
	pending int    // tokens generated but not yet sent
	sent    int
	written []time.Time // when each text chunk was written, with RecordTimings
}

// outputWords are what the engine "generates": one word per token.
var outputWords = [8]string{" sim", " engine", " token", " stream", " latency", " model", " batch", " queue"}

func newStreamWriter(w http.ResponseWriter, s *Server, n uint64, chat bool, req request, arrived time.Time) *streamWriter {
	prefix := "cmpl-sim-"
	if chat {
		prefix = "chatcmpl-sim-"
	}
	f, _ := w.(http.Flusher)
	return &streamWriter{
		w: w, flusher: f, s: s, chat: chat, stream: req.Stream,
		usage:   req.StreamOptions != nil && req.StreamOptions.IncludeUsage,
		id:      prefix + strconv.FormatUint(n, 10),
		created: arrived.Unix(),
		buf:     make([]byte, 0, 512),
	}
}

// chunkHead starts a chunk: `data: {"id":…,"choices":[{"index":0,`.
func (sw *streamWriter) chunkHead() {
	obj := "text_completion"
	if sw.chat {
		obj = "chat.completion.chunk"
	}
	sw.buf = append(sw.buf[:0], `data: {"id":"`...)
	sw.buf = append(sw.buf, sw.id...)
	sw.buf = append(sw.buf, `","object":"`...)
	sw.buf = append(sw.buf, obj...)
	sw.buf = append(sw.buf, `","created":`...)
	sw.buf = strconv.AppendInt(sw.buf, sw.created, 10)
	sw.buf = append(sw.buf, `,"model":`...)
	sw.buf = append(sw.buf, sw.s.modelJSON...)
	sw.buf = append(sw.buf, `,"choices":[`...)
}

func (sw *streamWriter) flush() {
	_, _ = sw.w.Write(sw.buf)
	if sw.flusher != nil {
		sw.flusher.Flush()
	}
}

// start sends the headers and, for chat, the role chunk with empty content that vLLM and
// OpenAI send first (it carries no token, so TTFT must not stop at it).
func (sw *streamWriter) start() {
	if !sw.stream {
		return
	}
	h := sw.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	sw.w.WriteHeader(http.StatusOK)
	if sw.chat {
		sw.chunkHead()
		sw.buf = append(sw.buf, `{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`+"\n\n"...)
		sw.flush()
	}
}

// tokens sends n generated tokens in one chunk.
func (sw *streamWriter) tokens(n int) {
	start := len(sw.text)
	for range n {
		sw.text = append(sw.text, outputWords[sw.sent%len(outputWords)]...)
		sw.sent++
	}
	if !sw.stream {
		return
	}
	sw.chunkHead()
	if sw.chat {
		sw.buf = append(sw.buf, `{"index":0,"delta":{"content":"`...)
		sw.buf = append(sw.buf, sw.text[start:]...)
		sw.buf = append(sw.buf, `"},`...)
	} else {
		sw.buf = append(sw.buf, `{"index":0,"text":"`...)
		sw.buf = append(sw.buf, sw.text[start:]...)
		sw.buf = append(sw.buf, `",`...)
	}
	sw.buf = append(sw.buf, `"logprobs":null,"finish_reason":null}]}`+"\n\n"...)
	sw.flush()
	if sw.s.cfg.RecordTimings {
		sw.written = append(sw.written, time.Now())
	}
}

// error ends a stream with an error chunk and no [DONE], as vLLM does when generation fails.
func (sw *streamWriter) error(msg string) {
	if !sw.stream {
		writeError(sw.w, http.StatusInternalServerError, msg)
		return
	}
	m, _ := json.Marshal(msg)
	sw.buf = append(sw.buf[:0], `data: {"error":{"message":`...)
	sw.buf = append(sw.buf, m...)
	sw.buf = append(sw.buf, `,"type":"InternalServerError","code":500}}`+"\n\n"...)
	sw.flush()
}

// finish sends the finish reason, usage when asked for, and [DONE]; or the whole non-streaming
// answer.
func (sw *streamWriter) finish(promptTokens, completionTokens int, stopped bool) {
	reason := `"length"`
	if stopped {
		reason = `"stop"`
	}
	usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`,
		promptTokens, completionTokens, promptTokens+completionTokens)
	if !sw.stream {
		text, _ := json.Marshal(string(sw.text))
		obj, choice := "text_completion", `{"index":0,"text":`+string(text)+`,"logprobs":null,"finish_reason":`+reason+`}`
		if sw.chat {
			obj = "chat.completion"
			choice = `{"index":0,"message":{"role":"assistant","content":` + string(text) + `},"logprobs":null,"finish_reason":` + reason + `}`
		}
		sw.w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(sw.w, `{"id":%q,"object":%q,"created":%d,"model":%s,"choices":[%s],"usage":%s}`,
			sw.id, obj, sw.created, sw.s.modelJSON, choice, usage)
		return
	}
	sw.chunkHead()
	if sw.chat {
		sw.buf = append(sw.buf, `{"index":0,"delta":{},"logprobs":null,"finish_reason":`...)
	} else {
		sw.buf = append(sw.buf, `{"index":0,"text":"","logprobs":null,"finish_reason":`...)
	}
	sw.buf = append(sw.buf, reason...)
	sw.buf = append(sw.buf, "}]}\n\n"...)
	sw.flush()
	if sw.usage {
		sw.chunkHead()
		sw.buf = append(sw.buf, `],"usage":`...)
		sw.buf = append(sw.buf, usage...)
		sw.buf = append(sw.buf, "}\n\n"...)
		sw.flush()
	}
	sw.buf = append(sw.buf[:0], "data: [DONE]\n\n"...)
	sw.flush()
}
