package cli

import (
	"bytes"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// The -update flag rewrites golden files. Registered only once, since several test files of
// this package may want it.
var _ = func() bool {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata/")
	}
	return true
}()

// golden compares got with testdata/name, or rewrites the file under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing: run go test -update")
	assert.Equal(t, string(want), string(got))
}

// sampleFront is a small hand-written front (no performance model involved).
func sampleFront() []profile.Config {
	w := func(role profile.Role, count, tp, batch int) profile.Worker {
		return profile.Worker{Role: role, Count: count, TP: tp, PP: 1, EP: 1, Batch: batch}
	}
	return []profile.Config{
		{Backend: "vllm", Mode: profile.ModeAgg, GPUs: 32, Replicas: 32, Workers: []profile.Worker{w(profile.RoleAgg, 1, 1, 128)},
			TTFTMs: 95, ITLMs: 30, TokensPerSecondPerGPU: 1300, TokensPerSecondPerUser: 33.3},
		{Backend: "trtllm", Mode: profile.ModeDisagg, GPUs: 32, Replicas: 4,
			Workers: []profile.Worker{w(profile.RolePrefill, 2, 2, 1), w(profile.RoleDecode, 1, 4, 68)},
			TTFTMs:  95, ITLMs: 9.97, TokensPerSecondPerGPU: 684, TokensPerSecondPerUser: 100.3, MeetsSLA: true},
		{Backend: "trtllm", Mode: profile.ModeAgg, GPUs: 32, Replicas: 8, Workers: []profile.Worker{w(profile.RoleAgg, 1, 4, 16)},
			TTFTMs: 80, ITLMs: 9.2, TokensPerSecondPerGPU: 410, TokensPerSecondPerUser: 108.7, MeetsSLA: true},
		{Backend: "vllm", Mode: profile.ModeAgg, GPUs: 32, Replicas: 4, Workers: []profile.Worker{w(profile.RoleAgg, 1, 8, 1)},
			TTFTMs: 20, ITLMs: 4, TokensPerSecondPerGPU: 30, TokensPerSecondPerUser: 250, MeetsSLA: true},
	}
}

func TestRenderParetoTable(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, RenderParetoTable(&buf, sampleFront(), 1))
	golden(t, "render/table.txt", buf.Bytes())

	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	require.Len(t, lines, 5, "a header and one row per configuration")
	assert.Contains(t, lines[0], "TOK/S/GPU")
	for i, l := range lines[1:] {
		assert.Equalf(t, i == 1, strings.HasPrefix(l, "*"), "row %d: only the selected row is marked: %q", i, l)
	}
	assert.Contains(t, lines[2], "4x (2P tp2 bs1 + 1D tp4 bs68)")

	buf.Reset()
	require.NoError(t, RenderParetoTable(&buf, sampleFront(), -1))
	assert.NotContains(t, buf.String(), "*", "no row marked without a selection")
}

