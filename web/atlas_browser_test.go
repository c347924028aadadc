package web

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
)

// hullSize counts the vertices of the convex hull of points (gift
// wrapping, Jarvis 1973; collinear points on an edge are not vertices):
// the reference for the regions the atlas page draws.
func hullSize(pts [][2]float64) int {
	uniq := map[[2]float64]bool{}
	var p [][2]float64
	for _, q := range pts {
		if !uniq[q] {
			uniq[q] = true
			p = append(p, q)
		}
	}
	if len(p) < 3 {
		return len(p)
	}
	start := 0
	for i, q := range p {
		if q[0] < p[start][0] || q[0] == p[start][0] && q[1] < p[start][1] {
			start = i
		}
	}
	cross := func(o, a, b [2]float64) float64 {
		return (a[0]-o[0])*(b[1]-o[1]) - (a[1]-o[1])*(b[0]-o[0])
	}
	dist := func(a, b [2]float64) float64 { return math.Hypot(a[0]-b[0], a[1]-b[1]) }
	n, cur := 0, start
	for {
		n++
		next := (cur + 1) % len(p)
		for i := range p {
			c := cross(p[cur], p[next], p[i])
			// i is more clockwise than next, or as far round and farther
			if c < 0 || c == 0 && dist(p[cur], p[i]) > dist(p[cur], p[next]) {
				next = i
			}
		}
		cur = next
		if cur == start || n > len(p) {
			break
		}
	}
	return n
}

// encodeAll encodes every row of the layer with the SAE.
func encodeAll(t *testing.T, s *sae.SAE, layer *activations.Layer) []float32 {
	t.Helper()
	x := make([]float32, layer.Rows*layer.DModel)
	if err := layer.ReadRows(0, x); err != nil {
		t.Fatal(err)
	}
	f := make([]float32, layer.Rows*s.DSae)
	s.Encode(x, f)
	return f
}

// screenXY is where the page draws a feature, in the window's CSS pixels.
func (b *browser) screenXY(id int) (float64, float64) {
	b.t.Helper()
	var pos struct{ X, Y float64 }
	b.eval(fmt.Sprintf(`(() => {
		const r = document.querySelector('[data-testid="atlas-map"]').getBoundingClientRect();
		const p = window.riseAtlas.screenPosition(%d);
		return {X: r.left + p.x, Y: r.top + p.y};
	})()`, id), &pos)
	return pos.X, pos.Y
}

