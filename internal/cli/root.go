// Package cli implements the kubectl-dgdr commands. Each command follows kubectl's
// Options + Complete/Validate/Run pattern and receives the one ConfigFlags made by NewRootCmd.
package cli

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// NewRootCmd builds `kubectl dgdr` with every subcommand.
func NewRootCmd(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:   "kubectl-dgdr",
		Short: "Turn \"serve this model under this latency target\" into a NVIDIA Dynamo deployment",
		Long: `kubectl dgdr drives DynamoGraphDeploymentRequests (DGDRs): it creates them, follows their
profiling, shows the Pareto front of configurations, and promotes or exports the generated
DynamoGraphDeployment. "plan" and "estimate" run the performance model offline, without a cluster.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations: map[string]string{
			// kubectl's plugin handling shows "kubectl dgdr" in usage lines.
			cobra.CommandDisplayNameAnnotation: "kubectl dgdr",
		},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	flags.AddFlags(root.PersistentFlags())

	for _, add := range []func(genericiooptions.IOStreams, *genericclioptions.ConfigFlags) *cobra.Command{
		NewCmdVersion,
		NewCmdBench,
		NewCmdEstimate, NewCmdPlan,
		NewCmdCreate, NewCmdGet, NewCmdStatus, NewCmdResults, NewCmdPromote, NewCmdExport, NewCmdLogs, NewCmdDelete, NewCmdUI, NewCmdCompletion,
	} {
		root.AddCommand(add(streams, flags))
	}
	return root
}
