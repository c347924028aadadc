package web

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestReportButton makes a dataset's report through the API and through
// the button on the datasets page: with one ready SAE it holds its metrics,
// its training curve and its atlas map, and the saved page is the one the
// API answers.
func TestReportButton(t *testing.T) {
	ts := newTestServer(t)
	ts.train(t, "rep", 200)
	ts.waitReady(t, "rep")

	var e struct {
		Error string `json:"error"`
	}
	if code := ts.post(t, "/api/datasets/nope/report", "", &e); code != http.StatusNotFound || !strings.Contains(e.Error, `no dataset "nope"`) {
		t.Errorf("report of an unknown dataset: %d %q", code, e.Error)
	}
	var rep reportResponse
	deadline := time.Now().Add(time.Minute)
	for {
		code := ts.post(t, "/api/datasets/planted/report", "", &rep)
		if code == http.StatusOK {
			break
		}
		// 409 while the sweep over the layers is computed.
		if code != http.StatusConflict || time.Now().After(deadline) {
			t.Fatalf("report: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	kinds := regexp.MustCompile(`data-kind="(\w+)"`).FindAllStringSubmatch(rep.HTML, -1)
	if rep.Name != "report-planted" || rep.Figures != 2 || len(kinds) != 2 || kinds[0][1] != "training" || kinds[1][1] != "map" {
		t.Errorf("report %q with %d figures, kinds %v; want report-planted with a training curve and a map", rep.Name, rep.Figures, kinds)
	}
	for _, want := range []string{"### atlas of rep", "**Metrics**", "**Silhouettes by layer**", "POST /api/datasets/planted/report"} {
		if !strings.Contains(rep.Markdown, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}

	if testing.Short() {
		t.Skip("browser part skipped in -short mode")
	}
	b := newBrowser(t, ts)
	b.open("/?dataset=planted")
	b.run("make the report", chromedp.Click(`[data-testid="make-report"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`a[download="report-planted.html"]`, chromedp.ByQuery))
	var saved string
	b.run("read the saved page", chromedp.Evaluate(`fetch(document.querySelector('a[download="report-planted.html"]').href).then(r => r.text())`, &saved,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if saved != rep.HTML {
		t.Errorf("the page saved from the button (%d bytes) differs from the API's (%d bytes)", len(saved), len(rep.HTML))
	}
	if len(b.console) > 0 {
		t.Errorf("console: %v", b.console)
	}
	b.screenshot("report-button")
}