func TestLayout(t *testing.T) {
	tests := []struct {
		name string
		c    profile.Config
		want string
	}{
		{"agg", profile.Config{Replicas: 8, Workers: []profile.Worker{{Role: profile.RoleAgg, Count: 1, TP: 4, PP: 1, EP: 1, Batch: 16}}}, "8x tp4 bs16"},
		{"agg moe with attention dp", profile.Config{Replicas: 1, Workers: []profile.Worker{{Role: profile.RoleAgg, Count: 1, TP: 1, PP: 1, DP: 8, EP: 8, Batch: 64}}}, "1x tp1 dp8 ep8 bs64"},
		{"pipeline", profile.Config{Replicas: 2, Workers: []profile.Worker{{Role: profile.RoleAgg, Count: 1, TP: 8, PP: 2, EP: 1, Batch: 32}}}, "2x tp8 pp2 bs32"},
		{"disagg", profile.Config{Replicas: 2, Workers: []profile.Worker{
			{Role: profile.RolePrefill, Count: 3, TP: 1, PP: 1, EP: 1, Batch: 1},
			{Role: profile.RoleDecode, Count: 1, TP: 4, PP: 1, EP: 1, Batch: 64}}}, "2x (3P tp1 bs1 + 1D tp4 bs64)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.c.Layout()) })
	}
}

func TestRenderPlot(t *testing.T) {
	var buf bytes.Buffer
	pts := PlotPoints(sampleFront())
	require.NoError(t, RenderPlot(&buf, pts, 1, 80, 12))
	golden(t, "render/plot.txt", buf.Bytes())

	out := buf.String()
	assert.Equal(t, 1, strings.Count(out, string(MarkSelected))-1, "the selected point and the legend carry the mark")
	assert.Equal(t, 0, strings.Count(out, string(MarkDisagg))-1, "the disagg point was replaced by the selection")
	lines := strings.Split(out, "\n")
	assert.Contains(t, lines[1], "2000", "the y axis ends at the round value above the largest point")
	// The point with the most tokens/s/user sits on the bottom-right edge of the plot.
	assert.True(t, strings.HasSuffix(lines[12], string(MarkAgg)), "%q", lines[12])
}

// The selected point carries its p10–p90 interval as error bars; no other point does.
func TestRenderPlotBars(t *testing.T) {
	front := sampleFront()
	for i := range front {
		c := &front[i]
		c.ITLP10Ms, c.ITLP90Ms = 0.8*c.ITLMs, 1.25*c.ITLMs
		c.TokensPerSecondPerGPUP10, c.TokensPerSecondPerGPUP90 = 0.7*c.TokensPerSecondPerGPU, 1.3*c.TokensPerSecondPerGPU
	}
	pts := PlotPoints(front)
	assert.InDelta(t, 1000/(1.25*9.97), pts[1].XLo, 1e-9, "tokens/s/user from ITL p90")
	assert.InDelta(t, 1000/(0.8*9.97), pts[1].XHi, 1e-9)
	grid := func(selected int) (string, []string) {
		var buf bytes.Buffer
		require.NoError(t, RenderPlot(&buf, pts, selected, 80, 12))
		lines := strings.Split(buf.String(), "\n")
		return buf.String(), lines[1:13]
	}
	out, rows := grid(1)
	assert.Contains(t, out, "(-- | its p10-p90)")
	var row, col int
	for r, l := range rows {
		if c := strings.IndexRune(l, MarkSelected); c >= 0 {
			row, col = r, c
		}
	}
	require.NotZero(t, col)
	assert.Equal(t, byte('-'), rows[row][col-1], "a bar to the left: %q", rows[row])
	assert.Equal(t, byte('-'), rows[row][col+1], "and to the right")
	assert.Equal(t, byte('|'), rows[row-1][col], "a bar up")
	assert.Equal(t, byte('|'), rows[row+1][col], "and down")

	out, rows = grid(-1)
	assert.NotContains(t, out, "p10-p90")
	for _, l := range rows {
		assert.NotContains(t, l[strings.IndexRune(l, '|')+1:], "|", "no bars without a selection: %q", l)
		assert.NotContains(t, l, "-")
	}
}

func TestRenderPlotFitsWidth(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		width, height := 32+r.IntN(100), 3+r.IntN(30)
		pts := make([]PlotPoint, r.IntN(50))
		for i := range pts {
			pts[i] = PlotPoint{X: math.Pow(10, r.Float64()*8-2), Y: math.Pow(10, r.Float64()*8-2), Mark: MarkAgg}
			if r.IntN(2) == 0 {
				p := &pts[i]
				p.XLo, p.XHi, p.YLo, p.YHi = p.X*r.Float64(), p.X*(1+3*r.Float64()), p.Y*r.Float64(), p.Y*(1+3*r.Float64())
			}
		}
		if len(pts) > 0 && r.IntN(4) == 0 {
			pts[0].X = math.Inf(1)
		}
		var buf bytes.Buffer
		require.NoError(t, RenderPlot(&buf, pts, r.IntN(len(pts)+1)-1, width, height))
		lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
		require.Len(t, lines, height+5, "title, rows, axis, ticks, axis title, legend")
		for _, l := range lines {
			require.LessOrEqualf(t, utf8.RuneCountInString(l), width, "line %q wider than %d", l, width)
		}
	}
}

func TestRenderPlotTooSmall(t *testing.T) {
	err := RenderPlot(&bytes.Buffer{}, nil, -1, 10, 2)
	require.ErrorContains(t, err, "plot needs at least")
}
