package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/shared"
	"github.com/rise-interp/rise/steer"
	"github.com/rise-interp/rise/steer/model"
)

// stories returns the path of stories260K, failing under CI and skipping
// elsewhere when ../shared is missing.
func stories(t *testing.T) string {
	t.Helper()
	return shared.Data(t, "stories260K/stories260K.bin")
}

func TestGenerateCommand(t *testing.T) {
	modelPath := stories(t)
	code, stdout, stderr := runRise(t, "generate", "--model", modelPath, "--prompt", "", "--max-tokens", "25")
	if code != 0 || !strings.HasPrefix(stdout, "Once upon a time, there was a little girl named Lily.") {
		t.Fatalf("generate: exit %d, %q, %s", code, stdout, stderr)
	}
	code, stdout, _ = runRise(t, "generate", "--model", modelPath, "--prompt", "Tom and", "--max-tokens", "10", "--json", "--temperature", "0.7", "--seed", "4")
	var g model.Generation
	if code != 0 || json.Unmarshal([]byte(stdout), &g) != nil || len(g.Tokens) != 10 || g.Stop != "length" {
		t.Errorf("generate --json: exit %d, %s", code, stdout)
	}
	// Held in 16 bits or quantised, stories260K tells the same story for
	// 25 tokens.
	for _, p := range [][]string{{"--dtype", "bf16"}, {"--dtype", "f16"}, {"--quant", "q8"}, {"--dtype", "f32"}} {
		code, out, stderr := runRise(t, append([]string{"generate", "--model", modelPath, "--prompt", "", "--max-tokens", "25"}, p...)...)
		if code != 0 || !strings.HasPrefix(out, "Once upon a time") {
			t.Errorf("generate %v: exit %d, %q, %s", p, code, out, stderr)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"generate", "--prompt", "x"}, 2, "--model (or --backend) is required"},
		{[]string{"generate", "--model", modelPath, "--max-tokens", "0"}, 2, "--max-tokens"},
		{[]string{"generate", "--model", modelPath, "--chat", "vicuna"}, 2, "--chat"},
		{[]string{"generate", "--model", modelPath, "--dtype", "fp8"}, 2, `--dtype: expected f32, bf16 or f16, found "fp8"`},
		{[]string{"generate", "--model", modelPath, "--quant", "q4"}, 2, `--quant: expected q8, found "q4"`},
		{[]string{"generate", "--model", modelPath, "--dtype", "bf16", "--quant", "q8"}, 2, "give --dtype or --quant, not both"},
		{[]string{"generate", "--backend", "http://127.0.0.1:1", "--dtype", "bf16"}, 2, "--dtype and --quant apply to --model"},
		{[]string{"generate", "--model", filepath.Join(t.TempDir(), "none.bin")}, 1, "none.bin"},
		{[]string{"generate", "--model", modelPath, "--tokenizer", filepath.Join(t.TempDir(), "tok.bin")}, 1, "tok.bin"},
	} {
		code, _, stderr := runRise(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// TestSteerAndExportCommands: a sweep over strengths writes results.json
// and its chart, strength 0 matching the unsteered story; the spec exports
// to a GGUF control vector that reads back, and to .npy.
func TestSteerAndExportCommands(t *testing.T) {
	modelPath := stories(t)
	dir := t.TempDir()
	spec := writeOneHotSpec(t, dir, 64, 7, `{"vectors": [{"source": "npy:v.npy", "layer": 2, "op": "add", "strength": 1, "positions": "all"}]}`)
	prompts := filepath.Join(dir, "prompts.jsonl")
	os.WriteFile(prompts, []byte(`{"prompt": "Once upon a time", "answer": "3"}`+"\n"+`{"question": "Tom had 2 apples", "answer": "#### 2"}`+"\n"), 0o644)
	out := filepath.Join(dir, "results.json")
	code, stdout, stderr := runRise(t, "steer", "--model", modelPath, "--steer", spec, "--alphas", "-6,0,6", "--prompts", prompts,
		"--max-tokens", "30", "--out", out, "--svg", dir)
	if code != 0 {
		t.Fatalf("steer: exit %d: %s", code, stderr)
	}
	var res struct {
		Runs []steer.Run `json:"runs"`
	}
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &res); err != nil || len(res.Runs) != 3 {
		t.Fatalf("results.json: %v %s", err, b)
	}
	if res.Runs[1].Strength != 0 || res.Runs[1].Accuracy == nil || len(res.Runs[1].Outcomes) != 2 {
		t.Errorf("run at 0: %+v", res.Runs[1])
	}
	base := res.Runs[1].Outcomes[0].Text
	if res.Runs[2].Outcomes[0].Text == base {
		t.Error("strength 6 left the text as strength 0 has it")
	}
	if !strings.Contains(stdout, "strength") {
		t.Errorf("steer output:\n%s", stdout)
	}
	for _, f := range []string{"dose.svg", "dose.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not drawn", f)
		}
	}

	// Export.
	gguf := filepath.Join(dir, "cv.gguf")
	if code, stdout, stderr := runRise(t, "export", "--steer", spec, "--format", "gguf", "--out", gguf, "--model", modelPath); code != 0 {
		t.Fatalf("export gguf: exit %d: %s %s", code, stdout, stderr)
	}
	data, _ := os.ReadFile(gguf)
	cv, err := steer.ReadGGUFControlVector(bytes.NewReader(data), int64(len(data)))
	if err != nil || cv.ModelHint != "llama" || len(cv.Layers) != 1 || cv.Layers[2][7] != 1 {
		t.Errorf("the exported control vector reads back as %+v, %v", cv, err)
	}
	npy := filepath.Join(dir, "cv.npy")
	if code, _, stderr := runRise(t, "export", "--steer", spec, "--format", "npy", "--out", npy); code != 0 {
		t.Fatalf("export npy: %s", stderr)
	}
	x, rows, cols, err := activations.ReadNpy(npy)
	if err != nil || rows != 1 || cols != 64 || x[7] != 1 {
		t.Errorf("npy export: %v [%d %d]", err, rows, cols)
	}
	os.WriteFile(spec, []byte(`{"vectors": [{"source": "npy:v.npy", "layer": 2, "op": "clamp", "strength": 1}]}`), 0o644)
	if code, _, stderr := runRise(t, "export", "--steer", spec, "--format", "gguf", "--out", gguf, "--layers", "5"); code != 1 || !strings.Contains(stderr, "only op \"add\"") {
		t.Errorf("a clamp exported as GGUF: exit %d, %s", code, stderr)
	}
}

