package web

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/rise-interp/rise/internal/bf16"
	"github.com/rise-interp/rise/internal/browsertest"
	"github.com/rise-interp/rise/internal/shared"
)

// artifactDir is where the browser tests leave their screenshots:
// $RISE_ARTIFACTS, or .artifacts/browser at the repository root.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("RISE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", ".artifacts", "browser")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one headless chromium tab on a test server.
type browser struct {
	t   *testing.T
	ctx context.Context
	ts  *testServer
	dir string
	// console collects the page's console errors and uncaught exceptions.
	console []string
}

func newBrowser(t *testing.T, ts *testServer, flags ...chromedp.ExecAllocatorOption) *browser {
	ctx := browsertest.New(t, 4*time.Minute, 1400, 900, flags...)
	b := &browser{t: t, ctx: ctx, ts: ts, dir: artifactDir(t)}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			b.console = append(b.console, "exception: "+e.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value))
				}
				b.console = append(b.console, "console.error: "+strings.Join(parts, " "))
			}
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return b
}

// skipShort skips the test in -short mode, saying what it skips (a browser
// test, the browser part of a test, the load test).
func skipShort(t *testing.T, what string) {
	t.Helper()
	if testing.Short() {
		t.Skip(what + " skipped in -short mode")
	}
}

// noScriptErrors fails the test when a page threw an exception or logged
// an error to the console.
func (b *browser) noScriptErrors() {
	b.t.Helper()
	if len(b.console) > 0 {
		b.t.Errorf("script errors: %v", b.console)
	}
}

func (b *browser) run(what string, actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v (console: %v)", what, err, b.console)
	}
}

// open loads a page and waits for it to say it is ready.
func (b *browser) open(path string) {
	b.t.Helper()
	b.run("open "+path, chromedp.Navigate(b.ts.URL+path), chromedp.WaitVisible(`body[data-ready="1"]`, chromedp.ByQuery))
}

