package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/internal/deploy"
	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
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

// Run resolves the DGD, shows the diff against the live one, and applies it and records the DGDR (or,
// on a dry run, says what applying would do).
func (o *PromoteOptions) Run(ctx context.Context) error {
	d, err := o.cluster.getDGDR(ctx, o.Name)
	if err != nil {
		return err
	}
	patches, err := readPatches(o.Patches)
	if err != nil {
		return err
	}
	svc := deploy.New(o.cluster.client)
	r, err := svc.Resolve(ctx, d, deploy.Pick{Index: o.Pick, Patches: patches})
	if err != nil {
		return deployError(err, "")
	}
	printWarnings(o.ErrOut, r.Warnings)
	opts := deploy.Options{Force: o.Force, Local: o.DryRun == dryRunClient}
	if o.DryRun != dryRunNone {
		ch, err := svc.Preview(ctx, r, opts)
		if err != nil {
			return deployError(err, r.DGD.GetName())
		}
		fmt.Fprint(o.ErrOut, ch.Diff)
		return o.printResult(ch)
	}
	ch, err := svc.Deploy(ctx, r, opts)
	if err != nil {
		return deployError(err, r.DGD.GetName())
	}
	fmt.Fprint(o.ErrOut, ch.Diff)
	if err := o.printResult(ch); err != nil {
		return err
	}
	if !o.Wait {
		fmt.Fprintf(o.ErrOut, "Next: `kubectl dgdr status %s%s` records the DGDR Deployed once the DGD is ready\n", d.Name, nsFlag(d.Namespace))
		return nil
	}
	_, err = newWaiter(o.cluster, o.ErrOut).wait(ctx, ch.DGDR.Name, o.Timeout)
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

// printResult prints the DGD stored (or that would be) with -o, else kubectl's "<kind>/<name> <verb>" line.
func (o *PromoteOptions) printResult(ch *deploy.Change) error {
	if ptr.Deref(o.print.OutputFormat, "") != "" {
		return printTo(o.printer, ch.Stored, o.Out)
	}
	_, err := fmt.Fprintf(o.Out, "%s%s\n", ch.Summary(), ptr.Deref(o.dryRunSuffix(), ""))
	return err
}

// readPatches reads the --patch files.
func readPatches(paths []string) ([]deploy.Patch, error) {
	out := make([]deploy.Patch, 0, len(paths))
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, WithHint(fmt.Errorf("reading the patch %s: %w", path, err), "pass a partial DGD in YAML or JSON with --patch FILE")
		}
		out = append(out, deploy.Patch{Name: path, Data: data})
	}
	return out, nil
}

// printWarnings prints the guesses the DGD's generation made.
func printWarnings(w io.Writer, warnings []string) {
	for _, s := range warnings {
		fmt.Fprintf(w, "Warning: %s\n", s)
	}
}

// pickPoint is deploy.PickPoint with the plugin's hints.
func pickPoint(d *v1alpha1.DynamoGraphDeploymentRequest, pick int) (v1alpha1.ParetoPoint, error) {
	p, err := deploy.PickPoint(d, pick)
	return p, deployError(err, "")
}

// deployError is an error of the deploy service (or of lifecycle's apply path under it) with the
// plugin's hints; dgd names the DGD, once resolved.
func deployError(err error, dgd string) error {
	var (
		nr *deploy.NoResultsError
		pe *deploy.PickError
		ge *deploy.GenerateError
		pa *deploy.PatchError
		re *deploy.RecordError
		oe *lifecycle.OwnerError
		te *lifecycle.TransitionError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return apiError(err, "run `kubectl dgdr promote "+re.Name+nsFlag(re.Namespace)+"` again")
	case errors.As(err, &nr) && nr.Phase == v1alpha1.PhaseFailed:
		return WithHint(err, "`kubectl dgdr status %s%s` says why", nr.Name, nsFlag(nr.Namespace))
	case errors.As(err, &nr):
		return WithHint(err, "wait for phase Ready: `kubectl dgdr status %s%s`", nr.Name, nsFlag(nr.Namespace))
	case errors.As(err, &pe):
		return WithHint(err, "`kubectl dgdr results %s%s` lists them in the # column", pe.Name, nsFlag(pe.Namespace))
	case errors.As(err, &ge):
		return WithHint(err, "check spec.overrides.dgd of the DGDR")
	case errors.As(err, &pa):
		return WithHint(err, "a patch is a partial DynamoGraphDeployment of the same apiVersion, components named as in the generated DGD")
	case errors.As(err, &oe):
		return WithHint(err, "%s", oe.Hint)
	case errors.As(err, &te):
		return WithHint(err, "wait for profiling to finish: `kubectl dgdr status %s`", te.Name)
	case apierrors.IsConflict(err):
		return WithHint(fmt.Errorf("DGD %s: fields dgdr sets are owned by another manager: %s", dgd, conflictSummary(err)),
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
