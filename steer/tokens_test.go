package steer

import (
	"context"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/vec"
)

var tokenTrace = activations.Trace{Trace: "t0", Prompt: "Once upon a time",
	Response: "there was a cat.\n\nWait, the cat was big.\n\nThe dog ran to the park and played."}

// TestReadTokensMatchesCapture: the token-level view's state at each
// step's token is the row capture records for the step, and its pieces
// spell the response.
func TestReadTokensMatchesCapture(t *testing.T) {
	m, tok := loadStories(t)
	const layer = 3
	ts, err := ReadTokens(context.Background(), m, tok, tokenTrace, layer, CaptureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rec TraceRecord
	err = CaptureRecords(context.Background(), m, tok, []activations.Trace{tokenTrace}, CaptureOptions{Layers: []int{layer}}, func(r TraceRecord) error {
		rec = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts.State) != len(rec.Steps) || len(ts.State) != 3 {
		t.Fatalf("%d step states, capture has %d steps, want 3", len(ts.State), len(rec.Steps))
	}
	for s, i := range ts.State {
		got := ts.Rows[i*ts.Dim : (i+1)*ts.Dim]
		want := rec.Rows[0][s*m.Dim : (s+1)*m.Dim]
		if !slices.Equal(got, want) {
			t.Errorf("step %d: the state of token %d differs from the captured row", s, i)
		}
		if ts.Step[i] != s {
			t.Errorf("step %d: its state token %d is counted in step %d", s, i, ts.Step[i])
		}
	}
	text := strings.Join(ts.Pieces, "")
	if !strings.HasPrefix(tokenTrace.Response, strings.TrimLeft(text, " ")) || len(text) < len(tokenTrace.Response)-2 {
		t.Errorf("pieces spell %q, want the response %q", text, tokenTrace.Response)
	}
	for i := 1; i < len(ts.Step); i++ {
		if ts.Step[i] < ts.Step[i-1] {
			t.Fatalf("token %d is in step %d after a token of step %d", i, ts.Step[i], ts.Step[i-1])
		}
	}
}

// TestTokenEffect: strength 0 changes nothing; a large push along the
// direction the final layer reads as one token makes that token's
// log-probability rise among the most at the step states.
func TestTokenEffect(t *testing.T) {
	m, tok := loadStories(t)
	ctx := context.Background()
	traces := []activations.Trace{tokenTrace}
	last := m.Layers - 1
	dir := make([]float32, m.Dim)
	for i := range dir {
		dir[i] = float32((i*7)%13) - 6
	}
	u, err := vec.Unit(dir)
	if err != nil {
		t.Fatal(err)
	}
	zero, n, err := TokenEffect(ctx, m, tok, traces, last, u, 0, CaptureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("averaged over %d step states, want 3", n)
	}
	for v, d := range zero {
		if d != 0 {
			t.Fatalf("strength 0 changes token %d by %g", v, d)
		}
	}
	lens, err := m.LogitLens(u)
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for v, l := range lens {
		if l > lens[x] {
			x = v
		}
	}
	delta, _, err := TokenEffect(ctx, m, tok, traces, last, u, 200, CaptureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if delta[x] < 1 {
		t.Fatalf("token %d (%q), the direction's top logit-lens token, changes by %.3g nats, want a rise of at least 1", x, tok.Decode([]int{x}, true), delta[x])
	}
	// Pushed this far, the last layer's output is mostly the direction,
	// so the changes follow the direction's logit lens.
	if r := stat.Correlation(delta, f64(lens), nil); r < 0.5 {
		t.Errorf("the changes correlate with the direction's logit lens at r = %.3f, want at least 0.5", r)
	}
	if _, _, err := TokenEffect(ctx, m, tok, traces, last, u[:3], 1, CaptureOptions{}); err == nil {
		t.Error("a direction of the wrong size is accepted")
	}
}

func f64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}
