package bench

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Endpoint is the OpenAI API the benchmark calls.
type Endpoint string

const (
	// EndpointChat is /v1/chat/completions: the prompt goes through the model's chat template.
	EndpointChat Endpoint = "chat"
	// EndpointCompletions is /v1/completions: the prompt is sent as raw text.
	EndpointCompletions Endpoint = "completions"
)

// Path is the request path of the endpoint.
func (e Endpoint) Path() string {
	if e == EndpointCompletions {
		return "/v1/completions"
	}
	return "/v1/chat/completions"
}

// Options configure one benchmark run. The zero value of each optional field is a sensible
// default; Concurrency or Rates, and Requests or Duration, must be set.
type Options struct {
	// URL is the server's base URL, e.g. http://frontend:8000 (a trailing /v1 is accepted).
	URL string
	// Model is the served model name; empty asks the server's /v1/models and uses the first one.
	Model string
	// APIKey, when set, is sent as "Authorization: Bearer <key>".
	APIKey string
	// Endpoint is chat (default) or completions.
	Endpoint Endpoint
	// ISL is the input length in tokens (approximate, see Prompt); OSL the output length.
	ISL, OSL int

	// Concurrency lists closed-loop levels (concurrent users); Rates lists open-loop levels
	// (requests per second, Poisson arrivals). Exactly one of them is set.
	Concurrency []int
	Rates       []float64

	// Requests is the number of measured requests per level; Duration instead sends measured
	// requests for that long per level (requests in flight at the end still complete and count).
	// Exactly one of them is set.
	Requests int
	Duration time.Duration
	// Warmup is the number of requests sent at the start of each level, at that level's load,
	// and left out of its statistics; negative means one per concurrent user (closed loop) or
	// one second's worth of arrivals (open loop).
	Warmup int

	// Seed seeds the prompts' words and the Poisson arrivals, so two runs send the same load.
	Seed uint64
	// SkipCalibration sends ISL words as is instead of first fitting words to tokens with two
	// probe requests (see Calibration).
	SkipCalibration bool
	// ExtraBody adds or overrides top-level fields of every request body (e.g. "nvext" for
	// Dynamo-specific options, or "ignore_eos": false for a server that rejects it).
	ExtraBody map[string]any
	// RequestTimeout bounds one request; zero means no limit beyond the context.
	RequestTimeout time.Duration
	// HTTPClient sends the requests; nil uses NewHTTPClient sized for the largest level.
	HTTPClient *http.Client
	// Progress, when set, is called after each level (e.g. to print progress on stderr).
	Progress func(LevelResult)
}

// maxErrorMessages is how many distinct error messages a level keeps.
const maxErrorMessages = 5

// Validate checks the options without contacting the server.
func (o *Options) Validate() error {
	var errs []error
	if o.URL == "" {
		errs = append(errs, errors.New("url is required"))
	} else if !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
		errs = append(errs, fmt.Errorf("url %q must start with http:// or https://", o.URL))
	}
	switch o.Endpoint {
	case "", EndpointChat, EndpointCompletions:
	default:
		errs = append(errs, fmt.Errorf("endpoint %q is not one of chat, completions", o.Endpoint))
	}
	if o.ISL < 1 {
		errs = append(errs, fmt.Errorf("isl must be at least 1 token, got %d", o.ISL))
	}
	if o.OSL < 1 {
		errs = append(errs, fmt.Errorf("osl must be at least 1 token, got %d", o.OSL))
	}
	switch {
	case len(o.Concurrency) == 0 && len(o.Rates) == 0:
		errs = append(errs, errors.New("set concurrency levels or request rates"))
	case len(o.Concurrency) > 0 && len(o.Rates) > 0:
		errs = append(errs, errors.New("set concurrency levels or request rates, not both"))
	}
	for _, c := range o.Concurrency {
		if c < 1 {
			errs = append(errs, fmt.Errorf("concurrency must be at least 1, got %d", c))
		}
	}
	for _, r := range o.Rates {
		if !(r > 0) {
			errs = append(errs, fmt.Errorf("rate must be a positive number of requests per second, got %v", r))
		}
	}
	switch {
	case o.Requests < 0:
		errs = append(errs, fmt.Errorf("requests must not be negative, got %d", o.Requests))
	case o.Duration < 0:
		errs = append(errs, fmt.Errorf("duration must not be negative, got %s", o.Duration))
	case o.Requests == 0 && o.Duration == 0:
		errs = append(errs, errors.New("set a number of requests or a duration per level"))
	case o.Requests > 0 && o.Duration > 0:
		errs = append(errs, errors.New("set a number of requests or a duration per level, not both"))
	}
	if o.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("request timeout must not be negative, got %s", o.RequestTimeout))
	}
	return errors.Join(errs...)
}

// baseURL strips a trailing slash and /v1, so that Endpoint.Path can be appended.
func (o *Options) baseURL() string {
	u := strings.TrimRight(o.URL, "/")
	return strings.TrimSuffix(u, "/v1")
}

func (o *Options) endpoint() Endpoint {
	if o.Endpoint == "" {
		return EndpointChat
	}
	return o.Endpoint
}

// maxInFlight is the most requests one level can have open at once, to size the connection pool.
// Open-loop levels have no bound; 1024 covers rate × latency of any single serving endpoint.
func (o *Options) maxInFlight() int {
	n := 1
	for _, c := range o.Concurrency {
		n = max(n, c)
	}
	if len(o.Rates) > 0 {
		n = max(n, 1024)
	}
	return n
}

// NewHTTPClient returns a client that keeps up to conns connections alive per host, so that
// every concurrent user reuses its connection instead of paying a handshake inside its TTFT. It
// does not ask for compression, which would make the server buffer the stream.
func NewHTTPClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conns
	t.MaxIdleConnsPerHost = conns
	t.DisableCompression = true
	return &http.Client{Transport: t}
}
