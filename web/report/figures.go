package report

import (
	"bytes"
	"html"

	"github.com/rise-interp/rise/sae/atlas"
)

// The charts are drawn by sae/atlas (go-chart), which writes text into the
// SVG as it is: every name that comes from an input file is escaped first,
// so a label cannot add markup (or a request) to the page.

func mapSVG(title string, xy []float64, groups []string) ([]byte, error) {
	esc := make([]string, len(groups))
	for i, g := range groups {
		esc[i] = html.EscapeString(g)
	}
	var b bytes.Buffer
	err := atlas.RenderMap(&b, atlas.SVG, html.EscapeString(title), xy, esc)
	return b.Bytes(), err
}

func curvesSVG(title, xName, yName string, x []float64, ys map[string][]float64, bands []atlas.Band) ([]byte, error) {
	esc := make(map[string][]float64, len(ys))
	for k, v := range ys {
		esc[html.EscapeString(k)] = v
	}
	eb := make([]atlas.Band, len(bands))
	for i, bd := range bands {
		bd.Name, bd.Series = html.EscapeString(bd.Name), html.EscapeString(bd.Series)
		eb[i] = bd
	}
	var b bytes.Buffer
	e := html.EscapeString
	err := atlas.RenderCurvesWithBands(&b, atlas.SVG, e(title), e(xName), e(yName), x, esc, eb)
	return b.Bytes(), err
}
