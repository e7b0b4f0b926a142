package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/dgdr-dev/dgdr/internal/version"
)

// VersionOptions prints the plugin's version.
type VersionOptions struct {
	genericiooptions.IOStreams

	Output string
}

// NewCmdVersion prints the plugin's version.
func NewCmdVersion(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &VersionOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version",
		Args:  withUsageHint(cobra.NoArgs),
		RunE:  runCommand(getter, o),
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "output format: json")
	return cmd
}

// Complete has nothing to resolve: the version is built in and no cluster is asked.
func (o *VersionOptions) Complete(genericclioptions.RESTClientGetter, *cobra.Command, []string) error {
	return nil
}

// Validate checks the output format.
func (o *VersionOptions) Validate() error {
	if o.Output != "" && o.Output != "json" {
		return WithHint(fmt.Errorf("unsupported output format %q", o.Output), "use -o json or leave -o out")
	}
	return nil
}

// Run prints the version.
func (o *VersionOptions) Run(context.Context) error {
	if o.Output == "json" {
		return printObject(o.Out, "json", map[string]string{"version": version.Version, "commit": version.Commit, "date": version.Date})
	}
	_, err := fmt.Fprintf(o.Out, "kubectl-dgdr %s\n", version.String())
	return err
}
