package profile

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/dgdr-dev/dgdr/pkg/hw"
)

// EstimateColumns are the columns EstimateCSV appends: the point predictions, their p10–p90
// intervals (Bands) and, last, why a row has none.
var EstimateColumns = []string{"predicted_ttft_ms", "predicted_tpot_ms", "ttft_p10_ms", "ttft_p90_ms", "itl_p10_ms", "itl_p90_ms", "error"}

// ServingRow is one parsed row: the query and, when present, the measurement.
type ServingRow struct {
	Line        int
	Fields      map[string]string
	Target      Target
	Config      Config
	Concurrency int
	// CountsGiven says the disagg worker counts were in the row (not defaulted).
	CountsGiven bool
	// MeasuredTTFTMs and MeasuredITLMs are 0 when the row has no measurement.
	MeasuredTTFTMs float64
	MeasuredITLMs  float64
	// Err is why the row cannot be predicted (unknown model or GPU, malformed numbers).
	Err error
}

// ModelResolver finds the model of a model_path (LookupModel, or a config given on the command line).
type ModelResolver func(id string) (Model, error)

// ReadServingRows parses a CSV in the calibration layout. Rows that cannot become a query carry Err;
// only a malformed CSV is an error.
func ReadServingRows(r io.Reader, resolve ModelResolver) (header []string, rows []ServingRow, err error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err = cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("read csv header: %w", err)
	}
	for i := range header {
		header[i] = strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff"))
	}
	line := 1
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return header, rows, nil
		}
		line++
		if err != nil {
			return nil, nil, fmt.Errorf("read csv line %d: %w", line, err)
		}
		f := make(map[string]string, len(header))
		for i, h := range header {
			if i < len(rec) {
				f[h] = strings.TrimSpace(rec[i])
			}
		}
		row := ServingRow{Line: line, Fields: f}
		row.Err = row.parse(resolve)
		rows = append(rows, row)
	}
}