func (b *browser) screenshot(name string) {
	var png []byte
	if err := chromedp.Run(b.ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// panelsFit checks that nothing on the open page runs past its panel at
// window widths of 1,400, 1,250 and 1,000 px, then restores 1,400.
func (b *browser) panelsFit(page string) {
	b.t.Helper()
	for _, width := range []int64{1400, 1250, 1000} {
		var over []string
		b.run("narrow window", chromedp.EmulateViewport(width, 900),
			chromedp.Sleep(100*time.Millisecond),
			chromedp.Evaluate(`[...document.querySelectorAll('.panel')].filter((p) => p.scrollWidth > p.clientWidth + 1).map((p) => (p.querySelector('h2, h3, .panel-title') || p).textContent.slice(0, 40) + ': ' + p.scrollWidth + ' > ' + p.clientWidth)`, &over))
		if len(over) > 0 {
			b.t.Errorf("%s, %d px wide: content runs past its panels: %v", page, width, over)
		}
	}
	b.run("window back", chromedp.EmulateViewport(1400, 900))
}

// attr reads an attribute of the first element matching sel.
func (b *browser) attr(sel, name string) string {
	var v string
	var ok bool
	b.run("read "+sel, chromedp.AttributeValue(sel, name, &v, &ok, chromedp.ByQuery))
	return v
}

// TestBrowser drives the workbench in Debian's chromium: every page
// opens without a script error; an SAE trained from /train draws its
// curve as it trains; the atlas draws every feature and a click on one
// opens its page with its top steps; the steering page says no model is
// attached. Screenshots go to the artifact directory.
func TestBrowser(t *testing.T) {
	skipShort(t, "browser test")
	ts := newTestServer(t)
	b := newBrowser(t, ts)

	b.open("/")
	b.run("dataset list", chromedp.WaitVisible(`[data-testid="nav-datasets"]`, chromedp.ByQuery))
	var text string
	b.run("datasets text", chromedp.Text("body", &text, chromedp.ByQuery))
	if !strings.Contains(text, "planted") {
		t.Errorf("the datasets page does not name the dataset: %.300s", text)
	}
	b.screenshot("datasets")

	// Train from the page, in bfloat16 where the CPU has it.
	precision := "f32"
	if bf16.Native() {
		precision = "bf16"
	}
	b.open("/train")
	b.run("fill the training form",
		chromedp.SetValue(`#train-name`, "from-browser", chromedp.ByQuery),
		chromedp.SetValue(`#train-arch`, "topk", chromedp.ByQuery),
		chromedp.SetValue(`#train-width`, "128", chromedp.ByQuery),
		chromedp.SetValue(`#train-k`, "4", chromedp.ByQuery),
		chromedp.SetValue(`#train-steps`, "3000", chromedp.ByQuery),
		chromedp.SetValue(`#train-batch`, "256", chromedp.ByQuery),
		chromedp.SetValue(`#train-precision`, precision, chromedp.ByQuery),
		chromedp.Click(`[data-testid="train-start"]`, chromedp.ByQuery),
	)
	points := func() int {
		n, _ := strconv.Atoi(b.attr(`[data-testid="train-curve"]`, "data-points"))
		return n
	}
	deadline := time.Now().Add(2 * time.Minute)
	first := 0
	for first == 0 && time.Now().Before(deadline) {
		first = points()
		time.Sleep(50 * time.Millisecond)
	}
	if first == 0 {
		b.screenshot("train-no-curve")
		t.Fatalf("the training curve drew no point (console: %v)", b.console)
	}
	later := first
	for later == first && time.Now().Before(deadline) {
		later = points()
		time.Sleep(50 * time.Millisecond)
	}
	if later <= first {
		t.Fatalf("the training curve did not move: %d points, then %d", first, later)
	}
	b.screenshot("train")
	ts.waitReady(t, "from-browser")
	if cfg, err := os.ReadFile(filepath.Join(ts.ws.SAE("from-browser").Path, "cfg.json")); err != nil || !strings.Contains(string(cfg), `"precision": "`+precision+`"`) {
		t.Errorf("the SAE trained from the page does not record precision %s: %v %s", precision, err, cfg)
	}

	// The atlas shows every feature; a click on one opens its page.
	b.open("/atlas?sae=from-browser")
	b.run("atlas map", chromedp.WaitVisible(`[data-testid="atlas-map"]`, chromedp.ByQuery))
	deadline = time.Now().Add(time.Minute)
	for b.attr(`[data-testid="atlas-map"]`, "data-points") != "128" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := b.attr(`[data-testid="atlas-map"]`, "data-points"); n != "128" {
		t.Fatalf("the atlas drew %q points, want every one of the 128 features", n)
	}
	b.screenshot("atlas")
	// Latents that never fire are drawn apart and counted in the legend;
	// hiding them leaves the others.
	// (Every latent of this SAE fires: three are made silent on the page.)
	var dead int
	b.run("count never-firing", chromedp.Evaluate(`(() => {
		const m = window.riseAtlas;
		if (!m.features.some((f) => !(f.frequency > 0))) { for (const i of [1, 2, 3]) m.features[i].frequency = 0; m.setColour('behaviour'); }
		return m.features.filter((f) => !(f.frequency > 0)).length;
	})()`, &dead))
	var legend string
	b.run("legend", chromedp.Text(`[data-testid="never-fires"]`, &legend, chromedp.ByQuery))
	if dead == 0 || !strings.Contains(legend, "never fires") || !strings.Contains(legend, strconv.Itoa(dead)) {
		t.Errorf("%d latents never fire but the legend %q does not say so", dead, legend)
	}
	b.run("hide never-firing", chromedp.Click(`[data-testid="hide-dead"]`, chromedp.ByQuery))
	time.Sleep(100 * time.Millisecond)
	if n := b.attr(`[data-testid="atlas-map"]`, "data-points"); n != strconv.Itoa(128-dead) {
		t.Errorf("with the never-firing hidden the atlas drew %s points, want %d", n, 128-dead)
	}
	b.run("show never-firing", chromedp.Click(`[data-testid="hide-dead"]`, chromedp.ByQuery))
	var pos struct{ X, Y float64 }
	b.run("locate feature 7", chromedp.Evaluate(`(() => {
		const c = document.querySelector('[data-testid="atlas-map"]');
		const r = c.getBoundingClientRect();
		const p = window.riseAtlas.screenPosition(7);
		return {X: r.left + p.x, Y: r.top + p.y};
	})()`, &pos))
	b.run("click feature 7", chromedp.MouseClickXY(pos.X, pos.Y))
	b.run("feature page", chromedp.WaitVisible(`[data-testid="feature-top-steps"] [data-testid="top-step"]`, chromedp.ByQuery))
	var loc string
	b.run("location", chromedp.Location(&loc))
	if !strings.HasSuffix(loc, "/feature/from-browser/7") {
		t.Errorf("clicking feature 7 opened %s", loc)
	}
	b.screenshot("feature")
	// Nothing on the feature page runs past its panel, down to a narrow
	// window (the enrichment table's eight columns once did, at 1,250 px:
	// 580 px in a 514 px panel).
	b.panelsFit("feature page")

	b.open("/behaviours?sae=from-browser")
	b.screenshot("behaviours")

	b.open("/steer?sae=from-browser&feature=7")
	b.run("steer", chromedp.Click(`[data-testid="steer-run"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`[data-testid="steer-default"]`, chromedp.ByQuery))
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b.run("steer text", chromedp.Text(`[data-testid="steer-default"]`, &text, chromedp.ByQuery))
		if strings.Contains(text, "no model attached") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(text, "no model attached") {
		t.Errorf("the steering page does not say that no model is attached: %q", text)
	}
	b.screenshot("steer")

	// Deep links load directly.
	for _, p := range []string{"/feature/from-browser/3", "/train", "/atlas", "/behaviours?sae=from-browser", "/steer?sae=from-browser&feature=7", "/"} {
		b.open(p)
		b.panelsFit(p)
	}
	b.noScriptErrors()
	fmt.Fprintf(os.Stderr, "browser screenshots in %s\n", b.dir)
}

// steerStory fills the open steering page's form (strength 15, no prompt,
// at most 40 tokens), runs it and reads the DEFAULT and STEERED panes until
// done holds of them or a minute has passed.
func (b *browser) steerStory(done func(def, st string) bool) (def, st string) {
	b.t.Helper()
	b.eval(`(() => {
		const set = (sel, v) => { const e = document.querySelector(sel); e.value = v; e.dispatchEvent(new Event('input', {bubbles: true})); };
		set('input[aria-label="strength"]', '15');
		set('textarea[aria-label="prompt"]', '');
		set('input[aria-label="max tokens"]', '40');
	})()`, nil)
	b.run("steer", chromedp.Click(`[data-testid="steer-run"]`, chromedp.ByQuery))
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		b.run("read panes", chromedp.Text(`[data-testid="steer-default"]`, &def, chromedp.ByQuery),
			chromedp.Text(`[data-testid="steer-steered"]`, &st, chromedp.ByQuery))
		if done(def, st) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return def, st
}

// TestBrowserSteer runs the steering page on stories260K with a feature of
// an SAE trained on its own residual stream: the DEFAULT pane tells the
// known story and the STEERED pane a different one.
func TestBrowserSteer(t *testing.T) {
	skipShort(t, "browser test")
	ts := storiesServer(t)
	b := newBrowser(t, ts)
	b.open("/steer?sae=st-sae&feature=3")
	def, st := b.steerStory(func(def, _ string) bool { return strings.Contains(def, "Lily") })
	b.screenshot("steer-stories")
	if !strings.Contains(def, "Once upon a time") || !strings.Contains(def, "Lily") {
		t.Fatalf("the DEFAULT pane does not tell the story: %q (console %v)", def, b.console)
	}
	if st == def || st == "" {
		t.Errorf("the STEERED pane %q does not differ from DEFAULT", st)
	}
	// Each pane says how it stopped; STEERED says where it leaves DEFAULT;
	// a strength past 10 warns of off-target effects; sampling is offered.
	var stop, diff, warn string
	var temps int
	b.run("read the panes' notes", chromedp.Text(`[data-testid="steer-steered"] [data-testid="steer-stop"]`, &stop, chromedp.ByQuery),
		chromedp.Text(`[data-testid="steer-diff"]`, &diff, chromedp.ByQuery),
		chromedp.Text(`[data-testid="steer-strength-warning"]`, &warn, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('[data-testid="steer-temperature"]').length`, &temps))
	if !strings.Contains(stop, "tokens") || !strings.Contains(diff, "DEFAULT") || !strings.Contains(warn, "other behaviours") || temps != 1 {
		t.Errorf("stop %q, diff %q, warning %q, temperature inputs %d", stop, diff, warn, temps)
	}
	b.noScriptErrors()
}

// seen is a request as the workbench received it.
type seen struct {
	Method, Path, ContentType, Origin, SecFetchSite, Host string
	Status                                                int
}

// recorder serves h and keeps what each request was and how it was
// answered.
type recorder struct {
	h    http.Handler
	mu   sync.Mutex
	reqs []seen
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, status: 200}
	rec.h.ServeHTTP(sw, r)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = append(rec.reqs, seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Origin"),
		r.Header.Get("Sec-Fetch-Site"), r.Host, sw.status})
}