// TestDumpCommand records stories260K's residual stream at step
// delimiters and reads the dump back.
func TestDumpCommand(t *testing.T) {
	modelPath := stories(t)
	dir := t.TempDir()
	traces := filepath.Join(dir, "traces.jsonl")
	os.WriteFile(traces, []byte(`{"trace": "a", "prompt": "Once upon a time", "response": "Tom went out.\n\nWait, let me check the ball.\n\nAlternatively, he could run."}`+"\n"+
		`{"trace": "b", "prompt": "", "response": "Lily was happy.\n\nShe smiled."}`+"\n"), 0o644)
	out := filepath.Join(dir, "dump")
	code, stdout, stderr := runRise(t, "dump", "--model", modelPath, "--traces", traces, "--layers", "1,3", "--out", out)
	if code != 0 || !strings.Contains(stdout, "5 steps from 2 traces") {
		t.Fatalf("dump: exit %d: %s %s", code, stdout, stderr)
	}
	d, err := activations.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	steps, _ := activations.ReadSteps(d.StepsPath)
	if len(d.Layers) != 2 || d.Rows != 5 || len(steps) != 5 || !steps[1].HasLabel("reflection") || !steps[2].HasLabel("backtracking") {
		t.Fatalf("dump: %d layers, %d rows, steps %+v", len(d.Layers), d.Rows, steps)
	}
	if *steps[0].TokenEnd > *steps[1].TokenStart {
		t.Errorf("token spans overlap: %d..%d then %d..%d", *steps[0].TokenStart, *steps[0].TokenEnd, *steps[1].TokenStart, *steps[1].TokenEnd)
	}
	if code, _, stderr := runRise(t, "dump", "--model", modelPath, "--traces", traces, "--layers", "9", "--out", filepath.Join(dir, "x")); code != 1 || !strings.Contains(stderr, "layer 9") {
		t.Errorf("layer 9 of 5: exit %d, %s", code, stderr)
	}
}

func TestTracesCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "t.jsonl")
	code, stdout, stderr := runRise(t, "traces", "--out", out, "--n", "50", "--seed", "3")
	if code != 0 || !strings.Contains(stdout, "wrote "+out+": 50 traces") {
		t.Fatalf("traces: exit %d: %s %s", code, stdout, stderr)
	}
	trs, err := steer.ReadPrompts(out)
	if err != nil || len(trs) != 50 || !strings.HasPrefix(trs[0].Text, "Q: Start with ") || trs[0].Answer == "" {
		t.Fatalf("traces read back as prompts: %v %+v", err, trs[:1])
	}
	pout := filepath.Join(dir, "p.jsonl")
	if code, _, stderr := runRise(t, "traces", "--prompts", "--out", pout, "--n", "7", "--seed", "99"); code != 0 {
		t.Fatal(stderr)
	}
	ps, err := steer.ReadPrompts(pout)
	if err != nil || len(ps) != 7 || ps[0].Answer == "" {
		t.Fatalf("prompts: %v %+v", err, ps)
	}
	if code, _, _ := runRise(t, "traces", "--out", out, "--n", "0"); code != 2 {
		t.Errorf("--n 0: exit %d, want 2", code)
	}
}

// TestBackendFlag runs generate, dump and steer against a model server
// (the protocol's Go server) and compares with the native runtime.
func TestBackendFlag(t *testing.T) {
	modelPath := stories(t)
	m, tok, err := model.Load(modelPath, "")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(steer.NewBackendHandler(&steer.Native{Model: m, Tokenizer: tok}))
	defer ts.Close()
	_, native, _ := runRise(t, "generate", "--model", modelPath, "--prompt", "Tom", "--max-tokens", "20")
	code, remote, stderr := runRise(t, "generate", "--backend", ts.URL, "--prompt", "Tom", "--max-tokens", "20")
	if code != 0 || remote != native {
		t.Errorf("generate --backend: exit %d, %q (%s); native %q", code, remote, stderr, native)
	}
	dir := t.TempDir()
	traces := filepath.Join(dir, "t.jsonl")
	runRise(t, "traces", "--out", traces, "--n", "5")
	if code, stdout, stderr := runRise(t, "dump", "--backend", ts.URL, "--traces", traces, "--layers", "2", "--out", filepath.Join(dir, "d")); code != 0 {
		t.Errorf("dump --backend: exit %d: %s %s", code, stdout, stderr)
	}
	if code, _, stderr := runRise(t, "generate", "--backend", ts.URL, "--model", modelPath); code != 2 || !strings.Contains(stderr, "not both") {
		t.Errorf("--backend with --model: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runRise(t, "generate", "--backend", "http://127.0.0.1:1", "--prompt", "x"); code != 1 || !strings.Contains(stderr, "127.0.0.1:1") {
		t.Errorf("an unreachable backend: exit %d, %s", code, stderr)
	}
}

// TestConfidenceCommand learns a few steps of confidence scores on
// stories260K's states at reasoning-trace step boundaries and checks that
// conf.json and its spec work with rise steer.
func TestConfidenceCommand(t *testing.T) {
	modelPath := stories(t)
	dir := t.TempDir()
	traces := filepath.Join(dir, "t.jsonl")
	runRise(t, "traces", "--out", traces, "--n", "40", "--seed", "3")
	if code, _, stderr := runRise(t, "dump", "--model", modelPath, "--traces", traces, "--layers", "2", "--out", filepath.Join(dir, "d")); code != 0 {
		t.Fatal(stderr)
	}
	saeDir := filepath.Join(dir, "s")
	if code, _, stderr := runRise(t, "train", "--data", filepath.Join(dir, "d"), "--arch", "topk", "--k", "4", "--width", "64", "--steps", "50", "--batch", "64", "--out", saeDir); code != 0 {
		t.Fatal(stderr)
	}
	out := filepath.Join(dir, "conf.json")
	code, stdout, stderr := runRise(t, "confidence", "--model", modelPath, "--sae", saeDir, "--layer", "2", "--traces", traces,
		"--iters", "30", "--states", "64", "--eval-traces", "10", "--out", out)
	if code != 0 {
		t.Fatalf("confidence: exit %d: %s", code, stderr)
	}
	var f struct {
		Top           []steer.ColumnScore `json:"top_columns"`
		Vector        []float32           `json:"vector"`
		EntropyBefore float64             `json:"entropy_before"`
		EntropyAfter  float64             `json:"entropy_after"`
	}
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &f); err != nil || len(f.Vector) != 64 || len(f.Top) == 0 || f.EntropyBefore <= 0 {
		t.Fatalf("conf.json: %v %s", err, stdout)
	}
	if !(f.EntropyAfter < f.EntropyBefore) {
		t.Errorf("entropy %.4f before, %.4f after: the vector does not make the modelPath surer", f.EntropyBefore, f.EntropyAfter)
	}
	prompts := filepath.Join(dir, "p.jsonl")
	runRise(t, "traces", "--prompts", "--out", prompts, "--n", "2")
	if code, _, stderr := runRise(t, "steer", "--model", modelPath, "--steer", filepath.Join(dir, "conf.spec.json"), "--alphas", "0,1",
		"--prompts", prompts, "--max-tokens", "10", "--out", filepath.Join(dir, "r.json")); code != 0 {
		t.Errorf("steer with conf.spec.json: %s", stderr)
	}
	if code, _, stderr := runRise(t, "confidence", "--backend", "http://127.0.0.1:1", "--sae", saeDir, "--traces", traces, "--out", out); code != 1 || !strings.Contains(stderr, "127.0.0.1:1") {
		t.Errorf("confidence over a backend: exit %d, %s", code, stderr)
	}
}

