package profile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"sync"
)

// Bands are the p10–p90 intervals of a prediction: where the measured value fell for 80% of the
// calibration rows the model predicted in the same situation (see IntervalTable). All zero when the
// binary has no interval for the situation.
type Bands struct {
	TTFTP10Ms                float64 `json:"ttftP10Ms,omitempty"`
	TTFTP90Ms                float64 `json:"ttftP90Ms,omitempty"`
	ITLP10Ms                 float64 `json:"itlP10Ms,omitempty"`
	ITLP90Ms                 float64 `json:"itlP90Ms,omitempty"`
	TokensPerSecondPerGPUP10 float64 `json:"tokensPerSecondPerGPUP10,omitempty"`
	TokensPerSecondPerGPUP90 float64 `json:"tokensPerSecondPerGPUP90,omitempty"`
}

// IntervalTable is the embedded interval calibration (tables/intervals.json), written by
// `make calibrate` (internal/calib.FitIntervals): quantiles of the log residual
// ln(measured/predicted) of the calibration rows, per situation that drives the error.
type IntervalTable struct {
	Method string `json:"method"`
	// Calibrated are the architectures (Model.ArchKey) that have calibration rows: their predictions
	// take the cells fitted on the shipped calibration's own residuals; every other model takes the
	// cells of leave-one-model-out residuals (each model predicted by a fit that never saw it).
	Calibrated []string       `json:"calibrated"`
	Cells      []IntervalCell `json:"cells"`
}

// IntervalCell is the residual quantiles of one situation. Backend and Method empty, or Mode empty,
// pool over them: a prediction takes the most specific cell the table has (see Lookup).
type IntervalCell struct {
	Backend    string `json:"backend,omitempty"`
	Mode       Mode   `json:"mode,omitempty"`
	Method     Method `json:"method,omitempty"`
	Calibrated bool   `json:"calibrated"`
	// Shots, when not 0, makes this a corrected cell: the residuals of predictions corrected by that
	// many measured rows of their own architecture, GPU, backend and mode (a cluster's calibration
	// store, see Correction), left one model out. Corrected cells pool over backends and modes only.
	Shots int `json:"shots,omitempty"`
	Rows  int `json:"rows"`
	// TTFT, ITL and E2E are the p10 and p90 of ln(measured/predicted) of TTFT, ITL and a request's
	// whole latency TTFT + (OSL−1)·ITL (which sets the throughput of a closed loop).
	TTFT [2]float64 `json:"ttft"`
	ITL  [2]float64 `json:"itl"`
	E2E  [2]float64 `json:"e2e"`
}

// IntervalKey is a situation: what the residuals are conditioned on.
type IntervalKey struct {
	Backend    string
	Mode       Mode
	Method     Method
	Calibrated bool
	// Shots is the bucket (ShotsBucket) of the measured rows behind the prediction's correction; 0
	// when uncorrected.
	Shots int
}

// IntervalLevels are the keys a situation pools into, most specific first: its own cell, then all
// backends, then all methods, then all modes. FitIntervals writes a cell at each level that has enough
// rows, and Lookup takes the first the table has. A corrected situation (Shots > 0) has three levels,
// its backend and mode, its mode and all modes, and falls back to the uncorrected levels.
func IntervalLevels(k IntervalKey) []IntervalKey {
	plain := []IntervalKey{
		{Backend: k.Backend, Mode: k.Mode, Method: k.Method, Calibrated: k.Calibrated},
		{Mode: k.Mode, Method: k.Method, Calibrated: k.Calibrated},
		{Mode: k.Mode, Calibrated: k.Calibrated},
		{Calibrated: k.Calibrated},
	}
	if k.Shots > 0 {
		return append([]IntervalKey{{Backend: k.Backend, Mode: k.Mode, Shots: k.Shots}, {Mode: k.Mode, Shots: k.Shots}, {Shots: k.Shots}}, plain...)
	}
	return plain
}

// ShotBuckets are the corrected cells' Shots: a correction of n rows takes the largest bucket ≤ n.
var ShotBuckets = []int{1, 3, 5}

// ShotsBucket is the Shots of a correction fitted on n rows (0 for none).
func ShotsBucket(n int) int {
	b := 0
	for _, s := range ShotBuckets {
		if n >= s {
			b = s
		}
	}
	return b
}

// Key is the cell's situation.
func (c IntervalCell) Key() IntervalKey {
	return IntervalKey{Backend: c.Backend, Mode: c.Mode, Method: c.Method, Calibrated: c.Calibrated, Shots: c.Shots}
}

