package sae

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// agreeCase is one configuration on which two engines must agree.
type agreeCase struct {
	arch            Arch
	dIn, dSae, rows int
	k               int
	cfg             LossConfig
	deadFrac        float64 // share of latents marked dead
	centre          bool
	scale           float32 // InputScale
}

func (c agreeCase) String() string {
	return fmt.Sprintf("%s/d_in=%d/d_sae=%d/rows=%d", c.arch, c.dIn, c.dSae, c.rows)
}

// agreeCases cover the four architectures, with λ > 0 for the sparsity
// penalties, dead latents for AuxK (fewer and more than k_aux), batches that
// are not a multiple of anything or are one row, and JumpReLU with both a
// wide and the default kernel bandwidth.
var agreeCases = []agreeCase{
	{arch: Standard, dIn: 24, dSae: 48, rows: 16, cfg: LossConfig{Sparsity: 0.5}, centre: true, scale: 1},
	{arch: Standard, dIn: 17, dSae: 40, rows: 13, cfg: LossConfig{Sparsity: 2}, scale: 0.7},
	{arch: TopK, dIn: 24, dSae: 64, rows: 16, k: 6, cfg: LossConfig{AuxKCoeff: 1.0 / 32, AuxKLatents: 8}, deadFrac: 0.4, centre: true, scale: 1.5},
	{arch: TopK, dIn: 20, dSae: 48, rows: 11, k: 4, cfg: LossConfig{AuxKCoeff: 0.25}, deadFrac: 0.1, centre: true, scale: 1},
	{arch: BatchTopK, dIn: 24, dSae: 64, rows: 16, k: 5, cfg: LossConfig{AuxKCoeff: 1.0 / 32, AuxKLatents: 12}, deadFrac: 0.3, centre: true, scale: 1},
	{arch: BatchTopK, dIn: 19, dSae: 40, rows: 9, k: 3, cfg: LossConfig{AuxKCoeff: 0.5, AuxKLatents: 4}, deadFrac: 0.5, scale: 2},
	{arch: JumpReLU, dIn: 24, dSae: 48, rows: 16, cfg: LossConfig{Sparsity: 0.3, Bandwidth: 0.05}, centre: true, scale: 1},
	{arch: JumpReLU, dIn: 16, dSae: 40, rows: 12, cfg: LossConfig{Sparsity: 1}, centre: true, scale: 1.2},
	// One-row batches (the last of an epoch can be one).
	{arch: Standard, dIn: 12, dSae: 24, rows: 1, cfg: LossConfig{Sparsity: 0.5}, centre: true, scale: 1},
	{arch: BatchTopK, dIn: 12, dSae: 24, rows: 1, k: 4, cfg: LossConfig{AuxKCoeff: 0.1, AuxKLatents: 4}, deadFrac: 0.3, centre: true, scale: 1},
}

// agreeSAE makes a random SAE and batch for c: encoder not tied to the
// decoder, decoder rows of varied norms, non-zero biases, JumpReLU
// thresholds spread over the range of the pre-activations.
func agreeSAE(t *testing.T, c agreeCase, seed uint64) (*SAE, []float32, []bool) {
	t.Helper()
	s, x, rng := randomSAE{arch: c.arch, dIn: c.dIn, dSae: c.dSae, k: c.k, rows: c.rows, centre: c.centre, scale: c.scale,
		stream: 11, decNorm: 1, encNoise: 0.2, bEnc: 0.2, bDec: 0.3, thresholds: true}.make(t, seed)
	var dead []bool
	if c.deadFrac > 0 {
		dead = make([]bool, c.dSae)
		for j := range dead {
			dead[j] = rng.Float64() < c.deadFrac
		}
	}
	return s, x, dead
}

// engineAgreement runs engines a and b on random SAEs and batches of every
// architecture and requires the relative error of every gradient tensor,
// loss term and fired count to stay below 1e-3 (relative error
// ||g_a - g_b|| / max(||g_b||, 1e-12)).
func engineAgreement(t *testing.T, a, b Engine) {
	t.Helper()
	engineAgreementOn(t, a, b, nil, 1e-3)
}

