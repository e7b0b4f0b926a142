package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// NewCmdCompletion prints a shell completion script. kubectl (≥1.26) completes plugin arguments through an
// executable named kubectl_complete-dgdr on PATH that runs `kubectl-dgdr __complete "$@"`.
func NewCmdCompletion(streams genericiooptions.IOStreams, _ *genericclioptions.ConfigFlags) *cobra.Command {
	shells := map[string]func(root *cobra.Command, w io.Writer) error{
		"bash":       func(r *cobra.Command, w io.Writer) error { return r.GenBashCompletionV2(w, true) },
		"zsh":        func(r *cobra.Command, w io.Writer) error { return r.GenZshCompletion(w) },
		"fish":       func(r *cobra.Command, w io.Writer) error { return r.GenFishCompletion(w, true) },
		"powershell": func(r *cobra.Command, w io.Writer) error { return r.GenPowerShellCompletionWithDesc(w) },
	}
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Print a completion script for kubectl-dgdr: subcommands, flags and the names of the
DynamoGraphDeploymentRequests in the namespace.

For "kubectl dgdr <TAB>" (kubectl 1.26 or later), also put an executable named kubectl_complete-dgdr on
your PATH containing:
  #!/usr/bin/env sh
  kubectl-dgdr __complete "$@"`,
		Example: `  # Load completions into the current bash session
  source <(kubectl-dgdr completion bash)

  # Install them for zsh
  kubectl-dgdr completion zsh > "${fpath[1]}/_kubectl-dgdr"`,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return shells[args[0]](cmd.Root(), streams.Out)
		},
	}
}

// completeDGDRNames completes the first maxArgs positional arguments with the DGDR names of the namespace
// given by -n (or the kubeconfig's). Errors complete nothing rather than print: the shell shows no output.
func completeDGDRNames(flags *genericclioptions.ConfigFlags, maxArgs int) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) >= maxArgs {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := newCluster(flags, genericiooptions.IOStreams{ErrOut: io.Discard})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		items, err := c.listDGDRs(ctx, c.namespace)
		if err != nil {
			cobra.CompDebugln(fmt.Sprintf("listing DGDRs: %v", err), true)
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		for _, u := range items {
			if strings.HasPrefix(u.GetName(), toComplete) {
				// "name<TAB>description": shells that show descriptions show the phase.
				phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
				if phase == "" {
					phase = string(v1alpha1.PhasePending)
				}
				names = append(names, u.GetName()+"\t"+phase)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
