package sae

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The graph engine is checked against a float64 evaluation of the objective
// written from LossConfig's definitions: loss values directly, gradients by
// central finite differences with the step's selections held fixed (the
// TopK, BatchTopK and AuxK masks, AuxK's residual e and JumpReLU's step
// mask; these are constants of the objective at a step). JumpReLU's
// threshold gradient is a straight-through estimate, not the derivative of
// the true loss, so it is compared with the estimator's formula instead
// (Rajamanoharan et al. 2024, arXiv 2407.14435, §4).

// graphRefParams holds an SAE's parameters in float64.
type graphRefParams struct {
	wEnc, wDec, bEnc, bDec, theta []float64
}

func graphRefParamsOf(s *SAE) graphRefParams {
	f := func(v []float32) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	return graphRefParams{f(s.WEnc), f(s.WDec), f(s.BEnc), f(s.BDec), f(s.Threshold)}
}

// graphRefSelection is what a step holds constant.
type graphRefSelection struct {
	mask, auxMask, step []bool    // [B, DSae]
	e                   []float64 // [B, DIn], AuxK's residual x - x_hat
	auxScale            float64   // α·min(dead/k_aux, 1)
	batchThreshold      float64
}

// graphRefLoss holds the terms of the objective in float64.
type graphRefLoss struct {
	mse, sparsity, auxK, l0 float64
	fired                   []int64
}

func (l graphRefLoss) total() float64 { return l.mse + l.sparsity + l.auxK }

// graphRefPre computes pre = (c·x - b_dec) W_enc + b_enc.
func graphRefPre(s *SAE, p graphRefParams, x []float64) []float64 {
	d, m := s.DIn, s.DSae
	B := len(x) / d
	c := graphRefScale(s)
	pre := make([]float64, B*m)
	for b := range B {
		for j := range m {
			v := p.bEnc[j]
			for i := range d {
				xi := c * x[b*d+i]
				if s.ApplyBDecToInput {
					xi -= p.bDec[i]
				}
				v += xi * p.wEnc[i*m+j]
			}
			pre[b*m+j] = v
		}
	}
	return pre
}

func graphRefScale(s *SAE) float64 {
	if s.InputScale == 0 {
		return 1
	}
	return float64(s.InputScale)
}

// graphRefTopK returns the indices of the k largest values, ties by the
// lower index.
func graphRefTopK(v []float64, k int) []int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case v[a] > v[b]:
			return -1
		case v[a] < v[b]:
			return 1
		}
		return 0
	})
	return idx[:min(k, len(v))]
}

// graphRefSelect makes the step's selections at parameters p, following
// LossConfig's definitions.
func graphRefSelect(s *SAE, p graphRefParams, x []float64, cfg LossConfig, dead []bool) graphRefSelection {
	d, m := s.DIn, s.DSae
	B := len(x) / d
	pre := graphRefPre(s, p, x)
	sel := graphRefSelection{mask: make([]bool, B*m)}
	switch s.Arch {
	case TopK:
		for b := range B {
			for _, j := range graphRefTopK(pre[b*m:(b+1)*m], s.K) {
				sel.mask[b*m+j] = true
			}
		}
	case BatchTopK:
		relu := make([]float64, len(pre))
		for i, v := range pre {
			relu[i] = max(v, 0)
		}
		for _, i := range graphRefTopK(relu, s.K*B) {
			sel.mask[i] = true
			if v := relu[i]; v > 0 && (sel.batchThreshold == 0 || v < sel.batchThreshold) {
				sel.batchThreshold = v
			}
		}
	case JumpReLU:
		sel.step = make([]bool, B*m)
		for i, v := range pre {
			sel.step[i] = v > p.theta[i%m]
		}
	}
	var deadIdx []int
	for j, dd := range dead {
		if dd {
			deadIdx = append(deadIdx, j)
		}
	}
	if (s.Arch == TopK || s.Arch == BatchTopK) && cfg.AuxKCoeff != 0 && len(deadIdx) > 0 {
		kCfg := cfg.auxKLatents(s)
		kAux := min(kCfg, len(deadIdx))
		sel.auxScale = float64(cfg.AuxKCoeff) * min(float64(len(deadIdx))/float64(kCfg), 1)
		sel.auxMask = make([]bool, B*m)
		for b := range B {
			vals := make([]float64, len(deadIdx))
			for i, j := range deadIdx {
				vals[i] = pre[b*m+j]
			}
			for _, i := range graphRefTopK(vals, kAux) {
				sel.auxMask[b*m+deadIdx[i]] = true
			}
		}
		// e = c·x - x_hat at these parameters, held constant.
		_, xhat := graphRefForward(s, p, x, sel)
		c := graphRefScale(s)
		sel.e = make([]float64, len(x))
		for i := range x {
			sel.e[i] = c*x[i] - xhat[i]
		}
	}
	return sel
}

