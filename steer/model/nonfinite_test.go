package model

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
)

// explained is a HookFactory whose hook overflows the residual stream after
// block 1 and which says so.
type explained struct{}

func (explained) Hook(Tokenizer, int) Hook {
	return func(layer int, h []float32, _ []Row) {
		if layer == 1 {
			for i := range h {
				h[i] *= 1e38
				h[i] *= 1e38
			}
		}
	}
}

func (explained) Explain(layer int) string { return "the test's hook at block 1" }

// TestNonFiniteResidual: a residual stream that is no longer finite stops
// the forward pass and generation with an error naming the block, the
// position and, when the hook factory can say, what made it so (a strength
// of 1e308 used to give empty text and success).
func TestNonFiniteResidual(t *testing.T) {
	m, tok := loadStories(t)
	s := m.NewSequence()
	nan := func(layer int, h []float32, rows []Row) {
		if layer == 3 {
			h[len(h)-1] = float32(math.NaN())
		}
	}
	_, err := m.Forward(context.Background(), []*Sequence{s}, [][]int{{1, 403, 405}}, false, nan)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Layer != 3 || nf.Pos != 2 || nf.Seq != 0 || !nf.Hooked {
		t.Fatalf("Forward: %v (%+v)", err, nf)
	}
	if !strings.Contains(err.Error(), "after block 3") || !strings.Contains(err.Error(), "position 2 of sequence 0") {
		t.Errorf("Forward: %v", err)
	}

	_, err = Generate(context.Background(), m, tok, []string{"Once", "Lily"}, GenerateOptions{MaxTokens: 5, Hooks: explained{}})
	if !errors.As(err, &nf) || nf.Layer != 1 || nf.Of != "prompt" {
		t.Fatalf("Generate: %v", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "generate: the residual stream after block 1 left float32's range") ||
		!strings.HasSuffix(msg, "after the test's hook at block 1") || strings.Contains(msg, "\n") {
		t.Errorf("Generate: %q", msg)
	}

	// Weights that overflow on their own.
	bad, err := NewRandom(m.Config, 1)
	if err != nil {
		t.Fatal(err)
	}
	bad.Blocks[0].WDown.F32[0] = float32(math.Inf(1))
	_, err = bad.Forward(context.Background(), []*Sequence{bad.NewSequence()}, [][]int{{1, 2}}, false, nil)
	if !errors.As(err, &nf) || nf.Layer != 0 || !strings.Contains(err.Error(), "with no hook") {
		t.Errorf("overflowing weights: %v", err)
	}
}
