package ship

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sampleDockerfile = `# syntax=docker/dockerfile:1
ARG GO=1.26
FROM --platform=$BUILDPLATFORM golang:${GO} AS build
ARG TARGETOS TARGETARCH
ARG LDFLAGS="-s -w"
ENV CGO_ENABLED=0 A=b
RUN --mount=type=cache,target=/go/pkg/mod \
	# a comment inside the continuation
	GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "$LDFLAGS" -o /out/one ./cmd/one && \
	go build -o=/out/two -tags 'a b' ./cmd/two; echo done

FROM scratch
COPY --from=build /out/one /bin/one
USER 65532:65532
ENTRYPOINT ["/bin/one", "--flag"]
CMD /bin/one
`

func TestParseDockerfile(t *testing.T) {
	d, err := ParseDockerfile(strings.NewReader(sampleDockerfile))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"GO": "1.26"}, d.Args)
	require.Len(t, d.Stages, 2)
	assert.Equal(t, "golang:${GO}", d.Stages[0].Base)
	assert.Equal(t, "build", d.Stages[0].Name)

	b, err := d.Stage("build")
	require.NoError(t, err)
	run := b.Find("RUN")
	require.Len(t, run, 1)
	assert.Equal(t, 7, run[0].Line)
	assert.Equal(t, []string{"--mount=type=cache,target=/go/pkg/mod"}, run[0].Flags)
	_, err = d.Stage("nope")
	require.Error(t, err)

	final := d.Final()
	assert.Equal(t, "scratch", final.Base)
	cp := final.Find("COPY")
	require.Len(t, cp, 1)
	from, ok := cp[0].Flag("from")
	assert.True(t, ok)
	assert.Equal(t, "build", from)
	assert.Equal(t, "/out/one /bin/one", cp[0].Args)
	ep, err := final.Find("ENTRYPOINT")[0].Exec()
	require.NoError(t, err)
	assert.Equal(t, []string{"/bin/one", "--flag"}, ep)
	_, err = final.Find("CMD")[0].Exec()
	require.ErrorContains(t, err, "exec form")

	vars, err := d.Vars(b, map[string]string{"TARGETOS": "linux", "TARGETARCH": "arm64"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"TARGETOS": "linux", "TARGETARCH": "arm64", "LDFLAGS": "-s -w", "CGO_ENABLED": "0", "A": "b"}, vars)

	builds, err := b.GoBuilds(vars)
	require.NoError(t, err)
	require.Len(t, builds, 2)
	assert.Equal(t, GoBuild{
		Line:    7,
		Env:     map[string]string{"TARGETOS": "linux", "TARGETARCH": "arm64", "LDFLAGS": "-s -w", "CGO_ENABLED": "0", "A": "b", "GOOS": "linux", "GOARCH": "arm64"},
		Flags:   []string{"-trimpath", "-ldflags", "-s -w"},
		Output:  "/out/one",
		Package: "./cmd/one",
	}, builds[0])
	assert.Equal(t, []string{"-tags", "a b"}, builds[1].Flags)
	assert.Equal(t, "/out/two", builds[1].Output)
	assert.Equal(t, "./cmd/two", builds[1].Package)
	assert.NotContains(t, builds[1].Env, "GOOS", "a command's own assignments do not leak into the next")
}

func TestParseDockerfileErrors(t *testing.T) {
	tests := map[string]struct {
		text, wantErr string
	}{
		"no FROM":              {"ARG A=1\n", "expected at least one FROM"},
		"RUN before FROM":      {"RUN true\nFROM scratch\n", "expected FROM or ARG before the first stage"},
		"trailing backslash":   {"FROM scratch\nRUN true \\\n", "trailing backslash"},
		"malformed FROM":       {"FROM a b\n", "expected FROM IMAGE [AS NAME]"},
		"unknown arg in value": {"ARG A=$B\nFROM scratch\n", "undefined variable B"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseDockerfile(strings.NewReader(tt.text))
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestGoBuildsErrors(t *testing.T) {
	tests := map[string]struct {
		run, wantErr string
	}{
		"two packages":      {"go build -o /out/x ./a ./b", "with one package"},
		"no output":         {"go build ./a", "-o OUTPUT PACKAGE"},
		"unknown variable":  {"go build -ldflags \"$NOPE\" -o /x ./a", "undefined variable NOPE"},
		"pipe":              {"go build -o /x ./a | tee log", "unsupported shell syntax"},
		"default expansion": {"go build -o ${OUT:-/x} ./a", "unsupported expansion"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			d, err := ParseDockerfile(strings.NewReader("FROM golang AS build\nRUN " + tt.run + "\n"))
			require.NoError(t, err)
			_, err = d.Stages[0].GoBuilds(map[string]string{})
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestSplitShellWords(t *testing.T) {
	vars := map[string]string{"A": "x y", "B1": "z"}
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "", want: nil},
		{in: "  go   build  ", want: []string{"go", "build"}},
		{in: `a "b c" 'd $A' e\ f`, want: []string{"a", "b c", "d $A", "e f"}},
		{in: `$A "$A" ${B1}x "\"q\" \$A"`, want: []string{"x y", "x y", "zx", `"q" $A`}},
		{in: "a&&b ; c", want: []string{"a", "&&", "b", ";", "c"}},
		{in: `""`, want: []string{""}},
		{in: `x=$A`, want: []string{"x=x y"}},
		{in: `"unterminated`, wantErr: "unterminated \""},
		{in: `'unterminated`, wantErr: "unterminated '"},
		{in: `$NOPE`, wantErr: "undefined variable NOPE"},
		{in: `${A`, wantErr: "expected }"},
		{in: `a > b`, wantErr: "unsupported shell syntax"},
		{in: "$(id)", wantErr: "unsupported use of $"},
		{in: "\"`id`\"", wantErr: "command substitution"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := SplitShellWords(tt.in, lookupIn(vars))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// FuzzSplitShellWords: any input either fails cleanly or splits into words that, re-quoted with
// single quotes, split back into the same words.
func FuzzSplitShellWords(f *testing.F) {
	for _, s := range []string{"go build -o /x ./a", `a "b $A" 'c'`, "a&&b;c", `\`, `"\`, "${A}", "$"} {
		f.Add(s)
	}
	lookup := func(k string) (string, bool) { return "v " + k, k == "A" }
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitShellWords(s, lookup)
		if err != nil {
			return
		}
		var quoted []string
		for _, w := range words {
			if w == "&&" || w == ";" {
				quoted = append(quoted, w)
				continue
			}
			if strings.Contains(w, "'") {
				return // cannot be single-quoted; nothing to compare
			}
			quoted = append(quoted, "'"+w+"'")
		}
		again, err := SplitShellWords(strings.Join(quoted, " "), lookup)
		require.NoError(t, err)
		require.Equal(t, words, again)
	})
}

func FuzzParseDockerfile(f *testing.F) {
	f.Add(sampleDockerfile)
	f.Add("FROM a\nRUN \\\n")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDockerfile(strings.NewReader(s))
		if err != nil {
			return
		}
		require.NotEmpty(t, d.Stages)
		for i := range d.Stages {
			_, _ = d.Stages[i].GoBuilds(map[string]string{})
		}
	})
}