// graphRefForward computes the latents f and reconstruction x_hat with the
// selections in sel.
func graphRefForward(s *SAE, p graphRefParams, x []float64, sel graphRefSelection) (f, xhat []float64) {
	d, m := s.DIn, s.DSae
	B := len(x) / d
	pre := graphRefPre(s, p, x)
	f = make([]float64, B*m)
	for i, v := range pre {
		switch s.Arch {
		case Standard:
			f[i] = max(v, 0)
		case TopK, BatchTopK:
			if sel.mask[i] {
				f[i] = max(v, 0)
			}
		case JumpReLU:
			if sel.step[i] {
				f[i] = v
			}
		}
	}
	xhat = make([]float64, B*d)
	for b := range B {
		for i := range d {
			v := p.bDec[i]
			for j := range m {
				v += f[b*m+j] * p.wDec[j*d+i]
			}
			xhat[b*d+i] = v
		}
	}
	return f, xhat
}

// graphRefEval evaluates the objective at p with the selections in sel.
func graphRefEval(s *SAE, p graphRefParams, x []float64, cfg LossConfig, sel graphRefSelection) graphRefLoss {
	d, m := s.DIn, s.DSae
	B := len(x) / d
	c := graphRefScale(s)
	f, xhat := graphRefForward(s, p, x, sel)
	l := graphRefLoss{fired: make([]int64, m)}
	for i := range xhat {
		r := xhat[i] - c*x[i]
		l.mse += r * r
	}
	l.mse /= float64(B)
	for i, v := range f {
		if v > 0 {
			l.fired[i%m]++
			l.l0++
		}
	}
	l.l0 /= float64(B)
	lambda := float64(cfg.Sparsity)
	switch s.Arch {
	case Standard:
		for j := range m {
			var sq float64
			for i := range d {
				sq += p.wDec[j*d+i] * p.wDec[j*d+i]
			}
			var col float64
			for b := range B {
				col += f[b*m+j]
			}
			l.sparsity += col * math.Sqrt(sq)
		}
		l.sparsity *= lambda / float64(B)
	case JumpReLU:
		for _, on := range sel.step {
			if on {
				l.sparsity++
			}
		}
		l.sparsity *= lambda / float64(B)
	}
	if sel.auxMask != nil {
		pre := graphRefPre(s, p, x)
		for b := range B {
			for i := range d {
				v := -sel.e[b*d+i]
				for j := range m {
					if sel.auxMask[b*m+j] {
						v += max(pre[b*m+j], 0) * p.wDec[j*d+i]
					}
				}
				l.auxK += v * v
			}
		}
		l.auxK *= sel.auxScale / float64(B)
	}
	return l
}

// graphRefLogThresholdGrad is the straight-through estimate of
// ∂loss/∂log θ: θ_j · Σ_b [∂loss/∂f_bj · ∂f_bj/∂θ_j + λ/B · ∂H_bj/∂θ_j] with
// ∂f/∂θ = -(θ/ε)·rect((pre-θ)/ε), ∂H/∂θ = -(1/ε)·rect((pre-θ)/ε) and
// ∂loss/∂f_bj = (2/B) (x_hat_b - x_b)·W_dec[j].
func graphRefLogThresholdGrad(s *SAE, p graphRefParams, x []float64, cfg LossConfig, sel graphRefSelection) []float64 {
	d, m := s.DIn, s.DSae
	B := len(x) / d
	c := graphRefScale(s)
	eps := float64(cfg.bandwidth())
	pre := graphRefPre(s, p, x)
	_, xhat := graphRefForward(s, p, x, sel)
	out := make([]float64, m)
	for b := range B {
		for j := range m {
			th := p.theta[j]
			u := (pre[b*m+j] - th) / eps
			if !(u > -0.5 && u < 0.5) {
				continue
			}
			var df float64
			for i := range d {
				df += 2 / float64(B) * (xhat[b*d+i] - c*x[b*d+i]) * p.wDec[j*d+i]
			}
			out[j] += df*(-th/eps) + float64(cfg.Sparsity)/float64(B)*(-1/eps)
		}
	}
	for j := range out {
		out[j] *= p.theta[j]
	}
	return out
}

