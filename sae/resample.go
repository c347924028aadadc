package sae

import (
	"math"
	"math/rand/v2"
)

// resample re-initialises the latents that are dead (t.dead: no firing in
// the last DeadWindow samples) as Bricken et al. (2023, "Towards
// Monosemanticity", resampling) do, marks them live again and returns how
// many it changed. For each, a row of the batch x is drawn with
// probability proportional to the square of its squared reconstruction
// error, without replacement: a row seeds one latent at most, for twins
// would compete for the same rows and one of them die again (latents left
// when every row with an error has one stay dead until the next round);
// with d that row as the encoder sees it (scaled, b_dec removed) at
// unit length, the decoder row becomes d at the mean norm of the live
// decoder rows (unit norm for a unit-norm decoder), the encoder column d at
// 0.2 times the mean norm of the live encoder columns (TopK: 1 times, for
// the latent must win a place among the k largest to fire at all), the
// encoder bias 0, and the optimiser forgets those entries' moments. The
// draw is seeded by the run's seed and the step, so a resumed run
// resamples as an unbroken one.
func (t *trainer) resample(x []float32) int {
	s := t.s
	m, d := s.DSae, s.DIn
	var dead []int
	for j, isDead := range t.dead {
		if isDead {
			dead = append(dead, j)
		}
	}
	if len(dead) == 0 || len(dead) == m {
		return 0
	}
	n := len(x) / d
	f := make([]float32, n*m)
	xhat := make([]float32, len(x))
	s.Encode(x, f)
	s.Decode(f, xhat)
	weights := make([]float64, n)
	total := 0.0
	for r := range n {
		var e float64
		for i := r * d; i < (r+1)*d; i++ {
			diff := float64(xhat[i] - x[i])
			e += diff * diff
		}
		weights[r] = e * e
		total += weights[r]
	}
	if !(total > 0) || math.IsInf(total, 0) {
		return 0
	}

	var decNorm, encNorm float64
	live := 0
	for j := range m {
		if t.dead[j] {
			continue
		}
		var dn, en float64
		for i := range d {
			dn += float64(s.WDec[j*d+i]) * float64(s.WDec[j*d+i])
			en += float64(s.WEnc[i*m+j]) * float64(s.WEnc[i*m+j])
		}
		decNorm += math.Sqrt(dn)
		encNorm += math.Sqrt(en)
		live++
	}
	decNorm /= float64(live)
	encNorm /= float64(live)
	if t.cfg.unitNorm() {
		decNorm = 1
	}
	encScale := 0.2
	if s.Arch == TopK {
		encScale = 1
	}

	rng := rand.New(rand.NewPCG(t.cfg.Seed, 0x7e5a3b1e^uint64(t.step)))
	u := make([]float32, d)
	changed := 0
	for k, j := range dead {
		if k > 0 {
			// Summed afresh: subtracting the row just drawn would leave
			// rounding residue in place of the small weights that remain.
			total = 0
			for _, w := range weights {
				total += w
			}
		}
		if !(total > 0) {
			break // every row with an error has a latent: the rest wait for the next round
		}
		r := drawWeighted(rng, weights, total)
		weights[r] = 0
		s.centre(x[r*d:(r+1)*d], u)
		// The direction stays float64 until it is scaled (vec.Unit would
		// round it to float32 first).
		var norm float64
		for _, v := range u {
			norm += float64(v) * float64(v)
		}
		norm = math.Sqrt(norm)
		if !(norm > 0) || math.IsInf(norm, 0) {
			continue // a row with no direction
		}
		for i, v := range u {
			dir := float64(v) / norm
			s.WDec[j*d+i] = float32(dir * decNorm)
			s.WEnc[i*m+j] = float32(dir * encScale * encNorm)
		}
		s.BEnc[j] = 0
		t.forgetMoments(j)
		t.sinceFired[j] = 0
		t.dead[j] = false
		changed++
	}
	return changed
}

// drawWeighted returns index i with probability w[i]/total.
func drawWeighted(rng *rand.Rand, w []float64, total float64) int {
	u := rng.Float64() * total
	for i, v := range w {
		if u < v {
			return i
		}
		u -= v
	}
	for i := len(w) - 1; i >= 0; i-- {
		if w[i] > 0 {
			return i
		}
	}
	return 0
}

// forgetMoments zeroes the optimiser's moments of latent j's encoder
// column, decoder row and encoder bias (params WEnc, WDec, BEnc).
func (t *trainer) forgetMoments(j int) {
	s := t.s
	m, d := s.DSae, s.DIn
	for _, mom := range [][][]float32{t.opt.m, t.opt.v} {
		for i := range d {
			mom[0][i*m+j] = 0
			mom[1][j*d+i] = 0
		}
		mom[2][j] = 0
	}
}
