package cli

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/dgdr-dev/dgdr/internal/simengine"
)

// runBench runs `kubectl dgdr bench args…` through the root command and returns stdout, stderr
// and the error.
func runBench(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	root := NewRootCmd(streams)
	root.SetArgs(append([]string{"bench"}, args...))
	err := root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

func startBenchSim(t *testing.T, cfg simengine.Config) *simengine.Server {
	t.Helper()
	s, err := simengine.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

var decimal = regexp.MustCompile(`[0-9]+\.[0-9]+`)

// maskTable keeps a table's structure (headers, columns, integer cells such as requests, errors,
// ISL and OSL) and replaces the measured decimals, which vary run to run, with "#". Spacing is
// normalised since column widths follow the numbers.
func maskTable(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(strings.Join(strings.Fields(decimal.ReplaceAllString(line, "#")), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// measuredKeys are the JSON fields holding timings; maskJSON zeroes them and keeps everything
// else, so the golden file pins the structure and the deterministic counts.
var measuredKeys = map[string]bool{
	"ttftMs": true, "itlMs": true, "tokenGapMs": true, "e2eMs": true, "durationSeconds": true,
	"outputTokensPerSecond": true, "tokensPerSecondPerUser": true, "requestsPerSecond": true,
	"parseNsPerChunk": true, "arrivalLagMs": true,
}

func maskJSON(t *testing.T, raw string, url string) []byte {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(raw), &v))
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				switch {
				case measuredKeys[k]:
					if m, ok := val.(map[string]any); ok {
						for mk := range m {
							m[mk] = "#"
						}
						continue
					}
					x[k] = "#"
				default:
					x[k] = walk(val)
				}
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		case string:
			return strings.ReplaceAll(x, url, "URL")
		}
		return v
	}
	out, err := json.MarshalIndent(walk(v), "", "  ")
	require.NoError(t, err)
	return append(out, '\n')
}

func TestBenchOutputs(t *testing.T) {
	sim := startBenchSim(t, simengine.Config{Model: "org/model", PrefillBaseMs: 2, DecodeBaseMs: 1, ChatTemplateTokens: 6})
	common := []string{"--url", sim.URL, "--isl", "32", "--osl", "8", "--requests", "4"}
	tests := []struct {
		name string
		args []string
	}{
		{"table", []string{"--concurrency", "1,2"}},
		{"wide", []string{"--concurrency", "1,2", "-o", "wide"}},
		{"rate", []string{"--rate", "50", "--endpoint", "completions"}},
		{"json", []string{"--concurrency", "1,2", "-o", "json"}},
		{"yaml", []string{"--rate", "50", "-o", "yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := runBench(t, append(common, tt.args...)...)
			require.NoError(t, err, errOut)
			switch tt.name {
			case "json":
				golden(t, "bench/json.json", maskJSON(t, out, sim.URL))
			case "yaml":
				assert.Contains(t, out, "levels:\n- ")
				assert.Contains(t, out, "rate: 50\n")
				assert.Contains(t, out, "ttftMs:\n")
			default:
				golden(t, "bench/"+tt.name+".txt", []byte(maskTable(out)))
			}
			assert.Contains(t, errOut, ": 4 requests, 0 errors, TTFT p50 ", "progress goes to stderr")
			assert.NotContains(t, errOut, "warning")
		})
	}
}

func TestBenchReportsErrors(t *testing.T) {
	sim := startBenchSim(t, simengine.Config{ErrorRate: 0.5, Seed: 3})
	out, errOut, err := runBench(t, "--url", sim.URL, "--isl", "8", "--osl", "4", "--requests", "20", "--no-calibration", "-o", "json")
	require.NoError(t, err, "failed requests are results, not a failed command")
	assert.Contains(t, errOut, "warning: concurrency 1: request failed: HTTP 500: simulated engine error\n")
	var res struct {
		Levels []struct {
			Requests      int      `json:"requests"`
			Errors        int      `json:"errors"`
			ErrorMessages []string `json:"errorMessages"`
		} `json:"levels"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Len(t, res.Levels, 1)
	assert.Equal(t, 20, res.Levels[0].Requests+res.Levels[0].Errors)
	assert.Positive(t, res.Levels[0].Errors)
	assert.Equal(t, []string{"HTTP 500: simulated engine error"}, res.Levels[0].ErrorMessages)
}

func TestBenchFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no url", []string{}, "error: url is required (hint: see kubectl dgdr bench --help for the flags)"},
		{"both loads", []string{"--url", "http://x", "--rate", "2", "--concurrency", "4"}, "set concurrency levels or request rates, not both"},
		{"both amounts", []string{"--url", "http://x", "--duration", "1m", "--requests", "4"}, "set a number of requests or a duration per level, not both"},
		{"bad endpoint", []string{"--url", "http://x", "--endpoint", "embeddings"}, `endpoint "embeddings" is not one of chat, completions`},
		{"bad output", []string{"--url", "http://x", "-o", "xml"}, `error: unsupported output format "xml" (hint: use -o table, wide, json or yaml)`},
		{"bad extra body", []string{"--url", "http://x", "--extra-body", "[1]"}, "--extra-body is not a JSON object"},
		{"nothing listening", []string{"--url", "http://127.0.0.1:1", "--model", "m"},
			"connection refused (hint: check --url and --model: http://127.0.0.1:1/v1/models should answer)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runBench(t, tt.args...)
			require.Error(t, err)
			var line bytes.Buffer
			PrintError(&line, err)
			assert.Contains(t, line.String(), tt.want)
			assert.Equal(t, 1, strings.Count(line.String(), "\n"), "errors are one line")
			assert.Empty(t, out)
		})
	}
}
