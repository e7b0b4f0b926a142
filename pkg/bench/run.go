package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Result is a whole run: one LevelResult per load level, in the order the levels were given.
type Result struct {
	URL         string        `json:"url"`
	Model       string        `json:"model"`
	Endpoint    Endpoint      `json:"endpoint"`
	ISL         int           `json:"isl"`
	OSL         int           `json:"osl"`
	Seed        uint64        `json:"seed"`
	Calibration Calibration   `json:"calibration"`
	Levels      []LevelResult `json:"levels"`
}

// LevelResult is what one load level measured. Latencies are over the measured requests that
// succeeded; warm-up requests are left out of everything.
type LevelResult struct {
	// Concurrency is set for a closed-loop level, Rate (offered requests/s) for an open-loop one.
	Concurrency int     `json:"concurrency,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	// Requests succeeded; Errors failed (HTTP status, transport, error chunk, empty or truncated
	// stream). ErrorMessages holds the first distinct messages.
	Requests      int      `json:"requests"`
	Errors        int      `json:"errors"`
	ErrorMessages []string `json:"errorMessages,omitempty"`
	// DurationSeconds runs from the first measured request sent to the last one finished.
	DurationSeconds float64 `json:"durationSeconds"`
	// ISL and OSL are the actual token counts the server reported in usage (OSL falls back to
	// the number of text chunks when the server reports no usage; ISL is then zero).
	ISL TokenStats `json:"isl"`
	OSL TokenStats `json:"osl"`
	// TTFT runs from sending the request to the first chunk with text.
	TTFT Latency `json:"ttftMs"`
	// ITL is each request's mean inter-token latency, (last text chunk − first) / (OSL − 1),
	// summarised over requests: the per-request figure SLAs and Dynamo's planner use (vLLM calls
	// it TPOT, AIPerf inter_token_latency).
	ITL Latency `json:"itlMs"`
	// TokenGap is the distribution of every gap between consecutive text chunks, pooled over
	// requests (what vLLM's benchmark calls ITL). When chunks carry several tokens each gap is
	// spread evenly over the tokens: it is scaled by (chunks − 1) / (OSL − 1).
	TokenGap Latency `json:"tokenGapMs"`
	// E2E runs from sending the request to [DONE].
	E2E Latency `json:"e2eMs"`
	// OutputTokensPerSecond is all output tokens over DurationSeconds; TokensPerSecondPerUser is
	// 1000 / ITL.Mean, a user's decode speed (the harmonic mean of the requests' speeds, so one
	// request whose tokens came in a burst does not dominate it); RequestsPerSecond is successful
	// requests over DurationSeconds.
	OutputTokensPerSecond  float64 `json:"outputTokensPerSecond"`
	TokensPerSecondPerUser float64 `json:"tokensPerSecondPerUser"`
	RequestsPerSecond      float64 `json:"requestsPerSecond"`
	// Overhead is the client's own cost, part of the latencies above.
	Overhead Overhead `json:"overhead"`
}

// Overhead is what the benchmark client itself added to the measurements.
type Overhead struct {
	// ParseNsPerChunk is the mean time to decode one SSE line and record it, over Chunks lines
	// (warm-up included). It is paid between reading a chunk and waiting for the next one.
	ParseNsPerChunk float64 `json:"parseNsPerChunk"`
	Chunks          int     `json:"chunks"`
	// ArrivalLagMs (open loop only) is how much later than its Poisson arrival time each request
	// was actually sent: scheduler wake-up plus building the body.
	ArrivalLagMs *Latency `json:"arrivalLagMs,omitempty"`
}

// Run benchmarks the endpoint at every level in turn and returns what each measured. When ctx
// ends mid-run it returns the levels finished so far with ctx's error. An endpoint that cannot
// be reached at all fails in the calibration probes, before any level.
func Run(ctx context.Context, o Options) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	r := &runner{o: o, client: o.HTTPClient, url: o.baseURL() + o.endpoint().Path()}
	if r.client == nil {
		r.client = NewHTTPClient(o.maxInFlight())
	}
	model := o.Model
	if model == "" {
		m, err := r.firstModel(ctx)
		if err != nil {
			return Result{}, err
		}
		model = m
	}
	tmpl, err := newBodyTemplate(o.endpoint(), model, o.OSL, o.ExtraBody)
	if err != nil {
		return Result{}, err
	}
	r.tmpl = tmpl
	r.pool.New = func() any { return newStream(o.OSL) }

	res := Result{URL: o.URL, Model: model, Endpoint: o.endpoint(), ISL: o.ISL, OSL: o.OSL, Seed: o.Seed}
	if o.SkipCalibration {
		res.Calibration = Calibration{Words: o.ISL, Note: "calibration skipped: one word per requested token"}
	} else if res.Calibration, err = r.calibrate(ctx, model); err != nil {
		return res, err
	}
	r.words = res.Calibration.Words

	for i, c := range o.Concurrency {
		lr := r.closedLevel(ctx, uint64(i), c)
		res.Levels = append(res.Levels, lr)
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("benchmark interrupted at concurrency %d: %w", c, err)
		}
		if o.Progress != nil {
			o.Progress(lr)
		}
	}
	for i, rate := range o.Rates {
		lr := r.openLevel(ctx, uint64(i), rate)
		res.Levels = append(res.Levels, lr)
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("benchmark interrupted at rate %g: %w", rate, err)
		}
		if o.Progress != nil {
			o.Progress(lr)
		}
	}
	return res, nil
}

type runner struct {
	o      Options
	client *http.Client
	url    string
	tmpl   bodyTemplate
	words  int
	pool   sync.Pool // *stream
}

// body builds request i of a level. Each request has its own seeded word sequence, so prompts
// differ (no prefix-cache hits beyond the chat template) yet every run sends the same ones.
func (r *runner) body(level, i uint64) []byte {
	rng := rand.New(rand.NewPCG(r.o.Seed, level<<40|i))
	return r.tmpl.build(rng, r.words)
}

// send posts body and reads the streamed response into s. start is when the request was sent.
func (r *runner) send(ctx context.Context, body []byte, s *stream) (time.Time, streamStats, error) {
	if r.o.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.o.RequestTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return time.Time{}, streamStats{}, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if r.o.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+r.o.APIKey)
	}
	start := time.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		return start, streamStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return start, streamStats{}, httpError(resp)
	}
	st, err := s.read(resp.Body, start)
	return start, st, err
}

// calibrate sends two probes (ISL and ISL/2 words, one output token) and fits words to tokens.
func (r *runner) calibrate(ctx context.Context, model string) (Calibration, error) {
	probe, err := newBodyTemplate(r.o.endpoint(), model, 1, r.o.ExtraBody)
	if err != nil {
		return Calibration{}, err
	}
	counts := []int{r.o.ISL}
	if r.o.ISL >= 4 {
		counts = append(counts, r.o.ISL/2)
	}
	s := r.pool.Get().(*stream)
	defer r.pool.Put(s)
	rng := rand.New(rand.NewPCG(r.o.Seed, math.MaxUint64))
	var tokens []int
	for _, n := range counts {
		_, st, err := r.send(ctx, probe.build(rng, n), s)
		if err != nil {
			return Calibration{}, fmt.Errorf("probe request to %s failed: %w", r.url, err)
		}
		if !st.hasUsage || st.promptTokens == 0 {
			return Calibration{Words: r.o.ISL, Note: "the server reports no usage: one word per requested token, actual ISL unknown"}, nil
		}
		tokens = append(tokens, st.promptTokens)
	}
	return fitWords(r.o.ISL, counts, tokens), nil
}

// firstModel asks /v1/models for the served model.
func (r *runner) firstModel(ctx context.Context) (string, error) {
	url := r.o.baseURL() + "/v1/models"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("building the request: %w", err)
	}
	if r.o.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+r.o.APIKey)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("listing models at %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("listing models at %s: %w", url, httpError(resp))
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&list); err != nil {
		return "", fmt.Errorf("listing models at %s: expected an OpenAI model list: %w", url, err)
	}
	if len(list.Data) == 0 || list.Data[0].ID == "" {
		return "", fmt.Errorf("listing models at %s: the server serves no model", url)
	}
	return list.Data[0].ID, nil
}

// closedLevel runs c users, each sending its next request as soon as the previous one ends.
func (r *runner) closedLevel(ctx context.Context, level uint64, c int) LevelResult {
	warmup := r.o.Warmup
	if warmup < 0 {
		warmup = c
	}
	col := newCollector(r.o.OSL)
	start := time.Now()
	var next atomic.Uint64
	// measureFrom is when the first measured request was taken (ns since start, +1 so that zero
	// means not yet): the origin of a Duration-bound level.
	var measureFrom atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			s := r.pool.Get().(*stream)
			defer r.pool.Put(s)
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				measured := i >= uint64(warmup)
				if r.o.Requests > 0 && i >= uint64(warmup+r.o.Requests) {
					return
				}
				if r.o.Duration > 0 && measured {
					now := int64(time.Since(start)) + 1
					if !measureFrom.CompareAndSwap(0, now) && time.Duration(now-measureFrom.Load()) >= r.o.Duration {
						return
					}
				}
				body := r.body(level, i)
				sent, st, err := r.send(ctx, body, s)
				col.add(start, sent, st, s, err, measured)
			}
		})
	}
	wg.Wait()
	lr := col.result()
	lr.Concurrency = c
	return lr
}

// openLevel sends requests at Poisson arrival times of the given rate, whatever is in flight.
func (r *runner) openLevel(ctx context.Context, level uint64, rate float64) LevelResult {
	warmup := r.o.Warmup
	if warmup < 0 {
		warmup = int(math.Ceil(rate))
	}
	col := newCollector(r.o.OSL)
	arrivals := rand.New(rand.NewPCG(r.o.Seed, level))
	var lagMu sync.Mutex
	var lags []time.Duration
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	var at, measureFrom time.Duration
	var wg sync.WaitGroup
	for i := uint64(0); ; i++ {
		measured := i >= uint64(warmup)
		if r.o.Requests > 0 && i >= uint64(warmup+r.o.Requests) {
			break
		}
		if r.o.Duration > 0 && measured {
			if i == uint64(warmup) {
				measureFrom = at
			} else if at-measureFrom >= r.o.Duration {
				break
			}
		}
		if d := at - time.Since(start); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		due := at
		wg.Go(func() {
			s := r.pool.Get().(*stream)
			defer r.pool.Put(s)
			body := r.body(level, i)
			sent, st, err := r.send(ctx, body, s)
			lagMu.Lock()
			lags = append(lags, sent.Sub(start)-due)
			lagMu.Unlock()
			col.add(start, sent, st, s, err, measured)
		})
		at += poissonGap(arrivals, rate)
	}
	wg.Wait()
	lr := col.result()
	lr.Rate = rate
	lag := summarize(lags)
	lr.Overhead.ArrivalLagMs = &lag
	return lr
}

// poissonGap draws the time to the next arrival of a Poisson process with the given rate (1/s).
func poissonGap(rng *rand.Rand, rate float64) time.Duration {
	return time.Duration(rng.ExpFloat64() / rate * float64(time.Second))
}

// collector gathers one level's outcomes from concurrent requests.
type collector struct {
	mu                   sync.Mutex
	ttft, itl, gaps, e2e []time.Duration
	isl, osl             []int
	errors               int
	messages             []string
	first, last          time.Duration // window of the measured requests, since level start
	anyMeasured          bool
	parse                time.Duration
	lines                int
}

func newCollector(osl int) *collector {
	return &collector{gaps: make([]time.Duration, 0, min(64*osl, 1<<20))}
}

// add records one request sent at sent, whose stream s read (stats st) or which failed with err.
func (c *collector) add(levelStart, sent time.Time, st streamStats, s *stream, err error, measured bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parse += s.parse
	c.lines += s.lines
	s.parse, s.lines = 0, 0 // a request that fails before its stream is read must not count them again
	if !measured {
		return
	}
	// A failed request occupies the window until it failed; one never sent, from then on.
	now := time.Since(levelStart)
	from, to := now, now
	if !sent.IsZero() {
		from = sent.Sub(levelStart)
	}
	if err == nil {
		to = from + st.end
	}
	if !c.anyMeasured || from < c.first {
		c.first = from
	}
	c.last = max(c.last, to)
	c.anyMeasured = true
	if err != nil {
		c.errors++
		c.note(err)
		return
	}
	k := len(s.stamps)
	n := k // output tokens: usage when reported, else one per text chunk
	if st.hasUsage && st.completionTokens > 0 {
		n = st.completionTokens
		c.isl = append(c.isl, st.promptTokens)
	}
	c.osl = append(c.osl, n)
	c.ttft = append(c.ttft, s.stamps[0])
	c.e2e = append(c.e2e, st.end)
	if k >= 2 && n >= 2 {
		span := s.stamps[k-1] - s.stamps[0]
		c.itl = append(c.itl, span/time.Duration(n-1))
		scale := float64(k-1) / float64(n-1)
		for j := 1; j < k; j++ {
			gap := s.stamps[j] - s.stamps[j-1]
			if k != n {
				gap = time.Duration(float64(gap) * scale)
			}
			c.gaps = append(c.gaps, gap)
		}
	}
}

// note keeps the first distinct error messages, one line each.
func (c *collector) note(err error) {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	if len(c.messages) < maxErrorMessages && !containsString(c.messages, msg) {
		c.messages = append(c.messages, msg)
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (c *collector) result() LevelResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	lr := LevelResult{
		Requests:      len(c.e2e),
		Errors:        c.errors,
		ErrorMessages: c.messages,
		ISL:           tokenStats(c.isl),
		OSL:           tokenStats(c.osl),
		TTFT:          summarize(c.ttft),
		ITL:           summarize(c.itl),
		TokenGap:      summarize(c.gaps),
		E2E:           summarize(c.e2e),
		Overhead:      Overhead{Chunks: c.lines},
	}
	if c.lines > 0 {
		lr.Overhead.ParseNsPerChunk = float64(c.parse.Nanoseconds()) / float64(c.lines)
	}
	if lr.ITL.Mean > 0 {
		lr.TokensPerSecondPerUser = 1000 / lr.ITL.Mean
	}
	if window := (c.last - c.first).Seconds(); window > 0 {
		lr.DurationSeconds = window
		tokens := 0
		for _, n := range c.osl {
			tokens += n
		}
		lr.OutputTokensPerSecond = float64(tokens) / window
		lr.RequestsPerSecond = float64(lr.Requests) / window
	}
	return lr
}

// httpError turns a non-200 response into an error with the server's message.
func httpError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	msg := string(bytes.TrimSpace(raw))
	var body struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(raw, &body) == nil {
		var nested struct {
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(body.Error, &nested) == nil && nested.Message != "":
			msg = nested.Message
		case json.Unmarshal(body.Error, &s) == nil && s != "":
			msg = s
		case body.Message != "":
			msg = body.Message
		case json.Unmarshal(body.Detail, &s) == nil && s != "":
			msg = s
		}
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
}