// Lookup returns the most specific cell for k (false when the table has none at any level).
func (t *IntervalTable) Lookup(k IntervalKey) (IntervalCell, bool) {
	for _, l := range IntervalLevels(k) {
		if i := slices.IndexFunc(t.Cells, func(c IntervalCell) bool { return c.Key() == l }); i >= 0 {
			return t.Cells[i], true
		}
	}
	return IntervalCell{}, false
}

// IsCalibrated says whether m's architecture has calibration rows.
func (t *IntervalTable) IsCalibrated(m Model) bool { return slices.Contains(t.Calibrated, m.ArchKey()) }

// Bands applies the cell to a prediction. The point prediction is kept inside its interval (a cell
// whose residuals all lie on one side widens to it), so that it stays the median the SLA quantiles
// interpolate through (see Quantile).
func (c IntervalCell) Bands(p Prediction) Bands {
	lo := func(q float64) float64 { return math.Exp(min(q, 0)) }
	hi := func(q float64) float64 { return math.Exp(max(q, 0)) }
	return Bands{
		TTFTP10Ms: p.TTFTMs * lo(c.TTFT[0]), TTFTP90Ms: p.TTFTMs * hi(c.TTFT[1]),
		ITLP10Ms: p.ITLMs * lo(c.ITL[0]), ITLP90Ms: p.ITLMs * hi(c.ITL[1]),
		// A slower request (a larger whole latency) is a lower throughput.
		TokensPerSecondPerGPUP10: p.TokensPerSecondPerGPU / hi(c.E2E[1]),
		TokensPerSecondPerGPUP90: p.TokensPerSecondPerGPU / lo(c.E2E[0]),
	}
}

// intervalFile is the embedded interval table in tables/.
const intervalFile = "intervals.json"

var loadIntervals = sync.OnceValues(func() (*IntervalTable, error) {
	b, err := tableFS.ReadFile("tables/" + intervalFile)
	if errors.Is(err, fs.ErrNotExist) {
		return &IntervalTable{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read embedded intervals: %w", err)
	}
	var t IntervalTable
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("parse embedded intervals: %w", err)
	}
	for _, c := range t.Cells {
		if c.TTFT[0] > c.TTFT[1] || c.ITL[0] > c.ITL[1] || c.E2E[0] > c.E2E[1] {
			return nil, fmt.Errorf("embedded intervals: cell %+v has p10 above p90", c.Key())
		}
	}
	return &t, nil
})

// EmbeddedIntervals returns the interval table the binary ships.
func EmbeddedIntervals() (IntervalTable, error) {
	t, err := loadIntervals()
	if err != nil {
		return IntervalTable{}, err
	}
	return *t, nil
}

// z90 is the standard normal's 90th percentile: p10 and p90 lie z90 standard deviations from the median.
const z90 = 1.2815515655446004

// Quantile is the q-quantile (0 < q < 1) of a quantity predicted as point with the interval
// [p10, p90]. The distribution assumed is the one the intervals are fitted in: log-normal around the
// point prediction as median, with the spread of each side set by its bound (a split log-normal:
// ln x = ln point + σ·Φ⁻¹(q), σ = ln(p90/point)/z90 above the median and ln(point/p10)/z90 below).
// q = 0.5 is the point prediction itself, and without an interval (p10 or p90 zero) every quantile is.
func Quantile(point, p10, p90, q float64) float64 {
	if q == 0.5 || p10 <= 0 || p90 <= 0 || point <= 0 {
		return point
	}
	z := math.Sqrt2 * math.Erfinv(2*q-1)
	s := math.Log(p90/point) / z90
	if z < 0 {
		s = math.Log(point/p10) / z90
	}
	return point * math.Exp(s*z)
}

// Probability is P(x ≤ limit) under the distribution of Quantile. Without an interval it is 1 when
// point ≤ limit, else 0.
func Probability(point, p10, p90, limit float64) float64 {
	if p10 <= 0 || p90 <= 0 || point <= 0 || limit <= 0 {
		if point <= limit {
			return 1
		}
		return 0
	}
	d := math.Log(limit / point)
	s := math.Log(p90/point) / z90
	if d < 0 {
		s = math.Log(point/p10) / z90
	}
	if s <= 0 {
		if d >= 0 {
			return 1
		}
		return 0
	}
	return 0.5 * math.Erfc(-d/s/math.Sqrt2)
}

// TTFTQuantile is c's predicted TTFT at quantile q (see Quantile).
func (c Config) TTFTQuantile(q float64) float64 {
	return Quantile(c.TTFTMs, c.TTFTP10Ms, c.TTFTP90Ms, q)
}

// ITLQuantile is c's predicted ITL at quantile q (see Quantile).
func (c Config) ITLQuantile(q float64) float64 { return Quantile(c.ITLMs, c.ITLP10Ms, c.ITLP90Ms, q) }
