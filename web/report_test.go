package web

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/rise-interp/rise/steer"
)

// TestReportButton makes a dataset's report through the API and through
// the button on the datasets page: with one ready SAE it holds its metrics,
// its training curve and its atlas map, and the saved page is the one the
// API answers.
func TestReportButton(t *testing.T) {
	ts := newTestServer(t)
	ts.trainReady(t, "rep", 200)

	var e struct {
		Error string `json:"error"`
	}
	if code := ts.post(t, "/api/datasets/nope/report", "", &e); code != http.StatusNotFound || !strings.Contains(e.Error, `no dataset "nope"`) {
		t.Errorf("report of an unknown dataset: %d %q", code, e.Error)
	}
	rep := makeReport(t, ts, "planted")
	kinds := regexp.MustCompile(`data-kind="(\w+)"`).FindAllStringSubmatch(rep.HTML, -1)
	if rep.Name != "report-planted" || rep.Figures != 2 || len(kinds) != 2 || kinds[0][1] != "training" || kinds[1][1] != "map" {
		t.Errorf("report %q with %d figures, kinds %v; want report-planted with a training curve and a map", rep.Name, rep.Figures, kinds)
	}
	for _, want := range []string{"### atlas of rep", "**Metrics**", "**Silhouettes by layer**", "POST /api/datasets/planted/report"} {
		if !strings.Contains(rep.Markdown, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}

	skipShort(t, "browser part")
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
	b.noScriptErrors()
	b.screenshot("report-button")
}

// TestReportSteeringSweep runs a steering sweep in the workbench and makes
// the report: the sweep is in it with the job's numbers and seed.
func TestReportSteeringSweep(t *testing.T) {
	ts := storiesServer(t)
	var job JobView
	body := `{"vectors": [{"sae": "st-sae", "feature": 3}], "strengths": [-6, 0, 6], "controls": 1, "max_tokens": 8, "seed": 5,
		"prompts": [{"prompt": "Once upon a time"}, {"prompt": "Tom had a ball"}]}`
	if code := ts.post(t, "/api/steer/sweep", body, &job); code != http.StatusAccepted {
		t.Fatalf("sweep: %d %+v", code, job)
	}
	var v struct {
		State  string `json:"state"`
		Result struct {
			Runs []steer.Run `json:"runs"`
		} `json:"result"`
	}
	deadline := time.Now().Add(time.Minute)
	for ts.get(t, "/api/jobs/"+job.ID, &v); !jobEnded(v.State); ts.get(t, "/api/jobs/"+job.ID, &v) {
		if time.Now().After(deadline) {
			t.Fatal("the sweep did not end")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v.State != StateDone || len(v.Result.Runs) != 3 {
		t.Fatalf("sweep ended %s with %d runs", v.State, len(v.Result.Runs))
	}
	rep := makeReport(t, ts, "stories")
	want := []string{"### steering sweep " + job.ID, "| seed | 5 |", "| max tokens | 8 |", "random 1"}
	for _, r := range v.Result.Runs {
		iv := r.Behaviours["other"]
		want = append(want, fmt.Sprintf("| %g | ", r.Strength), fmt.Sprintf("| %.3f [%.3f, %.3f] |", iv.Mean, iv.Lo, iv.Hi))
	}
	for _, w := range want {
		if !strings.Contains(rep.Markdown, w) {
			t.Errorf("report.md lacks %q", w)
		}
	}
	if !strings.Contains(rep.HTML, `data-kind="dose"`) {
		t.Error("the report draws no dose curve of the sweep")
	}
}

// makeReport asks for a dataset's report until the sweep over its layers,
// which the first request starts, is computed (409 until then).
func makeReport(t *testing.T, ts *testServer, dataset string) reportResponse {
	t.Helper()
	var rep reportResponse
	deadline := time.Now().Add(time.Minute)
	for {
		code := ts.post(t, "/api/datasets/"+dataset+"/report", "", &rep)
		if code == http.StatusOK {
			return rep
		}
		if code != http.StatusConflict || time.Now().After(deadline) {
			t.Fatalf("report of %s: %d", dataset, code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jobEnded reports whether a job in the state has ended.
func jobEnded(state string) bool { return state != "" && hasEnded(state) }
