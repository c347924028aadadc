package web

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// clickTestid clicks an element by its data-testid in one step of the
// page's own (tables are redrawn as they refresh), n times in a row.
func (b *browser) clickTestid(id string, n int) {
	b.t.Helper()
	sel := fmt.Sprintf(`[data-testid=%q]`, id)
	b.run("click "+id, chromedp.WaitVisible(sel, chromedp.ByQuery),
		chromedp.Evaluate(fmt.Sprintf(`{const e = document.querySelector(%q); for (let i = 0; i < %d; i++) e.click();}`, sel, n), nil))
}

// eval evaluates a script in the page.
func (b *browser) eval(script string, v any) {
	b.t.Helper()
	b.run("evaluate "+script, chromedp.Evaluate(script, v))
}

// waitFor polls a script in the page until it is true.
func (b *browser) waitFor(what, script string) {
	b.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var ok bool
		b.eval(script, &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.screenshot("wait-" + strings.ReplaceAll(what, " ", "-"))
			b.t.Fatalf("%s: %s never held (console: %v)", what, script, b.console)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBrowserSAEs drives the SAE table of /train in chromium: an
// interrupted training has a Resume button that starts its job again, an
// SAE trained in the browser has a Delete button (asked twice) that removes
// it and its files, and an SAE given with --sae has none.
func TestBrowserSAEs(t *testing.T) {
	skipShort(t, "browser test")
	ts, work, _ := givenServer(t)
	ts.trainReady(t, "mine", 200)
	cut := ts.trainToCheckpoint(t, "cut", 1000000)
	ts.stopJob(t, cut)

	b := newBrowser(t, ts)
	b.open("/train")
	b.run("SAE table", chromedp.WaitVisible(`tr[data-sae="cut"]`, chromedp.ByQuery))
	var n int
	b.eval(`document.querySelectorAll('[data-testid="sae-delete-given"]').length`, &n)
	if n != 0 {
		t.Error("an SAE given with --sae has a Delete button")
	}
	b.screenshot("saes-interrupted")

	b.clickTestid("sae-resume-cut", 1)
	deadline := time.Now().Add(time.Minute)
	for {
		state, job, _, _, _ := ts.srv.ws.SAE("cut").snapshot()
		if state == SAETraining && job != cut {
			ts.send(t, "DELETE", "/api/jobs/"+job, "", nil)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Resume did not start a training job: the SAE is %s (job %s; console: %v)", state, job, b.console)
		}
		time.Sleep(20 * time.Millisecond)
	}

	b.clickTestid("sae-delete-mine", 1)
	if _, err := os.Stat(filepath.Join(work, "saes", "mine")); err != nil {
		t.Fatalf("one click of Delete deleted the SAE: %v", err)
	}
	b.clickTestid("sae-delete-mine", 1)
	b.waitFor("the deleted SAE leaves the table", `!document.querySelector('tr[data-sae="mine"]')`)
	if _, err := os.Stat(filepath.Join(work, "saes", "mine")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Delete the SAE's directory: %v, want it gone", err)
	}
	if ts.srv.ws.SAE("mine") != nil {
		t.Error("after Delete the SAE is still in the workspace")
	}
	b.noScriptErrors()
}

// TestBrowserNotFoundAndURLState opens a page the workbench lacks (its own
// not-found page, with links back), and pages whose state is in their URL:
// the step browser's search, label filter and selected step, the steering
// page's behaviour, the training form's dataset and layer. Each is read
// from the URL on load and written to it when changed.
func TestBrowserNotFoundAndURLState(t *testing.T) {
	skipShort(t, "browser test")
	ts, _, _ := givenServer(t)
	ts.waitReady(t, "given")
	b := newBrowser(t, ts)

	b.open("/no/such/page")
	var text string
	b.run("not-found page", chromedp.WaitVisible(`[data-testid="not-found"]`, chromedp.ByQuery),
		chromedp.Text(`[data-testid="not-found"]`, &text, chromedp.ByQuery))
	if !strings.Contains(text, "/no/such/page") || !strings.Contains(text, "Datasets") {
		t.Errorf("the not-found page says %q", text)
	}
	b.screenshot("not-found")

	// Steps: search and filter from the URL, then into it.
	b.open("/?q=wait&label=reflection")
	var q, label string
	b.eval(`document.querySelector('[aria-label="search steps"]').value`, &q)
	b.eval(`document.querySelector('[aria-label="label filter"]').value`, &label)
	if q != "wait" || label != "reflection" {
		t.Errorf("/?q=wait&label=reflection shows search %q and filter %q", q, label)
	}
	b.waitFor("filtered steps", `document.querySelectorAll('[data-testid="step"]').length > 0`)
	b.eval(`{const s = document.querySelector('[aria-label="label filter"]'); s.value = 'backtracking'; s.dispatchEvent(new Event('change'));}`, nil)
	b.waitFor("the filter in the URL", `new URLSearchParams(location.search).get('label') === 'backtracking'`)
	b.open("/?label=backtracking&offset=50")
	b.waitFor("backtracking steps", `document.querySelectorAll('[data-testid="step"]').length > 0`)
	var pager string
	b.eval(`document.querySelector('.pager span').textContent`, &pager)
	if !strings.HasPrefix(pager, "51") {
		t.Errorf("/?offset=50 shows steps %q", pager)
	}
	var row string
	b.eval(`{const r = document.querySelector('[data-testid="step"]'); r.querySelector('button.linkish').click(); r.dataset.row}`, &row)
	b.waitFor("the selected step in the URL", fmt.Sprintf(`new URLSearchParams(location.search).get('step') === %q`, row))
	var url string
	b.eval(`location.pathname + location.search`, &url)
	b.open(url)
	b.waitFor("the selected step after a reload", fmt.Sprintf(`!!document.querySelector('.step-row.selected[data-row="%s"]')`, row))

	// Steering: the behaviour picker follows the URL.
	b.open("/steer?sae=given&behaviour=reflection")
	b.waitFor("the behaviour picker", `document.querySelector('[aria-label="behaviour"]').options.length > 1`)
	var beh string
	b.eval(`document.querySelector('[aria-label="behaviour"]').value`, &beh)
	if beh != "reflection" {
		t.Errorf("/steer?behaviour=reflection selects %q in the picker", beh)
	}
	b.eval(`{const s = document.querySelector('[aria-label="behaviour"]'); s.value = s.options[s.options.length-1].value; s.dispatchEvent(new Event('change'));}`, nil)
	b.waitFor("the behaviour in the URL", `new URLSearchParams(location.search).get('behaviour') === document.querySelector('[aria-label="behaviour"]').value`)

	// Training: the dataset and layer.
	layer := ts.ws.Datasets()[0].Dump.Layers[0].Number
	b.open(fmt.Sprintf("/train?dataset=planted&layer=%d", layer))
	var got string
	b.eval(`document.querySelector('#train-layer').value`, &got)
	if got != fmt.Sprint(layer) {
		t.Errorf("/train?layer=%d selects layer %q", layer, got)
	}
	b.eval(`{const s = document.querySelector('#train-layer'); s.dispatchEvent(new Event('change'));}`, nil)
	b.waitFor("the layer in the URL", fmt.Sprintf(`new URLSearchParams(location.search).get('layer') === '%d'`, layer))
	b.noScriptErrors()
}
