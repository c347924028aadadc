package report

import (
	"bytes"
	"fmt"
	"html"
	"maps"
	"slices"

	"github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"

	"github.com/rise-interp/rise/sae/atlas"
)

// The charts are drawn by sae/atlas, which escapes every name it writes
// into the SVG (atlas.RenderMap and RenderCurvesWithBands).

func mapSVG(title string, xy []float64, groups []string) ([]byte, error) {
	var b bytes.Buffer
	err := atlas.RenderMap(&b, atlas.SVG, title, xy, groups)
	return b.Bytes(), err
}

func curvesSVG(title, xName, yName string, x []float64, ys map[string][]float64, bands []atlas.Band) ([]byte, error) {
	var b bytes.Buffer
	err := atlas.RenderCurvesWithBands(&b, atlas.SVG, title, xName, yName, x, ys, bands)
	return b.Bytes(), err
}

// seriesSVG draws long series (a training curve, say) as lines without
// dots over automatic x ticks, which the chart of a few points per layer
// or strength (atlas.RenderCurves, one tick per x value) cannot do for
// hundreds of steps.
func seriesSVG(title, xName, yName string, x []float64, ys map[string][]float64) ([]byte, error) {
	if len(x) < 2 {
		return nil, fmt.Errorf("chart %q: expected at least two points, found %d", title, len(x))
	}
	colours := []drawing.Color{{R: 0x00, G: 0x72, B: 0xb2, A: 255}, {R: 0xe6, G: 0x9f, B: 0x00, A: 255}, {R: 0x00, G: 0x9e, B: 0x73, A: 255}, {R: 0xcc, G: 0x79, B: 0xa7, A: 255}}
	var series []chart.Series
	for i, name := range slices.Sorted(maps.Keys(ys)) {
		y := ys[name]
		if len(y) != len(x) {
			return nil, fmt.Errorf("chart %q: series %q has %d values for %d x values", title, name, len(y), len(x))
		}
		col := colours[i%len(colours)]
		series = append(series, chart.ContinuousSeries{Name: html.EscapeString(name), XValues: x, YValues: y,
			Style: chart.Style{StrokeColor: col, StrokeWidth: 2}})
	}
	c := chart.Chart{
		Title: html.EscapeString(title), Width: 1100, Height: 440, Series: series,
		Background: chart.Style{Padding: chart.Box{Top: 50, Left: 150, Right: 20, Bottom: 20}},
		XAxis:      chart.XAxis{Name: html.EscapeString(xName), ValueFormatter: chart.IntValueFormatter}, YAxis: chart.YAxis{Name: html.EscapeString(yName)},
	}
	c.Elements = []chart.Renderable{chart.LegendLeft(&c)}
	var b bytes.Buffer
	if err := c.Render(chart.SVG, &b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
