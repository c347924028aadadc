package sae

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rise-interp/rise/activations"
	"github.com/rise-interp/rise/internal/saetest"
)

// evalTestLayer writes rows x (of width d) as layer 3 of a dump and opens it.
func evalTestLayer(t *testing.T, x []float32, d int) *activations.Layer {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dump")
	w, err := activations.Create(dir, activations.WriterOptions{Model: "test", DModel: d, Layers: []int{3}, ShardRows: 37})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRows(3, x); err != nil {
		t.Fatal(err)
	}
	steps := make([]activations.Step, len(x)/d)
	for i := range steps {
		steps[i] = activations.Step{Trace: "t", Step: i, Text: "step"}
	}
	if err := w.WriteSteps(steps...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	dump, err := activations.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dump.Close() })
	return dump.Layer(3)
}

// signedIdentitySAE is a ReLU SAE with d_sae = 2·d: latent 2i reads +x_i and
// latent 2i+1 reads -x_i, decoder rows +e_i and -e_i, zero biases. It
// reconstructs every row exactly.
func signedIdentitySAE(t *testing.T, d int) *SAE {
	t.Helper()
	s, err := New(Standard, d, 2*d, 0)
	if err != nil {
		t.Fatal(err)
	}
	saetest.SignedIdentity(s.WEnc, s.WDec, d)
	return s
}