// TestBrowserAtlasRegionsHoverSelection drives /atlas in chromium on a
// planted dump: each behaviour with attributed columns gets a region with
// the vertices of its columns' convex hull, and the toggle hides them;
// hovering a point shows the text of its feature's top-activating step;
// shift+click selects points (kept in the URL); the selection's .npy is
// the renormalised mean of its unit decoder columns, and its top steps are
// the rows where the sum of its latents is largest; another k recolours the
// map by its clusters; the selection, k and the view survive a reload.
func TestBrowserAtlasRegionsHoverSelection(t *testing.T) {
	skipShort(t, "browser test")
	ts, _, saeDir := givenServer(t)
	ts.waitReady(t, "given")
	var at atlas.Atlas
	ts.get(t, "/api/saes/given/atlas", &at)
	s, err := sae.Load(saeDir)
	if err != nil {
		t.Fatal(err)
	}
	ds := ts.ws.Datasets()[0]
	lat := encodeAll(t, s, ds.Dump.Layers[0])

	b := newBrowser(t, ts)
	b.open("/atlas?sae=given")
	b.waitFor("every point drawn", `document.querySelector('[data-testid="atlas-map"]')?.dataset.points === '128'`)

	// Regions: one per behaviour with columns ("other" is the catch-all),
	// with as many vertices as the reference hull.
	want := map[string]int{}
	for name, bi := range at.Behaviours {
		if name == "other" || len(bi.Columns) == 0 {
			continue
		}
		var pts [][2]float64
		for _, id := range bi.Columns {
			pts = append(pts, [2]float64{at.Features[id].X, at.Features[id].Y})
		}
		want[name] = hullSize(pts)
	}
	if len(want) == 0 {
		t.Fatalf("the planted SAE has no behaviour columns to draw: %v", at.Behaviours)
	}
	got := map[string]int{}
	for _, r := range strings.Split(b.attr(`[data-testid="atlas-map"]`, "data-regions"), ",") {
		var name string
		var n int
		if i := strings.LastIndexByte(r, ':'); i > 0 {
			name = r[:i]
			fmt.Sscan(r[i+1:], &n)
		}
		got[name] = n
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("regions drawn (behaviour: hull vertices) %v, want %v", got, want)
	}
	b.screenshot("atlas-regions")
	b.clickTestid("show-regions", 1)
	b.waitFor("regions hidden", `document.querySelector('[data-testid="atlas-map"]').dataset.regions === '' && new URLSearchParams(location.search).get('regions') === '0'`)
	b.clickTestid("show-regions", 1)
	b.waitFor("regions shown", `document.querySelector('[data-testid="atlas-map"]').dataset.regions !== ''`)

	// A click on a region's name selects its columns.
	region := slices.Sorted(maps.Keys(want))[0]
	regionCols := slices.Sorted(slices.Values(at.Behaviours[region].Columns))
	b.clickTestid("region-"+region, 1)
	b.waitFor("the region's columns selected", fmt.Sprintf(`document.querySelector('[data-testid="selection-size"]')?.textContent === '%d'`, len(regionCols)))
	var picked []int
	b.eval(`window.riseAtlas.selection().map((f) => f.id)`, &picked)
	if fmt.Sprint(picked) != fmt.Sprint(regionCols) {
		t.Errorf("the %s region selects %v, want its columns %v", region, picked, regionCols)
	}
	b.eval(`window.riseAtlas.clearSelection()`, nil)

	// Features that fire and lie apart from every other point on the
	// screen, so that a click lands on them alone.
	var apart []int
	b.eval(`(() => {
		const m = window.riseAtlas, out = [];
		for (const f of m.features) {
			if (!(f.frequency > 0)) continue;
			const p = m.screenPosition(f.id);
			if (p.x < 20 || p.y < 20 || p.x > m.width - 20 || p.y > m.height - 20) continue;
			const near = m.features.some((g) => { if (g.id === f.id) return false; const q = m.screenPosition(g.id); return Math.hypot(p.x - q.x, p.y - q.y) < 10; });
			if (!near) out.push(f.id);
		}
		return out;
	})()`, &apart)
	if len(apart) < 3 {
		t.Fatalf("only %d features lie apart on the map: %v", len(apart), apart)
	}

	// Hover: the tooltip quotes the feature's top step, the row where its
	// latent is largest.
	hover := apart[0]
	top, best := -1, float32(0)
	for row := range ds.Dump.Layers[0].Rows {
		if v := lat[row*s.DSae+hover]; v > best {
			top, best = row, v
		}
	}
	x, y := b.screenXY(hover)
	b.run("hover", chromedp.MouseEvent(input.MouseMoved, x-3, y-3), chromedp.MouseEvent(input.MouseMoved, x, y))
	b.waitFor("the tooltip's step", `!!document.querySelector('[data-testid="tip-step"] .tip-quote')`)
	var quote string
	b.eval(`document.querySelector('[data-testid="tip-step"] .tip-quote').textContent`, &quote)
	// (rows of the same largest value are as good a top step)
	tied := false
	for row := range ds.Dump.Layers[0].Rows {
		tied = tied || lat[row*s.DSae+hover] == best && quote == ds.Steps[row].Text
	}
	if !tied {
		t.Errorf("hovering feature %d quotes %q, want its top step (row %d) %q", hover, quote, top, ds.Steps[top].Text)
	}
	b.screenshot("atlas-hover")

	// Shift+click selects three features.
	sel := apart[:3]
	for _, id := range sel {
		x, y := b.screenXY(id)
		b.run(fmt.Sprint("shift+click ", id), chromedp.MouseClickXY(x, y, chromedp.ButtonModifiers(input.ModifierShift)))
	}
	slices.Sort(sel)
	ids := strings.Trim(strings.ReplaceAll(fmt.Sprint(sel), " ", ","), "[]")
	b.waitFor("the selection in the URL", fmt.Sprintf(`new URLSearchParams(location.search).get('sel') === %q`, ids))

	// Export: the downloaded .npy is the selection's mean direction.
	dl := t.TempDir()
	done := make(chan string, 1)
	chromedp.ListenTarget(b.ctx, func(ev any) {
		if e, ok := ev.(*cdpbrowser.EventDownloadProgress); ok && e.State == cdpbrowser.DownloadProgressStateCompleted {
			select {
			case done <- e.GUID:
			default:
			}
		}
	})
	b.run("allow downloads", cdpbrowser.SetDownloadBehavior(cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName).
		WithDownloadPath(dl).WithEventsEnabled(true))
	b.clickTestid("selection-npy", 1)
	var guid string
	select {
	case guid = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("no download finished (console: %v)", b.console)
	}
	v, rows, cols, err := activations.ReadNpy(filepath.Join(dl, guid))
	if err != nil {
		t.Fatalf("the downloaded .npy: %v", err)
	}
	if rows != 1 || cols != s.DIn {
		t.Fatalf("the downloaded .npy is [%d, %d], want [1, %d]", rows, cols, s.DIn)
	}
	mean := make([]float64, s.DIn)
	for _, id := range sel {
		var norm float64
		for _, w := range s.WDec[id*s.DIn : (id+1)*s.DIn] {
			norm += float64(w) * float64(w)
		}
		for k, w := range s.WDec[id*s.DIn : (id+1)*s.DIn] {
			mean[k] += float64(w) / math.Sqrt(norm)
		}
	}
	var norm float64
	for _, m := range mean {
		norm += m * m
	}
	for k := range mean {
		if d := math.Abs(float64(v[k]) - mean[k]/math.Sqrt(norm)); d > 1e-5 {
			t.Fatalf("the downloaded vector differs from the mean of the selected unit decoder columns at %d: %g vs %g", k, v[k], mean[k]/math.Sqrt(norm))
		}
	}

	// The ids as CSV: a header and a row per selected feature.
	b.clickTestid("selection-csv", 1)
	select {
	case guid = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the CSV did not download (console: %v)", b.console)
	}
	csv, err := os.ReadFile(filepath.Join(dl, guid))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	var csvIDs []int
	for _, l := range lines[1:] {
		var id int
		fmt.Sscan(strings.Split(l, ",")[0], &id)
		csvIDs = append(csvIDs, id)
	}
	if lines[0] != "id,x,y,cluster,behaviour" || fmt.Sprint(csvIDs) != fmt.Sprint(sel) {
		t.Errorf("the ids CSV:\n%s\nwant the header and ids %v", csv, sel)
	}

	// Read: the top steps are the rows with the largest sum of the
	// selected latents, in order.
	type scored struct {
		row int
		sum float64
	}
	var ref []scored
	for row := range ds.Dump.Layers[0].Rows {
		var sum float64
		for _, id := range sel {
			sum += float64(lat[row*s.DSae+id])
		}
		if sum > 0 {
			ref = append(ref, scored{row, sum})
		}
	}
	sort.SliceStable(ref, func(i, j int) bool { return ref[i].sum > ref[j].sum })
	b.clickTestid("selection-read", 1)
	b.waitFor("the selection's steps", `document.querySelectorAll('[data-testid="selection-step"]').length > 0`)
	var shown []int
	b.eval(`[...document.querySelectorAll('[data-testid="selection-step"]')].map((e) => Number(e.dataset.row))`, &shown)
	if len(shown) != min(20, len(ref)) {
		t.Fatalf("the selection shows %d steps, want %d", len(shown), min(20, len(ref)))
	}
	sumAt := func(row int) float64 {
		var sum float64
		for _, id := range sel {
			sum += float64(lat[row*s.DSae+id])
		}
		return sum
	}
	for i, row := range shown {
		// rows of equal sums may come in either order
		if math.Abs(sumAt(row)-ref[i].sum) > 1e-4*ref[i].sum {
			t.Fatalf("step %d shown is row %d (sum %g), want row %d (sum %g): shown %v", i, row, sumAt(row), ref[i].row, ref[i].sum, shown)
		}
	}
	b.screenshot("atlas-selection")

	// Another k: the map takes its clusters' colours, the URL keeps it.
	k := len(at.Clusters) + 1
	b.eval(fmt.Sprintf(`{const s = document.querySelector('[data-testid="cluster-k-select"]'); s.value = '%d'; s.dispatchEvent(new Event('change'));}`, k), nil)
	b.waitFor("the clusters of another k", fmt.Sprintf(`document.querySelector('[data-testid="cluster-k"]').textContent === '%d' && new URLSearchParams(location.search).get('k') === '%d'`, k, k))
	var legend string
	b.eval(`document.querySelector('.atlas-legend').textContent`, &legend)
	if !strings.HasPrefix(legend, fmt.Sprintf("%d clusters:", k)) {
		t.Errorf("with k = %d the map's legend says %q", k, legend)
	}
	b.screenshot("atlas-k")

	// Zoom in: the URL keeps the view.
	b.eval(`window.riseAtlas.zoomAt(250, 200, 2.5)`, nil)
	b.waitFor("the view in the URL", `(new URLSearchParams(location.search).get('view') || '').endsWith(',2.5')`)
	var centre []float64
	b.eval(`window.riseAtlas.toData(window.riseAtlas.width / 2, window.riseAtlas.height / 2)`, &centre)

	// The selection, k and the view come back with the URL.
	var url string
	b.eval(`location.pathname + location.search`, &url)
	b.open(url)
	b.waitFor("the selection and k after a reload", fmt.Sprintf(`document.querySelector('[data-testid="selection-size"]')?.textContent === '3' && document.querySelector('[data-testid="cluster-k"]')?.textContent === '%d'`, k))
	var view []float64
	b.eval(`(() => { const m = window.riseAtlas; return [...m.toData(m.width / 2, m.height / 2), m.scale / m.baseScale]; })()`, &view)
	if len(view) != 3 || math.Abs(view[2]-2.5) > 1e-3 || math.Hypot(view[0]-centre[0], view[1]-centre[1]) > 1e-3 {
		t.Errorf("after a reload the view is %v, want centre %v at zoom 2.5", view, centre)
	}
	b.noScriptErrors()
}

