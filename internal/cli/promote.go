package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
	"github.com/dgdr-dev/dgdr/pkg/hw"
)

// PromoteOptions deploys one Pareto point of a DGDR as its DGD.
type PromoteOptions struct {
	genericiooptions.IOStreams
	print *genericclioptions.PrintFlags

	Name    string
	Pick    int
	Patches []string
	DryRun  string
	Force   bool
	Wait    bool
	Timeout time.Duration

	cluster *cluster
	printer printers.ResourcePrinter
}

// NewCmdPromote is `kubectl dgdr promote NAME`.
func NewCmdPromote(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &PromoteOptions{IOStreams: streams, print: genericclioptions.NewPrintFlags("").WithTypeSetter(scheme)}
	cmd := &cobra.Command{
		Use:   "promote NAME [--pick N] [--patch FILE]...",
		Short: "Deploy the selected (or another) Pareto point of a DGDR as its DynamoGraphDeployment",
		Long: `Generate the DynamoGraphDeployment for a Pareto point of a profiled DGDR, merge your patch files
into it, show what changes against the deployed DGD, apply it with server-side apply (field manager
"dgdr"), and record the DGDR as Deploying. ` + "`kubectl dgdr status`" + ` then records it Deployed once the DGD is ready.

Without --pick the DGD is the one profiling stored for the selected configuration. --pick N deploys row N
of ` + "`kubectl dgdr results`" + ` (the "#" column, status.profilingResults.pareto[N]).

A patch file is a partial DGD merged by name: spec.components entries by their name, containers, env and
volumes by theirs; other lists are replaced; null deletes a field.

promote refuses to overwrite a DGD someone else changed since dgdr applied it (another field manager owns
fields dgdr sets, or the spec differs from what dgdr applied). --force takes it over. The diff goes to
stderr; stdout carries the object (-o) or its name.`,
		Example: `  # Deploy the recommendation
  kubectl dgdr promote qwen

  # Deploy the third row of the results with more frontends, and see the change first
  kubectl dgdr promote qwen --pick 2 --patch frontends.yaml --dry-run=server`,
		Args:              exactName,
		ValidArgsFunction: completeDGDRNames(getter, 1),
		RunE:              runCommand(getter, o),
	}
	f := cmd.Flags()
	f.IntVar(&o.Pick, "pick", -1, "Row of `kubectl dgdr results` to deploy (default: the selected configuration)")
	f.StringArrayVar(&o.Patches, "patch", nil, "Partial DGD (YAML or JSON) merged into the generated one; repeatable, applied in order")
	f.StringVar(&o.DryRun, "dry-run", dryRunNone, `"none", "client" (show the DGD and the diff, change nothing) or "server" (the API server checks the apply, nothing is stored)`)
	f.BoolVar(&o.Force, "force", false, "Overwrite a DGD that someone else changed, taking over the fields")
	f.BoolVar(&o.Wait, "wait", false, "Wait until the DGD is ready and the DGDR Deployed")
	f.DurationVar(&o.Timeout, "timeout", 15*time.Minute, "How long --wait waits")
	o.print.AddFlags(cmd)
	_ = cmd.RegisterFlagCompletionFunc("dry-run", cobra.FixedCompletions([]string{dryRunNone, dryRunClient, dryRunServer}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete takes the name and builds the printer and the client.
func (o *PromoteOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, args []string) error {
	o.Name = args[0]
	var err error
	if o.printer, err = o.print.ToPrinter(); err != nil {
		return WithHint(fmt.Errorf("unsupported output format %q", ptr.Deref(o.print.OutputFormat, "")), "use -o yaml, json or name")
	}
	o.cluster, err = newCluster(getter, o.IOStreams)
	return err
}

// Validate checks the flags.
func (o *PromoteOptions) Validate() error {
	switch o.DryRun {
	case dryRunNone, dryRunClient, dryRunServer:
	default:
		return WithHint(fmt.Errorf("invalid --dry-run %q", o.DryRun), "use --dry-run=none, client or server")
	}
	if o.Wait && o.DryRun != dryRunNone {
		return WithHint(errors.New("--wait cannot be combined with --dry-run"), "drop one of them")
	}
	if o.Pick < -1 {
		return WithHint(fmt.Errorf("invalid --pick %d", o.Pick), "use a row number of `kubectl dgdr results %s`", o.Name)
	}
	return nil
}

// Run builds the DGD, checks who owns the live one, shows the diff, applies and records the DGDR.
func (o *PromoteOptions) Run(ctx context.Context) error {
	c := o.cluster
	d, err := c.getDGDR(ctx, o.Name)
	if err != nil {
		return err
	}
	desired, err := c.dgdFor(ctx, d, o.Pick, expand.DGDAPIVersionV1Beta1, false, o.Patches, o.ErrOut)
	if err != nil {
		return err
	}
	lifecycle.LabelDGD(desired, d)

	// What the apply would make of the live object: the server's dry run through the one apply path
	// (owner checks, defaults, other managers' fields kept), or the generated object itself when the
	// server is not to be asked.
	var live, result *unstructured.Unstructured
	if o.DryRun == dryRunClient {
		if live, err = lifecycle.GetDGD(ctx, c.client, d.Namespace, desired.GetName()); err != nil {
			return apiError(err, "")
		}
		if live != nil && !o.Force {
			if err := lifecycle.CheckOwner(live, d); err != nil {
				return promoteError(err, desired.GetName())
			}
		}
		result = desired
	} else {
		pre, err := lifecycle.ApplySelected(ctx, c.client, d, desired, lifecycle.SelectedOptions{Force: o.Force, DryRun: true})
		if err != nil {
			return promoteError(err, desired.GetName())
		}
		live, result = pre.Live, pre.Stored
	}
	diff, err := dgdDiff(live, result)
	if err != nil {
		return err
	}
	if diff != "" {
		fmt.Fprint(o.ErrOut, diff)
	}
	verb := "configured"
	switch {
	case live == nil:
		verb = "created"
	case diff == "":
		verb = "unchanged"
	}
	if o.DryRun != dryRunNone {
		return o.printResult(result, verb)
	}

	point, _ := pickPoint(d, o.Pick) // dgdFor checked it
	done, err := lifecycle.ApplySelected(ctx, c.client, d, desired, lifecycle.SelectedOptions{Force: o.Force, Promoted: pointName(o.Pick, point)})
	if err != nil {
		if done != nil {
			return apiError(err, "run `kubectl dgdr promote "+d.Name+nsFlag(d.Namespace)+"` again")
		}
		return promoteError(err, desired.GetName())
	}
	applied, updated := done.Stored, done.DGDR
	if err := o.printResult(applied, verb); err != nil {
		return err
	}
	if !o.Wait {
		fmt.Fprintf(o.ErrOut, "Next: `kubectl dgdr status %s%s` records the DGDR Deployed once the DGD is ready\n", d.Name, nsFlag(d.Namespace))
		return nil
	}
	_, err = newWaiter(c, o.ErrOut).wait(ctx, updated.Name, o.Timeout)
	return err
}

func (o *PromoteOptions) dryRunSuffix() *string {
	switch o.DryRun {
	case dryRunClient:
		return ptr.To(" (dry run)")
	case dryRunServer:
		return ptr.To(" (server dry run)")
	}
	return nil
}

// printResult prints the object with -o, else kubectl's "<kind>/<name> <verb>" line.
func (o *PromoteOptions) printResult(u *unstructured.Unstructured, verb string) error {
	if ptr.Deref(o.print.OutputFormat, "") != "" {
		return printTo(o.printer, u, o.Out)
	}
	_, err := fmt.Fprintf(o.Out, "dynamographdeployment.nvidia.com/%s %s%s\n", u.GetName(), verb, ptr.Deref(o.dryRunSuffix(), ""))
	return err
}

// pickPoint is the configuration of row pick of the stored Pareto front, or the selected one (pick −1).
func pickPoint(d *v1alpha1.DynamoGraphDeploymentRequest, pick int) (v1alpha1.ParetoPoint, error) {
	pr := d.Status.ProfilingResults
	ns := nsFlag(d.Namespace)
	if pr == nil || pr.SelectedConfig == nil {
		phase := phaseOf(d)
		if phase == v1alpha1.PhaseFailed {
			return v1alpha1.ParetoPoint{}, WithHint(fmt.Errorf("DGDR %s failed without profiling results", d.Name),
				"`kubectl dgdr status %s%s` says why", d.Name, ns)
		}
		return v1alpha1.ParetoPoint{}, WithHint(fmt.Errorf("DGDR %s has no profiling results yet (phase %s)", d.Name, phase),
			"wait for phase Ready: `kubectl dgdr status %s%s`", d.Name, ns)
	}
	if pick < 0 {
		return pr.SelectedConfig.ParetoPoint, nil
	}
	if pick >= len(pr.Pareto) {
		return v1alpha1.ParetoPoint{}, WithHint(fmt.Errorf("--pick %d is out of range: DGDR %s has %d Pareto points (0 to %d)", pick, d.Name, len(pr.Pareto), len(pr.Pareto)-1),
			"`kubectl dgdr results %s%s` lists them in the # column", d.Name, ns)
	}
	return pr.Pareto[pick], nil
}

// pointName says which point was deployed, for the DGDR's conditions.
func pointName(pick int, p v1alpha1.ParetoPoint) string {
	if pick < 0 {
		return "the selected configuration (" + pointLabel(p) + ")"
	}
	return fmt.Sprintf("Pareto point %d (%s)", pick, pointLabel(p))
}

// dgdFor builds the DGD of a point: the one profiling stored for the selected configuration when it fits
// the request (v1beta1, not for export), else generated by pkg/expand; then the patch files are merged.
func (c *cluster) dgdFor(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest, pick int, apiVersion string, export bool, patches []string, warnings io.Writer) (*unstructured.Unstructured, error) {
	p, err := pickPoint(d, pick)
	if err != nil {
		return nil, err
	}
	var u *unstructured.Unstructured
	sel := d.Status.ProfilingResults.SelectedConfig
	if pick < 0 && !export && apiVersion == expand.DGDAPIVersionV1Beta1 && sel.DGD != nil && len(sel.DGD.Raw) > 0 {
		u = &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(sel.DGD.Raw); err != nil {
			return nil, fmt.Errorf("reading the DGD stored in status.profilingResults.selectedConfig.dgd: %w", err)
		}
	} else {
		gpn, how := c.gpusPerNode(ctx, d)
		if how != "" {
			fmt.Fprintf(warnings, "Warning: %s\n", how)
		}
		spec := d.DeepCopy()
		spec.Default("")
		u, err = expand.GenerateDGD(spec, expand.ConfigFromPoint(p), expand.DGDOptions{APIVersion: apiVersion, GPUsPerNode: gpn, Export: export})
		if err != nil {
			return nil, WithHint(err, "check spec.overrides.dgd of the DGDR")
		}
	}
	if len(patches) == 0 {
		return u, nil
	}
	data, err := expand.EncodeDGDYAML(u.Object)
	if err != nil {
		return nil, err
	}
	for _, path := range patches {
		patch, err := os.ReadFile(path)
		if err != nil {
			return nil, WithHint(fmt.Errorf("reading the patch %s: %w", path, err), "pass a partial DGD in YAML or JSON with --patch FILE")
		}
		if data, err = expand.MergeDGDPatch(data, patch); err != nil {
			return nil, WithHint(fmt.Errorf("patch %s: %w", path, err), "a patch is a partial DynamoGraphDeployment of the same apiVersion, components named as in the generated DGD")
		}
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("reading the patched DGD: %w", err)
	}
	out := &unstructured.Unstructured{}
	if err := out.UnmarshalJSON(js); err != nil {
		return nil, fmt.Errorf("reading the patched DGD: %w", err)
	}
	return out, nil
}

// gpusPerNode is the node size the DGD's workers are split by: spec.hardware.gpusPerNode, else what the
// profiler found (results.json of the <name>-profiling ConfigMap), else the GPU type's usual node. The
// second value, when set, warns that the figure is a guess.
func (c *cluster) gpusPerNode(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) (int, string) {
	if h := d.Spec.Hardware; h != nil && h.GPUsPerNode != nil {
		return int(*h.GPUsPerNode), ""
	}
	if doc, err := c.resultsDocument(ctx, d); err == nil && doc != nil && doc.GPUsPerNode > 0 {
		return doc.GPUsPerNode, ""
	}
	gpu := ""
	if h := d.Spec.Hardware; h != nil {
		gpu = h.GPUType
	}
	if g, err := hw.Lookup(gpu); gpu != "" && err == nil && g.GPUsPerNode > 0 {
		return g.GPUsPerNode, fmt.Sprintf("the profiler's node size is not recorded; assuming %d GPUs per node (a %s node)", g.GPUsPerNode, g.Name)
	}
	return 0, "the profiler's node size is not recorded: no worker is split across nodes (set spec.hardware.gpusPerNode to plan for it)"
}

// promoteError is an error of lifecycle.ApplySelected with the plugin's hints.
func promoteError(err error, name string) error {
	var oe *lifecycle.OwnerError
	var te *lifecycle.TransitionError
	switch {
	case errors.As(err, &oe):
		return WithHint(err, "%s", oe.Hint)
	case errors.As(err, &te):
		return WithHint(err, "wait for profiling to finish: `kubectl dgdr status %s`", te.Name)
	case apierrors.IsConflict(err):
		return WithHint(fmt.Errorf("DGD %s: fields dgdr sets are owned by another manager: %s", name, conflictSummary(err)),
			"someone changed the DGD; keep their change by editing the DGD directly, or rerun with --force to overwrite it")
	}
	return apiError(err, "")
}

// conflictSummary lists the first conflicting fields and their managers.
func conflictSummary(err error) string {
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Details == nil || len(se.ErrStatus.Details.Causes) == 0 {
		return err.Error()
	}
	var parts []string
	for i, cause := range se.ErrStatus.Details.Causes {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(se.ErrStatus.Details.Causes)-3))
			break
		}
		parts = append(parts, cause.Field+" ("+cause.Message+")")
	}
	return strings.Join(parts, ", ")
}

