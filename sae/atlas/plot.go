package atlas

import (
	"fmt"
	"html"
	"io"
	"sort"

	chart "github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"
)

// Format is a chart's output format.
type Format string

// The formats charts render to.
const (
	SVG Format = "svg"
	PNG Format = "png"
)

// palette holds distinguishable colours for groups of points (the
// Okabe-Ito palette, readable with common colour-vision deficiencies).
var palette = []drawing.Color{
	{R: 0xe6, G: 0x9f, B: 0x00, A: 255}, {R: 0x56, G: 0xb4, B: 0xe9, A: 255}, {R: 0x00, G: 0x9e, B: 0x73, A: 255},
	{R: 0xf0, G: 0xe4, B: 0x42, A: 255}, {R: 0x00, G: 0x72, B: 0xb2, A: 255}, {R: 0xd5, G: 0x5e, B: 0x00, A: 255},
	{R: 0xcc, G: 0x79, B: 0xa7, A: 255}, {R: 0x99, G: 0x99, B: 0x99, A: 255},
}

// RenderMap draws a two-dimensional layout of features as a scatter plot,
// one colour per group (a behaviour, a cluster), and writes it to w. xy
// holds n (x, y) pairs; groups holds each point's group name ("" for none,
// drawn grey and first, under the others).
func RenderMap(w io.Writer, f Format, title string, xy []float64, groups []string) error {
	n := len(xy) / 2
	if len(xy) != 2*n || len(groups) != n {
		return fmt.Errorf("map: %d coordinates and %d groups do not describe the same points", len(xy), len(groups))
	}
	byGroup := map[string][]int{}
	for i, g := range groups {
		byGroup[g] = append(byGroup[g], i)
	}
	names := make([]string, 0, len(byGroup))
	for g := range byGroup {
		names = append(names, g)
	}
	sort.Slice(names, func(a, b int) bool { // ungrouped first, then by size
		if (names[a] == "") != (names[b] == "") {
			return names[a] == ""
		}
		if len(byGroup[names[a]]) != len(byGroup[names[b]]) {
			return len(byGroup[names[a]]) > len(byGroup[names[b]])
		}
		return names[a] < names[b]
	})
	var series []chart.Series
	for gi, g := range names {
		idx := byGroup[g]
		s := chart.ContinuousSeries{Name: g, XValues: make([]float64, len(idx)), YValues: make([]float64, len(idx))}
		for k, i := range idx {
			s.XValues[k], s.YValues[k] = xy[2*i], xy[2*i+1]
		}
		col := palette[gi%len(palette)]
		if g == "" {
			col = drawing.Color{R: 0xcc, G: 0xcc, B: 0xcc, A: 255}
			s.Name = "(none)"
		}
		// The legend draws each series with its stroke colour; the points
		// themselves are dots only.
		s.Style = chart.Style{StrokeWidth: chart.Disabled, StrokeColor: col, DotWidth: 2, DotColor: col}
		series = append(series, s)
	}
	c := chart.Chart{
		Title: title, Width: 900, Height: 700, Series: series,
		XAxis: chart.XAxis{Name: "x"}, YAxis: chart.YAxis{Name: "y"},
	}
	c.Elements = []chart.Renderable{chart.LegendLeft(&c)}
	return render(w, f, &c)
}

// RenderCurves draws one line per named series over shared x values, such as
// the silhouette of behaviour labels per layer (RISE Fig. 3).
func RenderCurves(w io.Writer, f Format, title, xName, yName string, x []float64, ys map[string][]float64) error {
	return RenderCurvesWithBands(w, f, title, xName, yName, x, ys, nil)
}

func render(w io.Writer, f Format, c *chart.Chart) error {
	switch f {
	case SVG:
		escapeTexts(c)
		return c.Render(chart.SVG, w)
	case PNG:
		return c.Render(chart.PNG, w)
	}
	return fmt.Errorf("unknown chart format %q: expected svg or png", f)
}

// escapeTexts escapes the chart's title, axis names and series names for
// SVG, in place (the legend reads the same series): go-chart writes text
// into the markup as it is, and a name read from a file (a behaviour, a
// label) must not add markup or a request to the drawing.
func escapeTexts(c *chart.Chart) {
	e := html.EscapeString
	c.Title = e(c.Title)
	c.XAxis.Name, c.YAxis.Name = e(c.XAxis.Name), e(c.YAxis.Name)
	for i, s := range c.Series {
		if cs, ok := s.(chart.ContinuousSeries); ok {
			cs.Name = e(cs.Name)
			c.Series[i] = cs
		}
	}
}
