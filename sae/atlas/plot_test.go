package atlas

import (
	"bytes"
	"strings"
	"testing"
)

func TestRenderCharts(t *testing.T) {
	xy := []float64{0, 0, 1, 1, 2, 0.5, -1, 3}
	groups := []string{"reflection", "", "backtracking", "reflection"}
	for _, f := range []Format{SVG, PNG} {
		var b bytes.Buffer
		if err := RenderMap(&b, f, "decoder map", xy, groups); err != nil {
			t.Fatalf("%s map: %v", f, err)
		}
		switch f {
		case SVG:
			s := b.String()
			if !strings.HasPrefix(s, "<svg") || !strings.Contains(s, "reflection") || !strings.Contains(s, "backtracking") {
				t.Errorf("svg map lacks its legend: %.200s", s)
			}
		case PNG:
			if !bytes.HasPrefix(b.Bytes(), []byte("\x89PNG")) {
				t.Error("png map is not a PNG")
			}
		}
		b.Reset()
		err := RenderCurves(&b, f, "separation by layer", "layer", "silhouette", []float64{4, 8, 12},
			map[string][]float64{"behaviours": {0.1, 0.3, 0.2}, "short/long": {0.05, 0.1, 0.4}})
		if err != nil || b.Len() == 0 {
			t.Fatalf("%s curves: %v", f, err)
		}
	}
	if err := RenderMap(&bytes.Buffer{}, SVG, "", xy, groups[:2]); err == nil {
		t.Error("mismatched groups were accepted")
	}
	if err := RenderMap(&bytes.Buffer{}, "gif", "", xy, groups); err == nil {
		t.Error("an unknown format was accepted")
	}
}

// TestChartsEscapeNames: names from files (behaviours, labels, titles) are
// text in the SVG, never markup.
func TestChartsEscapeNames(t *testing.T) {
	bad := `<script>alert(1)</script><image href="http://example.com/x.png"/>`
	var m, c bytes.Buffer
	if err := RenderMap(&m, SVG, bad, []float64{0, 0, 1, 1, 2, 0}, []string{bad, "reflection", bad}); err != nil {
		t.Fatal(err)
	}
	if err := RenderCurvesWithBands(&c, SVG, bad, bad, bad, []float64{1, 2}, map[string][]float64{bad: {1, 2}}, nil); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"map": m.Bytes(), "curves": c.Bytes()} {
		if s := string(b); strings.Contains(s, "<script") || strings.Contains(s, "<image") || !strings.Contains(s, "&lt;script&gt;") {
			t.Errorf("%s: a name with markup is not escaped", name)
		}
	}
}
