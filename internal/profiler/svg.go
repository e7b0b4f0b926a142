package profiler

import (
	"fmt"
	"html"
	"math"
	"strings"

	"github.com/dgdr-dev/dgdr/internal/numfmt"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// maxPlotPoints bounds the grey points drawn (about 70 bytes each), so that the plot of the largest search
// leaves the results ConfigMap room for the report.
const maxPlotPoints = 2000

// plotPoints places the candidates, one point per pixel (a point hidden under another adds nothing), and
// keeps at most maxPlotPoints of them, evenly spaced.
func plotPoints(candidates []profile.Config, px, py func(float64) float64) [][2]float64 {
	seen := map[[2]int]bool{}
	var pts [][2]float64
	for _, c := range candidates {
		x, y := px(c.TokensPerSecondPerUser), py(c.TokensPerSecondPerGPU)
		k := [2]int{int(math.Round(x)), int(math.Round(y))}
		if !seen[k] {
			seen[k] = true
			pts = append(pts, [2]float64{x, y})
		}
	}
	if len(pts) <= maxPlotPoints {
		return pts
	}
	out := make([][2]float64, 0, maxPlotPoints)
	for i := range maxPlotPoints {
		out = append(out, pts[i*len(pts)/maxPlotPoints])
	}
	return out
}

// plotSVG draws the candidates (grey), the Pareto front (a line through blue points) and the selected
// configuration (an orange ring) as tokens/s/GPU against tokens/s/user, for the <name>-profiling
// ConfigMap. Colours are from the Okabe–Ito palette, which survives colour blindness.
func plotSVG(title string, candidates, front []profile.Config, selected *profile.Config) string {
	const w, h, left, right, top, bottom = 640.0, 400.0, 70.0, 20.0, 40.0, 50.0
	xMax, yMax := 1.0, 1.0
	for _, c := range append(append([]profile.Config{}, candidates...), front...) {
		xMax = math.Max(xMax, c.TokensPerSecondPerUser)
		yMax = math.Max(yMax, c.TokensPerSecondPerGPU)
	}
	// Quarter ticks: axis ends of 1, 2 or 5 × 10^k keep them whole numbers.
	xMax, yMax = numfmt.NiceCeil(xMax, 1, 2, 5), numfmt.NiceCeil(yMax, 1, 2, 5)
	px := func(x float64) float64 { return left + x/xMax*(w-left-right) }
	py := func(y float64) float64 { return h - bottom - y/yMax*(h-top-bottom) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="22" font-size="14">%s</text>`+"\n", left, html.EscapeString(title))
	for i := 0; i <= 4; i++ {
		x, y := xMax*float64(i)/4, yMax*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, px(0), py(y), px(xMax), py(y))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%.0f</text>`, left-6, py(y)+4, y)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%.0f</text>`+"\n", px(x), h-bottom+16, x)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">tokens/s per user</text>`, (left+w-right)/2, h-12)
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">tokens/s per GPU</text>`+"\n", (top+h-bottom)/2)
	for _, pt := range plotPoints(candidates, px, py) {
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="#999" fill-opacity="0.5"/>`, pt[0], pt[1])
	}
	b.WriteString("\n")
	if len(front) > 0 {
		pts := make([]string, len(front))
		for i, c := range front {
			pts[i] = fmt.Sprintf("%.1f,%.1f", px(c.TokensPerSecondPerUser), py(c.TokensPerSecondPerGPU))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#0072B2" stroke-width="2"/>`+"\n", strings.Join(pts, " "))
		for _, c := range front {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="#0072B2"><title>%s</title></circle>`,
				px(c.TokensPerSecondPerUser), py(c.TokensPerSecondPerGPU), html.EscapeString(profile.Describe(c)))
		}
		b.WriteString("\n")
	}
	if selected != nil {
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="8" fill="none" stroke="#E69F00" stroke-width="3"><title>selected: %s</title></circle>`+"\n",
			px(selected.TokensPerSecondPerUser), py(selected.TokensPerSecondPerGPU), html.EscapeString(profile.Describe(*selected)))
	}
	b.WriteString("</svg>\n")
	return b.String()
}
