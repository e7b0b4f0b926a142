package adapt

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// The Dynamo frontend's metrics the traffic is read from.
const (
	MetricInputTokens  = "dynamo_frontend_input_sequence_tokens"
	MetricOutputTokens = "dynamo_frontend_output_sequence_tokens"
	MetricRequests     = "dynamo_frontend_requests_total"
	MetricTTFT         = "dynamo_frontend_time_to_first_token_seconds"
	MetricITL          = "dynamo_frontend_inter_token_latency_seconds"
	// LabelModel is the label that carries the served model's name.
	LabelModel = "model"
)

// Lengths are the observed sequence lengths: the median and p90 as Prometheus's histogram_quantile
// gives them, and the histogram itself (what a re-plan searches with).
type Lengths struct {
	P50       float64                  `json:"p50"`
	P90       float64                  `json:"p90"`
	Histogram v1alpha1.LengthHistogram `json:"histogram"`
}

// Latency is an observed latency's median and p90 in milliseconds (NaN-free: 0 when not exported).
type Latency struct {
	P50Ms float64 `json:"p50Ms"`
	P90Ms float64 `json:"p90Ms"`
}

// Observed is a model's traffic over a window.
type Observed struct {
	Model  string    `json:"model"`
	Window string    `json:"window"`
	At     time.Time `json:"at"`
	// Requests is the number of requests in the window; RequestRate their rate per second.
	Requests    float64 `json:"requests"`
	RequestRate float64 `json:"requestRate"`
	ISL         Lengths `json:"isl"`
	OSL         Lengths `json:"osl"`
	TTFT        Latency `json:"ttft"`
	ITL         Latency `json:"itl"`
}

// promWindow writes a window as a Prometheus range (whole seconds).
func promWindow(d time.Duration) string {
	return strconv.FormatInt(max(int64(d/time.Second), 1), 10) + "s"
}

// ErrNoTraffic is Observe's error when the window holds no traffic of the model, or too little to judge:
// nothing is wrong yet (a new deployment, a quiet hour), there is only nothing to compare.
var ErrNoTraffic = errors.New("not enough traffic")

// Observe reads model's traffic over the window ending at at. It fails when the frontend's metrics
// are absent or the window saw fewer than minRequests requests (too few to say anything).
func Observe(ctx context.Context, p *Prometheus, model string, window time.Duration, at time.Time, minRequests float64) (Observed, error) {
	o := Observed{Model: model, Window: promWindow(window), At: at}
	sel := fmt.Sprintf("{%s=%s}", LabelModel, strconv.Quote(model))
	rng := "[" + o.Window + "]"
	var err error
	if o.Requests, err = p.scalar(ctx, "sum(increase("+MetricRequests+sel+rng+"))", at); err != nil {
		return o, err
	}
	if math.IsNaN(o.Requests) {
		return o, fmt.Errorf("%w: prometheus has no %s for model %q in the last %s: expected the Dynamo frontend's metrics (is Prometheus scraping the frontend, and is the model name the served one?)",
			ErrNoTraffic, MetricRequests, model, o.Window)
	}
	if o.Requests < minRequests {
		return o, fmt.Errorf("%w: model %q served %.0f requests in the last %s: expected at least %.0f to compare the traffic (widen the window)",
			ErrNoTraffic, model, o.Requests, o.Window, minRequests)
	}
	o.RequestRate = o.Requests / window.Seconds()
	for _, l := range []struct {
		metric string
		into   *Lengths
	}{{MetricInputTokens, &o.ISL}, {MetricOutputTokens, &o.OSL}} {
		if *l.into, err = lengths(ctx, p, l.metric, sel, rng, at); err != nil {
			return o, err
		}
	}
	for _, l := range []struct {
		metric string
		into   *Latency
	}{{MetricTTFT, &o.TTFT}, {MetricITL, &o.ITL}} {
		for _, q := range []struct {
			q    float64
			into *float64
		}{{0.5, &l.into.P50Ms}, {0.9, &l.into.P90Ms}} {
			v, err := p.scalar(ctx, quantileExpr(q.q, l.metric, sel, rng), at)
			if err != nil {
				return o, err
			}
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				*q.into = v * 1000
			}
		}
	}
	return o, nil
}

func quantileExpr(q float64, metric, sel, rng string) string {
	return fmt.Sprintf("histogram_quantile(%g, sum by (le) (rate(%s_bucket%s%s)))", q, metric, sel, rng)
}

// lengths reads one length histogram: its quantiles from Prometheus and its buckets' increases.
func lengths(ctx context.Context, p *Prometheus, metric, sel, rng string, at time.Time) (Lengths, error) {
	var l Lengths
	for _, q := range []struct {
		q    float64
		into *float64
	}{{0.5, &l.P50}, {0.9, &l.P90}} {
		v, err := p.scalar(ctx, quantileExpr(q.q, metric, sel, rng), at)
		if err != nil {
			return l, err
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return l, fmt.Errorf("prometheus has no %s_bucket observations for %s in the window: expected the frontend's histogram", metric, sel)
		}
		*q.into = v
	}
	buckets, err := p.Query(ctx, "sum by (le) (increase("+metric+"_bucket"+sel+rng+"))", at)
	if err != nil {
		return l, err
	}
	h, err := histogram(buckets)
	if err != nil {
		return l, fmt.Errorf("%s: %w", metric, err)
	}
	l.Histogram = h
	return l, nil
}

// histogram turns Prometheus's cumulative buckets (label le) into per-bucket counts with whole-token
// bounds. As histogram_quantile does, the +Inf bucket's lengths count at the last finite bound.
func histogram(buckets []Sample) (v1alpha1.LengthHistogram, error) {
	type bucket struct{ le, cum float64 }
	var bs []bucket
	for _, s := range buckets {
		le, err := strconv.ParseFloat(s.Labels["le"], 64)
		if err != nil {
			return v1alpha1.LengthHistogram{}, fmt.Errorf("bucket label le=%q: expected a number", s.Labels["le"])
		}
		bs = append(bs, bucket{le, max(s.Value, 0)})
	}
	slices.SortFunc(bs, func(a, b bucket) int {
		switch {
		case a.le < b.le:
			return -1
		case a.le > b.le:
			return 1
		}
		return 0
	})
	var h v1alpha1.LengthHistogram
	prev := 0.0
	for _, b := range bs {
		n := max(b.cum-prev, 0) // counter resets can make increases slightly non-monotone
		prev = max(prev, b.cum)
		bound := math.Min(math.Ceil(b.le), v1alpha1.MaxSequenceLength)
		k := len(h.UpperBounds)
		switch {
		case math.IsInf(b.le, 1) || (k > 0 && int32(bound) <= h.UpperBounds[k-1]):
			if k == 0 {
				return h, fmt.Errorf("only a +Inf bucket: expected finite bucket bounds")
			}
			h.Counts[k-1] += n
		case bound < 1:
			// Lengths of 0 tokens: count them in the first bucket of at least one token.
			prev -= n
		default:
			h.UpperBounds = append(h.UpperBounds, int32(bound))
			h.Counts = append(h.Counts, n)
		}
	}
	if len(h.Counts) == 0 {
		return h, fmt.Errorf("no buckets: expected a histogram")
	}
	return h, nil
}
