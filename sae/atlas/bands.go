package atlas

import (
	"fmt"
	"io"
	"sort"

	chart "github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"
)

// Band is a filled interval drawn behind curves: a series' 95% interval,
// or the range that control runs spanned.
type Band struct {
	Name   string    // the legend's entry
	Series string    // the curve whose colour it takes; "" for grey
	Lo, Hi []float64 // one pair per x value
	// Dashed draws the band's edges dashed over a grey fill, for a range
	// of control runs rather than an interval of the curve itself.
	Dashed bool
}

// bandSeries draws a Band as the area between its bounds.
type bandSeries struct {
	name   string
	style  chart.Style
	x      []float64
	lo, hi []float64
}

func (b bandSeries) GetName() string           { return b.name }
func (b bandSeries) GetYAxis() chart.YAxisType { return chart.YAxisPrimary }
func (b bandSeries) GetStyle() chart.Style     { return b.style }
func (b bandSeries) Validate() error           { return nil }
func (b bandSeries) Len() int                  { return len(b.x) }

// GetBoundedValues gives the band's bounds at index i.
func (b bandSeries) GetBoundedValues(i int) (x, y1, y2 float64) { return b.x[i], b.hi[i], b.lo[i] }

func (b bandSeries) Render(r chart.Renderer, box chart.Box, xr, yr chart.Range, defaults chart.Style) {
	chart.Draw.BoundedSeries(r, box, xr, yr, b.style.InheritFrom(defaults), b)
}

// RenderCurvesWithBands is RenderCurves with bands drawn behind the curves,
// each filled with its curve's colour made light (or grey). The legend
// shows every curve and band with its own stroke.
func RenderCurvesWithBands(w io.Writer, f Format, title, xName, yName string, x []float64, ys map[string][]float64, bands []Band) error {
	if len(x) < 2 {
		return fmt.Errorf("curves: need at least two x values, got %d", len(x))
	}
	names := make([]string, 0, len(ys))
	for k, y := range ys {
		if len(y) != len(x) {
			return fmt.Errorf("curves: series %q has %d values for %d x values", k, len(y), len(x))
		}
		names = append(names, k)
	}
	sort.Strings(names)
	colour := map[string]drawing.Color{}
	for i, k := range names {
		colour[k] = palette[i%len(palette)]
	}
	var series []chart.Series
	for _, b := range bands {
		if len(b.Lo) != len(x) || len(b.Hi) != len(x) {
			return fmt.Errorf("curves: band %q has %d and %d bounds for %d x values", b.Name, len(b.Lo), len(b.Hi), len(x))
		}
		col, ok := colour[b.Series]
		if !ok {
			col = drawing.Color{R: 0x55, G: 0x55, B: 0x55, A: 255}
		}
		st := chart.Style{StrokeWidth: 1, FillColor: col.WithAlpha(50), StrokeColor: col.WithAlpha(140)}
		if b.Dashed {
			// Dashed edges show even where the band is no wider than
			// a line.
			st = chart.Style{StrokeWidth: 2, StrokeDashArray: []float64{6, 3}, StrokeColor: col, FillColor: drawing.Color{R: 0x55, G: 0x55, B: 0x55, A: 30}}
		}
		series = append(series, bandSeries{name: b.Name, x: x, lo: b.Lo, hi: b.Hi, style: st})
	}
	for _, k := range names {
		col := colour[k]
		series = append(series, chart.ContinuousSeries{Name: k, XValues: x, YValues: ys[k],
			Style: chart.Style{StrokeColor: col, StrokeWidth: 2, DotColor: col, DotWidth: 3}})
	}
	ticks := make([]chart.Tick, len(x))
	for i, v := range x {
		ticks[i] = chart.Tick{Value: v, Label: fmt.Sprintf("%g", v)}
	}
	c := chart.Chart{
		Title: title, Width: 1100, Height: 520, Series: series,
		// Room on the left for the legend, outside the plot.
		Background: chart.Style{Padding: chart.Box{Top: 50, Left: 230, Right: 20, Bottom: 20}},
		XAxis:      chart.XAxis{Name: xName, Ticks: ticks}, YAxis: chart.YAxis{Name: yName},
	}
	c.Elements = []chart.Renderable{chart.LegendLeft(&c)}
	return render(w, f, &c)
}
