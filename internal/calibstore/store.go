// Package calibstore keeps a namespace's own serving measurements and the calibration refitted on
// them: the ConfigMap dgdr-calibration. `kubectl dgdr bench --record` and the thorough search add
// rows, `kubectl dgdr calibrate` refits and stores the fit, and rapid searches in the namespace (the
// profiling Job, `plan --cluster-calibration`) predict with it. docs/accuracy.md describes it.
package calibstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/calib"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

const (
	// Name is the store's ConfigMap in each namespace.
	Name = "dgdr-calibration"
	// KeyRows holds the measurements as CSV in the calibration layout (testdata/calibration's
	// columns, read by profile.ReadServingRows), oldest first.
	KeyRows = "rows.csv"
	// KeyFit holds the refit (Fit as JSON), written by kubectl dgdr calibrate.
	KeyFit = "fit.json"
	// MaxRows bounds the store: appending beyond it drops the oldest rows. At about 200 bytes a row
	// the ConfigMap stays far below the API server's 1 MiB.
	MaxRows = 2000
)

// Columns are the calibration-layout columns the store writes; source and recorded_at are its own
// (ReadServingRows ignores columns it does not know).
var Columns = []string{"model_path", "system", "backend", "mode", "isl", "osl", "concurrency", "gemm_quant_mode",
	"tp_size", "pp_size", "attention_dp_size", "moe_ep_size", "batch_size", "num_workers",
	"prefill_num_workers", "prefill_tp_size", "prefill_pp_size", "prefill_attention_dp_size", "prefill_moe_ep_size", "prefill_batch_size",
	"decode_num_workers", "decode_tp_size", "decode_pp_size", "decode_attention_dp_size", "decode_moe_ep_size", "decode_batch_size",
	"silicon_ttft_ms", "silicon_tpot_ms", "source", "recorded_at"}

// Measurement is one measured load of one deployed configuration.
type Measurement struct {
	// Model is the Hugging Face id (model_path), GPU the catalog name (system).
	Model, GPU string
	// WeightDtype is the precision of the linear layers when not the checkpoint's ("" = the checkpoint's).
	WeightDtype string
	Config      profile.Config
	ISL, OSL    int
	Concurrency int
	// TTFTMs and ITLMs are the measured means.
	TTFTMs, ITLMs float64
	// Source says where the row came from (bench --record of a DGDR, a thorough-search candidate).
	Source string
	At     time.Time
}

// Record is the measurement as a CSV record in Columns' order.
func (m Measurement) Record() []string {
	f := map[string]string{"model_path": m.Model, "system": m.GPU, "backend": m.Config.Backend, "mode": string(m.Config.Mode),
		"isl": strconv.Itoa(m.ISL), "osl": strconv.Itoa(m.OSL), "concurrency": strconv.Itoa(m.Concurrency), "gemm_quant_mode": m.WeightDtype,
		"silicon_ttft_ms": strconv.FormatFloat(m.TTFTMs, 'g', 6, 64), "silicon_tpot_ms": strconv.FormatFloat(m.ITLMs, 'g', 6, 64),
		"source": m.Source, "recorded_at": m.At.UTC().Format(time.RFC3339)}
	replicas := max(m.Config.Replicas, 1)
	for _, w := range m.Config.Workers {
		prefix := ""
		switch w.Role {
		case profile.RolePrefill:
			prefix = "prefill_"
		case profile.RoleDecode:
			prefix = "decode_"
		}
		dp := max(w.DP, 1)
		f[prefix+"num_workers"] = strconv.Itoa(max(w.Count, 1) * replicas)
		f[prefix+"tp_size"], f[prefix+"pp_size"] = strconv.Itoa(max(w.TP, 1)), strconv.Itoa(max(w.PP, 1))
		f[prefix+"attention_dp_size"], f[prefix+"moe_ep_size"] = strconv.Itoa(dp), strconv.Itoa(max(w.EP, 1))
		// The layout's batch_size is per attention-DP rank.
		f[prefix+"batch_size"] = strconv.Itoa(w.Batch / dp)
	}
	rec := make([]string, len(Columns))
	for i, c := range Columns {
		rec[i] = f[c]
	}
	return rec
}

// Fit is the refit kubectl dgdr calibrate stores: corrections of the shipped calibration fitted on
// the store's rows (regularised toward it), and the error before and after on those rows.
type Fit struct {
	// Method names the fit: what it was fitted on and when (it becomes the calibration's Method,
	// which search results report).
	Method      string               `json:"method"`
	FittedAt    time.Time            `json:"fittedAt"`
	Rows        int                  `json:"rows"`
	Corrections []profile.Correction `json:"corrections"`
	Before      Errors               `json:"before"`
	After       Errors               `json:"after"`
}