func (r *ServingRow) parse(resolve ModelResolver) error {
	f := r.Fields
	var perr error
	num := func(k string, def int) int {
		v := f[k]
		if v == "" {
			return def
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < 0 || n != math.Trunc(n) {
			perr = errors.Join(perr, fmt.Errorf("column %s: %q is not a non-negative integer", k, v))
			return def
		}
		return int(n)
	}
	fl := func(k string) float64 {
		v := f[k]
		if v == "" {
			return 0
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			perr = errors.Join(perr, fmt.Errorf("column %s: %q is not a number", k, v))
		}
		return n
	}
	r.MeasuredTTFTMs, r.MeasuredITLMs = fl("silicon_ttft_ms"), fl("silicon_tpot_ms")
	if f["model_path"] == "" {
		return errors.New("column model_path is empty: expected a Hugging Face model id")
	}
	m, err := resolve(f["model_path"])
	if err != nil {
		return err
	}
	g, err := hw.Lookup(f["system"])
	if err != nil {
		return err
	}
	t := Target{Model: m, GPU: g, Backend: strings.ToLower(f["backend"]),
		Workload: Workload{ISL: num("isl", 0), OSL: num("osl", 0)}}
	// gemm_quant_mode and moe_quant_mode name the two precisions; precision alone stands for both.
	t.WeightDtype, t.MoEDtype = f["gemm_quant_mode"], f["moe_quant_mode"]
	if t.WeightDtype == "" && t.MoEDtype == "" {
		t.WeightDtype = f["precision"]
	}
	r.Target = t
	conc := num("concurrency", 0)
	moe := m.Experts > 0
	worker := func(prefix string, role Role) Worker {
		w := Worker{Role: role, Count: num(prefix+"num_workers", 0), TP: num(prefix+"tp_size", 1),
			PP: num(prefix+"pp_size", 1), DP: max(num(prefix+"attention_dp_size", 1), 1), EP: 1}
		if moe {
			w.EP = max(num(prefix+"moe_ep_size", 1), 1)
		}
		w.Batch = num(prefix+"batch_size", 0) * w.DP
		if moe {
			unsquare(&w, max(num(prefix+"moe_tp_size", 1), 1))
		}
		return w
	}
	switch Mode(strings.ToLower(f["mode"])) {
	case ModeAgg:
		w := worker("", RoleAgg)
		w.Count = max(w.Count, 1)
		if conc <= 0 {
			conc = w.Batch
		}
		if w.Batch == 0 {
			w.Batch = conc
		}
		r.Config = Config{Backend: t.Backend, Mode: ModeAgg, Replicas: 1, Workers: []Worker{w}}
	case ModeDisagg:
		// The disaggregated campaigns decode with the model's MTP modules as drafters (their ITLs are
		// below what the same decode batch takes aggregated, most at small batch, as speculation
		// gives); the rows do not record it, so rows of models that ship MTP modules are read with
		// assumedSpecDraft drafts and the fitted acceptance.
		if m.MTPLayers > 0 {
			r.Target.SpecDraft = assumedSpecDraft
		}
		pw, dw := worker("prefill_", RolePrefill), worker("decode_", RoleDecode)
		r.CountsGiven = pw.Count > 0 && dw.Count > 0
		if conc <= 0 {
			conc = dw.Batch * max(dw.Count, 1)
		}
		r.Config = Config{Backend: t.Backend, Mode: ModeDisagg, Replicas: 1, Workers: []Worker{pw, dw}}
	default:
		return fmt.Errorf("column mode: %q, expected agg or disagg", f["mode"])
	}
	if perr != nil {
		return perr
	}
	if conc <= 0 {
		return errors.New("no concurrency: expected a concurrency column or a batch size")
	}
	r.Concurrency = conc
	return nil
}

// assumedSpecDraft is the draft length of the MTP speculative decoding the disaggregated rows are read
// with: three, the nextn of the published DeepSeek-R1 disaggregated recipes of TensorRT-LLM and
// SGLang's EAGLE/MTP default of three steps.
const assumedSpecDraft = 3

// unsquare repairs a worker recorded with its GPU count squared: some MoE rows of the calibration
// source give a g-GPU worker (attention TP or DP g, experts EP g, as the row's id names it) as
// tp_size (or attention_dp_size) g² with moe_tp_size = moe_ep_size = g. An MoE layer split g ways in
// tensor parallelism and g ways in expert parallelism is not a configuration the backends offer
// with attention TP or DP of g², so moe_tp_size = moe_ep_size = g with tp×dp = g² is read as g
// GPUs. The worker's total batch (batch_size × the recorded DP) is kept.
func unsquare(w *Worker, moeTP int) {
	g := w.EP
	if g <= 1 || moeTP != g || w.TP*w.DP != g*g {
		return
	}
	if w.DP > 1 {
		w.DP = g
	} else {
		w.TP = g
	}
}

// completeDisagg fills missing disagg worker counts and decode batch (see the rule above).
func completeDisagg(p *Predictor, c Config, conc int) (Config, error) {
	c.Workers = append([]Worker(nil), c.Workers...)
	pi, di := 0, 1
	if c.Workers[0].Role != RolePrefill {
		pi, di = 1, 0
	}
	pw, dw := c.Workers[pi], c.Workers[di]
	if dw.Count <= 0 {
		maxD, err := p.MaxBatch(dw)
		if err != nil {
			return c, err
		}
		dw.Count = max(1, (conc+maxD-1)/maxD)
	}
	if dw.Batch <= 0 {
		dw.Batch = (conc + dw.Count - 1) / dw.Count
	}
	if pw.Count <= 0 {
		pw.Count = 1
		probe := Config{Mode: ModeDisagg, Replicas: 1, Workers: []Worker{pw, dw}}
		pr, err := p.Predict(probe, conc)
		if err != nil {
			return c, err
		}
		// Rate matching: enough prefill workers for the decode pool's rate when prefill is not the limit.
		decodeRate := float64(dw.Count*max(dw.DP, 1)) * math.Min(float64(conc)/float64(dw.Count), float64(dw.Batch)) /
			(float64(p.t.Workload.OSL-1)*pr.ITLMs + pr.PrefillMs) * 1000
		if pr.RequestsPerSecond > 0 && decodeRate > pr.RequestsPerSecond {
			pw.Count = max(1, int(math.Round(decodeRate/pr.RequestsPerSecond*p.cal.PrefillShare)))
		}
	}
	c.Workers[pi], c.Workers[di] = pw, dw
	return c, nil
}

// estimateRow predicts one parsed row with the predictor cache of the caller.
func estimateRow(row *ServingRow, cache map[string]*Predictor) (Prediction, error) {
	if row.Err != nil {
		return Prediction{}, row.Err
	}
	t := row.Target
	key := t.key()
	p := cache[key]
	if p == nil {
		var err error
		if p, err = NewPredictor(t); err != nil {
			return Prediction{}, err
		}
		cache[key] = p
	}
	return p.PredictRow(row)
}

// raisedMemFraction is the memory fraction a row is read with when the backend's default leaves no
// room for the weights: the row was measured, so its operator raised --mem-fraction-static or
// --gpu-memory-utilization, as large deployments do, to about this.
const raisedMemFraction = 0.95

// PredictRow predicts a parsed row, its disaggregated worker counts completed from its concurrency.
func (p *Predictor) PredictRow(row *ServingRow) (Prediction, error) {
	pred, err := predictRowOnce(p, row)
	var fe *FitError
	if errors.As(err, &fe) && !p.cal.FractionOfFree && p.cal.MemFraction < raisedMemFraction {
		raised := *p
		raised.cal.MemFraction = raisedMemFraction
		return predictRowOnce(&raised, row)
	}
	return pred, err
}

func predictRowOnce(p *Predictor, row *ServingRow) (Prediction, error) {
	c := row.Config
	if c.Mode == ModeDisagg {
		var err error
		if c, err = completeDisagg(p, c, row.Concurrency); err != nil {
			return Prediction{}, err
		}
	}
	return p.Predict(c, row.Concurrency)
}

// EstimateSummary counts what EstimateCSV did.
type EstimateSummary struct {
	Rows, Predicted int
}

// EstimateCSV reads rows in the calibration layout from r and writes them to w with EstimateColumns
// appended (error empty when predicted; the predictions empty when not).
func EstimateCSV(r io.Reader, w io.Writer, resolve ModelResolver) (EstimateSummary, error) {
	header, rows, err := ReadServingRows(r, resolve)
	if err != nil {
		return EstimateSummary{}, err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(append(append([]string(nil), header...), EstimateColumns...)); err != nil {
		return EstimateSummary{}, fmt.Errorf("write csv: %w", err)
	}
	cache := map[string]*Predictor{}
	var sum EstimateSummary
	for i := range rows {
		row := &rows[i]
		sum.Rows++
		rec := make([]string, 0, len(header)+len(EstimateColumns))
		for _, h := range header {
			rec = append(rec, row.Fields[h])
		}
		pred, err := estimateRow(row, cache)
		if err != nil {
			rec = append(rec, "", "", "", "", "", "", strings.Join(strings.Fields(err.Error()), " "))
		} else {
			sum.Predicted++
			ms := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
			rec = append(rec, ms(pred.TTFTMs, 3), ms(pred.ITLMs, 4),
				ms(pred.TTFTP10Ms, 3), ms(pred.TTFTP90Ms, 3), ms(pred.ITLP10Ms, 4), ms(pred.ITLP90Ms, 4), "")
		}
		if err := cw.Write(rec); err != nil {
			return sum, fmt.Errorf("write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return sum, fmt.Errorf("write csv: %w", err)
	}
	return sum, nil
}
