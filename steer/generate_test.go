package steer

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rise-interp/rise/internal/inputerr"
	"github.com/rise-interp/rise/internal/shared"
	"github.com/rise-interp/rise/steer/model"

	"github.com/rise-interp/rise/activations"
)

// loadStories loads stories260K and its tokenizer from ../shared/data.
func loadStories(t testing.TB) (*model.Model, model.Tokenizer) {
	t.Helper()
	m, tok, err := model.Load(shared.Stories(t))
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

// TestGenerateStories: greedy generation from BOS tells the known story.
func TestGenerateStories(t *testing.T) {
	m, tok := loadStories(t)
	gens, err := model.Generate(context.Background(), m, tok, []string{""}, model.GenerateOptions{MaxTokens: 40})
	if err != nil {
		t.Fatal(err)
	}
	g := gens[0]
	for i, id := range shared.StoriesGreedy {
		if g.Tokens[i] != id {
			t.Fatalf("token %d is %d, want %d (ids %v)", i, g.Tokens[i], id, g.Tokens[:20])
		}
	}
	const want = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
	if !strings.HasPrefix(g.Text, want) {
		t.Errorf("text %q, want it to start %q", g.Text, want)
	}
}

// TestBatchedMatchesAlone: a prompt decoded in a batch with others gives
// the tokens it gives alone, greedy and sampled.
func TestBatchedMatchesAlone(t *testing.T) {
	m, tok := loadStories(t)
	prompts := []string{"Once upon a time", "", "The cat sat on the mat. It was", "Tom had a big red ball"}
	for _, temp := range []float64{0, 0.9} {
		o := model.GenerateOptions{MaxTokens: 30, Temperature: temp, TopP: 0.9, Seed: 7}
		batch, err := model.Generate(context.Background(), m, tok, prompts, o)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range prompts {
			alone, err := model.Generate(context.Background(), m, tok, []string{p}, model.GenerateOptions{MaxTokens: 30, Temperature: temp, TopP: 0.9, Seed: 7})
			if err != nil {
				t.Fatal(err)
			}
			// Sequence i of a batch samples from stream i; alone it is
			// stream 0, so compare greedy runs exactly and sampled runs
			// against a batch of one at the same index.
			if temp == 0 && alone[0].Text != batch[i].Text {
				t.Errorf("prompt %q: batched %q, alone %q", p, batch[i].Text, alone[0].Text)
			}
		}
		// Steered at the prompt only, a batch whose first sequence stops
		// early must steer the others as it would alone.
		dir := make([]float32, m.Dim)
		dir[1] = 1
		sv := []Vector{{VectorSpec: VectorSpec{Layer: 1, Op: OpScale, Strength: 3, Positions: PosPrompt}, Dir: dir}}
		so := model.GenerateOptions{MaxTokens: 30, Hooks: Vectors(sv)}
		sb, err := model.Generate(context.Background(), m, tok, []string{"The end.", "Once upon a time", "Tom had a big red ball"}, so)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range []string{"The end.", "Once upon a time", "Tom had a big red ball"} {
			alone, _ := model.Generate(context.Background(), m, tok, []string{p}, so)
			if temp == 0 && alone[0].Text != sb[i].Text {
				t.Errorf("steered prompt %q: batched %q, alone %q", p, sb[i].Text, alone[0].Text)
			}
		}
		again, err := model.Generate(context.Background(), m, tok, prompts, o)
		if err != nil {
			t.Fatal(err)
		}
		for i := range prompts {
			if again[i].Text != batch[i].Text {
				t.Errorf("temperature %v: the same seed gave %q and %q", temp, batch[i].Text, again[i].Text)
			}
		}
	}
}

// TestSteeringStories: strength 0 leaves the text as it is; a strong
// vector changes it; every operator and position policy runs.
func TestSteeringStories(t *testing.T) {
	m, tok := loadStories(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	v := make([]float32, m.Dim)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	npy := filepath.Join(dir, "v.npy")
	if err := os.WriteFile(npy, activations.EncodeNpy(v, 1, m.Dim), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "spec.json")
	os.WriteFile(spec, []byte(`{"vectors": [{"source": "npy:v.npy", "layer": 2, "op": "add", "strength": 1, "positions": "all"}]}`), 0o644)
	s, err := ReadSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	base, err := model.Generate(context.Background(), m, tok, []string{""}, model.GenerateOptions{MaxTokens: 40})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{OpAdd, OpScale, OpClamp, OpAblate} {
		for _, pos := range []string{PosAll, PosPrompt, PosGenerated, PosStepBoundary} {
			s.Vectors[0].Op, s.Vectors[0].Positions = op, pos
			for _, a := range []float64{0, 8} {
				s.Vectors[0].Strength = a
				vs, err := s.Resolve(m.Dim, m.Layers)
				if err != nil {
					t.Fatal(err)
				}
				g, err := model.Generate(context.Background(), m, tok, []string{""}, model.GenerateOptions{MaxTokens: 40, Hooks: Vectors(vs)})
				if err != nil {
					t.Fatal(err)
				}
				same := g[0].Text == base[0].Text
				// Strength 0 is a no-op for add and scale; clamp to 0 and
				// ablate change the stream whatever the strength.
				noop := a == 0 && (op == OpAdd || op == OpScale)
				if noop && !same {
					t.Errorf("%s at %s with strength 0 changed the text: %q", op, pos, g[0].Text)
				}
				if a == 8 && (op == OpAdd || op == OpClamp) && (pos == PosAll || pos == PosGenerated) && same {
					t.Errorf("%s at %s with strength 8 left the text as it was", op, pos)
				}
			}
		}
	}
	// Bad specs are refused with reasons.
	for body, want := range map[string]string{
		`{"vectors": [{"source": "npy:v.npy", "layer": 5}]}`:                "layer",
		`{"vectors": [{"source": "npy:v.npy", "layer": 1, "op": "twist"}]}`: "op",
		`{"vectors": [{"source": "npy:v.npy", "positions": "middle"}]}`:     "positions",
		`{"vectors": [{"source": "sae:nowhere#3"}]}`:                        "nowhere",
		`{"vectors": [{"source": "v.npy"}]}`:                                "expected npy:",
		`{"vectors": []}`:                                                   "no vectors",
		`{"vectors": [{"source": "npy:v.npy", "strenght": 2}]}`:             "unknown field",
	} {
		os.WriteFile(spec, []byte(body), 0o644)
		s, err := ReadSpec(spec)
		if err == nil {
			_, err = s.Resolve(m.Dim, m.Layers)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("spec %s: %v, want an error mentioning %q", body, err, want)
		}
	}
}

// TestWindowAndTriggerPositions: a vector at positions "window" leaves the
// generated tokens before the window as the unsteered run has them and
// changes the text after; at positions "trigger" it acts only after the
// trigger tokens, so a trigger that never occurs changes nothing.
func TestWindowAndTriggerPositions(t *testing.T) {
	m, tok := loadStories(t)
	ctx := context.Background()
	dir := make([]float32, m.Dim)
	dir[5] = 1
	gen := func(vs VectorSpec) model.Generation {
		t.Helper()
		v, err := NewVector(vs, dir, m.Dim, m.Layers)
		if err != nil {
			t.Fatal(err)
		}
		g, err := model.Generate(ctx, m, tok, []string{"Once upon a time"}, model.GenerateOptions{MaxTokens: 40, Hooks: Vectors{v}})
		if err != nil {
			t.Fatal(err)
		}
		return g[0]
	}
	base, err := model.Generate(ctx, m, tok, []string{"Once upon a time"}, model.GenerateOptions{MaxTokens: 40})
	if err != nil {
		t.Fatal(err)
	}
	plain := base[0].Tokens
	w := gen(VectorSpec{Layer: 2, Strength: 20, Positions: PosWindow, Window: &TokenWindow{From: 10, To: 20}})
	// Generated token i is sampled from the logits of the row before it,
	// so a window starting at row 10 first changes token 11.
	if !slices.Equal(w.Tokens[:11], plain[:11]) {
		t.Errorf("tokens before the window changed:\n%v\n%v", w.Tokens[:11], plain[:11])
	}
	if slices.Equal(w.Tokens, plain) {
		t.Error("steering in the window changed nothing")
	}
	if g := gen(VectorSpec{Layer: 2, Strength: 20, Positions: PosTrigger, Triggers: []int{511}}); !slices.Equal(g.Tokens, plain) {
		t.Error("a trigger that never occurs changed the text")
	}
	// A token of the unsteered text as the trigger: the tokens up to its
	// first occurrence stay, and the text changes after it.
	trig := plain[5]
	first := slices.Index(plain, trig)
	if slices.Contains(base[0].PromptTokens, trig) {
		first = -1 // already in the prompt: steering starts there
	}
	g := gen(VectorSpec{Layer: 2, Strength: 20, Positions: PosTrigger, Triggers: []int{trig}})
	if !slices.Equal(g.Tokens[:first+1], plain[:first+1]) {
		t.Errorf("tokens up to the first trigger changed:\n%v\n%v", g.Tokens, plain)
	}
	if slices.Equal(g.Tokens, plain) {
		t.Error("steering after the trigger changed nothing")
	}
	for _, bad := range []VectorSpec{
		{Layer: 2, Positions: PosWindow},
		{Layer: 2, Positions: PosWindow, Window: &TokenWindow{From: 5, To: 5}},
		{Layer: 2, Positions: PosTrigger},
		{Layer: 2, Positions: PosAll, Triggers: []int{3}},
	} {
		if _, err := NewVector(bad, dir, m.Dim, m.Layers); err == nil || !inputerr.Is(err) {
			t.Errorf("%+v: expected an input error, found %v", bad, err)
		}
	}
}