// graphTestCase is one architecture's configuration for the checks.
type graphTestCase struct {
	name            string
	arch            Arch
	dIn, dSae, rows int
	k               int
	cfg             LossConfig
	dead            int // latents marked dead
	centre          bool
}

var graphTestCases = []graphTestCase{
	{name: "standard", arch: Standard, dIn: 8, dSae: 16, rows: 6, cfg: LossConfig{Sparsity: 0.3}, centre: true},
	{name: "standard-uncentred", arch: Standard, dIn: 6, dSae: 20, rows: 5, cfg: LossConfig{Sparsity: 0.1}},
	{name: "topk", arch: TopK, dIn: 10, dSae: 24, rows: 7, k: 4, cfg: LossConfig{AuxKCoeff: 1.0 / 32, AuxKLatents: 3}, dead: 7, centre: true},
	{name: "batchtopk", arch: BatchTopK, dIn: 12, dSae: 16, rows: 8, k: 3, cfg: LossConfig{AuxKCoeff: 0.5, AuxKLatents: 8}, dead: 5, centre: true},
	{name: "jumprelu", arch: JumpReLU, dIn: 8, dSae: 16, rows: 6, cfg: LossConfig{Sparsity: 0.2, Bandwidth: 0.05}, centre: true},
}

// graphTestSAE makes a random SAE for tc, with the encoder not tied to the
// decoder, decoder rows of varied norms, non-zero biases, an input scale,
// and a batch. For JumpReLU the thresholds are placed near pre-activations
// so that several fall inside the estimator's window, on both sides of θ.
func graphTestSAE(t *testing.T, tc graphTestCase, seed uint64) (*SAE, []float32, []bool) {
	t.Helper()
	s, x, rng := randomSAE{arch: tc.arch, dIn: tc.dIn, dSae: tc.dSae, k: tc.k, rows: tc.rows, centre: tc.centre, scale: 1.3,
		stream: 7, decNorm: 0.8, threshold: 0.1, encNoise: 0.3, bEnc: 0.1, bDec: 0.2}.make(t, seed)
	var dead []bool
	if tc.dead > 0 {
		dead = make([]bool, tc.dSae)
		for _, j := range rng.Perm(tc.dSae)[:tc.dead] {
			dead[j] = true
		}
	}
	if tc.arch == JumpReLU {
		// θ_j = the largest pre-activation of latent j ± 0.4 ε, or 0.3 where
		// that is not positive enough.
		pre := graphRefPre(s, graphRefParamsOf(s), graphTo64(x))
		eps := float64(tc.cfg.bandwidth())
		for j := range s.DSae {
			top := math.Inf(-1)
			for b := range tc.rows {
				top = max(top, pre[b*tc.dSae+j])
			}
			th := top + 0.4*eps*float64(1-2*(j%2))
			if th < 0.05 {
				th = 0.3
			}
			s.Threshold[j] = float32(th)
		}
	}
	return s, x, dead
}

func graphTo64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// graphRelErr is ||a - b|| / max(||b||, 1e-12).
func graphRelErr(a []float32, b []float64) float64 {
	var num, den float64
	for i := range b {
		r := float64(a[i]) - b[i]
		num += r * r
		den += b[i] * b[i]
	}
	return math.Sqrt(num) / max(math.Sqrt(den), 1e-12)
}

// forGraphCases runs check on every case of graphTestCases, in a subtest,
// with the SAE and batch graphTestSAE draws with seed.
func forGraphCases(t *testing.T, seed uint64, check func(t *testing.T, tc graphTestCase, s *SAE, x []float32, dead []bool)) {
	for _, tc := range graphTestCases {
		t.Run(tc.name, func(t *testing.T) {
			s, x, dead := graphTestSAE(t, tc, seed)
			check(t, tc, s, x, dead)
		})
	}
}

