package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/dgdr-dev/dgdr/internal/deploy"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

// ExportOptions prints a DGDR's DGD as YAML with no link back to the DGDR.
type ExportOptions struct {
	clusterOptions

	Name       string
	Pick       int
	APIVersion string
	Patches    []string
}

// NewCmdExport is `kubectl dgdr export NAME`.
func NewCmdExport(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &ExportOptions{clusterOptions: clusterOptions{IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "export NAME [--pick N] [--api-version VERSION]",
		Short: "Print a DGDR's DynamoGraphDeployment as YAML to keep in git",
		Long: `Print the DynamoGraphDeployment of a profiled DGDR as YAML, without anything that ties it to the DGDR
(no dgdr labels or annotations, no namespace, no status): the DGD you keep in git and iterate on, with
kubectl apply -n NAMESPACE -f. --pick N exports row N of ` + "`kubectl dgdr results`" + ` instead of the
selected configuration; --api-version nvidia.com/v1alpha1 writes the older spec.services shape.`,
		Example: `  # Keep the recommended DGD in git
  kubectl dgdr export qwen > deploy/qwen-dgd.yaml

  # The second-best point, for an operator that serves only v1alpha1
  kubectl dgdr export qwen --pick 1 --api-version nvidia.com/v1alpha1`,
		Args:              exactName,
		ValidArgsFunction: completeDGDRNames(getter, 1),
		RunE:              runCommand(getter, o),
	}
	f := cmd.Flags()
	f.IntVar(&o.Pick, "pick", -1, "Row of `kubectl dgdr results` to export (default: the selected configuration)")
	f.StringVar(&o.APIVersion, "api-version", expand.DGDAPIVersionV1Beta1, "DGD version: nvidia.com/v1beta1 (spec.components) or nvidia.com/v1alpha1 (spec.services)")
	f.StringArrayVar(&o.Patches, "patch", nil, "Partial DGD (YAML or JSON) merged into the exported one; repeatable")
	_ = cmd.RegisterFlagCompletionFunc("api-version", cobra.FixedCompletions([]string{expand.DGDAPIVersionV1Beta1, expand.DGDAPIVersionV1Alpha1}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete takes the name and builds the client.
func (o *ExportOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, args []string) error {
	o.Name = args[0]
	return o.complete(getter)
}

// Validate checks the flags.
func (o *ExportOptions) Validate() error {
	if o.APIVersion != expand.DGDAPIVersionV1Beta1 && o.APIVersion != expand.DGDAPIVersionV1Alpha1 {
		return WithHint(fmt.Errorf("unsupported --api-version %q", o.APIVersion), "use %s or %s", expand.DGDAPIVersionV1Beta1, expand.DGDAPIVersionV1Alpha1)
	}
	if o.Pick < -1 {
		return WithHint(fmt.Errorf("invalid --pick %d", o.Pick), "use a row number of `kubectl dgdr results %s`", o.Name)
	}
	return nil
}

// Run writes the DGD in export form as YAML, with a comment saying what it serves.
func (o *ExportOptions) Run(ctx context.Context) error {
	d, err := o.cluster.getDGDR(ctx, o.Name)
	if err != nil {
		return err
	}
	patches, err := readPatches(o.Patches)
	if err != nil {
		return err
	}
	ex, err := deploy.New(o.cluster.client).Export(ctx, d, deploy.Pick{Index: o.Pick, Patches: patches}, o.APIVersion)
	if err != nil {
		return deployError(err, "")
	}
	printWarnings(o.ErrOut, ex.Warnings)
	_, err = o.Out.Write(ex.Data)
	return err
}