// TestSteerControls: a sweep runs random-direction controls beside the
// spec's vector by default, and results.json carries them with their band,
// every behaviour's count with a 95% interval, the share of generations
// that hit the token limit, and paired p-values against strength 0.
func TestSteerControls(t *testing.T) {
	modelPath := stories(t)
	dir := t.TempDir()
	spec := writeOneHotSpec(t, dir, 64, 7, `{"vectors": [{"source": "npy:v.npy", "layer": 2, "strength": 1}]}`)
	prompts := filepath.Join(dir, "prompts.txt")
	os.WriteFile(prompts, []byte("Once upon a time\nTom had a ball\nThe cat sat\n"), 0o644)
	out := filepath.Join(dir, "results.json")
	code, stdout, stderr := runRise(t, "steer", "--model", modelPath, "--steer", spec, "--alphas", "-6,0,6", "--prompts", prompts,
		"--max-tokens", "20", "--temperature", "1", "--out", out, "--svg", dir)
	if code != 0 {
		t.Fatalf("steer: exit %d: %s", code, stderr)
	}
	var res struct {
		Runs     []steer.Run `json:"runs"`
		Controls []struct {
			Name string      `json:"name"`
			Runs []steer.Run `json:"runs"`
		} `json:"controls"`
		ControlBand map[string]struct{ Lo, Hi []float64 } `json:"control_band"`
	}
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Controls) != 3 || len(res.Controls[0].Runs) != 3 || res.Controls[0].Name != "random 1" {
		t.Fatalf("controls: %+v", res.Controls)
	}
	if band, ok := res.ControlBand["reflection"]; !ok || len(band.Lo) != 3 || band.Lo[0] > band.Hi[0] {
		t.Errorf("control band: %+v", res.ControlBand)
	}
	// Strength 0 of a control is the unsteered run, as the spec's is.
	if res.Controls[1].Runs[1].Outcomes[0].Text != res.Runs[1].Outcomes[0].Text {
		t.Error("a control at strength 0 differs from the spec at strength 0")
	}
	for _, r := range res.Runs {
		iv, ok := r.Behaviours["other"]
		if !ok || iv.Lo > iv.Mean || iv.Hi < iv.Mean {
			t.Errorf("strength %g: behaviours %+v", r.Strength, r.Behaviours)
		}
		if r.Strength != 0 && (r.PValues["tokens"] <= 0 || r.PValues["tokens"] > 1) {
			t.Errorf("strength %g: p-values %+v", r.Strength, r.PValues)
		}
		if r.LengthStops < 0 || r.LengthStops > 1 {
			t.Errorf("strength %g: length stops %v", r.Strength, r.LengthStops)
		}
	}
	if !strings.Contains(stdout, "controls (random directions") || !strings.Contains(stdout, "p=") {
		t.Errorf("steer output:\n%s", stdout)
	}
	// --controls 0 runs none; --rules counts its behaviours too.
	rules := filepath.Join(dir, "rules.json")
	os.WriteFile(rules, []byte(`{"storytelling": ["once upon a time", "the"]}`), 0o644)
	if code, _, stderr := runRise(t, "steer", "--model", modelPath, "--steer", spec, "--alphas", "0,1", "--prompts", prompts,
		"--max-tokens", "5", "--controls", "0", "--rules", rules, "--out", out); code != 0 {
		t.Fatalf("--controls 0: %s", stderr)
	}
	var counted struct {
		Runs []steer.Run `json:"runs"`
	}
	if b, _ := os.ReadFile(out); json.Unmarshal(b, &counted) != nil || len(counted.Runs) != 2 {
		t.Fatalf("results with --rules: %s", b)
	}
	if _, ok := counted.Runs[0].Behaviours["storytelling"]; !ok {
		t.Errorf("--rules: the behaviour is not counted: %+v", counted.Runs[0].Behaviours)
	}
	if b, _ := os.ReadFile(out); strings.Contains(string(b), `"controls"`) {
		t.Error("--controls 0 still wrote controls")
	}
}