func randRows(seed uint64, n, d int, scale float64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * scale)
	}
	return x
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestMetricsIdentitySAEReconstructsExactly(t *testing.T) {
	const d, n = 6, 300
	x := randRows(1, n, d, 2)
	layer := evalTestLayer(t, x, d)
	s := signedIdentitySAE(t, d)
	truth := make([]float32, d*d)
	for i := range d {
		truth[i*d+i] = 1
	}
	var calls int
	var last int64
	m, err := Evaluate(context.Background(), s, layer, EvalOptions{
		Truth: truth, TruthRows: d, BatchSize: 64,
		Progress: func(done, total int64) {
			calls++
			last = done
			if total != n {
				t.Errorf("progress total %d, want %d", total, n)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.FVU != 0 || m.MSE != 0 || m.ExplainedVariance != 1 {
		t.Errorf("fvu %v mse %v ev %v, want 0 0 1", m.FVU, m.MSE, m.ExplainedVariance)
	}
	if !near(m.CosSim, 1, 1e-12) {
		t.Errorf("cos_sim %v, want 1", m.CosSim)
	}
	if m.Recovery == nil || *m.Recovery != 1 || m.MeanMaxCos == nil || !near(*m.MeanMaxCos, 1, 1e-6) {
		t.Errorf("recovery %v mean_max_cos %v, want 1 and 1", m.Recovery, m.MeanMaxCos)
	}
	if !near(m.MaxDecoderCos, 1, 1e-6) { // rows e_i and -e_i
		t.Errorf("max_decoder_cos %v, want 1", m.MaxDecoderCos)
	}
	// Every value is non-zero, so exactly one of each pair fires: l0 = d.
	if m.L0 != d || m.DeadFraction != 0 {
		t.Errorf("l0 %v dead %v, want %d and 0", m.L0, m.DeadFraction, d)
	}
	// Each latent fires on about half the rows: all dense.
	if m.DenseFraction != 1 {
		t.Errorf("dense_fraction %v, want 1", m.DenseFraction)
	}
	if m.Rows != n || m.DIn != d || m.DSae != 2*d || m.Arch != Standard {
		t.Errorf("rows %d d_in %d d_sae %d arch %q", m.Rows, m.DIn, m.DSae, m.Arch)
	}
	if calls != 5 || last != n {
		t.Errorf("progress called %d times, last %d; want 5 calls ending at %d", calls, last, n)
	}
}

func TestMetricsZeroSAEHasFVUOne(t *testing.T) {
	const d, n = 5, 400
	x := randRows(2, n, d, 1)
	for i := range x {
		x[i] += float32(3 * (i % d)) // a mean that is not zero
	}
	layer := evalTestLayer(t, x, d)
	st, err := layer.Stats(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := New(Standard, d, 8, 0)
	for i, v := range st.Mean {
		s.BDec[i] = float32(v)
	}
	m, err := Evaluate(context.Background(), s, layer, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !near(m.FVU, 1, 1e-6) || !near(m.ExplainedVariance, 0, 1e-6) {
		t.Errorf("fvu %v explained_variance %v, want 1 and 0", m.FVU, m.ExplainedVariance)
	}
	if !near(m.MSE, st.TotalVar, 1e-5*st.TotalVar) {
		t.Errorf("mse %v, want the total variance %v", m.MSE, st.TotalVar)
	}
	if m.L0 != 0 || m.DeadFraction != 1 || m.DenseFraction != 0 || m.MaxDecoderCos != 0 {
		t.Errorf("l0 %v dead %v dense %v max_decoder_cos %v, want 0 1 0 0", m.L0, m.DeadFraction, m.DenseFraction, m.MaxDecoderCos)
	}
}

// shiftedData has mean (1000, -500) and deviations (±1, ±1): the variance
// around the mean is 2 per row, the mean square norm about 1.25e6.
func shiftedData(n int) []float32 {
	x := make([]float32, 0, 2*n)
	for r := range n {
		x = append(x, 1000+float32(1-2*(r%2)), -500+float32(1-2*(r/2%2)))
	}
	return x
}

// halfSAE subtracts the mean (b_dec) and reconstructs only the first
// coordinate's deviation, at input scale c.
func halfSAE(t *testing.T, c float32) *SAE {
	s, err := New(Standard, 2, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.BDec[0], s.BDec[1] = 1000*c, -500*c
	s.WEnc[0*2+0], s.WEnc[0*2+1] = 1, -1 // W_enc [d_in, d_sae]
	s.WDec[0*2+0], s.WDec[1*2+0] = 1, -1 // W_dec rows +e_0, -e_0
	s.InputScale = c
	return s
}

// TestMetricsVarianceIsAroundTheMean pins the definition of FVU: the residual
// is the second coordinate's deviation, 1 per row, out of a variance of 2
// per row around the mean, so FVU is 0.5. Measured around zero, as SAELens
// 6.18 and SAEBench do, it would be about 8e-7.
func TestMetricsVarianceIsAroundTheMean(t *testing.T) {
	const n = 400
	layer := evalTestLayer(t, shiftedData(n), 2)
	for _, c := range []float32{1, 2, 0.125} {
		s := halfSAE(t, c)
		m, err := Evaluate(context.Background(), s, layer, EvalOptions{BatchSize: 7})
		if err != nil {
			t.Fatal(err)
		}
		if !near(m.FVU, 0.5, 1e-12) || !near(m.ExplainedVariance, 0.5, 1e-12) || m.MSE != 1 {
			t.Errorf("input scale %v: fvu %v explained_variance %v mse %v, want 0.5 0.5 1", c, m.FVU, m.ExplainedVariance, m.MSE)
		}
		aroundZero := m.MSE / (1000*1000 + 500*500 + 2)
		if math.Abs(m.FVU-aroundZero) < 0.4 {
			t.Errorf("fvu %v is close to the variance-around-zero figure %v", m.FVU, aroundZero)
		}
		// Folding the scale into the weights changes nothing.
		f := s.Clone()
		f.FoldInputScale()
		mf, err := Evaluate(context.Background(), f, layer, EvalOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !near(mf.FVU, m.FVU, 1e-12) || mf.MSE != m.MSE || mf.L0 != m.L0 {
			t.Errorf("input scale %v folded: fvu %v mse %v l0 %v, unfolded %v %v %v", c, mf.FVU, mf.MSE, mf.L0, m.FVU, m.MSE, m.L0)
		}
	}
}

func TestMetricsDeadAndDenseFractions(t *testing.T) {
	// Latents of the signed identity on d = 2: 0 reads +x0, 1 reads -x0,
	// 2 reads +x1, 3 reads -x1. x0 = 1 on every row (latent 0 fires on
	// 100%, latent 1 never); x1 = +1 on 5 rows (5%: neither dead nor
	// dense) and -1 on 20 rows (20%: dense).
	const n = 100
	x := make([]float32, 0, 2*n)
	for r := range n {
		var x1 float32
		switch {
		case r < 5:
			x1 = 1
		case r < 25:
			x1 = -1
		}
		x = append(x, 1, x1)
	}
	layer := evalTestLayer(t, x, 2)
	m, err := Evaluate(context.Background(), signedIdentitySAE(t, 2), layer, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.DeadFraction != 0.25 || m.DenseFraction != 0.5 || m.L0 != 1.25 {
		t.Errorf("dead %v dense %v l0 %v, want 0.25 0.5 1.25", m.DeadFraction, m.DenseFraction, m.L0)
	}
	if want := []int64{100, 0, 5, 20}; !slices.Equal(m.Fired, want) {
		t.Errorf("fired %v, want %v", m.Fired, want)
	}
	// Exactly 10% is not dense: the first 10 rows.
	m, err = Evaluate(context.Background(), signedIdentitySAE(t, 2), layer, EvalOptions{MaxRows: 50})
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != 50 || m.DenseFraction != 0.5 || m.DeadFraction != 0.25 {
		t.Errorf("first 50 rows: rows %d dense %v dead %v, want 50 0.5 0.25", m.Rows, m.DenseFraction, m.DeadFraction)
	}
	m, err = Evaluate(context.Background(), signedIdentitySAE(t, 2), layer, EvalOptions{MaxRows: 10})
	if err != nil {
		t.Fatal(err)
	}
	// Rows 0-9: latent 0 on 10, latent 2 on 5, latent 3 on 5; 10% of 10 is 1.
	if m.Rows != 10 || m.DenseFraction != 0.75 || m.DeadFraction != 0.25 {
		t.Errorf("first 10 rows: rows %d dense %v dead %v, want 10 0.75 0.25", m.Rows, m.DenseFraction, m.DeadFraction)
	}
}

func TestMaxDecoderCosCrafted(t *testing.T) {
	s, _ := New(Standard, 3, 4, 0)
	copy(s.WDec, []float32{
		1, 0, 0,
		0, 2, 0,
		3, 4, 0, // cos 0.6 with row 0, 0.8 with row 1
		0, 0, 0, // zero rows are left out
	})
	got, err := MaxDecoderCos(context.Background(), s, nil)
	if err != nil || !near(got, 0.8, 1e-6) {
		t.Errorf("max decoder cos %v (%v), want 0.8", got, err)
	}
	copy(s.WDec[9:], []float32{-2, -2.5, 0}) // |cos| with row 2: 0.9995
	got, _ = MaxDecoderCos(context.Background(), s, nil)
	want := (2*3 + 2.5*4) / (5 * math.Hypot(2, 2.5))
	if !near(got, want, 1e-6) {
		t.Errorf("max decoder cos %v, want %v (a negative cosine counts by its size)", got, want)
	}
	one, _ := New(Standard, 3, 1, 0)
	if got, err := MaxDecoderCos(context.Background(), one, nil); got != 0 || err != nil {
		t.Errorf("one decoder row: %v %v, want 0", got, err)
	}
}

// TestMaxDecoderCosBlocks checks the blocked Gram matrix against a direct
// computation on a decoder spanning three blocks, with the closest pair in
// different blocks.
func TestMaxDecoderCosBlocks(t *testing.T) {
	const d, m = 24, 2500
	s, _ := New(Standard, d, m, 0)
	copy(s.WDec, randRows(3, m, d, 1))
	for i := range d { // row 2300 ≈ -row 17
		s.WDec[2300*d+i] = -s.WDec[17*d+i] + 0.05*s.WDec[900*d+i]
	}
	norms := decoderRowNorms(s)
	want := 0.0
	for a := range m {
		for b := a + 1; b < m; b++ {
			var dot float64
			for i := range d {
				dot += float64(s.WDec[a*d+i]) * float64(s.WDec[b*d+i])
			}
			want = max(want, math.Abs(dot)/(norms[a]*norms[b]))
		}
	}
	got, err := MaxDecoderCos(context.Background(), s, nil)
	if err != nil || !near(got, want, 1e-5) || want < 0.99 {
		t.Errorf("blocked max decoder cos %v (%v), direct %v", got, err, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := MaxDecoderCos(ctx, s, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}

func TestMetricsRecoveryPartial(t *testing.T) {
	const d = 4
	layer := evalTestLayer(t, randRows(4, 50, d, 1), d)
	s := signedIdentitySAE(t, d)
	c := float32(1 / math.Sqrt2)
	truth := []float32{
		1, 0, 0, 0, // e_0: cos 1
		c, c, 0, 0, // between e_0 and e_1: best cos 0.707, not recovered
		0, 0, -3, 0, // -e_2 (scaled): the decoder has -e_2, cos 1
		0.312, 0, 0, 0.95, // best cos 0.95 with e_3
	}
	m, err := Evaluate(context.Background(), s, layer, EvalOptions{Truth: truth, TruthRows: 4})
	if err != nil {
		t.Fatal(err)
	}
	c3 := 0.95 / math.Hypot(0.312, 0.95)
	wantMean := (1 + 1/math.Sqrt2 + 1 + c3) / 4
	if *m.Recovery != 0.75 || !near(*m.MeanMaxCos, wantMean, 1e-6) {
		t.Errorf("recovery %v mean_max_cos %v, want 0.75 %v", *m.Recovery, *m.MeanMaxCos, wantMean)
	}
}

func TestMetricsJSONFieldNames(t *testing.T) {
	layer := evalTestLayer(t, randRows(5, 40, 3, 1), 3)
	s := signedIdentitySAE(t, 3)
	m, err := Evaluate(context.Background(), s, layer, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(m)
	var got map[string]any
	json.Unmarshal(b, &got)
	want := []string{"mse", "fvu", "explained_variance", "l0", "dead_fraction", "dense_fraction", "cos_sim", "max_decoder_cos", "rows", "d_in", "d_sae", "arch"}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	if len(got) != len(want) {
		t.Errorf("JSON has %d fields, want %d (no recovery without truth): %s", len(got), len(want), b)
	}
	truth := []float32{1, 0, 0}
	m, _ = Evaluate(context.Background(), s, layer, EvalOptions{Truth: truth, TruthRows: 1})
	b, _ = json.Marshal(m)
	if !strings.Contains(string(b), `"recovery":1`) || !strings.Contains(string(b), `"mean_max_cos":`) {
		t.Errorf("with truth: %s", b)
	}
}

func TestMetricsTopKAndJumpReLU(t *testing.T) {
	const d = 4
	layer := evalTestLayer(t, randRows(6, 64, d, 1), d)
	id := signedIdentitySAE(t, d)

	tk := id.Clone()
	tk.Arch, tk.K = TopK, 1
	m, err := Evaluate(context.Background(), tk, layer, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.L0 != 1 || !(m.FVU > 0 && m.FVU < 1) {
		t.Errorf("topk 1: l0 %v fvu %v, want 1 and between 0 and 1", m.L0, m.FVU)
	}

	jr := id.Clone()
	jr.Arch = JumpReLU
	jr.Threshold = make([]float32, 2*d)
	for i := range jr.Threshold {
		jr.Threshold[i] = 1e9 // nothing passes
	}
	m, err = Evaluate(context.Background(), jr, layer, EvalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.L0 != 0 || m.DeadFraction != 1 {
		t.Errorf("jumprelu with huge thresholds: l0 %v dead %v, want 0 and 1", m.L0, m.DeadFraction)
	}
}

func TestEvaluateErrors(t *testing.T) {
	layer := evalTestLayer(t, randRows(7, 20, 3, 1), 3)
	ctx := context.Background()
	wide := signedIdentitySAE(t, 4)
	if _, err := Evaluate(ctx, wide, layer, EvalOptions{}); err == nil || !strings.Contains(err.Error(), "d_in 4") || !strings.Contains(err.Error(), "d_model 3") {
		t.Errorf("width mismatch: %v", err)
	}
	s := signedIdentitySAE(t, 3)
	if _, err := Evaluate(ctx, s, layer, EvalOptions{Truth: []float32{1, 0}, TruthRows: 1}); err == nil || !strings.Contains(err.Error(), "d_in 3") {
		t.Errorf("truth of the wrong width: %v", err)
	}
	if _, err := Evaluate(ctx, s, layer, EvalOptions{Truth: []float32{0, 0, 0}, TruthRows: 1}); err == nil || !strings.Contains(err.Error(), "zero vector") {
		t.Errorf("zero truth direction: %v", err)
	}
	if _, err := Evaluate(ctx, s, layer, EvalOptions{MaxRows: -1}); err == nil {
		t.Error("negative MaxRows accepted")
	}
	if _, err := Evaluate(ctx, nil, layer, EvalOptions{}); err == nil {
		t.Error("nil SAE accepted")
	}
	broken := s.Clone()
	broken.WDec = broken.WDec[:5]
	if _, err := Evaluate(ctx, broken, layer, EvalOptions{}); err == nil || !strings.Contains(err.Error(), "W_dec") {
		t.Errorf("short W_dec: %v", err)
	}
	same := evalTestLayer(t, []float32{1, 2, 3, 1, 2, 3}, 3)
	if _, err := Evaluate(ctx, s, same, EvalOptions{}); err == nil || !strings.Contains(err.Error(), "do not vary") {
		t.Errorf("constant rows: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Evaluate(cctx, s, layer, EvalOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}

func TestEvaluateWithFeatureStatsMatchesComputeFeatureStats(t *testing.T) {
	const d = 8
	layer := evalTestLayer(t, randRows(8, 300, d, 1), d)
	s, _ := New(Standard, d, 40, 0)
	s.Init(9, 1, nil, 0)
	m, err := Evaluate(context.Background(), s, layer, EvalOptions{BatchSize: 32, FeatureStats: &FeatureStatsOptions{TopN: 5}})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := ComputeFeatureStats(context.Background(), s, layer, FeatureStatsOptions{TopN: 5, BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if m.FeatureStats == nil {
		t.Fatal("no feature statistics")
	}
	for j := range s.DSae {
		a, b := m.FeatureStats.Feature(j), fs.Feature(j)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Fatalf("latent %d: from Evaluate %s, from ComputeFeatureStats %s", j, ja, jb)
		}
		if a.Fires != m.Fired[j] {
			t.Errorf("latent %d: fires %d, metrics say %d", j, a.Fires, m.Fired[j])
		}
	}
}