func TestGraphLossMatchesReference(t *testing.T) {
	e := NewGraphEngine()
	forGraphCases(t, 1, func(t *testing.T, tc graphTestCase, s *SAE, x []float32, dead []bool) {
		g := NewGradients(s)
		fired := make([]int64, s.DSae)
		loss, err := e.Step(s, x, tc.cfg, dead, g, fired)
		if err != nil {
			t.Fatal(err)
		}
		p := graphRefParamsOf(s)
		x64 := graphTo64(x)
		sel := graphRefSelect(s, p, x64, tc.cfg, dead)
		ref := graphRefEval(s, p, x64, tc.cfg, sel)
		for _, c := range []struct {
			name      string
			got, want float64
		}{
			{"MSE", loss.MSE, ref.mse}, {"Sparsity", loss.Sparsity, ref.sparsity},
			{"AuxK", loss.AuxK, ref.auxK}, {"L0", loss.L0, ref.l0},
			{"Total", loss.Total, ref.total()},
			{"BatchThreshold", float64(loss.BatchThreshold), sel.batchThreshold},
		} {
			if math.Abs(c.got-c.want) > 1e-5*max(1, math.Abs(c.want)) {
				t.Errorf("%s = %.8g, reference %.8g", c.name, c.got, c.want)
			}
		}
		if !slices.Equal(fired, ref.fired) {
			t.Errorf("fired = %v, reference %v", fired, ref.fired)
		}
		// The configurations exercise every term.
		if tc.cfg.Sparsity != 0 && ref.sparsity == 0 {
			t.Errorf("sparsity term is zero in the reference; the case does not exercise it")
		}
		if tc.cfg.AuxKCoeff != 0 && ref.auxK == 0 {
			t.Errorf("AuxK term is zero in the reference; the case does not exercise it")
		}
	})
}

func TestGraphGradientsMatchFiniteDifferences(t *testing.T) {
	e := NewGraphEngine()
	forGraphCases(t, 2, func(t *testing.T, tc graphTestCase, s *SAE, x []float32, dead []bool) {
		g := NewGradients(s)
		if _, err := e.Step(s, x, tc.cfg, dead, g, nil); err != nil {
			t.Fatal(err)
		}
		p := graphRefParamsOf(s)
		x64 := graphTo64(x)
		sel := graphRefSelect(s, p, x64, tc.cfg, dead)
		const h = 1e-6
		fd := func(v []float64) []float64 {
			out := make([]float64, len(v))
			for i := range v {
				old := v[i]
				v[i] = old + h
				up := graphRefEval(s, p, x64, tc.cfg, sel).total()
				v[i] = old - h
				down := graphRefEval(s, p, x64, tc.cfg, sel).total()
				v[i] = old
				out[i] = (up - down) / (2 * h)
			}
			return out
		}
		check := func(name string, got []float32, want []float64) {
			t.Helper()
			if err := graphRelErr(got, want); !(err < 1e-5) {
				t.Errorf("∂loss/∂%s: relative error %.3g against the reference\n got %v\nwant %v", name, err, got, want)
			}
		}
		check("W_enc", g.WEnc, fd(p.wEnc))
		check("W_dec", g.WDec, fd(p.wDec))
		check("b_enc", g.BEnc, fd(p.bEnc))
		check("b_dec", g.BDec, fd(p.bDec))
		if tc.arch == JumpReLU {
			want := graphRefLogThresholdGrad(s, p, x64, tc.cfg, sel)
			check("log θ", g.LogThreshold, want)
			// Several pre-activations lie in the window, so the
			// estimator is exercised.
			nonzero := 0
			for _, v := range want {
				if v != 0 {
					nonzero++
				}
			}
			if nonzero < 4 {
				t.Errorf("only %d latents have a threshold gradient; the case does not exercise the estimator", nonzero)
			}
		}
	})
}

