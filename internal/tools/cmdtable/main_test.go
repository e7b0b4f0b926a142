package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/dgdr-dev/dgdr/internal/cli"
)

func run0(*cobra.Command, []string) {}

func TestRenderSkipsWhatHelpSkips(t *testing.T) {
	root := &cobra.Command{Use: "kubectl-dgdr", Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl dgdr"}}
	group := &cobra.Command{Use: "config", Short: "not runnable: only its children are rows"}
	group.AddCommand(
		&cobra.Command{Use: "view NAME", Short: "View one", Run: run0},
		&cobra.Command{Use: "secret", Short: "hidden", Hidden: true, Run: run0},
	)
	root.AddCommand(
		&cobra.Command{Use: "get [NAME]", Short: "List them", Run: run0},
		&cobra.Command{Use: "completion bash|zsh", Short: "Print a script | or not", Run: run0},
		&cobra.Command{Use: "__complete", Hidden: true, Run: run0},
		&cobra.Command{Use: "old", Short: "gone", Deprecated: "use get", Run: run0},
		&cobra.Command{Use: "empty", Short: "neither runnable nor a parent"},
		group,
	)
	root.InitDefaultHelpCmd()

	want := "| `kubectl dgdr` … | what it does |\n|---|---|\n" +
		"| `completion bash\\|zsh` | Print a script \\| or not |\n" +
		"| `config view NAME` | View one |\n" +
		"| `get [NAME]` | List them |\n"
	assert.Equal(t, want, render(rows(root)))
}

func TestRowsOfThePlugin(t *testing.T) {
	root := cli.NewRootCmd(genericiooptions.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard})
	got := map[string]string{}
	for _, r := range rows(root) {
		got[r.usage] = r.short
	}
	for _, usage := range []string{"plan --model MODEL", "create (-f FILENAME | NAME --model MODEL [flags])", "results NAME", "completion bash|zsh|fish|powershell", "version"} {
		assert.NotEmpty(t, got[usage], "no row for %q in %v", usage, got)
	}
	for usage := range got {
		assert.NotContains(t, usage, "help", "cobra's help is not a row")
		assert.False(t, strings.HasPrefix(usage, "__"), "hidden command %q is a row", usage)
	}
}

func TestSplice(t *testing.T) {
	doc := "# T\n\n" + beginMarker + "\nold\nrows\n" + endMarker + "\n\nafter\n"
	out, err := splice(doc, "| new |\n")
	require.NoError(t, err)
	assert.Equal(t, "# T\n\n"+beginMarker+"\n| new |\n"+endMarker+"\n\nafter\n", out)

	again, err := splice(out, "| new |\n")
	require.NoError(t, err)
	assert.Equal(t, out, again, "splicing the same table twice changes nothing")

	empty, err := splice(beginMarker+"\n"+endMarker+"\n", "| t |\n")
	require.NoError(t, err)
	assert.Equal(t, beginMarker+"\n| t |\n"+endMarker+"\n", empty)

	for name, bad := range map[string]string{
		"no markers":     "# T\n",
		"no end":         beginMarker + "\nx\n",
		"end then begin": "x\n" + endMarker + "\n" + beginMarker + "\n",
		"twice":          beginMarker + "\n\n" + endMarker + "\n" + beginMarker + "\n\n" + endMarker + "\n",
	} {
		_, err := splice(bad, "| t |\n")
		assert.Error(t, err, name)
	}
}
