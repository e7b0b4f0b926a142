package cli

import (
	"fmt"
	"io"
	"math"
	"strings"

	"k8s.io/cli-runtime/pkg/printers"

	"github.com/dgdr-dev/dgdr/internal/numfmt"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// Plot marks: agg and disagg configurations, and the selected one (drawn over any other).
const (
	MarkAgg      = 'A'
	MarkDisagg   = 'D'
	MarkSelected = '*'
)

// plotBarsLegend ends the legend when the selected point's error bars are drawn (and it fits).
const plotBarsLegend = " (-- | its p10-p90)"

// Axis titles of the Pareto plot.
const (
	plotXTitle = "tokens/s/user"
	plotYTitle = "tokens/s/GPU"
)

// RenderParetoTable writes configs as a kubectl-style table, one row per configuration in the
// given order. Row selected (−1 for none) is marked with "*" in the first column.
func RenderParetoTable(w io.Writer, configs []profile.Config, selected int) error {
	tw := printers.GetNewTabWriter(w)
	fmt.Fprintln(tw, "\tBACKEND\tMODE\tGPUS\tLAYOUT\tTTFT(ms)\tITL(ms)\tTOK/S/GPU\tTOK/S/USER\tSLA")
	for i, c := range configs {
		mark := ""
		if i == selected {
			mark = "*"
		}
		sla := "no"
		if c.MeetsSLA {
			sla = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%.1f\t%.1f\t%s\n", mark, c.Backend, c.Mode, c.GPUs,
			c.Layout(), withBand(c.TTFTMs, c.TTFTP10Ms, c.TTFTP90Ms, 1), withBand(c.ITLMs, c.ITLP10Ms, c.ITLP90Ms, 2),
			c.TokensPerSecondPerGPU, c.TokensPerSecondPerUser, sla)
	}
	return tw.Flush()
}

// PlotPoint is one point of the plot: X is tokens/s/user, Y tokens/s/GPU, Mark its character.
type PlotPoint struct {
	X, Y float64
	Mark rune
	// XLo, XHi, YLo and YHi are the point's p10–p90 interval on each axis (all zero: none).
	XLo, XHi, YLo, YHi float64
}

// PlotPoints turns configurations into plot points marked by mode, with their intervals: tokens/s/user
// is 1000/ITL, so its interval runs from 1000/ITL p90 to 1000/ITL p10.
func PlotPoints(configs []profile.Config) []PlotPoint {
	pts := make([]PlotPoint, len(configs))
	for i, c := range configs {
		m := MarkAgg
		if c.Mode == profile.ModeDisagg {
			m = MarkDisagg
		}
		pts[i] = PlotPoint{X: c.TokensPerSecondPerUser, Y: c.TokensPerSecondPerGPU, Mark: m}
		if c.ITLP10Ms > 0 && c.ITLP90Ms > 0 && c.TokensPerSecondPerGPUP10 > 0 {
			pts[i].XLo, pts[i].XHi = 1000/c.ITLP90Ms, 1000/c.ITLP10Ms
			pts[i].YLo, pts[i].YHi = c.TokensPerSecondPerGPUP10, c.TokensPerSecondPerGPUP90
		}
	}
	return pts
}

// hasBars says whether p carries an interval to draw.
func (p PlotPoint) hasBars() bool {
	return p.XHi > 0 && p.YHi > 0 && plotFinite(p.XHi) && plotFinite(p.YHi)
}

// RenderPlot draws points as characters on a plot of tokens/s/GPU (up) against tokens/s/user
// (right), both axes from 0, and marks point selected (−1 for none) with MarkSelected, with its
// p10–p90 interval as error bars ("-" across, "|" up and down; only the selected point's, since the
// front's intervals overlap). No line is wider than width columns; height is the number of rows of
// the plotting area. Points with a non-finite coordinate are left out. The output is plain ASCII apart
// from the points' marks.
func RenderPlot(w io.Writer, points []PlotPoint, selected, width, height int) error {
	const minWidth, minHeight = 32, 3
	if width < minWidth || height < minHeight {
		return fmt.Errorf("plot needs at least %d columns and %d rows, got %d and %d", minWidth, minHeight, width, height)
	}
	xmax, ymax := 0.0, 0.0
	for _, p := range points {
		if plotFinite(p.X) && plotFinite(p.Y) {
			xmax, ymax = max(xmax, p.X), max(ymax, p.Y)
		}
	}
	bars := selected >= 0 && selected < len(points) && points[selected].hasBars() && plotFinite(points[selected].X) && plotFinite(points[selected].Y)
	if bars {
		xmax, ymax = max(xmax, points[selected].XHi), max(ymax, points[selected].YHi)
	}
	xmax, ymax = plotNiceCeil(xmax), plotNiceCeil(ymax)

	// Ticks at 0, half and the top of each axis; the half tick sits on the nearest row or column.
	rowOf := func(y float64) int { return height - 1 - int(math.Round(plotClamp(y/ymax)*float64(height-1))) }
	yTicks := map[int]string{rowOf(0): "0", rowOf(ymax / 2): plotTick(ymax / 2), rowOf(ymax): plotTick(ymax)}
	labelW := 0
	for _, l := range yTicks {
		labelW = max(labelW, len(l))
	}
	plotW := width - labelW - 2

	colOf := func(x float64) int { return int(math.Round(plotClamp(x/xmax) * float64(plotW-1))) }
	grid := make([][]rune, height)
	for r := range grid {
		grid[r] = []rune(strings.Repeat(" ", plotW))
	}
	put := func(p PlotPoint, mark rune) {
		if !plotFinite(p.X) || !plotFinite(p.Y) {
			return
		}
		col, row := colOf(p.X), rowOf(p.Y)
		if grid[row][col] == ' ' || grid[row][col] == '-' || grid[row][col] == '|' || mark == MarkSelected {
			grid[row][col] = mark
		}
	}
	if bars {
		p := points[selected]
		for c := colOf(p.XLo); c <= colOf(p.XHi); c++ {
			grid[rowOf(p.Y)][c] = '-'
		}
		for r := rowOf(p.YHi); r <= rowOf(p.YLo); r++ {
			grid[r][colOf(p.X)] = '|'
		}
	}
	for i, p := range points {
		if i != selected {
			put(p, p.Mark)
		}
	}
	if selected >= 0 && selected < len(points) {
		put(points[selected], MarkSelected)
	}

	var b strings.Builder
	b.WriteString(plotYTitle + "\n")
	for r, row := range grid {
		fmt.Fprintf(&b, "%*s |%s\n", labelW, yTicks[r], strings.TrimRight(string(row), " "))
	}
	fmt.Fprintf(&b, "%s +%s\n", strings.Repeat(" ", labelW), strings.Repeat("-", plotW))

	// X tick labels: 0 under the axis origin, the middle and the maximum under their columns.
	xl := []rune(strings.Repeat(" ", width))
	place := func(col int, s string) {
		col = min(max(col-len(s)/2, 0), width-len(s))
		copy(xl[col:], []rune(s))
	}
	origin := labelW + 1
	place(origin, "0")
	place(origin+colOf(xmax/2), plotTick(xmax/2))
	place(origin+colOf(xmax), plotTick(xmax))
	b.WriteString(strings.TrimRight(string(xl), " ") + "\n")
	fmt.Fprintf(&b, "%*s\n", width, plotXTitle)
	legend := fmt.Sprintf("%c agg   %c disagg   %c selected", MarkAgg, MarkDisagg, MarkSelected)
	if bars && len(legend)+len(plotBarsLegend) <= width {
		legend += plotBarsLegend
	}
	b.WriteString(legend + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func plotFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func plotClamp(f float64) float64 { return min(max(f, 0), 1) }

// plotNiceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten, so axis ends are round numbers.
func plotNiceCeil(v float64) float64 { return numfmt.NiceCeil(v, 1, 2, 2.5, 5) }

// plotTick prints an axis value in plain decimals, with three significant digits below 100.
func plotTick(v float64) string {
	if v == 0 {
		return "0"
	}
	mag := int(math.Floor(math.Log10(math.Abs(v))))
	return numfmt.Fixed(v, max(0, 2-mag))
}