// Errors are the median absolute relative errors on the stored rows.
type Errors struct {
	TTFT float64 `json:"ttftMedian"`
	ITL  float64 `json:"itlMedian"`
}

// Calibration is base amended by the fit.
func (f *Fit) Calibration(base profile.Calib) profile.Calib {
	base.Corrections = f.Corrections
	base.Method = f.Method
	return base
}

// Store is a parsed dgdr-calibration ConfigMap.
type Store struct {
	Namespace string
	// Header and Records are the stored CSV (Records oldest first); Rows the same parsed.
	Header  []string
	Records [][]string
	Rows    []profile.ServingRow
	// Fit is nil until kubectl dgdr calibrate has run.
	Fit *Fit
}

// Parse reads the ConfigMap's data. An absent key is an empty store or no fit; a malformed one is an
// error naming the key. Rows whose model or GPU is unknown are kept with their Err set.
func Parse(data map[string]string, resolve profile.ModelResolver) (*Store, error) {
	s := &Store{}
	if raw := data[KeyRows]; strings.TrimSpace(raw) != "" {
		cr := csv.NewReader(strings.NewReader(raw))
		cr.FieldsPerRecord = -1
		all, err := cr.ReadAll()
		if err != nil {
			return nil, fmt.Errorf("configmap %s key %s: %w (expected CSV in the calibration layout; delete the key to start over)", Name, KeyRows, err)
		}
		if len(all) > 0 {
			s.Header, s.Records = all[0], all[1:]
		}
		if _, s.Rows, err = profile.ReadServingRows(strings.NewReader(raw), resolve); err != nil {
			return nil, fmt.Errorf("configmap %s key %s: %w", Name, KeyRows, err)
		}
	}
	if raw := data[KeyFit]; strings.TrimSpace(raw) != "" {
		var f Fit
		if err := json.Unmarshal([]byte(raw), &f); err != nil {
			return nil, fmt.Errorf("configmap %s key %s: %w (expected the JSON kubectl dgdr calibrate writes; run it again)", Name, KeyFit, err)
		}
		for _, c := range f.Corrections {
			if !(c.TTFT > 0) || !(c.ITL > 0) || c.Arch == "" {
				return nil, fmt.Errorf("configmap %s key %s: correction %+v: expected an arch and positive factors (run kubectl dgdr calibrate again)", Name, KeyFit, c)
			}
		}
		s.Fit = &f
	}
	return s, nil
}

// Load reads the namespace's store; an absent ConfigMap is an empty store.
func Load(ctx context.Context, c client.Reader, namespace string) (*Store, error) {
	var cm corev1.ConfigMap
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: Name}, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return &Store{Namespace: namespace}, nil
		}
		return nil, fmt.Errorf("read configmap %s/%s: %w", namespace, Name, err)
	}
	s, err := Parse(cm.Data, profile.LookupModel)
	if err != nil {
		return nil, err
	}
	s.Namespace = namespace
	return s, nil
}

// Append adds measurements to the namespace's store (creating it), dropping the oldest rows beyond
// MaxRows. Rows written under another header are rewritten under Columns.
func Append(ctx context.Context, c client.Client, namespace string, ms []Measurement) error {
	recs := make([][]string, len(ms))
	for i, m := range ms {
		recs[i] = m.Record()
	}
	return AppendRecords(ctx, c, namespace, recs)
}

// ReadCSV reads measurements in the calibration layout (kubectl dgdr calibrate --add): every row must
// parse, name a model and GPU the catalog knows and carry a measured TTFT and ITL, or the whole file
// is refused with the first bad line named, so nothing is half-added. It returns the rows as records
// under Columns (source and recorded_at filled where the file leaves them empty) and parsed.
func ReadCSV(r io.Reader, resolve profile.ModelResolver, source string, now time.Time) ([][]string, []profile.ServingRow, error) {
	_, rows, err := profile.ReadServingRows(r, resolve)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case len(rows) == 0:
		return nil, nil, errors.New("no rows after the header: expected measurements in the calibration layout")
	case len(rows) > MaxRows:
		return nil, nil, fmt.Errorf("%d rows: the store holds at most %d", len(rows), MaxRows)
	}
	recs := make([][]string, len(rows))
	for i, row := range rows {
		if row.Err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", row.Line, row.Err)
		}
		if !(row.MeasuredTTFTMs > 0) || !(row.MeasuredITLMs > 0) {
			return nil, nil, fmt.Errorf("line %d: silicon_ttft_ms and silicon_tpot_ms must be positive (the measured mean TTFT and ITL in ms)", row.Line)
		}
		recs[i] = make([]string, len(Columns))
		for j, c := range Columns {
			recs[i][j] = row.Fields[c]
		}
		recs[i][slices.Index(Columns, "source")] = cmp.Or(row.Fields["source"], source)
		recs[i][slices.Index(Columns, "recorded_at")] = cmp.Or(row.Fields["recorded_at"], now.UTC().Format(time.RFC3339))
	}
	return recs, rows, nil
}