// TestGraphReusesAcrossBatchSizes runs a full and a partial batch in turn:
// each rebinds its cached graph and gives what a fresh engine gives.
func TestGraphReusesAcrossBatchSizes(t *testing.T) {
	tc := graphTestCases[2] // topk with AuxK
	s, x, dead := graphTestSAE(t, tc, 3)
	e := NewGraphEngine()
	part := x[:3*s.DIn]
	run := func(e Engine, x []float32) (Loss, *Gradients) {
		g := NewGradients(s)
		loss, err := e.Step(s, x, tc.cfg, dead, g, nil)
		if err != nil {
			t.Fatal(err)
		}
		return loss, g
	}
	before := s.Clone()
	l1, g1 := run(e, x)
	run(e, part)
	l2, g2 := run(e, x)
	if l1 != l2 || !slices.Equal(g1.WEnc, g2.WEnc) || !slices.Equal(g1.WDec, g2.WDec) || !slices.Equal(g1.BDec, g2.BDec) {
		t.Errorf("a cached graph gave a different step: loss %+v then %+v", l1, l2)
	}
	lp, gp := run(e, part)
	lf, gf := run(NewGraphEngine(), part)
	if lp != lf || !slices.Equal(gp.WEnc, gf.WEnc) || !slices.Equal(gp.BEnc, gf.BEnc) {
		t.Errorf("partial batch on a used engine gave loss %+v, a fresh engine %+v", lp, lf)
	}
	if !slices.Equal(s.WEnc, before.WEnc) || !slices.Equal(s.WDec, before.WDec) || !slices.Equal(s.BDec, before.BDec) || !slices.Equal(s.BEnc, before.BEnc) {
		t.Error("Step changed the SAE's parameters")
	}
}

func TestGraphRejectsBadInputs(t *testing.T) {
	s, x, _ := graphTestSAE(t, graphTestCases[0], 4)
	e := NewGraphEngine()
	g := NewGradients(s)
	jump, jx, _ := graphTestSAE(t, graphTestCases[4], 4)
	jump.Threshold[3] = 0
	cases := []struct {
		name  string
		run   func() error
		wants string
	}{
		{"ragged batch", func() error {
			_, err := e.Step(s, x[:len(x)-1], LossConfig{}, nil, g, nil)
			return err
		}, "multiple of d_in"},
		{"empty batch", func() error { _, err := e.Step(s, nil, LossConfig{}, nil, g, nil); return err }, "multiple of d_in"},
		{"short dead mask", func() error {
			_, err := e.Step(s, x, LossConfig{}, make([]bool, 3), g, nil)
			return err
		}, "dead mask"},
		{"short fired", func() error {
			_, err := e.Step(s, x, LossConfig{}, nil, g, make([]int64, 2))
			return err
		}, "fired"},
		{"gradient shape", func() error {
			_, err := e.Step(s, x, LossConfig{}, nil, &Gradients{}, nil)
			return err
		}, "gradient of W_enc"},
		{"zero threshold", func() error {
			_, err := e.Step(jump, jx, LossConfig{}, nil, NewGradients(jump), nil)
			return err
		}, "positive"},
	}
	for _, c := range cases {
		err := c.run()
		if err == nil || !strings.Contains(err.Error(), c.wants) {
			t.Errorf("%s: error %v, expected one mentioning %q", c.name, err, c.wants)
		}
	}
}

// BenchmarkGraphStep times one standard-SAE step at d_in 1536, d_sae 2048 on
// a batch of 1024 rows.
func BenchmarkGraphStep(b *testing.B) {
	const dIn, dSae, rows = 1536, 2048, 1024
	s, err := New(Standard, dIn, dSae, 0)
	if err != nil {
		b.Fatal(err)
	}
	s.Init(1, 0.1, nil, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, rows*dIn)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	e := NewGraphEngine()
	g := NewGradients(s)
	cfg := LossConfig{Sparsity: 1}
	if _, err := e.Step(s, x, cfg, nil, g, nil); err != nil { // builds the graph
		b.Fatal(err)
	}
	steps := 0
	for b.Loop() {
		if _, err := e.Step(s, x, cfg, nil, g, nil); err != nil {
			b.Fatal(err)
		}
		steps++
	}
	b.ReportMetric(float64(steps*rows)/b.Elapsed().Seconds(), "samples/s")
}
