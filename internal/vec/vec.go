// Package vec holds the small vector operations that several packages
// need: unit length, unit rows and the cosine. Norms are summed in float64.
package vec

import (
	"fmt"
	"math"
)

// Unit returns v scaled to unit length, or an error for a vector with no
// direction (zero, NaN or infinite).
func Unit(v []float32) ([]float32, error) {
	var sq float64
	for _, x := range v {
		sq += float64(x) * float64(x)
	}
	if sq == 0 || math.IsNaN(sq) || math.IsInf(sq, 0) {
		return nil, fmt.Errorf("the vector has no direction (norm %v)", math.Sqrt(sq))
	}
	inv := 1 / math.Sqrt(sq)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out, nil
}

// Scale64 returns v scaled to the given norm and rounded to float32; ok is
// false, and the result nil, when v has no direction (zero, NaN or
// infinite).
func Scale64(v []float64, norm float64) (out []float32, ok bool) {
	s := 0.0
	for _, x := range v {
		s += x * x
	}
	if s == 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return nil, false
	}
	k := norm / math.Sqrt(s)
	out = make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x * k)
	}
	return out, true
}

// UnitRows returns a copy of the [n, d] rows of w scaled to unit norm; zero
// rows stay zero.
func UnitRows(w []float32, n, d int) []float32 {
	out := make([]float32, n*d)
	for i := range n {
		row := w[i*d : (i+1)*d]
		var sq float64
		for _, v := range row {
			sq += float64(v) * float64(v)
		}
		if sq == 0 {
			continue
		}
		f := float32(1 / math.Sqrt(sq))
		for j, v := range row {
			out[i*d+j] = v * f
		}
	}
	return out
}

// Cosine is the cosine between a and b, 0 when either is zero.
func Cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}
