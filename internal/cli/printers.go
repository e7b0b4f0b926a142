package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/kubectl/pkg/cmd/get"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/deploy"
	"github.com/dgdr-dev/dgdr/internal/numfmt"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// dgdrColumns are `kubectl dgdr get`'s columns: the CRD's printer columns, then (Priority 1, -o wide only)
// the workload, the SLA and the selected configuration.
var dgdrColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name"},
	{Name: "Model", Type: "string"},
	{Name: "Backend", Type: "string"},
	{Name: "Strategy", Type: "string"},
	{Name: "Phase", Type: "string"},
	{Name: "Run", Type: "integer"},
	{Name: "DGD", Type: "string"},
	{Name: "Age", Type: "string"},
	{Name: "ISL", Type: "integer", Priority: 1},
	{Name: "OSL", Type: "integer", Priority: 1},
	{Name: "TTFT", Type: "string", Priority: 1},
	{Name: "ITL", Type: "string", Priority: 1},
	{Name: "GPUs", Type: "string", Priority: 1},
	{Name: "Selected", Type: "string", Priority: 1},
}

// dgdrTable builds the table the human printer shows. Unset spec fields show the defaults the webhook
// applies, since that is what the profiler uses.
func dgdrTable(items []unstructured.Unstructured, now time.Time) (*metav1.Table, error) {
	t := &metav1.Table{ColumnDefinitions: dgdrColumns}
	t.SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("Table"))
	for i := range items {
		u := &items[i]
		d := &v1alpha1.DynamoGraphDeploymentRequest{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d); err != nil {
			return nil, fmt.Errorf("reading dynamographdeploymentrequest %s/%s: %w", u.GetNamespace(), u.GetName(), err)
		}
		s := &d.Spec
		gpus, selected := "<none>", "<none>"
		if pr := d.Status.ProfilingResults; pr != nil && pr.SelectedConfig != nil {
			gpus = strconv.Itoa(int(pr.SelectedConfig.GPUs))
			selected = deploy.PointLabel(pr.SelectedConfig.ParetoPoint)
		}
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells: []any{
				d.Name, s.Model, cmp.Or(string(s.Backend), "<none>"), cmp.Or(string(s.SearchStrategy), "<none>"), string(phaseOf(d)), d.Generation,
				cmp.Or(d.Status.DGDName, "<none>"), age(d.CreationTimestamp, now),
				int64(s.ISL()), int64(s.OSL()), ms(s.TTFT()), ms(s.ITL()), gpus, selected,
			},
			Object: runtime.RawExtension{Object: u},
		})
	}
	return t, nil
}

// getPrinter holds kubectl get's printing flags (-o with every kubectl format, --no-headers,
// --show-labels, -L, --template…) so that `kubectl dgdr get` prints exactly as `kubectl get` would.
type getPrinter struct {
	flags *get.PrintFlags
}

func newGetPrinter() *getPrinter {
	f := get.NewGetPrintFlags()
	// Rows are always sorted by namespace and name; --sort-by is not offered.
	f.HumanReadableFlags.SortBy = nil
	return &getPrinter{flags: f}
}

func (p *getPrinter) addFlags(cmd *cobra.Command) { p.flags.AddFlags(cmd) }

// table reports whether the output is the table (default or wide), which prints a metav1.Table.
func (p *getPrinter) table() bool {
	out := *p.flags.OutputFormat
	return (out == "" || out == "wide") && (p.flags.TemplateFlags.TemplateArgument == nil || *p.flags.TemplateFlags.TemplateArgument == "")
}

func (p *getPrinter) toPrinter(withNamespace bool) (printers.ResourcePrinter, error) {
	if withNamespace {
		if err := p.flags.EnsureWithNamespace(); err != nil {
			return nil, err
		}
	}
	pr, err := p.flags.ToPrinter()
	if err != nil {
		return nil, WithHint(fmt.Errorf("unsupported output format %q: %w", *p.flags.OutputFormat, err),
			"use -o wide, json, yaml, name, jsonpath=…, or custom-columns=HEADER:JSONPATH,…")
	}
	return pr, nil
}

// phaseOf is the DGDR's phase; a DGDR nothing has written a phase to yet is Pending (the design's first phase).
func phaseOf(d *v1alpha1.DynamoGraphDeploymentRequest) v1alpha1.Phase {
	if d.Status.Phase == "" {
		return v1alpha1.PhasePending
	}
	return d.Status.Phase
}

func ms(v float64) string { return numfmt.Fixed(v, -1) + "ms" }

func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// printTo prints obj with p, turning printer errors into one line.
func printTo(p printers.ResourcePrinter, obj runtime.Object, w io.Writer) error {
	if err := p.PrintObj(obj, w); err != nil {
		return WithHint(fmt.Errorf("printing: %w", err), "check the -o expression")
	}
	return nil
}

// printObject writes v as indented JSON or as YAML.
func printObject(w io.Writer, format string, v any) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
