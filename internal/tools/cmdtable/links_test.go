package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// repoRoot is where README.md and docs/ are, seen from this package's directory.
const repoRoot = "../../.."

var (
	fence     = regexp.MustCompile("(?ms)^ {0,3}(```|~~~).*?^ {0,3}(```|~~~)[^\n]*$")
	codeSpan  = regexp.MustCompile("`[^`\n]*`")
	inlineRef = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	heading   = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*#*\s*$`)
)

// TestDocLinks checks that every relative link of README.md and docs/*.md names a file of the
// repository and, with a #fragment, a heading of that file (GitHub's anchors).
func TestDocLinks(t *testing.T) {
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	require.NoError(t, err)
	pages = append(pages, filepath.Join(repoRoot, "README.md"))
	require.Greater(t, len(pages), 1, "expected README.md and docs/*.md")

	for _, page := range pages {
		body, err := os.ReadFile(page)
		require.NoError(t, err)
		rel, _ := filepath.Rel(repoRoot, page)
		for _, target := range links(string(body)) {
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), filepath.FromSlash(file))
			}
			inRepo, _ := filepath.Rel(repoRoot, path)
			inRepo = filepath.ToSlash(inRepo)
			if !assert.FileExists(t, path, "%s links to %q", rel, target) || frag == "" {
				continue
			}
			linked, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Contains(t, anchors(string(linked)), frag, "%s links to %q: no such heading in %s", rel, target, inRepo)
		}
	}
}

// links returns the targets of the inline links and images of a Markdown page, outside code.
func links(md string) []string {
	md = fence.ReplaceAllString(md, "")
	md = codeSpan.ReplaceAllString(md, "")
	var out []string
	for _, m := range inlineRef.FindAllStringSubmatch(md, -1) {
		out = append(out, m[1])
	}
	return out
}

// anchors returns the anchors GitHub gives the headings of a page: lower case, spaces to hyphens,
// punctuation other than - and _ dropped, repeats numbered -1, -2, ….
func anchors(md string) []string {
	md = fence.ReplaceAllString(md, "")
	seen := map[string]int{}
	var out []string
	for _, m := range heading.FindAllStringSubmatch(md, -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out = append(out, a+"-"+strconv.Itoa(n))
		} else {
			out = append(out, a)
		}
		seen[a]++
	}
	return out
}

func TestAnchorsAndLinks(t *testing.T) {
	md := "# Planning offline (`kubectl dgdr plan`)\n## Web UI: `ui`, `plan --ui`\n## FAQ\n## FAQ\n" +
		"```\n# not a heading [x](nowhere.md)\n```\n" +
		"See [a](docs/a.md#faq), ![img](ui.png), `[code](no.md)` and [b](https://x.y/z)."
	assert.Equal(t, []string{"planning-offline-kubectl-dgdr-plan", "web-ui-ui-plan---ui", "faq", "faq-1"}, anchors(md))
	assert.Equal(t, []string{"docs/a.md#faq", "ui.png", "https://x.y/z"}, links(md))
}
