package v1alpha1

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/dgdr-dev/dgdr/pkg/dist"
)

// Defaults of the workload distributions and of adaptation.
const (
	// DefaultSLAPercentile: with a distribution of input lengths, nine requests in ten must meet TTFT.
	DefaultSLAPercentile  float64 = 90
	DefaultWindow                 = "1h"
	DefaultMinImprovement         = 0.1
)

// Quantiles is d's quantile function (see package dist), or an error saying what is wrong with it.
func (d *LengthDistribution) Quantiles() (dist.Quantiles, error) {
	switch {
	case d.Histogram != nil && len(d.Percentiles) > 0:
		return nil, fmt.Errorf("expected percentiles or a histogram, not both")
	case d.Histogram != nil:
		ub := make([]float64, len(d.Histogram.UpperBounds))
		for i, b := range d.Histogram.UpperBounds {
			ub[i] = float64(b)
		}
		return dist.FromHistogram(ub, d.Histogram.Counts)
	case len(d.Percentiles) > 0:
		ps, vs := make([]float64, len(d.Percentiles)), make([]float64, len(d.Percentiles))
		for i, p := range d.Percentiles {
			ps[i], vs[i] = p.Percentile, float64(p.Tokens)
		}
		return dist.FromPercentiles(ps, vs)
	}
	return nil, fmt.Errorf("expected percentiles or a histogram")
}

// lengthOf is a length field: the single value, else the distribution's median, else the default.
func lengthOf(v *int32, d *LengthDistribution, def int32) int {
	if v != nil {
		return int(*v)
	}
	if d != nil {
		if q, err := d.Quantiles(); err == nil {
			return max(int(math.Round(q.Quantile(0.5))), 1)
		}
	}
	return int(def)
}

// ISLQuantiles is the input-length distribution: islDistribution's, or the single isl (defaulted).
func (s *DynamoGraphDeploymentRequestSpec) ISLQuantiles() (dist.Quantiles, error) {
	if w := s.Workload; w != nil && w.ISL == nil && w.ISLDistribution != nil {
		return w.ISLDistribution.Quantiles()
	}
	return dist.Point(float64(s.ISL())), nil
}

// OSLQuantiles is the output-length distribution: oslDistribution's, or the single osl (defaulted).
func (s *DynamoGraphDeploymentRequestSpec) OSLQuantiles() (dist.Quantiles, error) {
	if w := s.Workload; w != nil && w.OSL == nil && w.OSLDistribution != nil {
		return w.OSLDistribution.Quantiles()
	}
	return dist.Point(float64(s.OSL())), nil
}

// SLAPercentile is the input-length percentile whose requests must meet TTFT, defaulted.
func (s *DynamoGraphDeploymentRequestSpec) SLAPercentile() float64 {
	if s.Workload == nil || s.Workload.SLAPercentile == nil {
		return DefaultSLAPercentile
	}
	return *s.Workload.SLAPercentile
}

// HasDistribution says whether the workload gives either length as a distribution.
func (w *Workload) HasDistribution() bool {
	return w != nil && ((w.ISL == nil && w.ISLDistribution != nil) || (w.OSL == nil && w.OSLDistribution != nil))
}

// Default fills adaptation's unset fields.
func (a *Adaptation) Default() {
	if a.Window == "" {
		a.Window = DefaultWindow
	}
	if a.MinImprovement == nil {
		v := DefaultMinImprovement
		a.MinImprovement = &v
	}
	if a.Mode == "" {
		a.Mode = AdaptRecommend
	}
}

// Limits of the distributions and of adaptation.
const (
	maxWindow         = 30 * 24 * time.Hour
	minWindow         = time.Minute
	maxMinImprovement = 10
)

func validateWorkload(p *field.Path, w *Workload) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateLength(p.Child("isl"), w.ISL)...)
	errs = append(errs, validateLength(p.Child("osl"), w.OSL)...)
	errs = append(errs, validateDistribution(p, "isl", w.ISL, w.ISLDistribution)...)
	errs = append(errs, validateDistribution(p, "osl", w.OSL, w.OSLDistribution)...)
	if v := w.SLAPercentile; v != nil && !(*v > 0 && *v < 100) {
		errs = append(errs, field.Invalid(p.Child("slaPercentile"), *v,
			"expected a percentile strictly between 0 and 100, such as 90 (unset: 90)"))
	}
	if v := w.RequestRate; v != nil && (!(*v > 0) || math.IsInf(*v, 0)) {
		errs = append(errs, field.Invalid(p.Child("requestRate"), *v, "expected requests per second greater than 0"))
	}
	return errs
}

