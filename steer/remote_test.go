package steer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rise-interp/rise/steer/model"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/activations/reason"
	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/internal/vec"
	"github.com/rise-interp/rise/sae"
)

// TestRemoteBackend runs the protocol's Go client against a server of the
// protocol in Go over stories260K: the remote generations, steered or not,
// and the remote capture equal the native ones exactly; bad requests get a
// 4xx with a JSON error.
func TestRemoteBackend(t *testing.T) {
	m, tok := loadStories(t)
	native := &Native{Model: m, Tokenizer: tok}
	ts := httptest.NewServer(NewBackendHandler(native))
	defer ts.Close()
	ctx := context.Background()
	r, err := Dial(ctx, ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	if info := r.Info(); info.Protocol != Protocol || info.Layers != 5 || info.DModel != 64 {
		t.Fatalf("info %+v", info)
	}
	dir := make([]float32, 64)
	dir[3] = 2
	vs := []Vector{{VectorSpec: VectorSpec{Layer: 2, Op: OpAdd, Strength: 6, Positions: PosAll}, Dir: dir}}
	vs[0].Dir, _ = vec.Unit(dir)
	prompts := []string{"", "Tom had a ball"}
	for _, o := range []model.GenerateOptions{{MaxTokens: 30}, {MaxTokens: 30, Hooks: Vectors(vs)}, {MaxTokens: 30, Temperature: 0.8, Seed: 3}} {
		want, got := onBoth(t, native, r, func(b ConfidenceBackend) ([]model.Generation, error) { return b.Generate(ctx, prompts, o) })
		for i := range want {
			if got[i].Text != want[i].Text || len(got[i].Tokens) != len(want[i].Tokens) {
				t.Errorf("remote %q, native %q", got[i].Text, want[i].Text)
			}
		}
	}

	trs, _ := reason.Traces(reason.Config{N: 12, Seed: 2})
	d1, d2 := filepath.Join(t.TempDir(), "native"), filepath.Join(t.TempDir(), "remote")
	o := CaptureOptions{Layers: []int{3, 1}}
	if _, err := native.Capture(ctx, trs, d1, o); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Capture(ctx, trs, d2, o); err != nil {
		t.Fatal(err)
	}
	a, _ := activations.Open(d1)
	b, _ := activations.Open(d2)
	defer a.Close()
	defer b.Close()
	if a.Rows != b.Rows || len(b.Layers) != 2 {
		t.Fatalf("native %d rows, remote %d rows in %d layers", a.Rows, b.Rows, len(b.Layers))
	}
	for li := range a.Layers {
		x := make([]float32, a.Rows*a.DModel)
		y := make([]float32, a.Rows*a.DModel)
		a.Layers[li].ReadRows(0, x)
		b.Layers[li].ReadRows(0, y)
		for i := range x {
			if x[i] != y[i] {
				t.Fatalf("layer %d value %d: native %v, remote %v", a.Layers[li].Number, i, x[i], y[i])
			}
		}
	}

	// Confidence vectors and entropy over the wire equal the native ones.
	sv, err := sae.New(sae.TopK, m.Dim, 32, 4)
	if err != nil {
		t.Fatal(err)
	}
	sv.Init(5, 1, nil, 0)
	co := ConfidenceOptions{Layer: 2, Iters: 5, MaxStates: 32, Seed: 1}
	nc, rc := onBoth(t, native, r, func(b ConfidenceBackend) (*ConfidenceResult, error) { return b.LearnConfidence(ctx, sv, trs, co) })
	for j := range nc.Scores {
		if nc.Scores[j] != rc.Scores[j] {
			t.Fatalf("score %d: native %v, remote %v", j, nc.Scores[j], rc.Scores[j])
		}
	}
	ne, nn, _ := native.BoundaryEntropy(ctx, trs, vs)
	re, rn, err := r.BoundaryEntropy(ctx, trs, vs)
	if err != nil || ne != re || nn != rn {
		t.Errorf("entropy: native %v over %d, remote %v over %d (%v)", ne, nn, re, rn, err)
	}

	// Bad requests.
	checkBadRequests(t, ts.URL, []badRequest{
		{"POST", "/v1/generate", `{"prompts": ["x"], "vectors": [{"direction": [1, 2], "layer": 1}]}`, "expected 64 values"},
		{"POST", "/v1/generate", `{"prompts": ["x"], "vectors": [{"direction": [` + strings.Repeat("0,", 63) + `1], "layer": 9}]}`, "layer"},
		{"POST", "/v1/generate", `{"prompts": []}`, "at least one prompt"},
		{"POST", "/v1/generate", `{"prompt": "x"}`, "unknown field"},
		{"POST", "/v1/generate", `nope`, "expected a JSON object"},
		{"POST", "/v1/capture", `{"traces": [{"trace": "a", "prompt": "", "response": "x"}], "layers": [7]}`, "layer 7"},
		{"GET", "/v2/info", ``, "no endpoint"},
		{"POST", "/v1/confidence", `{"w_dec": [1, 2], "d_sae": 3, "layer": 1}`, "w_dec"},
		{"POST", "/v1/entropy", `{"traces": [], "vectors": [{"direction": [1], "layer": 1}]}`, "expected 64 values"},
	})
	if _, err := Dial(ctx, "ftp://x"); err == nil {
		t.Error("an ftp URL was accepted")
	}
}

// failingBackend is a Backend whose generations fail with err.
type failingBackend struct {
	Backend
	err error
}

func (f failingBackend) Generate(context.Context, []string, model.GenerateOptions) ([]model.Generation, error) {
	return nil, f.err
}

// TestBackendStatusByKind: the server answers 400 for what the caller got
// wrong and 500 for its own failures, by the error's kind and never by its
// wording (a prompt longer than the model's context used to get 500, and
// an internal error that said "expected" 400).
func TestBackendStatusByKind(t *testing.T) {
	m, tok := loadStories(t)
	native := &Native{Model: m, Tokenizer: tok}
	post := func(b Backend, body string) (int, string) {
		t.Helper()
		ts := httptest.NewServer(NewBackendHandler(b))
		defer ts.Close()
		resp, err := http.Post(ts.URL+"/v1/generate", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(msg)
	}
	long := strings.Repeat("Tom had a big red ball. ", 200) // far beyond stories260K's 512 positions
	if code, msg := post(native, `{"prompts": ["`+long+`"], "max_tokens": 5}`); code != http.StatusBadRequest || !strings.Contains(msg, "tokens, the model at most") {
		t.Errorf("a prompt too long for the model: %d %s, want 400 saying so", code, msg)
	}
	internal := failingBackend{native, errors.New("the accelerator expected a reset and lost its memory")}
	if code, msg := post(internal, `{"prompts": ["Tom"], "max_tokens": 5}`); code != http.StatusInternalServerError {
		t.Errorf("an internal failure: %d %s, want 500", code, msg)
	}
	bad := failingBackend{native, fmt.Errorf("sweep: %w", inputerr.Errorf("strength %v is not a number", "NaN"))}
	if code, msg := post(bad, `{"prompts": ["Tom"], "max_tokens": 5}`); code != http.StatusBadRequest {
		t.Errorf("a wrapped input error: %d %s, want 400", code, msg)
	}
}