func (rec *recorder) requests() []seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seen(nil), rec.reqs...)
}

// attackPage is a page of another site that tries to start training jobs
// on the workbench at TARGET: a self-submitting text/plain form (whose one
// field makes the body a JSON object), no-cors fetches (text/plain, and
// application/json, which no-cors mode drops) and a cors fetch of JSON
// (which needs a preflight). It writes what it did to body[data-done].
const attackPage = `<!doctype html><meta charset="utf-8"><title>an ordinary page</title>
<iframe name="sink"></iframe>
<form id="f" method="POST" action="TARGET/api/jobs" enctype="text/plain" target="sink">
<input type="hidden" name='{"kind":"train","dataset":"planted","name":"csrf-form","arch":"topk","k":4,"width":32,"steps":50,"sae":"' value='"}'>
</form>
<script>
const target = 'TARGET';
const job = (name) => JSON.stringify({kind: 'train', dataset: 'planted', name, arch: 'topk', k: 4, width: 32, steps: 50});
async function attack() {
  const out = {};
  await new Promise((done) => {
    document.querySelector('iframe').onload = done;
    setTimeout(done, 10000);
    document.getElementById('f').submit();
  });
  out.form = 'sent';
  for (const [name, init] of [
    ['nocors', {method: 'POST', mode: 'no-cors', body: job('csrf-nocors')}],
    ['nocorsjson', {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'application/json'}, body: job('csrf-nocors-json')}],
    ['cors', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: job('csrf-cors')}],
  ]) {
    try { const r = await fetch(target + '/api/jobs', init); out[name] = 'answered ' + r.type; } catch (e) { out[name] = 'failed: ' + e.message; }
  }
  document.body.dataset.done = JSON.stringify(out);
}
attack();
</script>`

