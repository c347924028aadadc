package web

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/reason"
	"github.com/rise-interp/rise/internal/shared"
	"github.com/rise-interp/rise/sae"
	"github.com/rise-interp/rise/sae/atlas"
	"github.com/rise-interp/rise/steer"
	"github.com/rise-interp/rise/steer/model"
	"github.com/rise-interp/rise/web/dashboard"
)

// storiesServer serves stories260K with an SAE trained on its own
// residual stream (block 2, at step delimiters of a few stories), the whole
// RISE loop at toy scale.
func storiesServer(t *testing.T) *testServer {
	t.Helper()
	m, tok, err := model.Load(shared.Stories(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	gens, err := model.Generate(ctx, m, tok, []string{"", "Once upon a time", "Tom had a ball", "The sun was hot"},
		model.GenerateOptions{MaxTokens: 200, Temperature: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var traces []activations.Trace
	for i, g := range gens {
		// Sentences become steps, so that there are rows to train on.
		resp := strings.ReplaceAll(g.Text, ". ", ".\n\n")
		traces = append(traces, activations.Trace{Trace: fmt.Sprint("s", i), Prompt: g.Prompt, Response: resp})
	}
	dir := t.TempDir()
	dump := filepath.Join(dir, "stories")
	if _, err := steer.Capture(ctx, m, tok, traces, dump, steer.CaptureOptions{Layers: []int{2}}); err != nil {
		t.Fatal(err)
	}
	ws := &Workspace{Dir: filepath.Join(dir, "work")}
	ds, err := ws.AddDataset(context.Background(), dump, "")
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := sae.Train(ctx, ds.Dump.Layers[0], sae.TrainConfig{Arch: sae.TopK, Width: 64, K: 4, Batch: 16, Steps: 100, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Metadata.HookLayer = 2
	if err := sae.Save(filepath.Join(dir, "st-sae"), s, sae.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	md, err := ws.AddSAE(filepath.Join(dir, "st-sae"))
	if err != nil {
		t.Fatal(err)
	}
	srv := New(ws, Config{Version: "test", Backend: &steer.Native{Model: m, Tokenizer: tok}})
	srv.StartAnalysis(md)
	ts := serveTest(t, srv)
	ts.waitReady(t, "st-sae")
	return ts
}

// TestSteerAPI runs the steering page's request end to end on the native
// runtime: strength 0 leaves the story as it is, a strong feature vector
// changes it, an uploaded .npy works, and bad requests say why.
func TestSteerAPI(t *testing.T) {
	ts := storiesServer(t)
	var status map[string]any
	ts.get(t, "/api/status", &status)
	if status["model"] == nil {
		t.Fatal("status shows no model")
	}
	type side struct {
		Text   string         `json:"text"`
		Steps  []SteerStep    `json:"steps"`
		Counts map[string]int `json:"counts"`
	}
	var res struct {
		Default side   `json:"default"`
		Steered side   `json:"steered"`
		Job     string `json:"job"`
		Error   string `json:"error"`
	}
	req := func(strength float64, vec string) string {
		return fmt.Sprintf(`{"prompt": "", "vectors": [%s], "operator": "add", "strength": %g, "positions": "all", "max_tokens": 40, "seed": 1}`, vec, strength)
	}
	if code := ts.post(t, "/api/steer", req(0, `{"sae": "st-sae", "feature": 3}`), &res); code != 200 {
		t.Fatalf("steer: %d %s", code, res.Error)
	}
	if !strings.HasPrefix(res.Default.Text, "Once upon a time, there was a little girl named Lily") || res.Steered.Text != res.Default.Text || res.Job == "" {
		t.Fatalf("strength 0: default %q, steered %q", res.Default.Text, res.Steered.Text)
	}
	if code := ts.post(t, "/api/steer", req(12, `{"sae": "st-sae", "feature": 3}`), &res); code != 200 || res.Steered.Text == res.Default.Text {
		t.Errorf("strength 12: %d, default %q, steered %q", code, res.Default.Text, res.Steered.Text)
	}
	t.Logf("DEFAULT: %q\nSTEERED: %q", res.Default.Text, res.Steered.Text)
	if len(res.Default.Steps) == 0 || len(res.Default.Steps[0].Labels) == 0 {
		t.Errorf("default steps %+v", res.Default.Steps)
	}
	v := make([]float32, 64)
	v[5] = 1
	npy := base64.StdEncoding.EncodeToString(activations.EncodeNpy(v, 1, 64))
	if code := ts.post(t, "/api/steer", req(20, `{"npy": "`+npy+`", "layer": 1}`), &res); code != 200 || res.Steered.Text == res.Default.Text {
		t.Errorf("npy vector: %d %s", code, res.Error)
	}
	// The same vector as a 1-D float64 array and as a (64, 1) column: the
	// workbench reads vectors as the command line does (steer.ReadVectorsNpy).
	for _, shape := range []string{"(64,)", "(64, 1)"} {
		hdr := "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape + ", }"
		hdr += strings.Repeat(" ", 63-(10+len(hdr))%64) + "\n"
		raw := append([]byte("\x93NUMPY\x01\x00"), byte(len(hdr)), 0)
		raw = append(raw, hdr...)
		for i := range 64 {
			f := 0.0
			if i == 5 {
				f = 1
			}
			raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(f))
		}
		up := base64.StdEncoding.EncodeToString(raw)
		got := res
		if code := ts.post(t, "/api/steer", req(20, `{"npy": "`+up+`", "layer": 1}`), &got); code != 200 || got.Steered.Text != res.Steered.Text {
			t.Errorf("npy vector of shape %s as float64: %d %s", shape, code, got.Error)
		}
	}
	var e map[string]any
	for body, want := range map[string]string{
		req(1, `{"npy": "`+base64.StdEncoding.EncodeToString(activations.EncodeNpy(make([]float32, 8), 1, 8))+`", "layer": 1}`): "residual stream 64",
		req(1, `{"sae": "st-sae", "feature": 999}`):                                                                     "feature",
		req(1, `{"sae": "nope", "feature": 1}`):                                                                         "no SAE",
		req(1, `{"sae": "st-sae", "feature": 1, "layer": 9}`):                                                           "layer",
		`{"prompt": "x", "vectors": [{"sae": "st-sae", "feature": 1}], "operator": "spin"}`:                             "op",
		`{"prompt": "x", "vectors": []}`:                                                                                "at least one vector",
		req(1, `{"sae": "st-sae", "feature": 1, "layer": -1}`):                                                          "layer: expected a block from 0 to 4, found -1",
		`{"prompt": "` + strings.Repeat("Once upon a time, ", 300) + `", "vectors": [{"sae": "st-sae", "feature": 1}]}`: "tokens (the context of model",
	} {
		if code := ts.post(t, "/api/steer", body, &e); code/100 != 4 || !strings.Contains(fmt.Sprint(e["error"]), want) {
			t.Errorf("POST %.80s: %d %v, want a 4xx mentioning %q", body, code, e, want)
		}
	}
}

// TestSteerPromptsAndAnswers: the model demo's steering page is offered
// held-out problems with their answers (none elsewhere), and a request with
// an answer says of each pane whether its last number is the answer.
func TestSteerPromptsAndAnswers(t *testing.T) {
	ts := storiesServer(t)
	var got struct {
		Prompts []struct{ Prompt, Answer string } `json:"prompts"`
		Opening int                               `json:"opening"`
	}
	if code := ts.get(t, "/api/steer/prompts", &got); code != 200 || len(got.Prompts) != 0 {
		t.Fatalf("prompts without the model demo: %d %v", code, got.Prompts)
	}
	if _, err := ts.ws.AddDataset(context.Background(), filepath.Join(shared.Root(t), "testdata", "tiny"), TinyDataset); err != nil {
		t.Fatal(err)
	}
	if code := ts.get(t, "/api/steer/prompts", &got); code != 200 || len(got.Prompts) != heldOutProblems {
		t.Fatalf("prompts of the model demo: %d, %d of them", code, len(got.Prompts))
	}
	first := reason.Problems(reason.Config{N: 1, Seed: heldOutSeed})[0]
	if got.Prompts[0].Prompt != first.Prompt() || got.Prompts[0].Answer != strconv.Itoa(first.Answer) {
		t.Errorf("first prompt %+v, want the held-out problem %q = %d", got.Prompts[0], first.Prompt(), first.Answer)
	}
	// The page opens on openingProblem, one with the most operations.
	all := reason.Problems(reason.Config{N: heldOutProblems, Seed: heldOutSeed})
	most := 0
	for _, p := range all {
		most = max(most, p.Ops())
	}
	if o := got.Opening; o != openingProblem {
		t.Errorf("opening problem %d, want %d", o, openingProblem)
	} else if all[o].Ops() != most {
		t.Errorf("opening problem %d has %d operations, want one of those with %d", o, all[o].Ops(), most)
	} else if most < 4 {
		t.Errorf("the opening problem has %d operations; the held-out problems should reach 4 or more", most)
	}
	var res struct {
		Default, Steered struct {
			Correct *bool `json:"correct"`
			Stop    string
		}
		Error string `json:"error"`
	}
	body := `{"prompt": "Tom had 3", "vectors": [{"sae": "st-sae", "feature": 3}], "strength": 4, "max_tokens": 20, "answer": "3"}`
	if code := ts.post(t, "/api/steer", body, &res); code != 200 || res.Default.Correct == nil || res.Steered.Correct == nil {
		t.Fatalf("steer with an answer: %d %+v %s", code, res, res.Error)
	}
}

// TestSteerSweepAPI: the browser's sweep runs the vectors over strengths on
// the given prompts as one job, beside random-direction controls, and its
// result carries what rise steer's does: every behaviour with intervals,
// p-values against strength 0, the controls and their band.
func TestSteerSweepAPI(t *testing.T) {
	ts := storiesServer(t)
	var job JobView
	body := `{"vectors": [{"sae": "st-sae", "feature": 3}], "strengths": [-6, 0, 6], "controls": 2, "max_tokens": 12,
		"prompts": [{"prompt": "Once upon a time"}, {"prompt": "Tom had a ball", "answer": "3"}, {"prompt": "The sun"}]}`
	if code := ts.post(t, "/api/steer/sweep", body, &job); code != http.StatusAccepted || job.ID == "" {
		t.Fatalf("sweep: %d %+v", code, job)
	}
	var v struct {
		State  string `json:"state"`
		Error  string `json:"error"`
		Result struct {
			Runs        []steer.Run                   `json:"runs"`
			Controls    []steer.ControlRuns           `json:"controls"`
			ControlBand map[string]steer.MeasureRange `json:"control_band"`
			Prompts     int                           `json:"prompts"`
		} `json:"result"`
	}
	deadline := time.Now().Add(2 * time.Minute)
	for ts.get(t, "/api/jobs/"+job.ID, &v); v.State == StateQueued || v.State == StateRunning; ts.get(t, "/api/jobs/"+job.ID, &v) {
		if time.Now().After(deadline) {
			t.Fatal("the sweep did not end")
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := v.Result
	if v.State != StateDone || len(r.Runs) != 3 || len(r.Controls) != 2 || r.Prompts != 3 {
		t.Fatalf("sweep ended %s (%s): %d runs, %d controls, %d prompts", v.State, v.Error, len(r.Runs), len(r.Controls), r.Prompts)
	}
	if _, ok := r.Runs[2].Behaviours["other"]; !ok || r.Runs[2].PValues == nil || r.Runs[1].AccuracyInterval == nil {
		t.Errorf("run at 6: %+v", r.Runs[2])
	}
	if band, ok := r.ControlBand["other"]; !ok || len(band.Lo) != 3 {
		t.Errorf("control band %+v", r.ControlBand)
	}
	for _, bad := range []string{
		`{"vectors": [{"sae": "st-sae", "feature": 3}]}`, // no prompts, and no model demo to take problems from
		`{"vectors": [{"sae": "st-sae", "feature": 3}], "prompts": [{"prompt": "x"}], "controls": 50}`,
		`{"vectors": [], "prompts": [{"prompt": "x"}]}`,
	} {
		var e map[string]any
		if code := ts.post(t, "/api/steer/sweep", bad, &e); code != http.StatusBadRequest {
			t.Errorf("POST %s: %d %v, want 400", bad, code, e)
		}
	}
}

// TestFeatureLogitLensAndRule: with a model attached, a feature page lists
// the tokens its direction promotes and suppresses (held to the runtime's
// LogitLens); every behaviour row says its firings and whether they meet
// the attribution rule.
func TestFeatureLogitLensAndRule(t *testing.T) {
	ts := storiesServer(t)
	var f struct {
		LogitLens struct {
			Promoted, Suppressed []dashboard.LensToken
		} `json:"logit_lens"`
		Behaviours []behaviourStat `json:"behaviours"`
	}
	if code := ts.get(t, "/api/saes/st-sae/features/3", &f); code != 200 {
		t.Fatalf("feature: %d", code)
	}
	p, s := f.LogitLens.Promoted, f.LogitLens.Suppressed
	if len(p) != logitLensTokens || len(s) != logitLensTokens || p[0].Logit < p[len(p)-1].Logit || s[0].Logit > p[len(p)-1].Logit {
		t.Fatalf("logit lens: promoted %+v, suppressed %+v", p, s)
	}
	nat := ts.srv.cfg.Backend.(*steer.Native)
	sa := ts.ws.SAE("st-sae")
	_, _, _, weights, _ := sa.snapshot()
	logits, err := nat.Model.LogitLens(weights.WDec[3*weights.DIn : 4*weights.DIn])
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range append(p, s...) {
		if logits[tok.ID] != tok.Logit || nat.Tokenizer.Decode([]int{tok.ID}, true) != tok.Token {
			t.Errorf("lens token %+v: the runtime gives logit %v", tok, logits[tok.ID])
		}
	}
	if len(f.Behaviours) == 0 {
		t.Fatal("no behaviour rows")
	}
	// The rule never ties a feature to a behaviour it fired on fewer than
	// DefaultMinFirings times.
	for _, b := range f.Behaviours {
		if b.Evidence && b.Firings < atlas.DefaultMinFirings {
			t.Errorf("behaviour %s: %d firings, yet the rule is said to be met", b.Name, b.Firings)
		}
	}
}

// TestFeatureTokenView: with a model attached, a feature's examples come
// token by token, and the activation at each example's state token is the
// one the dump holds (the token-level run is the capture's); the steering
// effect lists the tokens the feature's direction moves most, in order.
// Without a model both answer 409.
func TestFeatureTokenView(t *testing.T) {
	ts := storiesServer(t)
	id := -1
	for i := range 64 {
		var f struct {
			Fires     int  `json:"fires"`
			TokenView bool `json:"token_view"`
		}
		if code := ts.get(t, fmt.Sprintf("/api/saes/st-sae/features/%d", i), &f); code != 200 || !f.TokenView {
			t.Fatalf("feature %d: %d, token_view %v", i, code, f.TokenView)
		}
		if f.Fires >= 3 {
			id = i
			break
		}
	}
	if id < 0 {
		t.Fatal("no feature fires three times")
	}
	var tv struct {
		Examples []tokenExample `json:"examples"`
	}
	if code := ts.get(t, fmt.Sprintf("/api/saes/st-sae/features/%d/tokens?top=3", id), &tv); code != 200 || len(tv.Examples) != 3 {
		t.Fatalf("tokens: %d, %d examples", code, len(tv.Examples))
	}
	ds := ts.ws.Dataset("stories")
	for _, ex := range tv.Examples {
		if d := math.Abs(float64(ex.StateValue - ex.DumpValue)); d > 1e-3*math.Max(1, math.Abs(float64(ex.DumpValue))) || ex.DumpValue <= 0 {
			t.Errorf("row %d: %v at the state token, the dump has %v", ex.Row, ex.StateValue, ex.DumpValue)
		}
		var text strings.Builder
		states := 0
		for _, tok := range ex.Tokens {
			if tok.Step == 0 {
				text.WriteString(tok.Text)
				if tok.State {
					states++
				}
			}
		}
		if want := ds.Steps[ex.Row].Text; !strings.Contains(text.String(), want) || states != 1 {
			t.Errorf("row %d: its tokens spell %q with %d state tokens, want the step %q and one", ex.Row, text.String(), states, want)
		}
	}
	var eff struct {
		Rising, Falling []effectToken
		States          int `json:"states"`
	}
	if code := ts.get(t, fmt.Sprintf("/api/saes/st-sae/features/%d/effect", id), &eff); code != 200 || eff.States == 0 {
		t.Fatalf("effect: %d, %d states", code, eff.States)
	}
	if len(eff.Rising) != effectTokens || len(eff.Falling) != effectTokens || eff.Rising[0].Delta < eff.Rising[effectTokens-1].Delta ||
		eff.Falling[0].Delta > eff.Falling[effectTokens-1].Delta || eff.Rising[effectTokens-1].Delta < eff.Falling[effectTokens-1].Delta {
		t.Errorf("effect: rising %+v, falling %+v", eff.Rising, eff.Falling)
	}
	bare := httptest.NewServer(New(ts.ws, Config{Version: "test"}))
	defer bare.Close()
	for _, path := range []string{"tokens", "effect"} {
		resp, err := http.Get(fmt.Sprintf("%s/api/saes/st-sae/features/%d/%s", bare.URL, id, path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("%s without a model: %d, want 409", path, resp.StatusCode)
		}
	}
}
