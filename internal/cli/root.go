package cli

import (
	"context"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// command is what every command's options implement, as kubectl's commands do: Complete resolves the
// arguments, flags and clients (without contacting the cluster), Validate checks them, Run does the work.
type command interface {
	Complete(getter genericclioptions.RESTClientGetter, cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// runCommand is the RunE of every command. The context is the root's (cancelled on an interrupt).
func runCommand(getter genericclioptions.RESTClientGetter, o command) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(getter, cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}

// NewRootCmd builds `kubectl dgdr` with every subcommand. Its one ConfigFlags (--kubeconfig, -n, --context…)
// is the getter every subcommand's Complete reads. Execute it with ExecuteContext and a context that an
// interrupt cancels.
func NewRootCmd(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	root := newRootCmd(streams, flags)
	flags.AddFlags(root.PersistentFlags())
	return root
}

// newRootCmd is the command tree, every subcommand reading getter (tests pass one that reaches no cluster).
func newRootCmd(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
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
	root.SetFlagErrorFunc(usageError)

	for _, add := range []func(genericiooptions.IOStreams, genericclioptions.RESTClientGetter) *cobra.Command{
		NewCmdVersion,
		NewCmdBench,
		NewCmdEstimate, NewCmdPlan, NewCmdCalibrate,
		NewCmdCreate, NewCmdGet, NewCmdStatus, NewCmdResults, NewCmdPromote, NewCmdExport, NewCmdLogs, NewCmdRerun, NewCmdHistory, NewCmdCancel, NewCmdDelete, NewCmdUI, NewCmdCompletion,
		NewCmdDrift,
	} {
		root.AddCommand(add(streams, getter))
	}
	return root
}

// usageError gives cobra's own errors (an unknown flag, a flag value that does not parse, a wrong number
// of arguments) the hint every other error has.
func usageError(cmd *cobra.Command, err error) error {
	return WithHint(err, "see `%s --help`", cmd.CommandPath())
}

// withUsageHint is a cobra argument check whose error carries usageError's hint.
func withUsageHint(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError(cmd, err)
		}
		return nil
	}
}