// TestBrowserCrossSite: chromium opens a page of another origin on
// loopback — another port of 127.0.0.1 (same site), and localhost (another
// site) — that submits a text/plain form and no-cors and cors fetches to
// start training jobs on the workbench. Each request reaches the workbench
// and is refused; no job starts. Then a name rebound to 127.0.0.1
// (chromium's host resolver maps rebind.test there), under which the
// workbench's port is the page's own origin: the page and the script's
// same-origin calls get 421, and no job starts.
func TestBrowserCrossSite(t *testing.T) {
	skipShort(t, "browser test")
	ts := newTestServer(t)
	rec := &recorder{h: ts.srv}
	ts.Config.Handler = rec
	b := newBrowser(t, ts, chromedp.Flag("host-resolver-rules", "MAP rebind.test 127.0.0.1"),
		chromedp.Flag("disable-features", "HttpsUpgrades,HttpsFirstBalancedModeAutoEnable"))

	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, strings.ReplaceAll(attackPage, "TARGET", ts.URL))
	}))
	defer evil.Close()
	_, evilPort, _ := net.SplitHostPort(strings.TrimPrefix(evil.URL, "http://"))
	for _, page := range []string{"http://127.0.0.1:" + evilPort + "/", "http://localhost:" + evilPort + "/"} {
		before := len(rec.requests())
		var done string
		b.run("attack from "+page, chromedp.Navigate(page), chromedp.WaitReady(`body[data-done]`, chromedp.ByQuery),
			chromedp.Evaluate(`document.body.dataset.done`, &done))
		t.Logf("%s: %s", page, done)
		posts, preflights := 0, 0
		for _, r := range rec.requests()[before:] {
			t.Logf("  the workbench got %s %s (Content-Type %q, Origin %q, Sec-Fetch-Site %q): %d", r.Method, r.Path, r.ContentType, r.Origin, r.SecFetchSite, r.Status)
			switch {
			case r.Method == "POST" && r.Path == "/api/jobs":
				posts++
				if r.Status != http.StatusForbidden && r.Status != http.StatusUnsupportedMediaType {
					t.Errorf("from %s: POST /api/jobs answered %d", page, r.Status)
				}
			case r.Method == "OPTIONS":
				preflights++
				if r.Status/100 == 2 {
					t.Errorf("from %s: the preflight was granted (%d)", page, r.Status)
				}
			}
		}
		if posts < 3 || preflights < 1 {
			t.Errorf("from %s: the workbench got %d POSTs and %d preflights, want the form's and the no-cors fetches' 3 POSTs and the cors fetch's preflight", page, posts, preflights)
		}
		if n := ts.jobCount(); n != 0 {
			t.Fatalf("a page of %s started %d jobs: %v", page, n, ts.srv.jobs.List()[0].Params)
		}
	}

	// DNS rebinding: the attacker's name now leads to the workbench.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ts.URL, "http://"))
	rebound := "http://rebind.test:" + port
	var page string
	b.run("open "+rebound, chromedp.Navigate(rebound+"/"), chromedp.Text("body", &page, chromedp.ByQuery))
	if !strings.Contains(page, "rebind.test") || !strings.Contains(page, `"error"`) {
		t.Errorf("the workbench's page under a rebound name: %.200s, want a JSON error naming the host", page)
	}
	var got struct{ Status, Post int }
	b.run("same-origin calls under "+rebound, chromedp.Evaluate(`(async () => {
		const s = await fetch('/api/status');
		const p = await fetch('/api/jobs', {method: 'POST', headers: {'Content-Type': 'application/json'},
			body: JSON.stringify({kind: 'train', dataset: 'planted', name: 'rebound', arch: 'topk', k: 4, width: 32, steps: 50})});
		return {Status: s.status, Post: p.status};
	})()`, &got, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if got.Status != http.StatusMisdirectedRequest || got.Post != http.StatusMisdirectedRequest {
		t.Errorf("under %s: GET /api/status %d, POST /api/jobs %d; want 421 for both", rebound, got.Status, got.Post)
	}
	if n := ts.jobCount(); n != 0 {
		t.Errorf("a page under a rebound name started %d jobs", n)
	}
	// The workbench's own origin still works in the same browser.
	b.open("/train")
}

// TestBrowserQueue: /train follows the running training, not the one
// queued behind it; the jobs table shows that one as queued, and its cancel
// button (a DELETE the page sends as JSON) ends it; the running one's
// cancel button stops it too.
func TestBrowserQueue(t *testing.T) {
	skipShort(t, "browser test")
	ts := newTestServer(t)
	first := ts.train(t, "first", 1000000)
	second := ts.train(t, "second", 1000000)
	b := newBrowser(t, ts)
	b.open("/train")
	row := func(id string) string { return fmt.Sprintf(`tr[data-job=%q]`, id) }
	var state string
	b.run("queued row", chromedp.WaitVisible(row(second)+` .state`, chromedp.ByQuery), chromedp.Text(row(second)+` .state`, &state, chromedp.ByQuery))
	if state != StateQueued {
		t.Errorf("the second training shows %q in the jobs table, want queued", state)
	}
	var head string
	b.run("live job", chromedp.WaitVisible(`.job-head strong`, chromedp.ByQuery), chromedp.Text(`.job-head strong`, &head, chromedp.ByQuery))
	if head != "job "+first {
		t.Errorf("/train follows %q, want the running job %s", head, first)
	}
	b.screenshot("train-queued")
	for _, id := range []string{second, first} {
		// The table is redrawn as jobs change: find and click the button in
		// one step of the page's own.
		sel := row(id) + ` button.danger`
		b.run("cancel "+id, chromedp.WaitVisible(sel, chromedp.ByQuery),
			chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).click()`, sel), nil))
		select {
		case <-ts.srv.jobs.Get(id).Done():
		case <-time.After(time.Minute):
			t.Fatalf("job %s did not end after its cancel button (console: %v)", id, b.console)
		}
		if s := ts.srv.jobs.Get(id).State(); s != StateCancelled {
			t.Errorf("job %s is %s after its cancel button", id, s)
		}
	}
	b.noScriptErrors()
}

// TestBrowserSweep: the steering page's sweep runs held-out problems of
// the model demo over strengths as a job and draws the dose-response with
// its table (strength 0 without a p-value, the others with one).
func TestBrowserSweep(t *testing.T) {
	skipShort(t, "browser test")
	ts := storiesServer(t)
	// A dataset under the model demo's name is what makes the server offer
	// its held-out problems.
	if _, err := ts.ws.AddDataset(context.Background(), filepath.Join(shared.Root(t), "testdata", "tiny"), TinyDataset); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, ts)
	b.open("/steer?sae=st-sae&feature=3")
	b.run("fill the sweep", chromedp.Evaluate(`(() => {
		const set = (sel, v) => { const e = document.querySelector(sel); e.value = v; e.dispatchEvent(new Event('input', {bubbles: true})); };
		set('[data-testid="sweep-strengths"]', '-6,0,6');
		set('[data-testid="sweep-problems"]', '3');
		set('input[aria-label="sweep controls"]', '1');
		set('input[aria-label="max tokens"]', '12');
	})()`, nil))
	b.run("sweep", chromedp.Click(`[data-testid="sweep-run"]`, chromedp.ByQuery))
	var rows int
	var status, legend string
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		b.run("read the table", chromedp.Evaluate(`document.querySelectorAll('[data-testid="sweep-table"] tbody tr').length`, &rows),
			chromedp.Text(`[data-testid="sweep-status"]`, &status, chromedp.ByQuery))
		if rows > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.run("read the legend", chromedp.Text(`[data-testid="sweep-legend"]`, &legend, chromedp.ByQuery))
	b.screenshot("steer-sweep")
	if rows != 3 || !strings.Contains(status, "3 problems") || !strings.Contains(legend, "controls") {
		t.Fatalf("sweep table rows %d, status %q, legend %q (console %v)", rows, status, legend, b.console)
	}
	var table string
	b.run("read the cells", chromedp.Text(`[data-testid="sweep-table"]`, &table, chromedp.ByQuery))
	if !strings.Contains(table, "p=") {
		t.Errorf("no p-values in the sweep table: %q", table)
	}
	b.noScriptErrors()
}
