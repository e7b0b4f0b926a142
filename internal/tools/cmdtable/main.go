// Command cmdtable writes the plugin's command table into README.md, between the markers below, from the
// cobra commands themselves, so the README cannot list a command the binary lacks. `make docs` runs it;
// `make verify` runs it and fails when README.md changes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/dgdr-dev/dgdr/internal/cli"
)

const (
	beginMarker = "<!-- BEGIN commands (make docs) -->"
	endMarker   = "<!-- END commands (make docs) -->"
)

func main() {
	readme := flag.String("readme", "README.md", "the Markdown file whose command table is rewritten")
	flag.Parse()
	if err := run(*readme); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the README: %w", err)
	}
	root := cli.NewRootCmd(genericiooptions.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard})
	out, err := splice(string(doc), render(rows(root)))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if out == string(doc) {
		return nil
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// row is one command: its usage relative to the root ("create (-f FILENAME | NAME …)") and its Short.
type row struct {
	usage, short string
}

// rows lists every command a user can run under root, depth first in cobra's (name) order. Hidden and
// deprecated commands and cobra's help are left out, as `kubectl dgdr --help` leaves them out.
func rows(root *cobra.Command) []row {
	var out []row
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if !sub.IsAvailableCommand() || sub.Name() == "help" {
				continue
			}
			if sub.Runnable() {
				usage := strings.TrimPrefix(sub.CommandPath(), root.CommandPath()+" ")
				if _, args, ok := strings.Cut(sub.Use, " "); ok {
					usage += " " + args
				}
				out = append(out, row{usage: usage, short: sub.Short})
			}
			walk(sub)
		}
	}
	walk(root)
	return out
}

// render writes the rows as a GitHub Markdown table. Pipes are escaped even inside code spans: GitHub
// splits table cells on them before it reads the spans.
func render(rows []row) string {
	var b strings.Builder
	b.WriteString("| `kubectl dgdr` … | what it does |\n|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| `%s` | %s |\n", escapePipes(r.usage), escapePipes(r.short))
	}
	return b.String()
}

func escapePipes(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// splice replaces what lies between the markers (each on its own line) with table.
func splice(doc, table string) (string, error) {
	begin := strings.Index(doc, beginMarker+"\n")
	end := strings.Index(doc, "\n"+endMarker)
	switch {
	case begin < 0 || end < 0:
		return "", fmt.Errorf("expected the lines %q and %q around the command table", beginMarker, endMarker)
	case end < begin:
		return "", errors.New("the END marker of the command table comes before its BEGIN marker")
	case strings.Count(doc, beginMarker) > 1 || strings.Count(doc, endMarker) > 1:
		return "", errors.New("expected one command table, found its markers more than once")
	}
	return doc[:begin+len(beginMarker)+1] + table + doc[end+1:], nil
}
