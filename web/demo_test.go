package web

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rise-interp/rise/internal/shared"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/steer"
	"github.com/rise-interp/rise/steer/model"
)

// tinyModel loads the tiny reasoning model and its tokenizer.
func tinyModel(t *testing.T) (*model.Model, model.Tokenizer) {
	t.Helper()
	modelPath, tokPath := filepath.Join(shared.Root(t), TinyModelFile), filepath.Join(shared.Root(t), TinyTokenizerFile)
	if _, err := os.Stat(modelPath); err != nil {
		t.Fatalf("the tiny reasoning model is missing: %v", err)
	}
	m, tok, err := model.Load(modelPath, tokPath)
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

// modelDemoServer serves a fresh workspace with the model demo set up on
// m and waits until every layer's SAE is ready.
func modelDemoServer(t *testing.T, m *model.Model, tok model.Tokenizer) *testServer {
	t.Helper()
	ws := &Workspace{Dir: t.TempDir()}
	srv := New(ws, Config{Version: "test", Demo: true, Backend: &steer.Native{Model: m, Tokenizer: tok}})
	ts := &testServer{Server: httptest.NewServer(srv), srv: srv, ws: ws}
	t.Cleanup(func() { ts.Close(); srv.Close() })
	if err := srv.SetupModelDemo(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for _, l := range TinyLayers {
		ts.waitReady(t, TinyDataset+"-l"+string(rune('0'+l)))
	}
	return ts
}

// TestModelDemo sets up the model demo on the tiny reasoning model, at a
// smaller size: its traces recorded after three blocks, an SAE and atlas per
// layer, the sweep over them, and steering with a behaviour vector.
func TestModelDemo(t *testing.T) {
	m, tok := tinyModel(t)
	defer func(n, s int) { tinyTraces, tinySAESteps = n, s }(tinyTraces, tinySAESteps)
	tinyTraces, tinySAESteps = 400, 600
	ts := modelDemoServer(t, m, tok)
	ws := ts.ws
	if layers := ts.sweepLayers(t, TinyDataset); len(layers) != 3 {
		t.Errorf("sweep over %d layers, want 3", len(layers))
	}
	var res struct {
		Default, Steered struct {
			Text string `json:"text"`
		}
		Error string `json:"error"`
	}
	// Steer with a behaviour vector of the layer-2 atlas: reflection's when
	// its SAE, trained small here, has a column that meets the attribution
	// rule, else the first behaviour that has one.
	var bs struct {
		Cosine struct {
			Names []string `json:"names"`
		} `json:"cosine"`
	}
	if code := ts.get(t, "/api/saes/tinyreason-l2/behaviours", &bs); code != 200 || len(bs.Cosine.Names) == 0 {
		t.Fatalf("behaviours of tinyreason-l2: %d, with vectors %v", code, bs.Cosine.Names)
	}
	behaviour := bs.Cosine.Names[0]
	if slices.Contains(bs.Cosine.Names, "reflection") {
		behaviour = "reflection"
	}
	t.Logf("steering with %s (behaviours with vectors: %v)", behaviour, bs.Cosine.Names)
	body := `{"prompt": "Q: Start with 5. Add 3. What is the result?\nA: ", "vectors": [{"sae": "tinyreason-l2", "behaviour": "` + behaviour + `"}],
		"strength": 8, "positions": "step_boundary", "max_tokens": 60}`
	if code := ts.post(t, "/api/steer", body, &res); code != 200 || !strings.HasPrefix(res.Default.Text, "5 + 3 = ") {
		t.Fatalf("steer: %d %q %s", code, res.Default.Text, res.Error)
	}
	// A second start reads everything back.
	srv2 := New(&Workspace{Dir: ws.Dir}, Config{Version: "test", Demo: true, Backend: &steer.Native{Model: m, Tokenizer: tok}})
	defer srv2.Close()
	if err := srv2.SetupModelDemo(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for _, j := range srv2.Jobs().List() {
		if j.Kind == "train" {
			t.Errorf("the second start trained %v again", j.Params)
		}
	}
}

// TestModelDemoFullSize sets up the model demo at its real size, as make
// run does. Each block's SAE leaves at most 10% of its latents never firing
// over the whole dump (block 1, whose states are nearly two-dimensional,
// lost 19% at the default rate). Then /steer, opened and run with its
// defaults in chromium, writes more reflection steps in STEERED than in
// DEFAULT (the first problem with the most operations gave 3 and 3). It
// passes with OpenBLAS (0 and 5) and pure Go (0 and 3).
func TestModelDemoFullSize(t *testing.T) {
	skipShort(t, "trains the demo's three SAEs at full size")
	m, tok := tinyModel(t)
	ts := modelDemoServer(t, m, tok)
	for _, l := range TinyLayers {
		md := ts.ws.SAE(TinyDataset + "-l" + string(rune('0'+l)))
		_, _, _, s, _ := md.snapshot()
		met, err := sae.Evaluate(context.Background(), s, md.Layer, sae.EvalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("block %d: dead %.4f, fvu %.4f", l, met.DeadFraction, met.FVU)
		if met.DeadFraction > 0.10 {
			t.Errorf("block %d: %.1f%% of the latents never fire, want at most 10%%", l, 100*met.DeadFraction)
		}
	}

	b := newBrowser(t, ts)
	// Opened before anything asked for the layer sweep, the page waits for
	// it, then lists the best layer's reflection vector and shows it in the
	// pickers.
	b.open("/steer")
	var shown []string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b.eval(`[document.querySelector('[data-testid="steer-vectors"]').textContent,
			document.querySelector('select[aria-label="SAE"]').value, document.querySelector('select[aria-label="behaviour"]').value]`, &shown)
		if shown[2] == "reflection" {
			break
		}
	}
	if !strings.Contains(shown[0], "tinyreason-l3 · behaviour reflection") || shown[1] != "tinyreason-l3" || shown[2] != "reflection" {
		t.Fatalf("/steer lists %q and picks %s, %s; want block 3's reflection vector (the best layer)", shown[0], shown[1], shown[2])
	}
	b.run("steer", chromedp.Click(`[data-testid="steer-run"]`, chromedp.ByQuery))
	// Each pane's reflection count, once both have their stop notes.
	const read = `(() => {
		const pane = (id) => {
			const el = document.querySelector('[data-testid="' + id + '"]');
			if (!el.querySelector('[data-testid="steer-stop"]')) return -1;
			const c = [...el.querySelectorAll('.count')].find((e) => e.textContent.startsWith('reflection'));
			return c ? parseInt(c.querySelector('.num').textContent, 10) : 0;
		};
		return [pane('steer-default'), pane('steer-steered'), document.querySelector('[data-testid="steer-prompt"]').value];
	})()`
	var got []any
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b.eval(read, &got)
		if got[0].(float64) >= 0 && got[1].(float64) >= 0 {
			break
		}
	}
	b.screenshot("steer-demo")
	t.Logf("opening problem %q: reflection steps %v unsteered, %v steered", got[2], got[0], got[1])
	if def, st := got[0].(float64), got[1].(float64); def < 0 || st <= def {
		t.Errorf("/steer with its defaults: %v reflection steps in STEERED, %v in DEFAULT; want more in STEERED", st, def)
	}
	b.noScriptErrors()
}
