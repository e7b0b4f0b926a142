// Package adapt reads a deployment's live traffic from Prometheus (the Dynamo frontend's metrics),
// compares it with the DGDR's workload, and when they drift re-plans with the observed workload,
// predicting the live configuration the same way as a baseline. It is pure: the HTTP client is passed in.
package adapt

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxResponseBytes bounds what one query may return: a few histograms of one model are kilobytes.
const maxResponseBytes = 4 << 20

// Prometheus is a client of the Prometheus HTTP API's instant queries.
type Prometheus struct {
	// BaseURL is the server's base URL, such as http://prometheus.monitoring:9090.
	BaseURL string
	// Client makes the requests (nil: a client with a 30 s timeout).
	Client *http.Client
}

// Sample is one series of an instant vector: its labels and value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query evaluates expr at time at and returns the instant vector.
func (p *Prometheus) Query(ctx context.Context, expr string, at time.Time) ([]Sample, error) {
	base, err := url.Parse(p.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("prometheus url %q: expected an http or https URL with a host", p.BaseURL)
	}
	u := base.JoinPath("api", "v1", "query")
	form := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("querying prometheus: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	c := p.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("querying prometheus at %s: %w", p.BaseURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading prometheus's answer: %w", err)
	}
	if len(body) > maxResponseBytes {
		return nil, fmt.Errorf("prometheus's answer to %q is over %d bytes: expected a few series", expr, maxResponseBytes)
	}
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("prometheus at %s answered HTTP %d with no API response (is it the Prometheus base URL?): %w", p.BaseURL, resp.StatusCode, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus refused %q: %s: %s", expr, r.ErrorType, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus answered %q with a %s: expected an instant vector", expr, r.Data.ResultType)
	}
	out := make([]Sample, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		str, ok := s.Value[1].(string)
		if !ok {
			return nil, fmt.Errorf("prometheus answered %q with a malformed sample %v", expr, s.Value)
		}
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus answered %q with a malformed value %q: %w", expr, str, err)
		}
		out = append(out, Sample{Labels: s.Metric, Value: v})
	}
	return out, nil
}

// scalar is the single value of a query that aggregates to one series (NaN when there is none:
// no traffic in the window).
func (p *Prometheus) scalar(ctx context.Context, expr string, at time.Time) (float64, error) {
	s, err := p.Query(ctx, expr, at)
	switch {
	case err != nil:
		return 0, err
	case len(s) == 0:
		return math.NaN(), nil
	case len(s) > 1:
		return 0, fmt.Errorf("prometheus answered %q with %d series: expected one", expr, len(s))
	}
	return s[0].Value, nil
}
