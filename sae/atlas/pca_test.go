package atlas

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// anisotropic returns n points whose spread is 5 along e0, 2 along e1 and
// 0.1 elsewhere, shifted away from the origin.
func anisotropic(n, d int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n*d)
	for i := range n {
		for j := range d {
			s := 0.1
			switch j {
			case 0:
				s = 5
			case 1:
				s = 2
			}
			x[i*d+j] = float32(3 + s*rng.NormFloat64())
		}
	}
	return x
}

func TestPCAFindsTheAxes(t *testing.T) {
	n, d := 400, 20
	x := anisotropic(n, d, 1)
	coords, explained, err := PCA(context.Background(), x, n, d, 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	// The first coordinate follows e0, the second e1.
	corr := func(c, axis int) float64 {
		var sxy, sxx, syy, mx, my float64
		for i := range n {
			mx += coords[i*2+c]
			my += float64(x[i*d+axis])
		}
		mx, my = mx/float64(n), my/float64(n)
		for i := range n {
			a, b := coords[i*2+c]-mx, float64(x[i*d+axis])-my
			sxy += a * b
			sxx += a * a
			syy += b * b
		}
		return sxy / math.Sqrt(sxx*syy)
	}
	if c0, c1 := corr(0, 0), corr(1, 1); math.Abs(c0) < 0.99 || math.Abs(c1) < 0.99 {
		t.Errorf("components correlate %.3f with e0 and %.3f with e1, want |r| > 0.99", c0, c1)
	}
	// Against a full SVD of the centred data.
	a := mat.NewDense(n, d, nil)
	for j := range d {
		var m float64
		for i := range n {
			m += float64(x[i*d+j])
		}
		m /= float64(n)
		for i := range n {
			a.Set(i, j, float64(x[i*d+j])-m)
		}
	}
	var svd mat.SVD
	svd.Factorize(a, mat.SVDNone)
	sv := svd.Values(nil)
	var total float64
	for _, s := range sv {
		total += s * s
	}
	for c := range 2 {
		if want := sv[c] * sv[c] / total; math.Abs(explained[c]-want) > 1e-9 {
			t.Errorf("component %d explains %v, a full SVD says %v", c, explained[c], want)
		}
	}
	again, _, _ := PCA(context.Background(), x, n, d, 2, 7)
	for i := range coords {
		if coords[i] != again[i] {
			t.Fatal("the same seed gave two layouts")
		}
	}
	if _, _, err := PCA(context.Background(), x, n, d, 0, 1); err == nil {
		t.Error("k = 0 was accepted")
	}
	if _, _, err := PCA(context.Background(), make([]float32, 10), 5, 2, 1, 1); err == nil {
		t.Error("rows without variance were accepted")
	}
	bad := append([]float32(nil), x...)
	bad[5] = float32(math.NaN())
	if _, _, err := PCA(context.Background(), bad, n, d, 2, 1); err == nil {
		t.Error("a NaN was accepted")
	}
}

func TestTrustworthiness(t *testing.T) {
	n, d := 300, 12
	x := anisotropic(n, d, 2)
	// The space itself is perfectly trustworthy... as far as cosine and
	// Euclidean neighbours agree, which they do for rows of equal norm.
	unit := make([]float32, len(x))
	emb := make([]float64, len(x))
	for i := range n {
		var s float64
		for _, v := range x[i*d : (i+1)*d] {
			s += float64(v) * float64(v)
		}
		s = math.Sqrt(s)
		for j := range d {
			unit[i*d+j] = float32(float64(x[i*d+j]) / s)
			emb[i*d+j] = float64(unit[i*d+j])
		}
	}
	if tw, err := Trustworthiness(unit, n, d, emb, d, 10, 0, 1); err != nil || tw < 0.999 {
		t.Errorf("identity embedding: trustworthiness %v (err %v), want 1", tw, err)
	}
	pca, _, err := PCA(context.Background(), unit, n, d, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	random := make([]float64, 2*n)
	for i := range random {
		random[i] = rng.NormFloat64()
	}
	tp, _ := Trustworthiness(unit, n, d, pca, 2, 10, 0, 1)
	tr, _ := Trustworthiness(unit, n, d, random, 2, 10, 0, 1)
	if !(tp > 0.8 && tr < 0.6 && tp > tr) {
		t.Errorf("PCA %.3f, random layout %.3f: want PCA high and random near 0.5", tp, tr)
	}
	ts, _ := Trustworthiness(unit, n, d, pca, 2, 10, 100, 5)
	if math.Abs(ts-tp) > 0.05 {
		t.Errorf("sampled trustworthiness %.3f, exact %.3f", ts, tp)
	}
	if _, err := Trustworthiness(unit, n, d, pca, 2, n, 0, 1); err == nil {
		t.Error("k = n was accepted")
	}
}
