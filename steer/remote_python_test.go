package steer

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rise-interp/rise/steer/model"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/reason"
	"github.com/rise-interp/rise/internal/vec"
	"github.com/rise-interp/rise/sae"
)

// pythonTorch is the interpreter the reference server runs on: Debian's
// python3, which has torch (a pyenv python on PATH may not).
const pythonTorch = "/usr/bin/python3"

// refDir is the tiny Hugging Face Llama both runtimes load.
const refDir = "../testdata/hf/llama"

// startPythonBackend starts steer/remote/rise_backend.py in reference mode
// (its own PyTorch forward, no transformers) on a free port, waits for
// /v1/info and stops it when the test ends. It skips the test where
// /usr/bin/python3 cannot import torch.
func startPythonBackend(t *testing.T, extra ...string) string {
	t.Helper()
	return startPythonBackendDir(t, refDir, extra...)
}

// startPythonBackendDir is startPythonBackend on the model directory dir.
func startPythonBackendDir(t *testing.T, dir string, extra ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping the Python reference server in -short mode")
	}
	if out, err := exec.Command(pythonTorch, "-c", "import torch, numpy").CombinedOutput(); err != nil {
		t.Skipf("skipping: %s cannot import torch and numpy (%v: %s); the reference server is not tested here", pythonTorch, err, strings.TrimSpace(string(out)))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	args := append([]string{"remote/rise_backend.py", "--reference", dir, "--device", "cpu", "--threads", "1", "--addr", addr}, extra...)
	cmd := exec.Command(pythonTorch, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("rise_backend.py output:\n%s", logs.String())
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("rise_backend.py exited before serving: %v\n%s", err, logs.String())
		default:
		}
		resp, err := http.Get(url + "/v1/info")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("rise_backend.py did not answer /v1/info within 60s\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pythonTraces are the traces both runtimes capture: synthetic reasoning
// traces plus hand-written ones with multi-byte text, whitespace around the
// delimiter, keyword labels, no steps at all and special tokens as text.
func pythonTraces(t *testing.T) []activations.Trace {
	trs, err := reason.Traces(reason.Config{N: 5, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	hand := []activations.Trace{
		{Trace: "h-0", Prompt: "Once upon a time, there was a little girl.", Response: "She went out.\n\nWait, let me check that again.  \n\nAlternatively, the café was naïve 😀.\n\n"},
		{Trace: "h-1", Prompt: "12345 + 678 = ?", Response: "  \n\n12345 + 678 = 13023\n\n\n\nThat's correct.\nDone"},
		{Trace: "h-2", Prompt: "", Response: "I'M here. Hold on — it's   fine\n\nAnother   approach: <|im_end|> is text"},
		{Trace: "h-3", Prompt: "no steps", Response: " \n\n \t"},
		{Trace: "h-4", Prompt: "x", Response: "One step without a delimiter"},
	}
	return append(trs, hand...)
}

// pythonReference starts the Python reference server and returns its URL
// and a client of it, beside the native runtime on the same model.
func pythonReference(t *testing.T) (string, *Remote, *Native) {
	t.Helper()
	url := startPythonBackend(t)
	m, tok, err := model.Load(refDir, "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Dial(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	return url, r, &Native{Model: m, Tokenizer: tok}
}

// compareDumps checks that two dumps hold the same steps and traces and
// rows within tol, and returns the largest difference.
func compareDumps(t *testing.T, native, remote string, tol float64, skipPrompt bool) float64 {
	t.Helper()
	a, err := activations.Open(native)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := activations.Open(remote)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Rows != b.Rows || a.DModel != b.DModel || !reflect.DeepEqual(a.LayerNumbers(), b.LayerNumbers()) {
		t.Fatalf("native %d rows of %d in layers %v, python %d rows of %d in layers %v", a.Rows, a.DModel, a.LayerNumbers(), b.Rows, b.DModel, b.LayerNumbers())
	}
	worst := 0.0
	for _, l := range a.LayerNumbers() {
		x := make([]float32, a.Rows*a.DModel)
		y := make([]float32, b.Rows*b.DModel)
		if err := a.Layer(l).ReadRows(0, x); err != nil {
			t.Fatal(err)
		}
		if err := b.Layer(l).ReadRows(0, y); err != nil {
			t.Fatal(err)
		}
		for i := range x {
			d := math.Abs(float64(x[i]) - float64(y[i]))
			worst = max(worst, d)
			if !(d <= tol) {
				t.Fatalf("layer %d row %d col %d: native %v, python %v", l, i/a.DModel, i%a.DModel, x[i], y[i])
			}
		}
	}
	for _, name := range []string{"steps.jsonl", "traces.jsonl"} {
		x, err := os.ReadFile(filepath.Join(native, name))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(remote, name))
		if err != nil {
			t.Fatal(err)
		}
		xl, yl := strings.Split(string(x), "\n"), strings.Split(string(y), "\n")
		if len(xl) != len(yl) {
			t.Fatalf("%s: native %d lines, python %d", name, len(xl), len(yl))
		}
		for i := range xl {
			var u, v any
			json.Unmarshal([]byte(xl[i]), &u)
			json.Unmarshal([]byte(yl[i]), &v)
			if um, ok := u.(map[string]any); ok && skipPrompt {
				delete(um, "prompt")
				delete(v.(map[string]any), "prompt")
			}
			if !reflect.DeepEqual(u, v) {
				t.Fatalf("%s line %d:\nnative %s\npython %s", name, i+1, xl[i], yl[i])
			}
		}
	}
	return worst
}

// TestPythonReferenceBackend runs rise's Go client against the Python
// reference server (steer/remote/rise_backend.py --reference) on the tiny
// Hugging Face Llama and compares everything with the native runtime on the
// same directory: model info, greedy generations (plain and steered by
// every operator and position policy) token for token, captured steps
// exactly and rows within 1e-4, the "default" option, 4xx errors, and the
// script's --capture dump mode.
func TestPythonReferenceBackend(t *testing.T) {
	url, r, native := pythonReference(t)
	ctx := context.Background()
	m := native.Model
	if got, want := r.Info(), native.Info(); got != want {
		t.Fatalf("info: python %+v, native %+v", got, want)
	}

	dir := make([]float32, m.Dim)
	for i := range dir {
		dir[i] = float32(math.Sin(float64(3*i + 1)))
	}
	udir, _ := vec.Unit(dir)
	vec := func(layer int, op string, strength float64, pos string) []Vector {
		return []Vector{{VectorSpec: VectorSpec{Layer: layer, Op: op, Strength: strength, Positions: pos}, Dir: udir}}
	}
	window := func(vs []Vector, from, to int) []Vector {
		vs[0].Window = &TokenWindow{From: from, To: to}
		return vs
	}
	trigger := func(vs []Vector, ids ...int) []Vector {
		vs[0].Triggers = ids
		return vs
	}
	prompts := []string{"Once upon a time, there was a little girl.", "", "Wait, let me check that again.\n\nAlternatively", "<|im_start|>user\nHi<|im_end|>\n"}
	cases := []struct {
		name string
		o    model.GenerateOptions
	}{
		{"plain", model.GenerateOptions{MaxTokens: 20}},
		{"add all", model.GenerateOptions{MaxTokens: 20, Hooks: Vectors(vec(1, OpAdd, 2, PosAll))}},
		{"add step_boundary", model.GenerateOptions{MaxTokens: 20, Hooks: Vectors(vec(0, OpAdd, 8, PosStepBoundary))}},
		{"scale prompt", model.GenerateOptions{MaxTokens: 20, Hooks: Vectors(vec(0, OpScale, 3, PosPrompt))}},
		{"clamp generated", model.GenerateOptions{MaxTokens: 20, Hooks: Vectors(vec(1, OpClamp, 4, PosGenerated))}},
		{"ablate all, two vectors", model.GenerateOptions{MaxTokens: 20, Hooks: Vectors(append(vec(0, OpAblate, 0, PosAll), vec(1, OpAdd, -3, PosAll)...))}},
		{"special, no stop", model.GenerateOptions{MaxTokens: 12, Special: true, NoStop: true}},
		{"add window", model.GenerateOptions{MaxTokens: 20, Hooks: Vectors(window(vec(1, OpAdd, 6, PosWindow), 3, 9))}},
		{"add trigger", model.GenerateOptions{MaxTokens: 20, Hooks: Vectors(trigger(vec(1, OpAdd, 6, PosTrigger), 13, 261, 267))}},
	}
	for _, c := range cases {
		// The native runtime decodes the prompts as one batch; its steering
		// hook looks up a row's prompt length by the row's index in the
		// batch of live sequences, which is off once an earlier sequence
		// has stopped. Run it a prompt at a time, as the Python server does.
		var want []model.Generation
		for _, p := range prompts {
			g, err := native.Generate(ctx, []string{p}, c.o)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, g...)
		}
		want = overWire(want)
		if batch, err := native.Generate(ctx, prompts, c.o); err == nil && !reflect.DeepEqual(overWire(batch), want) {
			t.Errorf("%s: the native batch differs from the native runs a prompt at a time", c.name)
		}
		got, err := r.Generate(ctx, prompts, c.o)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for i := range want {
			if got[i].Text != want[i].Text || !reflect.DeepEqual(got[i].Tokens, want[i].Tokens) ||
				!reflect.DeepEqual(got[i].PromptTokens, want[i].PromptTokens) || got[i].Stop != want[i].Stop || got[i].Prompt != want[i].Prompt {
				t.Errorf("%s, prompt %d:\npython %+v\nnative %+v", c.name, i, got[i], want[i])
			}
		}
	}
	// The steering moves the generations at all (else the comparison above
	// would prove little).
	plain, _ := native.Generate(ctx, prompts[:1], model.GenerateOptions{MaxTokens: 20})
	steered, _ := native.Generate(ctx, prompts[:1], model.GenerateOptions{MaxTokens: 20, Hooks: Vectors(vec(1, OpAdd, 2, PosAll))})
	if reflect.DeepEqual(plain[0].Tokens, steered[0].Tokens) {
		t.Log("note: the add vector does not change the greedy tokens of prompt 0")
	}

	// "default": the unsteered generations beside the steered ones.
	body, _ := json.Marshal(GenerateRequest{Prompts: prompts[:2], MaxTokens: 10, Default: true, Vectors: wireVectors(vec(1, OpAdd, 2, PosAll))})
	resp, err := http.Post(url+"/v1/generate", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var res GenerateResponse
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("default: %d %v", resp.StatusCode, err)
	}
	wantDef, _ := native.Generate(ctx, prompts[:2], model.GenerateOptions{MaxTokens: 10})
	wantGen, _ := native.Generate(ctx, prompts[:2], model.GenerateOptions{MaxTokens: 10, Hooks: Vectors(vec(1, OpAdd, 2, PosAll))})
	wantDef, wantGen = overWire(wantDef), overWire(wantGen)
	if !reflect.DeepEqual(res.Default, wantDef) || !reflect.DeepEqual(res.Generations, wantGen) {
		t.Errorf("default:\npython %+v\nnative default %+v, steered %+v", res, wantDef, wantGen)
	}

	// Sampling runs (they cannot match rise's draws) give the same answer
	// for the same seed.
	so := model.GenerateOptions{MaxTokens: 15, Temperature: 0.9, TopP: 0.9, Seed: 7}
	s1, err := r.Generate(ctx, prompts, so)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := r.Generate(ctx, prompts, so)
	if !reflect.DeepEqual(s1, s2) {
		t.Error("two sampled runs with the same seed differ")
	}

	// Capture: the same steps and rows within 1e-4.
	trs := pythonTraces(t)
	worst := 0.0
	for _, wrap := range []func(string) (string, bool){nil, func(p string) (string, bool) { return "<|im_start|>user\n" + p + "<|im_end|>\n", true }} {
		d1, d2 := filepath.Join(t.TempDir(), "native"), filepath.Join(t.TempDir(), "python")
		o := CaptureOptions{Layers: []int{1, 0}, Wrap: wrap, Model: "tiny"}
		sn, err := native.Capture(ctx, trs, d1, o)
		if err != nil {
			t.Fatal(err)
		}
		sp, err := r.Capture(ctx, trs, d2, o)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sn, sp) {
			t.Errorf("capture summary: native %+v, python %+v", sn, sp)
		}
		if sn.Truncated == 0 {
			t.Log("note: no step was past the context")
		}
		worst = max(worst, compareDumps(t, d1, d2, 1e-4, wrap != nil))
	}
	t.Logf("capture over the server: largest row difference %.3g", worst)

	// Bad requests get a 4xx JSON error.
	checkBadRequests(t, url, []badRequest{
		{"POST", "/v1/generate", `{"prompts": ["x"], "vectors": [{"direction": [1, 2], "layer": 1}]}`, "expected 64 values"},
		{"POST", "/v1/generate", `{"prompts": ["x"], "vectors": [{"direction": [` + strings.Repeat("0,", 63) + `1], "layer": 9}]}`, "layer"},
		{"POST", "/v1/generate", `{"prompts": ["x"], "vectors": [{"direction": [` + strings.Repeat("0,", 63) + `1], "op": "push"}]}`, "op: expected add"},
		{"POST", "/v1/generate", `{"prompts": ["x"], "vectors": [{"direction": [` + strings.Repeat("0,", 63) + `0]}]}`, "no direction"},
		{"POST", "/v1/generate", `{"prompts": []}`, "at least one prompt"},
		{"POST", "/v1/generate", `{"prompt": "x"}`, "unknown field"},
		{"POST", "/v1/generate", `{"prompts": ["x"], "vectors": [{"direction": [1], "colour": 1}]}`, "unknown field"},
		{"POST", "/v1/generate", `{"prompts": ["x"], "max_tokens": "many"}`, "max_tokens"},
		{"POST", "/v1/generate", `{"prompts": ["x"], "temperature": -1}`, "expected temperature"},
		{"POST", "/v1/generate", `nope`, "expected a JSON object"},
		{"POST", "/v1/capture", `{"traces": [{"trace": "a", "prompt": "", "response": "x"}], "layers": [7]}`, "layer 7"},
		{"POST", "/v1/capture", `{"traces": [{"trace": "a", "prompt": "", "response": "x"}], "layers": []}`, "no layers"},
		{"POST", "/v1/capture", `{"traces": [], "layers": [0]}`, "at least one trace"},
		{"GET", "/v2/info", ``, "no endpoint"},
	})

	// The --capture dump mode writes the same dump without serving.
	tmp := t.TempDir()
	var lines bytes.Buffer
	for _, tr := range trs {
		b, _ := json.Marshal(tr)
		lines.Write(append(b, '\n'))
	}
	tracesPath := filepath.Join(tmp, "traces.jsonl")
	if err := os.WriteFile(tracesPath, lines.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	d1, d2 := filepath.Join(tmp, "native"), filepath.Join(tmp, "python")
	if _, err := native.Capture(ctx, trs, d1, CaptureOptions{Layers: []int{0, 1}, Model: "tiny"}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pythonTorch, "remote/rise_backend.py", "--reference", refDir, "--device", "cpu", "--threads", "1",
		"--capture", tracesPath, "--layers", "1,0", "--out", d2, "--name", "tiny").CombinedOutput()
	if err != nil {
		t.Fatalf("--capture: %v\n%s", err, out)
	}
	worst = compareDumps(t, d1, d2, 1e-4, false)
	t.Logf("--capture dump: largest row difference %.3g (%s)", worst, strings.TrimSpace(string(out)))
	a, _ := os.ReadFile(filepath.Join(d1, "manifest.json"))
	b, _ := os.ReadFile(filepath.Join(d2, "manifest.json"))
	var ma, mb map[string]any
	json.Unmarshal(a, &ma)
	json.Unmarshal(b, &mb)
	if !reflect.DeepEqual(ma, mb) {
		t.Errorf("manifest:\nnative %s\npython %s", a, b)
	}
	if _, err := os.Stat(d2); err != nil {
		t.Fatal(err)
	}
	if ents, _ := filepath.Glob(filepath.Join(tmp, ".python.tmp-*")); len(ents) != 0 {
		t.Errorf("temporary directories left behind: %v", ents)
	}
}

// overWire returns generations as they arrive over JSON: invalid UTF-8 in
// a text (a random model's half characters) becomes U+FFFD.
func overWire(gs []model.Generation) []model.Generation {
	b, err := json.Marshal(gs)
	if err != nil {
		panic(err)
	}
	var out []model.Generation
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// TestPythonReferenceConfidence runs POST /v1/entropy and POST
// /v1/confidence of the Python reference server through rise's Go client
// and checks them against the native runtime on the tiny Llama: the
// boundary entropy equal within 1e-4 (with and without a vector); a learned
// confidence vector of the right shape that lowers the native boundary
// entropy; with a batch that holds every state (so that no random draw
// matters) the same curve and vector as the native optimiser; the same
// result from the recomputing path (the one --model uses) as from the
// cached keys and values; and 4xx errors for bad requests.
func TestPythonReferenceConfidence(t *testing.T) {
	url, r, native := pythonReference(t)
	ctx := context.Background()
	m := native.Model
	trs := pythonTraces(t)

	// Entropy at the step boundaries, plain and with an add vector there.
	dir := make([]float32, m.Dim)
	for i := range dir {
		dir[i] = float32(math.Cos(float64(5*i + 2)))
	}
	udir, _ := vec.Unit(dir)
	for _, vs := range [][]Vector{nil, {{VectorSpec: VectorSpec{Layer: 0, Op: OpAdd, Strength: 6, Positions: PosStepBoundary}, Dir: udir}}} {
		ne, nn, err := native.BoundaryEntropy(ctx, trs, vs)
		if err != nil {
			t.Fatal(err)
		}
		pe, pn, err := r.BoundaryEntropy(ctx, trs, vs)
		if err != nil {
			t.Fatal(err)
		}
		if nn != pn || !(math.Abs(ne-pe) <= 1e-4) {
			t.Errorf("entropy with %d vectors: native %.7f over %d boundaries, python %.7f over %d", len(vs), ne, nn, pe, pn)
		}
		t.Logf("entropy with %d vectors: native %.7f, python %.7f over %d boundaries", len(vs), ne, pe, pn)
	}

	sv, err := sae.New(sae.TopK, m.Dim, 32, 4)
	if err != nil {
		t.Fatal(err)
	}
	sv.Init(5, 1, nil, 0)
	const layer = 0
	entropyWith := func(res *ConfidenceResult) float64 {
		vs := []Vector{{VectorSpec: VectorSpec{Layer: res.Layer, Op: OpAdd, Strength: res.Norm, Positions: PosStepBoundary}, Dir: res.Vector}}
		h, _, err := native.BoundaryEntropy(ctx, trs, vs)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	base, _, err := native.BoundaryEntropy(ctx, trs, nil)
	if err != nil {
		t.Fatal(err)
	}

	// A small run with random batches: shape, and the vector works.
	co := ConfidenceOptions{Layer: layer, Iters: 30, Batch: 8, LR: 0.1, MaxStates: 64, Seed: 3}
	pc, err := r.LearnConfidence(ctx, sv, trs, co)
	if err != nil {
		t.Fatal(err)
	}
	if len(pc.Scores) != 32 || len(pc.Vector) != m.Dim || len(pc.Curve) == 0 || len(pc.Top) != 20 || pc.Layer != layer || pc.States == 0 || !(pc.Norm > 0) {
		t.Fatalf("confidence: %d scores, vector of %d, curve of %d, %d top columns, layer %d, %d states, norm %g",
			len(pc.Scores), len(pc.Vector), len(pc.Curve), len(pc.Top), pc.Layer, pc.States, pc.Norm)
	}
	var sq float64
	for _, x := range pc.Vector {
		sq += float64(x) * float64(x)
	}
	if math.Abs(math.Sqrt(sq)-1) > 1e-4 {
		t.Errorf("confidence vector has norm %g, want 1", math.Sqrt(sq))
	}
	for i := 1; i < len(pc.Top); i++ {
		if pc.Top[i].Score > pc.Top[i-1].Score || pc.Scores[pc.Top[i].ID] != float32(pc.Top[i].Score) {
			t.Fatalf("top columns out of order or not the scores: %+v", pc.Top)
		}
	}
	if after := entropyWith(pc); !(after < base) {
		t.Errorf("the python confidence vector does not lower the boundary entropy: %.6f without, %.6f with", base, after)
	} else {
		t.Logf("python confidence vector (norm %.3f): boundary entropy %.6f -> %.6f; curve %.5f ... %.5f", pc.Norm, base, after, pc.Curve[0], pc.Curve[len(pc.Curve)-1])
	}

	// A batch holding every state: each step sees all of them, whatever
	// the shuffles, so Python and Go run the same optimisation.
	full := ConfidenceOptions{Layer: layer, Iters: 12, Batch: 512, LR: 0.05, MaxStates: 512, Seed: 1}
	nc, fc := onBoth(t, native, r, func(b ConfidenceBackend) (*ConfidenceResult, error) { return b.LearnConfidence(ctx, sv, trs, full) })
	if nc.States != fc.States || len(nc.Curve) != len(fc.Curve) {
		t.Fatalf("full batch: native %d states and %d curve points, python %d and %d", nc.States, len(nc.Curve), fc.States, len(fc.Curve))
	}
	for i := range nc.Curve {
		if !(math.Abs(nc.Curve[i]-fc.Curve[i]) <= 1e-4) {
			t.Errorf("full batch, curve point %d: native %.7f, python %.7f", i, nc.Curve[i], fc.Curve[i])
		}
	}
	var dot float64
	for i := range nc.Vector {
		dot += float64(nc.Vector[i]) * float64(fc.Vector[i])
	}
	if !(dot > 0.999) || !(math.Abs(nc.Norm-fc.Norm) <= 1e-3*nc.Norm) {
		t.Errorf("full batch: native and python vectors at cosine %.6f, norms %.6f and %.6f", dot, nc.Norm, fc.Norm)
	}
	t.Logf("full batch (%d states): curves %v / %v; cosine %.7f, norms %.6f / %.6f", nc.States, nc.Curve, fc.Curve, dot, nc.Norm, fc.Norm)

	// The recomputing path (what --model runs) gives what the cached keys
	// and values give, for the same seed.
	url2 := startPythonBackend(t, "--confidence-recompute")
	r2, err := Dial(ctx, url2)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := r2.LearnConfidence(ctx, sv, trs, co)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := range pc.Scores {
		worst = max(worst, math.Abs(float64(pc.Scores[i]-rc.Scores[i])))
	}
	for i := range pc.Curve {
		worst = max(worst, math.Abs(pc.Curve[i]-rc.Curve[i]))
	}
	if !(worst <= 1e-3) || len(pc.Curve) != len(rc.Curve) {
		t.Errorf("recomputed and cached confidence differ by %g", worst)
	}
	t.Logf("recomputed vs cached confidence: largest difference %.3g", worst)

	// Bad requests get a 4xx JSON error.
	wdec := strings.TrimSuffix(strings.Repeat("0.1,", 32*m.Dim), ",")
	checkBadRequests(t, url, []badRequest{
		{"POST", "/v1/confidence", `{"w_dec": [1, 2], "d_sae": 3, "layer": 0, "traces": [{"trace": "a", "prompt": "", "response": "x\n\ny"}]}`, "w_dec: expected"},
		{"POST", "/v1/confidence", `{"w_dec": [1, 2], "d_sae": 0, "layer": 0}`, "w_dec: expected"},
		{"POST", "/v1/confidence", `{"w_dec": [` + wdec + `], "d_sae": 32, "layer": 1, "traces": [{"trace": "a", "prompt": "", "response": "x\n\ny"}]}`, "there must be a block above it"},
		{"POST", "/v1/confidence", `{"w_dec": [` + wdec + `], "d_sae": 32, "layer": -1, "traces": [{"trace": "a", "prompt": "", "response": "x\n\ny"}]}`, "expected a block from 0 to 0"},
		{"POST", "/v1/confidence", `{"w_dec": [` + wdec + `], "d_sae": 32, "layer": 0, "iters": -1, "traces": [{"trace": "a", "prompt": "", "response": "x\n\ny"}]}`, "expected positive"},
		{"POST", "/v1/confidence", `{"w_dec": [], "d_sae": 1, "sae": "x"}`, "unknown field"},
		{"POST", "/v1/entropy", `{"traces": [], "vectors": [{"direction": [1], "layer": 1}]}`, "expected 64 values"},
		{"POST", "/v1/entropy", `{"traces": [], "vectors": [{"direction": [` + strings.Repeat("0,", 63) + `1], "layer": 5}]}`, "layer"},
		{"POST", "/v1/entropy", `{"trace": []}`, "unknown field"},
		{"POST", "/v1/entropy", `nope`, "expected a JSON object"},
	})
}

// TestPythonReferenceVariants: the reference server reads configs as the
// runtime does (RoPE from rope_parameters, llama3 and yarn scaling, Qwen3's
// q/k norms and head_dim) and continues the golden prompts of
// testdata/hf/{llama-rope-params,llama3-scaled,qwen2-yarn,qwen3} with
// llama.cpp's greedy ids.
func TestPythonReferenceVariants(t *testing.T) {
	for _, name := range []string{"llama-rope-params", "llama3-scaled", "qwen2-yarn", "qwen3"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("..", "testdata", "hf", name)
			b, err := os.ReadFile(filepath.Join(dir, "golden.json"))
			if err != nil {
				t.Fatal(err)
			}
			var g struct {
				Prompts []struct {
					Text   string `json:"text"`
					IDs    []int  `json:"ids"`
					Greedy []int  `json:"greedy"`
				} `json:"prompts"`
			}
			if err := json.Unmarshal(b, &g); err != nil {
				t.Fatal(err)
			}
			r, err := Dial(context.Background(), startPythonBackendDir(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			var prompts []string
			for _, p := range g.Prompts {
				prompts = append(prompts, p.Text)
			}
			gens, err := r.Generate(context.Background(), prompts, model.GenerateOptions{MaxTokens: 32, NoStop: true})
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range g.Prompts {
				if !reflect.DeepEqual(gens[i].PromptTokens, p.IDs) || !reflect.DeepEqual(gens[i].Tokens, p.Greedy) {
					t.Errorf("prompt %d: ids %v then %v, want %v then %v", i, gens[i].PromptTokens, gens[i].Tokens, p.IDs, p.Greedy)
				}
			}
		})
	}
}