// engineAgreementOn is engineAgreement on SAEs and batches that prep, when
// not nil, changes first, with tol for the relative errors.
func engineAgreementOn(t *testing.T, a, b Engine, prep func(s *SAE, x []float32), tol float64) {
	t.Helper()
	for _, c := range agreeCases {
		t.Run(c.String(), func(t *testing.T) {
			for seed := range uint64(3) {
				s, x, dead := agreeSAE(t, c, seed+1)
				if prep != nil {
					prep(s, x)
				}
				ga, gb := NewGradients(s), NewGradients(s)
				fa, fb := make([]int64, s.DSae), make([]int64, s.DSae)
				la, err := a.Step(s, x, c.cfg, dead, ga, fa)
				if err != nil {
					t.Fatalf("%s: %v", a.Name(), err)
				}
				lb, err := b.Step(s, x, c.cfg, dead, gb, fb)
				if err != nil {
					t.Fatalf("%s: %v", b.Name(), err)
				}
				check := func(name string, va, vb []float32) {
					t.Helper()
					if e := relErr(va, vb); !(e < tol) {
						t.Errorf("seed %d: %s differs: relative error %.3g between %s and %s", seed, name, e, a.Name(), b.Name())
					}
				}
				check("∂/∂W_enc", ga.WEnc, gb.WEnc)
				check("∂/∂W_dec", ga.WDec, gb.WDec)
				check("∂/∂b_enc", ga.BEnc, gb.BEnc)
				check("∂/∂b_dec", ga.BDec, gb.BDec)
				if s.Arch == JumpReLU {
					check("∂/∂log θ", ga.LogThreshold, gb.LogThreshold)
				}
				fired := func(f []int64) []float32 {
					out := make([]float32, len(f))
					for i, v := range f {
						out[i] = float32(v)
					}
					return out
				}
				check("fired", fired(fa), fired(fb))
				for _, term := range []struct {
					name   string
					va, vb float64
				}{
					{"Total", la.Total, lb.Total}, {"MSE", la.MSE, lb.MSE},
					{"Sparsity", la.Sparsity, lb.Sparsity}, {"AuxK", la.AuxK, lb.AuxK},
					{"L0", la.L0, lb.L0}, {"BatchThreshold", float64(la.BatchThreshold), float64(lb.BatchThreshold)},
				} {
					if e := math.Abs(term.va-term.vb) / max(math.Abs(term.vb), 1e-12); !(e < tol) {
						t.Errorf("seed %d: loss %s is %.7g (%s) and %.7g (%s)", seed, term.name, term.va, a.Name(), term.vb, b.Name())
					}
				}
				if c.cfg.AuxKCoeff != 0 && lb.AuxK == 0 {
					t.Errorf("seed %d: AuxK is zero; the case does not exercise it", seed)
				}
			}
		})
	}
}

// TestEnginesAgree holds the fused engine's hand-derived gradients to the
// graph engine's automatic ones.
func TestEnginesAgree(t *testing.T) {
	engineAgreement(t, NewFusedEngine(), NewGraphEngine())
}

// TestEnginesCheckStep gives both engines the same unfitting arguments: each
// refuses them with the same message, naming what is off, where the fused
// engine used to panic on missing gradients and word its checks otherwise.
func TestEnginesCheckStep(t *testing.T) {
	const d, m = 4, 8
	s, err := New(JumpReLU, d, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Init(1, 0.1, nil, 0.001)
	x := make([]float32, 3*d)
	short := NewGradients(s)
	short.LogThreshold = short.LogThreshold[:m-1]
	cases := []struct {
		name  string
		x     []float32
		g     *Gradients
		dead  []bool
		fired []int64
		want  string
	}{
		{"no gradients", x, nil, nil, nil, "no gradients given"},
		{"partial row", x[:d+1], NewGradients(s), nil, nil, "batch has 5 values, expected a positive multiple of d_in 4"},
		{"empty batch", nil, NewGradients(s), nil, nil, "batch has 0 values"},
		{"dead mask", x, NewGradients(s), make([]bool, m+1), nil, "dead mask has 9 entries, expected d_sae 8"},
		{"fired counts", x, NewGradients(s), nil, make([]int64, 2), "fired counts have 2 entries, expected d_sae 8"},
		{"log threshold gradient", x, short, nil, nil, "gradient of log_threshold has 7 values, expected 8"},
	}
	for _, e := range []Engine{NewFusedEngine(), NewGraphEngine()} {
		for _, c := range cases {
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("panic: %v", r)
					}
				}()
				_, err = e.Step(s, c.x, LossConfig{Sparsity: 1e-3, Bandwidth: 1e-3}, c.dead, c.g, c.fired)
			}()
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "panic") {
				t.Errorf("%s engine, %s: %v, want an error saying %q", e.Name(), c.name, err, c.want)
			}
		}
	}
}
