package sae

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// relErr is ||a - b|| / max(||b||, 1e-12).
func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range b {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num) / max(math.Sqrt(den), 1e-12)
}

// randomSAE describes a random SAE, and a batch of standard normal rows, of
// the kind no training would leave alike: the encoder not tied to the
// decoder, decoder rows of norms scaled by factors from [0.5, 1.5), and
// non-zero biases.
type randomSAE struct {
	arch               Arch
	dIn, dSae, k, rows int
	centre             bool    // ApplyBDecToInput
	scale              float32 // InputScale
	// stream is the PCG stream of the draws beside the seed; decNorm and
	// threshold go to Init.
	stream             uint64
	decNorm, threshold float32
	// encNoise, bEnc and bDec are the standard deviations of the noise
	// added to W_enc and of the biases.
	encNoise, bEnc, bDec float64
	// thresholds draws JumpReLU thresholds from [0.05, 1.55) instead of
	// keeping Init's.
	thresholds bool
}

// make draws the SAE and the batch with seed and returns them with the
// generator, for the caller's further draws.
func (c randomSAE) make(t *testing.T, seed uint64) (*SAE, []float32, *rand.Rand) {
	t.Helper()
	s, err := New(c.arch, c.dIn, c.dSae, c.k)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, c.stream))
	s.Init(seed, c.decNorm, nil, c.threshold)
	for i := range s.WEnc {
		s.WEnc[i] += float32(c.encNoise * rng.NormFloat64())
	}
	for j := range s.DSae {
		sc := float32(0.5 + rng.Float64())
		for i := range s.DIn {
			s.WDec[j*s.DIn+i] *= sc
		}
		s.BEnc[j] = float32(c.bEnc * rng.NormFloat64())
		if c.thresholds && s.Threshold != nil {
			s.Threshold[j] = float32(0.05 + 1.5*rng.Float64())
		}
	}
	for i := range s.BDec {
		s.BDec[i] = float32(c.bDec * rng.NormFloat64())
	}
	s.ApplyBDecToInput = c.centre
	s.InputScale = c.scale
	x := make([]float32, c.rows*c.dIn)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return s, x, rng
}

// wantFileError checks that err names the file and says each of want.
func wantFileError(t *testing.T, err error, file string, want []string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, file) {
		t.Errorf("error %q does not name %s", msg, file)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not say %q", msg, w)
		}
	}
}
