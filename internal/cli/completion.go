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

// completionScripts write the completion script of the root command for each shell.
var completionScripts = map[string]func(root *cobra.Command, w io.Writer) error{
	"bash":       func(r *cobra.Command, w io.Writer) error { return r.GenBashCompletionV2(w, true) },
	"zsh":        func(r *cobra.Command, w io.Writer) error { return r.GenZshCompletion(w) },
	"fish":       func(r *cobra.Command, w io.Writer) error { return r.GenFishCompletion(w, true) },
	"powershell": func(r *cobra.Command, w io.Writer) error { return r.GenPowerShellCompletionWithDesc(w) },
}

// CompletionOptions prints a shell completion script.
type CompletionOptions struct {
	genericiooptions.IOStreams

	Shell string

	root *cobra.Command
}

// NewCmdCompletion prints a shell completion script. kubectl (≥1.26) completes plugin arguments through an
// executable named kubectl_complete-dgdr on PATH that runs `kubectl-dgdr __complete "$@"`.
func NewCmdCompletion(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &CompletionOptions{IOStreams: streams}
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
		Args:      withUsageHint(cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs)),
		RunE:      runCommand(getter, o),
	}
}

// Complete takes the shell and the command tree to complete; no cluster is asked.
func (o *CompletionOptions) Complete(_ genericclioptions.RESTClientGetter, cmd *cobra.Command, args []string) error {
	o.Shell, o.root = args[0], cmd.Root()
	return nil
}

// Validate checks the shell (cobra checked it already when the command line named it).
func (o *CompletionOptions) Validate() error {
	if _, ok := completionScripts[o.Shell]; !ok {
		return WithHint(fmt.Errorf("unsupported shell %q", o.Shell), "use bash, zsh, fish or powershell")
	}
	return nil
}

// Run writes the script.
func (o *CompletionOptions) Run(context.Context) error {
	return completionScripts[o.Shell](o.root, o.Out)
}

// completeDGDRNames completes the first maxArgs positional arguments with the DGDR names of the namespace
// given by -n (or the kubeconfig's). Errors complete nothing rather than print: the shell shows no output.
func completeDGDRNames(getter genericclioptions.RESTClientGetter, maxArgs int) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) >= maxArgs {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := newCluster(getter, genericiooptions.IOStreams{ErrOut: io.Discard})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		items, err := c.listDGDRs(cmd.Context(), c.namespace)
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