// TestBrowserAtlasSteer selects features on the atlas of an SAE of
// stories260K and steers with them: /steer opens with the mean of their
// decoder columns, and Run generates DEFAULT and a different STEERED story.
func TestBrowserAtlasSteer(t *testing.T) {
	skipShort(t, "browser test")
	ts := storiesServer(t)
	// The tooltip asks for a feature without its logit lens.
	var with, without map[string]any
	ts.get(t, "/api/saes/st-sae/features/3?top=1", &with)
	ts.get(t, "/api/saes/st-sae/features/3?top=1&nearest=0&lens=0", &without)
	if with["logit_lens"] == nil || without["logit_lens"] != nil {
		t.Errorf("logit lens: %v by default, %v with lens=0; want it, then none", with["logit_lens"] != nil, without["logit_lens"] != nil)
	}
	b := newBrowser(t, ts)
	b.open("/atlas?sae=st-sae")
	b.waitFor("the map", `!!window.riseAtlas && window.riseAtlas.n > 0`)
	// Select a box round the whole map with shift+drag.
	var box struct{ L, T, R, B float64 }
	b.eval(`(() => { const r = document.querySelector('[data-testid="atlas-map"]').getBoundingClientRect(); return {L: r.left + 2, T: r.top + 2, R: r.right - 2, B: r.bottom - 2}; })()`, &box)
	shift := func(p *input.DispatchMouseEventParams) *input.DispatchMouseEventParams {
		return p.WithModifiers(input.ModifierShift).WithButton(input.Left).WithClickCount(1)
	}
	b.run("shift+drag a box", chromedp.ActionFunc(func(ctx context.Context) error {
		for _, ev := range []*input.DispatchMouseEventParams{
			shift(input.DispatchMouseEvent(input.MouseMoved, box.L, box.T)),
			shift(input.DispatchMouseEvent(input.MousePressed, box.L, box.T)),
			shift(input.DispatchMouseEvent(input.MouseMoved, (box.L+box.R)/2, (box.T+box.B)/2)).WithButtons(1),
			shift(input.DispatchMouseEvent(input.MouseMoved, box.R, box.B)).WithButtons(1),
			shift(input.DispatchMouseEvent(input.MouseReleased, box.R, box.B)),
		} {
			if err := ev.Do(ctx); err != nil {
				return err
			}
		}
		return nil
	}))
	var ids []int
	b.waitFor("a selection", `window.riseAtlas.selCount > 0`)
	b.eval(`window.riseAtlas.selection().map((f) => f.id)`, &ids)
	if len(ids) != 64 {
		t.Errorf("a box round the whole map selected %d features, want all 64", len(ids))
	}
	b.clickTestid("selection-steer", 1)
	b.waitFor("the steering page", `location.pathname === '/steer' && !!document.querySelector('[data-testid="steer-run"]')`)
	var q string
	b.eval(`new URLSearchParams(location.search).get('features')`, &q)
	want := strings.Trim(strings.ReplaceAll(fmt.Sprint(ids), " ", ","), "[]")
	if q != want {
		t.Errorf("/steer opened with features %q, want the selection %q", q, want)
	}
	var vectors string
	b.run("vector list", chromedp.Text(`[data-testid="steer-vectors"]`, &vectors, chromedp.ByQuery))
	if !strings.Contains(vectors, "st-sae · mean of features") || !strings.Contains(vectors, "(64 features)") {
		t.Errorf("the vector list says %q, want the mean of the 64 selected features", vectors)
	}
	def, st := b.steerStory(func(def, st string) bool { return strings.Contains(def, "tokens") && strings.Contains(st, "tokens") })
	b.screenshot("atlas-steer")
	if !strings.Contains(def, "Once upon a time") {
		t.Fatalf("the DEFAULT pane does not tell the story: %q (console %v)", def, b.console)
	}
	if st == def || !strings.Contains(st, "tokens") {
		t.Errorf("the STEERED pane %q does not differ from DEFAULT %q", st, def)
	}
	b.noScriptErrors()
}
