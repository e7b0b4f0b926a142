package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
	// The label keeps the DGD findable from its DGDR even when a patch dropped it.
	labels := desired.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[v1alpha1.LabelDGDRName] = d.Name
	desired.SetLabels(labels)
	desired.SetNamespace(d.Namespace)
	name := desired.GetName()

	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
	switch err := c.client.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: name}, live); {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return apiError(fmt.Errorf("reading DGD %s: %w", name, err), "")
	}
	if live != nil && !o.Force {
		if err := checkOwner(live, d); err != nil {
			return err
		}
	}

	// What the apply would make of the live object: the server's dry run (defaults, other managers'
	// fields kept), or the generated object itself when the server is not to be asked.
	result := desired
	if o.DryRun != dryRunClient {
		if result, err = c.applyDGD(ctx, desired, o.Force, true); err != nil {
			return err
		}
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

	applied, err := c.applyDGD(ctx, desired, o.Force, false)
	if err != nil {
		return err
	}

	point, _ := pickPoint(d, o.Pick) // dgdFor checked it
	label := pointName(o.Pick, point)
	updated, err := lifecycle.UpdateStatus(ctx, c.client, c.key(d.Name), func(cur *v1alpha1.DynamoGraphDeploymentRequest) error {
		cur.Status.DGDName = name
		lifecycle.SetCondition(cur, v1alpha1.ConditionDGDGenerated, metav1.ConditionTrue, "Promoted",
			fmt.Sprintf("%s applied as DGD %s by kubectl dgdr promote", label, name))
		if verb != "unchanged" || cur.Status.Phase != v1alpha1.PhaseDeployed {
			cur.Status.Phase = v1alpha1.PhaseDeploying
			lifecycle.SetCondition(cur, v1alpha1.ConditionDeploymentReady, metav1.ConditionFalse, reasonDGDNotReady,
				fmt.Sprintf("DGD %s applied; waiting for the Dynamo operator to report it ready", name))
		}
		return nil
	})
	if err != nil {
		return apiError(fmt.Errorf("the DGD %s was applied, but recording it in DGDR %s failed: %w", name, d.Name, err),
			"run `kubectl dgdr promote "+d.Name+nsFlag(d.Namespace)+"` again")
	}
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

// applyDGD is lifecycle.ApplyDGD (the profiler's apply too) with the plugin's hints on conflicts.
func (c *cluster) applyDGD(ctx context.Context, desired *unstructured.Unstructured, force, dryRun bool) (*unstructured.Unstructured, error) {
	obj, err := lifecycle.ApplyDGD(ctx, c.client, desired, lifecycle.ApplyOptions{Force: force, DryRun: dryRun})
	if err != nil {
		if apierrors.IsConflict(err) {
			return nil, WithHint(fmt.Errorf("DGD %s: fields dgdr sets are owned by another manager: %s", desired.GetName(), conflictSummary(err)),
				"someone changed the DGD; keep their change by editing the DGD directly, or rerun with --force to overwrite it")
		}
		return nil, apiError(err, "")
	}
	return obj, nil
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

// checkOwner refuses a DGD that dgdr did not apply, one of another DGDR, or one whose spec changed since
// dgdr applied it (the annotation holds the hash of the spec dgdr applied).
func checkOwner(live *unstructured.Unstructured, d *v1alpha1.DynamoGraphDeploymentRequest) error {
	name, ns := live.GetName(), nsFlag(d.Namespace)
	force := "rerun with --force to overwrite it"
	if owner, ok := live.GetLabels()[v1alpha1.LabelDGDRName]; ok && owner != d.Name {
		return WithHint(fmt.Errorf("DGD %s belongs to DGDR %s", name, owner), "%s, or set another name in spec.overrides.dgd", force)
	}
	managers := otherManagers(live)
	hash, ok := live.GetAnnotations()[v1alpha1.AnnotationAppliedSpecHash]
	if !ok {
		if !slices.Contains(allManagers(live), v1alpha1.FieldManager) {
			return WithHint(fmt.Errorf("DGD %s exists and was not applied by dgdr (managers: %s)", name, strings.Join(managers, ", ")), "%s", force)
		}
		return nil // applied by the profiler: the server-side apply conflict check covers it
	}
	if hash != lifecycle.SpecHash(live) {
		by := "another client"
		if len(managers) > 0 {
			by = strings.Join(managers, ", ")
		}
		return WithHint(fmt.Errorf("DGD %s was changed since dgdr applied it (by %s)", name, by),
			"keep iterating on the DGD itself (`kubectl dgdr export %s%s` shows what dgdr would apply), or %s", d.Name, ns, force)
	}
	return nil
}

func allManagers(u *unstructured.Unstructured) []string {
	var out []string
	for _, m := range u.GetManagedFields() {
		if !slices.Contains(out, m.Manager) {
			out = append(out, m.Manager)
		}
	}
	return out
}

// otherManagers are the field managers other than dgdr that wrote the DGD's spec or metadata (the Dynamo
// operator's status writes do not count).
func otherManagers(u *unstructured.Unstructured) []string {
	var out []string
	for _, m := range u.GetManagedFields() {
		if m.Manager == v1alpha1.FieldManager || m.Subresource == "status" || slices.Contains(out, m.Manager) {
			continue
		}
		out = append(out, m.Manager)
	}
	return out
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