// TestBenchModel runs rise bench --model on stories260K: one decoding and
// one prompt-reading result, at the precision asked for.
func TestBenchModel(t *testing.T) {
	modelPath := stories(t)
	code, stdout, stderr := runRise(t, "bench", "--model", modelPath, "--quant", "q8", "--decode", "4", "--prompt-len", "8", "--reps", "1", "--batch", "2", "--json")
	if code != 0 {
		t.Fatalf("bench --model: exit %d: %s", code, stderr)
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var r modelBenchResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if r.Precision != "q8" || !(r.Median > 0) || r.WeightBytes <= 0 {
			t.Errorf("result %+v", r)
		}
		kinds = append(kinds, fmt.Sprintf("%s/%d/%d", r.Kind, r.Batch, r.Tokens))
	}
	if strings.Join(kinds, " ") != "decode/2/8 prefill/1/8" {
		t.Errorf("results %v, want decode of 2 sequences × 4 tokens and a prompt of 8", kinds)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--dtype", "bf16"}, "--dtype and --quant apply to --model"},
		{[]string{"bench", "--model", modelPath, "--dtype", "int4"}, `--dtype: expected f32, bf16 or f16, found "int4"`},
		{[]string{"bench", "--model", modelPath, "--reps", "0"}, "--batch and --reps: expected at least 1"},
		{[]string{"bench", "--model", modelPath, "--prompt-len", "100000"}, "the model holds 512 positions"},
	} {
		code, _, stderr := runRise(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
