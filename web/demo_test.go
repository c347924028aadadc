package web

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/steer"
	"github.com/rise-interp/rise/steer/model"
)

// TestModelDemo sets up the model demo on the tiny reasoning model, at a
// smaller size: its traces recorded after three blocks, an SAE and atlas per
// layer, the sweep over them, and steering with a behaviour vector.
func TestModelDemo(t *testing.T) {
	modelPath, tokPath := filepath.Join("..", TinyModelFile), filepath.Join("..", TinyTokenizerFile)
	if _, err := os.Stat(modelPath); err != nil {
		t.Fatalf("the tiny reasoning modelPath is missing: %v", err)
	}
	m, tok, err := model.Load(modelPath, tokPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func(n, s int) { tinyTraces, tinySAESteps = n, s }(tinyTraces, tinySAESteps)
	tinyTraces, tinySAESteps = 400, 600
	ws := &Workspace{Dir: t.TempDir()}
	srv := New(ws, Config{Version: "test", Demo: true, Backend: &steer.Native{Model: m, Tokenizer: tok}})
	ts := &testServer{Server: httptest.NewServer(srv), srv: srv, ws: ws}
	defer func() { ts.Close(); srv.Close() }()
	if err := srv.SetupModelDemo(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for _, l := range TinyLayers {
		ts.waitReady(t, TinyDataset+"-l"+string(rune('0'+l)))
	}
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

// TestModelDemoKeepsItsLatents trains the model demo at its real size and
// holds each block's SAE to at most 10% of latents that never fire over the
// whole dump. Block 1, whose states are nearly two-dimensional, lost 19% at
// the default rate.
func TestModelDemoKeepsItsLatents(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the demo's three SAEs at full size")
	}
	modelPath, tokPath := filepath.Join("..", TinyModelFile), filepath.Join("..", TinyTokenizerFile)
	m, tok, err := model.Load(modelPath, tokPath)
	if err != nil {
		t.Fatal(err)
	}
	ws := &Workspace{Dir: t.TempDir()}
	srv := New(ws, Config{Version: "test", Demo: true, Backend: &steer.Native{Model: m, Tokenizer: tok}})
	ts := &testServer{Server: httptest.NewServer(srv), srv: srv, ws: ws}
	defer func() { ts.Close(); srv.Close() }()
	if err := srv.SetupModelDemo(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for _, l := range TinyLayers {
		name := TinyDataset + "-l" + string(rune('0'+l))
		ts.waitReady(t, name)
		md := ws.SAE(name)
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
}