// validateDistribution checks <name>Distribution: not beside <name>, exactly one form, and that form
// well made, every problem on its own field.
func validateDistribution(p *field.Path, name string, single *int32, d *LengthDistribution) field.ErrorList {
	if d == nil {
		return nil
	}
	dp := p.Child(name + "Distribution")
	var errs field.ErrorList
	if single != nil {
		errs = append(errs, field.Invalid(dp, "", fmt.Sprintf("set %s or %sDistribution, not both", name, name)))
	}
	switch {
	case d.Histogram != nil && len(d.Percentiles) > 0:
		return append(errs, field.Invalid(dp, "", "set percentiles or histogram, not both"))
	case d.Histogram == nil && len(d.Percentiles) == 0:
		return append(errs, field.Required(dp, "set percentiles (such as p50, p90, p99) or a histogram"))
	}
	tokens := func(fp *field.Path, v int32) {
		if v < 1 || v > MaxSequenceLength {
			errs = append(errs, field.Invalid(fp, v, fmt.Sprintf("expected 1 to %d tokens", MaxSequenceLength)))
		}
	}
	if ps := d.Percentiles; len(ps) > 0 {
		pp := dp.Child("percentiles")
		for i, x := range ps {
			ip := pp.Index(i)
			if !(x.Percentile > 0 && x.Percentile < 100) {
				errs = append(errs, field.Invalid(ip.Child("percentile"), x.Percentile, "expected a percentile strictly between 0 and 100"))
			} else if i > 0 && !(x.Percentile > ps[i-1].Percentile) {
				errs = append(errs, field.Invalid(ip.Child("percentile"), x.Percentile,
					fmt.Sprintf("expected percentiles strictly increasing: above %v, the one before", ps[i-1].Percentile)))
			}
			tokens(ip.Child("tokens"), x.Tokens)
			if i > 0 && x.Tokens < ps[i-1].Tokens {
				errs = append(errs, field.Invalid(ip.Child("tokens"), x.Tokens,
					fmt.Sprintf("expected lengths non-decreasing with the percentile: at least %d, the length at p%v", ps[i-1].Tokens, ps[i-1].Percentile)))
			}
		}
		if len(ps) > 32 {
			errs = append(errs, field.TooMany(pp, len(ps), 32))
		}
	}
	if h := d.Histogram; h != nil {
		hp := dp.Child("histogram")
		if len(h.UpperBounds) == 0 {
			errs = append(errs, field.Required(hp.Child("upperBounds"), "list the buckets' upper bounds in tokens"))
		}
		if len(h.Counts) != len(h.UpperBounds) {
			errs = append(errs, field.Invalid(hp.Child("counts"), len(h.Counts),
				fmt.Sprintf("expected one count per bucket: %d", len(h.UpperBounds))))
		}
		if len(h.UpperBounds) > 64 {
			errs = append(errs, field.TooMany(hp.Child("upperBounds"), len(h.UpperBounds), 64))
		}
		for i, b := range h.UpperBounds {
			tokens(hp.Child("upperBounds").Index(i), b)
			if i > 0 && b <= h.UpperBounds[i-1] {
				errs = append(errs, field.Invalid(hp.Child("upperBounds").Index(i), b,
					fmt.Sprintf("expected bucket bounds strictly increasing: above %d, the one before", h.UpperBounds[i-1])))
			}
		}
		total := 0.0
		for i, c := range h.Counts {
			if !(c >= 0) || math.IsInf(c, 0) {
				errs = append(errs, field.Invalid(hp.Child("counts").Index(i), c, "expected a finite count of at least 0"))
				continue
			}
			total += c
		}
		if len(h.Counts) > 0 && total == 0 {
			errs = append(errs, field.Invalid(hp.Child("counts"), total, "every count is 0: expected at least one request"))
		}
	}
	return errs
}

// promDuration is a Prometheus duration: units from years to milliseconds, largest first.
var promDuration = regexp.MustCompile(`^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$`)

// ParseWindow reads a Prometheus duration such as 30m, 1h or 1d12h.
func ParseWindow(s string) (time.Duration, error) {
	m := promDuration.FindStringSubmatch(s)
	if s == "" || m == nil {
		return 0, fmt.Errorf("%q is not a duration: expected a Prometheus duration such as 30m, 1h or 1d", s)
	}
	units := []time.Duration{365 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute, time.Second, time.Millisecond}
	var d time.Duration
	for i, u := range units {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.ParseInt(m[i+1], 10, 64)
		if err != nil || n > int64(maxWindow/u)+1 {
			return 0, fmt.Errorf("%q is too long: expected at most %s", s, maxWindow)
		}
		d += time.Duration(n) * u
	}
	return d, nil
}

func validateAdaptation(p *field.Path, a *Adaptation) field.ErrorList {
	var errs field.ErrorList
	if a.PrometheusURL == "" {
		errs = append(errs, field.Required(p.Child("prometheusURL"), "set the Prometheus base URL that scrapes the frontend, such as http://prometheus.monitoring:9090"))
	} else if u, err := url.Parse(a.PrometheusURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, field.Invalid(p.Child("prometheusURL"), a.PrometheusURL, "expected an http or https URL with a host, such as http://prometheus.monitoring:9090"))
	}
	if a.Window != "" {
		if d, err := ParseWindow(a.Window); err != nil {
			errs = append(errs, field.Invalid(p.Child("window"), a.Window, err.Error()))
		} else if d < minWindow || d > maxWindow {
			errs = append(errs, field.Invalid(p.Child("window"), a.Window, fmt.Sprintf("expected %s to %s", minWindow, maxWindow)))
		}
	}
	if v := a.MinImprovement; v != nil && !(*v >= 0 && *v <= maxMinImprovement) {
		errs = append(errs, field.Invalid(p.Child("minImprovement"), *v,
			"expected a fraction of at least 0 (0.1 = 10% more tokens/s/GPU) and at most 10"))
	}
	if a.Mode != "" && !contains(AdaptationModes, a.Mode) {
		errs = append(errs, field.NotSupported(p.Child("mode"), a.Mode, strs(AdaptationModes)))
	}
	return errs
}
