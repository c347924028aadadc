package sae

import (
	"math"
	"testing"

	"github.com/rise-interp/rise/internal/bf16"
)

// onGrid rounds v to a multiple of 1/64 between -2 and 2: such values, and
// the difference of two of them, are exact in bfloat16 (at most 8
// significant bits).
func onGrid(v float32) float32 {
	return float32(math.Round(float64(max(-2, min(2, v)))*64) / 64)
}

// TestFusedBF16Agrees holds the fused engine in bfloat16 to the float32
// engine on inputs and encoder weights that bfloat16 holds exactly. Over
// active entries (and for TopK) only the encoder product runs in bfloat16,
// so the two may differ only by the order of their float32 sums: the usual
// 1e-3. The dense path also rounds the activations, the decoder and the
// gradients to bfloat16 (relative 2⁻⁹ each), and JumpReLU's threshold
// gradient sums terms that cancel (2.7% apart at worst on these cases), so
// it is held to 5e-2: a wrong layout or transpose is off by far more.
func TestFusedBF16Agrees(t *testing.T) {
	if !bf16.Native() {
		t.Skip("this CPU has no AVX512_BF16")
	}
	exact := func(s *SAE, x []float32) {
		s.InputScale = 1
		for _, w := range [][]float32{s.WEnc, s.BDec, x} {
			for i, v := range w {
				w[i] = onGrid(v)
			}
		}
	}
	t.Run("active", func(t *testing.T) {
		engineAgreementOn(t, namedEngine{&fusedEngine{mode: fusedSparse, bf16: true}, "fused-bf16-active"},
			namedEngine{&fusedEngine{mode: fusedSparse}, "fused-f32-active"}, exact, 1e-3)
	})
	t.Run("dense", func(t *testing.T) {
		engineAgreementOn(t, namedEngine{&fusedEngine{mode: fusedDense, bf16: true}, "fused-bf16-dense"},
			namedEngine{&fusedEngine{mode: fusedDense}, "fused-f32-dense"}, exact, 5e-2)
	})
}

// TestFusedBF16RoundsInputs: on inputs bfloat16 cannot hold, the bfloat16
// engine's loss differs from float32's by about the rounding (relative
// 2⁻⁹ per input), not more, and not at all would mean it ran in float32.
func TestFusedBF16RoundsInputs(t *testing.T) {
	if !bf16.Native() {
		t.Skip("this CPU has no AVX512_BF16")
	}
	c := agreeCases[0]
	s, x, _ := agreeSAE(t, c, 1)
	run := func(e Engine) Loss {
		l, err := e.Step(s, x, c.cfg, nil, NewGradients(s), make([]int64, s.DSae))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l16, l32 := run(&fusedEngine{bf16: true}), run(&fusedEngine{})
	d := math.Abs(l16.MSE-l32.MSE) / l32.MSE
	if d == 0 || d > 0.02 {
		t.Errorf("MSE in bfloat16 %.7g, in float32 %.7g: relative difference %.2g, expected above 0 and at most 0.02", l16.MSE, l32.MSE, d)
	}
}