// dgdDiff is a unified diff of what the user manages in a DGD (metadata labels and annotations, spec)
// from live to next; "" when equal. live nil is an empty object.
func dgdDiff(live, next *unstructured.Unstructured) (string, error) {
	render := func(u *unstructured.Unstructured) (string, error) {
		if u == nil {
			return "", nil
		}
		meta := map[string]any{"name": u.GetName(), "namespace": u.GetNamespace()}
		if l := u.GetLabels(); len(l) > 0 {
			meta["labels"] = toAny(l)
		}
		ann := u.GetAnnotations()
		delete(ann, v1alpha1.AnnotationAppliedSpecHash)
		if len(ann) > 0 {
			meta["annotations"] = toAny(ann)
		}
		obj := map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(), "metadata": meta}
		if spec, ok := u.Object["spec"]; ok {
			obj["spec"] = spec
		}
		b, err := expand.EncodeDGDYAML(obj)
		return string(b), err
	}
	a, err := render(live)
	if err != nil {
		return "", err
	}
	b, err := render(next)
	if err != nil {
		return "", err
	}
	if a == b {
		return "", nil
	}
	from := "live/" + next.GetName()
	if live == nil {
		from = "/dev/null"
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b), FromFile: from, ToFile: "dgdr/" + next.GetName(), Context: 3,
	})
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