// AppendRecords adds records under Columns to the namespace's store (creating it), as Append does.
func AppendRecords(ctx context.Context, c client.Client, namespace string, recs [][]string) error {
	if len(recs) == 0 {
		return nil
	}
	return update(ctx, c, namespace, func(cm *corev1.ConfigMap) error {
		var old [][]string
		if raw := cm.Data[KeyRows]; strings.TrimSpace(raw) != "" {
			cr := csv.NewReader(strings.NewReader(raw))
			cr.FieldsPerRecord = -1
			all, err := cr.ReadAll()
			if err != nil {
				return fmt.Errorf("configmap %s key %s: %w (expected CSV in the calibration layout; delete the key to start over)", Name, KeyRows, err)
			}
			if len(all) > 0 {
				old = reorder(all[0], all[1:])
			}
		}
		old = append(old, recs...)
		if len(old) > MaxRows {
			old = old[len(old)-MaxRows:]
		}
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		_ = w.Write(Columns)
		_ = w.WriteAll(old)
		if err := w.Error(); err != nil {
			return fmt.Errorf("write the calibration rows: %w", err)
		}
		cm.Data[KeyRows] = b.String()
		return nil
	})
}

// reorder maps records under header to Columns (columns Columns lacks are dropped).
func reorder(header []string, recs [][]string) [][]string {
	idx := make([]int, len(Columns))
	for i, c := range Columns {
		idx[i] = -1
		for j, h := range header {
			if strings.TrimSpace(h) == c {
				idx[i] = j
			}
		}
	}
	out := make([][]string, 0, len(recs))
	for _, r := range recs {
		n := make([]string, len(Columns))
		for i, j := range idx {
			if j >= 0 && j < len(r) {
				n[i] = r[j]
			}
		}
		out = append(out, n)
	}
	return out
}

// SaveFit stores the refit in the namespace's store.
func SaveFit(ctx context.Context, c client.Client, namespace string, f *Fit) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the fit: %w", err)
	}
	return update(ctx, c, namespace, func(cm *corev1.ConfigMap) error {
		cm.Data[KeyFit] = string(b) + "\n"
		return nil
	})
}

// update gets or creates the ConfigMap and applies change, retrying on conflicts (two recorders at once).
func update(ctx context.Context, c client.Client, namespace string, change func(*corev1.ConfigMap) error) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cm corev1.ConfigMap
		err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: Name}, &cm)
		create := apierrors.IsNotFound(err)
		if err != nil && !create {
			return fmt.Errorf("read configmap %s/%s: %w", namespace, Name, err)
		}
		if create {
			cm = corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: Name,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "dgdr"}}}
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		if err := change(&cm); err != nil {
			return err
		}
		if create {
			err = c.Create(ctx, &cm)
			if apierrors.IsAlreadyExists(err) {
				// Another writer created it first: read theirs and apply again.
				return apierrors.NewConflict(corev1.Resource("configmaps"), Name, err)
			}
		} else {
			err = c.Update(ctx, &cm)
		}
		if err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("write configmap %s/%s: %w", namespace, Name, err)
		}
		return err
	})
}

// ErrEmpty says the store has no measured rows to fit on.
var ErrEmpty = errors.New("the calibration store has no measured rows")

// Refit fits corrections of base on the store's measured rows (calib.FitCorrections: factors per
// architecture, GPU, backend and mode, shrunk toward base) and measures the error on those rows
// before and after.
func (s *Store) Refit(base profile.Calib, now time.Time) (*Fit, error) {
	rows := calib.RowPointers(s.Rows)
	before := calib.NewEvaluator(rows).Run(base)
	corr := calib.FitCorrections(before)
	n := 0
	for _, c := range corr {
		n += c.Rows
	}
	if n == 0 {
		return nil, ErrEmpty
	}
	f := &Fit{FittedAt: now.UTC().Truncate(time.Second), Rows: n, Corrections: corr,
		Method: fmt.Sprintf("%s/%s: %d measured rows, fitted %s", s.Namespace, Name, n, now.UTC().Format(time.RFC3339))}
	f.Before = medianErrors(before)
	f.After = medianErrors(calib.NewEvaluator(rows).Run(f.Calibration(base)))
	return f, nil
}

func medianErrors(res []calib.RowResult) Errors {
	for _, l := range calib.Summarize(res) {
		if l.Backend == "all" && l.Mode == "all" {
			return Errors{TTFT: l.TTFTMedian, ITL: l.ITLMedian}
		}
	}
	return Errors{}
}
